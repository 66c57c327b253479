"""Drivers with a fake transport: what is sent, when, and how many at once."""

from __future__ import annotations

import asyncio
import time

from harborbench.engine.drivers import drive_closed_loop, drive_open_loop
from harborbench.engine.schedule import arrival_offsets_ns, build_plan


async def test_open_loop_sends_every_arrival_at_its_intended_time() -> None:
    plan = build_plan(warmup_s=0, levels=[(0.5, 200.0)], kind="open")
    intended: list[int] = []
    lateness: list[int] = []
    start = time.perf_counter_ns()

    async def send(t: int) -> None:
        intended.append(t)
        lateness.append(time.perf_counter_ns() - t)
        await asyncio.sleep(0.05)  # answers arrive later: the open loop must not wait for them

    pending: set[asyncio.Task[None]] = set()
    await drive_open_loop(plan, send, start, time.perf_counter_ns, pending, lambda t: None)
    await asyncio.gather(*pending)
    assert intended == [start + o for o in arrival_offsets_ns(plan)]
    assert min(lateness) >= 0  # never sent early


async def test_open_loop_counts_unsent_when_too_many_are_pending(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import harborbench.engine.drivers as drivers

    monkeypatch.setattr(drivers, "MAX_OUTSTANDING", 5)
    plan = build_plan(warmup_s=0, levels=[(0.1, 100.0)], kind="open")
    release = asyncio.Event()
    unsent = 0

    def on_unsent(intended_ns: int) -> None:
        nonlocal unsent
        unsent += 1

    async def send(t: int) -> None:
        await release.wait()

    pending: set[asyncio.Task[None]] = set()
    await drive_open_loop(
        plan, send, time.perf_counter_ns(), time.perf_counter_ns, pending, on_unsent
    )
    assert len(pending) == 5
    assert unsent == 10 - 5
    release.set()
    await asyncio.gather(*pending)


async def test_closed_loop_holds_the_level_of_each_step() -> None:
    plan = build_plan(warmup_s=0, levels=[(0.3, 2), (0.3, 6)], kind="closed")
    in_flight = 0
    peak_by_step = {0: 0, 1: 0}
    start = time.perf_counter_ns()

    async def send(t: int) -> None:
        nonlocal in_flight
        in_flight += 1
        step = 0 if (time.perf_counter_ns() - start) < 0.3e9 else 1
        peak_by_step[step] = max(peak_by_step[step], in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1

    task = asyncio.create_task(drive_closed_loop(plan, send, start, time.perf_counter_ns))
    await asyncio.sleep(0.55)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert peak_by_step == {0: 2, 1: 6}
