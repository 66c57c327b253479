"""Whole trials on virtual time with a fake client: exact accounting, no server, no sleeps."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from harborbench.engine.clock import LoopClock
from harborbench.engine.runner import build_result, plan_from_profile, run_trial
from harborbench.engine.schedule import arrival_offsets_ns
from harborbench.engine.summaries import merge_trials
from harborbench.result import TrialResult
from tests.engine.virtual import FakeClient, StallClock, after, profile, response

pytestmark = pytest.mark.looptime

MS = 1_000_000


async def trial(
    prof: Any, client: FakeClient, clock: LoopClock | None = None, **kw: Any
) -> TrialResult:
    return await run_trial(
        prof, plan_from_profile(prof), "", None,
        index=0, client=client, clock=clock or LoopClock(), **kw,
    )  # fmt: skip


def planned_in_window(prof: Any) -> int:
    plan = plan_from_profile(prof)
    warmup_ns = round(plan.warmup_s * 1e9)
    return sum(1 for o in arrival_offsets_ns(plan) if o >= warmup_ns)


def accounted(t: TrialResult) -> int:
    """Every planned arrival of the window, by where it ended."""
    return t.successes + t.failures + t.in_flight_at_end + t.health.unsent + t.health.sent_late


async def test_closed_loop_figures_are_exact_and_every_worker_busy_is_no_warning() -> None:
    client = FakeClient(after(0.3))
    t = await trial(profile({"concurrency": 4}), client)
    # 4 workers x 33 rounds of 300 ms; the 34th round (9.9 s to 10.2 s) is in flight at the end.
    assert (t.successes, t.failures, t.in_flight_at_end) == (132, 0, 4)
    assert t.throughput_ops == pytest.approx(13.2)
    assert t.service_time.p50_s == pytest.approx(0.3, rel=1e-3)
    assert t.health.achieved_level == 4.0  # measured time in the client call, not inferred
    assert not any("keep up" in w for w in t.health.warnings)
    assert client.closed is False  # an injected client belongs to the caller


async def test_requests_that_never_come_back_are_timeouts_and_gates_see_them() -> None:
    """10% of calls hang: those older than the 2 s timeout at the window's end are failures."""

    async def behaviour(i: int) -> Any:
        if i % 10 == 9:
            await asyncio.sleep(3600)
        await asyncio.sleep(0.1)
        return response()

    prof = profile(
        {"concurrency": 10},
        request={"prompt_tokens": 4, "max_tokens": 4, "timeout": "2s"},
        gates={"success_rate_min": "95%", "error_rate_max": "1%"},
    )
    t = await trial(prof, FakeClient(behaviour))
    # Calls 9, 19, 29, ... hang; each worker that hits one is stuck from then on. Every hung
    # request was sent before 8 s, so each waited more than the 2 s timeout: 10 timeouts.
    assert t.failures_by_kind == {"timeout": 10}
    assert t.in_flight_at_end == 0
    assert t.error_rate == pytest.approx(10 / (t.successes + 10))
    assert "request timeout (2 s)" in t.failure_examples["timeout"]
    # Every worker was busy (answering or hanging) all window: the target's latency, not the
    # generator's, so no "could not keep up" warning.
    assert t.health.achieved_level == pytest.approx(10.0)
    assert not any("keep up" in w for w in t.health.warnings)
    result = build_result(prof, "hang", [t], {}, interrupted=False)
    verdicts = {g.name: g.verdict for g in result.gates}
    assert verdicts == {"error rate": "fail", "success rate": "fail"}


async def test_a_request_younger_than_the_timeout_stays_in_flight() -> None:
    async def behaviour(i: int) -> Any:
        await asyncio.sleep(3600 if i == 0 else 0.05)
        return response()

    prof = profile({"rate": 10}, request={"prompt_tokens": 4, "max_tokens": 4, "timeout": "10s"})
    t = await trial(prof, FakeClient(behaviour))
    # Call 0 (sent at 0 s) has waited exactly 10 s when the window closes: not longer than the
    # timeout, so in flight; the boundary's other side is the test above.
    assert (t.failures, t.in_flight_at_end, t.successes) == (0, 1, 99)
    assert accounted(t) == planned_in_window(prof) == 100


async def test_a_stall_just_before_the_window_end_is_accounted_and_does_not_crash() -> None:
    clock = StallClock()

    async def behaviour(i: int) -> Any:
        if i == 1000:  # the request intended at 10.0 s (9.0 s of the window) blocks for 1.5 s
            clock.stall(1.5)
        await asyncio.sleep(0.01)
        return response()

    prof = profile({"rate": 100}, warmup="1s")
    t = await trial(prof, FakeClient(behaviour), clock)
    h = t.health
    assert accounted(t) == planned_in_window(prof) == 1000
    # The driver next wakes for the arrival at 10.01 s, at 11.51 s: past the window's end
    # (11 s), so 10.01 .. 10.99 s are late, and their send lag shows the stall.
    assert h.sent_late == 99
    assert h.send_lag_max_s == pytest.approx(1.5, rel=1e-3)
    assert h.generator_saturated
    assert any("after it closed" in w for w in h.warnings)
    assert t.memory.verdict == "inconclusive"  # samples clipped to the window, no ValueError
    assert [s.t_s for s in t.timeseries] == [float(j) for j in range(-1, 10)]


async def test_an_exception_in_the_progress_callback_fails_the_trial_loudly() -> None:
    def progress(p: Any) -> None:
        if p.elapsed_s >= 3:
            raise RuntimeError("progress display broke")

    with pytest.raises(RuntimeError, match="progress display broke"):
        await trial(profile({"rate": 10}), FakeClient(after(0.01)), progress=progress)


async def test_the_client_limit_is_named_when_it_caps_the_concurrency() -> None:
    gate = asyncio.Semaphore(50)

    async def behaviour(i: int) -> Any:
        async with gate:  # the client's pool: 50 connections
            await asyncio.sleep(0.1)
        return response()

    status = {"max_concurrent_requests": 200, "connection_pool_size": 50}
    t = await trial(profile({"concurrency": 200}), FakeClient(behaviour, status))
    h = t.health
    assert (h.client_limit_setting, h.client_limit) == ("client.connection_pool_size", 50)
    assert h.achieved_level == pytest.approx(200.0)
    assert h.waiting_in_client_level == pytest.approx(150.0)
    assert t.throughput_ops == pytest.approx(500.0, rel=0.01)  # 50 on the wire / 100 ms
    assert any(w.startswith("client.connection_pool_size = 50 caps") for w in h.warnings)
    assert not any("keep up" in w for w in h.warnings)


async def test_overload_plateaus_at_capacity_and_drops_beyond_the_backlog_bound() -> None:
    gate = asyncio.Semaphore(10)

    async def behaviour(i: int) -> Any:
        async with gate:  # capacity 10 / 100 ms = 100 ops/s
            await asyncio.sleep(0.1)
        return response()

    status = {"max_concurrent_requests": 10}
    # 2 s, not more: this test runs once per mutant of the engine (scripts/mutation.sh)
    t = await trial(profile({"rate": 1000}, duration="2s"), FakeClient(behaviour, status))
    h = t.health
    assert h.max_outstanding == 40  # 4 x max_concurrent_requests
    assert accounted(t) == 2_000
    assert h.unsent > 1_600
    assert h.generator_saturated
    # capacity, not a collapse: 10 per 100 ms, less the last round still in flight
    assert 190 <= t.successes <= 200
    assert t.throughput_ops == pytest.approx(100.0, rel=0.05)
    # At most 40 pending: 10 on the wire and 30 queued, so a queued one waits <= 400 ms.
    assert t.service_time.max_s is not None and t.service_time.max_s <= 0.401
    assert any("load.max_outstanding" in w for w in h.warnings)


async def test_load_max_outstanding_overrides_the_default() -> None:
    t = await trial(
        profile({"rate": 1000, "max_outstanding": 3}, duration="2s"),
        FakeClient(after(0.1), {"max_concurrent_requests": 10}),
    )
    assert t.health.max_outstanding == 3
    # 3 at a time for 100 ms (a freed slot is seen by the next arrival, 1 ms later): at most
    # 3 x 2 s / 101 ms = 59.4, less the last round still in flight.
    assert 57 <= t.successes <= 59
    assert t.throughput_ops == pytest.approx(30.0, rel=0.05)


async def test_clamped_latencies_are_counted_and_survive_a_merge() -> None:
    t = await trial(profile({"rate": 10}), FakeClient(after(0)))  # 0 ns: below the 1 us floor
    assert t.successes == 100
    assert t.service_time.clamped_below == 100
    assert t.health.clamped_latencies == 200  # service and response time
    assert any("outside the histogram's range" in w for w in t.health.warnings)
    total = merge_trials([t, t])
    assert total.service_time.clamped_below == 200
