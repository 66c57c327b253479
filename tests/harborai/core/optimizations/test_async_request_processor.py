"""AsyncRequestProcessor with a fake send path: order, coalescing, batching, retries, budget,
token bucket, shutdown."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from harborbench.harborai.config import RateLimitConfig, RequestProcessorConfig, RetryConfig
from harborbench.harborai.core.optimizations.async_request_processor import (
    AsyncRequestProcessor,
    TokenBucket,
    is_retryable,
)
from harborbench.harborai.core.provider import ProviderPlugin, RequestSpec
from harborbench.harborai.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ClientClosedError,
    StreamError,
)

PLUGIN = ProviderPlugin("p", "http://h:1/v1/chat/completions", "http://h:1", {}, {})


def spec(body: bytes, stream: bool = False) -> RequestSpec:
    return RequestSpec(PLUGIN, body, stream)


def config(**kw: Any) -> RequestProcessorConfig:
    retry = kw.pop(
        "retry", RetryConfig(max_retries=2, base_delay_s=0.001, max_delay_s=0.01, budget_ratio=0.2)
    )
    base: dict[str, Any] = {
        "workers": 1,
        "max_batch_size": 1,
        "batch_window_s": 0.0,
        "coalesce_identical": False,
        "rate_limit": None,
        "retry": retry,
    }
    base.update(kw)
    return RequestProcessorConfig(**base)


Send = Callable[[RequestSpec, float | None], Awaitable[Any]]


def recorder() -> tuple[list[bytes], Send]:
    seen: list[bytes] = []

    async def execute(s: RequestSpec, deadline: float | None = None) -> bytes:
        seen.append(s.body)
        await asyncio.sleep(0)
        return s.body.upper()

    return seen, execute


async def test_priority_then_fifo() -> None:
    seen, execute = recorder()
    proc = AsyncRequestProcessor(config(), execute)
    proc.start()
    futures = [
        proc.submit(spec(b"low1"), priority=5),
        proc.submit(spec(b"high1"), priority=0),
        proc.submit(spec(b"low2"), priority=5),
        proc.submit(spec(b"high2"), priority=0),
    ]
    assert await asyncio.gather(*futures) == [b"LOW1", b"HIGH1", b"LOW2", b"HIGH2"]
    assert seen == [b"high1", b"high2", b"low1", b"low2"]
    await proc.stop()


async def test_coalescing_sends_identical_requests_once() -> None:
    seen, execute = recorder()
    proc = AsyncRequestProcessor(config(coalesce_identical=True), execute)
    proc.start()
    futures = [proc.submit(spec(b"same")) for _ in range(5)] + [proc.submit(spec(b"other"))]
    results = await asyncio.gather(*futures)
    assert results == [b"SAME"] * 5 + [b"OTHER"]
    assert seen == [b"same", b"other"]
    assert proc.statistics()["coalesced"] == 4
    again = await proc.submit(spec(b"same"))  # finished requests are not reused
    assert again == b"SAME" and seen == [b"same", b"other", b"same"]
    await proc.stop()


async def test_coalescing_is_off_by_default_and_never_for_streams() -> None:
    seen, execute = recorder()
    proc = AsyncRequestProcessor(config(), execute)
    proc.start()
    await asyncio.gather(*(proc.submit(spec(b"same")) for _ in range(3)))
    await proc.stop()
    seen2, execute2 = recorder()
    proc2 = AsyncRequestProcessor(config(coalesce_identical=True), execute2)
    proc2.start()
    await asyncio.gather(*(proc2.submit(spec(b"s", stream=True)) for _ in range(3)))
    await proc2.stop()
    assert (len(seen), len(seen2)) == (3, 3)


async def test_micro_batching_dispatches_queued_requests_together() -> None:
    running = 0
    peak = 0

    async def execute(s: RequestSpec, deadline: float | None = None) -> bytes:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return s.body

    proc = AsyncRequestProcessor(config(max_batch_size=4, batch_window_s=0.01), execute)
    proc.start()
    results = await asyncio.gather(*(proc.submit(spec(bytes([65 + i]))) for i in range(8)))
    await proc.stop()
    assert results == [bytes([65 + i]) for i in range(8)]
    assert peak == 4  # one worker, batches of four in parallel
    assert proc.statistics()["batches"] == 2


def failing(errors: list[Exception]) -> tuple[list[int], Send]:
    calls = [0]

    async def execute(s: RequestSpec, deadline: float | None = None) -> str:
        calls[0] += 1
        if errors:
            raise errors.pop(0)
        return "ok"

    return calls, execute


@pytest.mark.parametrize(
    "error",
    [
        APIStatusError(429),
        APIStatusError(502),
        APIStatusError(503),
        APIStatusError(504),
        APIConnectionError("reset"),
        APITimeoutError("slow"),
    ],
)
async def test_retryable_failures_are_retried(error: Exception) -> None:
    assert is_retryable(error)
    calls, execute = failing([error, error])
    proc = AsyncRequestProcessor(config(), execute, rng=random.Random(1))
    proc.start()
    assert await proc.submit(spec(b"x")) == "ok"
    await proc.stop()
    assert calls == [3]
    assert proc.statistics()["retries"] == 2


@pytest.mark.parametrize(
    "error", [APIStatusError(400), APIStatusError(401), APIStatusError(500), StreamError("x")]
)
async def test_other_failures_are_not_retried(error: Exception) -> None:
    assert not is_retryable(error)
    calls, execute = failing([error])
    proc = AsyncRequestProcessor(config(), execute)
    proc.start()
    with pytest.raises(type(error)):
        await proc.submit(spec(b"x"))
    await proc.stop()
    assert calls == [1]
    assert proc.statistics()["retries"] == 0


async def test_max_retries_then_the_last_error() -> None:
    errors: list[Exception] = [APIStatusError(503, body=f"n{i}") for i in range(5)]
    calls, execute = failing(errors)
    proc = AsyncRequestProcessor(config(), execute)
    proc.start()
    with pytest.raises(APIStatusError, match="n2"):
        await proc.submit(spec(b"x"))
    await proc.stop()
    assert calls == [3]


async def test_retry_budget_bounds_retries() -> None:
    # 30 requests failing once each: the reserve of 10 tokens plus 30 * 0.1 deposits (capped
    # at 10 in the bank) allows fewer retries than failures.
    errors: list[Exception] = [APIStatusError(503) for _ in range(30)]
    _calls, execute = failing(errors)
    retry = RetryConfig(max_retries=1, base_delay_s=0.0, max_delay_s=0.0, budget_ratio=0.1)
    proc = AsyncRequestProcessor(config(retry=retry), execute)
    proc.start()
    futures = [proc.submit(spec(bytes([i]))) for i in range(30)]
    results = await asyncio.gather(*futures, return_exceptions=True)
    await proc.stop()
    stats = proc.statistics()
    assert stats["retries"] == 10
    assert stats["retries_denied"] == 20
    assert sum(r == "ok" for r in results) == 10


async def test_backoff_is_full_jitter_within_the_exponential_cap() -> None:
    proc = AsyncRequestProcessor(
        config(
            retry=RetryConfig(max_retries=5, base_delay_s=0.1, max_delay_s=0.25, budget_ratio=0.2)
        ),
        failing([])[1],
        rng=random.Random(7),
    )
    delays = [proc._retry_delay(attempt, APIStatusError(503), None) for attempt in range(4)]
    caps = [0.1, 0.2, 0.25, 0.25]
    assert all(d is not None and 0.0 <= d <= cap for d, cap in zip(delays, caps, strict=True))
    assert len(set(delays)) == 4  # jittered, not fixed


async def test_retry_after_is_a_floor_plus_jitter_and_honoured_up_to_the_deadline() -> None:
    proc = AsyncRequestProcessor(
        config(
            retry=RetryConfig(max_retries=5, base_delay_s=0.1, max_delay_s=0.25, budget_ratio=0.2)
        ),
        failing([])[1],
        rng=random.Random(7),
    )
    now = asyncio.get_running_loop().time()
    after = [proc._retry_delay(0, APIStatusError(429, retry_after_s=0.2), None) for _ in range(50)]
    assert all(d is not None and 0.2 <= d <= 0.3 for d in after)  # never earlier than asked
    assert len(set(after)) == 50  # a burst of 429s does not come back in one instant
    # Longer than max_delay_s (0.25 s) but inside the deadline: honoured (before: no retry).
    long = proc._retry_delay(0, APIStatusError(429, retry_after_s=9.0), now + 60.0)
    assert long is not None and 9.0 <= long <= 9.1
    # Jitter never pushes the retry past the deadline; a delay reaching it means no retry.
    tight = proc._retry_delay(0, APIStatusError(429, retry_after_s=9.0), now + 9.05)
    assert tight is not None and 9.0 <= tight < 9.05
    assert proc._retry_delay(0, APIStatusError(429, retry_after_s=9.0), now + 8.9) is None
    assert proc._retry_delay(0, APIStatusError(503), now - 1.0) is None


def test_token_bucket_reserves_exactly() -> None:
    now = [100.0]
    bucket = TokenBucket(RateLimitConfig(rate_per_s=10.0, burst=2), clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]  # the burst
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)
    now[0] += 1.0  # refills, but never above the burst
    assert [bucket.reserve() for _ in range(2)] == [0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.1)


async def test_rate_limited_processor_counts_waits() -> None:
    _, execute = recorder()
    proc = AsyncRequestProcessor(
        config(workers=4, rate_limit=RateLimitConfig(rate_per_s=200.0, burst=2)), execute
    )
    proc.start()
    await asyncio.gather(*(proc.submit(spec(b"r")) for _ in range(6)))
    await proc.stop()
    assert proc.statistics()["rate_limit_waits"] == 4


async def test_stop_fails_queued_and_delayed_requests_and_leaves_no_task() -> None:
    gate = asyncio.Event()

    async def execute(s: RequestSpec, deadline: float | None = None) -> str:
        if s.body == b"retry":
            raise APIStatusError(429, retry_after_s=5.0)
        await gate.wait()
        return "late"

    proc = AsyncRequestProcessor(
        config(
            workers=1,
            retry=RetryConfig(max_retries=2, base_delay_s=0.1, max_delay_s=10.0, budget_ratio=0.2),
        ),
        execute,
    )
    proc.start()
    delayed = proc.submit(spec(b"retry"), priority=-1)
    await asyncio.sleep(0.01)
    in_flight = proc.submit(spec(b"a"))
    queued = proc.submit(spec(b"b"))
    await asyncio.sleep(0.01)
    await proc.stop()
    for fut in (delayed, in_flight, queued):
        with pytest.raises(ClientClosedError):
            await fut
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    with pytest.raises(ClientClosedError):
        proc.submit(spec(b"c"))


async def test_a_dead_worker_is_replaced() -> None:
    _, execute = recorder()
    proc = AsyncRequestProcessor(config(workers=2), execute)
    proc.start()
    victim = next(iter(proc._workers))
    victim.cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert proc.healthy and proc.statistics()["worker_restarts"] == 1
    assert await proc.submit(spec(b"x")) == b"X"
    await proc.stop()


async def test_abandoned_caller_is_skipped() -> None:
    seen, execute = recorder()
    proc = AsyncRequestProcessor(config(), execute)
    proc.start()
    fut = proc.submit(spec(b"gone"))
    fut.cancel()
    assert await proc.submit(spec(b"kept")) == b"KEPT"
    await proc.stop()
    assert seen == [b"kept"]
    assert proc.statistics()["abandoned"] == 1


async def test_direct_path_skips_the_queue_but_counts_and_limits() -> None:
    running = 0
    peak = 0

    async def execute(s: RequestSpec, deadline: float | None = None) -> bytes:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        return s.body

    proc = AsyncRequestProcessor(config(workers=3), execute)
    proc.start()
    assert proc.direct_path
    results = await asyncio.gather(*(proc.call(spec(bytes([65 + i]))) for i in range(10)))
    stats = proc.statistics()
    await proc.stop()
    assert results == [bytes([65 + i]) for i in range(10)]
    assert peak == 3  # still at most `workers` at once
    assert (stats["submitted"], stats["completed"], stats["direct"]) == (10, 10, 3)
    assert stats["queue_depth"] == 0


@pytest.mark.parametrize(
    "option",
    [
        {"max_batch_size": 2},
        {"coalesce_identical": True},
        {"rate_limit": RateLimitConfig(rate_per_s=1000.0, burst=10)},
    ],
)
async def test_queue_features_turn_the_direct_path_off(option: dict[str, Any]) -> None:
    _, execute = recorder()
    proc = AsyncRequestProcessor(config(**option), execute)
    proc.start()
    assert not proc.direct_path
    assert await proc.call(spec(b"x")) == b"X"
    await proc.stop()
    assert proc.statistics()["direct"] == 0


async def test_waiting_requests_keep_their_priority_order_behind_a_direct_one() -> None:
    gate = asyncio.Event()
    seen: list[bytes] = []

    async def execute(s: RequestSpec, deadline: float | None = None) -> bytes:
        seen.append(s.body)
        if s.body == b"first":
            await gate.wait()
        return s.body

    proc = AsyncRequestProcessor(config(workers=1), execute)
    proc.start()
    first = asyncio.ensure_future(proc.call(spec(b"first")))
    await asyncio.sleep(0)
    low = asyncio.ensure_future(proc.call(spec(b"low"), priority=5))
    high = asyncio.ensure_future(proc.call(spec(b"high"), priority=0))
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(first, low, high) == [b"first", b"low", b"high"]
    await proc.stop()
    assert seen == [b"first", b"high", b"low"]
    assert proc.statistics()["direct"] == 1


async def test_direct_path_retries_with_the_same_rule() -> None:
    calls, execute = failing([APIStatusError(503), APIConnectionError("x", maybe_executed=True)])
    proc = AsyncRequestProcessor(config(), execute, rng=random.Random(1))
    proc.start()
    assert await proc.call(spec(b"x")) == "ok"
    stats = proc.statistics()
    await proc.stop()
    assert calls == [3]
    assert (stats["retries"], stats["retries_after_reset"], stats["direct"]) == (2, 1, 1)


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "queued"])
async def test_retries_after_a_reset_are_counted_apart(direct: bool) -> None:
    refused = APIConnectionError("refused")  # never reached the server
    reset = APIConnectionError("reset", maybe_executed=True)
    timeout = APITimeoutError("slow")
    calls, execute = failing([refused, reset, timeout])
    retry = RetryConfig(max_retries=3, base_delay_s=0.001, max_delay_s=0.001, budget_ratio=0.2)
    proc = AsyncRequestProcessor(config(retry=retry), execute, rng=random.Random(1))
    proc.start()
    result = await (proc.call(spec(b"x")) if direct else proc.submit(spec(b"x")))
    stats = proc.statistics()
    await proc.stop()
    assert result == "ok" and calls == [4]
    assert (stats["retries"], stats["retries_after_reset"], stats["retries_after_timeout"]) == (
        3,
        1,
        1,
    )


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "queued"])
async def test_no_retry_once_the_delay_would_pass_the_deadline(direct: bool) -> None:
    calls, execute = failing([APIStatusError(429, retry_after_s=5.0)])
    proc = AsyncRequestProcessor(config(), execute)
    proc.start()
    deadline = asyncio.get_running_loop().time() + 1.0
    with pytest.raises(APIStatusError):
        if direct:
            await proc.call(spec(b"x"), deadline=deadline)
        else:
            await proc.submit(spec(b"x"), deadline=deadline)
    await proc.stop()
    assert calls == [1] and proc.statistics()["retries"] == 0


async def test_a_queued_request_ends_at_its_deadline() -> None:
    gate = asyncio.Event()

    async def execute(s: RequestSpec, deadline: float | None = None) -> str:
        await gate.wait()
        return "late"

    proc = AsyncRequestProcessor(config(workers=1), execute)
    proc.start()
    loop = asyncio.get_running_loop()
    blocker = asyncio.ensure_future(proc.call(spec(b"a")))
    await asyncio.sleep(0)
    with pytest.raises(APITimeoutError, match="queue"):
        await proc.call(spec(b"b"), deadline=loop.time() + 0.05)
    gate.set()
    assert await blocker == "late"
    await proc.stop()
    assert proc.statistics()["abandoned"] == 1


async def test_a_cancelled_direct_call_is_counted_as_abandoned() -> None:
    gate = asyncio.Event()

    async def execute(s: RequestSpec, deadline: float | None = None) -> str:
        await gate.wait()
        return "late"

    proc = AsyncRequestProcessor(config(workers=1), execute)
    proc.start()
    task = asyncio.ensure_future(proc.call(spec(b"a")))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = proc.statistics()
    assert (stats["submitted"], stats["abandoned"], stats["completed"], stats["failed"]) == (
        1,
        1,
        0,
        0,
    )
    gate.set()
    assert await asyncio.wait_for(proc.call(spec(b"b")), 5) == "late"  # the slot came back
    await proc.stop()
