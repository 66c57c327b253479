"""LoopLagMonitor: exact lags from a scripted clock, and a real blocked loop (loose tolerance)."""

from __future__ import annotations

import asyncio
import time

import pytest

from harborbench.metrics.looplag import LAG_SATURATED_S, LAG_WARN_S, LoopLagMonitor, loop_stalled


async def test_lags_from_a_scripted_clock_are_exact_within_histogram_precision() -> None:
    # clock readings alternate: before the sleep, after it; interval 1 ms
    script = [10.0, 10.001 + 0.25, 20.0, 20.001 + 0.3, 30.0, 30.001]
    scripted = asyncio.Event()

    def clock() -> float:
        if script:
            value = script.pop(0)
            if not script:
                scripted.set()
            return value
        return 40.0  # from here on: woke early or on time, lag 0

    monitor = LoopLagMonitor(interval_s=0.001, clock=clock)
    await monitor.start()
    await scripted.wait()
    await monitor.stop()
    assert monitor.samples >= 3
    assert monitor.max_lag_s == pytest.approx(0.3, rel=1 / 1024)
    assert monitor.lag_events_over(0.2) == 2
    assert monitor.lag_events_over(0.26) == 1
    assert monitor.lag_events_over(0.31) == 0
    assert monitor.histogram.clamped_below_count == monitor.samples - 2  # the zero lags


async def test_detects_a_deliberately_blocked_loop() -> None:
    monitor = LoopLagMonitor()  # 50 ms
    await monitor.start()
    await asyncio.sleep(0.12)
    time.sleep(0.2)  # block the event loop on purpose
    await asyncio.sleep(0.12)
    await monitor.stop()
    max_lag_s = monitor.max_lag_s
    assert max_lag_s is not None
    # the timer was due at most 50 ms before the block began: it woke >= 150 ms late
    assert 0.1 < max_lag_s < 1.0
    assert monitor.lag_events_over(0.1) >= 1
    assert monitor.samples >= 3
    p99 = monitor.p99_lag_s
    assert p99 is not None and p99 <= max_lag_s


async def test_no_task_is_leaked_and_stop_is_idempotent() -> None:
    before = asyncio.all_tasks()
    monitor = LoopLagMonitor(interval_s=0.01)
    assert monitor.max_lag_s is None
    assert monitor.p99_lag_s is None
    async with monitor:
        assert monitor.running
        with pytest.raises(RuntimeError, match="already running"):
            await monitor.start()
        await asyncio.sleep(0.05)
    assert not monitor.running
    assert asyncio.all_tasks() == before
    await monitor.stop()
    assert monitor.samples >= 1
    assert monitor.interval_s == 0.01


@pytest.mark.parametrize("interval_s", [0.0, -1.0, float("nan")])
def test_interval_must_be_positive(interval_s: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        LoopLagMonitor(interval_s=interval_s)


@pytest.mark.parametrize(
    ("lag_s", "stalled"),
    [(None, False), (0.0, False), (LAG_SATURATED_S, False), (LAG_SATURATED_S + 1e-9, True)],
)
def test_a_loop_stalled_strictly_above_the_saturation_lag(
    lag_s: float | None, stalled: bool
) -> None:
    assert LAG_SATURATED_S == 0.1 and LAG_WARN_S == 0.02
    assert loop_stalled(lag_s) is stalled
