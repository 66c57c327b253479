"""Synthetic shard results with known samples, for merge and coordinator tests."""

from __future__ import annotations

from harborbench.engine.summaries import latency_summary
from harborbench.metrics.histogram import LatencyHistogram
from harborbench.result import (
    CpuFigures,
    HealthFigures,
    IntervalRow,
    MemoryFigures,
    TrialResult,
)


def hist(values: list[int]) -> LatencyHistogram:
    h = LatencyHistogram()
    h.record_many_ns(values)
    return h


def row(t: int, values: list[int], rss: int) -> IntervalRow:
    h = hist(values)
    return IntervalRow(
        t_s=float(t), warmup=False, successes=len(values), failures=0,
        throughput_ops=float(len(values)), service_p50_s=None, service_p95_s=None,
        service_p99_s=None, response_p99_s=None, rss_bytes=rss, cpu_percent=40.0,
        service_histogram=h.encode() if values else "", response_histogram="",
    )  # fmt: skip


def synthetic_shard(per_second: list[list[int]], *, cpu_s: float = 1.0) -> TrialResult:
    """A shard's trial whose successes have the given service times (ns) in seconds 0, 1, ..."""
    values = [v for second in per_second for v in second]
    rows = [row(t, s, 100_000_000 + t) for t, s in enumerate(per_second)]
    return TrialResult(
        index=0, started_at="2026-01-01T00:00:00+00:00", window_s=float(len(per_second)),
        successes=len(values), failures=1, failures_by_kind={"http_500": 1},
        failure_examples={"http_500": "boom"}, in_flight_at_end=2, warmup_requests=3,
        throughput_ops=len(values) / len(per_second), attempted_ops=0.0, failed_ops=0.0,
        error_rate=None, service_time=latency_summary(hist(values)), response_time=None,
        stream=None,
        cpu=CpuFigures(cpu_seconds=cpu_s, cpu_percent_mean=50.0, ops_per_cpu_second=None,
                       saturated=False),
        memory=MemoryFigures(rss_start_bytes=100_000_000, rss_end_bytes=100_000_010,
                             rss_max_bytes=100_000_010, growth_pct=0.0, slope_mb_per_min=None,
                             slope_ci_low=None, slope_ci_high=None, verdict="inconclusive",
                             reason="short"),
        health=HealthFigures(loop_lag_p99_s=0.001, loop_lag_max_s=0.002, send_lag_p99_s=None,
                             send_lag_max_s=None, configured_level=2.0, achieved_level=2.0,
                             level_unit="concurrency", unsent=0, generator_saturated=False,
                             warnings=["a warning"]),
        connections={"client": {"connections_created": 2, "connections_reused": 5}},
        client_status={"mode": "optimized"}, client_statistics={"x": {"retries": 1}},
        server_stats=None, timeseries=rows, interrupted=False,
    )  # fmt: skip
