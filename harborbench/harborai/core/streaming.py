"""Turn the bytes of a chat-completions SSE stream into chunk objects (both modes use this).

Framing is the SSE decoder's job (``core/sse.py``); this layer gives the events their
chat-completions meaning, accepting what the official ``openai`` SDK accepts:

* each ``data:`` event is one JSON chunk;
* ``data: [DONE]`` ends the stream, also with surrounding whitespace (the SDK tests
  ``data.startswith("[DONE]")``);
* an ``event: error``, or a JSON object with a non-empty ``"error"`` member, is a failure;
* a stream that ends cleanly (no partial event buffered) after a chunk with a ``finish_reason``
  but without ``[DONE]`` is complete: the SDK ends its iteration there too. The missing marker
  is recorded (:attr:`ChunkDecoder.done_marker_missing`) so that a benchmark can report it;
* a stream that ends before any ``finish_reason`` and without ``[DONE]`` is broken: the caller
  gets a StreamError, never a silently truncated answer.

:func:`is_event_stream` checks the answer's ``Content-Type`` before any of this: a server
that answers a stream request with a JSON body (it ignored ``"stream": true``) or with another
type is named as such (:class:`~harborbench.harborai.errors.InvalidResponseError`).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import orjson

from harborbench.harborai.errors import InvalidResponseError, StreamError
from harborbench.harborai.types import ChatCompletionChunk

from .sse import SSEDecoder, SSEEvent

__all__ = ["ChunkDecoder", "is_event_stream", "not_an_event_stream"]

EVENT_STREAM = "text/event-stream"


def is_event_stream(content_type: str | None) -> bool:
    """Whether a stream request's 2xx answer may be decoded as Server-Sent Events.

    Args:
        content_type: the answer's ``Content-Type`` header (parameters such as ``charset``
            allowed), or None when absent, which is accepted (the body is decoded as events).
    """
    return content_type is None or (content_type.partition(";")[0].strip().lower() == EVENT_STREAM)


def not_an_event_stream(content_type: str, body: bytes) -> InvalidResponseError:
    """The error for a stream request answered with ``content_type`` (not an event stream).

    Args:
        content_type: the answer's ``Content-Type`` header.
        body: the start of the body, quoted in the message (may be empty).

    Returns:
        InvalidResponseError saying that a JSON body came back (the server ignored
        ``"stream": true``) or which content type did.
    """
    mime = content_type.partition(";")[0].strip().lower()
    start = body[:200].decode("utf-8", "replace")
    if mime.endswith("json"):
        return InvalidResponseError(
            f"a stream request was answered with a JSON body (Content-Type {mime}), not an "
            f'event stream; does the server support "stream": true? Body: {start!r}'
        )
    return InvalidResponseError(
        f"a stream request was answered with Content-Type {mime or '(empty)'!r}, not "
        f"{EVENT_STREAM}; body: {start!r}"
    )


class ChunkDecoder:
    """Incremental decoder from stream bytes to :class:`ChatCompletionChunk` objects.

    Args:
        intern: str -> str applied to repeated strings of each chunk (a StringPool or identity).

    Attributes:
        done: bool, the stream is complete (``[DONE]`` seen, or a clean end after a
            ``finish_reason``); no chunk is returned after it.
        finished: bool, a chunk with a ``finish_reason`` has been seen.
        done_marker_missing: bool, the stream ended cleanly after a ``finish_reason`` without
            ``data: [DONE]`` (counted as complete).
        error: the StreamError that broke the stream, or None.
    """

    __slots__ = ("_intern", "_sse", "done", "done_marker_missing", "error", "finished")

    def __init__(self, intern: Callable[[str], str]) -> None:
        self._sse = SSEDecoder()
        self._intern = intern
        self.done = False
        self.finished = False
        self.done_marker_missing = False
        self.error: StreamError | None = None

    def feed(self, data: bytes) -> list[ChatCompletionChunk]:
        """Decode the chunks completed by ``data`` (bytes of any size, split anywhere).

        The chunks that came before a failure are returned first; the failure is then kept in
        :attr:`error` and raised by the next call.

        Raises:
            StreamError: an earlier failure (error event, or an event that is not a chunk).
        """
        if self.error is not None:
            raise self.error
        return self._convert(self._sse.feed(data))

    def close(self) -> list[ChatCompletionChunk]:
        """Flush the decoder at end of input.

        Raises:
            StreamError: the stream ended before ``data: [DONE]`` and before any
                ``finish_reason`` (or in the middle of an event), or with a bad last event.
        """
        if self.error is not None:
            raise self.error
        pending = self._sse.has_pending
        chunks = self._convert(self._sse.close())
        if not self.done and self.error is None:
            if not self.finished or pending:
                where = "in the middle of an event" if pending else "before any finish_reason"
                raise StreamError(f"stream ended {where} and without 'data: [DONE]'")
            self.done = self.done_marker_missing = True
        return chunks

    def _convert(self, events: list[SSEEvent]) -> list[ChatCompletionChunk]:
        out: list[ChatCompletionChunk] = []
        try:
            for event in events:
                if self.done:
                    break
                if event.event == "error":
                    raise StreamError(f"error event in stream: {event.data[:500]}")
                data = event.data
                if not data:
                    continue
                if data[0] != "{" and data.strip() == "[DONE]":
                    self.done = True
                    break
                try:
                    obj = orjson.loads(data)
                except ValueError as exc:
                    raise StreamError(f"stream event is not JSON: {data[:200]!r}") from exc
                if not isinstance(obj, dict):
                    raise StreamError(f"stream event is not a JSON object: {data[:200]!r}")
                if obj.get("error"):
                    raise StreamError(f"error in stream: {json.dumps(obj['error'])[:500]}")
                chunk = ChatCompletionChunk.from_json(obj, self._intern)
                if not self.finished:
                    for choice in chunk.choices:
                        if choice.finish_reason is not None:
                            self.finished = True
                out.append(chunk)
        except StreamError as exc:
            self.error = exc
        return out
