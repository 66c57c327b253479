"""The recorder's accounting with an injected clock: exact figures, warmup and window rules."""

from __future__ import annotations

from harborbench.engine.recorder import Recorder, StreamSample

S = 1_000_000_000
MS = 1_000_000


def make() -> Recorder:
    # Run starts at t=100 s (an arbitrary perf_counter origin); 2 s warmup; 10 s window.
    return Recorder(100 * S, warmup_s=2, window_s=10, open_loop=True)


def test_warmup_requests_are_excluded_from_every_figure() -> None:
    rec = make()
    rec.success(101 * S, 101 * S, 103 * S)  # sent in warmup, completed in the window
    rec.failure(101 * S, 101 * S, 101 * S + 5 * MS, "http_500", "boom")
    assert rec.successes == 0 and rec.failures == 0
    assert rec.warmup_requests == 2
    assert rec.service.count == 0


def test_successes_failures_and_exact_percentiles() -> None:
    rec = make()
    for i in range(1, 101):  # service times 1..100 ms, all inside the window
        t = 103 * S + i * MS
        rec.success(t, t, t + i * MS)
    rec.failure(104 * S, 104 * S, 104 * S + MS, "timeout", "slow")
    rec.failure(104 * S, 104 * S, 104 * S + MS, "http_503", "busy")
    assert (rec.successes, rec.failures) == (100, 2)
    assert dict(rec.failures_by_kind) == {"timeout": 1, "http_503": 1}
    # HDR: within 0.1% of the exact nearest-rank value.
    assert abs(rec.service.percentile_ns(50) - 50 * MS) <= 50 * MS * 0.001
    assert abs(rec.service.percentile_ns(99) - 99 * MS) <= 99 * MS * 0.001
    assert abs(rec.service.max_ns - 100 * MS) <= 100 * MS * 0.001


def test_response_time_counts_from_the_intended_send() -> None:
    rec = make()
    intended = 103 * S
    sent = intended + 500 * MS  # the generator (or a stall) delayed the send by 500 ms
    rec.sent(intended, sent)  # the send lag is recorded at the send, answered or not
    rec.success(intended, sent, sent + 10 * MS)
    assert abs(rec.service.percentile_ns(50) - 10 * MS) <= 10 * MS * 0.001
    assert abs(rec.response.percentile_ns(50) - 510 * MS) <= 510 * MS * 0.001
    assert abs(rec.send_lag.percentile_ns(50) - 500 * MS) <= 500 * MS * 0.001


def test_completion_after_the_window_is_not_throughput() -> None:
    rec = make()
    rec.success(111 * S, 111 * S, 113 * S)  # window ends at 112 s
    assert rec.successes == 0
    assert rec.late_completions == 1


def test_intervals_are_keyed_by_completion_second_from_window_start() -> None:
    rec = make()
    rec.success(102 * S, 102 * S, 102 * S + 10 * MS)  # second 0 of the window
    rec.success(103 * S, 103 * S, 104 * S + 10 * MS)  # second 2
    rec.success(101 * S, 101 * S, 101 * S + 10 * MS)  # warmup, second -1
    popped = rec.pop_intervals_before(1)
    # The warmup request shows in its (warmup) interval but in no total.
    assert [(iv.index, iv.warmup, iv.successes) for iv in popped] == [(-1, True, 1), (0, False, 1)]
    assert rec.successes == 2 and rec.warmup_requests == 1
    assert list(rec.intervals) == [2]


def _near(value_ns: int, expected_ns: float) -> bool:
    return abs(value_ns - expected_ns) <= expected_ns * 0.001  # HDR precision: 3 digits


def test_stream_figures_one_token_per_chunk() -> None:
    rec = make()
    sent = 103 * S
    sample = StreamSample(sent + 20 * MS, [5 * MS] * 16, content_chunks=17, usage_tokens=17)
    rec.success(sent, sent, sent + 100 * MS, stream=sample)
    # A stream still running at the end (or failing) adds no gap: only measured successes do.
    rec.failure(sent, sent, sent + 50 * MS, "stream", "broke")
    st = rec.stream
    assert st.output_tokens == 17 and st.output_chunks == 17 and st.tokens_from_usage == 1
    assert _near(st.ttft.percentile_ns(50), 20 * MS)
    assert _near(st.tpot.percentile_ns(50), 5 * MS)  # 80 ms / (17 - 1)
    assert st.icl.count == 16 and st.itl.count == 0  # per-chunk counts unknown: no ITL


def test_tpot_with_several_tokens_per_chunk_excludes_the_whole_first_chunk() -> None:
    """4 chunks of 4 tokens: TPOT = 80 ms / (16 - 4), not 80 ms / (16 - 1) (a chunk gap of
    26.7 ms is not an inter-token latency)."""
    rec = make()
    sent = 103 * S
    gaps = [round(80 * MS / 3)] * 3
    sample = StreamSample(sent + 20 * MS, gaps, content_chunks=4, usage_tokens=16)
    rec.success(sent, sent, sent + 100 * MS, stream=sample)
    st = rec.stream
    assert _near(st.tpot.percentile_ns(50), 80 * MS / 12)
    assert st.icl.count == 3 and _near(st.icl.percentile_ns(50), 80 * MS / 3)
    assert st.itl.count == 0 and st.per_chunk_tokens_known == 0


def test_per_chunk_token_counts_give_inter_token_latency() -> None:
    rec = make()
    sent = 103 * S
    sample = StreamSample(
        sent + 20 * MS, [30 * MS, 40 * MS], content_chunks=3, usage_tokens=6,
        chunk_tokens=[1, 3, 2],
    )  # fmt: skip
    rec.success(sent, sent, sent + 90 * MS, stream=sample)
    st = rec.stream
    assert st.per_chunk_tokens_known == 1
    # 3 tokens in 30 ms: three samples of 10 ms; 2 tokens in 40 ms: two of 20 ms.
    assert st.itl.count == 5
    assert _near(st.itl.percentile_ns(50), 10 * MS) and _near(st.itl.max_ns, 20 * MS)
    assert _near(st.tpot.percentile_ns(50), 70 * MS / 5)  # (90 - 20) / (6 - 1)


def test_without_usage_chunks_are_counted_and_labelled_as_such() -> None:
    rec = make()
    sent = 103 * S
    rec.success(sent, sent, sent + 50 * MS,
                stream=StreamSample(sent + 10 * MS, [20 * MS] * 2, content_chunks=3))  # fmt: skip
    rec.success(sent, sent, sent + 50 * MS,
                stream=StreamSample(sent + 10 * MS, [], content_chunks=1, usage_tokens=5,
                                    done_marker_missing=True))  # fmt: skip
    st = rec.stream
    assert (st.tokens_from_chunk_count, st.tokens_from_usage) == (1, 1)
    assert st.output_tokens == 3 + 5 and st.done_marker_missing == 1
    # The one-chunk stream holds every token in its first chunk: no TPOT sample from it.
    assert st.tpot.count == 1 and _near(st.tpot.percentile_ns(50), 20 * MS)


def test_closing_intervals_allocates_no_histogram(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A fresh 264 KiB histogram per second fragments the heap and inflates the RSS slope."""
    import harborbench.engine.assemble as assemble
    from harborbench.engine.schedule import build_plan
    from harborbench.metrics.histogram import LatencyHistogram

    rec = make()  # the trial's own histograms are made once, here
    created = 0
    original_init = LatencyHistogram.__init__

    def counting_init(self: LatencyHistogram) -> None:
        nonlocal created
        created += 1
        original_init(self)

    monkeypatch.setattr(LatencyHistogram, "__init__", counting_init)
    for second in range(10):  # the whole 10 s window
        t = 102 * S + second * S
        for i in range(50):
            rec.success(t, t, t + (i + 1) * MS)
    plan = build_plan(warmup_s=2, levels=[(10.0, 100.0)], kind="open")
    rows = assemble.interval_rows(rec.pop_intervals_before(10**9), [], plan, None)
    assert created == 0
    assert len(rows) == 10 and all(r.successes == 50 for r in rows)
    # Each row's percentiles and histogram are its own second's, not a running total.
    assert {r.service_p50_s for r in rows} == {rows[0].service_p50_s}
    decoded = LatencyHistogram.decode(rows[-1].service_histogram)
    assert decoded.count == 50


def test_dropped_arrivals_count_only_inside_the_window() -> None:
    rec = make()
    rec.arrival_dropped(101 * S)  # warmup
    rec.arrival_dropped(105 * S)  # window
    rec.arrival_dropped(112 * S)  # after the window
    assert rec.unsent == 1


def test_a_warmup_request_completing_in_the_window_is_in_no_row() -> None:
    rec = make()
    rec.success(101 * S, 101 * S, 103 * S)  # sent in warmup, completed in second 1
    rec.failure(101 * S, 101 * S, 103 * S, "timeout", "slow")
    assert rec.intervals == {}
    assert rec.warmup_requests == 2


def test_the_last_interval_is_reused_only_within_its_second_and_forgotten_when_popped() -> None:
    rec = make()  # window [102 s, 112 s)
    rec.success(102 * S, 102 * S, 102 * S + 10 * MS)  # second 0
    rec.success(102 * S, 102 * S, 102 * S + 990 * MS)  # second 0 again (the reused interval)
    rec.success(102 * S, 102 * S, 103 * S)  # second 1: the boundary belongs to the next one
    rec.success(111 * S, 111 * S, 112 * S)  # at the window's end: in its last second, 9
    popped = rec.pop_intervals_before(1)
    assert [(iv.index, iv.successes) for iv in popped] == [(0, 2)]
    rec.success(102 * S, 102 * S, 102 * S + 20 * MS)  # late into second 0: a new interval
    assert sorted((i, iv.successes) for i, iv in rec.intervals.items()) == [(0, 1), (1, 1), (9, 1)]
    (again,) = rec.pop_intervals_before(1)  # the last outcome's interval is popped ...
    rec.success(102 * S, 102 * S, 102 * S + 30 * MS)  # ... so this one is not added to it
    assert again.successes == 1 and rec.intervals[0].successes == 1


def test_popping_intervals_bins_the_latency_buffers() -> None:
    rec = make()
    rec.sent(103 * S, 103 * S + MS)
    for i in range(1, 4):
        rec.success(103 * S, 103 * S, 103 * S + i * MS)
    histograms = (rec.service, rec.response, rec.sends.lag, rec.send_lag)
    assert [len(h._pending) for h in histograms] == [3, 3, 1, 1]
    rec.pop_intervals_before(1)
    assert [len(h._pending) for h in histograms] == [0, 0, 0, 0]  # bounded: a second at most
    assert [h.count for h in histograms] == [3, 3, 1, 1]
    assert abs(rec.service.max_ns - 3 * MS) <= 3 * MS * 0.001
