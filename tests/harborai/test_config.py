"""Config validation (unknown keys named with a hint) and resolution (precedence, reasons)."""

from __future__ import annotations

from typing import Any

import pytest

from harborbench.harborai.config import (
    DISABLE_ENV_VAR,
    MAX_LIMIT,
    ClientConfig,
    parse_config,
    resolve_config,
    validate_config,
)
from harborbench.harborai.errors import ConfigError

URL = "http://127.0.0.1:9/v1"


def test_unknown_nested_key_is_named_by_its_dotted_path() -> None:
    with pytest.raises(ConfigError) as exc_info:
        validate_config({"concurrency_optimization": {"use_lockfree_plugn_manager": True}})
    message = str(exc_info.value)
    assert message == (
        "config key 'concurrency_optimization.use_lockfree_plugn_manager': "
        "Extra inputs are not permitted"
    )


def test_unknown_key_inside_provider_and_retry() -> None:
    with pytest.raises(ConfigError, match=r"'providers\.p1\.model': Extra inputs"):
        validate_config({"providers": {"p1": {"base_url": URL, "model": ["m"]}}})
    with pytest.raises(ConfigError, match=r"'request_processor\.retry\.max_retry': Extra"):
        validate_config({"request_processor": {"retry": {"max_retry": 1}}})


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"enable_lazy_loading": "yes"}, "'enable_lazy_loading': Input should be a valid boolean"),
        ({"max_concurrent_requests": True}, "'max_concurrent_requests': Input should be a valid"),
        ({"max_concurrent_requests": "5"}, "'max_concurrent_requests': Input should be a valid"),
        ({"max_concurrent_requests": 0}, "greater than or equal to 1"),
        ({"performance_mode": "fast"}, "Input should be 'optimized' or 'basic'"),
        ({"request_processor": {"rate_limit": {"rate_per_s": 5}}}, "rate_limit.burst': Field"),
        ({"providers": {"p": {"base_url": URL}}}, "'providers.p.models': Field required"),
        ({"timeout_s": 0}, "'timeout_s': Input should be greater than 0"),
        ({"timeout_s": float("nan")}, "'timeout_s': Input should be a finite number"),
        ({"request_processor": {"rate_limit": {"rate_per_s": 0, "burst": 1}}}, "than 0"),
        (
            {"connection_pool": {"min_size": 9, "max_size": 3}},
            "'connection_pool.min_size': connection_pool.min_size (9) is above "
            "connection_pool.max_size (3); lower min_size to at most 3, or raise max_size to 9 "
            "or more",
        ),
        (
            {"connection_pool": {"min_size": 101}},
            "'connection_pool.min_size': connection_pool.min_size (101) is above max_size (100): "
            "max_size is not set, so it is the larger of connection_pool_size (50 by default) "
            "and max_concurrent_requests (100 by default)",
        ),
        (
            {"request_processor": {"retry": {"max_delay_s": 0.05}}},
            "'request_processor.retry.max_delay_s': max_delay_s (0.05) is below base_delay_s "
            "(0.1); raise max_delay_s to at least 0.1 or lower base_delay_s to at most 0.05",
        ),
        ({"providers": {"p": {"base_url": URL, "models": []}}}, "at least 1 item"),
        ({"api_key_env": ""}, "'api_key_env': String should have at least 1 character"),
    ],
)
def test_bad_values_are_named(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as exc_info:
        resolve_config(config, base_url=URL, environ={})
    assert fragment in str(exc_info.value)


def test_the_derived_max_size_is_explained_with_the_keys_it_comes_from() -> None:
    # max_size unset: the larger of the pool size and max_concurrent_requests, as set or by
    # default (basic mode's defaults are 5 and 10)
    with pytest.raises(ConfigError) as exc_info:
        parse_config({"max_concurrent_requests": 20, "connection_pool": {"min_size": 60}})
    assert (
        "is above max_size (50): max_size is not set, so it is the larger of "
        "connection_pool_size (50 by default) and max_concurrent_requests (20); lower min_size "
        "to at most 50, or set connection_pool.max_size (or max_concurrent_requests) to 60 or more"
    ) in str(exc_info.value)
    with pytest.raises(ConfigError, match=r"connection_pool_size \(5 by default\) and max_conc"):
        parse_config({"performance_mode": "basic", "connection_pool": {"min_size": 11}})
    # the accepted side: the same min_size once the derived max_size reaches it
    accepted = parse_config({"max_concurrent_requests": 60, "connection_pool": {"min_size": 60}})
    assert (accepted.limits().pool_min_size, accepted.limits().pool_max_size) == (60, 60)
    assert parse_config({"connection_pool": {"min_size": 100}}).limits().pool_max_size == 100


def test_a_bad_secret_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as exc_info:
        parse_config({"api_key": 12345678, "default_headers": {"X-Token": 87654321}})
    message = str(exc_info.value)
    assert "'api_key'" in message and "'default_headers.X-Token'" in message
    assert "12345678" not in message and "87654321" not in message


def test_validate_config_needs_no_target_but_resolve_does() -> None:
    validate_config({"performance_mode": "basic"})
    with pytest.raises(ConfigError, match="no target configured"):
        resolve_config({"performance_mode": "basic"}, environ={})


def test_defaults_and_basic_mode_limits() -> None:
    cfg = resolve_config(base_url=URL, environ={})
    limits = cfg.limits
    assert (cfg.mode, limits.max_concurrent_requests, limits.connection_pool_size) == (
        "optimized",
        100,
        50,
    )
    assert cfg.config.timeout_s == 60.0
    assert limits.workers == 100 and cfg.config.request_processor.rate_limit is None
    rp = cfg.config.request_processor
    assert rp.coalesce_identical is False and rp.max_batch_size == 1
    assert (limits.pool_min_size, limits.pool_max_size, limits.pool_initial_size) == (50, 100, 50)
    basic = resolve_config({"performance_mode": "basic"}, base_url=URL, environ={})
    assert (basic.mode, basic.limits.max_concurrent_requests) == ("traditional", 10)
    assert basic.limits.connection_pool_size == 5
    explicit = resolve_config(
        {"performance_mode": "basic", "max_concurrent_requests": 7}, base_url=URL, environ={}
    )
    assert explicit.limits.max_concurrent_requests == 7
    assert explicit.limits.workers == 7  # workers follow max_concurrent_requests


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
    assert cfg.limits.workers == 3
    retry = cfg.config.request_processor.retry
    assert (retry.max_retries, retry.base_delay_s) == (5, 0.5)
    assert cfg.targets[0].api_key == "sk-secret-123"
    assert "sk-secret-123" not in repr(cfg)
    assert "sk-secret-123" not in repr(cfg.config)


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
    by_name = {p.name: p for p in cfg.targets}
    assert set(by_name) == {"a", "b"}
    assert by_name["a"].base_url == "http://a.example/v1"
    assert (by_name["a"].api_key_env, by_name["a"].api_key) == ("SHARED_KEY", None)
    assert by_name["b"].api_key == "kb"


def test_the_pool_limit_does_not_shrink_below_the_configured_pool_size_by_default() -> None:
    # Shrinking to the idle level made a later burst wait for connections (burst profile:
    # p95 172 ms with a floor of 4, 70 ms with the pool size as the floor).
    cfg = resolve_config({"base_url": "http://127.0.0.1:1/v1", "connection_pool_size": 30})
    assert cfg.limits.pool_min_size == 30
    assert cfg.limits.pool_initial_size == 30
    explicit = resolve_config(
        {"base_url": "http://127.0.0.1:1/v1", "connection_pool": {"min_size": 2}}
    )
    assert explicit.limits.pool_min_size == 2


# --- the model: every bound on both sides ------------------------------------------------------

# (dotted key, the last accepted value, the first refused one); the other keys at defaults.
BOUNDS: list[tuple[str, float, float]] = [
    ("max_concurrent_requests", 1, 0),
    ("connection_pool_size", 1, 0),
    ("timeout_s", 1e-9, 0.0),
    ("connection_pool.min_size", 1, 0),
    ("connection_pool.max_size", 1, 0),
    ("connection_pool.health_check_interval_s", 0.0, -1e-9),
    ("request_processor.workers", 1, 0),
    ("request_processor.max_batch_size", 1, 0),
    ("request_processor.batch_window_s", 0.0, -1e-9),
    ("request_processor.rate_limit.rate_per_s", 1e-9, 0.0),
    ("request_processor.rate_limit.burst", 1, 0),
    ("request_processor.retry.max_retries", 0, -1),
    ("request_processor.retry.base_delay_s", 0.0, -1e-9),
    ("request_processor.retry.max_delay_s", 0.1, 0.1 - 1e-9),  # >= base_delay_s (0.1)
    ("request_processor.retry.budget_ratio", 0.0, -1e-9),
    ("concurrency_manager.min_limit", 1, 0),
]


def _nested(dotted: str, value: float) -> dict[str, Any]:
    config: dict[str, Any] = {}
    node = config
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    if "rate_limit" in parents:  # both keys are required
        node.setdefault("rate_per_s", 1.0)
        node.setdefault("burst", 1)
    return config


@pytest.mark.parametrize(("key", "ok", "bad"), BOUNDS, ids=[b[0] for b in BOUNDS])
def test_each_bound_accepts_its_edge_and_refuses_beyond(key: str, ok: float, bad: float) -> None:
    parsed = parse_config(_nested(key, ok))
    node: Any = parsed
    for part in key.split("."):
        node = getattr(node, part)
    assert node == ok
    with pytest.raises(ConfigError, match=rf"config key '{key.rsplit('.', 1)[0]}"):
        parse_config(_nested(key, bad))


# (dotted key, the others it needs to stay consistent); 10,000 accepted, 10,001 refused.
UPPER_BOUNDS: list[tuple[str, dict[str, Any]]] = [
    ("max_concurrent_requests", {}),
    ("connection_pool_size", {}),
    ("connection_pool.min_size", {"connection_pool": {"max_size": 10_000}}),
    ("connection_pool.max_size", {}),
    ("request_processor.workers", {}),
    ("request_processor.max_batch_size", {}),
    ("concurrency_manager.min_limit", {}),
]


@pytest.mark.parametrize(("key", "others"), UPPER_BOUNDS, ids=[b[0] for b in UPPER_BOUNDS])
def test_limits_above_max_limit_are_refused(key: str, others: dict[str, Any]) -> None:
    # max_concurrent_requests: 100000000000 was accepted and one task a worker filled 24 GB.
    def config(value: int) -> dict[str, Any]:
        nested = _nested(key, value)
        for k, v in others.items():
            nested.setdefault(k, {}).update(v)
        return nested

    parsed: Any = parse_config(config(MAX_LIMIT))
    for part in key.split("."):
        parsed = getattr(parsed, part)
    assert parsed == MAX_LIMIT == 10_000
    with pytest.raises(ConfigError, match="less than or equal to 10000"):
        parse_config(config(MAX_LIMIT + 1))


def test_the_model_holds_the_documented_keys() -> None:
    documented = {
        "base_url", "api_key", "api_key_env", "default_headers", "timeout_s", "providers",
        "enable_memory_optimization", "enable_lazy_loading", "performance_mode",
        "max_concurrent_requests", "connection_pool_size", "concurrency_optimization",
        "connection_pool", "request_processor", "concurrency_manager",
    }  # fmt: skip
    assert set(ClientConfig.model_fields) == documented


def test_parse_keeps_the_written_keys_and_a_model_is_not_validated_again() -> None:
    written = {"request_processor": {"workers": 3}, "performance_mode": "basic"}
    cfg = parse_config(written)
    assert cfg.model_dump(exclude_unset=True) == written
    assert parse_config(cfg) is cfg
    merged = parse_config(cfg, request_processor={"max_batch_size": 2})
    assert merged.model_dump(exclude_unset=True)["request_processor"] == {
        "workers": 3,
        "max_batch_size": 2,
    }


def test_sizes_follow_a_changed_key() -> None:
    # tune changes max_concurrent_requests with model_copy: what follows from it follows
    cfg = parse_config({"connection_pool_size": 8})
    assert (cfg.limits().workers, cfg.limits().pool_max_size) == (100, 100)
    changed = cfg.model_copy(update={"max_concurrent_requests": 16})
    assert (changed.limits().workers, changed.limits().pool_max_size) == (16, 16)
    assert changed.limits().min_limit == 1
    assert cfg.model_copy(update={"max_concurrent_requests": 4}).limits().pool_max_size == 8


def test_component_reasons_say_whether_the_flag_was_written() -> None:
    cfg = resolve_config(_flags(use_lockfree_plugin_manager=True), base_url=URL, environ={})
    assert cfg.plugin_manager.reason == (
        "concurrency_optimization.use_lockfree_plugin_manager is true (set)"
    )
    assert cfg.connection_pool.reason == (
        "concurrency_optimization.use_optimized_connection_pool is true (default)"
    )
    assert cfg.concurrency_manager.reason == "optimized mode; enforces max_concurrent_requests=100"


def test_the_client_takes_a_dict_a_model_or_a_resolved_config() -> None:
    from harborbench.harborai import FastHarborAI, create_fast_client

    for client in (
        FastHarborAI({"base_url": URL, "max_concurrent_requests": 3}),
        FastHarborAI(parse_config({"base_url": URL, "max_concurrent_requests": 3})),
        create_fast_client(parse_config({"max_concurrent_requests": 3}), base_url=URL),
    ):
        try:
            status = client.optimization_status()
            assert status["max_concurrent_requests"] == 3
            assert status["connection_pool_max_size"] == 50  # max(pool size 50, 3)
        finally:
            client.close()
    with pytest.raises(ConfigError, match="'max_concurent_requests': Extra inputs"):
        FastHarborAI({"base_url": URL, "max_concurent_requests": 3})


def test_the_pool_cap_in_the_status_is_the_effective_max_size() -> None:
    from harborbench.harborai import FastHarborAI

    cases = [
        ({}, 100),  # max(connection_pool_size 50, max_concurrent_requests 100)
        ({"connection_pool": {"max_size": 7}}, 7),
        ({"connection_pool": {"adaptive": False}}, None),  # a fixed pool: no cap to report
        ({"concurrency_optimization": {"use_optimized_connection_pool": False}}, None),
    ]
    for config, cap in cases:
        client = FastHarborAI(resolve_config(config, base_url=URL, environ={}))
        try:
            assert client.optimization_status()["connection_pool_max_size"] == cap, config
        finally:
            client.close()
