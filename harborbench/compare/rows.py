"""The rows of a comparison: each metric of B against A, with its interval and verdict.

For each run, :class:`_Side` holds the 1-second intervals of the measurement window as arrays;
:class:`_Ctx` builds the rows of one comparison from the two sides: rates (ratio of sums over
intervals), service-time percentiles (merged resampled histograms), memory (over trials and
Theil-Sen slopes), streaming percentiles (shown, not tested) and the plan's reference row. The
resampling itself is in :mod:`harborbench.compare.bootstrap`.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from harborbench.compare import bootstrap as cs
from harborbench.compare.models import METRICS, MetricRow, ReferenceRow
from harborbench.metrics.histogram import (
    LatencyHistogram,
    counts_matrix,
    min_samples_for,
    percentile_ns_from_counts,
)
from harborbench.result import PLAN_BASELINE_OPS, PLAN_TARGET_OPS, RunResult, TrialResult

_PERCENTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


class _Side:
    """The measurement-window intervals of one run, as arrays (warmup rows excluded)."""

    def __init__(self, result: RunResult) -> None:
        self.result = result
        self.total: TrialResult | None = result.total
        rows: list[tuple[int, Any, float]] = []
        for trial in result.trials:
            for row in trial.timeseries:
                length_s = min(1.0, trial.window_s - row.t_s)
                if not row.warmup and row.t_s >= 0 and length_s > 0:
                    rows.append((trial.index, row, length_s))
        self.rows = rows
        self.trial_of = np.array([t for t, _, _ in rows], dtype=np.int64)
        self.successes = np.array([r.successes for _, r, _ in rows], dtype=np.float64)
        self.failures = np.array([r.failures for _, r, _ in rows], dtype=np.float64)
        self.length_s = np.array([n for _, _, n in rows], dtype=np.float64)
        self.slo_met = np.array([r.slo_met or 0 for _, r, _ in rows], dtype=np.float64)
        cpu = [r.cpu_percent for _, r, _ in rows]
        self.cpu_s = np.array(
            [
                math.nan if c is None else c / 100.0 * n
                for c, (_, _, n) in zip(cpu, rows, strict=True)
            ]
        )

    def groups(self) -> list[int]:
        """Intervals per trial (only trials with at least one interval)."""
        _, sizes = np.unique(self.trial_of, return_counts=True)
        return [int(s) for s in sizes]

    def service_counts(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Bucket counts of each interval's service-time histogram: ``(index (k,), (N, k))``."""
        hists = [
            LatencyHistogram.decode(r.service_histogram)
            if r.service_histogram
            else LatencyHistogram()
            for _, r, _ in self.rows
        ]
        return counts_matrix(hists)

    def block_s(self) -> float:
        """Mean block length for this run's stationary bootstrap (:func:`cs.block_length`).

        The larger of the lengths estimated on the per-second throughput and on the per-second
        median service time: the slower-decaying dependence decides.
        """
        per_trial = [self.trial_of == t for t in np.unique(self.trial_of)]
        ops = [self.successes[m] / self.length_s[m] for m in per_trial]
        idx, counts = self.service_counts()
        p50 = np.full(len(self.rows), np.nan)
        has = counts.sum(axis=1) > 0
        if has.any():
            p50[has] = percentile_ns_from_counts(idx, counts[has], 50.0)
        return max(cs.block_length(ops), cs.block_length([p50[m] for m in per_trial]))

    def weights(
        self, n_resamples: int, rng: np.random.Generator, copies: np.ndarray[Any, Any] | None
    ) -> cs.Weights:
        """The bootstrap weights of this run's intervals (two-stage when it has trials)."""
        return cs.resample_weights(
            self.groups(), n_resamples, rng, block_s=self.block_s(), copies=copies
        )


def _ratio(a: float | None, b: float | None) -> tuple[float | None, float | None]:
    if a is None or b is None or a == 0 or not math.isfinite(a) or not math.isfinite(b):
        return None, None
    r = b / a
    return r, 100.0 * (r - 1.0)


class _Ctx:
    """Shared state while building the rows of one comparison."""

    def __init__(
        self, a: _Side, b: _Side, confidence: float, seed: int, n: int, *, paired: bool = False
    ) -> None:
        self.a, self.b = a, b
        self.confidence, self.seed, self.n = confidence, seed, n
        groups = (len(a.groups()), len(b.groups()))
        self.paired = paired and groups[0] == groups[1] and groups[0] > 1
        self._weights: list[cs.Weights] = []

    def weights(self, side: int) -> cs.Weights:
        """Each run's bootstrap weights, drawn once and shared by every metric of that run.

        Paired rounds (interleaved A and B) share the outer draw of rounds.
        """
        if not self._weights:
            copies = None
            if self.paired:
                n_groups = len(self.a.groups())
                copies = cs.outer_draws(n_groups, self.n, self.rng(2, 0))
            self._weights = [
                s.weights(self.n, self.rng(i, 0), copies) for i, s in enumerate((self.a, self.b))
            ]
        return self._weights[side]

    def rng(self, side: int, family: int) -> np.random.Generator:
        """A generator per side and metric family, so rows do not depend on each other."""
        return np.random.default_rng([self.seed, side, family])

    def row(
        self,
        metric: str,
        a: float | None,
        b: float | None,
        *,
        interval: cs.ChangeInterval | None = None,
        method: str,
        verdict: cs.Verdict | None = None,
        reason: str = "",
        p_value: float | None = None,
        n_a: int = 0,
        n_b: int = 0,
    ) -> MetricRow:
        """Assemble a row; the verdict comes from the interval unless given."""
        spec = METRICS[metric]
        # Memory figures can be 0 or negative: a ratio of them means nothing.
        ratio, change = _ratio(a, b) if not metric.startswith("memory") else (None, None)
        if verdict is None:
            if interval is None:
                verdict = "inconclusive"
            else:
                verdict = cs.change_verdict(interval, spec.better)
                lo, hi = interval.low, interval.high
                what = "B/A" if interval.of == "ratio" else "B - A"
                reason = f"{what} lies in [{lo:.4g}, {hi:.4g}] at {self.confidence:.0%}"
        return MetricRow(
            metric=metric, label=spec.label, unit=spec.unit, better=spec.better, a=a, b=b,
            ratio=ratio, change_pct=change,
            ci_low=interval.low if interval else None, ci_high=interval.high if interval else None,
            ci_of=interval.of if interval else "ratio", confidence=self.confidence, method=method,
            p_value=p_value, min_detectable_pct=interval.min_detectable_pct if interval else None,
            n_a=n_a, n_b=n_b, verdict=verdict, reason=reason,
        )  # fmt: skip

    def _too_few(self, n_a: int, n_b: int) -> str | None:
        if min(n_a, n_b) < cs.MIN_INTERVALS:
            return (
                f"too few 1-s intervals for an interval (A {n_a}, B {n_b}; at least "
                f"{cs.MIN_INTERVALS} each): run longer"
            )
        return None

    def rate_rows(self) -> list[MetricRow]:
        """Throughput, goodput (when both runs set an slo), attempted ops/s, error rate and CPU
        efficiency."""
        a, b = self.a, self.b
        ta, tb = a.total, b.total

        def figure(t: TrialResult | None, name: str) -> float | None:
            if t is None:
                return None
            if name == "cpu":
                value = t.cpu.ops_per_cpu_second
            elif name == "attempted_ops":  # completions / s, the unit the per-second rows have
                value = (t.successes + t.failures) / t.window_s if t.window_s else None
            else:
                value = getattr(t, name)
            return None if value is None else float(value)

        goodput = [t is not None and t.goodput_ops is not None for t in (ta, tb)]
        rows = (
            ("throughput", "throughput_ops", "successes / s"),
            *(
                (("goodput", "goodput_ops", "successes meeting the slo / s"),)
                if all(goodput)
                else ()
            ),
        )
        specs = [
            (metric, figure(ta, name), figure(tb, name), what)
            for metric, name, what in (
                *rows,
                ("attempted", "attempted_ops", "completions / s"),
                ("error_rate", "error_rate", "failures / completions"),
                ("cpu_efficiency", "cpu", "successes / CPU-s from per-second CPU samples"),
            )
        ]
        out = []
        for metric, va, vb, what in specs:
            parts = []
            for side, s in enumerate((a, b)):
                num, den, mask = self._rate_arrays(metric, s)
                parts.append((np.where(mask, num, 0.0), np.where(mask, den, 0.0), mask, side))
            n_a, n_b = (int(p[2].sum()) for p in parts)
            too_few = self._too_few(n_a, n_b)
            if too_few:
                out.append(
                    self.row(metric, va, vb, method="none", reason=too_few, n_a=n_a, n_b=n_b)
                )
                continue
            res = [
                cs.resample_ratio_of_sums(num, den, self.weights(side), what)
                for num, den, _, side in parts
            ]
            interval = cs.change_interval(res[0], res[1], self.confidence)
            p_value = None
            if metric == "throughput":
                p_value = cs.mann_whitney_p(*(num[m] / den[m] for num, den, m, _ in parts))
            out.append(
                self.row(
                    metric,
                    va,
                    vb,
                    interval=interval,
                    method=res[0].method,
                    p_value=p_value,
                    n_a=n_a,
                    n_b=n_b,
                    reason="" if interval else "the resampled statistic is undefined too often",
                )
            )
        return out

    @staticmethod
    def _rate_arrays(
        metric: str, s: _Side
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        everything = np.ones(len(s.rows), dtype=bool)
        if metric == "throughput":
            return s.successes, s.length_s, everything
        if metric == "goodput":
            return s.slo_met, s.length_s, everything
        if metric == "attempted":
            return s.successes + s.failures, s.length_s, everything
        if metric == "error_rate":
            return s.failures, s.successes + s.failures, everything
        return s.successes, np.nan_to_num(s.cpu_s), ~np.isnan(s.cpu_s)

    def latency_rows(self) -> list[MetricRow]:
        """Service-time percentiles (bootstrap of merged interval histograms) and the max."""
        a, b = self.a, self.b
        sums = [s.total.service_time if s.total else None for s in (a, b)]
        out = []
        too_few = self._too_few(len(a.rows), len(b.rows))
        counts = [s.service_counts() for s in (a, b)] if not too_few else []
        res: list[dict[float, cs.Resampled]] = []
        if counts and all(c.sum() > 0 for _, c in counts):
            res = [
                cs.resample_percentiles(idx, c, self.weights(side), list(_PERCENTILES.values()))
                for side, (idx, c) in enumerate(counts)
            ]
        for metric, q in _PERCENTILES.items():
            va, vb = (getattr(x, f"{metric}_s") if x else None for x in sums)
            n_a, n_b = (x.count if x else 0 for x in sums)
            need = min_samples_for(q)
            if min(n_a, n_b) < need:
                reason = f"{metric} needs at least {need} samples per run (A {n_a}, B {n_b})"
                out.append(self.row(metric, va, vb, method="none", reason=reason, n_a=n_a, n_b=n_b))
                continue
            if not res:
                reason = too_few or "the runs keep no per-interval histograms"
                out.append(self.row(metric, va, vb, method="none", reason=reason, n_a=n_a, n_b=n_b))
                continue
            interval = cs.change_interval(res[0][q], res[1][q], self.confidence)
            per_interval = [self._per_interval(idx, c, q) for idx, c in counts]
            out.append(
                self.row(
                    metric,
                    va,
                    vb,
                    interval=interval,
                    method=res[0][q].method,
                    p_value=cs.mann_whitney_p(*per_interval),
                    n_a=len(a.rows),
                    n_b=len(b.rows),
                    reason="" if interval else "the resampled percentile is undefined too often",
                )
            )
        va, vb = (x.max_s if x else None for x in sums)
        out.append(
            self.row(
                "max",
                va,
                vb,
                method="none",
                verdict="not tested",
                reason="a maximum is a single request: no bootstrap interval is valid for it",
            )
        )
        return out

    @staticmethod
    def _per_interval(idx: np.ndarray[Any, Any], counts: np.ndarray[Any, Any], q: float) -> Any:
        """Percentile q of each interval holding enough samples for it (for the rank test)."""
        enough = counts.sum(axis=1) >= min_samples_for(q)
        if not enough.any():
            return np.zeros(0)
        return percentile_ns_from_counts(idx, counts[enough], q).astype(np.float64)

    def memory_rows(self) -> list[MetricRow]:
        """Memory growth (bootstrap over trials) and slope (each run's Theil-Sen interval)."""
        a, b = self.a.result, self.b.result
        growth = [np.array([t.memory.growth_pct for t in r.trials]) for r in (a, b)]
        ta, tb = self.a.total, self.b.total
        va = ta.memory.growth_pct if ta else None
        vb = tb.memory.growth_pct if tb else None
        n_a, n_b = len(growth[0]), len(growth[1])
        out = []
        if min(n_a, n_b) < 3:
            reason = f"needs at least 3 trials per run (repeat); A has {n_a}, B has {n_b}"
            out.append(
                self.row("memory_growth", va, vb, method="none", reason=reason, n_a=n_a, n_b=n_b)
            )
        else:
            res = [
                cs.resample_ratio_of_sums(
                    g,
                    np.ones_like(g),
                    cs.resample_weights([1] * len(g), self.n, self.rng(side, 20)),
                    "mean over trials",
                )
                for side, g in enumerate(growth)
            ]
            interval = cs.change_interval(res[0], res[1], self.confidence, difference=True)
            method = f"percentile bootstrap over trials (A {n_a}, B {n_b}), difference of means"
            out.append(
                self.row(
                    "memory_growth", va, vb, interval=interval, method=method, n_a=n_a, n_b=n_b
                )
            )
        ma = ta.memory if ta else None
        mb = tb.memory if tb else None
        sa = ma.slope_mb_per_min if ma else None
        sb = mb.slope_mb_per_min if mb else None
        method = "each run's Theil-Sen slope with Sen's 95% interval; disjoint intervals decide"
        if (
            ma is None
            or mb is None
            or "inconclusive" in (ma.verdict, mb.verdict)
            or None in (ma.slope_ci_low, ma.slope_ci_high, sa, sb)
            or (None in (mb.slope_ci_low, mb.slope_ci_high))
        ):
            why = "; ".join(
                f"{side}: {m.reason}" for side, m in (("A", ma), ("B", mb)) if m and m.reason
            )
            reason = f"no conclusive slope for both runs ({why or 'not measured'})"
            out.append(self.row("memory_slope", sa, sb, method=method, reason=reason))
            return out
        assert ma.slope_ci_low is not None and ma.slope_ci_high is not None
        assert mb.slope_ci_low is not None and mb.slope_ci_high is not None
        verdict: cs.Verdict = "no significant difference"
        if mb.slope_ci_low > ma.slope_ci_high:
            verdict = "worse"
        elif mb.slope_ci_high < ma.slope_ci_low:
            verdict = "better"
        reason = (
            f"A [{ma.slope_ci_low:.3g}, {ma.slope_ci_high:.3g}], "
            f"B [{mb.slope_ci_low:.3g}, {mb.slope_ci_high:.3g}] MB/min"
        )
        out.append(self.row("memory_slope", sa, sb, method=method, verdict=verdict, reason=reason))
        return out

    def stream_rows(self) -> list[MetricRow]:
        """TTFT, inter-chunk and time-per-output-token percentiles (and inter-token latency when
        either run measured it), when a run streamed: shown, not tested.

        A run stores its streaming latencies as one histogram, not per second, and the samples
        are not independent (gaps of one stream, requests of one second), so no interval valid
        at the stated confidence can be drawn from them: the rows show A, B and the ratio, with
        the verdict "not tested" (a ``--fail-on`` gate on them is inconclusive).
        """
        ta, tb = self.a.total, self.b.total
        streams = [t.stream if t else None for t in (ta, tb)]
        if streams[0] is None and streams[1] is None:
            return []
        out = []
        kinds = ["ttft", "icl", "tpot"]
        if any(s is not None and s.itl.count for s in streams):
            kinds.insert(2, "itl")
        for kind in kinds:
            summaries = [getattr(s, kind) if s else None for s in streams]
            for label in ("p50", "p95"):
                metric = f"{kind}_{label}"
                va, vb = (getattr(x, f"{label}_s") if x else None for x in summaries)
                n_a, n_b = (x.count if x else 0 for x in summaries)
                if None in streams:
                    reason = "only one run streamed"
                else:
                    reason = (
                        "streaming latencies are stored per run, not per second, and are not "
                        "independent samples: no valid interval"
                    )
                out.append(
                    self.row(
                        metric,
                        va,
                        vb,
                        method="none",
                        verdict="not tested",
                        reason=reason,
                        n_a=n_a,
                        n_b=n_b,
                    )
                )
        return out

    def reference_row(self) -> ReferenceRow | None:
        """B's throughput against the plan's 505.6 ops/s baseline and 1000 ops/s target."""
        b = self.b
        if b.total is None:
            return None
        plan = b.result.reference
        base = float(plan.get("plan_baseline_ops", PLAN_BASELINE_OPS))
        target_ops = float(plan.get("plan_target_ops", PLAN_TARGET_OPS))
        ops = b.total.throughput_ops
        low = high = None
        target: Literal["met", "missed", "inconclusive"] = "inconclusive"
        if len(b.rows) < cs.MIN_INTERVALS:
            reason = (
                f"too few 1-s intervals in B for an interval ({len(b.rows)}; at least "
                f"{cs.MIN_INTERVALS}): run longer"
            )
        else:
            res = cs.resample_ratio_of_sums(b.successes, b.length_s, self.weights(1), "ops/s")
            tail = 1.0 - NormalDist().cdf(cs.expanded_z(self.confidence, res.units))
            low, high = (float(x) for x in np.nanquantile(res.replicates, [tail, 1.0 - tail]))
            target = "met" if low >= target_ops else "missed" if high < target_ops else target
            reason = (
                f"B's throughput lies in [{low:.1f}, {high:.1f}] ops/s at {self.confidence:.0%}"
            )
        return ReferenceRow(
            label="the plan's figure, from another machine and another definition of an op; "
            "the deciding baseline is A, measured here",
            plan_baseline_ops=base,
            plan_target_ops=target_ops,
            b_throughput_ops=ops,
            ratio_to_plan_baseline=ops / base,
            b_ci_low=low,
            b_ci_high=high,
            target=target,
            reason=reason,
        )
