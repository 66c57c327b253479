"""MockServer: the server in a separate process, used by the official openai SDK."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap

import openai
import psutil
import pytest

from harborbench.errors import TargetUnreachableError
from harborbench.mockserver import MockServer, MockSettings

MESSAGES = [{"role": "user", "content": "Hello"}]


def test_runs_in_another_process_and_stops(mock_server: MockServer) -> None:
    assert mock_server.pid != os.getpid()
    assert mock_server.url.startswith("http://127.0.0.1:")
    assert mock_server.base_url == mock_server.url + "/v1"
    assert mock_server.stats()["pid"] == mock_server.pid


def test_openai_sdk_plain_call(mock_server: MockServer) -> None:
    mock_server.reset_stats()
    with openai.OpenAI(base_url=mock_server.base_url, api_key="test", max_retries=0) as client:
        response = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert response.model == "gpt-4o-mini"
    assert response.choices[0].finish_reason == "stop"
    content = response.choices[0].message.content
    assert content is not None
    assert response.usage is not None
    assert response.usage.completion_tokens == len(content.split())
    assert mock_server.stats()["requests_by_status"] == {"200": 1}


def test_openai_sdk_streaming_call(mock_server: MockServer) -> None:
    mock_server.reset_stats()
    with openai.OpenAI(base_url=mock_server.base_url, api_key="test", max_retries=0) as client:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    usage = chunks[-1].usage
    assert finish == ["stop"]
    assert usage is not None
    assert usage.completion_tokens == len(text.split())
    assert mock_server.stats()["streams_total"] == 1


def test_openai_sdk_sees_injected_faults() -> None:
    settings = MockSettings.model_validate(
        {"faults": {"error_rate": 1.0, "error_status": 429, "retry_after": "1s"}}
    )
    with (
        MockServer(settings) as server,
        openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as client,
        pytest.raises(openai.RateLimitError),
    ):
        client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    stream_error = MockSettings.model_validate({"faults": {"stream_error_rate": 1.0}})
    with (
        MockServer(stream_error) as server,
        openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0) as client,
        pytest.raises(openai.APIError, match="injected stream error"),
    ):
        list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))  # type: ignore[arg-type]


def test_settings_reach_the_child() -> None:
    settings = MockSettings.model_validate({"seed": 99, "output_tokens": 3})
    with MockServer(settings) as server:
        assert server.stats()["seed"] == 99
        with openai.OpenAI(base_url=server.base_url, api_key="test") as client:
            response = client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
        assert response.usage is not None
        assert response.usage.completion_tokens == 3


def test_stop_leaves_no_process() -> None:
    server = MockServer()
    with server:
        pid = server.pid
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(RuntimeError):
        _ = server.url


async def test_async_context_manager() -> None:
    async with MockServer() as server:
        pid = server.pid
        assert server.stats()["requests_total"] == 0
    assert not psutil.pid_exists(pid)


def test_startup_failure_raises_with_stderr_tail() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(TargetUnreachableError) as info:
            MockServer(port=port).start()
    assert "exited with code 2" in str(info.value)
    assert "cannot bind" in str(info.value)
    assert TargetUnreachableError.exit_code == 4


def test_no_orphan_when_the_parent_is_killed() -> None:
    """A parent killed with SIGKILL cannot clean up; the child sees stdin EOF and exits."""
    parent_code = textwrap.dedent(
        """
        import sys, time
        from harborbench.mockserver import MockServer
        server = MockServer().start()
        print(server.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        child = psutil.Process(child_pid)
        assert child.is_running()
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    child.wait(timeout=20)  # raises psutil.TimeoutExpired if the child stays
    assert not child.is_running()
