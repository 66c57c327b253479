"""Drive a load plan: open loop on an absolute schedule, closed loop with N workers.

Both drivers run until cancelled by the trial (at the end of the window or on a stop request).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from harborbench.engine.schedule import LoadPlan, arrival_offsets_ns
from harborbench.units import NS_PER_S

#: Open loop: at most this many requests pending at once; arrivals beyond it are counted as
#: ``unsent`` (the generator could not keep up), so an overloaded target cannot exhaust memory.
MAX_OUTSTANDING = 50_000


async def drive_open_loop(
    plan: LoadPlan,
    send: Callable[[int], Coroutine[Any, Any, None]],
    start_ns: int,
    clock: Callable[[], int],
    pending: set[asyncio.Task[None]],
    on_unsent: Callable[[int], None],
) -> None:
    """Send requests at the plan's intended times, never waiting for answers.

    Each arrival is a task started at ``start_ns + offset``; when the driver is behind, due
    arrivals are sent at once (their lateness is the send lag), and the schedule never drifts.

    Args:
        plan: an open-loop plan.
        send: coroutine function taking the intended send time (ns).
        start_ns: perf_counter_ns of the start of the run.
        clock: a nanosecond clock.
        pending: the set of request tasks still running (shared with the trial for cleanup).
        on_unsent: called with the intended send time (ns) of an arrival dropped because
            :data:`MAX_OUTSTANDING` was reached.
    """
    for offset_ns in arrival_offsets_ns(plan):
        intended_ns = start_ns + offset_ns
        delay_ns = intended_ns - clock()
        if delay_ns > 0:
            await asyncio.sleep(delay_ns / NS_PER_S)
        if len(pending) >= MAX_OUTSTANDING:
            on_unsent(intended_ns)
            continue
        task: asyncio.Task[None] = asyncio.create_task(send(intended_ns))
        pending.add(task)
        task.add_done_callback(pending.discard)


async def drive_closed_loop(
    plan: LoadPlan,
    send: Callable[[int], Coroutine[Any, Any, None]],
    start_ns: int,
    clock: Callable[[], int],
) -> None:
    """Run the plan's workers; global worker *j* sends only while *j* < the step's level.

    With ``plan.stripe = (i, n)`` only the global workers j with ``j mod n == i`` run here, so
    the n shards together run exactly the global level of every step.

    Each worker sends its next request as soon as its previous one ended (closed loop, so
    response time equals service time: coordinated omission is not corrected in this model).

    Args:
        plan: a closed-loop plan.
        send: coroutine function taking the intended send time (ns; here the actual one).
        start_ns: perf_counter_ns of the start of the run.
        clock: a nanosecond clock.
    """
    level = plan.steps[0].concurrency or 0
    changed = asyncio.Condition()
    end_ns = start_ns + round(plan.total_s * NS_PER_S)

    async def worker(i: int) -> None:
        # No request starts after the window: it could never be measured, and the target
        # would count requests that no figure of the run accounts for.
        while clock() < end_ns:
            if i >= level:
                async with changed:
                    await changed.wait_for(lambda: i < level)
            await send(clock())

    async def stepper() -> None:
        nonlocal level
        for step in plan.steps[1:]:
            delay_ns = start_ns + round(step.start_s * NS_PER_S) - clock()
            if delay_ns > 0:
                await asyncio.sleep(delay_ns / NS_PER_S)
            async with changed:
                level = step.concurrency or 0
                changed.notify_all()

    first, stride = plan.stripe
    async with asyncio.TaskGroup() as tg:
        tg.create_task(stepper())
        for j in range(first, plan.max_concurrency, stride):
            tg.create_task(worker(j))
