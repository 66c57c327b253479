"""Short whole trials on virtual time, with exact counts: the cheap tier that mutation testing
runs once per mutant of the engine (tests/engine/test_trial_virtual.py has the longer
scenarios). Latencies are multiples of 1/16 s, exact in binary, so every instant is exact, and
chosen so that no answer is due at the very instant a tick or the window's end is."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from harborbench.engine.clock import LoopClock
from harborbench.engine.progress import Progress
from harborbench.engine.runner import build_result, plan_from_profile, request_factory, run_trial
from harborbench.result import IntervalRow, TrialResult
from tests.engine.virtual import FakeClient, StallClock, after, profile, response

pytestmark = pytest.mark.looptime


async def trial(prof: Any, client: FakeClient, clock: LoopClock | None = None,
                **kw: Any) -> TrialResult:  # fmt: skip
    return await run_trial(
        prof, plan_from_profile(prof), "", None,
        index=0, client=client, clock=clock or LoopClock(), **kw,
    )  # fmt: skip


def accounted(t: TrialResult) -> int:
    return t.successes + t.failures + t.in_flight_at_end + t.health.unsent + t.health.sent_late


async def test_closed_loop_counts_rows_and_figures() -> None:
    client = FakeClient(after(0.3125), {"max_concurrent_requests": 5})
    t = await trial(profile({"concurrency": 2}, warmup="1s", duration="2s"), client)
    # each worker sends at k x 0.3125 s: k = 0..3 in the warmup, k = 4..9 measured; the one
    # sent at 2.8125 s is still in flight at 3 s, and none is sent at 3.125 s
    assert (t.successes, t.failures, t.in_flight_at_end, t.warmup_requests) == (10, 0, 2, 8)
    assert (t.index, t.window_s, t.interrupted) == (0, 2.0, False)
    assert t.throughput_ops == 5.0 and t.attempted_ops == 6.0 and t.failed_ops == 0.0
    assert t.error_rate == 0.0
    assert t.service_time.count == 10
    assert t.service_time.p50_s == pytest.approx(0.3125, rel=1e-3)
    assert t.response_time is None and t.stream is None
    assert [(r.t_s, r.warmup, r.successes) for r in t.timeseries] == [
        (-1.0, True, 6), (0.0, False, 4), (1.0, False, 6),
    ]  # fmt: skip
    h = t.health
    assert (h.achieved_level, h.configured_level, h.level_unit) == (2.0, 2.0, "concurrency")
    assert (h.client_limit_setting, h.client_limit, h.waiting_in_client_level) == (
        "client.max_concurrent_requests", 5, 0.0,
    )  # fmt: skip
    assert h.warnings == [] and not h.generator_saturated and h.max_outstanding is None
    assert (t.client_status, t.client_statistics) == ({"max_concurrent_requests": 5},
                                                      {"calls": client.calls})  # fmt: skip
    assert client.calls == 20
    assert (t.connections, t.server_stats) == ({}, None)
    assert (t.goodput_ops, t.slo_met, t.replay) == (None, None, None)
    assert t.tokens is not None and (t.tokens.without_usage, t.tokens.with_usage) == (10, 0)
    assert (t.memory.max_growth_pct, t.memory.max_slope_mb_per_min) == (20.0, 5.0)
    assert t.started_at.endswith("+00:00")
    assert client.closed is False and client.peak_in_flight == 2


async def test_open_loop_counts_response_times_and_backlog_bound() -> None:
    prof = profile({"rate": 4}, warmup="1s", duration="2s", gates={"memory_growth_max_pct": 30})
    t = await trial(prof, FakeClient(after(0.125)))
    assert (t.successes, t.in_flight_at_end, t.warmup_requests) == (8, 0, 4)
    assert t.throughput_ops == 4.0 and t.attempted_ops == 4.0
    assert t.response_time is not None and t.response_time.count == 8
    assert t.response_time.p50_s == pytest.approx(0.125, rel=1e-3)
    h = t.health
    assert (h.achieved_level, h.configured_level, h.level_unit) == (4.0, 4.0, "ops/s")
    assert h.max_outstanding == 400  # 4 x the default client limit of 100
    assert (h.unsent, h.sent_late, h.generator_saturated) == (0, 0, False)
    assert h.send_lag_max_s == pytest.approx(1e-6)  # sent on time: the 1 us floor
    assert h.clamped_latencies == 0
    assert t.memory.max_growth_pct == 30.0
    assert [(r.t_s, r.successes) for r in t.timeseries] == [(-1.0, 4), (0.0, 4), (1.0, 4)]


async def test_arrivals_beyond_the_backlog_bound_are_dropped_and_accounted() -> None:
    prof = profile({"rate": 10, "max_outstanding": 1}, duration="1s")
    t = await trial(prof, FakeClient(after(0.25)))
    # sent at 0, 0.3, 0.6, 0.9 s; the two after each are dropped; the last is in flight
    assert (t.successes, t.in_flight_at_end, t.health.unsent) == (3, 1, 6)
    assert accounted(t) == 10
    assert t.attempted_ops == 4.0
    assert t.health.generator_saturated and t.health.max_outstanding == 1
    assert any("6 arrivals of the window were dropped (1 requests" in w for w in t.health.warnings)


async def test_dropped_arrivals_name_the_client_limit_and_fail_the_gates() -> None:
    # The reported burst in small: the pool's max_size (2) lets requests queue inside the
    # client until the backlog bound (4) is full, then arrivals drop.
    status = {"mode": "optimized", "max_concurrent_requests": 100, "connection_pool_max_size": 2}
    prof = profile({"rate": 20, "max_outstanding": 4}, duration="1s",
                   gates={"success_rate_min": "40%"})  # fmt: skip
    t = await trial(prof, FakeClient(after(0.4375), status))
    # sent at 0, .05, .1, .15 (answers at .4375 to .5875), .2-.4 dropped; .45-.6 sent as slots
    # free (answers at .8875 to 1.0375), .65-.85 dropped; .9 and .95 sent
    assert (t.successes, t.failures, t.in_flight_at_end, t.health.unsent) == (7, 0, 3, 10)
    assert accounted(t) == 20
    h = t.health
    # in the client call: 7 x 0.4375 s answered + 0.4 + 0.1 + 0.05 s in flight = 3.6125 s
    assert h.waiting_in_client_level == pytest.approx(3.6125 - 2)
    assert h.warnings[0].startswith(
        "10 arrivals of the window were dropped (4 requests were pending, load.max_outstanding): "
        "client.connection_pool.max_size = 2 caps the requests on the wire: of 3.6 requests in "
        "the client call on average, at least 1.6 waited inside the client; raise "
        "client.connection_pool.max_size to carry the offered rate"
    )
    result = build_result(prof, "dropped", [t], {}, interrupted=False)
    verdicts = {g.name: (g.verdict, g.observed) for g in result.gates}
    # 7 of 7 + 0 + 10 succeeded: 41.18% passes 40%; 10 of 20 planned dropped fails the default 1%
    assert verdicts == {"success rate": ("pass", "41.18%"),
                        "dropped arrivals": ("fail", "50.00%")}  # fmt: skip
    stricter = profile({"rate": 20, "max_outstanding": 4}, duration="1s",
                       gates={"success_rate_min": "42%", "dropped_max_pct": 50})  # fmt: skip
    result = build_result(stricter, "dropped", [t], {}, interrupted=False)
    verdicts = {g.name: (g.verdict, g.observed) for g in result.gates}
    assert verdicts == {"success rate": ("fail", "41.18%"),
                        "dropped arrivals": ("pass", "50.00%")}  # fmt: skip


async def test_a_stall_makes_the_rest_late_with_their_lag() -> None:
    clock = StallClock()

    async def behaviour(i: int) -> Any:
        if i == 5:  # the arrival at 0.5 s blocks the loop for 0.5 s
            clock.stall(0.5)
        await asyncio.sleep(0.125)
        return response()

    t = await trial(profile({"rate": 10}, duration="1s"), FakeClient(behaviour), clock)
    # answered: 0 .. 0.3 s; the one sent at 0.4 s is answered after the stall, past the end
    assert (t.successes, t.in_flight_at_end, t.health.sent_late) == (4, 2, 4)
    assert accounted(t) == 10
    # the driver's wake-up for 0.6 s reads 1.1 s after the stall: 0.6 .. 0.9 s are late by
    # 0.5 s at most
    assert t.health.send_lag_max_s == pytest.approx(0.5, rel=1e-3)
    assert t.health.generator_saturated


async def test_a_request_pending_longer_than_the_timeout_is_a_timeout_failure() -> None:
    async def behaviour(i: int) -> Any:
        await asyncio.sleep(3600 if i == 0 else 0.25)
        return response()

    prof = profile({"concurrency": 2}, duration="2s",
                   request={"prompt_tokens": 4, "max_tokens": 4, "timeout": "1s"})  # fmt: skip
    t = await trial(prof, FakeClient(behaviour))
    assert t.failures_by_kind == {"timeout": 1}
    assert (t.successes, t.failures, t.in_flight_at_end) == (8, 1, 0)
    assert t.error_rate == pytest.approx(1 / 9)
    assert t.failed_ops == 0.5
    assert t.health.achieved_level == 2.0


async def test_a_stop_ends_the_trial_early_and_marks_it_interrupted() -> None:
    stop = asyncio.Event()

    async def stopper() -> None:
        await asyncio.sleep(1.4375)
        stop.set()

    task = asyncio.create_task(stopper())
    prof = profile({"concurrency": 1}, warmup="1s", duration="2s")
    t = await trial(prof, FakeClient(after(0.25)), stop=stop)
    await task
    assert t.interrupted
    assert t.window_s == pytest.approx(0.4375)
    assert (t.successes, t.in_flight_at_end) == (1, 1)  # answered at 1.25 s; 1.25 s pending
    # the last, partial second is rated over its length
    assert t.timeseries[-1].t_s == 0.0
    assert t.timeseries[-1].throughput_ops == pytest.approx(1 / 0.4375)
    assert not any("keep up" in w for w in t.health.warnings)


async def test_an_open_loop_stop_does_not_wait_for_the_schedule() -> None:
    stop = asyncio.Event()
    stop.set()
    t = await trial(profile({"rate": 10}, duration="5s"), FakeClient(after(0.125)), stop=stop)
    assert t.interrupted and t.window_s == 0.0
    assert t.throughput_ops == 0.0 and t.error_rate is None


async def test_progress_and_rows_arrive_once_a_second() -> None:
    seen: list[Progress] = []
    batches: list[list[IntervalRow]] = []
    prof = profile({"concurrency": 1}, warmup="1s", duration="2s", repeat=3)
    t = await trial(prof, FakeClient(after(0.4375)), progress=seen.append, on_rows=batches.append)
    # one worker, 0.4375 s a request: answers at 0.4375, 0.875 (warmup rows), 1.3125 (a warmup
    # request: no row), then 1.75 | 2.1875, 2.625; the one sent at 2.625 s is in flight
    assert (t.successes, t.in_flight_at_end) == (3, 1)
    assert [(p.phase, p.elapsed_s, p.successes, p.in_flight) for p in seen] == [
        ("warmup", 1.0, 0, 0), ("measure", 2.0, 1, 1),
    ]  # fmt: skip
    assert [(p.trial, p.trials, p.total_s, p.failures) for p in seen] == [(1, 3, 3.0, 0)] * 2
    assert [p.throughput_ops for p in seen] == [2.0, 1.0]
    assert seen[1].p95_s == pytest.approx(0.4375, rel=1e-3)
    assert [[(r.t_s, r.successes) for r in b] for b in batches] == [[(-1.0, 2)], [(0.0, 1)]]


async def test_without_warmup_the_first_tick_is_at_the_start() -> None:
    seen: list[Progress] = []
    t = await trial(profile({"concurrency": 1}, duration="2s"), FakeClient(after(0.3125)),
                    progress=seen.append)  # fmt: skip
    assert [(p.phase, p.elapsed_s, p.throughput_ops, p.p95_s) for p in seen] == [
        ("measure", 0.0, 0.0, None), ("measure", 1.0, 3.0, pytest.approx(0.3125, rel=1e-3)),
    ]  # fmt: skip
    assert (t.successes, t.in_flight_at_end) == (6, 1)


async def test_a_trial_starts_at_the_given_instant() -> None:
    clock = LoopClock()
    start = clock.now_ns() + 500_000_000
    t = await trial(profile({"rate": 4}, duration="1s"), FakeClient(after(0.125)), clock,
                    start_ns=start)  # fmt: skip
    assert clock.now_ns() >= start + 1_000_000_000
    assert t.successes == 4 and t.health.send_lag_max_s == pytest.approx(1e-6)


async def test_a_freed_slot_is_used_by_the_next_arrival_not_dropped_early() -> None:
    prof = profile({"rate": 10, "max_outstanding": 1}, duration="1s")
    t = await trial(prof, FakeClient(after(0.15)))
    # sent at 0, 0.2, 0.4, 0.6, 0.8 s; each one in between finds the one slot taken
    assert (t.successes, t.in_flight_at_end, t.health.unsent) == (5, 0, 5)


async def test_goodput_counts_the_requests_within_the_objectives() -> None:
    async def behaviour(i: int) -> Any:
        await asyncio.sleep(0.125 if i % 2 else 0.25)
        return response()

    prof = profile({"concurrency": 1}, duration="2s", slo={"latency_max": "200ms"})
    batches: list[list[IntervalRow]] = []
    t = await trial(prof, FakeClient(behaviour), on_rows=batches.append)
    # 0.25 s then 0.125 s, alternately: 5 pairs in 1.875 s, then one of 0.25 s in flight
    assert (t.successes, t.slo_met, t.in_flight_at_end) == (10, 5, 1)
    assert t.goodput_ops == 2.5
    assert [r.slo_met for b in batches for r in b] == [2]  # met at 0.375 and 0.75 s
    assert [r.slo_met for r in t.timeseries] == [2, 3]


async def test_warmup_ticks_start_at_the_first_whole_second() -> None:
    seen: list[Progress] = []
    prof = profile({"concurrency": 1}, warmup="2s", duration="1s")
    await trial(prof, FakeClient(after(0.3125)), progress=seen.append)
    assert [(p.phase, p.elapsed_s) for p in seen] == [("warmup", 1.0), ("warmup", 2.0)]


async def test_elapsed_time_counts_from_the_trials_own_start() -> None:
    clock = LoopClock()
    seen: list[Progress] = []
    start = clock.now_ns() + 3_000_000_000
    await trial(profile({"concurrency": 1}, duration="2s"), FakeClient(after(0.3125)), clock,
                start_ns=start, progress=seen.append)  # fmt: skip
    assert [p.elapsed_s for p in seen] == [0.0, 1.0]


async def test_a_stop_that_never_comes_lets_the_window_run_to_its_end() -> None:
    t = await trial(profile({"concurrency": 1}, duration="1s"), FakeClient(after(0.3125)),
                    stop=asyncio.Event())  # fmt: skip
    assert not t.interrupted and t.window_s == 1.0 and t.successes == 3


async def test_a_broken_progress_callback_is_raised_as_itself() -> None:
    def progress(p: Progress) -> None:
        raise KeyError("display broke")

    with pytest.raises(KeyError, match="display broke"):
        await trial(profile({"rate": 4}, duration="2s"), FakeClient(after(0.125)),
                    progress=progress)  # fmt: skip


def text_chunk(text: str) -> Any:
    """A stream chunk carrying text and no usage."""
    return SimpleNamespace(choices=[SimpleNamespace(delta=SimpleNamespace(content=text))],
                           usage=None)  # fmt: skip


async def test_a_streamed_trial_judges_ttft_and_tpot_against_the_slo() -> None:
    # Three kinds of stream of three one-token chunks, in turn: (first chunk after, gap, gap).
    shapes = [(0.25, 0.0625, 0.0625),  # ttft 0.25 s misses, tpot 0.0625 s meets
              (0.0625, 0.25, 0.25),  # ttft meets, tpot 0.25 s misses
              (0.0625, 0.0625, 0.0625)]  # both meet  # fmt: skip

    async def behaviour(i: int) -> Any:
        first, *gaps = shapes[i % 3]
        await asyncio.sleep(first)  # the stream opens with its first chunk (never at once)

        async def chunks() -> AsyncIterator[Any]:
            yield text_chunk("t0")
            for k, wait in enumerate(gaps, start=1):
                await asyncio.sleep(wait)
                yield text_chunk(f"t{k}")

        return chunks()

    prof = profile({"concurrency": 1}, duration="2s",
                   request={"prompt_tokens": 4, "max_tokens": 4, "timeout": "10s", "stream": True},
                   slo={"ttft_max": "125ms", "tpot_max": "125ms"})  # fmt: skip
    t = await trial(prof, FakeClient(behaviour))
    # answered at 0.375, 0.9375, 1.125 and 1.5 s; the one sent at 1.5 s ends at 2.0625 s
    assert (t.successes, t.failures, t.in_flight_at_end) == (4, 0, 1)
    assert (t.slo_met, t.goodput_ops) == (1, 0.5)  # only the third kind met both objectives
    assert t.stream is not None
    assert (t.stream.output_tokens, t.stream.output_chunks, t.stream.ttft.count) == (12, 12, 4)
    assert t.stream.tpot.count == 4


class RecordingClient(FakeClient):
    """A fake client that keeps the first message of every request."""

    def __init__(self, behaviour: Any) -> None:
        super().__init__(behaviour)
        self.prompts: list[str] = []

    async def acreate(self, **params: Any) -> Any:
        self.prompts.append(params["messages"][0]["content"])
        return await super().acreate(**params)


async def test_a_shards_trial_sends_its_own_stripe_of_the_requests() -> None:
    prof = profile({"concurrency": 2}, duration="1s")
    plan = dataclasses.replace(plan_from_profile(prof), stripe=(1, 2))
    client = RecordingClient(after(0.3125))
    t = await run_trial(prof, plan, "", None, index=0, client=client, clock=LoopClock())
    # global worker 1 only: sent at 0, 0.3125, 0.625 and 0.9375 s
    assert (t.successes, t.in_flight_at_end) == (3, 1)
    mine, whole = request_factory(prof, (1, 2)), request_factory(prof)
    assert client.prompts == [mine.next_params()["messages"][0]["content"] for _ in range(4)]
    assert client.prompts != [whole.next_params()["messages"][0]["content"] for _ in range(4)]
