"""Turn the bytes of a chat-completions SSE stream into chunk objects (both modes use this).

Framing is the SSE decoder's job (``core/sse.py``); this layer gives the events their
chat-completions meaning: each ``data:`` event is one JSON chunk, ``data: [DONE]`` ends the
stream, and an ``event: error`` or a JSON object with an ``"error"`` member is a failure.
A stream that ends without ``[DONE]`` is broken: the caller gets a StreamError, never a silently
truncated answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from harborbench.harborai.errors import StreamError
from harborbench.harborai.types import ChatCompletionChunk

from .sse import SSEDecoder, SSEEvent

__all__ = ["ChunkDecoder"]


class ChunkDecoder:
    """Incremental decoder from stream bytes to :class:`ChatCompletionChunk` objects.

    Args:
        intern: str -> str applied to repeated strings of each chunk (a StringPool or identity).
    """

    __slots__ = ("_intern", "_sse", "done", "error")

    def __init__(self, intern: Callable[[str], str]) -> None:
        self._sse = SSEDecoder()
        self._intern = intern
        self.done = False
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
            StreamError: the stream ended before ``data: [DONE]``, or with a bad last event.
        """
        if self.error is not None:
            raise self.error
        chunks = self._convert(self._sse.close())
        if not self.done and self.error is None:
            raise StreamError("stream ended before 'data: [DONE]'")
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
                if data == "[DONE]":
                    self.done = True
                    break
                try:
                    obj = json.loads(data)
                except ValueError as exc:
                    raise StreamError(f"stream event is not JSON: {data[:200]!r}") from exc
                if isinstance(obj, dict) and "error" in obj:
                    raise StreamError(f"error in stream: {json.dumps(obj['error'])[:500]}")
                out.append(ChatCompletionChunk.from_json(obj, self._intern))
        except StreamError as exc:
            self.error = exc
        return out
