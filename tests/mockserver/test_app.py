"""The mock server's endpoints, faults, stalls and counters, over real sockets on port 0."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import aiohttp
import pytest

from harborbench.mockserver.app import STATE_KEY
from harborbench.mockserver.server import RunningServer
from tests.mockserver.conftest import StartMock

MESSAGES = [{"role": "user", "content": "Sixteen characters!"}]  # 19 chars -> 4 tokens


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": MESSAGES, **extra}


async def post_chat(
    session: aiohttp.ClientSession, server: RunningServer, **extra: Any
) -> tuple[int, dict[str, Any], Any]:
    async with session.post(server.url + "/v1/chat/completions", json=chat_body(**extra)) as r:
        return r.status, json.loads(await r.read()), r.headers


async def read_events(response: aiohttp.ClientResponse) -> list[str]:
    """The ``data:`` payloads of a Server-Sent-Event response, in order."""
    text = (await response.read()).decode()
    assert text.endswith("\n\n")
    events = [block for block in text.split("\n\n") if block]
    assert all(e.startswith("data: ") for e in events)
    return [e.removeprefix("data: ") for e in events]


async def stats(session: aiohttp.ClientSession, server: RunningServer) -> dict[str, Any]:
    async with session.get(server.url + "/stats") as r:
        data: dict[str, Any] = await r.json()
        return data


async def wait_until_idle(server: RunningServer) -> None:
    """Wait (bounded) until no chat completion is in flight on the server."""
    state = server.app[STATE_KEY]
    for _ in range(500):
        if state.stats.in_flight == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"still {state.stats.in_flight} in flight")


# --- endpoints -----------------------------------------------------------------------------


async def test_health_and_models(start_mock: StartMock, session: aiohttp.ClientSession) -> None:
    server = await start_mock(models=["a", "b"])
    assert server.url.startswith("http://127.0.0.1:")
    async with session.get(server.url + "/health") as r:
        assert r.status == 200
        assert await r.json() == {"status": "ok"}
    async with session.get(server.url + "/v1/models") as r:
        data = await r.json()
    assert data["object"] == "list"
    assert [m["id"] for m in data["data"]] == ["a", "b"]


async def test_chat_completion_json_shape(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock(output_tokens=5)
    status, body, headers = await post_chat(session, server)
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert body["id"] == "chatcmpl-mock1"
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "gpt-test"
    choice = body["choices"][0]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == " harbor bench token wave anchor"
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}


async def test_model_name_is_echoed_with_json_escaping(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock()
    async with session.post(
        server.url + "/v1/chat/completions",
        json={"model": 'we"ird\\mödel', "messages": MESSAGES},
    ) as r:
        assert (await r.json())["model"] == 'we"ird\\mödel'


async def test_max_tokens_caps_output_with_finish_length(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock(output_tokens=50)
    _, body, _ = await post_chat(session, server, max_tokens=3)
    assert body["usage"]["completion_tokens"] == 3
    assert body["choices"][0]["finish_reason"] == "length"
    _, body, _ = await post_chat(session, server, max_completion_tokens=4)
    assert body["usage"]["completion_tokens"] == 4


@pytest.mark.parametrize(
    ("payload", "status", "param"),
    [
        (b"not json", 400, None),
        (b"[1, 2]", 400, None),
        (json.dumps({"messages": MESSAGES}).encode(), 400, "model"),
        (json.dumps({"model": "m"}).encode(), 400, "messages"),
        (json.dumps({"model": "m", "messages": []}).encode(), 400, "messages"),
    ],
)
async def test_bad_requests_get_openai_style_400(
    start_mock: StartMock,
    session: aiohttp.ClientSession,
    payload: bytes,
    status: int,
    param: str | None,
) -> None:
    server = await start_mock()
    async with session.post(server.url + "/v1/chat/completions", data=payload) as r:
        assert r.status == status
        error = (await r.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert (await stats(session, server))["requests_by_status"] == {"400": 1}


async def test_stream_events(start_mock: StartMock, session: aiohttp.ClientSession) -> None:
    server = await start_mock(output_tokens=5, stream={"tokens_per_chunk": 2})
    async with session.post(
        server.url + "/v1/chat/completions",
        json=chat_body(stream=True, stream_options={"include_usage": True}),
    ) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/event-stream"
        events = await read_events(r)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["id"] for c in chunks} == {"chatcmpl-mock1"}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["model"] for c in chunks} == {"gpt-test"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    texts = [c["choices"][0]["delta"]["content"] for c in chunks[1:4]]
    assert texts == [" harbor bench", " token wave", " anchor"]  # 5 tokens, 2 per chunk
    assert chunks[4]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert chunks[5]["choices"] == []
    assert chunks[5]["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}
    assert len(chunks) == 6


async def test_stream_without_usage_option_has_no_usage_chunk(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock(output_tokens=3)
    async with session.post(server.url + "/v1/chat/completions", json=chat_body(stream=True)) as r:
        events = await read_events(r)
    assert events[-1] == "[DONE]"
    assert all("usage" not in json.loads(e) for e in events[:-1])
    assert len(events) == 1 + 3 + 1 + 1  # role, 3 tokens, finish, DONE


# --- counters ------------------------------------------------------------------------------


async def test_counters_reconcile_with_the_client(start_mock: StartMock) -> None:
    server = await start_mock(output_tokens=4)
    received = 0
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as client:
        for _ in range(10):
            async with client.post(server.url + "/v1/chat/completions", json=chat_body()) as r:
                received += len(await r.read())
        async with client.post(server.url + "/v1/chat/completions", data=b"{") as r:
            received += len(await r.read())
        snap = await stats(client, server)
    assert snap["requests_total"] == 11
    assert snap["requests_by_status"] == {"200": 10, "400": 1}
    assert snap["connections_accepted"] == 1  # one keep-alive connection, /stats included
    assert snap["connections_open"] == 1
    assert snap["in_flight"] == 0
    assert snap["max_in_flight"] == 1
    assert snap["bytes_sent"] == received
    assert snap["streams_total"] == 0
    assert snap["started_at"] <= time.time()
    assert snap["seed"] == 0


async def test_max_in_flight_and_reset(start_mock: StartMock) -> None:
    server = await start_mock(latency="300ms")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as client:
        await asyncio.gather(*(post_chat(client, server) for _ in range(5)))
        snap = await stats(client, server)
        assert snap["max_in_flight"] == 5
        assert snap["connections_accepted"] == 5
        assert snap["in_flight"] == 0
        async with client.post(server.url + "/stats/reset") as r:
            fresh = await r.json()
    assert fresh["requests_total"] == 0
    assert fresh["requests_by_status"] == {}
    assert fresh["connections_accepted"] == 0
    assert fresh["max_in_flight"] == 0
    assert fresh["bytes_sent"] == 0
    assert fresh["reset_at"] >= snap["reset_at"]


async def test_fixed_latency_is_applied(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    """One timed check, with a tolerance wide enough for a noisy shared machine."""
    server = await start_mock(latency="200ms")
    await post_chat(session, server)  # connection set up outside the timed part
    started = time.perf_counter()
    await post_chat(session, server)
    elapsed_s = time.perf_counter() - started
    assert 0.19 <= elapsed_s < 2.0


# --- faults --------------------------------------------------------------------------------


async def test_error_rate_follows_the_seeded_draws(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock(
        faults={"error_rate": 0.3, "error_status": 503}, seed=42, output_tokens=2
    )
    statuses = [(await post_chat(session, server))[0] for _ in range(200)]
    # Fixed latency and length draw nothing: the only draws are the fault draws.
    rng = random.Random(42)
    expected = [503 if rng.random() < 0.3 else 200 for _ in range(200)]
    assert statuses == expected
    snap = await stats(session, server)
    assert snap["faults"]["error"] == expected.count(503)
    assert snap["requests_by_status"] == {"200": expected.count(200), "503": expected.count(503)}


async def test_error_429_carries_retry_after(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock(
        faults={"error_rate": 1.0, "error_status": 429, "retry_after": "1500ms"}
    )
    status, body, headers = await post_chat(session, server)
    assert status == 429
    assert headers["Retry-After"] == "2"  # whole seconds, rounded up
    assert headers["retry-after-ms"] == "1500"
    assert body["error"]["type"] == "rate_limit_error"


async def test_error_500_has_no_retry_after(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock(faults={"error_rate": 1.0})
    status, body, headers = await post_chat(session, server)
    assert status == 500
    assert "Retry-After" not in headers
    assert body["error"]["code"] == "mock_injected_error"


async def test_hang_lasts_until_the_client_gives_up(start_mock: StartMock) -> None:
    server = await start_mock(faults={"hang_rate": 1.0})
    timeout = aiohttp.ClientTimeout(total=0.3)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        with pytest.raises(asyncio.TimeoutError):
            await post_chat(client, server)
    await wait_until_idle(server)  # the handler ended when the client closed the connection
    state = server.app[STATE_KEY].stats
    assert state.faults["hang"] == 1
    assert state.requests_by_status == {}


async def test_reset_drops_the_connection(start_mock: StartMock) -> None:
    server = await start_mock(faults={"reset_rate": 1.0})
    async with aiohttp.ClientSession() as client:
        with pytest.raises(aiohttp.ClientConnectionError):
            await post_chat(client, server)
        await wait_until_idle(server)
        snap = await stats(client, server)
    assert snap["faults"]["reset"] == 1
    assert snap["requests_total"] == 1
    assert snap["requests_by_status"] == {}


async def test_stream_break_cuts_the_stream_half_way(start_mock: StartMock) -> None:
    server = await start_mock(output_tokens=8, faults={"stream_break_rate": 1.0})
    received = b""
    async with aiohttp.ClientSession() as client:
        with pytest.raises(aiohttp.ClientPayloadError):
            async with client.post(
                server.url + "/v1/chat/completions", json=chat_body(stream=True)
            ) as r:
                assert r.status == 200
                async for data in r.content.iter_any():
                    received += data
        await wait_until_idle(server)
        snap = await stats(client, server)
    assert b"[DONE]" not in received
    assert received.count(b'"content":" ') == 4  # chunks 0..3 of 8 were sent
    assert snap["faults"]["stream_break"] == 1


async def test_stream_break_does_not_touch_plain_requests(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock(faults={"stream_break_rate": 1.0})
    status, _, _ = await post_chat(session, server)
    assert status == 200


async def test_stream_error_event(start_mock: StartMock, session: aiohttp.ClientSession) -> None:
    server = await start_mock(output_tokens=6, faults={"stream_error_rate": 1.0})
    async with session.post(server.url + "/v1/chat/completions", json=chat_body(stream=True)) as r:
        events = await read_events(r)
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "mock_stream_error"
    assert len(events) == 1 + 3 + 1  # role, three of six content chunks, the error event
    assert (await stats(session, server))["faults"]["stream_error"] == 1


# --- stalls --------------------------------------------------------------------------------


async def test_stall_window_holds_requests_until_it_ends(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock(faults={"stalls": [{"at": "0s", "duration": "600ms"}]})
    started_mono = server.app[STATE_KEY].started_mono
    status, _, _ = await post_chat(session, server)
    answered_after_s = time.monotonic() - started_mono
    assert status == 200
    assert answered_after_s >= 0.59
    snap = await stats(session, server)
    assert snap["stalled_requests"] == 1
    await post_chat(session, server)  # after the window: not held
    assert (await stats(session, server))["stalled_requests"] == 1


async def test_stall_window_in_the_future_does_not_hold(
    start_mock: StartMock, session: aiohttp.ClientSession
) -> None:
    server = await start_mock(faults={"stalls": [{"at": "1h", "duration": "1s"}]})
    await post_chat(session, server)
    assert (await stats(session, server))["stalled_requests"] == 0
