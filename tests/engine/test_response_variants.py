"""Answers that real servers send, through the real client (both modes) and the request sender.

A scripted aiohttp server on 127.0.0.1, port 0: the last message's content names the answer.
Covers issue 11's stream decoder and response classification points, and checks the official
``openai`` SDK's behaviour on the same answers, since the client accepts what the SDK accepts.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from harborbench.engine.recorder import Recorder
from harborbench.engine.request import RequestSender
from harborbench.harborai import create_fast_client

MODES = {
    "optimized": {},
    "traditional": {"concurrency_optimization": {"enabled": False}},
}


def _chunk(content: str | None, finish: str | None = None, usage: int | None = None) -> bytes:
    obj: dict[str, Any] = {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "m",
        "choices": [
            {"index": 0, "delta": {} if content is None else {"content": content},
             "finish_reason": finish}
        ],
    }  # fmt: skip
    if usage is not None:
        obj["usage"] = {"prompt_tokens": 1, "completion_tokens": usage, "total_tokens": usage + 1}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _usage(tokens: int) -> bytes:
    usage = {"prompt_tokens": 1, "completion_tokens": tokens, "total_tokens": tokens + 1}
    obj = {"id": "c", "model": "m", "choices": [], "usage": usage}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


COMPLETE = _chunk("a b c") + _chunk(" d e f") + _chunk(None, "stop") + _usage(6)

STREAMS: dict[str, bytes] = {
    "done_with_whitespace": COMPLETE + b"data: [DONE] \t\r\n\r\n",
    "no_done_after_finish": COMPLETE,
    "cut_before_finish": _chunk("a b c"),
    # vLLM's continuous_usage_stats: cumulative usage in every chunk; 3 tokens per chunk
    "usage_per_chunk": _chunk("a b c", usage=3)
    + _chunk(" d e f", usage=6)
    + _chunk(None, "stop", usage=6)
    + b"data: [DONE]\n\n",
    "no_usage": _chunk("a b c") + _chunk(" d e f") + _chunk(None, "stop") + b"data: [DONE]\n\n",
}

COMPLETION = {"id": "x", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                           "finish_reason": "stop"}]}  # fmt: skip

BODIES: dict[str, tuple[str, bytes]] = {
    "not_json": ("application/json", b"<html>busy</html>"),
    "no_id": ("application/json", json.dumps({**COMPLETION, "id": None}).encode()),
    "no_choices": ("application/json", json.dumps({"id": "x", "model": "m"}).encode()),
    "no_role": (
        "application/json",
        json.dumps({"id": "x", "choices": [{"message": {"content": "hi"}}]}).encode(),
    ),
    # what the SDK accepts: only id, choices and message.role, with another content type
    "minimal": (
        "text/plain",
        json.dumps(
            {"id": "x", "choices": [{"message": {"role": "assistant", "content": "hi"}}]}
        ).encode(),
    ),
}


async def _chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    case = body["messages"][-1]["content"]
    if body.get("stream"):
        if case == "json_body":
            return web.json_response(COMPLETION)
        if case == "text_plain":
            return web.Response(text="hello", content_type="text/plain")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(STREAMS[case])
        await resp.write_eof()
        return resp
    content_type, raw = BODIES[case]
    return web.Response(body=raw, headers={"Content-Type": content_type})


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _chat)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


async def _send(base_url: str, mode: str, case: str, stream: bool) -> Recorder:
    recorder = Recorder(time.perf_counter_ns(), warmup_s=0, window_s=3600, open_loop=False)
    config = {"base_url": base_url, "api_key": "k", "timeout_s": 5, **MODES[mode]}
    async with create_fast_client(config) as client:
        params: dict[str, Any] = {
            "model": "m",
            "messages": [{"role": "user", "content": case}],
            "stream": stream,
        }
        if stream:
            params["stream_options"] = {"include_usage": True}
        sender = RequestSender(
            client.chat.completions.acreate, params, recorder, time.perf_counter_ns
        )
        await sender.send(time.perf_counter_ns())
    return recorder


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("case", "missing_done"), [("done_with_whitespace", 0), ("no_done_after_finish", 1)]
)
async def test_complete_stream_variants_are_successes(
    base_url: str, mode: str, case: str, missing_done: int
) -> None:
    rec = await _send(base_url, mode, case, stream=True)
    assert (rec.successes, rec.failures) == (1, 0), rec.failure_examples
    st = rec.stream
    assert st.done_marker_missing == missing_done
    assert (st.output_tokens, st.output_chunks, st.tokens_from_usage) == (6, 2, 1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("case", "kind", "message"),
    [
        ("cut_before_finish", "stream", "before any finish_reason and without 'data: [DONE]'"),
        ("json_body", "invalid_response", "answered with a JSON body (Content-Type application"),
        ("text_plain", "invalid_response", "answered with Content-Type 'text/plain'"),
    ],
)
async def test_broken_or_non_sse_streams_fail_with_a_clear_kind(
    base_url: str, mode: str, case: str, kind: str, message: str
) -> None:
    rec = await _send(base_url, mode, case, stream=True)
    assert (rec.successes, dict(rec.failures_by_kind)) == (0, {kind: 1})
    assert message in rec.failure_examples[kind]


@pytest.mark.parametrize("mode", MODES)
async def test_token_sources_and_per_chunk_counts(base_url: str, mode: str) -> None:
    per_chunk = (await _send(base_url, mode, "usage_per_chunk", stream=True)).stream
    assert per_chunk.per_chunk_tokens_known == 1
    assert per_chunk.itl.count == 3  # the second chunk's 3 tokens; the first chunk is TTFT
    assert per_chunk.icl.count == 1 and per_chunk.tpot.count == 1
    no_usage = (await _send(base_url, mode, "no_usage", stream=True)).stream
    assert (no_usage.tokens_from_chunk_count, no_usage.tokens_from_usage) == (1, 0)
    assert no_usage.output_tokens == 2  # chunks counted, and labelled as such
    assert no_usage.itl.count == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not_json", "response body is not JSON"),
        ("no_id", "without 'id'"),
        ("no_choices", "without a 'choices' list"),
        ("no_role", "choice 0 without 'message.role'"),
    ],
)
async def test_invalid_200_answers_are_invalid_response(
    base_url: str, mode: str, case: str, message: str
) -> None:
    rec = await _send(base_url, mode, case, stream=False)
    assert dict(rec.failures_by_kind) == {"invalid_response": 1}
    assert message in rec.failure_examples["invalid_response"]


@pytest.mark.parametrize("mode", MODES)
async def test_what_the_sdk_accepts_is_a_success(base_url: str, mode: str) -> None:
    rec = await _send(base_url, mode, "minimal", stream=False)
    assert (rec.successes, rec.failures) == (1, 0), rec.failure_examples


async def test_the_official_sdk_on_the_same_answers(base_url: str) -> None:
    """The reference behaviour: the SDK accepts the minimal body (whatever its content type),
    ends a stream without [DONE] after the finish_reason, and fails on a body that is not JSON."""
    openai = pytest.importorskip("openai")
    async with openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0) as sdk:
        msgs = [{"role": "user", "content": "minimal"}]
        reply = await sdk.chat.completions.create(model="m", messages=msgs)
        assert reply.id == "x" and reply.choices[0].message.role == "assistant"
        for case in ("done_with_whitespace", "no_done_after_finish"):
            stream = await sdk.chat.completions.create(
                model="m", messages=[{"role": "user", "content": case}], stream=True
            )
            texts = [c.choices[0].delta.content async for c in stream if c.choices]
            assert "".join(t or "" for t in texts) == "a b c d e f", case
        with pytest.raises(json.JSONDecodeError):
            await sdk.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "not_json"}]
            )
