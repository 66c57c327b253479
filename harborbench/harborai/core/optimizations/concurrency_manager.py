"""ConcurrencyManager: lifecycle, the in-flight limit, health watching and statistics.

The manager owns the connection pool (optimized or basic) and, when enabled, the request
processor, all bound to one event loop. Every request goes through :meth:`execute`, which holds
one slot of the in-flight limit (an :class:`~..limiter.AsyncLimiter`) from before the connection
is taken until the answer is read (for streams: until the stream is closed), so the server never
sees more than ``max_concurrent_requests`` requests from this client.

The limit adapts by AIMD (additive increase, multiplicative decrease), the congestion-avoidance
rule of TCP (RFC 5681) as used by Netflix's concurrency-limits ``AIMDLimit``: it starts at
``max_concurrent_requests``; an overload signal multiplies it by 0.9 (at most once per 100 ms,
never below ``min_limit``); every success adds ``1/limit``, i.e. one slot per window of ``limit``
successes, never above ``max_concurrent_requests``.

Overload signals are HTTP 429 and 503 (the server says so), and a timeout *while the successful
requests are slow too*: their moving average latency (EWMA, weight 0.1 per success) is at least
half the request timeout. A server slowed by overload delays every answer, so its timeouts come
with slow successes; a target that leaves some requests hanging answers the others fast, and
cutting the limit then only starves the healthy requests, since each hung request holds its slot
until its deadline whatever the limit (issue 12: against a target where 10% of answers hang,
the limit settled near 10 and throughput fell from the traditional mode's 91 to 10 ops/s).
Such timeouts are counted (``timeouts_as_hangs``) and leave the limit alone.

Every request carries a deadline (``timeout_s`` from the call, a ``loop.time()`` instant): the
waits for an in-flight slot and for a pooled connection end at it (APITimeoutError), and the
HTTP exchange gets only the time left.

A monitor task runs every ``connection_pool.health_check_interval_s`` (0: no monitor): it runs
the pool's adaptation step and health check (replacing broken sessions) and restarts the request
processor if it is no longer healthy. Stopping cancels and awaits every task and closes every
session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

from harborbench.harborai.config import ResolvedConfig
from harborbench.harborai.core.limiter import AsyncLimiter
from harborbench.harborai.core.provider import RequestSpec
from harborbench.harborai.core.transport import (
    AsyncChunkStream,
    map_aiohttp_error,
    open_stream,
    parse_completion,
    status_error,
)
from harborbench.harborai.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
)
from harborbench.harborai.types import ChatCompletion

from .async_request_processor import AsyncRequestProcessor
from .optimized_connection_pool import BasicConnectionPool, OptimizedConnectionPool

__all__ = ["AIMDLimit", "ConcurrencyManager"]

_T = TypeVar("_T")

_OVERLOAD_STATUS = frozenset({429, 503})
_LATENCY_WEIGHT = 0.1
"""Weight of each success in the moving average latency (EWMA)."""
_SLOW_FRACTION = 0.5
"""A timeout is an overload signal when the average success latency is this fraction of the
request timeout or more."""
_NO_CEIL = 1e9
"""aiohttp rounds timeouts of ``ceil_threshold`` seconds or more up to a whole second; never."""


class AIMDLimit:
    """AIMD controller of an :class:`AsyncLimiter`'s limit (see the module docstring).

    Args:
        limiter: the limiter whose limit is moved.
        min_limit: int >= 1, the floor.
        max_limit: int, the ceiling (``max_concurrent_requests``); also the start.
        backoff_ratio: float in (0, 1), the multiplicative decrease.
        cooldown_s: float seconds, minimum time between two decreases.
        clock: () -> float seconds, monotonic (injectable for tests).
    """

    __slots__ = (
        "_backoff",
        "_clock",
        "_cooldown_s",
        "_last_decrease_s",
        "_limiter",
        "_max",
        "_min",
        "_value",
        "below_max",
        "decreases",
        "increases",
    )

    def __init__(
        self,
        limiter: AsyncLimiter,
        *,
        min_limit: int,
        max_limit: int,
        backoff_ratio: float = 0.9,
        cooldown_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limiter = limiter
        self._min = max(1, min(min_limit, max_limit))
        self._max = max_limit
        self._backoff = backoff_ratio
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._value = float(max_limit)
        self._last_decrease_s = -float("inf")
        self.increases = 0
        self.decreases = 0
        self.below_max = False
        """bool, the limit is below ``max_limit``: only then does :meth:`on_success` change it
        (the send path calls it only then, a call less a request at the ceiling)."""
        limiter.set_limit(max_limit)

    def on_success(self) -> None:
        """Additive increase: +1/limit per success, capped at the maximum."""
        value = self._value
        if value < self._max:
            value = min(float(self._max), value + 1.0 / value)
            self._value = value
            self.below_max = value < self._max
            if int(value) != self._limiter.limit:
                self._limiter.set_limit(int(value))
                self.increases += 1

    def on_overload(self) -> None:
        """Multiplicative decrease by ``backoff_ratio``, at most once per cooldown."""
        now = self._clock()
        if now - self._last_decrease_s < self._cooldown_s:
            return
        self._last_decrease_s = now
        value = max(float(self._min), self._value * self._backoff)
        self._value = value
        self.below_max = value < self._max
        if int(value) != self._limiter.limit:
            self._limiter.set_limit(int(value))
            self.decreases += 1


class ConcurrencyManager:
    """Owns the optimized mode's components on one event loop and sends every request.

    Args:
        config: the resolved client configuration (mode "optimized").
        intern: str -> str for repeated response strings (memory optimization) or identity.

    Lifecycle: ``await start()`` in the loop that will send, then :meth:`execute` (or
    :meth:`submit` when the request processor is active), then ``await stop()``.
    """

    def __init__(self, config: ResolvedConfig, intern: Callable[[str], str]) -> None:
        self._config = config
        self._intern = intern
        limits, keys = config.limits, config.config
        self.limiter = AsyncLimiter(limits.max_concurrent_requests)
        self.aimd: AIMDLimit | None = (
            AIMDLimit(
                self.limiter,
                min_limit=limits.min_limit,
                max_limit=limits.max_concurrent_requests,
            )
            if keys.concurrency_manager.adaptive_limit
            else None
        )
        self.pool: OptimizedConnectionPool | BasicConnectionPool = (
            OptimizedConnectionPool(limits, adaptive=keys.connection_pool.adaptive)
            if config.connection_pool.active
            else BasicConnectionPool(limits.connection_pool_size)
        )
        self.processor: AsyncRequestProcessor | None = (
            self._new_processor() if config.request_processor.active else None
        )
        timeout_s = keys.timeout_s
        self._timeout_s = timeout_s
        # A JSON answer's or a stream's whole body (aiohttp's total timer runs until the
        # response is released): a server trickling keepalive comments cannot hold a call open.
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, ceil_threshold=_NO_CEIL)
        self.latency_ewma_s: float | None = None
        self.timeouts = 0
        self.timeouts_as_hangs = 0
        self._monitor: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.loop_time: Callable[[], float] = _not_started
        """() -> float seconds, the started loop's ``loop.time()``: ``time.monotonic`` itself for
        asyncio's own loops (whose ``time()`` returns it; a Python call less for each of the
        three readings of a request), else the loop's bound ``time`` (uvloop's, for one)."""
        self.started = False
        self.stopped = False
        self.requests = 0
        self.failures = 0
        self.processor_restarts = 0
        self.health_checks = 0

    def _new_processor(self) -> AsyncRequestProcessor:
        config = self._config
        return AsyncRequestProcessor(
            config.config.request_processor, self.execute, workers=config.limits.workers
        )

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the manager was started in (None before start)."""
        return self._loop

    async def start(self) -> None:
        """Start the request processor's workers and the monitor task in the running loop."""
        if self.started:
            return
        loop = self._loop = asyncio.get_running_loop()
        loop_time = loop.time  # read once: the loop's clock does not change while it runs
        own = getattr(loop_time, "__func__", None) is asyncio.BaseEventLoop.time
        self.loop_time = time.monotonic if own else loop_time
        self.started = True
        if self.processor is not None:
            self.processor.start()
        if self._config.config.connection_pool.health_check_interval_s > 0:
            self._monitor = self._loop.create_task(self._watch())

    async def _watch(self) -> None:
        interval_s = self._config.config.connection_pool.health_check_interval_s
        while True:
            await asyncio.sleep(interval_s)
            self.check_health()

    def check_health(self) -> None:
        """One monitor step: adapt the pool, replace broken sessions, recover the processor."""
        self.health_checks += 1
        self.pool.adapt()
        self.pool.health_check()
        processor = self.processor
        if processor is not None and not processor.healthy and not self.stopped:
            self.processor_restarts += 1
            replacement = self._new_processor()
            replacement.start()
            self.processor = replacement
            # the failed one gets no new work; stop it so its waiters learn and nothing leaks
            self._loop_task(processor.stop())

    def _loop_task(self, coro: Any) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def deadline(self) -> float:
        """The deadline of a call starting now: ``loop.time() + timeout_s`` (float seconds)."""
        return self.loop_time() + self._timeout_s

    async def execute(
        self, spec: RequestSpec, deadline: float | None = None
    ) -> ChatCompletion | AsyncChunkStream:
        """Send one request under the in-flight limit on a pooled connection.

        Args:
            spec: the prepared request.
            deadline: ``loop.time()`` instant (float seconds) by which the call must end, waits
                included; None: ``timeout_s`` from now.

        Returns:
            ChatCompletion, or for ``spec.stream`` an open AsyncChunkStream that holds the
            slot until it is closed.

        Raises:
            APIStatusError, APITimeoutError (also when a wait reached the deadline),
            APIConnectionError, APIError.
        """
        limiter = self.limiter
        if not limiter.try_acquire():
            await _until(limiter.acquire(), deadline, "a free slot of max_concurrent_requests")
        self.requests += 1
        plugin = spec.plugin
        origin = plugin.pool_key or plugin.origin
        pool = self.pool
        try:
            lease = pool.try_acquire(origin, plugin.json_headers)
            if lease is None:
                waiting = pool.acquire(origin, plugin.json_headers)
                lease = await _until(waiting, deadline, "a pooled connection")
        except BaseException:
            limiter.release()
            raise
        if spec.stream:
            return await self._open(spec, pool, origin, lease, deadline)
        loop_time = self.loop_time
        start_s = loop_time()
        try:
            timeout = _attempt_timeout(self._timeout, self._timeout_s, deadline, start_s)
            # The exchange (transport's error rules), inline: one coroutine frame less a
            # request. The session's default headers are the provider's JSON headers (the pool
            # creates it so: aiohttp then copies them instead of merging a dict into every
            # request). The response is released here rather than in ``async with``: aiohttp's
            # context managers add five coroutines a request (two __aenter__, two __aexit__,
            # wait_for_close), and their exit does what ``release()`` does, then awaits the
            # request's writer, which ``read()`` has already awaited.
            try:
                resp = await lease.session.post(plugin.chat_url, data=spec.body, timeout=timeout)
                try:
                    if resp.status >= 300:
                        raise await status_error(resp)
                    raw = await resp.read()
                finally:
                    resp.release()
            except APIError:
                raise
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise map_aiohttp_error(exc) from exc
            result = parse_completion(raw, self._intern)
        except APIError as exc:
            self._on_failure(exc, pool, origin, lease)
            raise
        except BaseException:
            pool.release(origin, lease, connection_ok=True)
            limiter.release()
            raise
        pool.release(origin, lease, connection_ok=True)
        limiter.release()
        latency_s = loop_time() - start_s
        ewma = self.latency_ewma_s
        self.latency_ewma_s = (
            latency_s if ewma is None else ewma + _LATENCY_WEIGHT * (latency_s - ewma)
        )
        aimd = self.aimd
        if aimd is not None and aimd.below_max:
            aimd.on_success()
        return result

    async def _open(
        self, spec: RequestSpec, pool: Any, origin: str, lease: Any, deadline: float | None
    ) -> AsyncChunkStream:
        limiter = self.limiter
        lease.streams += 1  # a health check does not replace a session serving streams

        def on_close(ok: bool, connection_ok: bool) -> None:
            lease.streams -= 1
            pool.release(origin, lease, connection_ok=connection_ok)
            limiter.release()
            if not ok:
                self.failures += 1

        try:
            now_s = self.loop_time()
            timeout = _attempt_timeout(self._timeout, self._timeout_s, deadline, now_s)
            opening = open_stream(lease.session, spec, timeout, self._intern, on_close)
            return await _until(opening, deadline, "the stream to open")
        except APIError as exc:
            lease.streams -= 1
            self._on_failure(exc, pool, origin, lease)
            raise
        except BaseException:
            lease.streams -= 1
            pool.release(origin, lease, connection_ok=True)
            limiter.release()
            raise

    def _on_failure(self, exc: APIError, pool: Any, origin: str, lease: Any) -> None:
        self.failures += 1
        connection_ok = not isinstance(exc, APIConnectionError)
        pool.release(origin, lease, connection_ok=connection_ok)
        self.limiter.release()
        if isinstance(exc, APITimeoutError):
            self.timeouts += 1
            ewma = self.latency_ewma_s
            if ewma is None or ewma < _SLOW_FRACTION * self._timeout_s:
                self.timeouts_as_hangs += 1  # fast successes: a hang, not overload
                return
        elif not (isinstance(exc, APIStatusError) and exc.status_code in _OVERLOAD_STATUS):
            return
        if self.aimd is not None:
            self.aimd.on_overload()

    async def stop(self) -> None:
        """Stop the processor and monitor, close every session; nothing is left pending."""
        if self.stopped:
            return
        self.stopped = True
        if self._monitor is not None:
            self._monitor.cancel()
            await asyncio.gather(self._monitor, return_exceptions=True)
        if self.processor is not None:
            await self.processor.stop()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.pool.aclose()

    def statistics(self) -> dict[str, Any]:
        """Counters of the manager and of each component it owns.

        Returns:
            ``{"concurrency_manager": {...}, "connection_pool": {...},
            "request_processor": {...} (when active)}``; the manager's own counters are
            ``requests``, ``failures``, ``in_flight``, ``limit``, ``max_limit``, ``waits``,
            ``wait_s``, ``peak_in_flight``, ``limit_increases``, ``limit_decreases``,
            ``timeouts``, ``timeouts_as_hangs`` (timeouts that did not lower the limit: the
            successes were fast), ``latency_ewma_s`` (moving average success latency, or None),
            ``health_checks``, ``processor_restarts``.
        """
        lim = self.limiter
        out: dict[str, Any] = {
            "concurrency_manager": {
                "requests": self.requests,
                "failures": self.failures,
                "in_flight": lim.in_use,
                "limit": lim.limit,
                "max_limit": self._config.limits.max_concurrent_requests,
                "waits": lim.waits,
                "wait_s": lim.wait_ns / 1e9,
                "peak_in_flight": lim.peak_in_use,
                "limit_increases": 0 if self.aimd is None else self.aimd.increases,
                "limit_decreases": 0 if self.aimd is None else self.aimd.decreases,
                "timeouts": self.timeouts,
                "timeouts_as_hangs": self.timeouts_as_hangs,
                "latency_ewma_s": self.latency_ewma_s,
                "health_checks": self.health_checks,
                "processor_restarts": self.processor_restarts,
            },
            "connection_pool": self.pool.statistics(),
        }
        if self.processor is not None:
            out["request_processor"] = self.processor.statistics()
        return out


def _not_started() -> float:
    raise RuntimeError("the concurrency manager is not started")


def _attempt_timeout(
    full: aiohttp.ClientTimeout, timeout_s: float, deadline: float | None, now_s: float
) -> aiohttp.ClientTimeout:
    """The aiohttp timeout of one attempt: ``full`` (``total=timeout_s``), or what is left of
    the call's ``deadline`` (loop time, seconds) when waiting or earlier attempts used some.

    Raises:
        APITimeoutError: the deadline has passed already.
    """
    if deadline is None or deadline - now_s >= timeout_s - 0.001:
        return full
    left_s = deadline - now_s
    if left_s <= 0.0:
        raise APITimeoutError("the request timeout passed before it was sent")
    return aiohttp.ClientTimeout(total=left_s, ceil_threshold=_NO_CEIL)


async def _until(waiting: Awaitable[_T], deadline: float | None, what: str) -> _T:
    """Await ``waiting``, ending with APITimeoutError at ``deadline`` (``loop.time()``)."""
    if deadline is None:
        return await waiting
    try:
        async with asyncio.timeout_at(deadline):
            return await waiting
    except TimeoutError:
        raise APITimeoutError(f"the request timeout passed while waiting for {what}") from None
