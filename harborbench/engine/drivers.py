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

    With the backlog full, the driver waits for a request to end instead of waking at every
    arrival only to drop it; the arrivals intended until that request ended found the backlog
    full and are dropped as a block. Its work follows the completions, not the offered rate
    (at 10k ops/s offered and 2k completed: 8k wake-ups a second fewer, on the core the client
    needs), so completed throughput does not fall as the offered rate rises past capacity.
    """
    handled = 0  # arrivals handled since the last yield to the event loop
    now = clock.reader
    slot_freed = asyncio.Event()
    waiting = False  # the driver waits for a request to end (only while the backlog is full)
    freed_ns = 0  # when the request that ended the wait ended
    full_until_ns = 0  # every arrival intended before it found the backlog full

    def finished(task: asyncio.Task[None]) -> None:
        nonlocal waiting, freed_ns
        pending.discard(task)
        if waiting:
            waiting = False
            freed_ns = now()
            slot_freed.set()

    async def wake_at_window_end() -> None:
        while now() < window_end_ns:  # (a timer may fire a little before its time)
            await clock.sleep_until_ns(window_end_ns)
        slot_freed.set()  # no request ended before the window closed: stop waiting

    waker = asyncio.create_task(wake_at_window_end())
    try:
        for offsets in arrival_blocks_ns(plan):
            block = offsets + start_ns
            i, n = 0, len(block)
            while i < n:
                intended_ns = int(block[i])
                if intended_ns >= window_end_ns:
                    return
                if intended_ns < full_until_ns:
                    # intended while the driver waited for a slot: the backlog was full
                    j = int(np.searchsorted(block, full_until_ns, side="left"))
                    on_dropped(block[i:j])
                    handled += j - i
                    i = j
                    continue
                if intended_ns > now():
                    await clock.sleep_until_ns(intended_ns)
                    handled = 0
                elif handled >= YIELD_EVERY:
                    await asyncio.sleep(0)
                    handled = 0
                now_ns = now()
                if now_ns >= window_end_ns:
                    j = int(np.searchsorted(block, window_end_ns, side="left"))
                    on_late(block[i:j], now_ns)
                elif len(pending) >= max_outstanding:
                    j = max(int(np.searchsorted(block, now_ns, side="right")), i + 1)
                    on_dropped(block[i:j])  # every overdue arrival finds the backlog full
                    # Wait for a request to end instead of waking at each arrival to drop it.
                    waiting = True
                    slot_freed.clear()
                    await slot_freed.wait()
                    full_until_ns = window_end_ns if waiting else freed_ns
                    waiting = False
                    handled = 0
                    i = j
                    continue
                else:
                    j = i + 1
                    task: asyncio.Task[None] = asyncio.create_task(send(intended_ns))
                    pending.add(task)
                    task.add_done_callback(finished)
                handled += j - i
                i = j
    finally:
        waker.cancel()


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
