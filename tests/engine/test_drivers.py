"""Drivers on virtual time with a fake send: what is sent, when, and how many at once."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from harborbench.engine import drivers
from harborbench.engine.clock import LoopClock
from harborbench.engine.drivers import drive_closed_loop, drive_open_loop
from harborbench.engine.schedule import arrival_offsets_ns, build_plan
from tests.engine.virtual import closed_loop_send

MS = 1_000_000

pytestmark = pytest.mark.looptime  # virtual time: no test here waits for real


class Tally:
    def __init__(self) -> None:
        self.dropped: list[int] = []
        self.late: list[tuple[int, int]] = []

    def on_dropped(self, intended: Any) -> None:
        self.dropped.extend(np.asarray(intended).tolist())

    def on_late(self, intended: Any, now: int) -> None:
        self.late.extend((t, now) for t in np.asarray(intended).tolist())


async def test_open_loop_sends_every_arrival_at_its_intended_time() -> None:
    plan = build_plan(warmup_s=0, levels=[(0.5, 200.0)], kind="open")
    sent: list[tuple[int, int]] = []
    clock = LoopClock()
    tally = Tally()

    async def main() -> int:
        start = clock.now_ns()

        async def send(t: int) -> None:
            sent.append((t, clock.now_ns()))
            await asyncio.sleep(0.05)  # answers come later: the open loop must not wait for them

        pending: set[asyncio.Task[None]] = set()
        await drive_open_loop(
            plan, send, start, clock, pending, window_end_ns=start + 500 * MS,
            max_outstanding=1000, on_dropped=tally.on_dropped, on_late=tally.on_late,
        )  # fmt: skip
        await asyncio.gather(*pending)
        return start

    start = await main()
    assert [t for t, _ in sent] == [start + o for o in arrival_offsets_ns(plan)]
    assert all(actual == intended for intended, actual in sent)  # on time, to the ns
    assert tally.dropped == [] and tally.late == []


async def test_open_loop_drops_arrivals_beyond_max_outstanding() -> None:
    plan = build_plan(warmup_s=0, levels=[(0.1, 100.0)], kind="open")  # 10 arrivals
    tally = Tally()

    async def main() -> int:
        clock = LoopClock()
        release = asyncio.Event()

        async def send(t: int) -> None:
            await release.wait()

        pending: set[asyncio.Task[None]] = set()
        start = clock.now_ns()
        await drive_open_loop(
            plan, send, start, clock, pending, window_end_ns=start + 100 * MS,
            max_outstanding=5, on_dropped=tally.on_dropped, on_late=tally.on_late,
        )  # fmt: skip
        n = len(pending)
        release.set()
        await asyncio.gather(*pending)
        return n

    assert await main() == 5
    assert len(tally.dropped) == 10 - 5
    assert tally.late == []


async def test_after_a_stall_past_the_window_end_the_rest_are_counted_late_not_lost() -> None:
    """A 1.5 s stall at 0.9 s of a 1 s window: arrivals 0.91 .. 0.99 are reached at 2.41 s."""
    plan = build_plan(warmup_s=0, levels=[(1.0, 100.0)], kind="open")
    tally = Tally()
    sent: list[int] = []

    class Stalling(LoopClock):
        skew = 0

        def now_ns(self) -> int:
            return super().now_ns() + self.skew

    clock = Stalling()

    async def main() -> int:
        start = clock.now_ns()

        async def send(t: int) -> None:
            sent.append(t)
            if t - start == 900 * MS:
                clock.skew = 1500 * MS  # the loop is blocked for 1.5 s inside this call

        pending: set[asyncio.Task[None]] = set()
        await drive_open_loop(
            plan, send, start, clock, pending, window_end_ns=start + 1000 * MS,
            max_outstanding=1000, on_dropped=tally.on_dropped, on_late=tally.on_late,
        )  # fmt: skip
        await asyncio.gather(*pending)
        return start

    start = await main()
    assert len(sent) == 91  # 0.00 .. 0.90
    assert [t - start for t, _ in tally.late] == [k * 10 * MS for k in range(91, 100)]
    assert {now - start for _, now in tally.late} == {2410 * MS}  # woke for 0.91 s, 1.5 s late
    assert len(sent) + len(tally.late) + len(tally.dropped) == 100  # every arrival accounted


async def test_open_loop_yields_to_the_event_loop_whatever_the_rate() -> None:
    """At 1e8 ops/s the driver is always behind; other tasks (Ctrl-C, the ticker) still run."""
    plan = build_plan(warmup_s=0, levels=[(0.0001, 1e8)], kind="open")  # 10,000 arrivals
    ticks = 0
    sent = 0

    class Behind(LoopClock):
        def now_ns(self) -> int:
            return super().now_ns() + 1 * MS  # every arrival is already due

    async def main() -> None:
        nonlocal ticks
        clock = Behind()
        pending: set[asyncio.Task[None]] = set()
        done = False

        async def other() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0)

        async def send(t: int) -> None:
            nonlocal sent
            sent += 1

        watcher = asyncio.create_task(other())
        start = clock.now_ns() - 1 * MS
        await drive_open_loop(
            plan, send, start, clock, pending, window_end_ns=start + 10**9,
            max_outstanding=10**6, on_dropped=lambda a: None, on_late=lambda a, n: None,
        )  # fmt: skip
        done = True
        await watcher
        await asyncio.gather(*pending)

    await main()
    assert sent == 10_000
    # Without a yield the other task would not run once until the driver returned.
    assert ticks >= 10_000 // drivers.YIELD_EVERY - 1


async def test_closed_loop_holds_the_level_of_each_step() -> None:
    plan = build_plan(warmup_s=0, levels=[(0.3, 2), (0.3, 6)], kind="closed")
    in_flight = 0
    peak_by_step = {0: 0, 1: 0}
    intended_off: list[Any] = []

    async def main() -> None:
        nonlocal in_flight
        clock = LoopClock()
        start = clock.now_ns()

        async def send(t: int) -> None:
            nonlocal in_flight
            # closed loop: the intended send time is the actual one, also for a worker that
            # waited for its step (it reads the clock again when it wakes)
            intended_off.extend([] if t == clock.now_ns() else [t])
            in_flight += 1
            step = 0 if (clock.now_ns() - start) < 300 * MS else 1
            peak_by_step[step] = max(peak_by_step[step], in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1

        task = asyncio.create_task(drive_closed_loop(plan, closed_loop_send(send), start, clock))
        await asyncio.sleep(0.55)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    await main()
    assert peak_by_step == {0: 2, 1: 6}
    assert intended_off == []


def test_yield_every_is_a_small_bound() -> None:
    assert 1 <= drivers.YIELD_EVERY <= 1000


def _oracle_sent(arrivals_ns: list[int], service_ns: int, max_outstanding: int) -> list[int]:
    """The arrivals a full backlog does not drop: sent iff fewer than max are pending then."""
    ends: list[int] = []
    sent = []
    for t in arrivals_ns:
        ends = [e for e in ends if e > t]  # (no end falls on an arrival in these tests)
        if len(ends) < max_outstanding:
            sent.append(t)
            ends.append(t + service_ns)
    return sent


class CountingSleeps(LoopClock):
    sleeps = 0

    async def sleep_until_ns(self, deadline_ns: int) -> None:
        self.sleeps += 1
        await super().sleep_until_ns(deadline_ns)


@pytest.mark.parametrize("rate", [1000.0, 10_000.0])
async def test_with_the_backlog_full_the_driver_wakes_per_completion_not_per_arrival(
    rate: float,
) -> None:
    """Capacity 5 / 7.55 ms = 662 ops/s, offered 1k or 10k ops/s for 1 s.

    Each arrival is sent exactly when fewer than 5 requests are pending at its intended time
    (an independent simulation says which), the rest are dropped, and the driver sleeps about
    twice a completion (until the next arrival, and for a request to end) at either rate: not
    once an arrival, which at 10k ops/s offered would be 10,000 wake-ups.
    """
    plan = build_plan(warmup_s=0, levels=[(1.0, rate)], kind="open")
    service_ns = 7_550_000  # ends never fall on an arrival (multiples of 0.1 ms)
    tally = Tally()
    sent: list[int] = []
    clock = CountingSleeps()

    async def main() -> int:
        start = clock.now_ns()

        async def send(t: int) -> None:
            sent.append(t - start)
            await asyncio.sleep(service_ns / 1e9)

        pending: set[asyncio.Task[None]] = set()
        await drive_open_loop(
            plan, send, start, clock, pending, window_end_ns=start + 1000 * MS,
            max_outstanding=5, on_dropped=tally.on_dropped, on_late=tally.on_late,
        )  # fmt: skip
        await asyncio.gather(*pending)
        return start

    start = await main()
    arrivals = list(arrival_offsets_ns(plan))
    expected = _oracle_sent(arrivals, service_ns, 5)
    assert sent == expected
    assert len(expected) in range(620, 665)  # about the capacity (625 at 1k: sends on whole ms)
    assert sorted(t - start for t in tally.dropped) == sorted(set(arrivals) - set(expected))
    assert tally.late == []
    assert clock.sleeps <= 2 * len(sent) + 2
