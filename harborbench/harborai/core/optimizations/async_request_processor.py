"""AsyncRequestProcessor: priority-queued dispatch with batching, coalescing, rate limit, retries.

The processor admits at most ``workers`` requests at once. A request that would not have to wait
(a slot free, nothing queued) and needs none of the queue's features is sent at once in the
caller's task: the *direct path*, taken when micro-batching, coalescing and the rate limit are all
off (the defaults). It pays no queue put, no worker wake-up and no future hand-back, yet it is
counted like any other request, holds one of the ``workers`` slots and goes through the same
retry rule. Every other request is put on a priority queue keyed ``(priority, sequence)``: lower
priority values first, first-in first-out within a priority; a fixed set of worker tasks block on
the queue (no polling) and run each request through the ``execute`` callable (the concurrency
manager's send path, which holds the in-flight limit and a pooled connection). Priorities order
the requests that wait; a request that does not wait has nobody to be ordered against.

Options, all off by default except retries:

* micro-batching (``max_batch_size`` > 1): a worker that takes a request also takes whatever else
  is queued, up to the batch size, after waiting ``batch_window_s`` for more to arrive, and
  dispatches the batch at once;
* coalescing (``coalesce_identical``): a non-streamed request identical (same URL and body) to one
  already queued or in flight shares its answer instead of being sent again;
* rate limiting: a token bucket of ``rate_per_s`` tokens per second holding at most ``burst``;
* retries: only for retryable failures (HTTP 429, 502, 503, 504, connection errors, timeouts),
  at most ``max_retries`` per request, and only while the request's deadline (its ``timeout_s``,
  counted from the call) leaves time for the delay. The delay is exponential backoff with full
  jitter, uniform in ``[0, cap]`` with ``cap = min(max_delay_s, base_delay_s * 2**attempt)``
  (Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015); when the server sent
  ``Retry-After``, the delay is that value plus the same jitter (never earlier than the server
  asked, so a burst of 429s does not come back in one instant), honoured up to the deadline even
  when it exceeds ``max_delay_s``. A retry budget after Finagle's ``RetryBudget`` bounds retries
  to ``budget_ratio`` of first attempts plus a reserve of 10: each first attempt deposits
  ``budget_ratio`` tokens (balance capped at 10), each retry withdraws one.

Retries are counted by cause: ``retries_after_reset`` counts retries after a connection that
broke once the request was written (reset, server disconnect, broken body). Such a request may
already have been executed by the server, so these retries are reported apart: they are the
part of the server-side load that the caller's request count does not show. A connection that
could not be made (refused, DNS) never carried the request and is not counted there.
``retries_after_timeout`` counts retries after a timeout; since every attempt is bounded by the
time left to the deadline, a timed-out attempt normally leaves no time for another, and this
counter stays at 0 unless a connect timeout fired early.

Streamed requests are retried only until the stream opens (status 2xx); the open stream is
handed to the caller and parsed incrementally by the SSE decoder as it is read.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from harborbench.harborai.config import RateLimitConfig, RequestProcessorConfig
from harborbench.harborai.core.provider import RequestSpec
from harborbench.harborai.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ClientClosedError,
)

__all__ = ["RETRYABLE_STATUS", "AsyncRequestProcessor", "TokenBucket", "is_retryable"]

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
"""HTTP statuses worth retrying: rate limited, or a gateway/availability failure."""

_BUDGET_RESERVE = 10.0
"""Retry tokens available at start, and the most the budget banks."""


def is_retryable(exc: BaseException) -> bool:
    """True for failures worth retrying: HTTP 429/502/503/504, connection errors, timeouts."""
    if isinstance(exc, APIStatusError):
        return exc.status_code in RETRYABLE_STATUS
    return isinstance(exc, APIConnectionError | APITimeoutError)


class TokenBucket:
    """A token-bucket rate limiter with reservations (never a polling sleep).

    Each acquisition takes one token; the balance may go negative, and a caller who drove it
    negative sleeps exactly until its token has accrued. Tokens accrue at ``rate_per_s`` up to
    ``burst``.

    Args:
        config: ``rate_per_s`` (float > 0, tokens per second) and ``burst`` (int >= 1).
        clock: () -> float seconds, monotonic (``time.monotonic``; injectable for tests).
    """

    __slots__ = ("_burst", "_clock", "_last_s", "_rate", "_tokens", "waits")

    def __init__(self, config: RateLimitConfig, clock: Callable[[], float] = time.monotonic):
        self._rate = config.rate_per_s
        self._burst = float(config.burst)
        self._clock = clock
        self._tokens = float(config.burst)
        self._last_s = clock()
        self.waits = 0

    def reserve(self) -> float:
        """Take one token now; returns the seconds the caller must wait before using it."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last_s) * self._rate)
        self._last_s = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0.0 else -self._tokens / self._rate

    async def acquire(self) -> None:
        """Take one token, sleeping until it has accrued if the bucket is empty."""
        delay_s = self.reserve()
        if delay_s > 0.0:
            self.waits += 1
            await asyncio.sleep(delay_s)


class _Item:
    __slots__ = ("attempt", "deadline", "futures", "key", "priority", "seq", "spec")

    def __init__(
        self,
        spec: RequestSpec,
        priority: int,
        seq: int,
        fut: asyncio.Future[Any],
        key: Any,
        deadline: float | None,
        attempt: int = 0,
    ) -> None:
        self.spec = spec
        self.priority = priority
        self.seq = seq
        self.futures = [fut]
        self.attempt = attempt
        self.key = key
        self.deadline = deadline

    def __lt__(self, other: _Item) -> bool:  # only reached on equal (priority, seq): never
        return self.seq < other.seq


Execute = Callable[[RequestSpec, "float | None"], Awaitable[Any]]


class AsyncRequestProcessor:
    """Priority-queued dispatch of requests, with a direct path (see the module docstring).

    Args:
        config: batching, coalescing, rate limit and retry settings (and ``workers``).
        execute: async (RequestSpec, deadline) -> result, the send path; ``deadline`` is a
            ``loop.time()`` instant (seconds) or None; raises the client's APIError subclasses.
        workers: worker tasks (slots for running requests); None: ``config.workers``, which
            must then be set (the client passes the effective ``Limits.workers``).
        rng: random.Random for the backoff jitter (seeded in tests).

    Raises:
        ValueError: neither ``workers`` nor ``config.workers`` is given.

    Use :meth:`start` inside the running loop, ``await`` :meth:`call` per request (or
    :meth:`submit`, which always queues), :meth:`stop` at the end (every waiting caller then gets
    ClientClosedError).
    """

    def __init__(
        self,
        config: RequestProcessorConfig,
        execute: Execute,
        *,
        workers: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        workers = config.workers if workers is None else workers
        if workers is None:
            raise ValueError("give workers (the config's default is max_concurrent_requests)")
        self._workers_n = workers
        self._execute = execute
        self._rng = rng or random.Random()
        self._queue: asyncio.PriorityQueue[tuple[int, int, _Item]] | None = None
        self._workers: set[asyncio.Task[None]] = set()
        self._timers: dict[_Item, asyncio.TimerHandle] = {}
        self._sleepers: set[asyncio.Future[None]] = set()
        self._coalescing: dict[tuple[str, bytes], _Item] = {}
        self._seq = itertools.count()
        self._bucket = TokenBucket(config.rate_limit) if config.rate_limit else None
        self._direct = (
            config.max_batch_size <= 1 and not config.coalesce_identical and self._bucket is None
        )
        self._free = self._workers_n  # slots not held by a running request
        self._slot_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._budget = _BUDGET_RESERVE
        self._budget_ratio = config.retry.budget_ratio
        self._stopping = False
        self.submitted = 0
        self.direct = 0
        self.completed = 0
        self.failed = 0
        self.retries = 0
        self.retries_after_reset = 0
        self.retries_after_timeout = 0
        self.retries_denied = 0
        self.coalesced = 0
        self.batches = 0
        self.abandoned = 0
        self.worker_restarts = 0

    @property
    def running(self) -> bool:
        """bool, started and not stopped."""
        return self._queue is not None and not self._stopping

    @property
    def direct_path(self) -> bool:
        """bool, requests that need not wait skip the queue (no batching, coalescing, limit)."""
        return self._direct

    @property
    def healthy(self) -> bool:
        """bool, running with every worker task alive."""
        return (
            self.running
            and len(self._workers) == self._workers_n
            and not any(t.done() for t in self._workers)
        )

    def start(self) -> None:
        """Create the queue and the worker tasks in the running event loop."""
        if self._queue is not None:
            return
        self._queue = asyncio.PriorityQueue()
        for _ in range(self._workers_n):
            self._spawn_worker()

    def _spawn_worker(self) -> None:
        task = asyncio.get_running_loop().create_task(self._worker())
        self._workers.add(task)
        task.add_done_callback(self._worker_done)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        self._workers.discard(task)
        if not self._stopping and self._queue is not None:
            self.worker_restarts += 1  # a worker must never end on its own: recover
            self._spawn_worker()

    # --- slots ------------------------------------------------------------------------------
    async def _take_slot(self) -> None:
        if self._free > 0:
            self._free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._slot_waiters.append(fut)
        try:
            await fut  # the releasing request hands its slot over
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release_slot()
            else:
                with contextlib.suppress(ValueError):
                    self._slot_waiters.remove(fut)
            raise

    def _release_slot(self) -> None:
        waiters = self._slot_waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self._free += 1

    # --- entry points -----------------------------------------------------------------------
    async def call(
        self, spec: RequestSpec, priority: int = 0, deadline: float | None = None
    ) -> Any:
        """Send a request through the processor and return its result.

        Args:
            spec: the prepared request.
            priority: int, lower is served first among waiting requests; FIFO among equals.
            deadline: ``loop.time()`` instant (float seconds) by which the whole call, retries
                and waits included, must end; None for no deadline.

        Returns:
            the result of ``execute`` (ChatCompletion or open stream).

        Raises:
            the request's final APIError; APITimeoutError when the deadline passed while the
            request waited; ClientClosedError when the processor is not running or stops.
        """
        queue = self._queue
        if queue is None or self._stopping:
            raise ClientClosedError("request processor is not running (client closed)")
        if not (self._direct and self._free > 0 and queue.empty()):
            return await self._wait(self.submit(spec, priority, deadline), deadline)
        # _deposit(), inline (once a request: a call less)
        self.submitted += 1
        budget = self._budget + self._budget_ratio
        self._budget = budget if budget < _BUDGET_RESERVE else _BUDGET_RESERVE
        self.direct += 1
        attempt = 0
        while True:
            self._free -= 1
            try:
                result = await self._execute(spec, deadline)
            except APIError as exc:
                error = exc
            except asyncio.CancelledError:  # the caller is gone
                self.abandoned += 1
                raise
            except Exception:  # a bug in the send path: the caller sees it
                self.failed += 1
                raise
            else:
                self.completed += 1
                return result
            finally:
                if self._slot_waiters:
                    self._release_slot()
                else:  # what _release_slot does when nobody waits, without its call
                    self._free += 1
            if self._stopping:
                self.failed += 1
                raise ClientClosedError("client closed while the request was in flight") from error
            delay_s = self._retry_delay(attempt, error, deadline)
            if delay_s is None or not self._spend_retry(error):
                self.failed += 1
                raise error
            attempt += 1
            try:
                await self._sleep(delay_s)
            except ClientClosedError:
                self.failed += 1
                raise
            if not (self._free > 0 and queue.empty()):  # others wait now: queue behind them
                fut = self._enqueue(spec, priority, deadline, None, attempt)
                return await self._wait(fut, deadline)

    def submit(
        self, spec: RequestSpec, priority: int = 0, deadline: float | None = None
    ) -> asyncio.Future[Any]:
        """Queue a request (never the direct path); returns the future of its result.

        Args:
            spec: the prepared request.
            priority: int, lower is served first; FIFO among equal priorities.
            deadline: as in :meth:`call`; a request still queued at its deadline fails with
                APITimeoutError when a worker reaches it.

        Returns:
            a future resolving to the result of ``execute`` (ChatCompletion or open stream),
            or to the request's final APIError.

        Raises:
            ClientClosedError: the processor is not running.
        """
        if self._queue is None or self._stopping:
            raise ClientClosedError("request processor is not running (client closed)")
        self._deposit()
        key = None
        if self._config.coalesce_identical and not spec.stream:
            key = (spec.plugin.chat_url, spec.body)
            leader = self._coalescing.get(key)
            if leader is not None:
                fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                leader.futures.append(fut)
                self.coalesced += 1
                return fut
        return self._enqueue(spec, priority, deadline, key, 0)

    def _deposit(self) -> None:
        """Count a first attempt and deposit its retry-budget tokens (inline in :meth:`call`)."""
        self.submitted += 1
        budget = self._budget + self._budget_ratio
        self._budget = budget if budget < _BUDGET_RESERVE else _BUDGET_RESERVE

    def _enqueue(
        self, spec: RequestSpec, priority: int, deadline: float | None, key: Any, attempt: int
    ) -> asyncio.Future[Any]:
        assert self._queue is not None
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        seq = next(self._seq)
        item = _Item(spec, priority, seq, fut, key, deadline, attempt)
        if key is not None:
            self._coalescing[key] = item
        self._queue.put_nowait((priority, seq, item))
        return fut

    async def _wait(self, fut: asyncio.Future[Any], deadline: float | None) -> Any:
        if deadline is None:
            return await fut
        try:
            async with asyncio.timeout_at(deadline):
                return await fut
        except TimeoutError:
            raise APITimeoutError(
                "no answer within the request timeout (the request waited in the request "
                "processor's queue or for a retry)"
            ) from None

    async def _sleep(self, delay_s: float) -> None:
        """Wait out a retry delay; :meth:`stop` ends the wait with ClientClosedError."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(delay_s, _resolve, fut)
        self._sleepers.add(fut)
        try:
            await fut
        finally:
            handle.cancel()
            self._sleepers.discard(fut)

    # --- workers ----------------------------------------------------------------------------
    async def _worker(self) -> None:
        queue = self._queue
        assert queue is not None
        batch_size = self._config.max_batch_size
        window_s = self._config.batch_window_s
        while True:
            item = (await queue.get())[2]
            await self._take_slot()
            try:
                if batch_size <= 1:
                    await self._run(item)
                    continue
                if window_s > 0.0 and queue.qsize() < batch_size - 1:
                    await asyncio.sleep(window_s)
                batch = [item]
                while len(batch) < batch_size and not queue.empty():
                    batch.append(queue.get_nowait()[2])
                self.batches += 1
                if len(batch) == 1:
                    await self._run(item)
                else:
                    await asyncio.gather(*(self._run(i) for i in batch))
            finally:
                self._release_slot()

    async def _run(self, item: _Item) -> None:
        if all(f.done() for f in item.futures):
            self.abandoned += 1
            self._forget(item)
            return
        deadline = item.deadline
        if deadline is not None and asyncio.get_running_loop().time() >= deadline:
            self._fail(item, APITimeoutError("the request timeout passed before it was sent"))
            return
        try:
            if self._bucket is not None:
                await self._bucket.acquire()
            result = await self._execute(item.spec, deadline)
        except asyncio.CancelledError:
            self._fail(item, ClientClosedError("client closed while the request was in flight"))
            raise
        except APIError as exc:
            self._on_failure(item, exc)
        except Exception as exc:  # a bug in the send path: the caller sees it, the worker lives
            self._fail(item, exc)
        else:
            self._forget(item)
            delivered = False
            for fut in item.futures:
                if not fut.done():
                    fut.set_result(result)
                    delivered = True
            if delivered:
                self.completed += 1
            else:
                self.abandoned += 1
                aclose = getattr(result, "aclose", None)
                if aclose is not None:  # an opened stream nobody waits for any more
                    await aclose()

    # --- retries ----------------------------------------------------------------------------
    def _retry_delay(self, attempt: int, exc: APIError, deadline: float | None) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or None for no retry.

        None when the failure is not retryable, ``max_retries`` is spent, or the delay would
        end at or after ``deadline`` (a ``loop.time()`` instant, or None for no deadline).
        """
        retry = self._config.retry
        if attempt >= retry.max_retries or not is_retryable(exc):
            return None
        cap_s = min(retry.max_delay_s, retry.base_delay_s * (2.0**attempt))
        after_s = exc.retry_after_s if isinstance(exc, APIStatusError) else None
        floor_s = 0.0 if after_s is None else after_s
        if deadline is not None:
            left_s = deadline - asyncio.get_running_loop().time()
            if floor_s >= left_s:
                return None
            cap_s = min(cap_s, left_s - floor_s)
        return floor_s + self._rng.uniform(0.0, cap_s)

    def _spend_retry(self, exc: APIError) -> bool:
        """Take one token of the retry budget and count the retry; False when refused."""
        if self._budget < 1.0:
            self.retries_denied += 1
            return False
        self._budget -= 1.0
        self.retries += 1
        if isinstance(exc, APIConnectionError) and exc.maybe_executed:
            self.retries_after_reset += 1
        elif isinstance(exc, APITimeoutError):
            self.retries_after_timeout += 1
        return True

    def _on_failure(self, item: _Item, exc: APIError) -> None:
        if not self._stopping and not all(f.done() for f in item.futures):
            delay_s = self._retry_delay(item.attempt, exc, item.deadline)
            if delay_s is not None and self._spend_retry(exc):
                item.attempt += 1
                loop = asyncio.get_running_loop()
                self._timers[item] = loop.call_later(delay_s, self._requeue, item)
                return
        self._fail(item, exc)

    def _requeue(self, item: _Item) -> None:
        self._timers.pop(item, None)
        if self._queue is not None and not self._stopping:
            self._queue.put_nowait((item.priority, item.seq, item))

    def _forget(self, item: _Item) -> None:
        if item.key is not None and self._coalescing.get(item.key) is item:
            del self._coalescing[item.key]

    def _fail(self, item: _Item, exc: BaseException) -> None:
        self._forget(item)
        self.failed += 1
        for fut in item.futures:
            if not fut.done():
                fut.set_exception(exc)

    async def stop(self) -> None:
        """Stop the workers and fail every queued, delayed or in-flight request with
        ClientClosedError; returns when every worker task has ended. A request on the direct
        path fails with ClientClosedError when its send ends (the pool closes its connection)."""
        if self._queue is None or self._stopping:
            return
        self._stopping = True
        for item, handle in list(self._timers.items()):
            handle.cancel()
            self._fail(item, ClientClosedError("client closed before the retry"))
        self._timers.clear()
        for sleeper in list(self._sleepers):
            if not sleeper.done():
                sleeper.set_exception(ClientClosedError("client closed before the retry"))
        workers = list(self._workers)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        while not self._queue.empty():
            item = self._queue.get_nowait()[2]
            self._fail(item, ClientClosedError("client closed before the request was sent"))

    def statistics(self) -> dict[str, int | float]:
        """Counters: ``submitted``, ``direct`` (sent without queueing), ``completed``,
        ``failed``, ``retries`` (all causes), ``retries_after_reset`` (the connection broke
        after the request was written: the server may have executed it), ``retries_after_timeout``,
        ``retries_denied`` (refused by the budget), ``coalesced``, ``batches``, ``abandoned``
        (caller gone), ``worker_restarts``, ``queue_depth``, ``workers``, ``rate_limit_waits``,
        ``retry_budget`` (float tokens left)."""
        return {
            "submitted": self.submitted,
            "direct": self.direct,
            "completed": self.completed,
            "failed": self.failed,
            "retries": self.retries,
            "retries_after_reset": self.retries_after_reset,
            "retries_after_timeout": self.retries_after_timeout,
            "retries_denied": self.retries_denied,
            "coalesced": self.coalesced,
            "batches": self.batches,
            "abandoned": self.abandoned,
            "worker_restarts": self.worker_restarts,
            "queue_depth": 0 if self._queue is None else self._queue.qsize(),
            "workers": len(self._workers),
            "rate_limit_waits": 0 if self._bucket is None else self._bucket.waits,
            "retry_budget": self._budget,
        }


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
