"""Traditional mode: blocking HTTP from a pool of threads (the plan's "传统同步处理").

Every request, sync or async, runs in a :class:`~concurrent.futures.ThreadPoolExecutor` of
``max_concurrent_requests`` threads, over one ``urllib3.PoolManager`` with keep-alive connections
(``maxsize = max_concurrent_requests``, ``block=True``, no urllib3 retries). A streamed request
occupies its thread until the stream ends or is closed, the thread handing the decoded chunks to
the consumer through a queue; so requests in flight never exceed the number of threads.
``acreate`` hands the call to the same threads (``loop.run_in_executor``). There is no request
processor: no queue priorities, no retries, no rate limit. Responses are the same objects as in
the optimized mode.

Timeouts: ``timeout_s`` is a deadline for the whole call, from the moment it is made: a request
still waiting for a thread at its deadline is not sent, the thread gives urllib3 only the time
left (connect, each read, and urllib3's total), and the caller stops waiting at the deadline
with APITimeoutError even if the server drips its answer (the thread then ends at its own
timeout, still holding its place among the ``max_concurrent_requests`` threads).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import urllib3
from urllib3.exceptions import (
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
)
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

from .config import ResolvedConfig
from .core.provider import RequestSpec
from .core.streaming import ChunkDecoder, is_event_stream, not_an_event_stream
from .core.transport import parse_retry_after
from .errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    InvalidResponseError,
    StreamError,
)
from .types import ChatCompletion, ChatCompletionChunk

__all__ = ["SyncChunkStream", "ThreadChunkStream", "TraditionalEngine", "map_urllib3_error"]

_READ_SIZE = 65536
_END = object()


def map_urllib3_error(exc: BaseException) -> APIError:
    """Map a urllib3 or socket exception to the client's error tree.

    Args:
        exc: the exception raised by urllib3 while sending or reading.

    Returns:
        APIConnectionError for refused/reset connections, APITimeoutError for timeouts.
    """
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        return map_urllib3_error(exc.reason)
    if isinstance(exc, NewConnectionError):  # a subclass of ConnectTimeoutError in urllib3 2
        return APIConnectionError(f"connection failed: {exc!r}")
    if isinstance(exc, Urllib3TimeoutError | TimeoutError):
        return APITimeoutError(f"request timed out: {exc!r}")
    return APIConnectionError(f"connection failed: {exc!r}")


def _read_body(resp: Any, deadline: float) -> bytes:
    """Read a whole answer, checking ``deadline`` (``time.monotonic()``) between socket reads,
    so that a server dripping its answer cannot hold the thread past the deadline by more than
    one read; the connection goes back to the pool (closed first if the body was cut).

    Raises:
        APITimeoutError: the deadline passed, or a read timed out.
        APIConnectionError: the connection broke.
    """
    parts: list[bytes] = []
    complete = False
    try:
        while True:
            if time.monotonic() >= deadline:
                raise APITimeoutError("the answer did not arrive within the request timeout")
            data = resp.read1(_READ_SIZE)
            if not data:
                complete = True
                return b"".join(parts)
            parts.append(data)
    except (HTTPError, OSError) as exc:
        raise map_urllib3_error(exc) from exc
    finally:
        if not complete:
            resp.close()
        resp.release_conn()


class _Counters:
    """In-flight and totals, updated from many threads under one plain lock."""

    __slots__ = ("failures", "in_flight", "lock", "peak_in_flight", "requests")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.requests = 0
        self.failures = 0

    def begin(self) -> None:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            if self.in_flight > self.peak_in_flight:
                self.peak_in_flight = self.in_flight

    def end(self, ok: bool) -> None:
        with self.lock:
            self.in_flight -= 1
            if not ok:
                self.failures += 1


class SyncChunkStream:
    """Iterator of ChatCompletionChunk filled by a worker thread; ``close()`` stops it early.

    Iterating raises StreamError, APITimeoutError or APIConnectionError when the stream
    breaks, and an APIStatusError if the server refused it.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.cancelled = threading.Event()
        self._finished = False
        self.done_marker_missing = False  # ended after a finish_reason without [DONE]

    def put(self, item: Any) -> None:
        """Worker side: deliver a chunk, an exception, or the end marker."""
        self._queue.put(item)

    def put_many(self, items: list[Any]) -> None:
        """Worker side: deliver the chunks decoded from one read, in order."""
        for item in items:
            self._queue.put(item)

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return self

    def __next__(self) -> ChatCompletionChunk:
        if self._finished:
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self._finished = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        chunk: ChatCompletionChunk = item
        return chunk

    def close(self) -> None:
        """Stop early: the worker closes the connection after its current read."""
        self._finished = True
        self.cancelled.set()

    def __enter__(self) -> SyncChunkStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ThreadChunkStream:
    """Async iterator of ChatCompletionChunk filled by a worker thread (traditional acreate)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.cancelled = threading.Event()
        self._finished = False
        self.done_marker_missing = False  # ended after a finish_reason without [DONE]

    def put(self, item: Any) -> None:
        """Worker side (any thread): deliver a chunk, an exception, or the end marker."""
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the consumer's loop is closed: nobody is listening any more
            self.cancelled.set()

    def put_many(self, items: list[Any]) -> None:
        """Worker side (any thread): deliver the chunks decoded from one read, in order, with
        one wake-up of the consumer's loop instead of one per chunk."""
        if items:
            try:
                self._loop.call_soon_threadsafe(self._put_all, items)
            except RuntimeError:  # the consumer's loop is closed
                self.cancelled.set()

    def _put_all(self, items: list[Any]) -> None:
        put = self._queue.put_nowait
        for item in items:
            put(item)

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        if self._finished:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _END:
            self._finished = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        chunk: ChatCompletionChunk = item
        return chunk

    async def aclose(self) -> None:
        """Stop early: the worker closes the connection after its current read."""
        self._finished = True
        self.cancelled.set()

    async def __aenter__(self) -> ThreadChunkStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class TraditionalEngine:
    """Blocking HTTP from ``max_concurrent_requests`` threads (see the module docstring).

    Args:
        config: the resolved client configuration.
        intern: str -> str for repeated response strings (memory optimization) or identity.
    """

    def __init__(self, config: ResolvedConfig, intern: Callable[[str], str]) -> None:
        n = config.limits.max_concurrent_requests
        timeout_s = config.config.timeout_s
        self._intern = intern
        self._executor = ThreadPoolExecutor(max_workers=n, thread_name_prefix="harborai-trad")
        self._http = urllib3.PoolManager(
            num_pools=max(10, len(config.targets)),
            maxsize=n,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
        )
        self._counters = _Counters()
        self._timeout_s = timeout_s
        self.threads = n

    # --- worker-thread functions ------------------------------------------------------------
    @staticmethod
    def _time_left(deadline: float) -> urllib3.Timeout:
        """urllib3 timeouts for what is left until ``deadline`` (``time.monotonic()`` seconds).

        Raises:
            APITimeoutError: the deadline has passed (the request waited for a thread).
        """
        left_s = deadline - time.monotonic()
        if left_s <= 0.0:
            raise APITimeoutError("the request timeout passed while it waited for a thread")
        return urllib3.Timeout(total=left_s, connect=left_s, read=left_s)

    def _send(self, spec: RequestSpec, deadline: float) -> ChatCompletion:
        plugin = spec.plugin
        counters = self._counters
        timeout = self._time_left(deadline)
        counters.begin()
        ok = False
        try:
            try:
                resp = self._http.request(
                    "POST",
                    plugin.chat_url,
                    body=spec.body,
                    headers=dict(plugin.json_headers),
                    timeout=timeout,
                    preload_content=False,
                )
            except (HTTPError, OSError) as exc:
                raise map_urllib3_error(exc) from exc
            raw = _read_body(resp, deadline)
            if resp.status >= 300:
                raise APIStatusError(
                    resp.status,
                    retry_after_s=parse_retry_after(resp.headers.get("Retry-After")),
                    body=raw[:1024].decode("utf-8", "replace"),
                )
            try:
                data = orjson.loads(raw)
            except ValueError as exc:
                raise InvalidResponseError(f"response body is not JSON: {raw[:200]!r}") from exc
            result = ChatCompletion.from_json(data, self._intern)
            ok = True
            return result
        finally:
            counters.end(ok)

    def _stream(
        self, spec: RequestSpec, sink: SyncChunkStream | ThreadChunkStream, deadline: float
    ) -> None:
        plugin = spec.plugin
        counters = self._counters
        try:
            timeout = self._time_left(deadline)
        except APITimeoutError as exc:
            sink.put(exc)
            return
        counters.begin()
        ok = False
        try:
            try:
                resp = self._http.request(
                    "POST",
                    plugin.chat_url,
                    body=spec.body,
                    headers=dict(plugin.stream_headers),
                    preload_content=False,
                    timeout=timeout,
                )
            except (HTTPError, OSError) as exc:
                sink.put(map_urllib3_error(exc))
                return
            try:
                if resp.status >= 300:
                    body = resp.read()[:1024].decode("utf-8", "replace")
                    sink.put(
                        APIStatusError(
                            resp.status,
                            retry_after_s=parse_retry_after(resp.headers.get("Retry-After")),
                            body=body,
                        )
                    )
                    return
                content_type = resp.headers.get("Content-Type")
                if not is_event_stream(content_type):
                    sink.put(not_an_event_stream(str(content_type), resp.read(1024)))
                    return
                ok = self._pump(resp, sink, deadline)
            finally:
                if not ok:
                    resp.close()
                resp.release_conn()
        finally:
            counters.end(ok)

    def _pump(self, resp: Any, sink: SyncChunkStream | ThreadChunkStream, deadline: float) -> bool:
        """Read the stream into ``sink`` until its end, an error, the caller's close, or the
        call's ``deadline`` (``time.monotonic()`` seconds): it is checked before every read, and
        one read waits at most the timeout left when the request was sent; so a server that
        keeps sending keepalive comments cannot hold the call open. True when it ended cleanly.
        """
        decoder = ChunkDecoder(self._intern)
        try:
            while not sink.cancelled.is_set():
                if time.monotonic() >= deadline:
                    sink.put(
                        APITimeoutError(
                            f"the stream did not end within the request timeout "
                            f"({self._timeout_s:g} s)"
                        )
                    )
                    return False
                data = resp.read1(_READ_SIZE)
                sink.put_many(decoder.feed(data) if data else decoder.close())
                if decoder.error is not None:
                    sink.put(decoder.error)
                    return False
                if decoder.done:
                    if decoder.done_marker_missing:
                        sink.done_marker_missing = True  # set before _END: the reader sees it
                    else:
                        resp.drain_conn()  # read the end of the body so the connection is reused
                    sink.put(_END)
                    return True
            return False
        except StreamError as exc:
            sink.put(exc)
        except ProtocolError as exc:
            sink.put(StreamError(f"stream broke off: {exc!r}"))
        except (HTTPError, OSError) as exc:
            err = map_urllib3_error(exc)
            sink.put(err if isinstance(err, APITimeoutError) else StreamError(str(err)))
        return False

    # --- caller side ------------------------------------------------------------------------
    def create(self, spec: RequestSpec) -> ChatCompletion | SyncChunkStream:
        """Send from a pool thread and wait, at most ``timeout_s``; a stream is returned at once
        and filled by the thread.

        Raises:
            APIStatusError, APITimeoutError, APIConnectionError, APIError.
        """
        deadline = time.monotonic() + self._timeout_s
        if spec.stream:
            stream = SyncChunkStream()
            self._executor.submit(self._stream, spec, stream, deadline)
            return stream
        fut = self._executor.submit(self._send, spec, deadline)
        try:
            return fut.result(timeout=self._timeout_s)
        except TimeoutError:  # the caller's wait ended; a thread still sending ends on its own
            fut.cancel()
            raise APITimeoutError(
                f"no answer within the request timeout ({self._timeout_s:g} s)"
            ) from None

    async def acreate(self, spec: RequestSpec) -> ChatCompletion | ThreadChunkStream:
        """Hand the call to a pool thread and await it, at most ``timeout_s``, without blocking
        the event loop.

        Raises:
            APIStatusError, APITimeoutError, APIConnectionError, APIError.
        """
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self._timeout_s
        if spec.stream:
            stream = ThreadChunkStream(loop)
            self._executor.submit(self._stream, spec, stream, deadline)
            return stream
        try:
            async with asyncio.timeout(self._timeout_s):
                return await loop.run_in_executor(self._executor, self._send, spec, deadline)
        except TimeoutError:
            raise APITimeoutError(
                f"no answer within the request timeout ({self._timeout_s:g} s)"
            ) from None

    def close(self) -> None:
        """Wait for running requests, drop queued ones, close every pooled connection."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._http.clear()

    def statistics(self) -> dict[str, int | float]:
        """Counters: ``threads``, ``requests``, ``failures``, ``in_flight``, ``peak_in_flight``."""
        c = self._counters
        with c.lock:
            return {
                "threads": self.threads,
                "requests": c.requests,
                "failures": c.failures,
                "in_flight": c.in_flight,
                "peak_in_flight": c.peak_in_flight,
            }
