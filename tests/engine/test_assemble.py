"""The assembly of a trial's figures: the generator's health verdict on each side of every
threshold, the configured level, the client limit, and the one-second time series."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest

from harborbench.engine.assemble import (
    ACHIEVED_WARN_RATIO,
    client_limit,
    configured_level,
    fill_gaps,
    health_figures,
    interval_rows,
)
from harborbench.engine.recorder import Interval, Recorder
from harborbench.engine.schedule import LoadPlan, build_plan
from harborbench.metrics.histogram import LatencyHistogram
from harborbench.metrics.looplag import LAG_SATURATED_S, LAG_WARN_S
from harborbench.metrics.resources import ResourceSample
from harborbench.result import HealthFigures, IntervalRow

S = 1_000_000_000


class ExactHistogram:
    """A stand-in for a lag histogram that reports exactly the given p99 and max (ns)."""

    def __init__(self, p99_ns: int | None, max_ns: int = 0) -> None:
        self.count = 0 if p99_ns is None else 100
        self._p99 = p99_ns
        self.max_ns = max_ns

    def percentile_ns(self, q: float) -> int:
        assert q == 99 and self._p99 is not None
        return self._p99


def judge(
    kind: str = "closed",
    *,
    level: float = 4,
    loop_p99_ns: int | None = None,
    loop_max_ns: int = 0,
    send_p99_ns: int | None = None,
    send_max_ns: int = 0,
    cpu_saturated: bool = False,
    cpu_percent: float = 20.0,
    window_s: float = 10.0,
    interrupted: bool = False,
    sent: int = 0,
    busy_ns: int | None = None,
    unsent: int = 0,
    sent_late: int = 0,
    successes: int = 100,
    failures: int = 0,
    **kw: Any,
) -> HealthFigures:
    plan = build_plan(warmup_s=0, levels=[(10.0, level)], kind=kind)  # type: ignore[arg-type]
    rec = Recorder(0, 0, 10, open_loop=kind == "open")
    rec.send_lag = ExactHistogram(send_p99_ns, send_max_ns)  # type: ignore[assignment]
    rec.unsent, rec.sent_late = unsent, sent_late
    rec.successes, rec.failures = successes, failures
    lag = SimpleNamespace(histogram=ExactHistogram(loop_p99_ns, loop_max_ns))
    if busy_ns is None:
        busy_ns = round(level * window_s * S)  # every worker busy all the window
    if kind == "open" and sent == 0:
        sent = round(level * window_s)
    return health_figures(
        plan, rec, lag, cpu_saturated, cpu_percent, window_s,  # type: ignore[arg-type]
        interrupted, sent=sent, busy_ns=busy_ns, **kw,
    )  # fmt: skip


def test_a_healthy_closed_loop_has_exact_figures_and_no_warning() -> None:
    h = judge(loop_p99_ns=1_000_000, loop_max_ns=3_000_000)
    assert h == HealthFigures(
        loop_lag_p99_s=0.001, loop_lag_max_s=0.003, send_lag_p99_s=None, send_lag_max_s=None,
        configured_level=4.0, achieved_level=4.0, level_unit="concurrency", unsent=0,
        generator_saturated=False, warnings=[], sent_late=0, max_outstanding=None,
        clamped_latencies=0, client_limit_setting=None, client_limit=None,
        waiting_in_client_level=None,
    )  # fmt: skip


def test_open_loop_achieved_rate_is_sent_over_the_window() -> None:
    h = judge("open", level=100, sent=950, send_p99_ns=1_000_000, send_max_ns=2_000_000,
              max_outstanding=40)  # fmt: skip
    assert (h.achieved_level, h.configured_level, h.level_unit) == (95.0, 100.0, "ops/s")
    assert (h.send_lag_p99_s, h.send_lag_max_s) == (0.001, 0.002)
    assert h.max_outstanding == 40
    assert h.warnings == [] and not h.generator_saturated
    assert h.waiting_in_client_level is None


def test_no_window_achieves_nothing() -> None:
    assert judge("open", level=100, sent=5, window_s=0.0).achieved_level == 0.0
    assert judge(window_s=0.0, busy_ns=S).achieved_level == 0.0


def test_loop_lag_at_the_saturation_threshold_warns_but_does_not_saturate() -> None:
    at = round(LAG_SATURATED_S * S)
    h = judge(loop_p99_ns=at, loop_max_ns=2 * at)
    assert not h.generator_saturated
    assert h.warnings == [
        "event-loop lag p99 100.0 ms: the generator was busy; timings include its delays"
    ]
    over = judge(loop_p99_ns=at + 1, loop_max_ns=250_000_000)
    assert over.generator_saturated
    assert over.warnings == [
        "the generator's event loop lagged 100 ms at p99 (max 250 ms): its own stalls are in "
        "every timing, so this run does not measure the target; find the blocking call or "
        "lower the load"
    ]


def test_loop_lag_at_the_warning_threshold_is_quiet() -> None:
    at = round(LAG_WARN_S * S)
    assert judge(loop_p99_ns=at).warnings == []
    h = judge(loop_p99_ns=at + 1_000)
    assert h.warnings == [
        "event-loop lag p99 20.0 ms: the generator was busy; timings include its delays"
    ]
    assert not h.generator_saturated


def test_send_lag_over_the_threshold_saturates_an_open_loop_only() -> None:
    at = round(LAG_WARN_S * S)
    quiet = judge("open", level=10, send_p99_ns=at)
    assert (quiet.warnings, quiet.generator_saturated) == ([], False)
    late = judge("open", level=10, send_p99_ns=at + 1_000_000)
    assert late.generator_saturated
    assert late.warnings == [
        "sends fell behind the schedule (p99 21.0 ms): the response times from the intended "
        "send include this lag"
    ]
    closed = judge("closed", send_p99_ns=at + 1_000_000)
    assert not closed.generator_saturated
    assert len(closed.warnings) == 1


def test_dropped_and_late_arrivals_saturate_with_their_counts() -> None:
    h = judge("open", level=10, unsent=1, max_outstanding=40)
    assert h.generator_saturated and h.unsent == 1
    assert h.warnings == [
        "1 arrivals of the window were dropped (40 requests were pending, load.max_outstanding): "
        "the client could not keep up with the offered rate; the figures measure its capacity, "
        "the dropped arrivals count against the success rate, and the latency figures leave "
        "them out"
    ]
    late = judge("open", level=10, sent_late=1, send_p99_ns=1_000, send_max_ns=1_500_000_000)
    assert late.generator_saturated and late.sent_late == 1
    assert late.warnings == [
        "1 arrivals of the window were reached only after it closed (the generator fell behind, "
        "max send lag 1500 ms) and not sent"
    ]
    no_lag = judge("open", level=10, sent_late=2)
    assert "max send lag 0 ms" in no_lag.warnings[0]


def test_a_saturated_cpu_is_named_and_saturates() -> None:
    h = judge(cpu_saturated=True, cpu_percent=97.4)
    assert h.generator_saturated
    assert h.warnings == [
        "the load generator used 97% of a CPU core: its own limits may cap these figures; lower "
        "the load or compare at equal load"
    ]


def test_clamped_latencies_warn_without_saturating() -> None:
    h = judge(clamped=3)
    assert h.clamped_latencies == 3 and not h.generator_saturated
    assert h.warnings == [
        "3 latencies lay outside the histogram's range (1 us to 1 h) and were recorded at its edge"
    ]


def test_achieved_below_nine_tenths_of_the_configured_level_warns() -> None:
    at = judge(level=10, busy_ns=round(ACHIEVED_WARN_RATIO * 10 * 10 * S))
    assert at.achieved_level == pytest.approx(9.0) and at.warnings == []
    below = judge(level=10, busy_ns=round(8.9 * 10 * S))
    assert below.warnings == [
        "achieved 8.9 concurrency of the configured 10.0: the client or the target could not "
        "keep up with the offered load"
    ]
    assert not below.generator_saturated
    assert judge(level=10, busy_ns=0, interrupted=True).warnings == []
    open_below = judge("open", level=100, sent=500)
    assert open_below.warnings[0].startswith("achieved 50.0 ops/s of the configured 100.0")


def test_a_client_limit_below_the_level_names_the_setting_instead() -> None:
    h = judge(level=200, busy_ns=200 * 10 * S, client_limit=("client.connection_pool_size", 50))
    assert (h.client_limit_setting, h.client_limit) == ("client.connection_pool_size", 50)
    assert h.waiting_in_client_level == 150.0
    assert h.warnings == [
        "client.connection_pool_size = 50 caps the requests on the wire: of 200.0 requests in the "
        "client call on average, at least 150.0 waited inside the client; raise "
        "client.connection_pool_size to load the target with 200"
    ]
    assert not h.generator_saturated


def test_a_client_limit_equal_to_the_level_caps_nothing() -> None:
    h = judge(level=50, busy_ns=40 * 10 * S, client_limit=("client.max_concurrent_requests", 50))
    assert h.waiting_in_client_level == 0.0
    assert h.warnings == [
        "achieved 40.0 concurrency of the configured 50.0: the client or the target could not "
        "keep up with the offered load"
    ]
    # over the limit in the call but configured no higher than it: not capped either
    h = judge(level=50, busy_ns=60 * 10 * S, client_limit=("client.max_concurrent_requests", 50))
    assert h.waiting_in_client_level == 10.0 and h.warnings == []


def test_a_client_limit_with_nobody_waiting_caps_nothing() -> None:
    h = judge(level=200, busy_ns=40 * 10 * S, client_limit=("client.max_concurrent_requests", 50))
    assert h.waiting_in_client_level == 0.0
    assert h.warnings[0].startswith("achieved 40.0 concurrency of the configured 200.0")


def test_an_open_loop_at_its_client_limit_waits_for_nothing() -> None:
    # 5 requests in the client call on average, the limit 5: nobody waited
    h = judge("open", level=10, busy_ns=5 * 10 * S,
              client_limit=("client.max_concurrent_requests", 5))  # fmt: skip
    assert h.waiting_in_client_level == 0.0
    assert (h.client_limit_setting, h.client_limit) == ("client.max_concurrent_requests", 5)
    assert h.warnings == [] and not h.generator_saturated


def test_an_open_loop_above_its_client_limit_names_it_without_saturating() -> None:
    h = judge("open", level=10, busy_ns=round(5.5 * 10 * S),
              client_limit=("client.connection_pool.max_size", 5))  # fmt: skip
    assert h.waiting_in_client_level == pytest.approx(0.5)
    assert h.warnings == [
        "client.connection_pool.max_size = 5 caps the requests on the wire: of 5.5 requests in "
        "the client call on average, at least 0.5 waited inside the client; the response times "
        "from the intended send include that wait; raise client.connection_pool.max_size to "
        "carry 10.0 ops/s without it"
    ]
    assert not h.generator_saturated


def test_dropped_arrivals_behind_a_client_limit_name_the_limit_to_raise() -> None:
    # the reported burst: 600 ops/s offered over 5 s, 1,893 sent, 1,107 dropped with 400
    # pending; the pool's max_size of 10 let 390 of them wait inside the client on average
    pool = ("client.connection_pool.max_size", 10)
    h = judge("open", level=600, window_s=5.0, sent=1893, unsent=1107, busy_ns=390 * 5 * S,
              max_outstanding=400, client_limit=pool)  # fmt: skip
    assert h.waiting_in_client_level == 380.0 and h.generator_saturated
    assert h.warnings == [
        "1107 arrivals of the window were dropped (400 requests were pending, "
        "load.max_outstanding): client.connection_pool.max_size = 10 caps the requests on the "
        "wire: of 390.0 requests in the client call on average, at least 380.0 waited inside "
        "the client; raise client.connection_pool.max_size to carry the offered rate (a larger "
        "load.max_outstanding would only lengthen that queue); the dropped arrivals count "
        "against the success rate, and the latency figures leave them out"
    ]  # one warning: not the generic "achieved 378.6 ops/s of the configured 600.0" as well
    at_limit = judge("open", level=600, window_s=5.0, sent=1893, unsent=1107,
                     busy_ns=10 * 5 * S, max_outstanding=400, client_limit=pool)  # fmt: skip
    assert at_limit.warnings[0].endswith("the client could not keep up with the offered rate; "
        "the figures measure its capacity, the dropped arrivals count against the success "
        "rate, and the latency figures leave them out")  # fmt: skip
    assert at_limit.warnings[1] == (
        "achieved 378.6 ops/s of the configured 600.0: the client or the target could not keep "
        "up with the offered load"
    )


def test_configured_level_weights_each_stage_by_its_time_in_the_window() -> None:
    plan = build_plan(warmup_s=2, levels=[(3.0, 10.0), (1.0, 100.0)], kind="open")
    assert configured_level(plan) == pytest.approx((3 * 10 + 1 * 100) / 4, abs=1e-12)
    closed = build_plan(warmup_s=1, levels=[(1.0, 10), (3.0, 4)], kind="closed")
    assert configured_level(closed) == pytest.approx((1 * 10 + 3 * 4) / 4, abs=1e-12)
    # shard 1 of 3 of ten workers runs global workers 1, 4, 7: three of them
    shard = dataclasses.replace(closed, stripe=(1, 3))
    assert configured_level(shard) == pytest.approx((1 * 3 + 3 * 1) / 4, abs=1e-12)
    empty = LoadPlan(kind="open", arrival="constant", warmup_s=0.0, steps=())
    assert configured_level(empty) == 0.0


def test_client_limit_picks_the_smaller_setting() -> None:
    assert client_limit({"max_concurrent_requests": 50, "connection_pool_size": 50}) == (
        "client.max_concurrent_requests", 50,
    )  # fmt: skip
    assert client_limit({"max_concurrent_requests": 40, "connection_pool_size": 50}) == (
        "client.max_concurrent_requests", 40,
    )  # fmt: skip
    assert client_limit({"max_concurrent_requests": 1}) == ("client.max_concurrent_requests", 1)
    for bad in (0, -1, "8", None):
        assert client_limit({"max_concurrent_requests": bad}) is None
        assert client_limit({"connection_pool_size": bad}) is None
        assert client_limit({"connection_pool_max_size": bad}) is None
    assert client_limit({"connection_pool_size": 1}) == ("client.connection_pool_size", 1)
    # the adaptive pool grows on demand up to its max_size: that is its cap, not the start size
    status = {"connection_pool_size": 30, "connection_pool_max_size": 20}
    assert client_limit(status) == ("client.connection_pool.max_size", 20)
    for bad in (0, "20", None):
        assert client_limit({**status, "connection_pool_max_size": bad}) == (
            "client.connection_pool_size", 30,
        )  # fmt: skip
    assert client_limit({**status, "mode": "traditional"}) is None
    assert client_limit({"mode": "traditional", "connection_pool_size": 30}) is None


def sample(t_s: float, rss: int, cpu_percent: float = 0.0) -> ResourceSample:
    return ResourceSample(t_s=t_s, rss_bytes=rss, cpu_user_s=0.0, cpu_system_s=0.0,
                          cpu_percent=cpu_percent)  # fmt: skip


def test_interval_rows_have_exact_percentiles_and_the_sample_at_their_end() -> None:
    plan = build_plan(warmup_s=1, levels=[(3.0, 10.0)], kind="open")
    iv = Interval(1, False, successes=4, failures=2, service_ns=[1000, 1100, 1200, 1300],
                  response_ns=[1500, 1600, 1700, 1800], slo_met=3)  # fmt: skip
    warm = Interval(-1, True, successes=1, service_ns=[1900])
    samples = [sample(0.0, 10), sample(1.0, 11, 5.0), sample(2.0, 12, 7.5)]
    rows = interval_rows([warm, iv], samples, plan, None, slo=True)
    w, r = rows
    assert (w.t_s, w.warmup, w.successes, w.rss_bytes, w.cpu_percent) == (-1.0, True, 1, 10, 0.0)
    assert w.response_p99_s is None and w.response_histogram == ""
    assert (r.t_s, r.warmup, r.successes, r.failures) == (1.0, False, 4, 2)
    assert r.throughput_ops == 4.0
    assert (r.service_p50_s, r.service_p95_s, r.service_p99_s) == (1100e-9, 1300e-9, 1300e-9)
    assert r.response_p99_s == 1800e-9
    assert (r.rss_bytes, r.cpu_percent) == (12, 7.5)
    expected = LatencyHistogram()
    expected.record_many_ns([1000, 1100, 1200, 1300])
    assert r.service_histogram == expected.encode()
    expected.reset()
    expected.record_many_ns([1500, 1600, 1700, 1800])
    assert r.response_histogram == expected.encode()
    assert r.slo_met == 3
    assert interval_rows([iv], [], plan, None)[0].slo_met is None
    empty = interval_rows([Interval(0, False)], [], plan, None)[0]
    assert (empty.service_p50_s, empty.service_histogram, empty.rss_bytes) == (None, "", None)


def test_the_last_partial_second_is_rated_by_its_length() -> None:
    plan = build_plan(warmup_s=0, levels=[(3.0, 10.0)], kind="open")
    ivs = [Interval(1, False, successes=3), Interval(2, False, successes=3)]
    rows = interval_rows(ivs, [], plan, 2.5)
    assert [r.throughput_ops for r in rows] == [3.0, 6.0]
    whole = interval_rows([Interval(2, False, successes=3)], [], plan, 3.0)
    assert whole[0].throughput_ops == 3.0


def test_fill_gaps_gives_one_row_per_second_with_zeros() -> None:
    plan = build_plan(warmup_s=0, levels=[(3.0, 10.0)], kind="open")
    have = interval_rows([Interval(0, False, successes=5, service_ns=[1000])], [], plan, None)
    samples = [sample(-1.0, 7), sample(0.0, 8, 1.0), sample(2.0, 9, 2.0)]
    rows = fill_gaps(have, -2, 1, samples)
    assert [r.t_s for r in rows] == [-2.0, -1.0, 0.0, 1.0]
    assert [r.warmup for r in rows] == [True, True, False, False]
    assert rows[2] is have[0]
    gap = rows[0]
    assert isinstance(gap, IntervalRow)
    assert (gap.successes, gap.failures, gap.throughput_ops) == (0, 0, 0.0)
    assert (gap.rss_bytes, gap.cpu_percent) == (7, 0.0)  # the sample at the end of -2 s
    assert (rows[1].rss_bytes, rows[1].cpu_percent) == (8, 1.0)
    assert (rows[3].rss_bytes, rows[3].cpu_percent) == (9, 2.0)
    assert (gap.service_p50_s, gap.service_histogram, gap.response_histogram) == (None, "", "")
    assert fill_gaps([], 0, 0, [])[0].rss_bytes is None


@pytest.mark.parametrize(("successes", "failures"), [(0, 40), (0, 0), (50, 50)])
def test_dropped_arrivals_behind_a_failing_target_do_not_blame_the_client(
    successes: int, failures: int
) -> None:
    # a hanging or failing target: requests pile up inside the client until the backlog is
    # full; raising the client's limit would not help, the target is the cause
    limit = ("client.max_concurrent_requests", 100)
    h = judge("open", level=100, window_s=5.0, sent=400, unsent=100, busy_ns=400 * 5 * S,
              max_outstanding=400, client_limit=limit, successes=successes,
              failures=failures)  # fmt: skip
    assert h.waiting_in_client_level == 300.0 and h.generator_saturated
    assert h.warnings == [
        "100 arrivals of the window were dropped (400 requests were pending, "
        f"load.max_outstanding): the target answered {successes} requests of the window "
        f"successfully while {failures} failed or timed out, so they waited on the target, not "
        "on a client setting; fix the target or lower the rate; the dropped arrivals count "
        "against the success rate"
    ]
    assert "raise client" not in " ".join(h.warnings)
    # most requests succeeded: the same queue is the client's limit, named with its fix
    ok = judge("open", level=100, window_s=5.0, sent=400, unsent=100, busy_ns=400 * 5 * S,
               max_outstanding=400, client_limit=limit, successes=51, failures=50)  # fmt: skip
    assert "raise client.max_concurrent_requests to carry the offered rate" in ok.warnings[0]


def test_more_edges_of_the_health_verdict() -> None:
    # half a second of window: rates are per second all the same
    assert judge("open", level=10, sent=5, window_s=0.5).achieved_level == 10.0
    assert judge(level=4, busy_ns=2 * S, window_s=0.5).achieved_level == 4.0
    # one worker configured, half of one achieved: warned
    one = judge(level=1, busy_ns=5 * S)
    assert one.warnings[0].startswith("achieved 0.5 concurrency of the configured 1.0")
    # half a request waiting inside the client is already a cap
    h = judge(level=200, busy_ns=505 * S, client_limit=("client.max_concurrent_requests", 50))
    assert h.waiting_in_client_level == pytest.approx(0.5)
    assert h.warnings[0].startswith("client.max_concurrent_requests = 50 caps")
    # the lags are printed in milliseconds
    stalled = judge("open", level=10, loop_p99_ns=750_000_000, loop_max_ns=1_500_000_000,
                    send_p99_ns=750_000_000)  # fmt: skip
    assert stalled.warnings[0].startswith(
        "the generator's event loop lagged 750 ms at p99 (max 1500 ms)"
    )
    assert stalled.warnings[1].startswith("sends fell behind the schedule (p99 750.0 ms)")


def test_interval_percentiles_are_the_named_ranks() -> None:
    plan = build_plan(warmup_s=0, levels=[(1.0, 10.0)], kind="open")
    values = list(range(1000, 1100))  # 100 exact values: rank q is the q-th value
    (r,) = interval_rows([Interval(0, False, successes=100, service_ns=values,
                                   response_ns=values)], [], plan, None)  # fmt: skip
    assert (r.service_p50_s, r.service_p95_s, r.service_p99_s) == (1049e-9, 1094e-9, 1098e-9)
    assert r.response_p99_s == 1098e-9


def test_gaps_from_the_window_start_are_not_warmup() -> None:
    assert [r.warmup for r in fill_gaps([], -1, 1, [])] == [True, False, False]


def test_more_edges_of_the_configured_level_and_client_limit() -> None:
    half = build_plan(warmup_s=0, levels=[(0.5, 10.0)], kind="open")
    assert configured_level(half) == 10.0
    assert client_limit({"connection_pool_size": 30, "connection_pool_max_size": 1}) == (
        "client.connection_pool.max_size", 1,
    )  # fmt: skip


def test_an_interval_starting_at_the_windows_end_is_rated_over_the_floor_length() -> None:
    # An interrupted trial's window can end on a whole second, and an outcome decided at that
    # instant (a success answered then, a timeout judged then) is binned in the interval that
    # starts there: its length inside the window is 0, held at the 1 ns floor.
    plan = build_plan(warmup_s=0, levels=[(3.0, 10.0)], kind="open")
    ivs = [Interval(1, False, successes=3), Interval(2, False, successes=3)]
    rows = interval_rows(ivs, [], plan, 2.0)
    assert [r.throughput_ops for r in rows] == [3.0, 3 / 1e-9]
    # just inside: the interval has 0.25 s of the window
    assert interval_rows(ivs[1:], [], plan, 2.25)[0].throughput_ops == 12.0
    # just outside (window ends before the interval starts): a whole second
    assert interval_rows(ivs[1:], [], plan, 1.75)[0].throughput_ops == 3.0
