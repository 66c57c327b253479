"""Event-loop lag: how late a periodic timer of the asyncio loop wakes up.

A load generator whose loop is blocked (a slow callback, a synchronous call, a CPU-bound burst)
sends late and times late; its figures are then measurements of itself. :class:`LoopLagMonitor`
makes that visible, as Locust does for its own CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from types import TracebackType

from harborbench.metrics.histogram import LatencyHistogram
from harborbench.units import NS_PER_S

#: Health thresholds of the load generator's event loop, seconds of lag at p99: above
#: ``LAG_WARN_S`` the lag is warned about; above ``LAG_SATURATED_S`` the loop *stalled*: its
#: own stalls are in every timing, so the run is flagged as saturated and the gates its stalls
#: can fail (throughput, latency, goodput) are inconclusive, not failed (:func:`loop_stalled`).
LAG_WARN_S = 0.02
LAG_SATURATED_S = 0.1


def loop_stalled(lag_p99_s: float | None) -> bool:
    """Whether an event-loop lag p99 (seconds; ``None``: not measured) means the loop stalled.

    The one rule behind the run's saturation flag (``engine.assemble``) and the gates' stall
    verdict (``harborbench.gates``): strictly above :data:`LAG_SATURATED_S`.
    """
    return lag_p99_s is not None and lag_p99_s > LAG_SATURATED_S


class LoopLagMonitor:
    """An asyncio task that sleeps ``interval_s`` and records how late it woke, in a histogram.

    Each lag is ``actual wake-up time - (time before the sleep + interval_s)``, from the loop's
    monotonic clock, recorded in nanoseconds into a :class:`LatencyHistogram` (lags below 1 µs,
    including zero, count as 1 µs there). A lag of ``d`` seconds means every callback ready in that
    moment waited up to ``d`` too. Use as ``async with LoopLagMonitor(): ...`` or ``await start()``
    / ``await stop()``; ``stop`` cancels and awaits the task, so none is leaked.
    """

    def __init__(self, interval_s: float = 0.05, clock: Callable[[], float] | None = None) -> None:
        """Create a monitor (it does not run until :meth:`start`).

        Args:
            interval_s: sleep between wake-ups, seconds (default 50 ms).
            clock: monotonic clock in seconds; default the running loop's ``time``.

        Raises:
            ValueError: if ``interval_s`` is not positive.
        """
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self._interval_s = interval_s
        self._clock = clock
        self._histogram = LatencyHistogram()
        self._task: asyncio.Task[None] | None = None

    @property
    def interval_s(self) -> float:
        """Sleep between wake-ups, seconds."""
        return self._interval_s

    @property
    def histogram(self) -> LatencyHistogram:
        """Lags recorded so far, nanoseconds (clamped at 1 µs below)."""
        return self._histogram

    @property
    def running(self) -> bool:
        """Whether the monitoring task is running."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the monitoring task on the running loop.

        Raises:
            RuntimeError: if it is already running.
        """
        if self.running:
            raise RuntimeError("LoopLagMonitor is already running")
        clock = self._clock or asyncio.get_running_loop().time
        self._task = asyncio.create_task(self._run(clock), name="harborbench-loop-lag")

    async def stop(self) -> None:
        """Cancel the monitoring task and wait until it has ended (idempotent)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def __aenter__(self) -> LoopLagMonitor:
        """Start monitoring; returns the monitor."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop monitoring."""
        await self.stop()

    async def _run(self, clock: Callable[[], float]) -> None:
        interval_s = self._interval_s
        record_ns = self._histogram.record_ns
        while True:
            expected_s = clock() + interval_s
            await asyncio.sleep(interval_s)
            record_ns(max(round((clock() - expected_s) * NS_PER_S), 0))

    @property
    def samples(self) -> int:
        """Number of wake-ups recorded."""
        return self._histogram.count

    @property
    def max_lag_s(self) -> float | None:
        """Largest lag, seconds (within 0.1 %), or None before the first wake-up."""
        return self._histogram.max_ns / NS_PER_S if self._histogram.count else None

    @property
    def p99_lag_s(self) -> float | None:
        """99th percentile of the lag, seconds (within 0.1 %), or None before the first wake-up."""
        return self._histogram.percentile_ns(99) / NS_PER_S if self._histogram.count else None

    def lag_events_over(self, threshold_s: float) -> int:
        """Number of wake-ups later than ``threshold_s``.

        Args:
            threshold_s: the lag threshold, seconds.

        Returns:
            the count of recorded lags above the threshold (lags within 0.1 % of it may be left
            out, see :meth:`LatencyHistogram.count_above_ns`).
        """
        return self._histogram.count_above_ns(round(threshold_s * NS_PER_S))
