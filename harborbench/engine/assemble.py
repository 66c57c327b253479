"""Assemble a trial's result from what the recorder and the samplers collected.

Pure bookkeeping, no I/O: the one-second time series (with a row for every second, so a stall
shows as zeros), the CPU and memory figures, and the health of the load generator itself.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from harborbench.engine.recorder import Interval, Recorder
from harborbench.engine.request import RequestSender
from harborbench.engine.schedule import LoadPlan
from harborbench.engine.summaries import latency_summary, stream_summary
from harborbench.metrics.histogram import LatencyHistogram
from harborbench.metrics.looplag import LAG_WARN_S, LoopLagMonitor, loop_stalled
from harborbench.metrics.resources import ResourceSample, cpu_summary, memory_trend
from harborbench.result import (
    CpuFigures,
    HealthFigures,
    IntervalRow,
    MemoryFigures,
    ReplayFigures,
    TokenFigures,
    TrialResult,
)
from harborbench.units import NS_PER_S

if TYPE_CHECKING:
    from harborbench.profile import Profile

#: An achieved load below this share of the configured one is warned about. The event-loop and
#: send lag thresholds (``LAG_WARN_S``, ``LAG_SATURATED_S``) live in ``metrics.looplag``.
ACHIEVED_WARN_RATIO = 0.9


def interval_rows(
    intervals: list[Interval],
    samples: list[ResourceSample],
    plan: LoadPlan,
    window_s: float | None,
    *,
    slo: bool = False,
) -> list[IntervalRow]:
    """Close intervals into time-series rows (percentiles and encoded histograms per second).

    One scratch histogram is reused for every interval (see :class:`Interval` for why).
    With ``slo``, each row carries the successes that met every objective (goodput).
    """
    by_t = {round(s.t_s): s for s in samples}
    out: list[IntervalRow] = []
    scratch = _SCRATCH
    for iv in intervals:
        length_s = 1.0
        if window_s is not None and iv.index + 1 > window_s >= iv.index:
            length_s = max(window_s - iv.index, 1e-9)  # the last, partial second
        sample = by_t.get(iv.index + 1)
        scratch.reset()
        scratch.record_many_ns(iv.service_ns)
        p50, p95, p99 = _pct(scratch, 50), _pct(scratch, 95), _pct(scratch, 99)
        service_encoded = scratch.encode() if scratch.count else ""
        scratch.reset()
        scratch.record_many_ns(iv.response_ns)
        out.append(
            IntervalRow(
                t_s=float(iv.index),
                warmup=iv.warmup,
                successes=iv.successes,
                failures=iv.failures,
                throughput_ops=iv.successes / length_s,
                service_p50_s=p50,
                service_p95_s=p95,
                service_p99_s=p99,
                response_p99_s=_pct(scratch, 99),
                rss_bytes=sample.rss_bytes if sample else None,
                cpu_percent=sample.cpu_percent if sample else None,
                service_histogram=service_encoded,
                response_histogram=scratch.encode() if scratch.count else "",
                slo_met=iv.slo_met if slo else None,
            )
        )
    return out


#: The histogram every interval is binned into, one after the other (reused, never freed).
_SCRATCH = LatencyHistogram()


def _pct(h: LatencyHistogram, q: float) -> float | None:
    return h.percentile_ns(q) / NS_PER_S if h.count else None


def fill_gaps(
    rows: list[IntervalRow], first: int, last: int, samples: list[ResourceSample]
) -> list[IntervalRow]:
    """One row per second from ``first`` to ``last``: seconds with no completion get zeros.

    A stall of the target shows up as zero-throughput rows (with the RSS and CPU sampled at the
    end of that second) instead of a missing second.
    """
    have = {round(r.t_s): r for r in rows}
    by_t = {round(s.t_s): s for s in samples}
    out = []
    for t in range(first, last + 1):
        row = have.get(t)
        if row is None:
            sample = by_t.get(t + 1)
            row = IntervalRow(
                t_s=float(t), warmup=t < 0, successes=0, failures=0, throughput_ops=0.0,
                service_p50_s=None, service_p95_s=None, service_p99_s=None, response_p99_s=None,
                rss_bytes=sample.rss_bytes if sample else None,
                cpu_percent=sample.cpu_percent if sample else None,
                service_histogram="", response_histogram="",
            )  # fmt: skip
        out.append(row)
    return out


def trial_result(
    profile: Profile,
    plan: LoadPlan,
    rec: Recorder,
    sender: RequestSender,
    lag: LoopLagMonitor,
    samples: list[ResourceSample],
    rows: list[IntervalRow],
    *,
    index: int,
    started_at: str,
    window_s: float,
    in_flight_at_end: int,
    interrupted: bool,
    status: dict[str, Any],
    statistics: dict[str, Any],
    server_stats: dict[str, Any] | None,
    max_outstanding: int | None = None,
) -> TrialResult:
    """The figures of one trial from its recorder, sender, samplers and the client's counters.

    Resource samples are clipped to the window ``[0, window_s]`` and put in time order (a tick
    that came due late, after a stall, is appended after later ones).
    """
    completed = rec.successes + rec.failures
    per_s = 1.0 / window_s if window_s > 0 else 0.0
    window_samples = sorted((s for s in samples if 0 <= s.t_s <= window_s), key=lambda s: s.t_s)
    cpu = cpu_summary(window_samples, rec.successes)
    gates = profile.gates
    max_slope = gates.memory_slope_max_mb_per_min
    max_growth = gates.memory_growth_max_pct
    max_slope = 5.0 if max_slope is None else max_slope  # the plan's limits by default
    max_growth = 20.0 if max_growth is None else max_growth
    trend = memory_trend(
        np.array([s.t_s for s in window_samples], dtype=float),
        np.array([s.rss_bytes for s in window_samples], dtype=float),
        max_slope_mb_per_min=max_slope,
        max_growth_pct=max_growth,
    )
    rss = [s.rss_bytes for s in window_samples] or [0]
    service = latency_summary(rec.service)
    response = latency_summary(rec.response) if plan.kind == "open" else None
    health = health_figures(
        plan, rec, lag, cpu.saturated, cpu.cpu_percent_mean, window_s, interrupted,
        sent=completed + in_flight_at_end, busy_ns=sender.busy_ns,
        max_outstanding=max_outstanding, client_limit=client_limit(status),
        clamped=sum(h.clamped_count for h in (rec.service, rec.response)),
    )  # fmt: skip
    first_t = -math.ceil(plan.warmup_s)
    timeseries = fill_gaps(rows, first_t, max(math.ceil(window_s) - 1, first_t), samples)
    connections: dict[str, Any] = {}
    pool = statistics.get("connection_pool")  # a dict: TrialResult.client_statistics is one
    if isinstance(pool, dict):
        connections["client"] = pool
    if server_stats is not None:
        connections["server_connections_accepted"] = server_stats.get("connections_accepted")
        connections["server_requests_total"] = server_stats.get("requests_total")
        connections["server_max_in_flight"] = server_stats.get("max_in_flight")
    return TrialResult(
        index=index,
        started_at=started_at,
        window_s=window_s,
        successes=rec.successes,
        failures=rec.failures,
        failures_by_kind=dict(rec.failures_by_kind),
        failure_examples=dict(rec.failure_examples),
        in_flight_at_end=in_flight_at_end,
        warmup_requests=rec.warmup_requests,
        throughput_ops=rec.successes * per_s,
        attempted_ops=(completed + in_flight_at_end) * per_s,
        failed_ops=rec.failures * per_s,
        error_rate=rec.failures / completed if completed else None,
        service_time=service,
        response_time=response,
        stream=stream_summary(rec.stream, window_s) if profile.request.stream else None,
        cpu=CpuFigures(
            cpu_seconds=cpu.cpu_seconds,
            cpu_percent_mean=cpu.cpu_percent_mean,
            ops_per_cpu_second=cpu.ops_per_cpu_second,
            saturated=cpu.saturated,
        ),
        memory=MemoryFigures(
            rss_start_bytes=round(trend.level_start_bytes),
            rss_end_bytes=round(trend.level_end_bytes),
            rss_max_bytes=int(max(rss)),
            growth_pct=float(trend.growth_pct),
            slope_mb_per_min=_finite(trend.slope_mb_per_min),
            slope_ci_low=_finite(trend.slope_ci_low),
            slope_ci_high=_finite(trend.slope_ci_high),
            verdict=trend.verdict,
            reason=trend.reason,
            trend_window_s=trend.window_s,
            samples=trend.n_samples,
            max_growth_pct=max_growth,
            max_slope_mb_per_min=max_slope,
        ),
        health=health,
        connections=connections,
        client_status=status,
        client_statistics=statistics,
        server_stats=server_stats,
        timeseries=timeseries,
        interrupted=interrupted,
        goodput_ops=rec.slo_met * per_s if profile.slo is not None else None,
        slo_met=rec.slo_met if profile.slo is not None else None,
        tokens=TokenFigures(
            prompt_tokens=rec.tokens.prompt_tokens,
            completion_tokens=rec.tokens.completion_tokens,
            with_usage=rec.tokens.with_usage,
            without_usage=rec.tokens.without_usage,
            estimated_prompt_tokens=rec.tokens.estimated_prompt_tokens,
        ),
        replay=_replay(profile, plan, rec),
    )


def _replay(profile: Profile, plan: LoadPlan, rec: Recorder) -> ReplayFigures | None:
    """The trace replay's figures, or ``None`` when the profile replays no trace."""
    load = profile.load
    if load.trace is None:
        return None
    from harborbench.engine.trace import load_trace, replay_figures

    full = load_trace(load.trace, load.timestamp_unit)
    replayed = full.scaled(load.time_scale, load.limit)
    return replay_figures(load.trace, len(full), replayed, load.time_scale, plan, rec.sends)


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def client_limit(status: dict[str, Any]) -> tuple[str, int] | None:
    """The client setting that caps its requests on the wire, and its value.

    Traditional mode sends from a pool of ``max_concurrent_requests`` threads; the optimized
    mode holds at most ``max_concurrent_requests`` requests, and connections per origin up to
    the adaptive pool's ``connection_pool.max_size`` (it grows on demand up to it; reported as
    ``connection_pool_max_size``), or ``connection_pool_size`` with a fixed pool. The smaller one
    caps the concurrency the target can see.

    Returns:
        ``("client.<key>", value)``, or None when the client reports neither (a test double).
    """
    candidates: list[tuple[str, int]] = []
    mcr = status.get("max_concurrent_requests")
    if isinstance(mcr, int) and mcr > 0:
        candidates.append(("client.max_concurrent_requests", mcr))
    if status.get("mode") != "traditional":
        cap = status.get("connection_pool_max_size")
        if isinstance(cap, int) and cap > 0:
            candidates.append(("client.connection_pool.max_size", cap))
        else:
            size = status.get("connection_pool_size")
            if isinstance(size, int) and size > 0:
                candidates.append(("client.connection_pool_size", size))
    return min(candidates, key=lambda c: c[1]) if candidates else None


def configured_level(plan: LoadPlan) -> float:
    """The configured rate (ops/s) or concurrency averaged over the window, of the plan's stripe.

    A stage's level counts in proportion to its time inside the window.
    """
    if plan.window_s <= 0:
        return 0.0
    measured = [s for s in plan.steps if s.end_s > plan.warmup_s]
    return (
        sum(
            (min(s.end_s, plan.total_s) - max(s.start_s, plan.warmup_s))
            * plan.share(float((s.rate_ops if plan.kind == "open" else s.concurrency) or 0))
            for s in measured
        )
        / plan.window_s
    )


def health_figures(
    plan: LoadPlan,
    rec: Recorder,
    lag: LoopLagMonitor,
    cpu_saturated: bool,
    cpu_percent: float,
    window_s: float,
    interrupted: bool = False,
    *,
    sent: int,
    busy_ns: int,
    max_outstanding: int | None = None,
    client_limit: tuple[str, int] | None = None,
    clamped: int = 0,
) -> HealthFigures:
    """Judge whether the load generator itself limited the measurement (Locust-style check).

    Args:
        plan, rec, lag: the trial's plan, recorder and event-loop lag monitor.
        cpu_saturated, cpu_percent: the generator's CPU use over the window.
        window_s: the window's length, seconds.
        interrupted: an interrupted trial is not judged on achieved versus configured load.
        sent: requests sent inside the window (completed or still in flight); in open loop the
            achieved rate is ``sent / window``, so dropped and late arrivals lower it.
        busy_ns: time spent in the client call inside the window, summed over requests, ns;
            ``busy_ns / window`` is the mean number of requests in the client call (measured,
            not inferred): the achieved concurrency of a closed loop. Above ``client_limit``
            (either loop) the rest waited inside the client (``waiting_in_client_level``).
        max_outstanding: the open loop's backlog bound.
        client_limit: the client setting capping requests on the wire (:func:`client_limit`).
        clamped: latencies recorded outside the histogram range (clamped to its edge).

    The generator is flagged as saturated when its CPU was saturated, arrivals were dropped or
    reached late, sends fell behind the schedule (open loop), or its event loop lagged by more
    than ``LAG_SATURATED_S`` at p99.

    The binding limit is named in one place: when requests waited inside the client
    (``waiting_in_client_level > 0``) and most requests of the window succeeded, the warning
    about the load that was not carried (a closed loop's configured concurrency above the
    limit, an open loop's dropped arrivals or its achieved rate) names ``client_limit``'s
    setting and says to raise it; in open loop, raising ``load.max_outstanding`` would only
    lengthen the queue inside the client. When most requests failed or timed out (or none came
    back), they waited on the target: the dropped arrivals' warning says so, and no client
    setting is blamed.
    """
    warnings: list[str] = []
    configured = configured_level(plan)
    in_client = busy_ns / NS_PER_S / window_s if window_s > 0 else 0.0
    waiting = None if client_limit is None else max(in_client - client_limit[1], 0.0)
    if plan.kind == "open":
        achieved = sent / window_s if window_s > 0 else 0.0
        unit = "ops/s"
    else:
        achieved = in_client
        unit = "concurrency"
    # Most requests of the window failed or timed out (or none came back): they waited on the
    # target, so no client setting is to blame for the queue.
    target_failing = rec.failures >= rec.successes
    # The client setting that held requests back, in words (None: no request waited for it).
    binding: str | None = None
    if client_limit is not None and waiting is not None and waiting > 0 and not target_failing:
        binding = (
            f"{client_limit[0]} = {client_limit[1]} caps the requests on the wire: of "
            f"{in_client:.1f} requests in the client call on average, at least {waiting:.1f} "
            "waited inside the client"
        )
    loop_p99 = lag.histogram.percentile_ns(99) / NS_PER_S if lag.histogram.count else None
    loop_max = lag.histogram.max_ns / NS_PER_S if lag.histogram.count else None
    send_p99 = rec.send_lag.percentile_ns(99) / NS_PER_S if rec.send_lag.count else None
    send_max = rec.send_lag.max_ns / NS_PER_S if rec.send_lag.count else None
    if cpu_saturated:
        warnings.append(
            f"the load generator used {cpu_percent:.0f}% of a CPU core: its own limits may cap "
            "these figures; lower the load or compare at equal load"
        )
    stalled = loop_stalled(loop_p99)
    if loop_p99 is not None and stalled:
        warnings.append(
            f"the generator's event loop lagged {loop_p99 * 1e3:.0f} ms at p99 (max "
            f"{(loop_max or 0) * 1e3:.0f} ms): its own stalls are in every timing, so this run "
            "does not measure the target; find the blocking call or lower the load"
        )
    elif loop_p99 is not None and loop_p99 > LAG_WARN_S:
        warnings.append(
            f"event-loop lag p99 {loop_p99 * 1e3:.1f} ms: the generator was busy; timings include "
            "its delays"
        )
    if send_p99 is not None and send_p99 > LAG_WARN_S:
        warnings.append(
            f"sends fell behind the schedule (p99 {send_p99 * 1e3:.1f} ms): the response times "
            "from the intended send include this lag"
        )
    named = False  # whether a warning names the cause of the load not carried
    if rec.unsent and binding is not None and client_limit is not None:
        warnings.append(
            f"{rec.unsent} arrivals of the window were dropped ({max_outstanding} requests were "
            f"pending, load.max_outstanding): {binding}; raise {client_limit[0]} to carry the "
            "offered rate (a larger load.max_outstanding would only lengthen that queue); the "
            "dropped arrivals count against the success rate, and the latency figures leave "
            "them out"
        )
    elif rec.unsent and target_failing:
        named = True
        warnings.append(
            f"{rec.unsent} arrivals of the window were dropped ({max_outstanding} requests were "
            f"pending, load.max_outstanding): the target answered {rec.successes} requests of "
            f"the window successfully while {rec.failures} failed or timed out, so they waited "
            "on the target, not on a client setting; fix the target or lower the rate; the "
            "dropped arrivals count against the success rate"
        )
    elif rec.unsent:
        warnings.append(
            f"{rec.unsent} arrivals of the window were dropped ({max_outstanding} requests were "
            "pending, load.max_outstanding): the client could not keep up with the offered rate; "
            "the figures measure its capacity, the dropped arrivals count against the success "
            "rate, and the latency figures leave them out"
        )
    if rec.sent_late:
        warnings.append(
            f"{rec.sent_late} arrivals of the window were reached only after it closed (the "
            f"generator fell behind, max send lag {(send_max or 0) * 1e3:.0f} ms) and not sent"
        )
    if clamped:
        warnings.append(
            f"{clamped} latencies lay outside the histogram's range (1 us to 1 h) and were "
            "recorded at its edge"
        )
    if binding is not None and client_limit is not None:
        if plan.kind == "open":
            named = True
            if not rec.unsent:  # the dropped arrivals' warning names it already
                warnings.append(
                    f"{binding}; the response times from the intended send include that wait; "
                    f"raise {client_limit[0]} to carry {configured:.1f} ops/s without it"
                )
        elif configured > client_limit[1]:
            named = True
            warnings.append(
                f"{binding}; raise {client_limit[0]} to load the target with {configured:.0f}"
            )
    if (
        not named
        and not interrupted
        and configured > 0
        and achieved < ACHIEVED_WARN_RATIO * configured
    ):
        warnings.append(
            f"achieved {achieved:.1f} {unit} of the configured {configured:.1f}: the client or "
            "the target could not keep up with the offered load"
        )
    saturated = (
        cpu_saturated
        or stalled
        or rec.unsent > 0
        or rec.sent_late > 0
        or (plan.kind == "open" and send_p99 is not None and send_p99 > LAG_WARN_S)
    )
    return HealthFigures(
        loop_lag_p99_s=loop_p99,
        loop_lag_max_s=loop_max,
        send_lag_p99_s=send_p99,
        send_lag_max_s=send_max,
        configured_level=configured,
        achieved_level=achieved,
        level_unit=unit,  # type: ignore[arg-type]
        unsent=rec.unsent,
        generator_saturated=saturated,
        warnings=warnings,
        sent_late=rec.sent_late,
        max_outstanding=max_outstanding,
        clamped_latencies=clamped,
        client_limit_setting=client_limit[0] if client_limit else None,
        client_limit=client_limit[1] if client_limit else None,
        waiting_in_client_level=waiting,
    )
