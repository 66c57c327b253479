"""The recorder's window on each side of every boundary, in exact nanoseconds."""

from __future__ import annotations

import numpy as np

from harborbench.engine.recorder import Recorder, StreamSample, StreamStats
from harborbench.metrics.goodput import SloLimits

S = 1_000_000_000
US = 1_000
W0 = 102 * S  # warmup end
W1 = 112 * S  # window end


def make(open_loop: bool = True, slo: SloLimits | None = None) -> Recorder:
    rec = Recorder(100 * S, 2.0, 10.0, open_loop=open_loop, slo=slo)
    assert (rec.start_ns, rec.warmup_end_ns, rec.window_end_ns) == (100 * S, W0, W1)
    return rec


def test_the_window_is_half_open() -> None:
    rec = make()
    assert not rec.in_window(W0 - 1)
    assert rec.in_window(W0)
    assert rec.in_window(W1 - 1)
    assert not rec.in_window(W1)


def test_overlap_with_the_window() -> None:
    rec = make()
    assert rec.overlap_ns(W0 - 5, W0 + 7) == 7
    assert rec.overlap_ns(W1 - 3, W1 + 9) == 3
    assert rec.overlap_ns(W0 - 9, W1 + 9) == 10 * S
    assert rec.overlap_ns(W0 + 1, W0 + 4) == 3
    assert rec.overlap_ns(0, W0 - 1) == 0
    assert rec.overlap_ns(W1 + 1, W1 + 5) == 0


def test_a_request_intended_at_the_warmup_end_is_measured() -> None:
    rec = make()
    rec.success(W0 - 1, W0 - 1, W0 + 1500)
    assert (rec.warmup_requests, rec.successes) == (1, 0)
    rec.success(W0, W0, W0 + 1500)
    assert (rec.warmup_requests, rec.successes) == (1, 1)


def test_an_answer_exactly_at_the_window_end_counts_one_later_does_not() -> None:
    rec = make()
    rec.success(W1 - 2000, W1 - 2000, W1)
    assert (rec.successes, rec.late_completions) == (1, 0)
    rec.success(W1 - 2000, W1 - 2000, W1 + 1)
    assert (rec.successes, rec.late_completions) == (1, 1)
    rec.failure(W1 - 2000, W1 - 2000, W1 + 1, "http_500", "x")
    assert (rec.failures, rec.late_completions) == (0, 2)
    rec.success(W1, W1, W1)  # intended at the end: not of the window
    assert rec.late_completions == 3
    rec.closed = True
    rec.success(W0, W0, W0 + 1500)
    assert (rec.successes, rec.late_completions) == (1, 4)


def test_the_outcome_at_the_window_end_is_in_the_last_second() -> None:
    rec = make()
    rec.success(W1 - 2000, W1 - 2000, W1)
    rec.failure(W0, W0, W0 + S - 1, "http_500", "x")
    rec.failure(W0, W0, W0 + S, "http_500", "x")
    ivs = rec.pop_intervals_before(100)
    assert [(iv.index, iv.warmup, iv.successes, iv.failures) for iv in ivs] == [
        (0, False, 0, 1), (1, False, 0, 1), (9, False, 1, 0),
    ]  # fmt: skip
    assert rec.intervals == {}


def test_warmup_outcomes_show_in_warmup_rows_only() -> None:
    rec = make(open_loop=True)
    rec.success(W0 - 3 * S, W0 - 3 * S + 1000, W0 - 2 * S + 500)  # sent and done in warmup
    rec.failure(W0 - S, W0 - S, W0 - 1, "http_500", "warm")
    rec.failure(W0 - S, W0 - S, W0 - 2, "http_500", "warm")
    rec.failure(W0 - S, W0 - S, W0, "http_500", "warm")  # done at the window start: no row
    rec.success(W0 - S, W0 - S, W0)
    assert (rec.successes, rec.failures, rec.warmup_requests) == (0, 0, 5)
    assert rec.failures_by_kind == {}
    ivs = rec.pop_intervals_before(0)
    assert [(iv.index, iv.warmup, iv.successes, iv.failures) for iv in ivs] == [
        (-2, True, 1, 0), (-1, True, 0, 2),
    ]  # fmt: skip
    assert ivs[0].service_ns == [S - 500] and ivs[0].response_ns == [S + 500]
    assert rec.intervals == {}
    closed = make(open_loop=False)
    closed.success(W0 - 3 * S, W0 - 3 * S, W0 - 2 * S)
    (iv,) = closed.pop_intervals_before(0)
    assert iv.service_ns == [S] and iv.response_ns == []


def test_pop_intervals_before_is_strict_and_in_order() -> None:
    rec = make()
    for second in (3, 1, 2):
        rec.success(W0, W0, W0 + second * S + 5)
    assert [iv.index for iv in rec.pop_intervals_before(3)] == [1, 2]
    assert list(rec.intervals) == [3]


def test_a_success_records_service_response_and_interval_values() -> None:
    rec = make(open_loop=True)
    rec.success(W0, W0 + 500, W0 + 2000)
    assert (rec.service.count, rec.response.count) == (1, 1)
    assert (rec.service.max_ns, rec.response.max_ns) == (1500, 2000)
    (iv,) = rec.pop_intervals_before(1)
    assert (iv.service_ns, iv.response_ns, iv.successes) == ([1500], [2000], 1)
    assert rec.tokens.without_usage == 1 and rec.tokens.with_usage == 0
    closed = make(open_loop=False)
    closed.success(W0, W0, W0 + 1500)
    assert closed.response.count == 0
    (civ,) = closed.pop_intervals_before(1)
    assert civ.response_ns == []


def test_usage_and_estimates_are_summed() -> None:
    rec = make()
    rec.success(W0, W0, W0 + 1500, usage=(1, 1))  # no estimate given: none added
    assert rec.tokens.estimated_prompt_tokens == 0
    rec = make()
    rec.success(W0, W0, W0 + 1500, usage=(7, 3), estimated_prompt_tokens=6)
    rec.success(W0, W0, W0 + 1500, usage=(1, 2), estimated_prompt_tokens=4)
    rec.success(W0, W0, W0 + 1500, estimated_prompt_tokens=100)
    t = rec.tokens
    assert (t.prompt_tokens, t.completion_tokens, t.with_usage, t.without_usage) == (8, 5, 2, 1)
    assert t.estimated_prompt_tokens == 10


def test_failures_keep_the_first_example_cut_at_300_characters() -> None:
    rec = make()
    rec.failure(W0, W0, W0 + 1500, "http_500", "x" * 400)
    rec.failure(W0, W0, W0 + 1500, "http_500", "second")
    rec.failure(W0, W0, W0 + 1500, "timeout", "slow")
    assert rec.failures == 3
    assert rec.failures_by_kind == {"http_500": 2, "timeout": 1}
    assert rec.failure_examples == {"http_500": "x" * 300, "timeout": "slow"}
    (iv,) = rec.pop_intervals_before(1)
    assert iv.failures == 3


def test_sends_log_lag_first_and_last_inside_the_window_only() -> None:
    rec = make(open_loop=True)
    rec.sent(W0 - 1, W0 + 5000)  # a warmup arrival: not logged
    rec.sent(W0, W0 + 1500)
    rec.sent(W0 + 10, W0 + 5)  # sent before its time (clock skew): lag 0, clamped to 1 us
    rec.sent(W1 - 1, W1 + 2000)
    rec.sent(W1, W1 + 1)
    log = rec.sends
    assert log.lag.count == 3 and rec.send_lag.count == 3
    assert (log.lag.min_ns, log.lag.max_ns) == (1000, 2001)
    assert log.lag.clamped_below_count == 1
    assert (log.first_intended_ns, log.first_sent_ns) == (W0, W0 + 1500)
    assert (log.last_intended_ns, log.last_sent_ns) == (W1 - 1, W1 + 2000)
    closed = make(open_loop=False)
    closed.sent(W0, W0 + 1500)
    assert closed.sends.lag.count == 1 and closed.send_lag.count == 0


def test_dropped_and_late_arrivals_count_inside_the_window_only() -> None:
    rec = make()
    rec.arrival_dropped(W0 - 1)
    rec.arrival_dropped(W0)
    rec.arrival_dropped(W1 - 1)
    rec.arrival_dropped(W1)
    assert rec.unsent == 2
    rec.arrivals_dropped(np.array([W0 - 1, W0, W1 - 1, W1], dtype=np.int64))
    assert rec.unsent == 4
    rec.arrivals_late(np.array([W0 - 1, W1 - 1500, W1 - 1200, W1], dtype=np.int64), W1)
    assert rec.sent_late == 2
    assert rec.send_lag.count == 2
    assert (rec.send_lag.min_ns, rec.send_lag.max_ns) == (1200, 1500)
    rec.arrivals_late(np.array([], dtype=np.int64), W1)
    assert rec.sent_late == 2
    rec.arrivals_late(np.array([W1 - 1100], dtype=np.int64), W1)
    assert rec.sent_late == 3 and rec.send_lag.count == 3


def test_slo_is_judged_from_the_intended_send_in_open_loop() -> None:
    limits = SloLimits.from_seconds(None, None, 2000e-9)  # latency <= 2000 ns
    rec = make(open_loop=True, slo=limits)
    rec.success(W0, W0 + 1000, W0 + 2000)  # response 2000 ns: met
    rec.success(W0, W0 + 1000, W0 + 2001)  # 2001 ns: missed
    assert rec.slo_met == 1
    closed = make(open_loop=False, slo=limits)
    closed.success(W0, W0 + 1000, W0 + 3000)  # from the actual send: 2000 ns, met
    closed.success(W0, W0 + 1000, W0 + 2000)
    assert closed.slo_met == 2
    (iv,) = closed.pop_intervals_before(1)
    assert iv.slo_met == 2


def test_slo_tpot_is_judged_on_streams() -> None:
    limits = SloLimits.from_seconds(None, 1000e-9, None)  # tpot <= 1000 ns
    rec = make(open_loop=True, slo=limits)
    fast = StreamSample(first_token_ns=W0 + 1000, chunk_gaps_ns=[1000], content_chunks=2,
                        usage_tokens=2)  # fmt: skip
    rec.success(W0, W0, W0 + 2000, stream=fast)  # (2000 - 1000) / (2 - 1) = 1000 ns: met
    rec.success(W0, W0, W0 + 2001, stream=fast)  # 1001 ns: missed
    assert rec.slo_met == 1


def test_an_outcome_at_the_end_of_a_window_of_odd_length_is_in_its_last_second() -> None:
    rec = Recorder(0, 0.0, 1.000000001, open_loop=False)
    rec.success(0, 0, 1_000_000_001)
    assert [iv.index for iv in rec.pop_intervals_before(5)] == [1]


def test_slo_ttft_is_from_the_start_of_the_request() -> None:
    limits = SloLimits.from_seconds(1500e-9, None, None)
    rec = make(open_loop=True, slo=limits)
    sample = StreamSample(first_token_ns=W0 + 1500, chunk_gaps_ns=[], content_chunks=1)
    rec.success(W0, W0 + 200, W0 + 5000, stream=sample)  # ttft from intended: 1500 ns
    late = StreamSample(first_token_ns=W0 + 1501, chunk_gaps_ns=[], content_chunks=1)
    rec.success(W0, W0 + 200, W0 + 5000, stream=late)
    assert rec.slo_met == 1
    assert rec.stream.ttft.count == 2
    assert rec.stream.ttft.min_ns == 1300  # the stream's ttft is from the actual send
    no_stream = make(open_loop=True, slo=limits)
    no_stream.success(W0, W0, W0 + 1000)  # no first token: a ttft objective is missed
    assert no_stream.slo_met == 0


def test_stream_record_counts_and_tpot() -> None:
    st = StreamStats()
    sample = StreamSample(first_token_ns=11_000, chunk_gaps_ns=[1200, 1800], content_chunks=3,
                          usage_tokens=6, chunk_tokens=[2, 3, 1])  # fmt: skip
    tpot = st.record(10_000, 15_000, sample)
    assert tpot == 1000  # (15000 - 11000) / (6 - 2)
    assert st.ttft.max_ns == 1000
    assert (st.icl.count, st.icl.min_ns, st.icl.max_ns) == (2, 1200, 1800)
    assert (st.itl.count, st.itl.min_ns, st.itl.max_ns) == (4, 1000, 1800)  # 3 x 400 clamped
    assert (st.output_tokens, st.output_chunks, st.tokens_from_usage) == (6, 3, 1)
    assert (st.per_chunk_tokens_known, st.tokens_from_chunk_count) == (1, 0)
    assert st.tpot.count == 1 and st.tpot.max_ns == 1000


def test_stream_record_without_per_chunk_counts_estimates_the_first_chunk() -> None:
    st = StreamStats()
    sample = StreamSample(first_token_ns=10_000, chunk_gaps_ns=[1000] * 3, content_chunks=4,
                          usage_tokens=8, done_marker_missing=True)  # fmt: skip
    # first chunk estimated at 8 / 4 = 2 tokens: (18000 - 10000) / 6
    assert st.record(9_000, 18_000, sample) == round(8000 / 6)
    assert st.itl.count == 0 and st.per_chunk_tokens_known == 0
    assert st.done_marker_missing == 1
    chunks_only = StreamSample(first_token_ns=10_000, chunk_gaps_ns=[1500], content_chunks=2)
    assert st.record(9_000, 12_000, chunks_only) == 2000  # 2 chunks as tokens, 1 after the first
    assert (st.tokens_from_chunk_count, st.output_tokens, st.output_chunks) == (1, 10, 6)
    # a mismatched per-chunk list (fewer counts than chunks) is not used
    odd = StreamSample(first_token_ns=10_000, chunk_gaps_ns=[1500], content_chunks=2,
                       usage_tokens=4, chunk_tokens=[4])  # fmt: skip
    assert st.record(9_000, 13_000, odd) == 1500  # estimated first chunk 2 tokens: 3000 / 2
    assert st.per_chunk_tokens_known == 0
    assert (st.tokens_from_usage, st.tokens_from_chunk_count, st.done_marker_missing) == (2, 1, 1)
    st.record(9_000, 13_000, chunks_only)
    assert (st.tokens_from_usage, st.tokens_from_chunk_count, st.done_marker_missing) == (2, 2, 1)
    st.record(9_000, 18_000, sample)
    assert (st.tokens_from_usage, st.done_marker_missing) == (3, 2)


def test_stream_record_of_no_content_chunk() -> None:
    st = StreamStats()
    empty = StreamSample(first_token_ns=10_000, chunk_gaps_ns=[], content_chunks=0, usage_tokens=3)
    assert st.record(9_000, 16_000, empty) == 2000  # no first chunk: 6000 ns over 3 tokens
    assert (st.output_tokens, st.output_chunks) == (3, 0)


def test_one_chunk_holding_every_token_has_no_tpot() -> None:
    st = StreamStats()
    one = StreamSample(first_token_ns=10_000, chunk_gaps_ns=[], content_chunks=1, usage_tokens=5,
                       chunk_tokens=[5])  # fmt: skip
    assert st.record(9_000, 12_000, one) is None
    assert st.tpot.count == 0 and st.icl.count == 0
    zero = StreamSample(first_token_ns=10_000, chunk_gaps_ns=[1500], content_chunks=2,
                        usage_tokens=3, chunk_tokens=[3, 0])  # fmt: skip
    assert st.record(9_000, 12_000, zero) is None  # a chunk of 0 tokens adds no itl sample
    assert st.itl.count == 0 and st.per_chunk_tokens_known == 2
