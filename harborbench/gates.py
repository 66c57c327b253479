"""The plan's gates and alert levels, evaluated on a measured trial (SPEC section 8).

A gate whose figure could not be measured, or was measured on too little data (a memory slope
from a window under 5 minutes, a p95 from too few samples), is ``inconclusive``, never a pass.
A p95 from too few samples still fails when the samples over the limit show by themselves that
the p95 is over it (:func:`harborbench.metrics.histogram.shown_above`).

Arrivals an open loop dropped (``max_outstanding`` requests were pending: the client did not
keep up, k6's ``dropped_iterations``) are not successes. One rule, here, for ``run``,
``rollback-check`` and ``tune``: the success rate counts them in its denominator
(:func:`success_rate`), and an open loop is judged on the share of its planned arrivals it
dropped (:func:`dropped_pct`, gate ``dropped_max_pct``, :data:`DEFAULT_DROPPED_MAX_PCT` when the
profile sets none). Arrivals reached only after the window closed (``sent_late``) were never
offered to the client: they flag the generator as saturated (the measurement is not trusted)
instead of counting against the client.

A gate that failed while the generator's event loop stalled (``metrics.looplag.loop_stalled``:
lag above 100 ms at p99, on a busy CI machine for instance) is ``inconclusive`` when the stalls
alone can fail it (:data:`STALL_SENSITIVE`: they delay sends and responses), so a noisy machine
is not reported as a slower client. Its passes stand: the stalls only make those figures worse.

A trial with no measurement window (``window_s`` 0: the run was stopped during its warmup) has
measured nothing: every gate is ``inconclusive`` (:data:`NOT_MEASURED`), whatever its figure
(0 ops/s would fail a throughput gate, a flat RSS pass a memory gate).
"""

from __future__ import annotations

from typing import Literal

from harborbench.metrics.histogram import LatencyHistogram, shown_above
from harborbench.metrics.looplag import loop_stalled
from harborbench.metrics.resources import growth_verdict, slope_verdict
from harborbench.profile.schema import Gates
from harborbench.result import GateResult, TrialResult
from harborbench.units import NS_PER_S

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
    "dropped arrivals": "dropped_max_pct",
}

#: The dropped-arrivals gate of an open loop whose profile sets no ``dropped_max_pct``, percent
#: of the window's planned arrivals: the offered load must really have been offered (a burst
#: profile that tolerates more says so, as ``profiles/burst.yaml`` does with 10%).
DEFAULT_DROPPED_MAX_PCT = 1.0

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


#: The gates a stalled event loop can fail by itself (see the module's docstring). The error and
#: success rates are not among them: a stall of a few hundred milliseconds does not time out a
#: request, and a failed request is a failure whatever the generator's state.
STALL_SENSITIVE = frozenset({"throughput", "p95 latency", "goodput"})


#: The words that mark a gate left undecided by a stalled loop (in its ``detail``).
STALLED = "undecided: the load generator's event loop stalled"


#: The detail of every gate of a trial with no measurement window.
NOT_MEASURED = "not measured: the run was interrupted before its window"


def inconclusive_hint(
    results: list[GateResult],
    otherwise: str = "Run longer (--set duration=...) to gather enough samples.",
) -> str:
    """What to do about inconclusive gates (``run``, ``tune``'s confirmation): run again on a
    quiet machine when a stalled loop left one undecided, else ``otherwise``."""
    if any(r.verdict == "inconclusive" and STALLED in r.detail for r in results):
        return (
            "Run again with nothing else on this machine: the load generator's event loop "
            "stalled, so its own delays are in the figures (see the gates' details)."
        )
    return otherwise


def _throughput_alert(ops: float, threshold: float) -> Alert:
    """The plan's alert levels (warning < 800, critical < 600 against its 1000 ops/s gate),
    scaled to the gate in force: warning below 80% of it, critical below 60%."""
    if ops < 0.6 * threshold:
        return "critical"
    return "warning" if ops < 0.8 * threshold else "ok"


def success_rate(trial: TrialResult) -> float | None:
    """Successful / (successful + failed + dropped arrivals), a fraction; None with none of them.

    A dropped arrival (open loop: the backlog of ``max_outstanding`` requests was full) was
    offered to the client and not served: it is not a success. In closed loop nothing is
    dropped, so this is successful / completed requests.

    Args:
        trial: the measured figures (``health.unsent``: dropped arrivals of the window).
    """
    judged = trial.successes + trial.failures + trial.health.unsent
    return trial.successes / judged if judged else None


def dropped_pct(trial: TrialResult) -> float | None:
    """Percent of an open loop's planned arrivals of the window that were dropped.

    planned = sent in the window (successful, failed, in flight at its end) + dropped + reached
    late (SPEC section 6).

    Args:
        trial: the measured figures.

    Returns:
        100 x dropped / planned; None for a closed loop (it drops nothing) or with no arrival
        planned.
    """
    if trial.health.level_unit != "ops/s":
        return None
    h = trial.health
    planned = trial.successes + trial.failures + trial.in_flight_at_end + h.unsent + h.sent_late
    return 100.0 * h.unsent / planned if planned else None


def evaluate_gates(trial: TrialResult, gates: Gates) -> list[GateResult]:
    """Evaluate each enabled gate on a trial (usually all trials merged).

    Args:
        trial: the measured figures.
        gates: the thresholds (a profile's ``gates`` section: ops/s, seconds, fractions,
            percent, MB/min); ``None`` entries are skipped, and so is the relative
            ``cpu_efficiency_gain_min_pct`` (judged by ``compare`` and ``rollback-check``).
            An open loop's trial is always judged on its dropped arrivals: ``dropped_max_pct``,
            or :data:`DEFAULT_DROPPED_MAX_PCT` when it is ``None``.

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
        summary = trial.response_time or trial.service_time
        short = p95 is None or "p95" in summary.insufficient
        shown = False
        why_short = " — too few samples"
        if short and summary.count:
            above = LatencyHistogram.decode(summary.histogram).count_above_ns(
                round(gates.p95_max * NS_PER_S)
            )
            shown = shown_above(95.0, summary.count, above)
            if shown:
                why_short = (
                    f" — too few samples for a p95, but {above} of {summary.count} over the "
                    "limit show it is over (exact binomial test, 5%)"
                )
        verdict: Verdict = (
            "fail"
            if shown
            else "inconclusive"
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
                + (why_short if short else ""),
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
    dropped = trial.health.unsent
    if gates.success_rate_min is not None:
        ok = success_rate(trial)
        out.append(
            GateResult(
                name="success rate",
                threshold=f">= {gates.success_rate_min:.0%}",
                observed="n/a" if ok is None else f"{ok:.2%}",
                verdict="inconclusive"
                if ok is None
                else ("pass" if ok >= gates.success_rate_min else "fail"),
                alert="ok",
                detail=f"successful / (completed requests + dropped arrivals): {trial.successes} "
                f"of {completed + dropped}, {dropped} dropped"
                if dropped
                else "successful / completed requests",
            )
        )
    pct = dropped_pct(trial)
    if pct is None and gates.dropped_max_pct is not None:
        out.append(
            GateResult(
                name="dropped arrivals",
                threshold=f"<= {gates.dropped_max_pct:g}%",
                observed="0 dropped",
                verdict="pass",
                alert="ok",
                detail="a closed loop drops no arrival (each worker sends when its last ends)",
            )
        )
    elif pct is not None:
        limit = gates.dropped_max_pct
        default = limit is None
        limit = DEFAULT_DROPPED_MAX_PCT if limit is None else limit
        out.append(
            GateResult(
                name="dropped arrivals",
                threshold=f"<= {limit:g}%" + (" (open-loop default)" if default else ""),
                observed=f"{pct:.2f}%",
                verdict="pass" if pct <= limit else "fail",
                alert="ok",
                detail=f"{dropped} of the window's planned arrivals not sent: "
                "load.max_outstanding requests were pending",
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
    if trial.window_s <= 0:
        return [
            r.model_copy(update={"verdict": "inconclusive", "alert": "ok", "detail": NOT_MEASURED})
            for r in out
        ]
    return _undecided_by_stall(out, trial)


def _undecided_by_stall(results: list[GateResult], trial: TrialResult) -> list[GateResult]:
    """The gate results with each failed :data:`STALL_SENSITIVE` gate made inconclusive when
    the trial's event loop stalled (its detail says so and how to get a verdict)."""
    lag = trial.health.loop_lag_p99_s
    if lag is None or not loop_stalled(lag):
        return results
    why = (
        f" — {STALLED} ({lag * 1e3:.0f} ms lag at p99), so its stalls are in this figure; run "
        "again with nothing else on the machine"
    )
    return [
        r.model_copy(update={"verdict": "inconclusive", "detail": r.detail + why})
        if r.verdict == "fail" and r.name in STALL_SENSITIVE
        else r
        for r in results
    ]
