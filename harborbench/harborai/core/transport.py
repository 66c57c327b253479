"""aiohttp request execution for the optimized mode, with the error mapping of the client.

Every failure becomes an exception of :mod:`harborbench.harborai.errors`:
non-2xx -> APIStatusError (with ``retry_after_s``), timeouts -> APITimeoutError, connection
failures and resets -> APIConnectionError, a 2xx answer that is not a chat completion (or not an
event stream for a stream request) -> InvalidResponseError, broken or error streams ->
StreamError.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable

import aiohttp
import orjson

from harborbench.harborai.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    InvalidResponseError,
    StreamError,
)
from harborbench.harborai.types import ChatCompletion, ChatCompletionChunk

from .provider import RequestSpec
from .streaming import ChunkDecoder, is_event_stream, not_an_event_stream

__all__ = [
    "AsyncChunkStream",
    "map_aiohttp_error",
    "open_stream",
    "parse_completion",
    "parse_retry_after",
    "status_error",
]


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 section 10.2.3).

    Args:
        value: the header value: delay-seconds or an HTTP-date; None when absent.
        now_s: float, Unix time in seconds used for an HTTP-date (``time.time()`` when None).

    Returns:
        float seconds >= 0, or None when absent or unparseable.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now_s is None else now_s
    return max(0.0, when.timestamp() - now)


def map_aiohttp_error(exc: BaseException) -> APIError:
    """Map an aiohttp or socket exception to the client's error tree.

    Args:
        exc: the exception raised while sending or reading.

    Returns:
        APITimeoutError for timeouts; APIConnectionError for every other connection failure,
        with ``maybe_executed`` True unless the connection could not be made at all
        (``aiohttp.ClientConnectorError``: refused, DNS), i.e. for resets, server disconnects
        and bodies that broke off, after which the server may have executed the request.
    """
    if isinstance(exc, TimeoutError):
        return APITimeoutError(f"request timed out: {exc!r}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return APIConnectionError(f"response body broke off: {exc!r}", maybe_executed=True)
    if isinstance(exc, aiohttp.ClientConnectorError):  # no connection: the request never left
        return APIConnectionError(f"connection failed: {exc!r}")
    return APIConnectionError(f"connection broke: {exc!r}", maybe_executed=True)


async def status_error(resp: aiohttp.ClientResponse) -> APIStatusError:
    """The APIStatusError of a non-2xx answer: its status, ``Retry-After`` and the start of its
    body (empty when the body cannot be read)."""
    try:
        body = (await resp.read())[:1024].decode("utf-8", "replace")
    except (aiohttp.ClientError, TimeoutError):
        body = ""
    return APIStatusError(
        resp.status,
        retry_after_s=parse_retry_after(resp.headers.get("Retry-After")),
        body=body,
    )


def parse_completion(raw: bytes, intern: Callable[[str], str]) -> ChatCompletion:
    """Parse the body of a non-streamed 2xx answer.

    The exchange itself is :meth:`ConcurrencyManager.execute
    <harborbench.harborai.core.optimizations.concurrency_manager.ConcurrencyManager.execute>`
    (inline there: one coroutine frame less a request).

    Args:
        raw: the body.
        intern: str -> str for repeated strings of the response.

    Returns:
        the parsed ChatCompletion.

    Raises:
        InvalidResponseError: a body that is not JSON or not a chat completion (its
            Content-Type is not checked, as in the official SDK, which parses a JSON body
            whatever the header says).
    """
    try:
        data = orjson.loads(raw)
    except ValueError as exc:
        raise InvalidResponseError(f"response body is not JSON: {raw[:200]!r}") from exc
    return ChatCompletion.from_json(data, intern)


class AsyncChunkStream:
    """An open streamed answer: ``async for chunk in stream`` yields ChatCompletionChunk.

    The in-flight slot and pooled connection are held until the stream ends, fails or is
    closed (``await stream.aclose()`` or ``async with stream``). Iterating after the end raises
    StopAsyncIteration; a broken stream raises StreamError (or APITimeoutError on a read
    timeout).
    """

    __slots__ = ("_decoder", "_on_close", "_pending", "_resp")

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        decoder: ChunkDecoder,
        on_close: Callable[[bool, bool], None],
    ) -> None:
        self._resp: aiohttp.ClientResponse | None = resp
        self._decoder = decoder
        self._on_close: Callable[[bool, bool], None] | None = on_close
        self._pending: list[ChatCompletionChunk] = []  # decoded, not yet returned, reversed

    def __aiter__(self) -> AsyncChunkStream:
        return self

    @property
    def done_marker_missing(self) -> bool:
        """Whether the stream ended cleanly after a finish_reason without ``data: [DONE]``."""
        return self._decoder.done_marker_missing

    async def __aenter__(self) -> AsyncChunkStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __anext__(self) -> ChatCompletionChunk:
        while not self._pending:
            resp = self._resp
            if resp is None:
                raise StopAsyncIteration
            error = self._decoder.error
            if error is not None:
                self._finish(ok=False)
                raise error
            try:
                data = await resp.content.readany()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                err = map_aiohttp_error(exc)
                timed_out = isinstance(err, APITimeoutError)
                self._finish(ok=False, connection_ok=timed_out)  # a timeout: a slow server
                if timed_out:
                    raise err from exc
                raise StreamError(f"stream broke off: {exc!r}") from exc
            decoder = self._decoder
            if data:
                self._pending = decoder.feed(data)[::-1]
            else:
                try:
                    self._pending = decoder.close()[::-1]
                except StreamError:
                    self._finish(ok=False)
                    raise
                if decoder.error is None:
                    self._finish(ok=True)
            if decoder.done and self._resp is not None:
                try:
                    if not resp.content.at_eof():
                        await resp.content.read()  # the body's end, so the connection is reused
                except (aiohttp.ClientError, OSError, TimeoutError):
                    # the answer is complete; only the socket is lost
                    self._finish(ok=False, connection_ok=False)
                else:
                    self._finish(ok=True)
        return self._pending.pop()

    def _finish(self, *, ok: bool, connection_ok: bool = True) -> None:
        """Release the response and report once: ``ok`` the answer was complete,
        ``connection_ok`` False only when the connection broke (a malformed stream, a read
        timeout or the caller closing early says nothing against the connection)."""
        resp, self._resp = self._resp, None
        if resp is not None:
            if ok:
                resp.release()  # aiohttp closes the socket instead if the body was not all read
            else:
                resp.close()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close(ok, connection_ok)

    async def aclose(self) -> None:
        """Stop reading, release the connection (closed if unread data remains) and the slot."""
        self._pending = []
        if self._resp is not None:
            self._finish(ok=self._decoder.done)


async def open_stream(
    session: aiohttp.ClientSession,
    spec: RequestSpec,
    timeout: aiohttp.ClientTimeout,
    intern: Callable[[str], str],
    on_close: Callable[[bool, bool], None],
) -> AsyncChunkStream:
    """Send a streamed request and return the open stream once the status line is 2xx.

    Args:
        session: the aiohttp session of the target's origin.
        spec: the prepared request (``stream`` True).
        timeout: timeout for connecting and between reads, seconds.
        intern: str -> str for repeated strings of the chunks.
        on_close: called once with ``(ok, connection_ok)`` when the stream ends, fails or is
            closed: ok, the answer was complete; connection_ok, False only when the connection
            broke (not for a malformed stream, a read timeout or an early close by the
            caller). It is NOT called when this function raises (the caller releases then).

    Returns:
        the open AsyncChunkStream.

    Raises:
        APIStatusError, APITimeoutError, APIConnectionError, InvalidResponseError (the answer
        is a JSON body or another Content-Type than ``text/event-stream``).
    """
    plugin = spec.plugin
    try:
        resp = await session.post(
            plugin.chat_url, data=spec.body, headers=plugin.stream_headers, timeout=timeout
        )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise map_aiohttp_error(exc) from exc
    if resp.status >= 300:
        try:
            raise await status_error(resp)
        finally:
            resp.release()
    content_type = resp.headers.get("Content-Type")
    if not is_event_stream(content_type):
        try:
            body = await resp.content.read(1024)
        except (aiohttp.ClientError, OSError, TimeoutError):
            body = b""
        resp.close()
        raise not_an_event_stream(str(content_type), body)
    return AsyncChunkStream(resp, ChunkDecoder(intern), on_close)
