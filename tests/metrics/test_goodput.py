"""Goodput (issue 17): only successes meeting every objective count; limits are inclusive."""

from __future__ import annotations

import pytest

from harborbench.engine.recorder import Recorder, StreamSample
from harborbench.gates import evaluate_gates
from harborbench.metrics.goodput import SloLimits, meets_slo, request_tpot_ns
from harborbench.profile import Gates

MS = 1_000_000
S = 1_000_000_000


def test_request_tpot_divides_the_decode_time_by_the_tokens_after_the_first_chunk() -> None:
    assert request_tpot_ns(end_ns=1_000, first_token_ns=100, output_tokens=10) == 100
    assert request_tpot_ns(1_000, 100, 10, first_chunk_tokens=4) == 150
    assert request_tpot_ns(1_000, 100, 1) is None  # nothing after the first chunk
    assert request_tpot_ns(1_000, 100, 4, first_chunk_tokens=4) is None
    assert request_tpot_ns(1_000, 100, 10, first_chunk_tokens=2.5) == 120  # estimated first chunk


@pytest.mark.parametrize(
    ("latency", "ttft", "tpot", "met"),
    [
        (200 * MS, 50 * MS, 10 * MS, True),  # exactly at every limit: met (inclusive)
        (200 * MS + 1, 50 * MS, 10 * MS, False),
        (200 * MS, 50 * MS + 1, 10 * MS, False),
        (200 * MS, 50 * MS, 10 * MS + 1, False),
        (200 * MS, None, 10 * MS, False),  # no first token: a ttft objective is missed
        (200 * MS, 50 * MS, None, True),  # no token after the first chunk: tpot met
    ],
)
def test_meets_slo_boundaries(latency: int, ttft: int | None, tpot: int | None, met: bool) -> None:
    limits = SloLimits(ttft_max_ns=50 * MS, tpot_max_ns=10 * MS, latency_max_ns=200 * MS)
    assert meets_slo(limits, latency, ttft, tpot) is met


def test_only_the_objectives_given_are_checked() -> None:
    limits = SloLimits.from_seconds(None, None, 0.2)
    assert limits == SloLimits(None, None, 200 * MS)
    assert meets_slo(limits, 200 * MS, None, 999 * S)
    assert not meets_slo(limits, 200 * MS + 1)


def test_the_recorder_counts_only_requests_meeting_every_objective() -> None:
    limits = SloLimits(ttft_max_ns=50 * MS, tpot_max_ns=10 * MS, latency_max_ns=300 * MS)
    rec = Recorder(0, warmup_s=1, window_s=10, open_loop=True, slo=limits)

    def stream(intended: int, sent: int, first: int, end: int, tokens: int) -> None:
        # one token a chunk, the server's usage: TPOT = (end - first) / (tokens - 1)
        sample = StreamSample(first, [1] * (tokens - 1), tokens, usage_tokens=tokens)
        rec.success(intended, sent, end, stream=sample)

    t = 2 * S
    stream(t, t, t + 40 * MS, t + 40 * MS + 9 * 10 * MS, 10)  # meets all: 40, 10/token, 130
    stream(t, t, t + 60 * MS, t + 100 * MS, 5)  # ttft 60 > 50
    stream(t, t, t + 40 * MS, t + 40 * MS + 9 * 11 * MS, 10)  # tpot 11 > 10
    stream(t, t, t + 40 * MS, t + 40 * MS + 29 * 10 * MS, 30)  # latency 330 > 300
    # sent 20 ms late: from the intended send, ttft 55 ms misses (coordinated omission)
    stream(t, t + 20 * MS, t + 55 * MS, t + 100 * MS, 2)
    rec.failure(t, t, t + 10 * MS, "http_500", "boom")  # a failure never counts
    stream(S // 2, S // 2, S // 2 + MS, S // 2 + 2 * MS, 2)  # warmup: excluded
    assert (rec.successes, rec.slo_met) == (5, 1)
    assert sum(iv.slo_met for iv in rec.intervals.values()) == 1


def test_closed_loop_judges_from_the_send() -> None:
    rec = Recorder(0, 0, 10, open_loop=False, slo=SloLimits(latency_max_ns=100 * MS))
    rec.success(S, S + 500 * MS, S + 590 * MS)  # closed loop: intended = sent in practice
    rec.success(S, S, S + 101 * MS)
    assert rec.slo_met == 1


def test_goodput_gate(trial_with_goodput) -> None:  # type: ignore[no-untyped-def]
    def verdict(goodput: float | None, limit: float) -> str:
        trial = trial_with_goodput(goodput)
        gates = evaluate_gates(trial, Gates(goodput_min=limit))
        # an open loop is also judged on its dropped arrivals (none here)
        assert [g.name for g in gates] == ["dropped arrivals", "goodput"]
        assert gates[0].verdict == "pass"
        return gates[1].verdict

    assert verdict(50.0, 50.0) == "pass"
    assert verdict(49.9, 50.0) == "fail"
    assert verdict(None, 50.0) == "inconclusive"


@pytest.fixture
def trial_with_goodput():  # type: ignore[no-untyped-def]
    from harborbench.engine.summaries import latency_summary
    from harborbench.metrics.histogram import LatencyHistogram
    from harborbench.result import CpuFigures, HealthFigures, MemoryFigures, TrialResult

    def make(goodput: float | None) -> TrialResult:
        empty = latency_summary(LatencyHistogram())
        return TrialResult(
            index=0, started_at="", window_s=10.0, successes=600, failures=0,
            failures_by_kind={}, failure_examples={}, in_flight_at_end=0, warmup_requests=0,
            throughput_ops=60.0, attempted_ops=60.0, failed_ops=0.0, error_rate=0.0,
            service_time=empty, response_time=None, stream=None,
            cpu=CpuFigures(cpu_seconds=1, cpu_percent_mean=10, ops_per_cpu_second=600,
                           saturated=False),
            memory=MemoryFigures(rss_start_bytes=1, rss_end_bytes=1, rss_max_bytes=1,
                                 growth_pct=0, slope_mb_per_min=None, slope_ci_low=None,
                                 slope_ci_high=None, verdict="inconclusive", reason=""),
            health=HealthFigures(loop_lag_p99_s=None, loop_lag_max_s=None, send_lag_p99_s=None,
                                 send_lag_max_s=None, configured_level=1, achieved_level=1,
                                 level_unit="ops/s", unsent=0, generator_saturated=False,
                                 warnings=[]),
            connections={}, client_status={}, client_statistics={}, server_stats=None,
            timeseries=[], interrupted=False,
            goodput_ops=goodput, slo_met=None if goodput is None else round(goodput * 10),
        )  # fmt: skip

    return make
