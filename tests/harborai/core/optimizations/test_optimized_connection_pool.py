"""OptimizedConnectionPool: traced new/reused counters, adaptive limit, session replacement."""

from __future__ import annotations

import asyncio

from harborbench.harborai.config import Limits
from harborbench.harborai.core.optimizations.optimized_connection_pool import (
    BasicConnectionPool,
    OptimizedConnectionPool,
)
from tests.harborai.conftest import FixtureServer

BODY = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
HEADERS = {"Content-Type": "application/json"}


def make_pool(
    initial_size: int = 4, min_size: int = 2, max_size: int = 8, adaptive: bool = True
) -> OptimizedConnectionPool:
    limits = Limits(
        max_concurrent_requests=100,
        connection_pool_size=initial_size,
        pool_min_size=min_size,
        pool_max_size=max_size,
        pool_initial_size=initial_size,
        workers=100,
        min_limit=1,
    )
    return OptimizedConnectionPool(limits, adaptive=adaptive)


async def _post(pool: OptimizedConnectionPool | BasicConnectionPool, server: FixtureServer) -> None:
    origin = f"http://127.0.0.1:{server.port}"
    lease = await pool.acquire(origin)
    try:
        async with lease.session.post(
            server.url + "/chat/completions", data=BODY, headers=HEADERS
        ) as resp:
            assert resp.status == 200
            await resp.read()
    finally:
        pool.release(origin, lease, connection_ok=True)


async def test_counters_from_tracing_match_the_server(server: FixtureServer) -> None:
    pool = make_pool(initial_size=3, max_size=3)
    for _ in range(4):
        await asyncio.gather(*(_post(pool, server) for _ in range(6)))
    stats = pool.statistics()
    await pool.aclose()
    assert server.requests == 24
    assert stats["connections_created"] == server.connections
    assert stats["connections_created"] <= 3
    assert stats["connections_created"] + stats["connections_reused"] == 24
    assert stats["gate_waits"] > 0 and stats["limit"] == 3


async def test_grows_on_demand_up_to_max_size_and_shrinks_when_idle(server: FixtureServer) -> None:
    pool = make_pool(initial_size=2, min_size=2, max_size=5)
    origin = f"http://127.0.0.1:{server.port}"
    held = [await pool.acquire(origin) for _ in range(2)]
    assert pool.limit(origin) == 2  # within the limit: no growth
    held.append(pool.try_acquire(origin))  # every connection busy: one more, at once
    assert held[-1] is not None and pool.limit(origin) == 3
    held += [await pool.acquire(origin) for _ in range(2)]
    assert pool.limit(origin) == 5 and pool.statistics()["gate_waits"] == 0
    assert pool.try_acquire(origin) is None  # at max_size: the caller must wait
    waiter = asyncio.ensure_future(pool.acquire(origin))
    await asyncio.sleep(0)
    assert not waiter.done() and pool.limit(origin) == 5
    pool.release(origin, held.pop(), connection_ok=True)
    held.append(await waiter)
    assert pool.statistics()["gate_waits"] == 1
    for lease in held:
        pool.release(origin, lease, connection_ok=True)
    pool.adapt()  # this window's peak (5) reached the limit: no shrink
    assert pool.limit(origin) == 5
    for _ in range(3):  # one request at a time: peak use 1 < half the limit
        await _post(pool, server)
        pool.adapt()
    assert pool.limit(origin) == 2  # 5 -> 4 -> 3 -> 2, never below min_size
    stats = pool.statistics()
    await pool.aclose()
    assert (stats["limit_increases"], stats["limit_decreases"]) == (3, 3)


async def test_growth_waits_behind_a_queued_request(server: FixtureServer) -> None:
    # A request queued first keeps its turn: a later one does not grow past it.
    pool = make_pool(initial_size=1, min_size=1, max_size=1)
    origin = f"http://127.0.0.1:{server.port}"
    first = await pool.acquire(origin)
    waiter = asyncio.ensure_future(pool.acquire(origin))
    await asyncio.sleep(0)
    pool._max_size = 3  # room to grow, but a request is queued already
    assert pool.try_acquire(origin) is None and pool.limit(origin) == 1
    pool.release(origin, first, connection_ok=True)
    pool.release(origin, await waiter, connection_ok=True)
    await pool.aclose()


async def test_adapt_is_a_no_op_when_not_adaptive(server: FixtureServer) -> None:
    pool = make_pool(initial_size=2, adaptive=False)
    await asyncio.gather(*(_post(pool, server) for _ in range(10)))
    pool.adapt()
    stats = pool.statistics()
    assert pool.limit(f"http://127.0.0.1:{server.port}") == 2
    assert stats["gate_waits"] > 0 and stats["limit_increases"] == 0  # no growth on demand
    await pool.aclose()


async def test_health_check_replaces_closed_and_failing_sessions(server: FixtureServer) -> None:
    pool = make_pool()
    origin = f"http://127.0.0.1:{server.port}"
    await _post(pool, server)
    first = pool._origins[origin].lease.session
    assert pool.health_check() == 0
    await first.close()
    assert pool.health_check() == 1
    second = pool._origins[origin].lease.session
    assert second is not first and not second.closed
    await _post(pool, server)  # works on the new session
    for _ in range(3):
        lease = await pool.acquire(origin)
        pool.release(origin, lease, connection_ok=False)
    assert pool.health_check() == 1
    await asyncio.sleep(0)  # the retired, idle session is closed in the background
    await asyncio.sleep(0)
    assert second.closed
    stats = pool.statistics()
    await pool.aclose()
    assert (stats["sessions_replaced"], stats["connection_failures"]) == (2, 3)


async def test_basic_pool_works_and_closes(server: FixtureServer) -> None:
    pool = BasicConnectionPool(2)
    await asyncio.gather(*(_post(pool, server) for _ in range(6)))
    assert pool.statistics() == {"sessions_created": 1, "origins": 1, "in_use": 0}
    await pool.aclose()
    assert server.connections <= 2


async def _fail_three_times(pool: OptimizedConnectionPool, origin: str) -> None:
    for _ in range(3):
        lease = await pool.acquire(origin)
        pool.release(origin, lease, connection_ok=False)


async def test_health_check_keeps_a_session_that_serves_streams(server: FixtureServer) -> None:
    pool = make_pool()
    origin = f"http://127.0.0.1:{server.port}"
    streaming = await pool.acquire(origin)
    streaming.streams += 1  # what the concurrency manager does when a stream opens
    await _fail_three_times(pool, origin)
    assert pool.health_check() == 0  # replacing it would cut the open stream
    assert pool._origins[origin].lease is streaming
    streaming.streams -= 1
    pool.release(origin, streaming, connection_ok=True)
    await _fail_three_times(pool, origin)
    assert pool.health_check() == 1  # no stream any more: the failing session is replaced
    await pool.aclose()


async def test_aclose_closes_a_retired_session_that_is_still_in_use(
    server: FixtureServer,
) -> None:
    pool = make_pool()
    origin = f"http://127.0.0.1:{server.port}"
    busy = await pool.acquire(origin)
    await _fail_three_times(pool, origin)
    assert pool.health_check() == 1
    assert busy.retired and not busy.session.closed  # still serving its request
    await pool.aclose()
    assert busy.session.closed  # no "Unclosed connector" later
    pool.release(origin, busy, connection_ok=True)  # a late release after close is harmless
    assert busy.in_use == 0


async def test_a_retired_session_is_closed_when_its_last_request_ends(
    server: FixtureServer,
) -> None:
    pool = make_pool()
    origin = f"http://127.0.0.1:{server.port}"
    busy = await pool.acquire(origin)
    await _fail_three_times(pool, origin)
    assert pool.health_check() == 1
    pool.release(origin, busy, connection_ok=True)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert busy.session.closed
    await pool.aclose()
