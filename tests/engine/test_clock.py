"""The engine's clock: reads an injected time source and sleeps on the loop's clock."""

from __future__ import annotations

import asyncio

import pytest

from harborbench.engine.clock import NS_PER_S, Clock, LoopClock, PerfClock


def test_a_clock_reads_its_source() -> None:
    ticks = iter([5, 9])
    clock = Clock(lambda: next(ticks))
    assert (clock.now_ns(), clock.now_ns()) == (5, 9)
    assert PerfClock is Clock
    assert NS_PER_S == 1_000_000_000


@pytest.mark.looptime
async def test_sleeping_until_a_deadline_on_virtual_time() -> None:
    loop = asyncio.get_running_loop()
    clock = LoopClock()
    start = clock.now_ns()
    assert start == round(loop.time() * NS_PER_S)
    await clock.sleep_until_ns(start + 1_500_000_000)
    assert clock.now_ns() - start == 1_500_000_000
    await clock.sleep_until_ns(start)  # past: returns at once
    assert clock.now_ns() - start == 1_500_000_000


@pytest.mark.looptime
async def test_a_clock_on_another_source_sleeps_the_difference() -> None:
    loop = asyncio.get_running_loop()
    offset = 7 * NS_PER_S
    clock = Clock(lambda: round(loop.time() * NS_PER_S) + offset)
    t0 = loop.time()
    await clock.sleep_until_ns(clock.now_ns() + 250_000_000)
    assert loop.time() - t0 == pytest.approx(0.25, abs=1e-9)
