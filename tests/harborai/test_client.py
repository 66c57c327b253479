"""The client against a real local server, in both modes: content, limits, retries, streams,
rollback switches, routing, lifecycle."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from harborbench.harborai import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ChatCompletion,
    ClientClosedError,
    ConfigError,
    HarborAIError,
    StreamError,
    UnknownModelError,
    create_fast_client,
)
from harborbench.harborai.config import DISABLE_ENV_VAR
from harborbench.harborai.core.optimizations.lockfree_plugin_manager import (
    LockedPluginRegistry,
    LockFreePluginManager,
)
from harborbench.harborai.core.optimizations.optimized_connection_pool import (
    BasicConnectionPool,
    OptimizedConnectionPool,
)

from .conftest import FixtureServer

MSGS = [{"role": "user", "content": "hello there"}]
OPTIMIZED: dict[str, Any] = {}
TRADITIONAL: dict[str, Any] = {"concurrency_optimization": {"enabled": False}}
NO_PROCESSOR: dict[str, Any] = {"concurrency_optimization": {"use_async_request_processor": False}}
MODES = pytest.mark.parametrize(
    "mode", [OPTIMIZED, TRADITIONAL, NO_PROCESSOR], ids=["optimized", "traditional", "no-proc"]
)


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DISABLE_ENV_VAR, raising=False)


def _content(reply: ChatCompletion) -> tuple[str | None, str | None, int, int, int]:
    usage = reply.usage
    assert usage is not None
    return (
        reply.choices[0].message.content,
        reply.choices[0].finish_reason,
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.total_tokens,
    )


EXPECTED = ("echo: hello there", "stop", 2, 3, 5)


def test_sync_create_same_content_in_both_modes(server: FixtureServer) -> None:
    replies = []
    for mode in (OPTIMIZED, TRADITIONAL):
        with create_fast_client(mode, base_url=server.url, api_key="sk-test") as client:
            reply = client.chat.completions.create(
                model="mock-1", messages=MSGS, max_tokens=7, temperature=0.0
            )
            replies.append(reply)
    assert [_content(r) for r in replies] == [EXPECTED, EXPECTED]
    assert [r.model for r in replies] == ["mock-1", "mock-1"]
    assert server.bodies[0] == {
        "model": "mock-1",
        "messages": MSGS,
        "max_tokens": 7,
        "temperature": 0.0,
    }
    assert server.bodies[1] == server.bodies[0]
    assert server.auth_headers == ["Bearer sk-test", "Bearer sk-test"]


@MODES
async def test_async_create_content(server: FixtureServer, mode: dict[str, Any]) -> None:
    async with create_fast_client(mode, base_url=server.url) as client:
        replies = await asyncio.gather(
            *(client.chat.completions.acreate(model="m", messages=MSGS) for _ in range(20))
        )
        alias = await client.chat.completions.create_async(model="m", messages=MSGS)
    assert {_content(r) for r in [*replies, alias]} == {EXPECTED}
    assert server.requests == 21
    assert server.auth_headers[0] is None


@MODES
async def test_async_stream(server: FixtureServer, mode: dict[str, Any]) -> None:
    async with create_fast_client(mode, base_url=server.url) as client:
        stream = await client.chat.completions.acreate(
            model="m", messages=MSGS, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and usage.total_tokens == 5
    assert server.bodies[0]["stream"] is True


@pytest.mark.parametrize("mode", [OPTIMIZED, TRADITIONAL], ids=["optimized", "traditional"])
def test_sync_stream(server: FixtureServer, mode: dict[str, Any]) -> None:
    with create_fast_client(mode, base_url=server.url) as client:
        chunks = list(client.chat.completions.create(model="m", messages=MSGS, stream=True))
        # the connection is reusable after a complete stream
        client.chat.completions.create(model="m", messages=MSGS)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there"
    assert server.connections == 1


@pytest.mark.parametrize("mode", [OPTIMIZED, TRADITIONAL], ids=["optimized", "traditional"])
@pytest.mark.parametrize("fault", ["stream_error", "stream_cut"])
async def test_broken_stream_raises_stream_error(
    server: FixtureServer, mode: dict[str, Any], fault: str
) -> None:
    server.script({fault: True})
    async with create_fast_client(mode, base_url=server.url) as client:
        stream = await client.chat.completions.acreate(model="m", messages=MSGS, stream=True)
        received = []
        with pytest.raises(StreamError) as exc_info:
            async for chunk in stream:
                received.append(chunk)
        # the client is still usable afterwards
        reply = await client.chat.completions.acreate(model="m", messages=MSGS)
    assert len(received) == 2  # role chunk and the first word came before the fault
    expected = "error event" if fault == "stream_error" else "without 'data: [DONE]'"
    assert expected in str(exc_info.value)
    assert _content(reply) == EXPECTED


@MODES
async def test_in_flight_limit_holds(server: FixtureServer, mode: dict[str, Any]) -> None:
    server.delay_s = 0.02
    async with create_fast_client(mode, base_url=server.url, max_concurrent_requests=3) as c:
        await asyncio.gather(
            *(c.chat.completions.acreate(model="m", messages=MSGS) for _ in range(24))
        )
    assert server.requests == 24
    assert server.max_in_flight == 3


def test_in_flight_limit_holds_for_sync_callers_in_threads(server: FixtureServer) -> None:
    server.delay_s = 0.02
    with (
        create_fast_client(base_url=server.url, max_concurrent_requests=2) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        replies = list(
            pool.map(lambda _: client.chat.completions.create(model="m", messages=MSGS), range(16))
        )
    assert len(replies) == 16
    assert server.max_in_flight == 2


async def test_pool_reuses_connections(server: FixtureServer) -> None:
    async with create_fast_client(base_url=server.url, max_concurrent_requests=8) as client:
        for _ in range(5):
            await asyncio.gather(
                *(client.chat.completions.acreate(model="m", messages=MSGS) for _ in range(40))
            )
        stats = client.get_statistics()["connection_pool"]
    assert server.requests == 200
    assert server.connections <= 8
    assert stats["connections_created"] == server.connections
    assert stats["connections_created"] + stats["connections_reused"] == 200


async def test_429_is_retried_after_retry_after(server: FixtureServer) -> None:
    server.script({"status": 429, "headers": {"Retry-After": "1"}})
    async with create_fast_client(base_url=server.url) as client:
        reply = await client.chat.completions.acreate(model="m", messages=MSGS)
        stats = client.get_statistics()["request_processor"]
    assert _content(reply) == EXPECTED
    assert server.requests == 2
    gap_s = server.arrivals_s[1] - server.arrivals_s[0]
    assert gap_s >= 0.95  # never earlier than the server asked (upper side: machine noise)
    assert gap_s < 10.0
    assert (stats["retries"], stats["completed"], stats["failed"]) == (1, 1, 0)


async def test_503_retried_with_backoff_then_gives_up(server: FixtureServer) -> None:
    server.script(*({"status": 503} for _ in range(3)))
    retry = {"max_retries": 2, "base_delay_s": 0.01, "max_delay_s": 0.05}
    async with create_fast_client(
        base_url=server.url, request_processor={"retry": retry}
    ) as client:
        with pytest.raises(APIStatusError) as exc_info:
            await client.chat.completions.acreate(model="m", messages=MSGS)
        stats = client.get_statistics()["request_processor"]
    assert exc_info.value.status_code == 503
    assert server.requests == 3
    assert (stats["retries"], stats["failed"]) == (2, 1)


@pytest.mark.parametrize("status", [400, 500])
@MODES
async def test_non_retryable_status_is_not_retried(
    server: FixtureServer, mode: dict[str, Any], status: int
) -> None:
    server.script({"status": status, "body": '{"error": {"message": "bad request"}}'})
    async with create_fast_client(mode, base_url=server.url) as client:
        with pytest.raises(APIStatusError) as exc_info:
            await client.chat.completions.acreate(model="m", messages=MSGS)
    assert exc_info.value.status_code == status
    assert "bad request" in exc_info.value.body
    assert server.requests == 1


async def test_retry_after_longer_than_max_delay_is_honoured_within_the_deadline(
    server: FixtureServer,
) -> None:
    # Before: a Retry-After above max_delay_s (here 0.1 s) meant no retry at all.
    server.script({"status": 429, "headers": {"Retry-After": "1"}})
    retry = {"max_delay_s": 0.1, "base_delay_s": 0.01}
    async with create_fast_client(
        base_url=server.url, timeout_s=5, request_processor={"retry": retry}
    ) as client:
        reply = await client.chat.completions.acreate(model="m", messages=MSGS)
        stats = client.get_statistics()["request_processor"]
    assert _content(reply) == EXPECTED
    assert server.requests == 2 and stats["retries"] == 1
    assert server.arrivals_s[1] - server.arrivals_s[0] >= 0.95


async def test_retry_after_beyond_the_deadline_is_not_retried(server: FixtureServer) -> None:
    server.script({"status": 429, "headers": {"Retry-After": "30"}})
    async with create_fast_client(base_url=server.url, timeout_s=2) as client:
        with pytest.raises(APIStatusError) as exc_info:
            await client.chat.completions.acreate(model="m", messages=MSGS)
    assert (exc_info.value.status_code, exc_info.value.retry_after_s) == (429, 30.0)
    assert server.requests == 1


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@MODES
async def test_connection_refused_is_api_connection_error(mode: dict[str, Any]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    no_retry = {"request_processor": {"retry": {"max_retries": 0}}}
    async with create_fast_client({**mode, **no_retry}, base_url=url) as client:
        with pytest.raises(APIConnectionError):
            await client.chat.completions.acreate(model="m", messages=MSGS)


@MODES
async def test_timeout_is_api_timeout_error(server: FixtureServer, mode: dict[str, Any]) -> None:
    server.script({"delay_s": 1.0})
    no_retry = {"request_processor": {"retry": {"max_retries": 0}}}
    async with create_fast_client({**mode, **no_retry}, base_url=server.url, timeout_s=0.2) as c:
        with pytest.raises(APITimeoutError):
            await c.chat.completions.acreate(model="m", messages=MSGS)


@MODES
async def test_timeout_is_a_deadline_for_the_whole_call(
    server: FixtureServer, mode: dict[str, Any]
) -> None:
    # Every read is short (16 bytes every 0.1 s) but the answer takes about 2 s. Before: the
    # traditional mode bounded each read only and succeeded; the optimized mode timed out, then
    # retried with a fresh timeout (and succeeded on the retry).
    server.script({"drip_s": 0.1})
    async with create_fast_client(mode, base_url=server.url, timeout_s=0.5) as client:
        with pytest.raises(APITimeoutError):
            await client.chat.completions.acreate(model="m", messages=MSGS)
        stats = client.get_statistics()
    assert server.requests == 1  # the attempt used the whole deadline: no time for a retry
    if "request_processor" in stats:
        assert stats["request_processor"]["retries"] == 0
    if "concurrency_manager" in stats:
        assert stats["concurrency_manager"]["timeouts"] == 1


@MODES
async def test_timeout_is_a_deadline_for_a_whole_stream(
    server: FixtureServer, mode: dict[str, Any]
) -> None:
    # One word, then a keepalive comment every 0.1 s, forever: every read is short. Before: the
    # stream's timeout bounded each read only, so the call never ended.
    server.script({"keepalive_s": 0.1})
    async with create_fast_client(mode, base_url=server.url, timeout_s=0.5) as client:
        texts: list[str | None] = []

        async def read() -> None:
            stream = await client.chat.completions.acreate(model="m", messages=MSGS, stream=True)
            async for chunk in stream:
                texts.append(chunk.choices[0].delta.content if chunk.choices else None)

        start = time.monotonic()
        with pytest.raises(APITimeoutError):
            await asyncio.wait_for(read(), 5.0)  # a TimeoutError here: the stream never ended
        elapsed = time.monotonic() - start
    assert texts == ["", "echo:"]  # the role chunk and the first word came before the deadline
    assert 0.45 <= elapsed < 3.0  # the deadline, not a read timeout (0.1 s gaps never trip it)
    assert server.requests == 1


@pytest.mark.timeout(15)  # before the fix the iteration never ended
@pytest.mark.parametrize("mode", [OPTIMIZED, TRADITIONAL], ids=["optimized", "traditional"])
def test_sync_stream_timeout_is_a_deadline_for_the_whole_stream(
    server: FixtureServer, mode: dict[str, Any]
) -> None:
    server.script({"keepalive_s": 0.1})
    with create_fast_client(mode, base_url=server.url, timeout_s=0.5) as client:
        stream = client.chat.completions.create(model="m", messages=MSGS, stream=True)
        with pytest.raises(APITimeoutError):
            for _ in stream:
                pass


@pytest.mark.parametrize("mode", [OPTIMIZED, TRADITIONAL], ids=["optimized", "traditional"])
def test_sync_timeout_is_a_deadline_for_the_whole_call(
    server: FixtureServer, mode: dict[str, Any]
) -> None:
    server.script({"drip_s": 0.1})
    with (
        create_fast_client(mode, base_url=server.url, timeout_s=0.5) as client,
        pytest.raises(APITimeoutError),
    ):
        client.chat.completions.create(model="m", messages=MSGS)
    assert server.requests == 1


@pytest.mark.parametrize("mode", [OPTIMIZED, NO_PROCESSOR], ids=["optimized", "no-proc"])
async def test_waiting_for_a_slot_counts_toward_the_deadline(
    server: FixtureServer, mode: dict[str, Any]
) -> None:
    # An open stream holds the only slot; the second call's deadline passes while it waits for
    # it, and it is never sent (before: it waited as long as the slot was held).
    async with create_fast_client(
        mode, base_url=server.url, timeout_s=0.3, max_concurrent_requests=1
    ) as client:
        stream = await client.chat.completions.acreate(model="m", messages=MSGS, stream=True)
        waiting = client.chat.completions.acreate(model="m", messages=MSGS)
        with pytest.raises(APITimeoutError, match=r"waiting|queue"):
            await asyncio.wait_for(waiting, 10)
        await stream.aclose()
    assert server.requests == 1


def test_traditional_request_waiting_past_its_deadline_for_a_thread_is_not_sent(
    server: FixtureServer,
) -> None:
    with create_fast_client(TRADITIONAL, base_url=server.url) as client:
        engine = client._traditional
        assert engine is not None
        spec = client._spec("m", MSGS, False, {})
        with pytest.raises(APITimeoutError, match="waited for a thread"):
            engine._send(spec, time.monotonic() - 0.001)
        assert engine._send(spec, time.monotonic() + 5.0).choices[0].message.content
    assert server.requests == 1


@pytest.mark.parametrize("mode", [OPTIMIZED, TRADITIONAL], ids=["optimized", "traditional"])
async def test_unknown_model_lists_known_models(
    server: FixtureServer, mode: dict[str, Any]
) -> None:
    providers = {
        "alpha": {"base_url": server.url, "models": ["a-1", "a-2"]},
        "beta": {"base_url": server.url, "models": ["b-1"]},
    }
    async with create_fast_client({**mode, "providers": providers}) as client:
        with pytest.raises(UnknownModelError) as exc_info:
            await client.chat.completions.acreate(model="gpt-x", messages=MSGS)
    assert str(exc_info.value) == "unknown model 'gpt-x'; known models: a-1, a-2, b-1"
    assert server.requests == 0


async def test_providers_route_by_model_and_default_catches_the_rest(
    server: FixtureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BETA_KEY", "sk-beta")
    config = {
        "base_url": server.url,
        "api_key": "sk-default",
        "providers": {
            "alpha": {"base_url": server.url, "models": ["a-1"], "api_key": "sk-alpha"},
            "beta": {"base_url": server.url, "models": ["b-1"], "api_key_env": "BETA_KEY"},
        },
    }
    async with create_fast_client(config) as client:
        for model in ("a-1", "b-1", "other"):
            await client.chat.completions.acreate(model=model, messages=MSGS)
    assert server.auth_headers == ["Bearer sk-alpha", "Bearer sk-beta", "Bearer sk-default"]


def test_lazy_loading_creates_plugins_on_first_use(server: FixtureServer) -> None:
    with create_fast_client(base_url=server.url) as client:
        before = client.optimization_status()["lazy_loading"]
        client.chat.completions.create(model="m", messages=MSGS)
        after = client.optimization_status()["lazy_loading"]
    assert before == {"enabled": True, "registered": ["default"], "loaded": []}
    assert after["loaded"] == ["default"]
    with create_fast_client(base_url=server.url, enable_lazy_loading=False) as eager:
        assert eager.optimization_status()["lazy_loading"]["loaded"] == ["default"]


def test_missing_api_key_env_fails_at_first_use_when_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    config = {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "NO_SUCH_KEY_VAR"}
    with pytest.raises(ConfigError, match="'NO_SUCH_KEY_VAR'"):
        create_fast_client(config, enable_lazy_loading=False)
    with create_fast_client(config) as client, pytest.raises(ConfigError, match="NO_SUCH_KEY"):
        client.chat.completions.create(model="m", messages=MSGS)


def _active(status: dict[str, Any]) -> dict[str, bool]:
    return {name: c["active"] for name, c in status["components"].items()}


ALL_ON = {
    "lockfree_plugin_manager": True,
    "optimized_connection_pool": True,
    "async_request_processor": True,
    "concurrency_manager": True,
}
ALL_OFF = dict.fromkeys(ALL_ON, False)


@pytest.mark.parametrize(
    ("config", "env", "mode", "active", "reason"),
    [
        ({}, None, "optimized", ALL_ON, "enabled (default)"),
        ({}, "true", "traditional", ALL_OFF, f"disabled by {DISABLE_ENV_VAR}"),
        (
            {"concurrency_optimization": {"force_traditional_mode": True}},
            None,
            "traditional",
            ALL_OFF,
            "concurrency_optimization.force_traditional_mode is true",
        ),
        (
            {"concurrency_optimization": {"enabled": False}},
            None,
            "traditional",
            ALL_OFF,
            "concurrency_optimization.enabled is false",
        ),
        ({"performance_mode": "basic"}, None, "traditional", ALL_OFF, "performance_mode"),
        (
            {"concurrency_optimization": {"use_lockfree_plugin_manager": False}},
            None,
            "optimized",
            {**ALL_ON, "lockfree_plugin_manager": False},
            "enabled (default)",
        ),
        (
            {"concurrency_optimization": {"use_optimized_connection_pool": False}},
            None,
            "optimized",
            {**ALL_ON, "optimized_connection_pool": False},
            "enabled (default)",
        ),
        (
            {"concurrency_optimization": {"use_async_request_processor": False}},
            None,
            "optimized",
            {**ALL_ON, "async_request_processor": False},
            "enabled (default)",
        ),
    ],
    ids=[
        "default",
        "env",
        "force",
        "disabled",
        "basic",
        "no-lockfree",
        "no-pool",
        "no-processor",
    ],
)
async def test_rollback_switches(
    server: FixtureServer,
    monkeypatch: pytest.MonkeyPatch,
    config: dict[str, Any],
    env: str | None,
    mode: str,
    active: dict[str, bool],
    reason: str,
) -> None:
    if env is not None:
        monkeypatch.setenv(DISABLE_ENV_VAR, env)
    async with create_fast_client(config, base_url=server.url) as client:
        status = client.optimization_status()
        reply = await client.chat.completions.acreate(model="m", messages=MSGS)
        stats = client.get_statistics()
        registry = client._registry
        manager = client._manager
    assert (status["mode"], _active(status)) == (mode, active)
    assert reason in status["mode_reason"]
    assert _content(reply) == EXPECTED
    # the switches change what really runs, not only what is reported
    expected_registry = (
        LockFreePluginManager if active["lockfree_plugin_manager"] else (LockedPluginRegistry)
    )
    assert type(registry) is expected_registry
    if mode == "traditional":
        assert manager is None and stats["traditional"]["requests"] == 1
        return
    assert manager is not None
    expected_pool = (
        OptimizedConnectionPool if active["optimized_connection_pool"] else BasicConnectionPool
    )
    assert type(manager.pool) is expected_pool
    assert (manager.processor is not None) == active["async_request_processor"]
    assert stats["concurrency_manager"]["requests"] == 1
    assert ("request_processor" in stats) == active["async_request_processor"]


def test_basic_mode_status_reports_the_basic_limits(server: FixtureServer) -> None:
    with create_fast_client({"performance_mode": "basic"}, base_url=server.url) as client:
        status = client.optimization_status()
        assert client.get_statistics()["traditional"]["threads"] == 10
    assert (status["max_concurrent_requests"], status["connection_pool_size"]) == (10, 5)


def test_memory_optimization_status_and_effect(server: FixtureServer) -> None:
    with create_fast_client(base_url=server.url) as client:
        a = client.chat.completions.create(model="shared-model", messages=MSGS)
        b = client.chat.completions.create(model="shared-model", messages=MSGS)
        status = client.optimization_status()["memory_optimization"]
    assert a.model is b.model  # one shared string instance
    assert status["enabled"] is True and status["interned_strings"] >= 3
    with create_fast_client(base_url=server.url, enable_memory_optimization=False) as plain:
        c = plain.chat.completions.create(model="shared-model", messages=MSGS)
        d = plain.chat.completions.create(model="shared-model", messages=MSGS)
        off = plain.optimization_status()["memory_optimization"]
    assert c.model == d.model and c.model is not d.model
    assert (off["enabled"], off["interned_strings"]) == (False, 0)


async def test_aclose_leaves_no_task_and_no_open_session(server: FixtureServer) -> None:
    client = create_fast_client(base_url=server.url)
    await client.chat.completions.acreate(model="m", messages=MSGS)
    stream = await client.chat.completions.acreate(model="m", messages=MSGS, stream=True)
    async for _ in stream:
        pass
    manager = client._manager
    assert manager is not None and isinstance(manager.pool, OptimizedConnectionPool)
    sessions = [entry.lease.session for entry in manager.pool._origins.values()]
    assert len(asyncio.all_tasks()) > 1  # the workers and the monitor were running
    await client.aclose()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    assert len(sessions) == 1 and all(s.closed for s in sessions)
    with pytest.raises(ClientClosedError):
        await client.chat.completions.acreate(model="m", messages=MSGS)


def test_close_stops_the_private_loop_thread(server: FixtureServer) -> None:
    client = create_fast_client(base_url=server.url)
    client.chat.completions.create(model="m", messages=MSGS)
    loop_thread = client._loop_thread
    assert loop_thread is not None and loop_thread.thread.is_alive()
    client.close()
    assert not loop_thread.thread.is_alive()
    assert loop_thread.loop.is_closed()
    assert not [t for t in threading.enumerate() if t.name == "harborai-loop"]
    with pytest.raises(ClientClosedError):
        client.chat.completions.create(model="m", messages=MSGS)


async def test_sync_create_inside_the_client_loop_is_refused(server: FixtureServer) -> None:
    async with create_fast_client(base_url=server.url) as client:
        await client.chat.completions.acreate(model="m", messages=MSGS)
        with pytest.raises(HarborAIError, match="acreate"):
            client.chat.completions.create(model="m", messages=MSGS)


def test_async_calls_from_another_loop_are_forwarded(server: FixtureServer) -> None:
    with create_fast_client(base_url=server.url, max_concurrent_requests=2) as client:
        client.chat.completions.create(model="m", messages=MSGS)  # binds the private loop

        async def other_loop() -> list[str]:
            replies = await asyncio.gather(
                *(client.chat.completions.acreate(model="m", messages=MSGS) for _ in range(4))
            )
            stream = await client.chat.completions.acreate(model="m", messages=MSGS, stream=True)
            parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            return [r.choices[0].message.content or "" for r in replies] + ["".join(parts)]

        contents = asyncio.run(other_loop())
    assert contents == ["echo: hello there"] * 5


def test_a_request_spec_is_a_request_spec_named_tuple() -> None:
    from harborbench.harborai.core.provider import RequestSpec, build_body

    with create_fast_client(base_url="http://127.0.0.1:9/v1", api_key="k") as client:
        spec = client._spec("m", [{"role": "user", "content": "hi"}], True, {"max_tokens": 3})
        assert type(spec) is RequestSpec
        assert spec.body == build_body(
            "m", [{"role": "user", "content": "hi"}], True, {"max_tokens": 3}
        )
        assert spec.stream is True and spec.plugin.chat_url.endswith("/chat/completions")
