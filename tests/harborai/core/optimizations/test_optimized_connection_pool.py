"""OptimizedConnectionPool: traced new/reused counters, adaptive limit, session replacement."""

from __future__ import annotations

import asyncio

from harborbench.harborai.config import PoolConfig
from harborbench.harborai.core.optimizations.optimized_connection_pool import (
    BasicConnectionPool,
    OptimizedConnectionPool,
)
from tests.harborai.conftest import FixtureServer

BODY = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
HEADERS = {"Content-Type": "application/json"}


def pool_config(**kw: object) -> PoolConfig:
    base: dict[str, object] = {
        "initial_size": 4,
        "min_size": 2,
        "max_size": 8,
        "adaptive": True,
        "health_check_interval_s": 5.0,
    }
    base.update(kw)
    return PoolConfig(**base)  # type: ignore[arg-type]


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
    pool = OptimizedConnectionPool(pool_config(initial_size=3))
    for _ in range(4):
        await asyncio.gather(*(_post(pool, server) for _ in range(6)))
    stats = pool.statistics()
    await pool.aclose()
    assert server.requests == 24
    assert stats["connections_created"] == server.connections
    assert stats["connections_created"] <= 3
    assert stats["connections_created"] + stats["connections_reused"] == 24
    assert stats["gate_waits"] > 0 and stats["limit"] == 3


async def test_adapt_grows_under_waits_and_shrinks_when_idle(server: FixtureServer) -> None:
    pool = OptimizedConnectionPool(pool_config(initial_size=2, min_size=2, max_size=5))
    origin = f"http://127.0.0.1:{server.port}"
    await asyncio.gather(*(_post(pool, server) for _ in range(10)))
    pool.adapt()
    assert pool.limit(origin) == 3  # +25%, at least one
    await asyncio.gather(*(_post(pool, server) for _ in range(10)))
    pool.adapt()
    assert pool.limit(origin) == 4
    await asyncio.gather(*(_post(pool, server) for _ in range(10)))
    pool.adapt()
    await asyncio.gather(*(_post(pool, server) for _ in range(10)))
    pool.adapt()
    assert pool.limit(origin) == 5  # capped at max_size
    for _ in range(3):  # one request at a time: peak use 1 < half the limit
        await _post(pool, server)
        pool.adapt()
    assert pool.limit(origin) == 2  # shrinks, never below min_size
    stats = pool.statistics()
    await pool.aclose()
    assert (stats["limit_increases"], stats["limit_decreases"]) == (3, 3)


async def test_adapt_is_a_no_op_when_not_adaptive(server: FixtureServer) -> None:
    pool = OptimizedConnectionPool(pool_config(initial_size=2, adaptive=False))
    await asyncio.gather(*(_post(pool, server) for _ in range(10)))
    pool.adapt()
    assert pool.limit(f"http://127.0.0.1:{server.port}") == 2
    await pool.aclose()


async def test_health_check_replaces_closed_and_failing_sessions(server: FixtureServer) -> None:
    pool = OptimizedConnectionPool(pool_config())
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
