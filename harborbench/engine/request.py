"""One request through the client under test, timed around the client call (SPEC section 9).

The engine measures every mode with the same ruler: ``time.perf_counter_ns()`` just before the
call is handed to the client and just after the parsed response (or the last chunk of a stream)
is back. The client's own counters are never used for these figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from harborbench.engine.dataset import text_chars
from harborbench.engine.prompts import CHARS_PER_TOKEN
from harborbench.engine.recorder import Recorder, StreamSample
from harborbench.harborai import errors as hx
from harborbench.harborai.types import Usage
from harborbench.units import NS_PER_S


def classify_failure(exc: BaseException) -> str:
    """Name the kind of a failed request for the error breakdown.

    Returns:
        ``http_<status>`` for a non-2xx answer, ``timeout``, ``connection``, ``stream``,
        ``invalid_response`` (a 2xx answer that is not JSON, not a chat completion, or not an
        event stream for a stream request) or ``client_error`` (any other exception raised
        by the client).
    """
    if isinstance(exc, hx.InvalidResponseError):
        return "invalid_response"
    if isinstance(exc, hx.APIStatusError):
        return f"http_{exc.status_code}"
    if isinstance(exc, hx.APITimeoutError | asyncio.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, hx.APIConnectionError):
        return "connection"
    if isinstance(exc, hx.StreamError):
        return "stream"
    return "client_error"


class RequestSender:
    """Sends one chat-completion request and records its outcome.

    It also keeps the requests now in the client call, so that the window can be closed
    exactly (:meth:`close_window`) and the mean number of requests in the client call over the
    window (the achieved concurrency) is measured rather than inferred.

    Args:
        create: the client's ``chat.completions.acreate``.
        params: keyword arguments of every call (model, messages, max_tokens, stream, ...), or
            a function returning those of the next call
            (:meth:`harborbench.engine.prompts.RequestFactory.next_params`).
        recorder: where outcomes go.
        clock: a nanosecond clock (the trial clock's ``now_ns``).
        stream: whether the calls ask for a stream (default: ``params["stream"]`` of a dict).
    """

    def __init__(
        self,
        create: Callable[..., Any],
        params: dict[str, Any] | Callable[[], dict[str, Any]],
        recorder: Recorder,
        clock: Callable[[], int],
        *,
        stream: bool | None = None,
    ) -> None:
        self.create = create
        if callable(params):
            self.next_params = params
        else:
            fixed = params
            self.next_params = lambda: fixed
        if stream is None:
            stream = bool(params.get("stream")) if isinstance(params, dict) else False
        self.stream = stream
        self.recorder = recorder
        self.clock = clock
        self.busy_ns = 0  # time spent in the client call inside the window, summed over requests
        self.closed = False
        self._active: dict[int, tuple[int, int, bool]] = {}  # key: (intended, sent, measured)
        self._next_key = 0

    @property
    def in_flight(self) -> int:
        """Requests of the window now in the client call (sent, not yet answered)."""
        return sum(1 for _, _, measured in self._active.values() if measured)

    async def send(self, intended_ns: int, next_ns: Callable[[], int | None] | None = None) -> None:
        """Send one request whose intended send time was ``intended_ns`` and record it.

        Args:
            intended_ns: the intended send time (open loop: the schedule's; closed loop: the
                clock's reading when the worker was ready), ns.
            next_ns: a closed-loop worker's rule for going on: after each request it returns
                the intended send time of the next one (the clock's reading), or ``None`` to
                return (:func:`harborbench.engine.drivers.drive_closed_loop`). The worker's
                loop then runs here: one coroutine frame less on every request.
        """
        rec, clock, create, next_params = self.recorder, self.clock, self.create, self.next_params
        stream, active = self.stream, self._active
        while True:
            # before any await: arrivals take their requests in order
            params = next_params()
            sent_ns = clock()
            key = self._next_key
            self._next_key = key + 1
            if not self.closed:
                measured = rec.warmup_end_ns <= intended_ns < rec.window_end_ns  # rec.in_window
                if measured and rec.open_loop:
                    rec.sent(intended_ns, sent_ns)
                active[key] = (intended_ns, sent_ns, measured)
            end_ns: int | None = None
            try:
                if stream:
                    sample, usage = await self._stream(params)
                    end_ns = clock()
                    rec.success(intended_ns, sent_ns, end_ns, sample, usage, _estimate(params))
                else:
                    response = await create(**params)
                    end_ns = clock()
                    choices = response.choices
                    content = choices[0].message.content if choices else None
                    if type(content) is str or isinstance(content, str):
                        # _estimate(params) without its call when the prompt is one text message
                        messages = params.get("messages", ())
                        text = messages[0].get("content") if len(messages) == 1 else None
                        estimate = len(text) // CHARS_PER_TOKEN if type(text) is str else None
                        reported = response.usage
                        rec.success(
                            intended_ns, sent_ns, end_ns, None,
                            # _usage(reported) without its call for the client's own Usage,
                            # whose counts are ints (harborai.types.Usage.from_json makes them so)
                            (reported.prompt_tokens, reported.completion_tokens)
                            if type(reported) is Usage else _usage(reported),
                            _estimate(params) if estimate is None else estimate,
                        )  # fmt: skip
                    else:
                        rec.failure(
                            intended_ns, sent_ns, end_ns, "invalid_response", "no message content"
                        )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure of the call is counted, never raised
                end_ns = clock()
                rec.failure(intended_ns, sent_ns, end_ns, classify_failure(exc), _describe(exc))
            finally:
                # An answer after the window's end stays active: close_window judges it as it
                # was when the window closed (in flight, or a timeout).
                if not self.closed and end_ns is not None and end_ns <= rec.window_end_ns:
                    del active[key]
                    # rec.overlap_ns(sent_ns, end_ns) inlined (once a request): the end is inside
                    begin_ns = sent_ns if sent_ns > rec.warmup_end_ns else rec.warmup_end_ns
                    if end_ns > begin_ns:
                        self.busy_ns += end_ns - begin_ns
            if next_ns is None or (following_ns := next_ns()) is None:
                return
            intended_ns = following_ns

    def close_window(self, end_ns: int, timeout_s: float) -> int:
        """Close the window at ``end_ns``: judge every request still in the client call.

        A request of the window still pending at ``end_ns`` that has waited longer than the
        request timeout (``end_ns - sent > timeout_s``) never came back in time: it is a
        ``timeout`` failure, so error-rate and success-rate figures and gates see it. The others
        are ``in_flight_at_end``. Outcomes arriving afterwards change nothing.

        Args:
            end_ns: end of the window (or the moment a stopped trial ended), ns.
            timeout_s: the request timeout, seconds.

        Returns:
            The number of requests of the window in flight at its end (timeouts excluded).
        """
        rec = self.recorder
        self.closed = True
        timeout_ns = round(timeout_s * NS_PER_S)
        in_flight = 0
        for intended_ns, sent_ns, measured in self._active.values():
            self.busy_ns += rec.overlap_ns(sent_ns, end_ns)
            if not measured:
                continue
            if end_ns - sent_ns > timeout_ns:
                rec.failure(
                    intended_ns, sent_ns, end_ns, "timeout",
                    f"no answer within the request timeout ({timeout_s:g} s): still pending "
                    "when the window closed",
                )  # fmt: skip
            else:
                in_flight += 1
        self._active.clear()
        rec.closed = True  # an answer that comes now was in flight (or a timeout) at the end
        return in_flight

    async def _stream(self, params: dict[str, Any]) -> tuple[StreamSample, tuple[int, int] | None]:
        """Read one stream to its end, timing each chunk that carries text.

        Token counts: ``usage.completion_tokens`` of the last chunk that has a usage. When every
        content chunk carries a usage (cumulative, as vLLM's ``continuous_usage_stats``), each
        chunk's tokens are the difference from the usage before it.

        Returns:
            The sample, and ``(prompt_tokens, completion_tokens)`` of the last usage (or None).
        """
        clock = self.clock
        gaps: list[int] = []
        last_usage: Any = None
        stream = await self.create(**params)
        first_ns: int | None = None
        last_ns = 0
        chunks = 0
        usage_tokens: int | None = None
        chunk_tokens: list[int] | None = []
        try:
            async for chunk in stream:
                usage = chunk.usage
                choices = chunk.choices
                if choices and choices[0].delta.content:
                    now = clock()
                    if first_ns is None:
                        first_ns = now
                    else:
                        gaps.append(now - last_ns)
                    last_ns = now
                    chunks += 1
                    if chunk_tokens is not None:
                        if usage is None:
                            chunk_tokens = None
                        else:
                            chunk_tokens.append(usage.completion_tokens - (usage_tokens or 0))
                if usage is not None:
                    usage_tokens = usage.completion_tokens
                    last_usage = usage
        finally:  # also when cancelled at the end of the window: release the connection
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        if first_ns is None:
            raise hx.StreamError("the stream ended without any generated text")
        sample = StreamSample(
            first_token_ns=first_ns,
            chunk_gaps_ns=gaps,
            content_chunks=chunks,
            usage_tokens=usage_tokens,
            chunk_tokens=chunk_tokens or None,
            done_marker_missing=bool(getattr(stream, "done_marker_missing", False)),
        )
        return sample, _usage(last_usage)


def _usage(usage: Any) -> tuple[int, int] | None:
    """``(prompt_tokens, completion_tokens)`` of a response's usage, or ``None`` if absent."""
    if usage is None:
        return None
    try:
        prompt, completion = usage.prompt_tokens, usage.completion_tokens
    except AttributeError:
        return None
    if type(prompt) is int and type(completion) is int:  # the client's usage: no calls
        return prompt, completion
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return prompt, completion


def _estimate(params: dict[str, Any]) -> int:
    """The client's estimate of a request's prompt tokens: characters of text / 4."""
    chars = 0
    for message in params.get("messages", ()):
        content = message.get("content")  # a str in most requests: counted without a call
        chars += len(content) if type(content) is str else text_chars(content)
    return chars // CHARS_PER_TOKEN


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
