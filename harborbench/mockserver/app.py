"""The mock server's aiohttp application: OpenAI-compatible endpoints with scripted behaviour.

Endpoints:
    ``POST /v1/chat/completions``: a chat completion as JSON, or with ``"stream": true`` as
    Server-Sent Events (a role chunk, content chunks, a ``finish_reason`` chunk, a usage chunk
    when ``stream_options.include_usage`` is true, then ``data: [DONE]``), shaped like OpenAI's
    API reference. The requested model is echoed back.
    ``GET /v1/models``, ``GET /health``, ``GET /stats`` (server-side counters, see
    :meth:`MockState.snapshot`) and ``POST /stats/reset``.

The hot path does no pydantic work: the settings are turned once into samplers, thresholds and
pre-encoded byte templates, and a response body is one bytes ``%``-format. Connections are
counted by :mod:`harborbench.mockserver.server`, which wraps the protocol factory.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import struct
import time
from typing import Any

from aiohttp import web

from harborbench.mockserver.sampling import make_latency_sampler, make_token_sampler
from harborbench.mockserver.settings import MockSettings

__all__ = ["STATE_KEY", "MockState", "ServerStats", "build_app"]

_WORDS = (
    b" harbor",
    b" bench",
    b" token",
    b" wave",
    b" anchor",
    b" tide",
    b" sail",
    b" quay",
)
_JSON = "application/json"
_SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
}
_COMPLETION = (
    b'{"id":"chatcmpl-mock%x","object":"chat.completion","created":%d,"model":%b,'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"%b","refusal":null},'
    b'"logprobs":null,"finish_reason":"%b"}],'
    b'"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d},'
    b'"system_fingerprint":"harborbench-mock"}'
)
_CHUNK_HEAD = (
    b'data: {"id":"chatcmpl-mock%x","object":"chat.completion.chunk","created":%d,"model":%b,'
)
_CHUNK_ROLE = (
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
)
_CHUNK_TEXT = b'"choices":[{"index":0,"delta":{"content":"%b"},"finish_reason":null}]}\n\n'
_CHUNK_FINISH = b'"choices":[{"index":0,"delta":{},"finish_reason":"%b"}]}\n\n'
_CHUNK_USAGE = (
    b'"choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}\n\n'
)
_DONE = b"data: [DONE]\n\n"
_STREAM_ERROR = (
    b'data: {"error":{"message":"injected stream error (harborbench mock)",'
    b'"type":"server_error","param":null,"code":"mock_stream_error"}}\n\n'
)
_RST_LINGER = struct.pack("ii", 1, 0)
#: With ``output_tokens: max_tokens``, the length of an answer to a request without max_tokens.
NO_LIMIT_TOKENS = 16


class ServerStats:
    """Mutable counters of one server process since start or the last reset.

    Attributes:
        requests_total: chat-completion requests received (other endpoints are not counted).
        requests_by_status: chat-completion responses by HTTP status sent.
        connections_accepted: TCP connections accepted (counted in the protocol factory).
        in_flight: chat-completion requests being handled now; max_in_flight: its maximum.
        bytes_sent: bytes of chat-completion response bodies (JSON or SSE payload, excluding
            HTTP headers and chunked framing).
        streams_total: requests answered (or started) as streams.
        faults: injected faults by kind (error, hang, reset, stream_break, stream_error).
        stalled_requests: requests or stream chunks that waited for a stall window to end.
        reset_at: wall-clock time of the last reset (Unix seconds).
    """

    __slots__ = (
        "bytes_sent",
        "connections_accepted",
        "faults",
        "in_flight",
        "max_in_flight",
        "requests_by_status",
        "requests_total",
        "reset_at",
        "stalled_requests",
        "streams_total",
    )

    def __init__(self) -> None:
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Zero every counter except ``in_flight``; ``max_in_flight`` restarts at ``in_flight``."""
        self.requests_total = 0
        self.requests_by_status: dict[int, int] = {}
        self.connections_accepted = 0
        self.max_in_flight = self.in_flight
        self.bytes_sent = 0
        self.streams_total = 0
        self.faults = {"error": 0, "hang": 0, "reset": 0, "stream_break": 0, "stream_error": 0}
        self.stalled_requests = 0
        self.reset_at = time.time()


class MockState:
    """The server's settings compiled for the hot path, its random generator and its counters.

    Args:
        settings: the validated behaviour of the server.
    """

    def __init__(self, settings: MockSettings) -> None:
        self.settings = settings
        self.stats = ServerStats()
        self.started_at = time.time()
        self.started_mono = time.monotonic()
        #: returns the number of open connections; set by the server that runs the app.
        self.connections_open: Any = None
        self._rng = random.Random(settings.seed)
        rng = self._rng
        self.latency_s = make_latency_sampler(settings.latency, rng)
        self.ttft_s = make_latency_sampler(settings.stream.ttft, rng)
        self.inter_token_s = make_latency_sampler(settings.stream.inter_token, rng)
        spec = settings.output_tokens
        #: None: every answer has exactly the request's max_tokens.
        self.output_tokens = None if spec == "max_tokens" else make_token_sampler(spec, rng)
        self.tokens_per_chunk = settings.stream.tokens_per_chunk
        f = settings.faults
        self.any_fault = (
            f.error_rate + f.hang_rate + f.reset_rate + f.stream_break_rate + f.stream_error_rate
        ) > 0
        self.t_error = f.error_rate
        self.t_hang = self.t_error + f.hang_rate
        self.t_reset = self.t_hang + f.reset_rate
        self.t_break = self.t_reset + f.stream_break_rate
        self.t_stream_error = self.t_break + f.stream_error_rate
        self.stalls = tuple(sorted((s.at, s.at + s.duration) for s in f.stalls if s.duration > 0))
        self.error_status = f.error_status
        self.error_body = json.dumps(
            {
                "error": {
                    "message": f"injected error {f.error_status} (harborbench mock)",
                    "type": "server_error" if f.error_status >= 500 else "rate_limit_error",
                    "param": None,
                    "code": "mock_injected_error",
                }
            }
        ).encode()
        retry_after_s = f.retry_after
        self.error_headers: dict[str, str] = {}
        if f.error_status == 429:
            # HTTP Retry-After takes whole seconds (RFC 9110 section 10.2.3); OpenAI's SDK also
            # reads the more precise retry-after-ms.
            self.error_headers = {
                "Retry-After": str(int(-(-retry_after_s // 1))),
                "retry-after-ms": str(round(retry_after_s * 1000)),
            }
        self.models_body = json.dumps(
            {
                "object": "list",
                # Not part of OpenAI's schema; clients ignore it, people reading it learn this:
                "note": "this mock accepts any model name and echoes it back; the ids below "
                "are only examples",
                "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "harborbench"}
                    for m in settings.models
                ],
            }
        ).encode()
        self._seq = 0
        self._content: dict[int, bytes] = {}
        self._slices: dict[int, bytes] = {}
        self._model_json: dict[str, bytes] = {}

    def next_id(self) -> int:
        """Return the next response sequence number (used in the ``chatcmpl-mock<hex>`` id)."""
        self._seq += 1
        return self._seq

    def draw(self) -> float:
        """Draw the uniform number in ``[0, 1)`` that picks this request's fault."""
        return self._rng.random()

    def content(self, n_tokens: int) -> bytes:
        """Return ``n_tokens`` words of generated text, JSON-safe (one word = one token)."""
        text = self._content.get(n_tokens)
        if text is None:
            text = b"".join(_WORDS[i % len(_WORDS)] for i in range(n_tokens))
            self._content[n_tokens] = text
        return text

    def content_slice(self, start: int, n_tokens: int) -> bytes:
        """Return the words ``start .. start + n_tokens - 1`` of the generated text."""
        key = (start % len(_WORDS)) << 32 | n_tokens
        text = self._slices.get(key)
        if text is None:
            text = b"".join(_WORDS[(start + i) % len(_WORDS)] for i in range(n_tokens))
            self._slices[key] = text
        return text

    def model_json(self, model: str) -> bytes:
        """Return ``model`` as an encoded JSON string (cached for the first 256 names)."""
        encoded = self._model_json.get(model)
        if encoded is None:
            encoded = json.dumps(model).encode()
            if len(self._model_json) < 256:
                self._model_json[model] = encoded
        return encoded

    async def stall_gate(self) -> None:
        """Wait until no stall window covers now (windows are seconds after server start)."""
        if not self.stalls:
            return
        waited = False
        while True:
            now_s = time.monotonic() - self.started_mono
            for start_s, end_s in self.stalls:
                if start_s <= now_s < end_s:
                    waited = True
                    await asyncio.sleep(end_s - now_s)
                    break
            else:
                break
        if waited:
            self.stats.stalled_requests += 1

    def snapshot(self) -> dict[str, Any]:
        """Return the counters as the ``GET /stats`` JSON object.

        Returns:
            A dict with keys requests_total, requests_by_status (``{"200": n, ...}``),
            connections_accepted, connections_open, in_flight, max_in_flight, bytes_sent,
            streams_total, faults, stalled_requests, started_at and reset_at (Unix seconds),
            uptime_s, seed and pid.
        """
        s = self.stats
        open_fn = self.connections_open
        return {
            "requests_total": s.requests_total,
            "requests_by_status": {str(k): v for k, v in sorted(s.requests_by_status.items())},
            "connections_accepted": s.connections_accepted,
            "connections_open": open_fn() if open_fn is not None else None,
            "in_flight": s.in_flight,
            "max_in_flight": s.max_in_flight,
            "bytes_sent": s.bytes_sent,
            "streams_total": s.streams_total,
            "faults": dict(s.faults),
            "stalled_requests": s.stalled_requests,
            "started_at": self.started_at,
            "reset_at": s.reset_at,
            "uptime_s": time.monotonic() - self.started_mono,
            "seed": self.settings.seed,
            "pid": os.getpid(),
        }


STATE_KEY = web.AppKey("harborbench_mock_state", MockState)


def _error(status: int, message: str, param: str | None = None) -> web.Response:
    body = {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": None,
        }
    }
    return web.json_response(body, status=status)


def _reset_connection(request: web.Request) -> None:
    """Abort the connection with a TCP RST (SO_LINGER 0), as a crashed peer would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RST_LINGER)
    transport.abort()


def _prompt_tokens(messages: list[Any]) -> int:
    """Estimate prompt tokens as characters of text / 4, at least 1.

    Text is a string content or the ``text`` of each part of a list-of-parts content
    (``[{"type": "text", "text": ...}, ...]``); other parts (images, audio) count nothing.
    """
    chars = 0
    for message in messages:
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, str):
                chars += len(content)
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict):
                        text = part.get("text")
                        if isinstance(text, str):
                            chars += len(text)
    return max(1, chars // 4)


async def _chat(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    stats = state.stats
    stats.requests_total += 1
    stats.in_flight += 1
    if stats.in_flight > stats.max_in_flight:
        stats.max_in_flight = stats.in_flight
    try:
        response = await _answer(request, state)
        if response is None:
            # The connection was reset or broken on purpose: aiohttp's attempt to send this
            # ends in a ConnectionError that it treats as a client disconnection.
            return web.Response(status=500)
        if isinstance(response, web.Response):  # streams count themselves in _stream
            by_status = stats.requests_by_status
            by_status[response.status] = by_status.get(response.status, 0) + 1
            body = response.body
            if isinstance(body, bytes):
                stats.bytes_sent += len(body)
        return response
    finally:
        stats.in_flight -= 1


async def _answer(request: web.Request, state: MockState) -> web.StreamResponse | None:
    """Handle one chat completion; ``None`` when the connection was dropped on purpose."""
    raw = await request.read()
    try:
        payload = json.loads(raw)
    except ValueError:
        return _error(400, "the request body is not valid JSON")
    if not isinstance(payload, dict):
        return _error(400, "the request body must be a JSON object")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        return _error(400, "you must provide a model parameter", "model")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        return _error(400, "'messages' must be a non-empty array", "messages")
    stream = payload.get("stream") is True
    n_choices = payload.get("n", 1)
    if n_choices is None:
        n_choices = 1
    if isinstance(n_choices, bool) or not isinstance(n_choices, int) or not 1 <= n_choices <= 128:
        return _error(400, "'n' must be a whole number from 1 to 128", "n")
    if n_choices > 1 and stream:
        return _error(400, "this mock streams one choice only; send n: 1 with stream", "n")

    if state.stalls:
        await state.stall_gate()
    fault = state.draw() if state.any_fault else 1.0
    faults = state.stats.faults
    if fault < state.t_error:
        faults["error"] += 1
        return web.Response(
            status=state.error_status,
            body=state.error_body,
            content_type=_JSON,
            headers=state.error_headers,
        )
    if fault < state.t_hang:
        faults["hang"] += 1
        # Until the client gives up (the server cancels the handler when the connection is
        # lost) or the server shuts down.
        await asyncio.get_running_loop().create_future()
    if fault < state.t_reset:
        faults["reset"] += 1
        _reset_connection(request)
        return None

    finish = b"stop"
    raw_limit = payload.get("max_completion_tokens") or payload.get("max_tokens")
    limit = raw_limit if type(raw_limit) is int and raw_limit > 0 else None
    if limit is not None and (state.output_tokens is None or payload.get("ignore_eos") is True):
        n_tokens, finish = limit, b"length"  # exactly max_tokens, as vLLM with ignore_eos
    elif state.output_tokens is None:
        n_tokens = NO_LIMIT_TOKENS
    else:
        n_tokens = state.output_tokens()
        if limit is not None and limit < n_tokens:
            n_tokens, finish = limit, b"length"
    prompt_tokens = _prompt_tokens(messages)
    seq = state.next_id()
    created = int(time.time())
    model_json = state.model_json(model)

    if stream:
        options = payload.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        stream_fault = ""
        if state.t_reset <= fault < state.t_break:
            stream_fault = "stream_break"
        elif state.t_break <= fault < state.t_stream_error:
            stream_fault = "stream_error"
        return await _stream(
            request,
            state,
            _CHUNK_HEAD % (seq, created, model_json),
            n_tokens,
            finish,
            prompt_tokens,
            include_usage,
            stream_fault,
        )

    delay_s = state.latency_s()
    if delay_s > 0:
        await asyncio.sleep(delay_s)
    if n_choices > 1:
        return _n_choices(
            state, seq, created, model_json, n_tokens, finish, prompt_tokens, n_choices
        )
    body = _COMPLETION % (
        seq,
        created,
        model_json,
        state.content(n_tokens),
        finish,
        prompt_tokens,
        n_tokens,
        prompt_tokens + n_tokens,
    )
    return web.Response(body=body, content_type=_JSON)


def _n_choices(
    state: MockState,
    seq: int,
    created: int,
    model_json: bytes,
    n_tokens: int,
    finish: bytes,
    prompt_tokens: int,
    n_choices: int,
) -> web.Response:
    """A completion with ``n_choices`` choices of ``n_tokens`` tokens each (request ``n`` > 1)."""
    content = state.content(n_tokens).decode()
    completion = n_tokens * n_choices
    body = {
        "id": f"chatcmpl-mock{seq:x}",
        "object": "chat.completion",
        "created": created,
        "model": json.loads(model_json),
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish.decode(),
            }
            for i in range(n_choices)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        },
        "system_fingerprint": "harborbench-mock",
    }
    return web.Response(body=json.dumps(body).encode(), content_type=_JSON)


async def _stream(
    request: web.Request,
    state: MockState,
    head: bytes,
    n_tokens: int,
    finish: bytes,
    prompt_tokens: int,
    include_usage: bool,
    stream_fault: str,
) -> web.StreamResponse | None:
    """Send a completion as Server-Sent Events; ``None`` if the stream was broken on purpose."""
    stats = state.stats
    stats.streams_total += 1
    response = web.StreamResponse(status=200, headers=_SSE_HEADERS)
    await response.prepare(request)
    by_status = stats.requests_by_status
    by_status[200] = by_status.get(200, 0) + 1

    per_chunk = state.tokens_per_chunk
    n_chunks = -(-n_tokens // per_chunk)
    fault_after = n_chunks // 2 if stream_fault else -1
    delay_s = state.ttft_s()
    sent = 0
    for index in range(n_chunks):
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        if state.stalls:
            await state.stall_gate()
        if index == fault_after:
            stats.faults[stream_fault] += 1
            if stream_fault == "stream_break":
                stats.bytes_sent += sent
                if request.transport is not None:
                    request.transport.abort()
                return None
            await response.write(_STREAM_ERROR)
            await response.write_eof()
            stats.bytes_sent += sent + len(_STREAM_ERROR)
            return response
        words = min(per_chunk, n_tokens - index * per_chunk)
        chunk = head + _CHUNK_TEXT % state.content_slice(index * per_chunk, words)
        if index == 0:
            chunk = head + _CHUNK_ROLE + chunk
        await response.write(chunk)
        sent += len(chunk)
        delay_s = state.inter_token_s()
    tail = head + _CHUNK_FINISH % finish
    if include_usage:
        tail += head + _CHUNK_USAGE % (prompt_tokens, n_tokens, prompt_tokens + n_tokens)
    tail += _DONE
    await response.write(tail)
    await response.write_eof()
    stats.bytes_sent += sent + len(tail)
    return response


async def _models(request: web.Request) -> web.Response:
    return web.Response(body=request.app[STATE_KEY].models_body, content_type=_JSON)


async def _health(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type=_JSON)


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].snapshot())


async def _stats_reset(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    state.stats.reset()
    return web.json_response(state.snapshot())


async def _on_startup(app: web.Application) -> None:
    state = app[STATE_KEY]
    state.started_mono = time.monotonic()
    state.started_at = time.time()


def build_app(settings: MockSettings) -> web.Application:
    """Build the mock server's aiohttp application.

    Args:
        settings: the validated behaviour (latencies, output lengths, faults, seed).

    Returns:
        An :class:`aiohttp.web.Application`; its :class:`MockState` is ``app[STATE_KEY]``.
        Stall windows count from the application's startup. Run it with
        :func:`harborbench.mockserver.server.start_server`, which counts connections and
        cancels a handler when its client disconnects (needed to end injected hangs).
    """
    app = web.Application()
    app[STATE_KEY] = MockState(settings)
    app.on_startup.append(_on_startup)
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)
    app.router.add_get("/stats", _stats)
    app.router.add_post("/stats/reset", _stats_reset)
    return app
