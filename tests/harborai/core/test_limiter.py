"""AsyncLimiter: FIFO hand-over, adjustable limit, cancellation without leaked slots."""

from __future__ import annotations

import asyncio

import pytest

from harborbench.harborai.core.limiter import AsyncLimiter


async def test_waiters_are_served_fifo_and_counted() -> None:
    limiter = AsyncLimiter(1)
    assert limiter.try_acquire()
    order: list[int] = []

    async def waiter(i: int) -> None:
        await limiter.acquire()
        order.append(i)

    tasks = [asyncio.create_task(waiter(i)) for i in range(3)]
    await asyncio.sleep(0)
    assert limiter.waiting == 3
    for _ in range(3):
        limiter.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    assert (limiter.in_use, limiter.waits, limiter.acquisitions) == (1, 3, 4)


async def test_raising_the_limit_admits_waiters_and_lowering_does_not_preempt() -> None:
    limiter = AsyncLimiter(1)
    assert limiter.try_acquire()
    tasks = [asyncio.create_task(limiter.acquire()) for _ in range(2)]
    await asyncio.sleep(0)
    limiter.set_limit(3)
    await asyncio.gather(*tasks)
    assert limiter.in_use == 3
    limiter.set_limit(1)
    assert limiter.in_use == 3  # holders keep their slots
    limiter.release()
    limiter.release()
    assert not limiter.try_acquire()  # 1 held, limit 1
    limiter.release()
    assert limiter.try_acquire()
    assert limiter.take_window() == 3
    assert limiter.peak_in_use == 1


async def test_cancelled_waiter_leaves_no_slot_behind() -> None:
    limiter = AsyncLimiter(1)
    assert limiter.try_acquire()
    task = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.waiting == 0
    limiter.release()
    assert limiter.in_use == 0


async def test_cancelled_after_hand_over_gives_the_slot_back() -> None:
    limiter = AsyncLimiter(1)
    assert limiter.try_acquire()
    task = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    limiter.release()  # hands the slot to the waiter...
    task.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.in_use == 0


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit must be >= 1"):
        AsyncLimiter(0)
