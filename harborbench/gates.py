"""The plan's gates and alert levels, evaluated on a measured trial (SPEC section 8).

A gate whose figure could not be measured, or was measured on too little data (a memory slope
from a window under 5 minutes, a p95 from too few samples), is ``inconclusive``, never a pass.
"""

from __future__ import annotations

from typing import Literal

from harborbench.metrics.resources import growth_verdict, slope_verdict
from harborbench.profile.schema import Gates
from harborbench.result import GateResult, TrialResult

Verdict = Literal["pass", "fail", "inconclusive"]
Alert = Literal["ok", "warning", "critical"]


#: The key of a profile's ``gates`` section behind each gate's display name (``GateResult.name``).
GATE_KEYS: dict[str, str] = {
    "throughput": "throughput_min",
    "p95 latency": "p95_max",
    "error rate": "error_rate_max",
    "success rate": "success_rate_min",
    "memory growth": "memory_growth_max_pct",
    "memory slope": "memory_slope_max_mb_per_min",
}

#: The plan's thresholds (SPEC section 8), in the one model of gates: a profile's ``gates``.
PLAN_GATES = Gates.model_validate(
    {
        "throughput_min": 1000.0,
        "p95_max": "200ms",
        "error_rate_max": "1%",
        "memory_growth_max_pct": 20.0,
        "memory_slope_max_mb_per_min": 5.0,
        "success_rate_min": "95%",
        "cpu_efficiency_gain_min_pct": 30.0,
    }
)


def _throughput_alert(ops: float, threshold: float) -> Alert:
    """The plan's alert levels (warning < 800, critical < 600 against its 1000 ops/s gate),
    scaled to the gate in force: warning below 80% of it, critical below 60%."""
    if ops < 0.6 * threshold:
        return "critical"
    return "warning" if ops < 0.8 * threshold else "ok"


def evaluate_gates(trial: TrialResult, gates: Gates) -> list[GateResult]:
    """Evaluate each enabled gate on a trial (usually all trials merged).

    Args:
        trial: the measured figures.
        gates: the thresholds (a profile's ``gates`` section: ops/s, seconds, fractions,
            percent, MB/min); ``None`` entries are skipped, and so is the relative
            ``cpu_efficiency_gain_min_pct`` (judged by ``compare`` and ``rollback-check``).

    Returns:
        One :class:`GateResult` per enabled gate, with the plan's alert level where it has one
        (throughput below 80% of its gate warning, below 60% critical, as 800 and 600 are for
        the plan's 1000 ops/s; p95 > 500 ms warning; error rate > 5% critical; memory slope
        > 10 MB/min warning).
    """
    out: list[GateResult] = []
    completed = trial.successes + trial.failures
    if gates.throughput_min is not None:
        ops = trial.throughput_ops
        out.append(
            GateResult(
                name="throughput",
                threshold=f">= {gates.throughput_min:g} ops/s",
                observed=f"{ops:.1f} ops/s",
                verdict="pass" if ops >= gates.throughput_min else "fail",
                alert=_throughput_alert(ops, gates.throughput_min),
                detail="successful ops per second of the window",
            )
        )
    if gates.p95_max is not None:
        p95 = trial.service_time.p95_s
        if trial.response_time is not None:
            p95 = trial.response_time.p95_s  # the honest figure in open loop
        short = p95 is None or "p95" in (trial.response_time or trial.service_time).insufficient
        verdict: Verdict = (
            "inconclusive"
            if short
            else "pass"
            if p95 is not None and p95 < gates.p95_max
            else "fail"
        )
        out.append(
            GateResult(
                name="p95 latency",
                threshold=f"< {gates.p95_max * 1e3:g} ms",
                observed="n/a" if p95 is None else f"{p95 * 1e3:.1f} ms",
                verdict=verdict,
                alert="warning" if p95 is not None and p95 > 0.5 else "ok",
                detail=(
                    "response time (from the intended send)"
                    if trial.response_time
                    else "service time"
                )
                + (" — too few samples" if short else ""),
            )
        )
    if gates.error_rate_max is not None:
        rate = trial.error_rate
        out.append(
            GateResult(
                name="error rate",
                threshold=f"< {gates.error_rate_max:.2%}",
                observed="n/a" if rate is None else f"{rate:.2%}",
                verdict="inconclusive"
                if rate is None
                else ("pass" if rate < gates.error_rate_max else "fail"),
                alert="critical" if rate is not None and rate > 0.05 else "ok",
                detail=f"{trial.failures} failed of {completed} completed",
            )
        )
    if gates.success_rate_min is not None:
        ok = None if completed == 0 else trial.successes / completed
        out.append(
            GateResult(
                name="success rate",
                threshold=f">= {gates.success_rate_min:.0%}",
                observed="n/a" if ok is None else f"{ok:.2%}",
                verdict="inconclusive"
                if ok is None
                else ("pass" if ok >= gates.success_rate_min else "fail"),
                alert="ok",
                detail="successful / completed requests",
            )
        )
    if gates.goodput_min is not None:
        good = trial.goodput_ops
        out.append(
            GateResult(
                name="goodput",
                threshold=f">= {gates.goodput_min:g} ops/s",
                observed="n/a" if good is None else f"{good:.1f} ops/s",
                verdict="inconclusive"
                if good is None
                else ("pass" if good >= gates.goodput_min else "fail"),
                alert="ok",
                detail=f"{trial.slo_met} of {trial.successes} successes met every objective"
                if good is not None
                else "the run measured no goodput (no slo section)",
            )
        )
    mem = trial.memory
    if gates.memory_growth_max_pct is not None:
        out.append(
            GateResult(
                name="memory growth",
                threshold=f"< {gates.memory_growth_max_pct:g}%",
                observed=f"{mem.growth_pct:+.1f}%",
                verdict=growth_verdict(mem.growth_pct, gates.memory_growth_max_pct),
                alert="ok",
                detail="RSS growth over the window (fitted Theil-Sen line)",
            )
        )
    if gates.memory_slope_max_mb_per_min is not None:
        slope = mem.slope_mb_per_min
        verdict = slope_verdict(
            mem.slope_ci_low,
            mem.slope_ci_high,
            mem.trend_window_s,
            mem.samples,
            gates.memory_slope_max_mb_per_min,
        )
        out.append(
            GateResult(
                name="memory slope",
                threshold=f"< {gates.memory_slope_max_mb_per_min:g} MB/min",
                observed="n/a" if slope is None else f"{slope:+.2f} MB/min",
                verdict=verdict,
                alert="warning" if slope is not None and slope > 10 else "ok",
                detail=mem.reason,
            )
        )
    return out
