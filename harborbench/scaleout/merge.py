"""Merge the shards of one trial into one trial result, exactly (docs: shared/SCALEOUT.md).

All shards of a trial measured one common window (they started on one ``t0`` and their clocks
are one CLOCK_MONOTONIC on one host, or offset-corrected across hosts), so:

- latencies (service, response, TTFT, ITL, TPOT): the shards' HDR histograms are added bucket by
  bucket and percentiles are read from the merge; the merge is the histogram of the pooled
  samples, counter for counter. Percentiles are never averaged;
- counts (successes, failures by kind, in flight, warmup, unsent, tokens): summed;
- rates: summed count / the common window (never averaged, never over different windows);
- per-second rows: matched by second, counts summed, percentiles from merged histograms;
- CPU: seconds summed, efficiency = summed successes / summed CPU seconds; memory: the summed
  RSS series, its slope fitted here; health: the worst shard, warnings prefixed ``shard i:``;
- the configured level is the global plan's, never a sum over the shards that survived.

:func:`check_invariants` then checks that the merge adds up.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from harborbench.engine.assemble import ACHIEVED_WARN_RATIO, configured_level
from harborbench.engine.schedule import LoadPlan, arrival_offsets_ns
from harborbench.engine.summaries import merged_stream_summary, merged_summary
from harborbench.metrics.histogram import LatencyHistogram
from harborbench.metrics.resources import memory_trend
from harborbench.result import (
    CpuFigures,
    HealthFigures,
    IntervalRow,
    MemoryFigures,
    TrialResult,
)
from harborbench.units import NS_PER_S

if TYPE_CHECKING:
    from harborbench.profile import Gates


def merge_rows(rows_by_shard: list[list[IntervalRow]]) -> list[IntervalRow]:
    """Per-second rows of several shards, matched by second (``t_s``), as one series.

    Counts and ops/s are summed (all shards' seconds are the same instants); percentiles come
    from the merged per-second histograms; RSS and CPU percent are summed over the shards that
    sampled that second (``None`` if none did).

    Args:
        rows_by_shard: each shard's rows, any order.

    Returns:
        One row per second present in any shard, in time order.
    """
    by_t: dict[float, list[IntervalRow]] = defaultdict(list)
    for rows in rows_by_shard:
        for row in rows:
            by_t[row.t_s].append(row)
    return [_merge_second(t, by_t[t]) for t in sorted(by_t)]


def _merge_second(t_s: float, rows: list[IntervalRow]) -> IntervalRow:
    service = _merged_histogram(r.service_histogram for r in rows)
    response = _merged_histogram(r.response_histogram for r in rows)
    rss = [r.rss_bytes for r in rows if r.rss_bytes is not None]
    cpu = [r.cpu_percent for r in rows if r.cpu_percent is not None]
    return IntervalRow(
        t_s=t_s,
        warmup=rows[0].warmup,
        successes=sum(r.successes for r in rows),
        failures=sum(r.failures for r in rows),
        throughput_ops=sum(r.throughput_ops for r in rows),
        service_p50_s=_pct(service, 50),
        service_p95_s=_pct(service, 95),
        service_p99_s=_pct(service, 99),
        response_p99_s=_pct(response, 99),
        rss_bytes=sum(rss) if rss else None,
        cpu_percent=sum(cpu) if cpu else None,
        service_histogram=service.encode() if service.count else "",
        response_histogram=response.encode() if response.count else "",
    )


def _merged_histogram(encoded: Any) -> LatencyHistogram:
    total = LatencyHistogram()
    for e in encoded:
        if e:
            total.merge(LatencyHistogram.decode(e))
    return total


def _pct(h: LatencyHistogram, q: float) -> float | None:
    return h.percentile_ns(q) / NS_PER_S if h.count else None


def sum_numbers(trees: list[dict[str, Any]]) -> dict[str, Any]:
    """Numbers summed leaf by leaf over several dicts (N shards are N clients); other values
    (text, booleans, lists) are the first dict's."""
    if not trees:
        return {}
    out: dict[str, Any] = {}
    for key, first in trees[0].items():
        values = [t.get(key) for t in trees]
        if isinstance(first, dict):
            out[key] = sum_numbers([v for v in values if isinstance(v, dict)])
        elif isinstance(first, int | float) and not isinstance(first, bool):
            nums = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
            out[key] = sum(nums)
        else:
            out[key] = first
    return out


def merge_shards(
    shards: list[TrialResult], plan: LoadPlan, gates: Gates, indices: list[int] | None = None
) -> TrialResult:
    """The trial results of several shards over one common window as one trial result.

    Args:
        shards: one trial of each shard (at least one), all for the same trial index.
        plan: the *global* plan (``stripe == (0, 1)``): its configured level is the run's.
        gates: the profile's gates (memory slope and growth limits for the summed RSS trend).
        indices: the shard number of each entry, for warning prefixes (default 0..n-1).

    Returns:
        The merged trial (``index`` that of the shards' trial).

    Raises:
        ValueError: no shards.
    """
    if not shards:
        raise ValueError("nothing to merge: no shard results")
    idx = indices if indices is not None else list(range(len(shards)))
    window_s = max(t.window_s for t in shards)
    successes = sum(t.successes for t in shards)
    failures = sum(t.failures for t in shards)
    completed = successes + failures
    in_flight = sum(t.in_flight_at_end for t in shards)
    kinds: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for t in shards:
        kinds.update(t.failures_by_kind)
        for k, v in t.failure_examples.items():
            examples.setdefault(k, v)
    per_s = 1.0 / window_s if window_s > 0 else 0.0
    cpu_s = sum(t.cpu.cpu_seconds for t in shards)
    responses = [t.response_time for t in shards if t.response_time is not None]
    streams = [t.stream for t in shards if t.stream is not None]
    stream = merged_stream_summary(streams, window_s) if streams else None
    timeseries = merge_rows([t.timeseries for t in shards])
    health = _merged_health(shards, idx, plan, window_s)
    merged: dict[str, Any] = shards[0].model_dump()
    merged.update(
        started_at=min(t.started_at for t in shards),
        window_s=window_s,
        successes=successes,
        failures=failures,
        failures_by_kind=dict(kinds),
        failure_examples=examples,
        in_flight_at_end=in_flight,
        warmup_requests=sum(t.warmup_requests for t in shards),
        throughput_ops=successes * per_s,
        attempted_ops=sum(t.attempted_ops * t.window_s for t in shards) * per_s,
        failed_ops=failures * per_s,
        error_rate=failures / completed if completed else None,
        service_time=merged_summary([t.service_time for t in shards]),
        response_time=merged_summary(responses) if responses else None,
        stream=stream,
        cpu=CpuFigures(
            cpu_seconds=cpu_s,
            cpu_percent_mean=sum(t.cpu.cpu_percent_mean for t in shards),
            ops_per_cpu_second=successes / cpu_s if cpu_s > 0 else None,
            saturated=any(t.cpu.saturated for t in shards),
        ),
        memory=_merged_memory(shards, timeseries, gates),
        health=health,
        connections={"client": sum_numbers([t.connections.get("client") or {} for t in shards])},
        client_statistics=sum_numbers([t.client_statistics for t in shards]),
        server_stats=None,
        timeseries=timeseries,
        interrupted=any(t.interrupted for t in shards),
    )
    return TrialResult.model_validate(merged)


def _worst(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _merged_health(
    shards: list[TrialResult], idx: list[int], plan: LoadPlan, window_s: float
) -> HealthFigures:
    hs = [t.health for t in shards]
    configured = configured_level(plan)
    achieved = sum(h.achieved_level for h in hs)
    warnings = [f"shard {i}: {w}" for i, h in zip(idx, hs, strict=True) for w in h.warnings]
    interrupted = any(t.interrupted for t in shards)
    if not interrupted and configured > 0 and achieved < ACHIEVED_WARN_RATIO * configured:
        warnings.append(
            f"achieved {achieved:.1f} {hs[0].level_unit} of the configured {configured:.1f} over "
            f"{len(shards)} shard(s): the client or the target could not keep up"
        )
    return HealthFigures(
        loop_lag_p99_s=_worst([h.loop_lag_p99_s for h in hs]),
        loop_lag_max_s=_worst([h.loop_lag_max_s for h in hs]),
        send_lag_p99_s=_worst([h.send_lag_p99_s for h in hs]),
        send_lag_max_s=_worst([h.send_lag_max_s for h in hs]),
        configured_level=configured,
        achieved_level=achieved,
        level_unit=hs[0].level_unit,
        unsent=sum(h.unsent for h in hs),
        generator_saturated=any(h.generator_saturated for h in hs),
        warnings=warnings,
        sent_late=sum(h.sent_late for h in hs),
        max_outstanding=_sum_or_none([h.max_outstanding for h in hs]),
        clamped_latencies=sum(h.clamped_latencies for h in hs),
        client_limit_setting=hs[0].client_limit_setting,
        client_limit=_sum_or_none([h.client_limit for h in hs]),  # N shards are N clients
        waiting_in_client_level=_sum_or_none([h.waiting_in_client_level for h in hs]),
    )


def _sum_or_none(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _merged_memory(
    shards: list[TrialResult], timeseries: list[IntervalRow], gates: Gates
) -> MemoryFigures:
    """RSS of all shards summed; the slope of the summed series is fitted here (Theil-Sen)."""
    window = [r for r in timeseries if not r.warmup and r.rss_bytes is not None]
    max_slope = gates.memory_slope_max_mb_per_min or 5.0
    max_growth = gates.memory_growth_max_pct or 20.0
    trend = memory_trend(
        np.array([r.t_s + 1 for r in window], dtype=float),
        np.array([r.rss_bytes for r in window], dtype=float),
        max_slope_mb_per_min=max_slope,
        max_growth_pct=max_growth,
    )

    def finite(x: float | None) -> float | None:
        return None if x is None or not np.isfinite(x) else float(x)

    # The fitted line of the summed series; the sum of the shards' own lines if it has none.
    start = finite(trend.level_start_bytes)
    end = finite(trend.level_end_bytes)
    if start is None or end is None:
        start = float(sum(t.memory.rss_start_bytes for t in shards))
        end = float(sum(t.memory.rss_end_bytes for t in shards))
    growth = finite(trend.growth_pct)
    return MemoryFigures(
        rss_start_bytes=round(start),
        rss_end_bytes=round(end),
        rss_max_bytes=max([round(start), round(end), *(int(r.rss_bytes or 0) for r in window)]),
        growth_pct=growth if growth is not None else 0.0,
        slope_mb_per_min=finite(trend.slope_mb_per_min),
        slope_ci_low=finite(trend.slope_ci_low),
        slope_ci_high=finite(trend.slope_ci_high),
        verdict=trend.verdict,
        reason=f"RSS of {len(shards)} shard(s) summed: {trend.reason}",
        trend_window_s=trend.window_s,
        samples=trend.n_samples,
        max_growth_pct=max_growth,
        max_slope_mb_per_min=max_slope,
    )


def planned_in_window(plan: LoadPlan) -> int:
    """Open loop: the global arrivals intended inside the measurement window."""
    lo, hi = round(plan.warmup_s * NS_PER_S), round(plan.total_s * NS_PER_S)
    return sum(1 for k in arrival_offsets_ns(plan) if lo <= k < hi)


def sent_late(t: TrialResult) -> int:
    """Arrivals of the window the generator reached only after it closed."""
    return t.health.sent_late


def check_invariants(
    shards: list[TrialResult],
    merged: TrialResult,
    plan: LoadPlan,
    server_requests_total: int | None = None,
) -> list[str]:
    """What does not add up in a merge; an empty list when everything does.

    Checks (docs: SCALEOUT.md, "Merge rules"): summed shard successes = merged successes = sum
    of the window's per-second rows; the merged service histogram holds every success; open
    loop, complete runs: planned = sent in window + unsent + sent late; with the built-in mock,
    client total - in flight <= server total <= client total + sent late, where the client total
    is every request the shards sent (warmup, completed, in flight).

    Args:
        shards: the shards' results for one trial; merged: their merge (:func:`merge_shards`).
        plan: the global plan.
        server_requests_total: the mock's request counter over the trial, or ``None``.

    Returns:
        One line per broken invariant.
    """
    problems: list[str] = []
    summed = sum(t.successes for t in shards)
    rows = sum(r.successes for r in merged.timeseries if not r.warmup)
    if not summed == merged.successes == rows:
        problems.append(
            f"successes do not add up: shards {summed}, merged {merged.successes}, "
            f"per-second rows {rows}"
        )
    if merged.service_time.count != merged.successes:
        problems.append(
            f"the merged service-time histogram holds {merged.service_time.count} samples for "
            f"{merged.successes} successes"
        )
    late = sum(sent_late(t) for t in shards)
    if plan.kind == "open" and not merged.interrupted:
        planned = planned_in_window(plan)
        sent = merged.successes + merged.failures + merged.in_flight_at_end
        if planned != sent + merged.health.unsent + late:
            problems.append(
                f"open-loop arrivals do not add up: planned {planned} != sent in window {sent} "
                f"+ unsent {merged.health.unsent} + sent late {late}"
            )
    if server_requests_total is not None:
        client = merged.warmup_requests + merged.successes + merged.failures
        client += merged.in_flight_at_end
        lo, hi = client - merged.in_flight_at_end, client + late
        if not lo <= server_requests_total <= hi:
            problems.append(
                f"the server counted {server_requests_total} requests, outside the client's "
                f"[{lo}, {hi}] (completed .. sent)"
            )
    return problems
