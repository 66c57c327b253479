"""Split rules: the stripes of N shards are exactly the global plan (SCALEOUT.md, "Split rules")."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from harborbench.engine.assemble import configured_level
from harborbench.engine.clock import Clock
from harborbench.engine.drivers import drive_closed_loop
from harborbench.engine.schedule import LoadPlan, arrival_offsets_ns, build_plan
from tests.engine.virtual import closed_loop_send

STAGES = [(1.0, 50.0), (2.0, 200.0), (1.5, 10.0)]
PLANS = {
    "constant": build_plan(warmup_s=1.0, levels=[(3.0, 97.0)], kind="open"),
    "poisson": build_plan(warmup_s=0.5, levels=[(4.0, 150.0)], kind="open", arrival="poisson"),
    "stages": build_plan(warmup_s=1.0, levels=STAGES, kind="open", arrival="poisson", seed=3),
}


def stripe(plan: LoadPlan, i: int, n: int) -> LoadPlan:
    return dataclasses.replace(plan, stripe=(i, n))


@pytest.mark.parametrize("name", sorted(PLANS))
@pytest.mark.parametrize("n", range(1, 8))
def test_union_of_stripes_is_the_global_schedule(name: str, n: int) -> None:
    plan = PLANS[name]
    whole = list(arrival_offsets_ns(plan))
    parts = [list(arrival_offsets_ns(stripe(plan, i, n))) for i in range(n)]
    assert sorted(x for p in parts for x in p) == whole
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    for i, part in enumerate(parts):  # shard i holds global arrivals k with k mod n == i
        assert part == whole[i::n]


def test_open_loop_share_of_the_configured_rate() -> None:
    plan = PLANS["stages"]
    assert sum(configured_level(stripe(plan, i, 3)) for i in range(3)) == pytest.approx(
        configured_level(plan)
    )
    assert configured_level(stripe(plan, 0, 4)) == pytest.approx(configured_level(plan) / 4)


@pytest.mark.parametrize("n", range(1, 8))
def test_closed_loop_shares_sum_to_the_level_and_never_decrease(n: int) -> None:
    for level in range(n, 40):
        shares = [stripe(build_plan(warmup_s=0, levels=[(1, level)], kind="closed"), i, n)
                  .share(level) for i in range(n)]  # fmt: skip
        assert sum(shares) == level
        assert shares == [float(-(-(level - i) // n)) for i in range(n)]  # ceil((L - i) / N)
        higher = [stripe(build_plan(warmup_s=0, levels=[(1, level + 1)], kind="closed"), i, n)
                  .share(level + 1) for i in range(n)]  # fmt: skip
        assert all(b >= a for a, b in zip(shares, higher, strict=True))


async def test_closed_loop_driver_runs_only_its_workers() -> None:
    """Shard 1 of 3 at concurrency 8 runs global workers 1, 4 and 7, then 1 and 4 at 5."""
    plan = stripe(build_plan(warmup_s=0, levels=[(1.0, 8), (1.0, 5)], kind="closed"), 1, 3)
    now = [0]
    sent: list[int] = []
    gate = asyncio.Event()

    async def send(_intended: int) -> None:
        sent.append(len(sent))
        await gate.wait()  # every worker holds one request until the level changes

    driver = drive_closed_loop(plan, closed_loop_send(send), 0, Clock(lambda: now[0]))
    task = asyncio.create_task(driver)
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(sent) == 3  # workers 1, 4, 7
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
