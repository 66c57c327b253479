"""One request through a fake client on a hand-driven clock: failure classification, the stream
reader's timings and token counts, and the closing of the window (no server, no sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from harborbench.engine.recorder import Recorder
from harborbench.engine.request import RequestSender, _describe, _estimate, _usage, classify_failure
from harborbench.harborai import errors as hx
from harborbench.harborai.types import Usage

S = 1_000_000_000
US = 1_000


class Clock:
    """A clock that moves only when told (ns)."""

    def __init__(self, now: int = 0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def reply(content: Any = "ok", usage: Any = None, choices: bool = True) -> Any:
    message = SimpleNamespace(content=content)
    return SimpleNamespace(
        choices=[SimpleNamespace(message=message)] if choices else [], usage=usage
    )


def usage(prompt: Any, completion: Any) -> Any:
    return SimpleNamespace(prompt_tokens=prompt, completion_tokens=completion)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (hx.InvalidResponseError("not json"), "invalid_response"),
        (hx.APIStatusError(503), "http_503"),
        (hx.APIStatusError(429), "http_429"),
        (hx.APITimeoutError("slow"), "timeout"),
        (TimeoutError(), "timeout"),
        (hx.APIConnectionError("refused"), "connection"),
        (hx.StreamError("broke"), "stream"),
        (hx.APIError("other"), "client_error"),
        (ValueError("bug"), "client_error"),
    ],
)
def test_failures_are_classified_by_kind(exc: BaseException, kind: str) -> None:
    assert classify_failure(exc) == kind


def test_failure_descriptions_name_the_type() -> None:
    assert _describe(ValueError("bad value")) == "ValueError: bad value"
    assert _describe(TimeoutError()) == "TimeoutError: TimeoutError"


def test_usage_needs_both_integer_counts() -> None:
    assert _usage(None) is None
    assert _usage(usage(7, 3)) == (7, 3)
    assert _usage(usage(None, 3)) is None
    assert _usage(usage(7, "3")) is None
    assert _usage(SimpleNamespace()) is None


def test_prompt_tokens_are_estimated_at_four_characters_a_token() -> None:
    parts = [{"type": "text", "text": "abcdefghijkl"}, {"type": "image_url"}]
    params = {"messages": [{"content": "abcdefgh"}, {"content": parts}, {"content": "abc"}]}
    assert _estimate(params) == 5  # 23 characters // 4 (the parts' text, not their number)
    assert _estimate({"messages": [{"content": None}, {"role": "user"}]}) == 0
    assert _estimate({}) == 0


def sender(create: Any, clock: Clock, *, stream: bool | None = None, open_loop: bool = True,
           params: Any = None) -> tuple[RequestSender, Recorder]:  # fmt: skip
    rec = Recorder(0, 1.0, 10.0, open_loop=open_loop)  # window [1 s, 11 s)
    p = params if params is not None else {"model": "m", "messages": [{"content": "abcdefgh"}]}
    return RequestSender(create, p, rec, clock, stream=stream), rec


async def test_a_success_is_timed_around_the_client_call() -> None:
    clock = Clock(2 * S)

    async def create(**params: Any) -> Any:
        assert params["model"] == "m"
        clock.now += 1500 * US
        return reply(usage=usage(9, 4))

    s, rec = sender(create, clock)
    await s.send(2 * S - 100 * US)  # intended 100 us before the send
    assert (rec.successes, rec.failures) == (1, 0)
    # HDR buckets: within 0.1%
    assert rec.service.max_ns == pytest.approx(1500 * US, rel=1e-3)
    assert rec.response.max_ns == pytest.approx(1600 * US, rel=1e-3)
    assert rec.sends.lag.max_ns == pytest.approx(100 * US, rel=1e-3)
    assert (rec.tokens.with_usage, rec.tokens.prompt_tokens, rec.tokens.completion_tokens) == (
        1, 9, 4,
    )  # fmt: skip
    assert rec.tokens.estimated_prompt_tokens == 2
    assert s.busy_ns == 1500 * US
    assert s.in_flight == 0


async def test_the_clients_own_usage_is_counted() -> None:
    clock = Clock(2 * S)

    async def create(**params: Any) -> Any:
        return reply(usage=Usage(prompt_tokens=9, completion_tokens=4, total_tokens=13))

    s, rec = sender(create, clock)
    await s.send(2 * S)
    assert (rec.tokens.with_usage, rec.tokens.prompt_tokens, rec.tokens.completion_tokens) == (
        1, 9, 4,
    )  # fmt: skip


async def test_a_closed_loop_worker_goes_on_while_next_ns_gives_a_time() -> None:
    clock = Clock(2 * S)
    sent: list[int] = []
    following = iter([3 * S, S // 2, None, 4 * S])  # the third request is a warmup one

    async def create(**params: Any) -> Any:
        sent.append(clock.now)
        clock.now += 1000 * US
        return reply(usage=usage(9, 4))

    def next_ns() -> int | None:
        intended = next(following)
        if intended is not None:
            clock.now = intended
        return intended

    s, rec = sender(create, clock, open_loop=False)
    await s.send(2 * S, next_ns)
    assert sent == [2 * S, 3 * S, S // 2]  # stopped at the first None
    assert (rec.successes, rec.warmup_requests) == (2, 1)
    assert s.busy_ns == 2000 * US
    assert s.in_flight == 0
    assert next(following) == 4 * S


async def test_an_answer_without_text_is_an_invalid_response() -> None:
    clock = Clock(2 * S)
    answers = iter([reply(content=None), reply(choices=False), reply(content=["x"])])

    async def create(**params: Any) -> Any:
        return next(answers)

    s, rec = sender(create, clock)
    for _ in range(3):
        await s.send(2 * S)
    assert rec.failures_by_kind == {"invalid_response": 3}
    assert rec.failure_examples == {"invalid_response": "no message content"}


async def test_an_exception_of_the_client_is_a_failure_never_raised() -> None:
    clock = Clock(2 * S)

    async def create(**params: Any) -> Any:
        clock.now += 5 * US
        raise hx.APIStatusError(503, body="busy")

    s, rec = sender(create, clock)
    await s.send(2 * S)
    assert rec.failures_by_kind == {"http_503": 1}
    assert rec.failure_examples == {"http_503": "APIStatusError: HTTP 503: busy"}
    assert s.busy_ns == 5 * US and s.in_flight == 0


async def test_a_cancelled_request_is_no_outcome() -> None:
    clock = Clock(2 * S)
    started = asyncio.Event()

    async def create(**params: Any) -> Any:
        started.set()
        await asyncio.Event().wait()

    s, rec = sender(create, clock)
    task = asyncio.create_task(s.send(2 * S))
    await started.wait()
    assert s.in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (rec.successes, rec.failures) == (0, 0)


async def test_fixed_params_and_the_stream_flag() -> None:
    def create(**params: Any) -> Any:
        raise AssertionError("not called")

    clock = Clock()
    assert RequestSender(create, {"stream": True}, Recorder(0, 0, 1, open_loop=True),
                         clock).stream is True  # fmt: skip
    assert RequestSender(create, {"model": "m"}, Recorder(0, 0, 1, open_loop=True),
                         clock).stream is False  # fmt: skip
    assert RequestSender(create, lambda: {"stream": True}, Recorder(0, 0, 1, open_loop=True),
                         clock).stream is False  # fmt: skip
    fixed = RequestSender(create, {"stream": True}, Recorder(0, 0, 1, open_loop=True), clock,
                          stream=False)  # fmt: skip
    assert fixed.stream is False
    assert fixed.next_params() == {"stream": True}


async def test_a_warmup_request_is_not_in_flight_and_not_busy() -> None:
    clock = Clock(0)
    release = asyncio.Event()

    async def create(**params: Any) -> Any:
        await release.wait()
        clock.now = 3 * S
        return reply()

    s, rec = sender(create, clock)
    task = asyncio.create_task(s.send(0))
    await asyncio.sleep(0)
    assert s.in_flight == 0  # not of the window
    release.set()
    await task
    assert rec.warmup_requests == 1
    assert s.busy_ns == 2 * S  # only its time inside the window, 1 s .. 3 s


async def test_closing_the_window_judges_pending_requests_by_the_timeout() -> None:
    clock = Clock(1 * S)
    gate = asyncio.Event()

    async def create(**params: Any) -> Any:
        await gate.wait()
        return reply()

    s, rec = sender(create, clock)
    clock.now = 0
    tasks = [asyncio.create_task(s.send(0))]  # a warmup request, never measured
    await asyncio.sleep(0)
    clock.now = 1 * S
    tasks.append(asyncio.create_task(s.send(1 * S)))  # sent at 1 s
    await asyncio.sleep(0)
    clock.now = 2 * S
    tasks.append(asyncio.create_task(s.send(2 * S)))  # sent at 2 s
    await asyncio.sleep(0)
    assert s.in_flight == 2
    # at 11 s: the first has waited 10 s (more than 9 s), the second exactly 9 s
    in_flight = s.close_window(11 * S, 9.0)
    assert in_flight == 1
    assert rec.failures_by_kind == {"timeout": 1}
    assert rec.failure_examples["timeout"] == (
        "no answer within the request timeout (9 s): still pending when the window closed"
    )
    assert s.busy_ns == 10 * S + 9 * S + 10 * S  # each one's time inside the window
    assert s.in_flight == 0 and rec.closed
    clock.now = 12 * S
    gate.set()
    await asyncio.gather(*tasks)
    assert (rec.successes, rec.failures) == (0, 1)  # answers after the close change nothing
    assert s.busy_ns == 29 * S


async def test_an_answer_after_the_window_end_stays_for_the_close() -> None:
    clock = Clock(10 * S)

    async def create(**params: Any) -> Any:
        clock.now = 12 * S
        return reply()

    s, rec = sender(create, clock)
    await s.send(10 * S)
    assert rec.late_completions == 1
    assert s.in_flight == 1 and s.busy_ns == 0
    assert s.close_window(11 * S, 100.0) == 1
    assert s.busy_ns == 1 * S


async def test_an_answer_exactly_at_the_window_end_is_done() -> None:
    clock = Clock(10 * S)

    async def create(**params: Any) -> Any:
        clock.now = 11 * S
        return reply()

    s, rec = sender(create, clock)
    await s.send(10 * S)
    assert rec.successes == 1
    assert s.in_flight == 0 and s.busy_ns == 1 * S


async def test_a_request_sent_after_the_close_is_not_tracked() -> None:
    clock = Clock(5 * S)

    async def create(**params: Any) -> Any:
        clock.now += S
        return reply()

    s, rec = sender(create, clock)
    assert s.close_window(5 * S, 1.0) == 0
    await s.send(5 * S)
    assert s.in_flight == 0 and s.busy_ns == 0
    assert rec.successes == 0 and rec.sends.lag.count == 0


def chunk(text: str | None, completion: int | None = None, prompt: int = 5) -> Any:
    choices = [] if text is None else [SimpleNamespace(delta=SimpleNamespace(content=text))]
    use = None if completion is None else usage(prompt, completion)
    return SimpleNamespace(choices=choices, usage=use)


class FakeStream:
    """An async iterator of chunks; each chunk arrives ``gaps[i]`` ns after the previous."""

    def __init__(self, clock: Clock, chunks: list[Any], gaps: list[int],
                 done_marker_missing: bool | None = None) -> None:  # fmt: skip
        self.clock, self.chunks, self.gaps = clock, chunks, gaps
        self.closed = False
        if done_marker_missing is not None:
            self.done_marker_missing = done_marker_missing

    async def _gen(self) -> AsyncIterator[Any]:
        for c, g in zip(self.chunks, self.gaps, strict=True):
            self.clock.now += g
            yield c

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._gen()

    async def aclose(self) -> None:
        self.closed = True


async def stream_run(chunks: list[Any], gaps: list[int], **kw: Any) -> tuple[Recorder, Any]:
    clock = Clock(2 * S)
    fake = FakeStream(clock, chunks, gaps, **kw)

    async def create(**params: Any) -> Any:
        assert params["stream"] is True
        return fake

    s, rec = sender(
        create,
        clock,
        stream=True,
        params={"model": "m", "stream": True, "messages": [{"content": "a" * 40}]},
    )
    await s.send(2 * S)
    return rec, fake


async def test_a_stream_with_cumulative_usage_per_chunk() -> None:
    # a role chunk, then chunks of 2, 3 and 1 tokens, then the usage-only chunk
    chunks = [chunk(""), chunk("ab", 2), chunk("cde", 5), chunk("f", 6), chunk(None, 6)]
    gaps = [1000 * US, 1000 * US, 1200 * US, 1800 * US, 10 * US]
    rec, fake = await stream_run(chunks, gaps)
    assert fake.closed
    st = rec.stream
    assert rec.successes == 1
    assert st.ttft.max_ns == pytest.approx(2000 * US, rel=1e-3)  # the first chunk with text
    assert st.icl.count == 2
    assert st.icl.min_ns == pytest.approx(1200 * US, rel=1e-3)
    assert st.icl.max_ns == pytest.approx(1800 * US, rel=1e-3)
    assert (st.output_tokens, st.output_chunks, st.per_chunk_tokens_known) == (6, 3, 1)
    assert st.tokens_from_usage == 1 and st.tokens_from_chunk_count == 0
    # inter-token: 3 tokens after 1.2 ms (0.4 ms each), 1 token after 1.8 ms
    assert st.itl.count == 4
    assert st.itl.min_ns == pytest.approx(400 * US, rel=1e-3)
    assert st.itl.max_ns == pytest.approx(1800 * US, rel=1e-3)
    assert st.itl.percentile_ns(75) == pytest.approx(400 * US, rel=1e-3)
    # tpot: (end - first token) / (tokens - first chunk's 2) = 3.01 ms / 4
    assert st.tpot.count == 1
    assert st.tpot.max_ns == pytest.approx(3010 * US / 4, rel=1e-3)
    assert rec.tokens.completion_tokens == 6 and rec.tokens.prompt_tokens == 5
    assert rec.tokens.estimated_prompt_tokens == 10


async def test_a_stream_without_usage_counts_chunks_as_tokens() -> None:
    chunks = [chunk("a"), chunk("b"), chunk("c")]
    rec, _ = await stream_run(chunks, [1000 * US, 500 * US, 500 * US])
    st = rec.stream
    assert (st.output_tokens, st.tokens_from_chunk_count, st.tokens_from_usage) == (3, 1, 0)
    assert st.per_chunk_tokens_known == 0 and st.itl.count == 0
    assert rec.tokens.without_usage == 1 and rec.tokens.with_usage == 0
    assert st.done_marker_missing == 0


async def test_a_stream_with_usage_only_at_the_end_has_no_per_chunk_counts() -> None:
    chunks = [chunk("ab"), chunk("cd"), chunk(None, 9)]
    rec, _ = await stream_run(chunks, [1000 * US, 500 * US, 10 * US])
    st = rec.stream
    assert (st.output_tokens, st.tokens_from_usage, st.per_chunk_tokens_known) == (9, 1, 0)
    assert st.itl.count == 0


async def test_usage_that_starts_after_the_first_chunk_gives_no_per_chunk_counts() -> None:
    chunks = [chunk("a"), chunk("bc", 3), chunk("d", 4)]
    rec, _ = await stream_run(chunks, [1000 * US, 500 * US, 500 * US])
    assert rec.successes == 1
    st = rec.stream
    assert (st.output_tokens, st.per_chunk_tokens_known, st.itl.count) == (4, 0, 0)


async def test_a_stream_without_aclose_is_read_to_its_end() -> None:
    clock = Clock(2 * S)

    class Bare:
        def __aiter__(self) -> AsyncIterator[Any]:
            return FakeStream(clock, [chunk("a"), chunk("b")], [1000 * US, 1000 * US])._gen()

    async def create(**params: Any) -> Any:
        return Bare()

    s, rec = sender(create, clock, stream=True)
    await s.send(2 * S)
    assert rec.successes == 1 and rec.stream.output_tokens == 2


async def test_a_stream_missing_the_done_marker_is_counted() -> None:
    rec, _ = await stream_run([chunk("a")], [1000 * US], done_marker_missing=True)
    assert rec.stream.done_marker_missing == 1 and rec.successes == 1


async def test_a_stream_without_text_is_a_stream_failure_and_is_closed() -> None:
    rec, fake = await stream_run([chunk(""), chunk(None, 0)], [1000 * US, 10 * US])
    assert fake.closed
    assert rec.failures_by_kind == {"stream": 1}
    assert rec.failure_examples == {
        "stream": "StreamError: the stream ended without any generated text"
    }
