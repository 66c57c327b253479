"""Turn histograms into result figures, and merge trials into one total.

Percentiles of several trials come from the merged histograms (exact), never from averaging
the trials' percentiles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from harborbench.engine.recorder import StreamStats
from harborbench.metrics.histogram import LatencyHistogram, is_insufficient
from harborbench.metrics.resources import combined_verdict, growth_verdict, slope_verdict
from harborbench.result import (
    CpuFigures,
    HealthFigures,
    LatencySummary,
    MemoryFigures,
    StreamSummary,
    TokenFigures,
    TrialResult,
    token_source,
)
from harborbench.units import BYTES_PER_MB, NS_PER_S

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9))


def latency_summary(h: LatencyHistogram) -> LatencySummary:
    """Percentiles (s), max, mean and sample count of a histogram, with insufficient flags."""
    n = h.count
    values: dict[str, float | None] = {}
    insufficient = []
    for label, q in PERCENTILES:
        values[f"{label}_s"] = h.percentile_ns(q) / NS_PER_S if n else None
        if is_insufficient(q, n):
            insufficient.append(label)
    return LatencySummary(
        count=n,
        p50_s=values["p50_s"],
        p90_s=values["p90_s"],
        p95_s=values["p95_s"],
        p99_s=values["p99_s"],
        p999_s=values["p999_s"],
        max_s=h.max_ns / NS_PER_S if n else None,
        mean_s=h.mean_ns / NS_PER_S if n else None,
        insufficient=insufficient,
        histogram=h.encode() if n else "",
        clamped_below=h.clamped_below_count,
        clamped_above=h.clamped_above_count,
    )


def decode(summary: LatencySummary) -> LatencyHistogram:
    """The histogram behind a summary, clamped counts included (empty if it had no samples)."""
    if not summary.histogram:
        return LatencyHistogram()
    return LatencyHistogram.decode(
        summary.histogram,
        clamped_below=summary.clamped_below,
        clamped_above=summary.clamped_above,
    )


def merged_summary(summaries: list[LatencySummary]) -> LatencySummary:
    """Summary of the merged histograms of several summaries (exact, never averaged)."""
    total = LatencyHistogram()
    for s in summaries:
        if s.histogram:
            total.merge(decode(s))
    return latency_summary(total)


def stream_summary(stats: StreamStats, window_s: float) -> StreamSummary:
    """Streaming figures of one trial."""
    return StreamSummary(
        ttft=latency_summary(stats.ttft),
        icl=latency_summary(stats.icl),
        itl=latency_summary(stats.itl),
        tpot=latency_summary(stats.tpot),
        output_tokens=stats.output_tokens,
        output_tokens_per_s=stats.output_tokens / window_s if window_s > 0 else 0.0,
        output_chunks=stats.output_chunks,
        token_source=token_source(stats.tokens_from_usage, stats.tokens_from_chunk_count),
        tokens_from_usage=stats.tokens_from_usage,
        tokens_from_chunk_count=stats.tokens_from_chunk_count,
        per_chunk_tokens_known=stats.per_chunk_tokens_known,
        done_marker_missing=stats.done_marker_missing,
    )


def merged_stream_summary(streams: list[StreamSummary], window_s: float) -> StreamSummary:
    """Streaming figures of several trials: histograms merged, counts summed."""
    tokens = sum(s.output_tokens for s in streams)
    from_usage = sum(s.tokens_from_usage for s in streams)
    from_chunks = sum(s.tokens_from_chunk_count for s in streams)
    return StreamSummary(
        ttft=merged_summary([s.ttft for s in streams]),
        icl=merged_summary([s.icl for s in streams]),
        itl=merged_summary([s.itl for s in streams]),
        tpot=merged_summary([s.tpot for s in streams]),
        output_tokens=tokens,
        output_tokens_per_s=tokens / window_s if window_s else 0.0,
        output_chunks=sum(s.output_chunks for s in streams),
        token_source=token_source(from_usage, from_chunks),
        tokens_from_usage=from_usage,
        tokens_from_chunk_count=from_chunks,
        per_chunk_tokens_known=sum(s.per_chunk_tokens_known for s in streams),
        done_marker_missing=sum(s.done_marker_missing for s in streams),
    )


def merge_trials(trials: list[TrialResult]) -> TrialResult:
    """All trials as one: counts and CPU seconds summed, windows added, histograms merged.

    Rates are recomputed from the sums (total successes / total window, goodput likewise); RSS
    start and end are the first trial's start and the last trial's end, and growth is the sum
    of the trials' growths inside their windows (:func:`_merged_memory`); the memory slope and
    verdict and the event-loop and send lags are the worst trial's; the time series is the
    first trial's.

    Args:
        trials: the run's trials, in order (alone, or interleaved with another run's).
    """
    if len(trials) == 1:
        return trials[0]
    window_s = sum(t.window_s for t in trials)
    successes = sum(t.successes for t in trials)
    failures = sum(t.failures for t in trials)
    completed = successes + failures
    kinds: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for t in trials:
        kinds.update(t.failures_by_kind)
        for k, v in t.failure_examples.items():
            examples.setdefault(k, v)
    cpu_s = sum(t.cpu.cpu_seconds for t in trials)
    stream = None
    streams = [t.stream for t in trials if t.stream is not None]
    if streams:
        stream = merged_stream_summary(streams, window_s)
    responses = [t.response_time for t in trials if t.response_time is not None]
    memory = _merged_memory(trials)
    health = trials[0].health
    warnings = sorted({w for t in trials for w in t.health.warnings})
    worst = _worst  # lags of the worst trial: a stall in any trial must stay visible
    merged_health = HealthFigures(
        **{
            **health.model_dump(),
            "loop_lag_p99_s": worst(t.health.loop_lag_p99_s for t in trials),
            "loop_lag_max_s": worst(t.health.loop_lag_max_s for t in trials),
            "send_lag_p99_s": worst(t.health.send_lag_p99_s for t in trials),
            "send_lag_max_s": worst(t.health.send_lag_max_s for t in trials),
            "warnings": warnings,
            "generator_saturated": any(t.health.generator_saturated for t in trials),
            "unsent": sum(t.health.unsent for t in trials),
            "sent_late": sum(t.health.sent_late for t in trials),
            "clamped_latencies": sum(t.health.clamped_latencies for t in trials),
            "achieved_level": sum(t.health.achieved_level * t.window_s for t in trials) / window_s
            if window_s
            else 0.0,
        }
    )
    first: dict[str, Any] = trials[0].model_dump()
    first.update(
        index=-1,
        window_s=window_s,
        successes=successes,
        failures=failures,
        failures_by_kind=dict(kinds),
        failure_examples=examples,
        in_flight_at_end=sum(t.in_flight_at_end for t in trials),
        warmup_requests=sum(t.warmup_requests for t in trials),
        throughput_ops=successes / window_s if window_s else 0.0,
        attempted_ops=sum(t.attempted_ops * t.window_s for t in trials) / window_s
        if window_s
        else 0.0,
        failed_ops=failures / window_s if window_s else 0.0,
        error_rate=failures / completed if completed else None,
        service_time=merged_summary([t.service_time for t in trials]),
        response_time=merged_summary(responses) if responses else None,
        stream=stream,
        cpu=CpuFigures(
            cpu_seconds=cpu_s,
            cpu_percent_mean=sum(t.cpu.cpu_percent_mean * t.window_s for t in trials) / window_s
            if window_s
            else 0.0,
            ops_per_cpu_second=successes / cpu_s if cpu_s > 0 else None,
            saturated=any(t.cpu.saturated for t in trials),
        ),
        memory=memory,
        health=merged_health,
        interrupted=any(t.interrupted for t in trials),
        **_merged_workload(trials, window_s),
    )
    return TrialResult.model_validate(first)


def _merged_workload(trials: list[TrialResult], window_s: float) -> dict[str, Any]:
    """Goodput, tokens and trace replay of several trials: counts summed, lags merged."""
    out: dict[str, Any] = {}
    met = [t.slo_met for t in trials if t.slo_met is not None]
    if met:
        out["slo_met"] = sum(met)
        out["goodput_ops"] = sum(met) / window_s if window_s else 0.0
    tokens = [t.tokens for t in trials if t.tokens is not None]
    if tokens:
        fields = ("prompt_tokens", "completion_tokens", "with_usage", "without_usage",
                  "estimated_prompt_tokens")  # fmt: skip
        out["tokens"] = TokenFigures(**{f: sum(getattr(x, f) for x in tokens) for f in fields})
    replays = [t.replay for t in trials if t.replay is not None]
    if replays:
        first = replays[0]
        spans = [r.achieved_span_s for r in replays if r.achieved_span_s is not None]
        out["replay"] = first.model_copy(
            update={
                "planned_in_window": sum(r.planned_in_window for r in replays),
                "sent_in_window": sum(r.sent_in_window for r in replays),
                # the worst trial's span difference stays visible through the merged send lag
                "achieved_span_s": max(spans) if spans else None,
                "send_lag": merged_summary([r.send_lag for r in replays]),
            }
        )
    return out


def _worst(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


_VERDICT_RANK = {"pass": 0, "inconclusive": 1, "fail": 2}


def _merged_memory(trials: list[TrialResult]) -> MemoryFigures:
    """Memory over the whole run, judged again by the one rule.

    Growth is measured inside the windows only: the growth of each trial (its fitted end minus
    its fitted start) summed, in percent of the first trial's start. What RSS does between two
    trials is harborbench's own work (writing the results, importing pandas for the CSV files:
    about 35 MB once), or another run's trials when the runs are interleaved (``compare --run``,
    rollback-check), never the load; a leak under load shows in every window and adds up.
    ``rss_start_bytes`` and ``rss_end_bytes`` are the first trial's start and the last trial's
    end (the reason says how much changed between trials); the slope is the trial's with the
    worst slope verdict.
    """
    first, last = trials[0].memory, trials[-1].memory
    start = first.rss_start_bytes
    in_windows = sum(t.memory.rss_end_bytes - t.memory.rss_start_bytes for t in trials)
    between = last.rss_end_bytes - start - in_windows
    growth = 100.0 * in_windows / start if start else 0.0
    worst = max(
        (t.memory for t in trials),
        key=lambda m: (
            _VERDICT_RANK[
                slope_verdict(
                    m.slope_ci_low, m.slope_ci_high, m.trend_window_s, m.samples,
                    m.max_slope_mb_per_min,
                )
            ],
            m.slope_ci_high or 0.0,
        ),
    )  # fmt: skip
    g = growth_verdict(growth, first.max_growth_pct)
    s = slope_verdict(
        worst.slope_ci_low, worst.slope_ci_high, worst.trend_window_s, worst.samples,
        worst.max_slope_mb_per_min,
    )  # fmt: skip
    return worst.model_copy(
        update={
            "rss_start_bytes": start,
            "rss_end_bytes": last.rss_end_bytes,
            "rss_max_bytes": max(t.memory.rss_max_bytes for t in trials),
            "growth_pct": growth,
            "verdict": combined_verdict(g, s),
            "reason": f"over {len(trials)} trials RSS grew {growth:.2f}% inside their windows "
            f"(fitted lines; {between / BYTES_PER_MB:+.1f} MB between trials, not load, not "
            f"counted); slope of the worst trial: {worst.reason}",
        }
    )
