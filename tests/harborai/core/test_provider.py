"""Provider plugins (URLs, headers, key from the environment) and request bodies."""

from __future__ import annotations

import json

import pytest

from harborbench.harborai.config import Target
from harborbench.harborai.core.provider import build_body, make_plugin
from harborbench.harborai.errors import ConfigError


def provider(**kw: object) -> Target:
    base: dict[str, object] = {
        "name": "p",
        "base_url": "https://api.example.com/v1",
        "api_key": None,
        "api_key_env": None,
        "models": ("m",),
    }
    base.update(kw)
    return Target(**base)  # type: ignore[arg-type]


def test_plugin_urls_and_headers_never_show_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVIDER_KEY", "sk-from-env")
    plugin = make_plugin(provider(api_key_env="PROVIDER_KEY"))
    assert plugin.chat_url == "https://api.example.com/v1/chat/completions"
    assert plugin.origin == "https://api.example.com:443"
    assert plugin.json_headers["Authorization"] == "Bearer sk-from-env"
    assert plugin.stream_headers["Accept"] == "text/event-stream"
    assert "sk-from-env" not in repr(plugin) and "sk-from-env" not in str(plugin)


def test_plugin_errors_name_the_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ABSENT_KEY", raising=False)
    with pytest.raises(ConfigError, match="'ABSENT_KEY' \\(api_key_env\\) is not set"):
        make_plugin(provider(api_key_env="ABSENT_KEY"))
    with pytest.raises(ConfigError, match="is not an http\\(s\\) URL"):
        make_plugin(provider(base_url="ftp://x/v1"))
    assert "Authorization" not in make_plugin(provider()).json_headers


def test_build_body_passes_params_through() -> None:
    body = build_body(
        "m", [{"role": "user", "content": "héllo"}], True, {"max_tokens": 3, "temperature": 0.5}
    )
    assert json.loads(body) == {
        "model": "m",
        "messages": [{"role": "user", "content": "héllo"}],
        "stream": True,
        "max_tokens": 3,
        "temperature": 0.5,
    }
    assert "héllo".encode() in body
    assert "stream" not in json.loads(build_body("m", [], False, {}))


def test_build_body_is_compact_json_with_non_string_keys_as_strings() -> None:
    # The codec is orjson (issue 15): the same JSON as json.dumps(..., separators=(",", ":"),
    # ensure_ascii=False), including integer keys written as strings.
    params = {"logit_bias": {50256: -100}, "stop": ("a", "b")}
    body = build_body("m", [{"role": "user", "content": "日本"}], False, params)
    expected = json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": "日本"}], **params},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    assert body == expected


def test_build_body_refuses_what_json_cannot_encode() -> None:
    with pytest.raises(TypeError):
        build_body("m", [{"role": "user", "content": object()}], False, {})
