"""Connection pools of the optimized mode: the optimized one, and a basic one to roll back to.

:class:`OptimizedConnectionPool` keeps one ``aiohttp.ClientSession`` per target origin, each with a
keep-alive connector. Its per-origin gate (an :class:`~..limiter.AsyncLimiter`) is the one limit on
connections: it admits at most the *current* limit of requests, one per connection. The limit starts
at ``connection_pool_size``; a request that finds every connection busy raises it by one at once
while it is below ``max_size`` (the pool opens a connection on demand instead of making the request
wait), and :meth:`OptimizedConnectionPool.adapt` shrinks it, never below ``min_size``, when use
stayed low. The connector itself is unlimited (``limit=0``), so no request is queued twice
(aiohttp's connector has no public way to change its limit, so the gate carries the limit).
Connection counters come from the connector (:class:`CountingConnector`): it counts the connections
it creates and those it hands out, with no aiohttp request tracing on the request path (tracing
awaits about six signals per request; issue 15 measured it at 6% of the client's CPU). Health checks
replace a session that is closed or keeps failing to connect, but never one that is serving streams
(its open streams would be cut); a replaced (retired) session is closed when its last request ends,
and :meth:`OptimizedConnectionPool.aclose` closes every retired session still open.

:class:`BasicConnectionPool` is what ``use_optimized_connection_pool: false`` gives: one plain
session per origin with a fixed connector limit of ``connection_pool_size``, no counters, no
adaptation, no health checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp

from harborbench.harborai.config import Limits
from harborbench.harborai.core.limiter import AsyncLimiter

__all__ = ["BasicConnectionPool", "CountingConnector", "OptimizedConnectionPool", "PoolLease"]

_SHRINK_UTILIZATION = 0.5
"""Shrink the gate when the window's peak use stayed below this fraction of the limit."""
_STEP_RATIO = 0.25
"""Each adaptation step moves the limit by this fraction of it (at least one connection)."""
_FAILURES_BEFORE_REPLACE = 3
"""Consecutive connection failures after which the health check replaces a session."""


_TCP_CONNECT = aiohttp.TCPConnector.connect


class CountingConnector(aiohttp.TCPConnector):
    """An aiohttp ``TCPConnector`` that counts connections created and handed out.

    ``connections_created`` counts connections opened by ``_create_connection`` (aiohttp's hook
    for a new connection, only on that path); ``connections_handed_out`` counts every successful
    ``connect()``, new or reused, so reused = handed out - created. The overrides add one
    coroutine frame per request, against the six awaited trace signals of ``TraceConfig``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connections_created = 0
        self.connections_handed_out = 0

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        # what super().connect is, without building a super object: once a request, and the
        # zero-argument super() cost 1.0k instructions of the wrapper's 2.5k (valgrind, 3.11)
        conn = await _TCP_CONNECT(self, req, traces, timeout)
        self.connections_handed_out += 1
        return conn

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
        proto = await super()._create_connection(req, traces, timeout)
        self.connections_created += 1
        return proto


class PoolLease:
    """One origin's session and its bookkeeping; what :meth:`acquire` hands out.

    Attributes:
        session: the aiohttp session to send on.
        in_use: int, requests currently holding this lease (open streams included).
        streams: int, open streams among them (the caller counts them: ``streams += 1`` when
            a stream opens on the lease, ``-= 1`` when it ends); a health check does not
            replace a session with open streams.
        retired: bool, the session was replaced and is closed when ``in_use`` reaches 0.
    """

    __slots__ = ("in_use", "retired", "session", "streams")

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.in_use = 0
        self.streams = 0
        self.retired = False


class _Origin:
    __slots__ = (
        "consecutive_failures",
        "gate",
        "headers",
        "lease",
        "window_acquisitions",
    )

    def __init__(
        self, lease: PoolLease, gate: AsyncLimiter, headers: Mapping[str, str] | None
    ) -> None:
        self.lease = lease
        self.headers = headers
        self.gate = gate
        self.consecutive_failures = 0
        self.window_acquisitions = 0


class OptimizedConnectionPool:
    """Keep-alive aiohttp sessions per origin with an adaptive connection limit.

    Create and use it inside one running event loop; close it with :meth:`aclose`.

    Args:
        limits: the effective sizes; the pool reads ``pool_initial_size``, ``pool_min_size``
            and ``pool_max_size`` (connections per origin).
        adaptive: whether the limit adapts (grows on demand, shrinks in :meth:`adapt`;
            ``connection_pool.adaptive``).
        keepalive_timeout_s: float, seconds an idle connection is kept open.

    Adaptation: growth is on demand: a request that finds every connection of the origin busy,
    with nobody queued before it, raises the limit by one (up to ``max_size``) instead of
    waiting, as aiohttp's own connector opens a connection when none is idle. Waiting for a
    connection therefore happens only at ``max_size``. (A periodic +25% step made a burst wait
    for connections for seconds while the pool was far below its maximum: burst profile, 3,058
    waits and p95 189 ms.) Shrinking is periodic (:meth:`adapt`, called by the concurrency
    manager every health-check interval): if the window's peak use stayed under half the limit,
    the limit shrinks by 25% (at least 1; not below ``min_size`` nor the window's peak). This is
    a simple utilization controller, not taken from a paper. With ``adaptive`` off the limit
    stays at ``connection_pool_size``.
    """

    def __init__(
        self, limits: Limits, *, adaptive: bool = True, keepalive_timeout_s: float = 30.0
    ) -> None:
        self._initial_size = limits.pool_initial_size
        self._min_size = limits.pool_min_size
        self._max_size = limits.pool_max_size
        self._adaptive = adaptive
        self._keepalive_timeout_s = keepalive_timeout_s
        self._origins: dict[str, _Origin] = {}
        self._retired: set[PoolLease] = set()  # replaced leases whose session is still open
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        self._connectors: list[CountingConnector] = []
        self.connection_failures = 0
        self.sessions_created = 0
        self.sessions_replaced = 0
        self.limit_increases = 0
        self.limit_decreases = 0

    # --- sessions --------------------------------------------------------------------------
    def _new_session(self, headers: Mapping[str, str] | None) -> aiohttp.ClientSession:
        connector = CountingConnector(
            limit=0,  # the gate is the limit (one limiter, not two)
            limit_per_host=0,
            keepalive_timeout=self._keepalive_timeout_s,
        )
        self._connectors.append(connector)
        self.sessions_created += 1
        return aiohttp.ClientSession(connector=connector, headers=headers, auto_decompress=True)

    def _origin(self, origin: str, headers: Mapping[str, str] | None) -> _Origin:
        entry = self._origins.get(origin)
        if entry is None:
            if self._closed:
                raise RuntimeError("connection pool is closed")
            session = self._new_session(headers)
            entry = _Origin(PoolLease(session), AsyncLimiter(self._initial_size), headers)
            self._origins[origin] = entry
        return entry

    def try_acquire(
        self, origin: str, headers: Mapping[str, str] | None = None
    ) -> PoolLease | None:
        """Take a connection slot of ``origin`` if one is free now, without waiting.

        Args:
            origin: str, the pool key: ``scheme://host:port``, plus anything that must not
                share a session (the client adds the provider's name: its credentials).
            headers: default headers of the session, used when it is created (the provider's
                JSON headers: sending them as session defaults saves aiohttp merging a dict of
                headers into every request).

        Returns:
            the lease (give it back with :meth:`release` exactly once), or None when the
            caller must ``await`` :meth:`acquire`.
        """
        entry = self._origins.get(origin) or self._origin(origin, headers)
        if not entry.gate.try_acquire() and not self._grow(entry):
            return None
        entry.window_acquisitions += 1
        lease = entry.lease
        lease.in_use += 1
        return lease

    async def acquire(self, origin: str, headers: Mapping[str, str] | None = None) -> PoolLease:
        """Wait for a connection slot of ``origin`` and return the lease to send on.

        Args:
            origin, headers: as in :meth:`try_acquire`.

        Returns:
            the lease; give it back with :meth:`release` exactly once.
        """
        entry = self._origins.get(origin) or self._origin(origin, headers)
        gate = entry.gate
        entry.window_acquisitions += 1
        if not gate.try_acquire() and not self._grow(entry):
            await gate.acquire()
        lease = entry.lease
        lease.in_use += 1
        return lease

    def release(self, origin: str, lease: PoolLease, *, connection_ok: bool) -> None:
        """Give back a slot taken by :meth:`acquire`.

        Args:
            origin: str, the origin passed to acquire.
            lease: the lease acquire returned.
            connection_ok: bool, False when the request failed to connect or the connection
                broke (counts toward the health check's replacement threshold).
        """
        lease.in_use -= 1
        entry = self._origins.get(origin)
        if entry is not None:  # None once aclose() ran: the session is closed already
            entry.gate.release()
            if connection_ok:
                entry.consecutive_failures = 0
            else:
                self.connection_failures += 1
                entry.consecutive_failures += 1
        if lease.retired and lease.in_use == 0:
            self._close_later(lease)

    def _grow(self, entry: _Origin) -> bool:
        """Every connection is busy: raise the limit by one and take the new slot, if the pool
        is adaptive, below ``max_size`` and nobody waits already. Returns whether a slot was
        taken."""
        gate = entry.gate
        if not self._adaptive or gate.waiting or gate.limit >= self._max_size:
            return False
        gate.set_limit(min(self._max_size, max(gate.limit, gate.in_use) + 1))
        self.limit_increases += 1
        return gate.try_acquire()

    def _close_later(self, lease: PoolLease) -> None:
        if lease not in self._retired:
            return  # closed already (by aclose, or by an earlier call)
        self._retired.discard(lease)
        task = asyncio.get_running_loop().create_task(lease.session.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # --- maintenance -----------------------------------------------------------------------
    def adapt(self) -> None:
        """Run one shrink step on every origin's limit (no-op unless ``adaptive``)."""
        for entry in self._origins.values():
            gate = entry.gate
            peak = gate.take_window()
            acquisitions = entry.window_acquisitions
            entry.window_acquisitions = 0
            if not self._adaptive or acquisitions == 0:
                continue
            limit = gate.limit
            step = max(1, int(limit * _STEP_RATIO))
            if peak < _SHRINK_UTILIZATION * limit:
                new = max(self._min_size, peak, limit - step)
                if new != limit:
                    gate.set_limit(new)
                    self.limit_decreases += 1

    def health_check(self) -> int:
        """Replace every session that is closed, or failed to connect 3 times in a row and
        serves no open stream (replacing it would cut them; it is checked again next time).

        The replaced session is retired: closed as soon as its last request ends, or by
        :meth:`aclose`.

        Returns:
            int, the number of sessions replaced by this call.
        """
        replaced = 0
        for entry in self._origins.values():
            lease = entry.lease
            closed = lease.session.closed
            failing = entry.consecutive_failures >= _FAILURES_BEFORE_REPLACE
            if closed or (failing and lease.streams == 0):
                entry.lease = PoolLease(self._new_session(entry.headers))
                entry.consecutive_failures = 0
                lease.retired = True
                if not closed:
                    self._retired.add(lease)
                    if lease.in_use == 0:
                        self._close_later(lease)
                replaced += 1
        self.sessions_replaced += replaced
        return replaced

    def limit(self, origin: str) -> int | None:
        """int, the current connection limit of ``origin`` (None if it was never used)."""
        entry = self._origins.get(origin)
        return None if entry is None else entry.gate.limit

    async def aclose(self) -> None:
        """Close every session, current and retired (even with requests still on it), and wait
        until they are closed."""
        self._closed = True
        for entry in self._origins.values():
            if not entry.lease.session.closed:
                await entry.lease.session.close()
        self._origins.clear()
        retired, self._retired = self._retired, set()
        for lease in retired:
            await lease.session.close()
        if self._closing:
            await asyncio.gather(*self._closing)

    def statistics(self) -> dict[str, int | float]:
        """Counters: connections new/reused (from the connectors), waits, limits, sessions.

        Returns:
            ``connections_created``, ``connections_reused`` (connections handed out minus those
            created, over every session including replaced ones), ``gate_waits`` and
            ``gate_wait_s`` (requests that waited for a slot of the adaptive limit, and seconds
            waited; the connector never waits: it is unlimited), ``connection_failures``,
            ``sessions_created``, ``sessions_replaced``, ``limit_increases``,
            ``limit_decreases``, ``origins``, ``limit`` (sum over origins), ``in_use``.
        """
        gates = [e.gate for e in self._origins.values()]
        created = sum(c.connections_created for c in self._connectors)
        handed_out = sum(c.connections_handed_out for c in self._connectors)
        return {
            "connections_created": created,
            "connections_reused": handed_out - created,
            "gate_waits": sum(g.waits for g in gates),
            "gate_wait_s": sum(g.wait_ns for g in gates) / 1e9,
            "connection_failures": self.connection_failures,
            "sessions_created": self.sessions_created,
            "sessions_replaced": self.sessions_replaced,
            "limit_increases": self.limit_increases,
            "limit_decreases": self.limit_decreases,
            "origins": len(gates),
            "limit": sum(g.limit for g in gates),
            "in_use": sum(g.in_use for g in gates),
        }


class BasicConnectionPool:
    """One plain aiohttp session per origin, connector limit ``size``; the rollback pool.

    Same acquire/release interface as :class:`OptimizedConnectionPool`, with nothing adaptive:
    aiohttp's own connector queues requests beyond ``size``.

    Args:
        size: int, connections per origin (``connection_pool_size``).
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._leases: dict[str, PoolLease] = {}
        self._closed = False
        self.sessions_created = 0

    def try_acquire(self, origin: str, headers: Mapping[str, str] | None = None) -> PoolLease:
        """Return the origin's session lease (created on first use, with ``headers`` as its
        default headers); never waits."""
        lease = self._leases.get(origin)
        if lease is None:
            if self._closed:
                raise RuntimeError("connection pool is closed")
            connector = aiohttp.TCPConnector(limit=self._size)
            lease = PoolLease(aiohttp.ClientSession(connector=connector, headers=headers))
            self._leases[origin] = lease
            self.sessions_created += 1
        lease.in_use += 1
        return lease

    async def acquire(self, origin: str, headers: Mapping[str, str] | None = None) -> PoolLease:
        """The same as :meth:`try_acquire` (aiohttp's connector queues beyond ``size``)."""
        return self.try_acquire(origin, headers)

    def release(self, origin: str, lease: PoolLease, *, connection_ok: bool) -> None:
        """Give back a lease taken by :meth:`acquire` (``connection_ok`` is ignored)."""
        lease.in_use -= 1

    def adapt(self) -> None:
        """No-op: the basic pool does not adapt."""

    def health_check(self) -> int:
        """No-op: the basic pool has no health checks; returns 0."""
        return 0

    async def aclose(self) -> None:
        """Close every session."""
        self._closed = True
        for lease in self._leases.values():
            await lease.session.close()
        self._leases.clear()

    def statistics(self) -> dict[str, int | float]:
        """Counters: ``sessions_created``, ``origins``, ``in_use``."""
        return {
            "sessions_created": self.sessions_created,
            "origins": len(self._leases),
            "in_use": sum(lease.in_use for lease in self._leases.values()),
        }
