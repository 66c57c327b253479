"""The merge of trials into one total and the summaries behind it: exact figures.

Latencies here lie in [1000, 2047] ns, where the histogram's buckets are 1 ns wide, so every
percentile is exact and the merged figures can be asserted to the nanosecond.
"""

from __future__ import annotations

from typing import Any

import pytest

from harborbench.engine.recorder import StreamStats
from harborbench.engine.summaries import (
    PERCENTILES,
    decode,
    latency_summary,
    merge_trials,
    merged_stream_summary,
    merged_summary,
    stream_summary,
)
from harborbench.metrics.histogram import LatencyHistogram
from harborbench.result import (
    CpuFigures,
    HealthFigures,
    LatencySummary,
    MemoryFigures,
    ReplayFigures,
    StreamSummary,
    TokenFigures,
    TrialResult,
)
from tests.compare.test_compare import make_trial


def hist(*values_ns: int) -> LatencyHistogram:
    h = LatencyHistogram()
    h.record_many_ns(list(values_ns))
    return h


def summary(*values_ns: int) -> LatencySummary:
    return latency_summary(hist(*values_ns))


def memory(**kw: Any) -> MemoryFigures:
    base: dict[str, Any] = {
        "rss_start_bytes": 100_000_000, "rss_end_bytes": 101_000_000,
        "rss_max_bytes": 101_000_000, "growth_pct": 1.0, "slope_mb_per_min": None,
        "slope_ci_low": None, "slope_ci_high": None, "verdict": "inconclusive",
        "reason": "short", "trend_window_s": 10.0, "samples": 10,
    }  # fmt: skip
    base.update(kw)
    return MemoryFigures(**base)


def health(**kw: Any) -> HealthFigures:
    base: dict[str, Any] = {
        "loop_lag_p99_s": None, "loop_lag_max_s": None, "send_lag_p99_s": None,
        "send_lag_max_s": None, "configured_level": 32.0, "achieved_level": 31.0,
        "level_unit": "concurrency", "unsent": 0, "generator_saturated": False, "warnings": [],
    }  # fmt: skip
    base.update(kw)
    return HealthFigures(**base)


def trial(**kw: Any) -> TrialResult:
    base = make_trial(0, [10, 10])
    return base.model_copy(update=kw)


def two() -> tuple[TrialResult, TrialResult]:
    a = trial(
        index=0, window_s=4.0, successes=40, failures=4, failures_by_kind={"http_500": 4},
        failure_examples={"http_500": "first a"}, in_flight_at_end=1, warmup_requests=5,
        throughput_ops=10.0, attempted_ops=12.0, failed_ops=1.0, error_rate=4 / 44,
        service_time=summary(1000, 1100, 1200), response_time=None,
        cpu=CpuFigures(cpu_seconds=2.0, cpu_percent_mean=50.0, ops_per_cpu_second=20.0,
                       saturated=False),
        memory=memory(rss_start_bytes=100_000_000, rss_end_bytes=110_000_000,
                      rss_max_bytes=111_000_000, growth_pct=10.0),
        health=health(loop_lag_p99_s=0.001, loop_lag_max_s=0.009, send_lag_p99_s=None,
                      send_lag_max_s=0.004, achieved_level=31.0, unsent=2,
                      warnings=["b warning", "a warning"], generator_saturated=False,
                      configured_level=32.0),
        interrupted=False,
    )  # fmt: skip
    b = trial(
        index=1, window_s=6.0, successes=90, failures=6,
        failures_by_kind={"http_500": 2, "timeout": 4},
        failure_examples={"http_500": "first b", "timeout": "slow"}, in_flight_at_end=2,
        warmup_requests=7, throughput_ops=15.0, attempted_ops=20.0, failed_ops=1.0,
        error_rate=6 / 96, service_time=summary(1300, 1400),
        response_time=summary(2000),
        cpu=CpuFigures(cpu_seconds=3.0, cpu_percent_mean=30.0, ops_per_cpu_second=30.0,
                       saturated=False),
        memory=memory(rss_start_bytes=200_000_000, rss_end_bytes=130_000_000,
                      rss_max_bytes=140_000_000, growth_pct=-35.0),
        health=health(loop_lag_p99_s=0.003, loop_lag_max_s=0.002, send_lag_p99_s=0.005,
                      send_lag_max_s=None, achieved_level=21.0, unsent=3,
                      warnings=["a warning", "c warning"], generator_saturated=False,
                      configured_level=99.0),
        interrupted=False,
    )  # fmt: skip
    return a, b


def test_one_trial_is_its_own_total() -> None:
    a, _ = two()
    assert merge_trials([a]) is a


def test_counts_are_summed_and_rates_recomputed_from_the_sums() -> None:
    t = merge_trials(list(two()))
    assert t.index == -1
    assert t.window_s == 10.0
    assert (t.successes, t.failures) == (130, 10)
    assert t.failures_by_kind == {"http_500": 6, "timeout": 4}
    assert t.failure_examples == {"http_500": "first a", "timeout": "slow"}
    assert (t.in_flight_at_end, t.warmup_requests) == (3, 12)
    assert t.throughput_ops == 13.0
    assert t.failed_ops == 1.0
    assert t.error_rate == 10 / 140
    assert t.attempted_ops == pytest.approx((12.0 * 4 + 20.0 * 6) / 10, abs=1e-12)
    assert t.interrupted is False


def test_latencies_come_from_the_merged_histograms() -> None:
    t = merge_trials(list(two()))
    assert t.service_time == summary(1000, 1100, 1200, 1300, 1400)
    assert t.service_time.count == 5
    assert t.service_time.p50_s == 1200e-9
    assert t.service_time.max_s == 1400e-9
    # a trial without response times (closed loop) adds nothing to the others'
    assert t.response_time == summary(2000)


def test_no_response_time_in_any_trial_stays_none() -> None:
    a, b = two()
    t = merge_trials([a, b.model_copy(update={"response_time": None})])
    assert t.response_time is None


def test_cpu_is_summed_and_weighted_by_window() -> None:
    t = merge_trials(list(two()))
    assert t.cpu.cpu_seconds == 5.0
    assert t.cpu.cpu_percent_mean == pytest.approx((50.0 * 4 + 30.0 * 6) / 10, abs=1e-12)
    assert t.cpu.ops_per_cpu_second == 26.0
    assert t.cpu.saturated is False


@pytest.mark.parametrize(("first", "second"), [(True, False), (False, True)])
def test_any_saturated_or_interrupted_trial_marks_the_total(first: bool, second: bool) -> None:
    a, b = two()
    a = a.model_copy(update={
        "cpu": a.cpu.model_copy(update={"saturated": first}),
        "health": a.health.model_copy(update={"generator_saturated": first}),
        "interrupted": first,
    })  # fmt: skip
    b = b.model_copy(update={
        "cpu": b.cpu.model_copy(update={"saturated": second}),
        "health": b.health.model_copy(update={"generator_saturated": second}),
        "interrupted": second,
    })  # fmt: skip
    t = merge_trials([a, b])
    assert t.cpu.saturated and t.health.generator_saturated and t.interrupted


def test_no_cpu_time_gives_no_efficiency() -> None:
    a, b = two()
    zero = CpuFigures(cpu_seconds=0.0, cpu_percent_mean=0.0, ops_per_cpu_second=None,
                      saturated=False)  # fmt: skip
    t = merge_trials([a.model_copy(update={"cpu": zero}), b.model_copy(update={"cpu": zero})])
    assert t.cpu.ops_per_cpu_second is None


def test_health_keeps_the_worst_lags_and_sums_the_dropped() -> None:
    t = merge_trials(list(two()))
    h = t.health
    assert h.loop_lag_p99_s == 0.003
    assert h.loop_lag_max_s == 0.009
    assert h.send_lag_p99_s == 0.005  # the trial that has one
    assert h.send_lag_max_s == 0.004
    assert h.unsent == 5
    assert h.warnings == ["a warning", "b warning", "c warning"]
    assert h.achieved_level == pytest.approx((31.0 * 4 + 21.0 * 6) / 10, abs=1e-12)
    assert h.configured_level == 32.0  # the first trial's
    assert h.generator_saturated is False


def test_lags_absent_in_every_trial_stay_absent() -> None:
    a, b = two()
    none = {"loop_lag_p99_s": None, "loop_lag_max_s": None, "send_lag_max_s": None,
            "send_lag_p99_s": None}  # fmt: skip
    t = merge_trials([
        a.model_copy(update={"health": a.health.model_copy(update=none)}),
        b.model_copy(update={"health": b.health.model_copy(update=none)}),
    ])  # fmt: skip
    assert (t.health.loop_lag_p99_s, t.health.send_lag_max_s) == (None, None)


def test_trials_with_no_window_give_zero_rates_not_an_error() -> None:
    a, b = two()
    zero = {"window_s": 0.0, "successes": 0, "failures": 0, "failures_by_kind": {}}
    t = merge_trials([a.model_copy(update=zero), b.model_copy(update=zero)])
    assert t.window_s == 0.0
    assert (t.throughput_ops, t.attempted_ops, t.failed_ops) == (0.0, 0.0, 0.0)
    assert t.error_rate is None
    assert t.cpu.cpu_percent_mean == 0.0
    assert t.health.achieved_level == 0.0


def with_rss(t: TrialResult, start_mb: float, end_mb: float) -> TrialResult:
    m = t.memory.model_copy(
        update={"rss_start_bytes": round(start_mb * 1e6), "rss_end_bytes": round(end_mb * 1e6)}
    )
    return t.model_copy(update={"memory": m})


def test_memory_growth_is_the_sum_of_the_windows_growths() -> None:
    # a: 100 -> 110 MB in its window; b: 200 -> 130 MB (it shrank 70 MB in its window).
    t = merge_trials(list(two()))
    m = t.memory
    assert (m.rss_start_bytes, m.rss_end_bytes) == (100_000_000, 130_000_000)
    assert m.growth_pct == pytest.approx(-60.0, abs=1e-9)  # (10 - 70) / 100
    assert m.rss_max_bytes == 140_000_000
    assert m.reason.startswith(
        "over 2 trials RSS grew -60.00% inside their windows (fitted lines; +90.0 MB between "
        "trials, not load, not counted); slope of the worst"
    )


def test_memory_between_trials_is_not_counted() -> None:
    # The new-user test: each trial grew under 0.5%, pandas' import (35 MB) between them.
    a, b = two()
    m = merge_trials([with_rss(a, 143.3, 143.9), with_rss(b, 179.2, 179.5)]).memory
    assert m.growth_pct == pytest.approx(100 * 0.9 / 143.3)
    assert (m.rss_start_bytes, m.rss_end_bytes) == (143_300_000, 179_500_000)
    assert "+35.3 MB between trials" in m.reason
    assert m.verdict != "fail"


@pytest.mark.parametrize(("grow_mb", "verdict"), [(19.0, "inconclusive"), (20.0, "fail")])
def test_memory_growth_summed_over_trials_is_judged_at_the_limit(
    grow_mb: float, verdict: str
) -> None:
    # A leak under load adds up: 10 + 9 (or 10) MB in the windows of a 100 MB process, with
    # 50 MB freed between the trials.
    a, b = two()
    m = merge_trials([with_rss(a, 100, 110), with_rss(b, 60, 60 + grow_mb - 10)]).memory
    assert m.growth_pct == pytest.approx(grow_mb)
    assert m.verdict == verdict  # at the 20% limit: fail; below it the short slope decides


def test_a_zero_start_gives_zero_growth() -> None:
    a, b = two()
    a = a.model_copy(update={"memory": a.memory.model_copy(update={"rss_start_bytes": 0})})
    assert merge_trials([a, b]).memory.growth_pct == 0.0


def test_the_memory_slope_is_the_worst_trials() -> None:
    long = {"trend_window_s": 600.0, "samples": 600, "max_slope_mb_per_min": 5.0}
    a, b = two()
    good = memory(slope_mb_per_min=1.0, slope_ci_low=0.5, slope_ci_high=1.5, reason="good",
                  verdict="pass", **long)  # fmt: skip
    bad = memory(slope_mb_per_min=7.0, slope_ci_low=6.0, slope_ci_high=8.0, reason="bad",
                 verdict="fail", **long)  # fmt: skip
    for order in ([good, bad], [bad, good]):
        t = merge_trials([
            a.model_copy(update={"memory": order[0]}), b.model_copy(update={"memory": order[1]}),
        ])  # fmt: skip
        assert t.memory.slope_mb_per_min == 7.0
        assert t.memory.verdict == "fail"
        assert t.memory.reason.endswith("; slope of the worst trial: bad")
    both_good = merge_trials([
        a.model_copy(update={"memory": good}), b.model_copy(update={"memory": good}),
    ])  # fmt: skip
    assert both_good.memory.verdict == "pass"
    # undecided slopes: the one with the higher upper bound is the worse
    low = memory(slope_mb_per_min=1.0, slope_ci_low=-1.0, slope_ci_high=2.0, reason="low")
    high = memory(slope_mb_per_min=1.0, slope_ci_low=-1.0, slope_ci_high=3.0, reason="high")
    for order in ([low, high], [high, low]):
        t = merge_trials([
            a.model_copy(update={"memory": order[0]}), b.model_copy(update={"memory": order[1]}),
        ])  # fmt: skip
        assert t.memory.reason.endswith("worst trial: high")


def _stream(tokens: int, **kw: Any) -> StreamSummary:
    base: dict[str, Any] = {
        "ttft": summary(1000), "icl": summary(1500), "itl": summary(1600), "tpot": summary(1700),
        "output_tokens": tokens, "output_tokens_per_s": 0.0, "output_chunks": tokens // 2,
        "token_source": "usage", "tokens_from_usage": 1, "tokens_from_chunk_count": 0,
        "per_chunk_tokens_known": 1, "done_marker_missing": 0,
    }  # fmt: skip
    base.update(kw)
    return StreamSummary(**base)


def test_streams_merge_histograms_and_sum_counts() -> None:
    a, b = two()
    s1 = _stream(40, ttft=summary(1000, 1010), done_marker_missing=1)
    s2 = _stream(
        60, ttft=summary(1020), tokens_from_usage=0, tokens_from_chunk_count=3,
        per_chunk_tokens_known=2, done_marker_missing=2, token_source="chunk_count",
    )  # fmt: skip
    t = merge_trials([a.model_copy(update={"stream": s1}), b.model_copy(update={"stream": s2})])
    s = t.stream
    assert s is not None
    assert s.ttft == summary(1000, 1010, 1020)
    assert s.icl == summary(1500, 1500)
    assert (s.output_tokens, s.output_chunks) == (100, 50)
    assert s.output_tokens_per_s == 10.0
    assert (s.tokens_from_usage, s.tokens_from_chunk_count) == (1, 3)
    assert s.token_source == "mixed"
    assert (s.per_chunk_tokens_known, s.done_marker_missing) == (3, 3)
    assert merge_trials(list(two())).stream is None


def test_merged_stream_summary_of_no_window() -> None:
    s = merged_stream_summary([_stream(10)], 0.0)
    assert s.output_tokens_per_s == 0.0
    assert s.itl == summary(1600) and s.tpot == summary(1700)


def test_goodput_tokens_and_replay_are_merged() -> None:
    a, b = two()

    def replay(planned: int, sent: int, span: float | None, *lags: int) -> ReplayFigures:
        return ReplayFigures(
            trace="t.jsonl", trace_lines=100, replayed_lines=90, time_scale=0.5,
            planned_in_window=planned, sent_in_window=sent, trace_span_s=1.0,
            achieved_span_s=span, send_lag=summary(*lags),
        )  # fmt: skip

    def tokens(n: int) -> TokenFigures:
        return TokenFigures(prompt_tokens=n, completion_tokens=2 * n, with_usage=3 * n,
                            without_usage=4 * n, estimated_prompt_tokens=5 * n)  # fmt: skip

    t = merge_trials([
        a.model_copy(update={"slo_met": 30, "tokens": tokens(1),
                             "replay": replay(10, 9, 1.5, 1000, 1100)}),
        b.model_copy(update={"slo_met": 70, "tokens": tokens(10),
                             "replay": replay(20, 18, 2.5, 1200)}),
    ])  # fmt: skip
    assert t.slo_met == 100
    assert t.goodput_ops == 10.0
    assert t.tokens == tokens(11)
    r = t.replay
    assert r is not None
    assert (r.planned_in_window, r.sent_in_window) == (30, 27)
    assert r.achieved_span_s == 2.5
    assert r.send_lag == summary(1000, 1100, 1200)
    assert (r.trace, r.trace_lines, r.replayed_lines) == ("t.jsonl", 100, 90)
    none_span = merge_trials([
        a.model_copy(update={"replay": replay(1, 1, None, 1000)}),
        b.model_copy(update={"replay": replay(1, 1, None, 1000)}),
    ])  # fmt: skip
    assert none_span.replay is not None and none_span.replay.achieved_span_s is None
    plain = merge_trials([a, b])
    assert (plain.slo_met, plain.goodput_ops, plain.tokens, plain.replay) == (
        None, None, a.tokens, None,
    )  # fmt: skip


def test_goodput_of_no_window_is_zero() -> None:
    a, b = two()
    zero = {"window_s": 0.0, "slo_met": 0}
    t = merge_trials([a.model_copy(update=zero), b.model_copy(update=zero)])
    assert t.goodput_ops == 0.0


def test_latency_summary_figures_and_insufficient_flags() -> None:
    values = list(range(1000, 1020))  # 20 samples: p50 has exactly 10 above it
    s = latency_summary(hist(*values))
    assert s.count == 20
    assert s.p50_s == 1009e-9  # rank 10 of 20
    assert s.p90_s == 1017e-9  # rank 18
    assert s.p95_s == 1018e-9  # rank 19
    assert s.p99_s == 1019e-9  # rank round(19.8) = 20
    assert s.p999_s == 1019e-9
    assert s.max_s == 1019e-9
    assert s.mean_s == pytest.approx(1009.5e-9, rel=1e-12)
    assert s.insufficient == ["p90", "p95", "p99", "p999"]  # p50 needs 20: has them
    assert latency_summary(hist(*values[:19])).insufficient == [p for p, _ in PERCENTILES]
    assert s.histogram == hist(*values).encode()
    assert (s.clamped_below, s.clamped_above) == (0, 0)


def test_an_empty_summary_has_no_figures() -> None:
    s = latency_summary(LatencyHistogram())
    assert s.count == 0
    assert (s.p50_s, s.p90_s, s.p95_s, s.p99_s, s.p999_s, s.max_s, s.mean_s) == (None,) * 7
    assert s.histogram == ""
    assert s.insufficient == [p for p, _ in PERCENTILES]
    assert decode(s) == LatencyHistogram()
    assert merged_summary([s, s]) == s


def test_clamped_counts_survive_decode_and_merge() -> None:
    h = hist(5, 1500, 7_200_000_000_000)  # below 1 us, inside, above 1 h
    s = latency_summary(h)
    assert (s.clamped_below, s.clamped_above) == (1, 1)
    back = decode(s)
    assert (back.clamped_below_count, back.clamped_above_count) == (1, 1)
    assert back == h
    m = merged_summary([s, s])
    assert (m.count, m.clamped_below, m.clamped_above) == (6, 2, 2)


def test_stream_summary_of_one_trial() -> None:
    stats = StreamStats()
    stats.ttft.record_ns(1000)
    stats.icl.record_ns(1100)
    stats.itl.record_ns(1200)
    stats.tpot.record_ns(1300)
    stats.output_tokens, stats.output_chunks = 30, 12
    stats.tokens_from_usage, stats.tokens_from_chunk_count = 2, 1
    stats.per_chunk_tokens_known, stats.done_marker_missing = 1, 4
    s = stream_summary(stats, 3.0)
    assert (s.ttft, s.icl, s.itl, s.tpot) == (summary(1000), summary(1100), summary(1200),
                                              summary(1300))  # fmt: skip
    assert (s.output_tokens, s.output_tokens_per_s, s.output_chunks) == (30, 10.0, 12)
    assert (s.tokens_from_usage, s.tokens_from_chunk_count, s.token_source) == (2, 1, "mixed")
    assert (s.per_chunk_tokens_known, s.done_marker_missing) == (1, 4)
    assert stream_summary(stats, 0.0).output_tokens_per_s == 0.0
    assert stream_summary(stats, 0.5).output_tokens_per_s == 60.0


def test_the_rest_of_the_total_is_the_first_trials() -> None:
    a, b = two()
    a = a.model_copy(update={"started_at": "first", "client_status": {"k": 1},
                             "connections": {"c": 1}})  # fmt: skip
    b = b.model_copy(update={"started_at": "second", "client_status": {"k": 2},
                             "connections": {"c": 2}, "timeseries": []})  # fmt: skip
    t = merge_trials([a, b])
    assert (t.started_at, t.client_status, t.connections) == ("first", {"k": 1}, {"c": 1})
    assert t.timeseries == a.timeseries


def test_less_than_a_cpu_second_still_gives_the_efficiency() -> None:
    a, b = two()
    small = [
        x.model_copy(update={"cpu": x.cpu.model_copy(update={"cpu_seconds": s})})
        for x, s in ((a, 0.2), (b, 0.3))
    ]
    assert merge_trials(small).cpu.ops_per_cpu_second == pytest.approx(260.0)


def test_memory_growth_adds_three_trials_windows_and_ends_at_the_last() -> None:
    a, b = two()  # +10 MB and -70 MB
    c = a.model_copy(update={"memory": memory(rss_start_bytes=1, rss_end_bytes=150_000_000)})
    m = merge_trials([a, b, c]).memory
    assert (m.rss_start_bytes, m.rss_end_bytes) == (100_000_000, 150_000_000)
    assert m.growth_pct == pytest.approx(100 * (10e6 - 70e6 + 149_999_999) / 100e6)


def test_the_worst_slope_is_ranked_by_verdict_before_its_upper_bound() -> None:
    a, b = two()
    long = {"trend_window_s": 600.0, "samples": 600, "max_slope_mb_per_min": 5.0}
    failing = memory(slope_ci_low=6.0, slope_ci_high=7.0, reason="fails", rss_start_bytes=90,
                     **long)  # fmt: skip
    wide = memory(slope_ci_low=-1.0, slope_ci_high=9.0, reason="undecided, wide",
                  rss_start_bytes=80, **long)  # fmt: skip
    for order in ([failing, wide], [wide, failing]):
        t = merge_trials([
            a.model_copy(update={"memory": order[0]}), b.model_copy(update={"memory": order[1]}),
        ])  # fmt: skip
        assert t.memory.reason.endswith("worst trial: fails")
        assert t.memory.slope_ci_high == 7.0
        assert t.memory.rss_start_bytes == order[0].rss_start_bytes  # the first trial's start
    # an undecided slope without an interval ranks below one with an upper bound above 0
    none = memory(reason="no interval")
    low = memory(slope_ci_low=-1.0, slope_ci_high=0.5, reason="low bound")
    for order in ([none, low], [low, none]):
        t = merge_trials([
            a.model_copy(update={"memory": order[0]}), b.model_copy(update={"memory": order[1]}),
        ])  # fmt: skip
        assert t.memory.reason.endswith("worst trial: low bound")


def test_the_replay_header_is_the_first_trials() -> None:
    a, b = two()

    def replay(name: str) -> ReplayFigures:
        return ReplayFigures(
            trace=name, trace_lines=1, replayed_lines=1, time_scale=1.0, planned_in_window=1,
            sent_in_window=1, trace_span_s=None, achieved_span_s=None, send_lag=summary(1000),
        )  # fmt: skip

    t = merge_trials([a.model_copy(update={"replay": replay("first.jsonl")}),
                      b.model_copy(update={"replay": replay("second.jsonl")})])  # fmt: skip
    assert t.replay is not None and t.replay.trace == "first.jsonl"
