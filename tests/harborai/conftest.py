"""A real OpenAI-compatible test server for the client tests (127.0.0.1, port 0).

It runs its own event loop in a thread, so both the synchronous and the asynchronous client can
talk to it from a test. It counts connections accepted, requests, requests in flight and the
maximum in flight, and can be scripted per request: a status with headers (429 + Retry-After,
400, 500), a delay, or a broken stream (error event, or a cut before ``[DONE]``).

Answers are deterministic: the content is ``"echo: " + the last message's content`` (split into
one chunk per word when streamed), usage counts words.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web


class FixtureServer:
    """The test server. Use ``url`` as the client's ``base_url``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._lock = threading.Lock()
        self._script: list[dict[str, Any]] = []
        self.delay_s = 0.0
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.arrivals_s: list[float] = []
        self.bodies: list[dict[str, Any]] = []
        self.auth_headers: list[str | None] = []
        self._transports: set[object] = set()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def connections(self) -> int:
        """Distinct TCP connections that carried at least one request."""
        return len(self._transports)

    def script(self, *actions: dict[str, Any]) -> None:
        """Queue behaviours for the next requests, one action per request, in order.

        Action keys: ``status`` (int) with ``headers`` and ``body``; ``delay_s``;
        ``stream_error`` (send an error event mid-stream); ``stream_cut`` (end without DONE);
        ``drip_s`` (a JSON answer sent 16 bytes at a time, ``drip_s`` apart: every read is
        short, the whole answer slow); ``keepalive_s`` (a stream that, after its first word,
        sends an SSE comment every ``keepalive_s`` and never ends: every read is short, the
        stream endless).
        """
        with self._lock:
            self._script.extend(actions)

    def _next_action(self) -> dict[str, Any]:
        with self._lock:
            return self._script.pop(0) if self._script else {}

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        current = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not current]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self._transports.add(request.transport)
        self.requests += 1
        self.arrivals_s.append(time.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.json()
            self.bodies.append(body)
            self.auth_headers.append(request.headers.get("Authorization"))
            action = self._next_action()
            delay_s = action.get("delay_s", self.delay_s)
            if delay_s:
                await asyncio.sleep(delay_s)
            if "status" in action:
                return web.Response(
                    status=action["status"],
                    headers=action.get("headers", {}),
                    text=action.get("body", json.dumps({"error": {"message": "scripted"}})),
                    content_type="application/json",
                )
            content = "echo: " + str(body["messages"][-1]["content"])
            words = content.split(" ")
            prompt_tokens = sum(len(str(m["content"]).split()) for m in body["messages"])
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(words),
                "total_tokens": prompt_tokens + len(words),
            }
            if body.get("stream"):
                return await self._stream(request, body, words, usage, action)
            answer = {
                "id": f"chatcmpl-{self.requests}",
                "object": "chat.completion",
                "created": 1700000000,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
            if action.get("drip_s"):
                return await self._drip(request, json.dumps(answer).encode(), action["drip_s"])
            return web.json_response(answer)
        finally:
            self.in_flight -= 1

    async def _drip(self, request: web.Request, data: bytes, gap_s: float) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.content_length = len(data)
        await resp.prepare(request)
        for i in range(0, len(data), 16):
            await resp.write(data[i : i + 16])
            await asyncio.sleep(gap_s)
        await resp.write_eof()
        return resp

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        words: list[str],
        usage: dict[str, int],
        action: dict[str, Any],
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            obj = {
                "id": "chatcmpl-s",
                "object": "chat.completion.chunk",
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        await resp.write(chunk({"role": "assistant", "content": ""}, None))
        for i, word in enumerate(words):
            text = word if i == 0 else " " + word
            await resp.write(chunk({"content": text}, None))
            if action.get("stream_error") and i == 0:
                await resp.write(b'event: error\ndata: {"message": "boom"}\n\n')
                await resp.write_eof()
                return resp
            if action.get("stream_cut") and i == 0:
                await resp.write_eof()
                return resp
            if action.get("keepalive_s") and i == 0:
                with contextlib.suppress(ConnectionError):  # until the client goes away
                    while True:
                        await asyncio.sleep(action["keepalive_s"])
                        await resp.write(b": keepalive\n\n")
                return resp
        await resp.write(chunk({}, "stop"))
        if body.get("stream_options", {}).get("include_usage"):
            final = {"id": "chatcmpl-s", "model": body["model"], "choices": [], "usage": usage}
            await resp.write(b"data: " + json.dumps(final).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    """A started FixtureServer, stopped after the test."""
    srv = FixtureServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
