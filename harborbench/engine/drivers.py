"""Drive a load plan: open loop on an absolute schedule, closed loop with N workers.

The closed-loop driver runs until cancelled by the trial (at the end of the window or on a stop
request); the open-loop driver ends by itself once every arrival intended inside the window has
been sent, dropped or counted as late.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import numpy.typing as npt

from harborbench.engine.clock import Clock
from harborbench.engine.schedule import LoadPlan, arrival_blocks_ns
from harborbench.units import NS_PER_S

#: The open-loop driver yields to the event loop at least once per this many arrivals handled
#: without sleeping, whatever the rate: a generator that is behind still lets responses, the
#: ticker and Ctrl-C (SIGINT, SIGTERM) run.
YIELD_EVERY = 64

IntArray = npt.NDArray[np.int64]


async def drive_open_loop(
    plan: LoadPlan,
    send: Callable[[int], Coroutine[Any, Any, None]],
    start_ns: int,
    clock: Clock,
    pending: set[asyncio.Task[None]],
    *,
    window_end_ns: int,
    max_outstanding: int,
    on_dropped: Callable[[IntArray], None],
    on_late: Callable[[IntArray, int], None],
) -> None:
    """Send requests at the plan's intended times, never waiting for answers.

    Each arrival is a task started at ``start_ns + offset``; when the driver is behind, due
    arrivals are sent at once (their lateness is the send lag), and the schedule never drifts.
    Every arrival intended before ``window_end_ns`` ends in exactly one of three places, so that
    planned = sent + dropped + late:

    - **sent**: a request task is started (before the window closed);
    - **dropped**: ``max_outstanding`` requests were pending, so it is not sent (k6's
      ``dropped_iterations``): the backlog stays bounded and the client keeps working at its
      capacity instead of drowning in queued tasks;
    - **late**: the driver reached it only after the window had closed (it fell behind, e.g.
      during an event-loop stall); it is not sent.

    Args:
        plan: an open-loop plan.
        send: coroutine function taking the intended send time (ns).
        start_ns: the clock's reading at the start of the run (warmup included), ns.
        clock: the trial's clock.
        pending: the set of request tasks still running (shared with the trial for cleanup).
        window_end_ns: end of the measurement window, ns; the driver returns once every arrival
            before it is handled.
        max_outstanding: the most requests pending at once (>= 1).
        on_dropped: called with the intended times (int64 array, ns) of arrivals dropped because
            ``max_outstanding`` requests were pending.
        on_late: called with the intended times (int64 array, ns) of arrivals reached only after
            the window closed, and the clock's reading then (ns).
    """
    handled = 0  # arrivals handled since the last yield to the event loop
    for offsets in arrival_blocks_ns(plan):
        block = offsets + start_ns
        i, n = 0, len(block)
        while i < n:
            intended_ns = int(block[i])
            if intended_ns >= window_end_ns:
                return
            if intended_ns > clock.now_ns():
                await clock.sleep_until_ns(intended_ns)
                handled = 0
            elif handled >= YIELD_EVERY:
                await asyncio.sleep(0)
                handled = 0
            now_ns = clock.now_ns()
            if now_ns >= window_end_ns:
                j = int(np.searchsorted(block, window_end_ns, side="left"))
                on_late(block[i:j], now_ns)
            elif len(pending) >= max_outstanding:
                j = max(int(np.searchsorted(block, now_ns, side="right")), i + 1)
                on_dropped(block[i:j])  # every overdue arrival finds the backlog full
            else:
                j = i + 1
                task: asyncio.Task[None] = asyncio.create_task(send(intended_ns))
                pending.add(task)
                task.add_done_callback(pending.discard)
            handled += j - i
            i = j


async def drive_closed_loop(
    plan: LoadPlan,
    send: Callable[[int, Callable[[], int | None]], Coroutine[Any, Any, None]],
    start_ns: int,
    clock: Clock,
) -> None:
    """Run the plan's workers; global worker *j* sends only while *j* < the step's level.

    With ``plan.stripe = (i, n)`` only the global workers j with ``j mod n == i`` run here, so
    the n shards together run exactly the global level of every step.

    Each worker sends its next request as soon as its previous one ended (closed loop, so
    response time equals service time: coordinated omission is not corrected in this model).

    Args:
        plan: a closed-loop plan.
        send: coroutine function ``send(intended_ns, next_ns)`` (as
            :meth:`harborbench.engine.request.RequestSender.send`): sends a request at
            ``intended_ns`` (here the actual send time), then goes on sending while
            ``next_ns()`` returns the next one's (the clock's reading) and returns on ``None``.
        start_ns: the clock's reading at the start of the run, ns.
        clock: the trial's clock.
    """
    level = plan.steps[0].concurrency or 0
    changed = asyncio.Condition()
    end_ns = start_ns + round(plan.total_s * NS_PER_S)
    now = clock.reader

    async def worker(i: int) -> None:
        def next_ns() -> int | None:
            """The clock's reading if worker i is to send now, else None (the rule's one place)."""
            now_ns = now()
            # No request starts after the window: it could never be measured, and the target
            # would count requests that no figure of the run accounts for.
            return now_ns if now_ns < end_ns and i < level else None

        while True:
            if (now_ns := next_ns()) is not None:
                await send(now_ns, next_ns)  # sends on while next_ns() allows
            elif i < level:
                return  # the window is over
            else:
                async with changed:
                    await changed.wait_for(lambda: i < level)

    async def stepper() -> None:
        nonlocal level
        for step in plan.steps[1:]:
            await clock.sleep_until_ns(start_ns + round(step.start_s * NS_PER_S))
            async with changed:
                level = step.concurrency or 0
                changed.notify_all()

    first, stride = plan.stripe
    async with asyncio.TaskGroup() as tg:
        tg.create_task(stepper())
        for j in range(first, plan.max_concurrency, stride):
            tg.create_task(worker(j))
