"""AsyncRequestProcessor: priority-queued dispatch with batching, coalescing, rate limit, retries.

Requests are put on an :class:`asyncio.PriorityQueue` keyed ``(priority, sequence)``: lower
priority values first, first-in first-out within a priority. A fixed set of worker tasks block on
``queue.get()`` (no polling) and run each request through the ``execute`` callable (the
concurrency manager's send path, which holds the in-flight limit and a pooled connection).
Callers await a future; no task is created per request.

Options, all off by default except retries:

* micro-batching (``max_batch_size`` > 1): a worker that takes a request also takes whatever else
  is queued, up to the batch size, after waiting ``batch_window_s`` for more to arrive, and
  dispatches the batch at once;
* coalescing (``coalesce_identical``): a non-streamed request identical (same URL and body) to one
  already queued or in flight shares its answer instead of being sent again;
* rate limiting: a token bucket of ``rate_per_s`` tokens per second holding at most ``burst``;
* retries: only for retryable failures (HTTP 429, 502, 503, 504, connection errors, timeouts),
  at most ``max_retries`` per request, with exponential backoff and full jitter (delay uniform in
  ``[0, min(max_delay_s, base_delay_s * 2**attempt)]``, from Brooker, "Exponential Backoff And
  Jitter", AWS Architecture Blog, 2015), or exactly the server's ``Retry-After`` when it sent one
  (a ``Retry-After`` longer than ``max_delay_s`` is not retried). A retry budget after Finagle's
  ``RetryBudget`` bounds retries to ``budget_ratio`` of first attempts plus a reserve of 10:
  each first attempt deposits ``budget_ratio`` tokens (balance capped at 10), each retry
  withdraws one.

Streamed requests are retried only until the stream opens (status 2xx); the open stream is
handed to the caller and parsed incrementally by the SSE decoder as it is read.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from harborbench.harborai.config import ProcessorConfig, RateLimitConfig
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
    __slots__ = ("attempt", "futures", "key", "priority", "seq", "spec")

    def __init__(
        self, spec: RequestSpec, priority: int, seq: int, fut: asyncio.Future[Any], key: Any
    ) -> None:
        self.spec = spec
        self.priority = priority
        self.seq = seq
        self.futures = [fut]
        self.attempt = 0
        self.key = key

    def __lt__(self, other: _Item) -> bool:  # only reached on equal (priority, seq): never
        return self.seq < other.seq


class AsyncRequestProcessor:
    """Priority-queued dispatch of requests to worker tasks (see the module docstring).

    Args:
        config: workers, batching, coalescing, rate limit and retry settings.
        execute: async (RequestSpec) -> result, the send path; raises the client's APIError
            subclasses on failure.
        rng: random.Random for the backoff jitter (seeded in tests).

    Use :meth:`start` inside the running loop, :meth:`submit` per request, :meth:`stop` at the
    end (every waiting caller then gets ClientClosedError).
    """

    def __init__(
        self,
        config: ProcessorConfig,
        execute: Callable[[RequestSpec], Awaitable[Any]],
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._execute = execute
        self._rng = rng or random.Random()
        self._queue: asyncio.PriorityQueue[tuple[int, int, _Item]] | None = None
        self._workers: set[asyncio.Task[None]] = set()
        self._timers: dict[_Item, asyncio.TimerHandle] = {}
        self._coalescing: dict[tuple[str, bytes], _Item] = {}
        self._seq = itertools.count()
        self._bucket = TokenBucket(config.rate_limit) if config.rate_limit else None
        self._budget = _BUDGET_RESERVE
        self._stopping = False
        self.submitted = 0
        self.completed = 0
        self.failed = 0
        self.retries = 0
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
    def healthy(self) -> bool:
        """bool, running with every worker task alive."""
        return (
            self.running
            and len(self._workers) == self._config.workers
            and not any(t.done() for t in self._workers)
        )

    def start(self) -> None:
        """Create the queue and the worker tasks in the running event loop."""
        if self._queue is not None:
            return
        self._queue = asyncio.PriorityQueue()
        for _ in range(self._config.workers):
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

    def submit(self, spec: RequestSpec, priority: int = 0) -> asyncio.Future[Any]:
        """Queue a request; returns the future of its result.

        Args:
            spec: the prepared request.
            priority: int, lower is served first; FIFO among equal priorities.

        Returns:
            a future resolving to the result of ``execute`` (ChatCompletion or open stream),
            or to the request's final APIError.

        Raises:
            ClientClosedError: the processor is not running.
        """
        queue = self._queue
        if queue is None or self._stopping:
            raise ClientClosedError("request processor is not running (client closed)")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.submitted += 1
        budget = self._budget + self._config.retry.budget_ratio
        self._budget = budget if budget < _BUDGET_RESERVE else _BUDGET_RESERVE
        key = None
        if self._config.coalesce_identical and not spec.stream:
            key = (spec.plugin.chat_url, spec.body)
            leader = self._coalescing.get(key)
            if leader is not None:
                leader.futures.append(fut)
                self.coalesced += 1
                return fut
        seq = next(self._seq)
        item = _Item(spec, priority, seq, fut, key)
        if key is not None:
            self._coalescing[key] = item
        queue.put_nowait((priority, seq, item))
        return fut

    async def _worker(self) -> None:
        queue = self._queue
        assert queue is not None
        batch_size = self._config.max_batch_size
        window_s = self._config.batch_window_s
        while True:
            item = (await queue.get())[2]
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

    async def _run(self, item: _Item) -> None:
        if all(f.done() for f in item.futures):
            self.abandoned += 1
            self._forget(item)
            return
        try:
            if self._bucket is not None:
                await self._bucket.acquire()
            result = await self._execute(item.spec)
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

    def _retry_delay(self, item: _Item, exc: APIError) -> float | None:
        retry = self._config.retry
        if item.attempt >= retry.max_retries or not is_retryable(exc):
            return None
        if isinstance(exc, APIStatusError) and exc.retry_after_s is not None:
            return exc.retry_after_s if exc.retry_after_s <= retry.max_delay_s else None
        cap_s = min(retry.max_delay_s, retry.base_delay_s * (2.0**item.attempt))
        return self._rng.uniform(0.0, cap_s)

    def _on_failure(self, item: _Item, exc: APIError) -> None:
        delay_s = self._retry_delay(item, exc)
        if delay_s is not None and not all(f.done() for f in item.futures):
            if self._budget >= 1.0:
                self._budget -= 1.0
                item.attempt += 1
                self.retries += 1
                loop = asyncio.get_running_loop()
                self._timers[item] = loop.call_later(delay_s, self._requeue, item)
                return
            self.retries_denied += 1
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
        ClientClosedError; returns when every worker task has ended."""
        if self._queue is None or self._stopping:
            return
        self._stopping = True
        for item, handle in list(self._timers.items()):
            handle.cancel()
            self._fail(item, ClientClosedError("client closed before the retry"))
        self._timers.clear()
        workers = list(self._workers)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        while not self._queue.empty():
            item = self._queue.get_nowait()[2]
            self._fail(item, ClientClosedError("client closed before the request was sent"))

    def statistics(self) -> dict[str, int | float]:
        """Counters: ``submitted``, ``completed``, ``failed``, ``retries``, ``retries_denied``
        (refused by the budget), ``coalesced``, ``batches``, ``abandoned`` (caller gone),
        ``worker_restarts``, ``queue_depth``, ``workers``, ``rate_limit_waits``,
        ``retry_budget`` (float tokens left)."""
        return {
            "submitted": self.submitted,
            "completed": self.completed,
            "failed": self.failed,
            "retries": self.retries,
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
