"""The engine's clock: one object that both reads the time and sleeps.

Every timing decision of a trial (the schedule, the window, the one-second ticks, the timing of
each request) goes through a :class:`Clock`, so that tests can run a whole trial against a fake
client on virtual time and assert exact numbers, with no sleeps and no server (hyperfine's
``MockExecutor`` and pyperf's patched ``perf_counter`` do the same).

- :class:`PerfClock` (the default) reads ``time.perf_counter_ns`` and sleeps with
  ``asyncio.sleep``: the real thing.
- :class:`LoopClock` reads the running event loop's own clock (``loop.time()``); under a
  virtual-time loop such as the ``looptime`` package's, time then advances only when every task
  waits, so a trial of minutes runs in milliseconds and its figures are exact.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from harborbench.units import NS_PER_S

__all__ = ["NS_PER_S", "Clock", "LoopClock", "PerfClock"]


class Clock:
    """Reads the time in nanoseconds and sleeps; the real clock (``time.perf_counter_ns``).

    Subclasses override :meth:`now_ns`; sleeping is ``asyncio.sleep`` of the difference, which
    is right for any clock that advances at the rate of the event loop's own clock.

    Args:
        now_ns: the function read by :meth:`now_ns` (default ``time.perf_counter_ns``), e.g. an
            offset-corrected clock shared by the shards of a run.
    """

    def __init__(self, now_ns: Callable[[], int] = time.perf_counter_ns) -> None:
        self._now_ns = now_ns

    def now_ns(self) -> int:
        """The current time, ns (any origin; only differences mean something)."""
        return self._now_ns()

    @property
    def reader(self) -> Callable[[], int]:
        """A function that reads this clock as :meth:`now_ns` does, for the per-request path.

        For the real clock it is the wrapped function itself (``time.perf_counter_ns``): one
        Python call less a reading, and the engine reads the clock three times a request. A
        subclass that overrides :meth:`now_ns` gets its own bound :meth:`now_ns`.
        """
        return self._now_ns if type(self).now_ns is Clock.now_ns else self.now_ns

    async def sleep_until_ns(self, deadline_ns: int) -> None:
        """Return at ``deadline_ns`` (at once when it has passed; always yields to the loop)."""
        await asyncio.sleep(max(deadline_ns - self.now_ns(), 0) / NS_PER_S)


PerfClock = Clock
"""The real clock (an alias that says so)."""


class LoopClock(Clock):
    """The running event loop's clock (``loop.time()``) in ns; virtual under ``looptime``."""

    def __init__(self) -> None:
        super().__init__()

    def now_ns(self) -> int:
        """``loop.time()`` of the running loop, ns (rounded to the nearest ns)."""
        return round(asyncio.get_running_loop().time() * NS_PER_S)
