"""An asyncio counting limiter whose limit can change at run time.

Used twice: as the concurrency manager's in-flight limit (``max_concurrent_requests``, adapted by
AIMD) and as the connection pool's per-origin connection gate (adapted from waits and
utilization). It is a semaphore with a mutable limit: waiters queue FIFO on futures (no polling),
and a raised limit wakes as many waiters as it admits. Not thread-safe: use it from one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

__all__ = ["AsyncLimiter"]


class AsyncLimiter:
    """A FIFO counting semaphore with an adjustable limit, for one event loop.

    The fast path (a free slot and nobody waiting) is a plain integer check: call
    :meth:`try_acquire` and fall back to ``await`` :meth:`acquire` only when it returns False.

    Args:
        limit: int >= 1, slots available at start.

    Attributes:
        waits: int, acquisitions that had to wait for a slot.
        wait_ns: int, nanoseconds spent waiting, summed over ``waits``.
        acquisitions: int, slots granted in total.
        peak_in_use: int, the highest number of slots held at once since the last
            :meth:`take_window`.
    """

    __slots__ = ("_in_use", "_limit", "_waiters", "acquisitions", "peak_in_use", "wait_ns", "waits")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self._limit = limit
        self._in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.waits = 0
        self.wait_ns = 0
        self.acquisitions = 0
        self.peak_in_use = 0

    @property
    def limit(self) -> int:
        """int, the current number of slots."""
        return self._limit

    @property
    def in_use(self) -> int:
        """int, slots held now."""
        return self._in_use

    @property
    def waiting(self) -> int:
        """int, acquirers waiting now."""
        return len(self._waiters)

    def set_limit(self, limit: int) -> None:
        """Change the number of slots; a rise admits waiters at once, a fall takes effect as
        holders release (nobody is pre-empted).

        Args:
            limit: int >= 1.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self._limit = limit
        self._wake()

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody waits; returns True when taken."""
        if self._in_use < self._limit and not self._waiters:
            self._in_use += 1
            self.acquisitions += 1
            if self._in_use > self.peak_in_use:
                self.peak_in_use = self._in_use
            return True
        return False

    async def acquire(self) -> None:
        """Take a slot, waiting in FIFO order until one is free.

        Raises:
            asyncio.CancelledError: the waiter was cancelled (no slot is held then).
        """
        if self.try_acquire():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        start_ns = time.perf_counter_ns()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed over just before the cancellation
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
            raise
        self.waits += 1
        self.wait_ns += time.perf_counter_ns() - start_ns

    def release(self) -> None:
        """Give back one slot and hand it to the longest waiter if the limit allows."""
        self._in_use -= 1
        if self._waiters:
            self._wake()

    def take_window(self) -> int:
        """Return the peak of slots held since the last call, and restart it at the current use."""
        peak = self.peak_in_use
        self.peak_in_use = self._in_use
        return peak

    def _wake(self) -> None:
        while self._waiters and self._in_use < self._limit:
            fut = self._waiters.popleft()
            if fut.done():
                continue
            self._in_use += 1
            self.acquisitions += 1
            if self._in_use > self.peak_in_use:
                self.peak_in_use = self._in_use
            fut.set_result(None)
