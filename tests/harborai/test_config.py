"""Config validation (unknown keys named with a hint) and resolution (precedence, reasons)."""

from __future__ import annotations

from typing import Any

import pytest

from harborbench.harborai.config import DISABLE_ENV_VAR, resolve_config, validate_config
from harborbench.harborai.errors import ConfigError

URL = "http://127.0.0.1:9/v1"


def test_unknown_nested_key_is_named_with_hint() -> None:
    with pytest.raises(ConfigError) as exc_info:
        validate_config({"concurrency_optimization": {"use_lockfree_plugn_manager": True}})
    message = str(exc_info.value)
    assert "'concurrency_optimization.use_lockfree_plugn_manager'" in message
    assert "did you mean 'use_lockfree_plugin_manager'?" in message


def test_unknown_top_level_key_without_close_match_lists_known_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'zzz'; known keys: api_key, "):
        validate_config({"zzz": 1})


def test_unknown_key_inside_provider_and_retry() -> None:
    with pytest.raises(ConfigError, match=r"'providers\.p1\.model'.*did you mean 'models'"):
        validate_config({"providers": {"p1": {"base_url": URL, "model": ["m"]}}})
    with pytest.raises(ConfigError, match=r"'request_processor\.retry\.max_retry'"):
        validate_config({"request_processor": {"retry": {"max_retry": 1}}})


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"enable_lazy_loading": "yes"}, "'enable_lazy_loading' must be true or false"),
        ({"max_concurrent_requests": True}, "'max_concurrent_requests' must be a number"),
        ({"max_concurrent_requests": 0}, "must be >= 1"),
        ({"performance_mode": "fast"}, "must be one of optimized, basic"),
        ({"request_processor": {"rate_limit": {"rate_per_s": 5}}}, "needs both"),
        ({"providers": {"p": {"base_url": URL}}}, "needs both 'base_url' and 'models'"),
        ({"timeout_s": 0}, "'timeout_s' must be > 0"),
        ({"request_processor": {"rate_limit": {"rate_per_s": 0, "burst": 1}}}, "must be > 0"),
        ({"connection_pool": {"min_size": 9, "max_size": 3}}, "min_size (9) must not exceed"),
    ],
)
def test_bad_values_are_named(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as exc_info:
        resolve_config(config, base_url=URL, environ={})
    assert fragment in str(exc_info.value)


def test_validate_config_needs_no_target_but_resolve_does() -> None:
    validate_config({"performance_mode": "basic"})
    with pytest.raises(ConfigError, match="no target configured"):
        resolve_config({"performance_mode": "basic"}, environ={})


def test_defaults_and_basic_mode_limits() -> None:
    cfg = resolve_config(base_url=URL, environ={})
    assert (cfg.mode, cfg.max_concurrent_requests, cfg.connection_pool_size) == (
        "optimized",
        100,
        50,
    )
    assert cfg.timeout_s == 60.0
    assert cfg.processor.workers == 100 and cfg.processor.rate_limit is None
    assert cfg.processor.coalesce_identical is False and cfg.processor.max_batch_size == 1
    basic = resolve_config({"performance_mode": "basic"}, base_url=URL, environ={})
    assert (basic.mode, basic.max_concurrent_requests, basic.connection_pool_size) == (
        "traditional",
        10,
        5,
    )
    explicit = resolve_config(
        {"performance_mode": "basic", "max_concurrent_requests": 7}, base_url=URL, environ={}
    )
    assert explicit.max_concurrent_requests == 7


def _flags(**flags: bool) -> dict[str, Any]:
    return {"concurrency_optimization": flags}


@pytest.mark.parametrize(
    ("config", "env", "reason"),
    [
        # the environment variable beats every config key
        (_flags(enabled=True, force_traditional_mode=False), "true", DISABLE_ENV_VAR),
        (_flags(force_traditional_mode=True), "TRUE", DISABLE_ENV_VAR),
        # force_traditional_mode beats enabled
        (_flags(enabled=False, force_traditional_mode=True), None, "force_traditional_mode"),
        (_flags(enabled=True, force_traditional_mode=True), None, "force_traditional_mode"),
        # enabled beats performance_mode
        ({**_flags(enabled=False), "performance_mode": "basic"}, None, "enabled is false"),
        ({"performance_mode": "basic"}, None, "performance_mode is 'basic'"),
    ],
)
def test_mode_precedence(config: dict[str, Any], env: str | None, reason: str) -> None:
    environ = {} if env is None else {DISABLE_ENV_VAR: env}
    cfg = resolve_config(config, base_url=URL, environ=environ)
    assert cfg.mode == "traditional"
    assert reason in cfg.mode_reason
    for decision in (
        cfg.plugin_manager,
        cfg.connection_pool,
        cfg.request_processor,
        cfg.concurrency_manager,
    ):
        assert decision.active is False
        assert decision.reason == f"traditional mode: {cfg.mode_reason}"


def test_env_var_false_keeps_optimized_and_bad_value_is_an_error() -> None:
    cfg = resolve_config(base_url=URL, environ={DISABLE_ENV_VAR: "false"})
    assert cfg.mode == "optimized"
    with pytest.raises(ConfigError, match=DISABLE_ENV_VAR):
        resolve_config(base_url=URL, environ={DISABLE_ENV_VAR: "maybe"})


@pytest.mark.parametrize(
    "flag",
    ["use_lockfree_plugin_manager", "use_optimized_connection_pool", "use_async_request_processor"],
)
def test_each_component_flag_switches_only_its_component(flag: str) -> None:
    cfg = resolve_config(_flags(**{flag: False}), base_url=URL, environ={})
    assert cfg.mode == "optimized"
    decisions = {
        "use_lockfree_plugin_manager": cfg.plugin_manager,
        "use_optimized_connection_pool": cfg.connection_pool,
        "use_async_request_processor": cfg.request_processor,
    }
    for name, decision in decisions.items():
        if name == flag:
            assert decision == type(decision)(False, f"concurrency_optimization.{flag} is false")
        else:
            assert decision.active is True
    assert cfg.concurrency_manager.active is True


def test_overrides_deep_merge_and_api_key_hidden_from_repr() -> None:
    cfg = resolve_config(
        {"request_processor": {"workers": 3, "retry": {"max_retries": 5}}},
        base_url=URL,
        api_key="sk-secret-123",
        request_processor={"retry": {"base_delay_s": 0.5}},
        environ={},
    )
    assert cfg.processor.workers == 3
    assert (cfg.processor.retry.max_retries, cfg.processor.retry.base_delay_s) == (5, 0.5)
    assert cfg.providers[0].api_key == "sk-secret-123"
    assert "sk-secret-123" not in repr(cfg)


def test_providers_fall_back_to_top_level_key() -> None:
    cfg = resolve_config(
        {
            "api_key_env": "SHARED_KEY",
            "providers": {
                "a": {"base_url": "http://a.example/v1/", "models": ["m1"]},
                "b": {"base_url": "http://b.example/v1", "models": ["m2"], "api_key": "kb"},
            },
        },
        environ={},
    )
    by_name = {p.name: p for p in cfg.providers}
    assert set(by_name) == {"a", "b"}
    assert by_name["a"].base_url == "http://a.example/v1"
    assert (by_name["a"].api_key_env, by_name["a"].api_key) == ("SHARED_KEY", None)
    assert by_name["b"].api_key == "kb"


def test_the_pool_limit_does_not_shrink_below_the_configured_pool_size_by_default() -> None:
    # Shrinking to the idle level made a later burst wait for connections (burst profile:
    # p95 172 ms with a floor of 4, 70 ms with the pool size as the floor).
    cfg = resolve_config({"base_url": "http://127.0.0.1:1/v1", "connection_pool_size": 30})
    assert cfg.pool.min_size == 30
    assert cfg.pool.initial_size == 30
    explicit = resolve_config(
        {"base_url": "http://127.0.0.1:1/v1", "connection_pool": {"min_size": 2}}
    )
    assert explicit.pool.min_size == 2
