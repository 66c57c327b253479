"""The closed-loop driver at its edges: no send at the very end, only the stripe's workers."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from harborbench.engine.clock import LoopClock
from harborbench.engine.drivers import drive_closed_loop
from harborbench.engine.schedule import build_plan
from tests.engine.virtual import closed_loop_send

pytestmark = pytest.mark.looptime

MS = 1_000_000


async def run_closed(plan: object, latency_s: float) -> list[tuple[int, int]]:
    """(send time from the start in ms, worker slot) of every send until the driver ends."""
    clock = LoopClock()
    start = clock.now_ns()
    sends: list[tuple[int, int]] = []
    active = 0

    async def send(t: int) -> None:
        nonlocal active
        active += 1
        sends.append(((t - start) // MS, active))
        await asyncio.sleep(latency_s)
        active -= 1

    await drive_closed_loop(plan, closed_loop_send(send), start, clock)  # type: ignore[arg-type]
    return sends


async def test_no_request_starts_at_the_end_of_the_plan() -> None:
    plan = build_plan(warmup_s=0, levels=[(1.0, 1)], kind="closed")
    sends = await run_closed(plan, 0.25)
    assert [t for t, _ in sends] == [0, 250, 500, 750]  # not 1000: the plan ends there


async def test_a_shard_runs_only_its_stripe_of_workers() -> None:
    plan = build_plan(warmup_s=0, levels=[(0.5, 7)], kind="closed")
    shard = dataclasses.replace(plan, stripe=(1, 3))  # global workers 1 and 4
    sends = await run_closed(shard, 0.25)
    assert [t for t, _ in sends] == [0, 0, 250, 250]
    assert max(n for _, n in sends) == 2
    whole = await run_closed(plan, 0.25)
    assert len(whole) == 14


async def test_arrivals_reached_at_the_window_end_are_late() -> None:
    from harborbench.engine.clock import Clock
    from harborbench.engine.drivers import drive_open_loop

    plan = build_plan(warmup_s=0, levels=[(1.0, 4.0)], kind="open")
    end = 1_000_000_000
    late: list[tuple[list[int], int]] = []
    sent: list[int] = []

    async def send(t: int) -> None:
        sent.append(t)

    # the clock reads exactly the window's end (a stall just ended): nothing more is sent
    await drive_open_loop(
        plan, send, 0, Clock(lambda: end), set(), window_end_ns=end, max_outstanding=10,
        on_dropped=lambda a: None, on_late=lambda a, now: late.append((a.tolist(), now)),
    )  # fmt: skip
    assert sent == []
    assert late == [([0, 250_000_000, 500_000_000, 750_000_000], end)]
