"""Compare two runs: the change of every metric, its confidence interval, and a verdict.

``compare_results(a, b)`` is the library behind ``harborbench compare A B`` (issue 5). A is the
baseline, B the candidate; every change is B relative to A. It returns a :class:`Comparison`
(pydantic, JSON-ready) and prints nothing.

Methods (see :mod:`harborbench.compare.bootstrap`): rates (throughput, attempted ops/s, error rate,
CPU efficiency) are ratios of sums over the 1-second intervals of the measurement window, and
their intervals come from a bootstrap of those intervals (two-stage, trials then intervals, when
a run has several trials). Latency percentiles come from merging resampled per-interval HDR
histograms, never from averaging percentiles. Streaming percentiles, for which a run keeps no
per-interval histogram, come from a bootstrap of requests. Warmup rows are excluded everywhere.
A metric with too little data is ``inconclusive`` with the reason, never a made-up interval.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict

from harborbench.compare import bootstrap as cs
from harborbench.environment import COMPARABLE_KEYS
from harborbench.errors import UserInputError
from harborbench.metrics import stats
from harborbench.metrics.histogram import (
    LatencyHistogram,
    counts_matrix,
    min_samples_for,
    percentile_ns_from_counts,
)
from harborbench.result import PLAN_BASELINE_OPS, PLAN_TARGET_OPS, RunResult, TrialResult

COMPARISON_SCHEMA_VERSION = 1
N_RESAMPLES = 2000
#: Profile sections whose differences make two runs measure different workloads.
WORKLOAD_KEYS = ("load", "request", "target")
#: Profile keys whose differences are worth a note but do not change the workload.
NOTE_KEYS = ("warmup", "duration", "repeat", "seed")
NS_PER_S = 1e9


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricSpec(NamedTuple):
    """A metric compare reports: label, unit (of A and B), good direction, gateable."""

    label: str
    unit: str
    better: cs.Better
    gateable: bool


METRICS: dict[str, MetricSpec] = {
    "throughput": MetricSpec("throughput", "ops/s", "higher", True),
    "attempted": MetricSpec("attempted", "ops/s", "higher", True),
    "error_rate": MetricSpec("error rate", "fraction", "lower", True),
    "p50": MetricSpec("service p50", "s", "lower", True),
    "p95": MetricSpec("service p95", "s", "lower", True),
    "p99": MetricSpec("service p99", "s", "lower", True),
    "p999": MetricSpec("service p99.9", "s", "lower", True),
    "max": MetricSpec("service max", "s", "lower", False),
    "cpu_efficiency": MetricSpec("CPU efficiency", "ops/CPU-s", "higher", True),
    "memory_growth": MetricSpec("memory growth", "%", "lower", False),
    "memory_slope": MetricSpec("memory slope", "MB/min", "lower", False),
    "ttft_p50": MetricSpec("TTFT p50", "s", "lower", True),
    "ttft_p95": MetricSpec("TTFT p95", "s", "lower", True),
    "itl_p50": MetricSpec("inter-token p50", "s", "lower", True),
    "itl_p95": MetricSpec("inter-token p95", "s", "lower", True),
}
_ALIASES = {"p99.9": "p999", "attempted_ops": "attempted", "ops_per_cpu_second": "cpu_efficiency"}
_PERCENTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


class MetricRow(_Model):
    """One metric of A and B, the change, its interval and the verdict.

    Attributes:
        metric: the key (``throughput``, ``p99``, ...); label: for display; unit: of ``a``/``b``.
        better: the direction in which the metric is good.
        a, b: the runs' figures (None when not measured).
        ratio: b / a; change_pct: ``100 * (ratio - 1)`` (None when a is 0 or missing).
        ci_low, ci_high: the interval at ``confidence``, of the ratio B/A when ``ci_of`` is
            ``"ratio"``, of B - A in ``unit`` when ``"difference"``; None when there is none.
        method: how the interval was obtained (or why there is none).
        p_value: two-sided Mann-Whitney U p-value on per-interval values, when computed.
        min_detectable_pct: smallest relative change the data could detect (80% power).
        n_a, n_b: units of data behind the interval (intervals, trials or requests).
        verdict: better, worse, no significant difference, inconclusive, or not tested.
        reason: one sentence explaining the verdict.
    """

    metric: str
    label: str
    unit: str
    better: cs.Better
    a: float | None
    b: float | None
    ratio: float | None
    change_pct: float | None
    ci_low: float | None
    ci_high: float | None
    ci_of: Literal["ratio", "difference"]
    confidence: float
    method: str
    p_value: float | None
    min_detectable_pct: float | None
    n_a: int
    n_b: int
    verdict: cs.Verdict
    reason: str


class ReferenceRow(_Model):
    """B's throughput against the plan's figures (505.6 ops/s baseline, 1000 ops/s target)."""

    label: str
    plan_baseline_ops: float
    plan_target_ops: float
    b_throughput_ops: float
    ratio_to_plan_baseline: float
    b_ci_low: float | None
    b_ci_high: float | None
    target: Literal["met", "missed", "inconclusive"]
    reason: str


class Difference(_Model):
    """One key whose value differs between A and B."""

    key: str
    a: Any
    b: Any


class Comparability(_Model):
    """Whether A and B were measured on the same kind of machine with the same workload."""

    comparable: bool
    environment: list[Difference]
    workload: list[Difference]
    notes: list[Difference]
    warnings: list[str]


class FailOn(_Model):
    """A ``--fail-on METRIC:CHANGE`` gate: the change of B over A that must not be exceeded."""

    text: str
    metric: str
    change_pct: float

    @property
    def threshold_ratio(self) -> float:
        """The threshold as a ratio B/A (``-5%`` is 0.95)."""
        return 1.0 + self.change_pct / 100.0


class GateOutcome(_Model):
    """A ``--fail-on`` gate judged on the interval of its metric."""

    gate: str
    metric: str
    threshold_ratio: float
    ci_low: float | None
    ci_high: float | None
    verdict: cs.GateVerdict
    reason: str


class RunRef(_Model):
    """Which run a side of the comparison is."""

    name: str
    created_at: str
    trials: int
    intervals: int


class Comparison(_Model):
    """The whole comparison of B against A (``comparison.json``)."""

    schema_version: int
    a: RunRef
    b: RunRef
    confidence: float
    seed: int
    n_resamples: int
    rows: list[MetricRow]
    reference: ReferenceRow | None
    comparability: Comparability
    gates: list[GateOutcome]

    def row(self, metric: str) -> MetricRow | None:
        """The row of ``metric`` (a key of :data:`METRICS`), or None if not reported."""
        return next((r for r in self.rows if r.metric == metric), None)


_FAIL_ON = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*:\s*([+-]?)(\d+(?:\.\d+)?)\s*%\s*$")


def parse_fail_on(text: str) -> FailOn:
    """Parse a ``--fail-on`` gate such as ``throughput:-5%`` or ``p99:+10%``.

    Without a sign the change is taken in the metric's bad direction (``p99:10%`` is ``+10%``);
    a sign in the good direction (``throughput:+5%``) is refused as a likely mistake.

    Args:
        text: ``METRIC:CHANGE%``; METRIC one of the gateable keys of :data:`METRICS`
            (``p99.9`` is accepted for ``p999``).

    Returns:
        The gate.

    Raises:
        UserInputError: the text does not parse, the metric is unknown or not gateable, or the
            sign points in the metric's good direction.
    """
    gateable = ", ".join(k for k, m in METRICS.items() if m.gateable)
    match = _FAIL_ON.match(text)
    if not match:
        raise UserInputError(
            f"--fail-on {text!r}: expected METRIC:CHANGE%, for example throughput:-5% or p99:+10%."
        )
    name, sign, number = match.groups()
    metric = _ALIASES.get(name.lower(), name.lower())
    spec = METRICS.get(metric)
    if spec is None or not spec.gateable:
        raise UserInputError(f"--fail-on {text!r}: unknown metric {name!r}; use one of {gateable}.")
    bad_sign = "-" if spec.better == "higher" else "+"
    if sign and sign != bad_sign:
        raise UserInputError(
            f"--fail-on {text!r}: {metric} is better when {spec.better}, so a regression is "
            f"{'a decrease' if bad_sign == '-' else 'an increase'}.",
            hint=f"Write {metric}:{bad_sign}{number}%.",
        )
    value = float(number)
    if bad_sign == "-" and value >= 100:
        raise UserInputError(f"--fail-on {text!r}: a decrease must be smaller than 100%.")
    return FailOn(text=text.strip(), metric=metric, change_pct=-value if bad_sign == "-" else value)


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
        cpu = [r.cpu_percent for _, r, _ in rows]
        self.cpu_s = np.array(
            [
                math.nan if c is None else c / 100.0 * n
                for c, (_, _, n) in zip(cpu, rows, strict=True)
            ]
        )

    def groups(self, mask: np.ndarray[Any, Any] | None = None) -> list[int]:
        """Intervals per trial (only trials with at least one interval), optionally masked."""
        trials = self.trial_of if mask is None else self.trial_of[mask]
        _, sizes = np.unique(trials, return_counts=True)
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


def compare_results(
    a: RunResult,
    b: RunResult,
    *,
    confidence: float = 0.95,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
    fail_on: Sequence[FailOn] = (),
) -> Comparison:
    """Compare run B with baseline run A, metric by metric.

    Args:
        a: the baseline run.
        b: the candidate run.
        confidence: level of every interval, in (0, 1).
        seed: seed of the bootstrap (the same inputs and seed give the same intervals).
        n_resamples: bootstrap resamples per run and metric family.
        fail_on: gates to judge (:func:`parse_fail_on`).

    Returns:
        The comparison: one :class:`MetricRow` per metric (stream rows only when both runs
        streamed), the plan's reference row, comparability, and the gates' outcomes.

    Raises:
        ValueError: ``confidence`` outside (0, 1) or ``n_resamples`` < 100.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if n_resamples < 100:
        raise ValueError(f"n_resamples must be >= 100, got {n_resamples!r}")
    sa, sb = _Side(a), _Side(b)
    ctx = _Ctx(sa, sb, confidence, seed, n_resamples)
    rows = [*ctx.rate_rows(), *ctx.latency_rows(), *ctx.memory_rows(), *ctx.stream_rows()]
    order = list(METRICS)
    rows.sort(key=lambda r: order.index(r.metric))
    comparison = Comparison(
        schema_version=COMPARISON_SCHEMA_VERSION,
        a=RunRef(
            name=a.name, created_at=a.created_at, trials=len(a.trials), intervals=len(sa.rows)
        ),
        b=RunRef(
            name=b.name, created_at=b.created_at, trials=len(b.trials), intervals=len(sb.rows)
        ),
        confidence=confidence,
        seed=seed,
        n_resamples=n_resamples,
        rows=rows,
        reference=ctx.reference_row(),
        comparability=comparability(a, b),
        gates=[],
    )
    return comparison.model_copy(update={"gates": [evaluate_gate(comparison, g) for g in fail_on]})


def _ratio(a: float | None, b: float | None) -> tuple[float | None, float | None]:
    if a is None or b is None or a == 0 or not math.isfinite(a) or not math.isfinite(b):
        return None, None
    r = b / a
    return r, 100.0 * (r - 1.0)


class _Ctx:
    """Shared state while building the rows of one comparison."""

    def __init__(self, a: _Side, b: _Side, confidence: float, seed: int, n: int) -> None:
        self.a, self.b = a, b
        self.confidence, self.seed, self.n = confidence, seed, n

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
        """Throughput, attempted ops/s, error rate and CPU efficiency."""
        a, b = self.a, self.b
        ta, tb = a.total, b.total

        def figure(t: TrialResult | None, name: str) -> float | None:
            if t is None:
                return None
            value = t.cpu.ops_per_cpu_second if name == "cpu" else getattr(t, name)
            return None if value is None else float(value)

        specs = [
            (metric, figure(ta, name), figure(tb, name), what)
            for metric, name, what in (
                ("throughput", "throughput_ops", "successes / s"),
                ("attempted", "attempted_ops", "completions / s"),
                ("error_rate", "error_rate", "failures / completions"),
                ("cpu_efficiency", "cpu", "successes / CPU-s from per-second CPU samples"),
            )
        ]
        out = []
        for family, (metric, va, vb, what) in enumerate(specs):
            parts = []
            for side, s in enumerate((a, b)):
                num, den, mask = self._rate_arrays(metric, s)
                parts.append((num[mask], den[mask], s.groups(mask), side))
            n_a, n_b = len(parts[0][0]), len(parts[1][0])
            too_few = self._too_few(n_a, n_b)
            if too_few:
                out.append(
                    self.row(metric, va, vb, method="none", reason=too_few, n_a=n_a, n_b=n_b)
                )
                continue
            res = [
                cs.resample_ratio_of_sums(num, den, groups, self.n, self.rng(side, family), what)
                for num, den, groups, side in parts
            ]
            interval = cs.change_interval(res[0], res[1], self.confidence)
            p_value = None
            if metric == "throughput":
                p_value = cs.mann_whitney_p(parts[0][0] / parts[0][1], parts[1][0] / parts[1][1])
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
                cs.resample_percentiles(
                    idx, c, s.groups(), list(_PERCENTILES.values()), self.n, self.rng(side, 10)
                )
                for side, (s, (idx, c)) in enumerate(zip((a, b), counts, strict=True))
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
                    g, np.ones_like(g), [len(g)], self.n, self.rng(side, 20), "mean over trials"
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
        """TTFT and inter-token latency percentiles, when both runs streamed."""
        ta, tb = self.a.total, self.b.total
        streams = [t.stream if t else None for t in (ta, tb)]
        if streams[0] is None and streams[1] is None:
            return []
        out = []
        for family, kind in enumerate(("ttft", "itl")):
            summaries = [getattr(s, kind) if s else None for s in streams]
            hists = [
                LatencyHistogram.decode(x.histogram) if x and x.histogram else None
                for x in summaries
            ]
            res: list[dict[float, cs.Resampled]] = []
            if hists[0] is not None and hists[1] is not None:
                for side, h in enumerate(hists):
                    assert h is not None
                    idx, c = counts_matrix([h])
                    res.append(
                        cs.resample_percentiles_iid(
                            idx, c[0], [50.0, 95.0], self.n, self.rng(side, 30 + family)
                        )
                    )
            for label, q in (("p50", 50.0), ("p95", 95.0)):
                metric = f"{kind}_{label}"
                va, vb = (getattr(x, f"{label}_s") if x else None for x in summaries)
                n_a, n_b = (x.count if x else 0 for x in summaries)
                need = min_samples_for(q)
                if not res:
                    reason = "only one run streamed" if None in streams else "no samples"
                    out.append(self.row(metric, va, vb, method="none", reason=reason))
                elif min(n_a, n_b) < need:
                    reason = f"{metric} needs at least {need} samples per run (A {n_a}, B {n_b})"
                    out.append(
                        self.row(metric, va, vb, method="none", reason=reason, n_a=n_a, n_b=n_b)
                    )
                else:
                    interval = cs.change_interval(res[0][q], res[1][q], self.confidence)
                    out.append(
                        self.row(
                            metric,
                            va,
                            vb,
                            interval=interval,
                            method=res[0][q].method,
                            n_a=n_a,
                            n_b=n_b,
                            reason="" if interval else "undefined resamples",
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
        reason = self._too_few(len(b.rows), len(b.rows)) or ""
        if not reason:
            res = cs.resample_ratio_of_sums(
                b.successes, b.length_s, b.groups(), self.n, self.rng(1, 40), "successes / s"
            )
            tail = (1.0 - self.confidence) / 2.0
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


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def _differences(a: dict[str, Any], b: dict[str, Any], keys: Sequence[str]) -> list[Difference]:
    fa: dict[str, Any] = {}
    fb: dict[str, Any] = {}
    for key in keys:
        _flatten(key, a.get(key), fa)
        _flatten(key, b.get(key), fb)
    return [
        Difference(key=k, a=fa.get(k), b=fb.get(k))
        for k in sorted(set(fa) | set(fb))
        if fa.get(k) != fb.get(k)
    ]


def comparability(a: RunResult, b: RunResult) -> Comparability:
    """Compare the two runs' environments and workloads.

    Environments differ when any of :data:`harborbench.environment.COMPARABLE_KEYS` (CPU model
    and count, Python, aiohttp, harborbench) differ; workloads when the profiles' ``load``,
    ``request`` or ``target`` sections differ. ``warmup``, ``duration``, ``repeat`` and ``seed``
    differences are listed as notes. Health problems of either run are warnings.

    Args:
        a, b: the two runs.

    Returns:
        The differences; ``comparable`` is False when the environment or the workload differs.
    """
    env = _differences(a.environment, b.environment, COMPARABLE_KEYS)
    work = _differences(a.profile, b.profile, WORKLOAD_KEYS)
    notes = _differences(a.profile, b.profile, NOTE_KEYS)
    warnings = []
    if env:
        keys = ", ".join(d.key for d in env)
        warnings.append(f"A and B were measured on different machines or software ({keys})")
    if work:
        keys = ", ".join(d.key for d in work)
        warnings.append(f"A and B ran different workloads ({keys})")
    for side, r in (("A", a), ("B", b)):
        if r.interrupted:
            warnings.append(f"{side} ({r.name}) was interrupted: its result is partial")
        if r.total is not None and r.total.health.generator_saturated:
            warnings.append(f"{side} ({r.name}): the load generator was a bottleneck")
    return Comparability(
        comparable=not env and not work,
        environment=env,
        workload=work,
        notes=notes,
        warnings=warnings,
    )


def evaluate_gate(comparison: Comparison, gate: FailOn) -> GateOutcome:
    """Judge one ``--fail-on`` gate on the comparison's interval of its metric.

    It fails only when the whole interval lies beyond the threshold, passes when it lies wholly
    within, and is inconclusive when it straddles the threshold or there is no interval.

    Args:
        comparison: the comparison (its rows).
        gate: the gate.

    Returns:
        The outcome.
    """
    row = comparison.row(gate.metric)
    threshold = gate.threshold_ratio

    def outcome(verdict: cs.GateVerdict, reason: str) -> GateOutcome:
        return GateOutcome(
            gate=gate.text, metric=gate.metric, threshold_ratio=threshold,
            ci_low=row.ci_low if row else None, ci_high=row.ci_high if row else None,
            verdict=verdict, reason=reason,
        )  # fmt: skip

    if row is None:
        return outcome("inconclusive", f"{gate.metric} was not measured in both runs")
    if row.ci_low is None or row.ci_high is None:
        return outcome("inconclusive", f"no interval for {gate.metric}: {row.reason}")
    if row.ci_of == "difference":  # A is 0: any certain increase is an infinite ratio
        if row.ci_low == 0 == row.ci_high:
            return outcome("pass", f"{gate.metric} is 0 in both runs")
        bad = row.ci_low > 0 if row.better == "lower" else row.ci_high < 0
        if bad:
            return outcome(
                "fail", f"A is 0 and B - A lies in [{row.ci_low:.4g}, {row.ci_high:.4g}]"
            )
        return outcome("inconclusive", f"A is 0; the ratio is undefined ({row.reason})")
    interval = cs.ChangeInterval("ratio", row.ci_low, row.ci_high, row.min_detectable_pct)
    judged = cs.as_stats_interval(interval, row.n_a, row.n_b)
    verdict = stats.gate_verdict(judged, threshold, row.better)
    side = "below" if row.better == "higher" else "above"
    where = {
        "fail": f"wholly {side}",
        "pass": "on the good side of",
        "inconclusive": "straddling",
    }[verdict]
    reason = (
        f"B/A in [{row.ci_low:.4f}, {row.ci_high:.4f}] at {row.confidence:.0%}, {where} the "
        f"threshold {threshold:.4f}"
    )
    return outcome(verdict, reason)


def tidy_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """The comparison as tidy CSV rows: one per metric, then the plan's reference row.

    Returns:
        dicts with the same keys in the same order (units in the ``unit`` column).
    """
    out: list[dict[str, Any]] = []
    for r in comparison.rows:
        out.append(
            {
                "a_run": comparison.a.name,
                "b_run": comparison.b.name,
                **r.model_dump(exclude={"label"}),
            }
        )
    ref = comparison.reference
    if ref is not None:
        out.append(
            {
                "a_run": "plan_reference",
                "b_run": comparison.b.name,
                "metric": "throughput_vs_plan_baseline",
                "unit": "ops/s",
                "better": "higher",
                "a": ref.plan_baseline_ops,
                "b": ref.b_throughput_ops,
                "ratio": ref.ratio_to_plan_baseline,
                "change_pct": 100.0 * (ref.ratio_to_plan_baseline - 1.0),
                "ci_low": None,
                "ci_high": None,
                "ci_of": "ratio",
                "confidence": comparison.confidence,
                "method": ref.label,
                "p_value": None,
                "min_detectable_pct": None,
                "n_a": 0,
                "n_b": comparison.b.intervals,
                "verdict": f"target {ref.plan_target_ops:g} ops/s {ref.target}",
                "reason": ref.reason,
            }
        )
    return out
