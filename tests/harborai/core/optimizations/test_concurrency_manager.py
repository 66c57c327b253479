"""ConcurrencyManager: AIMD limit, lifecycle without leaks, recovery of the processor."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from harborbench.harborai.config import resolve_config
from harborbench.harborai.core.limiter import AsyncLimiter
from harborbench.harborai.core.optimizations.concurrency_manager import (
    AIMDLimit,
    ConcurrencyManager,
)
from harborbench.harborai.core.provider import RequestSpec, build_body, make_plugin
from harborbench.harborai.errors import APIStatusError, APITimeoutError, StreamError
from tests.harborai.conftest import FixtureServer

MSGS = [{"role": "user", "content": "hi"}]


def test_aimd_decreases_on_overload_and_climbs_back_to_the_maximum() -> None:
    now = [0.0]
    limiter = AsyncLimiter(1)
    aimd = AIMDLimit(limiter, min_limit=2, max_limit=10, clock=lambda: now[0])
    assert limiter.limit == 10 and not aimd.below_max  # the send path skips on_success then
    aimd.on_overload()
    assert limiter.limit == 9 and aimd.below_max
    aimd.on_overload()  # inside the 100 ms cooldown: ignored
    assert limiter.limit == 9
    for _ in range(30):
        now[0] += 1.0
        aimd.on_overload()
    assert limiter.limit == 2  # never below the floor
    for _ in range(1000):
        aimd.on_success()
        if not aimd.below_max:
            break
    assert limiter.limit == 10  # never above the maximum
    aimd.on_success()  # at the ceiling: changes nothing
    assert limiter.limit == 10 and not aimd.below_max
    assert aimd.decreases >= 8 and aimd.increases == 8


def test_aimd_additive_increase_is_one_per_window_of_limit_successes() -> None:
    limiter = AsyncLimiter(1)
    aimd = AIMDLimit(limiter, min_limit=1, max_limit=100, clock=lambda: 0.0)
    aimd.on_overload()
    assert limiter.limit == 90
    for _ in range(89):
        aimd.on_success()
    assert limiter.limit == 90
    aimd.on_success()
    aimd.on_success()
    assert limiter.limit == 91


def _manager(server: FixtureServer, **overrides: object) -> tuple[ConcurrencyManager, RequestSpec]:
    cfg = resolve_config(base_url=server.url, environ={}, **overrides)
    manager = ConcurrencyManager(cfg, str)
    plugin = make_plugin(cfg.targets[0])
    return manager, RequestSpec(plugin, build_body("m", MSGS, False, {}), False)


async def test_overload_from_the_server_lowers_the_limit(server: FixtureServer) -> None:
    manager, spec = _manager(server, max_concurrent_requests=20)
    await manager.start()
    server.script({"status": 503})
    try:
        await manager.execute(spec)
    except APIStatusError as exc:
        assert exc.status_code == 503
    else:  # pragma: no cover - the scripted 503 must surface
        raise AssertionError("no error")
    await manager.execute(spec)
    stats = manager.statistics()["concurrency_manager"]
    await manager.stop()
    assert (stats["limit"], stats["max_limit"], stats["limit_decreases"]) == (18, 20, 1)
    assert (stats["requests"], stats["failures"], stats["in_flight"]) == (2, 1, 0)


async def test_fixed_limit_when_adaptive_is_off(server: FixtureServer) -> None:
    manager, spec = _manager(
        server, max_concurrent_requests=20, concurrency_manager={"adaptive_limit": False}
    )
    await manager.start()
    server.script({"status": 429})
    with contextlib.suppress(APIStatusError):
        await manager.execute(spec)
    stats = manager.statistics()["concurrency_manager"]
    await manager.stop()
    assert manager.aimd is None and stats["limit"] == 20


async def test_stop_leaves_no_task_and_closes_sessions(server: FixtureServer) -> None:
    manager, spec = _manager(server)
    await manager.start()
    assert manager.processor is not None
    await manager.processor.submit(spec, 0)
    await manager.stop()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    assert manager.pool.statistics()["origins"] == 0


async def test_health_check_recovers_a_broken_processor(server: FixtureServer) -> None:
    manager, spec = _manager(server, request_processor={"workers": 2})
    await manager.start()
    broken = manager.processor
    assert broken is not None
    victim = next(iter(broken._workers))
    victim.remove_done_callback(broken._worker_done)  # a worker dies and is not replaced
    victim.cancel()
    await asyncio.sleep(0)
    assert not broken.healthy
    manager.check_health()
    recovered = manager.processor
    assert recovered is not broken and recovered is not None and recovered.healthy
    reply = await recovered.submit(spec, 0)
    stats = manager.statistics()["concurrency_manager"]
    await manager.stop()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    assert reply.choices[0].message.content == "echo: hi"
    assert stats["processor_restarts"] == 1


async def test_monitor_runs_health_checks_and_zero_turns_it_off(server: FixtureServer) -> None:
    manager, _ = _manager(server, connection_pool={"health_check_interval_s": 0.02})
    await manager.start()
    await asyncio.sleep(0.3)
    checks = manager.statistics()["concurrency_manager"]["health_checks"]
    await manager.stop()
    assert checks >= 1
    off, _ = _manager(server, connection_pool={"health_check_interval_s": 0})
    await off.start()
    assert len(asyncio.all_tasks()) == 1 + off._config.limits.workers  # no monitor task
    await off.stop()


async def test_health_check_does_not_replace_a_session_serving_a_stream(
    server: FixtureServer,
) -> None:
    manager, spec = _manager(server, connection_pool={"health_check_interval_s": 0})
    await manager.start()
    stream_spec = RequestSpec(spec.plugin, build_body("m", MSGS, True, {}), True)
    stream = await manager.execute(stream_spec)
    pool = manager.pool
    entry = pool._origins[spec.plugin.pool_key]  # type: ignore[union-attr]
    entry.consecutive_failures = 3  # as after three failed connections
    manager.check_health()
    assert pool.statistics()["sessions_replaced"] == 0
    chunks = [c async for c in stream]  # type: ignore[union-attr]
    assert chunks and entry.lease.streams == 0
    entry.consecutive_failures = 3
    manager.check_health()
    assert pool.statistics()["sessions_replaced"] == 1
    await manager.stop()


async def test_streams_closed_early_or_malformed_are_no_connection_failures(
    server: FixtureServer,
) -> None:
    """A caller closing a stream early (the engine at the end of its window) or a stream that
    ends without [DONE] says nothing against the connection: no health-check replacement."""
    manager, spec = _manager(server, connection_pool={"health_check_interval_s": 0})
    await manager.start()
    stream_spec = RequestSpec(spec.plugin, build_body("m", MSGS, True, {}), True)
    for _ in range(3):
        stream = await manager.execute(stream_spec)
        await stream.__anext__()  # type: ignore[union-attr]
        await stream.aclose()  # type: ignore[union-attr]
    server.script(*({"stream_cut": True} for _ in range(3)))
    for _ in range(3):
        stream = await manager.execute(stream_spec)
        with contextlib.suppress(StreamError):
            async for _chunk in stream:  # type: ignore[union-attr]
                pass
    stats = manager.statistics()
    assert stats["connection_pool"]["connection_failures"] == 0
    assert stats["concurrency_manager"]["failures"] >= 3  # the cut answers were incomplete
    manager.check_health()
    assert manager.statistics()["connection_pool"]["sessions_replaced"] == 0
    await manager.stop()


async def test_a_hang_while_successes_are_fast_leaves_the_limit(server: FixtureServer) -> None:
    # Before: every timeout cut the limit, so a target that hangs 10% of its answers drove it
    # to ~10 and kept it there.
    manager, spec = _manager(server, max_concurrent_requests=20, timeout_s=0.3)
    await manager.start()
    await manager.execute(spec)  # a fast success
    server.script({"delay_s": 3.0})
    with pytest.raises(APITimeoutError):
        await manager.execute(spec)
    stats = manager.statistics()["concurrency_manager"]
    await manager.stop()
    assert (stats["limit"], stats["limit_decreases"]) == (20, 0)
    assert (stats["timeouts"], stats["timeouts_as_hangs"]) == (1, 1)


async def test_a_timeout_while_successes_are_slow_lowers_the_limit(server: FixtureServer) -> None:
    manager, spec = _manager(server, max_concurrent_requests=20, timeout_s=1.0)
    await manager.start()
    server.script({"delay_s": 0.6}, {"delay_s": 3.0})  # slow success (>= half the timeout)
    await manager.execute(spec)
    with pytest.raises(APITimeoutError):
        await manager.execute(spec)
    stats = manager.statistics()["concurrency_manager"]
    await manager.stop()
    assert stats["latency_ewma_s"] >= 0.5
    assert (stats["limit"], stats["limit_decreases"]) == (18, 1)
    assert (stats["timeouts"], stats["timeouts_as_hangs"]) == (1, 0)


def test_loop_time_is_asyncios_clock_read_directly() -> None:
    manager = ConcurrencyManager(resolve_config(base_url="http://127.0.0.1:9/v1", environ={}), str)
    with pytest.raises(RuntimeError, match="not started"):
        manager.deadline()
    loop = asyncio.SelectorEventLoop()  # asyncio's own loop (the tests' loop may be patched)
    try:
        loop.run_until_complete(manager.start())
        assert manager.loop_time is time.monotonic  # what asyncio's loop.time() returns
        loop_now = loop.time()
        assert loop_now <= manager.deadline() - manager._timeout_s <= loop_now + 1.0
        loop.run_until_complete(manager.stop())
    finally:
        loop.close()


def test_loop_time_of_a_loop_with_its_own_clock() -> None:
    class Shifted(asyncio.SelectorEventLoop):
        def time(self) -> float:
            return super().time() + 1000.0

    manager = ConcurrencyManager(resolve_config(base_url="http://127.0.0.1:9/v1", environ={}), str)
    loop = Shifted()
    try:
        loop.run_until_complete(manager.start())
        assert manager.loop_time() - time.monotonic() > 999.0  # the loop's own clock
        loop.run_until_complete(manager.stop())
    finally:
        loop.close()


def test_loop_time_of_a_loop_whose_time_was_replaced() -> None:
    manager = ConcurrencyManager(resolve_config(base_url="http://127.0.0.1:9/v1", environ={}), str)
    loop = asyncio.SelectorEventLoop()
    loop.time = lambda: 5.0  # type: ignore[method-assign]  # as a test double would
    try:
        loop.run_until_complete(manager.start())
        assert manager.loop_time() == 5.0
        loop.run_until_complete(manager.stop())
    finally:
        loop.close()
