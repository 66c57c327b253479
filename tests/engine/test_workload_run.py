"""A whole run against a recording server (issue 17): no two request bodies are identical,
extra_body reaches every body, headers reach the server and their values never the result."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from harborbench.engine.runner import arun
from harborbench.profile import load_profile_dict
from harborbench.report.files import summary_rows

SECRET = "s3cr3t-token-value-never-in-reports"
LITERAL = "literal-header-value"


@pytest.fixture
async def recorder_server() -> AsyncIterator[tuple[str, list[bytes], list[dict[str, str]]]]:
    """An OpenAI-shaped server on 127.0.0.1 port 0 that keeps every body and header set."""
    bodies: list[bytes] = []
    headers: list[dict[str, str]] = []

    async def chat(request: web.Request) -> web.Response:
        raw = await request.read()
        bodies.append(raw)
        headers.append(dict(request.headers))
        n = json.loads(raw)["max_tokens"]
        return web.json_response(
            {
                "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n},
            }
        )  # fmt: skip

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/v1", bodies, headers
    await runner.cleanup()


async def test_a_run_sends_unique_bodies_and_keeps_header_values_out_of_the_result(
    recorder_server: tuple[str, list[bytes], list[dict[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base_url, bodies, headers = recorder_server
    monkeypatch.setenv("HB_TEST_TOKEN", SECRET)
    profile = load_profile_dict(
        {
            "name": "unique",
            "target": {"base_url": base_url},
            "request": {
                "prompt_tokens": {"distribution": "uniform", "low": 10, "high": 50},
                "max_tokens": {"distribution": "uniform", "low": 1, "high": 8},
                "extra_body": {"temperature": 0.25},
                "headers": {"X-Token": {"env": "HB_TEST_TOKEN"}, "X-Plain": LITERAL},
            },
            "load": {"concurrency": 4},
            "warmup": "200ms",
            "duration": "1s",
        }
    )
    result = await arun(profile)
    assert len(bodies) > 20
    assert len(set(bodies)) == len(bodies)  # no two bodies of the run identical
    assert all(json.loads(b)["temperature"] == 0.25 for b in bodies)
    assert all(h.get("X-Token") == SECRET and h.get("X-Plain") == LITERAL for h in headers)
    stored = result.model_dump_json()
    assert SECRET not in stored and LITERAL not in stored
    assert SECRET not in json.dumps(summary_rows(result))
    assert result.profile["request"]["headers"] == {
        "X-Token": {"env": "HB_TEST_TOKEN"},
        "X-Plain": "<redacted>",
    }
    total = result.total
    assert total is not None and total.tokens is not None
    # Token figures are the server's usage: 7 prompt tokens each, completion = max_tokens sent.
    assert total.tokens.with_usage == total.successes
    assert total.tokens.prompt_tokens == 7 * total.successes
    assert 1 * total.successes <= total.tokens.completion_tokens <= 8 * total.successes


async def test_a_header_from_an_unset_variable_is_bad_input(
    recorder_server: tuple[str, list[bytes], list[dict[str, str]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harborbench.errors import ProfileError

    base_url, bodies, _ = recorder_server
    monkeypatch.delenv("HB_TEST_UNSET", raising=False)
    profile = load_profile_dict(
        {
            "name": "h",
            "target": {"base_url": base_url},
            "request": {"headers": {"X-Token": {"env": "HB_TEST_UNSET"}}},
            "load": {"concurrency": 1},
            "duration": "1s",
        }
    )
    with pytest.raises(ProfileError, match="HB_TEST_UNSET"):
        await arun(profile)
    assert bodies == []


def test_headers_and_extra_body_that_would_break_the_request_are_refused() -> None:
    from harborbench.errors import ProfileError

    base = {"name": "h", "load": {"concurrency": 1}, "duration": "1s"}
    for request, words in (
        ({"headers": {"Authorization": "Bearer x"}}, "target.api_key_env"),
        ({"headers": {"bad header": "x"}}, "not a valid HTTP header name"),
        ({"extra_body": {"model": "x"}}, "request.model"),
        ({"extra_body": {"max_tokens": 3}}, "request.max_tokens"),
    ):
        with pytest.raises(ProfileError, match=words) as info:
            load_profile_dict({**base, "request": request})
        assert "Bearer" not in str(info.value)
