"""Client configuration: strict validation of the config dict and resolution of every decision.

The keys are those of SPEC section 3 (the plan's keys) plus the client's own (targets, pool,
request processor, concurrency manager)::

    base_url: http://127.0.0.1:8000/v1   # one target for every model
    api_key: ...                         # or api_key_env: NAME_OF_ENV_VAR
    default_headers: {X-Name: value}     # extra HTTP headers of every request (never printed)
    timeout_s: 60
    providers: {name: {base_url, api_key, api_key_env, models: [...]}}
    enable_memory_optimization: true
    enable_lazy_loading: true
    performance_mode: optimized          # or basic
    max_concurrent_requests: 100         # basic: 10
    connection_pool_size: 50             # basic: 5
    concurrency_optimization: {enabled, use_lockfree_plugin_manager,
                               use_optimized_connection_pool, use_async_request_processor,
                               force_traditional_mode}
    connection_pool: {min_size, max_size, adaptive, health_check_interval_s}  # 0 s: no monitor
    request_processor: {workers, max_batch_size, batch_window_s, coalesce_identical,
                        rate_limit: {rate_per_s, burst} | null,
                        retry: {max_retries, base_delay_s, max_delay_s, budget_ratio}}
    concurrency_manager: {adaptive_limit, min_limit}

Precedence of the mode decision, strongest first (SPEC section 3): the environment variable
``HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION``, ``concurrency_optimization.force_traditional_mode``,
``concurrency_optimization.enabled``, ``performance_mode`` (``basic`` is the plan's downgrade to the
traditional path), then the per-component flags. Every decision keeps its reason.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ConfigError

__all__ = [
    "DISABLE_ENV_VAR",
    "ClientConfig",
    "ComponentDecision",
    "ConcurrencyConfig",
    "PoolConfig",
    "ProcessorConfig",
    "ProviderConfig",
    "RateLimitConfig",
    "RetryConfig",
    "resolve_config",
    "validate_config",
]

DISABLE_ENV_VAR = "HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}

# --- schema -------------------------------------------------------------------------------
# A spec is a tuple: (kind, extra). kinds: bool, int (extra = minimum), float (extra = minimum),
# str, enum (extra = choices), dict (extra = sub-schema), nullable_dict, str_list, providers,
# str_map (a mapping of non-empty names to strings).
_Spec = tuple[str, Any]

_RETRY: dict[str, _Spec] = {
    "max_retries": ("int", 0),
    "base_delay_s": ("float", 0.0),
    "max_delay_s": ("float", 0.0),
    "budget_ratio": ("float", 0.0),
}
_RATE_LIMIT: dict[str, _Spec] = {"rate_per_s": ("float", 0.0), "burst": ("int", 1)}
_PROVIDER: dict[str, _Spec] = {
    "base_url": ("str", None),
    "api_key": ("str", None),
    "api_key_env": ("str", None),
    "models": ("str_list", None),
}
_SCHEMA: dict[str, _Spec] = {
    "base_url": ("str", None),
    "api_key": ("str", None),
    "api_key_env": ("str", None),
    "default_headers": ("str_map", None),
    "timeout_s": ("float", 0.0),
    "providers": ("providers", _PROVIDER),
    "enable_memory_optimization": ("bool", None),
    "enable_lazy_loading": ("bool", None),
    "performance_mode": ("enum", ("optimized", "basic")),
    "max_concurrent_requests": ("int", 1),
    "connection_pool_size": ("int", 1),
    "concurrency_optimization": (
        "dict",
        {
            "enabled": ("bool", None),
            "use_lockfree_plugin_manager": ("bool", None),
            "use_optimized_connection_pool": ("bool", None),
            "use_async_request_processor": ("bool", None),
            "force_traditional_mode": ("bool", None),
        },
    ),
    "connection_pool": (
        "dict",
        {
            "min_size": ("int", 1),
            "max_size": ("int", 1),
            "adaptive": ("bool", None),
            "health_check_interval_s": ("float", 0.0),
        },
    ),
    "request_processor": (
        "dict",
        {
            "workers": ("int", 1),
            "max_batch_size": ("int", 1),
            "batch_window_s": ("float", 0.0),
            "coalesce_identical": ("bool", None),
            "rate_limit": ("nullable_dict", _RATE_LIMIT),
            "retry": ("dict", _RETRY),
        },
    ),
    "concurrency_manager": ("dict", {"adaptive_limit": ("bool", None), "min_limit": ("int", 1)}),
}


def _unknown_key(path: str, key: str, known: Mapping[str, Any]) -> ConfigError:
    where = f"{path}.{key}" if path else key
    hint = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    fix = f"did you mean {hint[0]!r}?" if hint else f"known keys: {', '.join(sorted(known))}"
    return ConfigError(f"unknown config key {where!r}; {fix}")


def _check(value: Any, spec: _Spec, where: str) -> None:
    kind, extra = spec
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"config key {where!r} must be true or false, got {value!r}")
    elif kind in ("int", "float"):
        ok_types: tuple[type, ...] = (int,) if kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok_types):
            raise ConfigError(f"config key {where!r} must be a number ({kind}), got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config key {where!r} must be finite, got {value!r}")
        if value < extra:
            raise ConfigError(f"config key {where!r} must be >= {extra}, got {value!r}")
    elif kind == "str":
        if not isinstance(value, str) or not value:
            raise ConfigError(f"config key {where!r} must be a non-empty string, got {value!r}")
    elif kind == "enum":
        if value not in extra:
            raise ConfigError(
                f"config key {where!r} must be one of {', '.join(extra)}, got {value!r}"
            )
    elif kind == "str_list":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ConfigError(
                f"config key {where!r} must be a non-empty list of model names, got {value!r}"
            )
    elif kind == "str_map":
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
        ):
            # Never echo the value: header values may be tokens.
            raise ConfigError(f"config key {where!r} must be a mapping of names to strings")
    elif kind in ("dict", "nullable_dict"):
        if value is None and kind == "nullable_dict":
            return
        _check_mapping(value, extra, where)
    elif kind == "providers":
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key {where!r} must be a mapping of provider names")
        for name, provider in value.items():
            if not isinstance(name, str) or not name:
                raise ConfigError(f"provider names under {where!r} must be non-empty strings")
            _check_mapping(provider, extra, f"{where}.{name}")
            if "base_url" not in provider or "models" not in provider:
                raise ConfigError(
                    f"provider {where}.{name} needs both 'base_url' and 'models' (a list)"
                )
    else:  # pragma: no cover - the schema above only uses the kinds handled here
        raise AssertionError(kind)


def _check_mapping(value: Any, schema: Mapping[str, _Spec], path: str) -> None:
    if not isinstance(value, Mapping):
        raise ConfigError(f"config key {path!r} must be a mapping, got {value!r}")
    for key, item in value.items():
        if key not in schema:
            raise _unknown_key(path, str(key), schema)
        _check(item, schema[key], f"{path}.{key}" if path else key)


def validate_config(config: Mapping[str, Any]) -> None:
    """Check the keys and value types of a client config dict (no target is required).

    Args:
        config: the config mapping as ``create_fast_client`` takes it.

    Raises:
        ConfigError: an unknown key (the message gives its dotted path and a did-you-mean hint),
            a value of the wrong type or range, or a provider without base_url or models.
    """
    _check_mapping(config, _SCHEMA, "")


# --- resolved configuration -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ComponentDecision:
    """Whether one component is active, and why (a sentence for ``optimization_status()``)."""

    active: bool
    reason: str


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One target: ``name``, ``base_url``, the API key (never printed) and the models it serves.

    ``models`` is empty for the default target of the top-level ``base_url``, which serves
    every model that no named provider serves. ``headers`` are the config's
    ``default_headers``, sent with every request (never printed).
    """

    name: str
    base_url: str
    api_key: str | None = field(repr=False)
    api_key_env: str | None
    models: tuple[str, ...]
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Optimized connection pool: initial, minimum and maximum connections per origin.

    ``health_check_interval_s`` is also the period of the pool's adaptation step.
    """

    initial_size: int
    min_size: int
    max_size: int
    adaptive: bool
    health_check_interval_s: float


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """Token bucket: ``rate_per_s`` tokens per second, at most ``burst`` tokens banked."""

    rate_per_s: float
    burst: int


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """Retry policy: attempts after the first, backoff bounds in seconds, retry budget ratio."""

    max_retries: int
    base_delay_s: float
    max_delay_s: float
    budget_ratio: float


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    """Async request processor settings (``max_batch_size`` 1 means no batching)."""

    workers: int
    max_batch_size: int
    batch_window_s: float
    coalesce_identical: bool
    rate_limit: RateLimitConfig | None
    retry: RetryConfig


@dataclass(frozen=True, slots=True)
class ConcurrencyConfig:
    """Concurrency manager: adaptive (AIMD) limit on or off, and its floor."""

    adaptive_limit: bool
    min_limit: int


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """The resolved, immutable client configuration with the reason of every decision.

    Attributes:
        mode: "optimized" (asyncio + the components) or "traditional" (threads + blocking HTTP).
        mode_reason: why that mode was chosen.
        performance_mode: "optimized" or "basic" as configured.
        max_concurrent_requests: int, hard limit on requests in flight.
        connection_pool_size: int, connections per origin at start.
        timeout_s: float, seconds for one whole call, in both modes: a deadline from the call
            to its answer, waits for a slot or a thread and retries included.
        enable_memory_optimization, enable_lazy_loading: the plan's flags.
        providers: the targets; a provider with no models is the catch-all default.
        plugin_manager, connection_pool, request_processor, concurrency_manager: decisions.
        pool, processor, concurrency: component settings.
    """

    mode: Literal["optimized", "traditional"]
    mode_reason: str
    performance_mode: str
    max_concurrent_requests: int
    connection_pool_size: int
    timeout_s: float
    enable_memory_optimization: bool
    enable_lazy_loading: bool
    providers: tuple[ProviderConfig, ...]
    plugin_manager: ComponentDecision
    connection_pool: ComponentDecision
    request_processor: ComponentDecision
    concurrency_manager: ComponentDecision
    pool: PoolConfig
    processor: ProcessorConfig
    concurrency: ConcurrencyConfig


def _merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = _merge(old, value)
        else:
            merged[key] = value
    return merged


def _env_disables(environ: Mapping[str, str]) -> bool:
    raw = environ.get(DISABLE_ENV_VAR)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(
        f"environment variable {DISABLE_ENV_VAR}={raw!r} is not a boolean; use true or false"
    )


def _decide_mode(cfg: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[str, str]:
    co = cfg.get("concurrency_optimization", {})
    if _env_disables(environ):
        return "traditional", f"disabled by {DISABLE_ENV_VAR}"
    if co.get("force_traditional_mode", False):
        return "traditional", "concurrency_optimization.force_traditional_mode is true"
    if not co.get("enabled", True):
        return "traditional", "concurrency_optimization.enabled is false"
    if cfg.get("performance_mode", "optimized") == "basic":
        return "traditional", "performance_mode is 'basic'"
    return "optimized", "concurrency optimization enabled (default)"


def _component(mode: str, mode_reason: str, flags: Mapping[str, Any], flag: str) -> Any:
    if mode != "optimized":
        return ComponentDecision(False, f"traditional mode: {mode_reason}")
    if flags.get(flag, True):
        explicit = "set" if flag in flags else "default"
        return ComponentDecision(True, f"concurrency_optimization.{flag} is true ({explicit})")
    return ComponentDecision(False, f"concurrency_optimization.{flag} is false")


def _providers(cfg: Mapping[str, Any]) -> tuple[ProviderConfig, ...]:
    out: list[ProviderConfig] = []
    headers = tuple(cfg.get("default_headers", {}).items())
    for name, p in cfg.get("providers", {}).items():
        own_key = "api_key" in p or "api_key_env" in p  # else the top-level key applies
        out.append(
            ProviderConfig(
                name=name,
                base_url=p["base_url"].rstrip("/"),
                api_key=p.get("api_key") if own_key else cfg.get("api_key"),
                api_key_env=p.get("api_key_env") if own_key else cfg.get("api_key_env"),
                models=tuple(p["models"]),
                headers=headers,
            )
        )
    if "base_url" in cfg:
        out.append(
            ProviderConfig(
                name="default",
                base_url=cfg["base_url"].rstrip("/"),
                api_key=cfg.get("api_key"),
                api_key_env=cfg.get("api_key_env"),
                models=(),
                headers=headers,
            )
        )
    if not out:
        raise ConfigError("no target configured: set 'base_url' (or a 'providers' table)")
    return tuple(out)


def resolve_config(
    config: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> ClientConfig:
    """Validate a config dict, apply overrides, and resolve every decision with its reason.

    Args:
        config: the config mapping (see the module docstring), or None.
        environ: the environment to read ``HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION`` from;
            ``os.environ`` when None.
        **overrides: top-level keys that replace (mappings: deep-merge into) ``config``.

    Returns:
        the resolved ClientConfig.

    Raises:
        ConfigError: an unknown key or a bad value (named by its dotted path), no target
            (neither base_url nor providers), min/max sizes out of order, or a non-boolean
            value of the environment variable.
    """
    cfg = _merge(config or {}, overrides)
    validate_config(cfg)
    env = os.environ if environ is None else environ
    mode, mode_reason = _decide_mode(cfg, env)
    basic = cfg.get("performance_mode", "optimized") == "basic"
    max_concurrent = int(cfg.get("max_concurrent_requests", 10 if basic else 100))
    pool_size = int(cfg.get("connection_pool_size", 5 if basic else 50))
    flags = cfg.get("concurrency_optimization", {})
    timeout_s = float(cfg.get("timeout_s", 60.0))
    if timeout_s <= 0:
        raise ConfigError(f"config key 'timeout_s' must be > 0 seconds, got {timeout_s!r}")

    pool_cfg = cfg.get("connection_pool", {})
    max_size = int(pool_cfg.get("max_size", max(pool_size, max_concurrent)))
    # By default the limit never shrinks below the configured pool size: shrinking to the idle
    # level made a later burst wait for connections (burst profile: p95 172 ms against 70 ms).
    min_size = int(pool_cfg.get("min_size", min(pool_size, max_size)))
    if not min_size <= max_size:
        raise ConfigError(
            f"connection_pool.min_size ({min_size}) must not exceed max_size ({max_size})"
        )
    pool = PoolConfig(
        initial_size=min(max(pool_size, min_size), max_size),
        min_size=min_size,
        max_size=max_size,
        adaptive=bool(pool_cfg.get("adaptive", True)),
        health_check_interval_s=float(pool_cfg.get("health_check_interval_s", 5.0)),
    )

    rp = cfg.get("request_processor", {})
    rl = rp.get("rate_limit")
    retry = rp.get("retry", {})
    retry_cfg = RetryConfig(
        max_retries=int(retry.get("max_retries", 2)),
        base_delay_s=float(retry.get("base_delay_s", 0.1)),
        max_delay_s=float(retry.get("max_delay_s", 10.0)),
        budget_ratio=float(retry.get("budget_ratio", 0.2)),
    )
    if retry_cfg.max_delay_s < retry_cfg.base_delay_s:
        raise ConfigError("request_processor.retry.max_delay_s must be >= base_delay_s")
    if rl is not None and ("rate_per_s" not in rl or "burst" not in rl):
        raise ConfigError("request_processor.rate_limit needs both 'rate_per_s' and 'burst'")
    if rl is not None and rl["rate_per_s"] <= 0:
        raise ConfigError(
            "request_processor.rate_limit.rate_per_s must be > 0; use rate_limit: null for no limit"
        )
    processor = ProcessorConfig(
        workers=int(rp.get("workers", max_concurrent)),
        max_batch_size=int(rp.get("max_batch_size", 1)),
        batch_window_s=float(rp.get("batch_window_s", 0.0)),
        coalesce_identical=bool(rp.get("coalesce_identical", False)),
        rate_limit=None if rl is None else RateLimitConfig(float(rl["rate_per_s"]), rl["burst"]),
        retry=retry_cfg,
    )

    cm = cfg.get("concurrency_manager", {})
    concurrency = ConcurrencyConfig(
        adaptive_limit=bool(cm.get("adaptive_limit", True)),
        min_limit=min(int(cm.get("min_limit", 1)), max_concurrent),
    )
    manager = (
        ComponentDecision(
            True, f"optimized mode; enforces max_concurrent_requests={max_concurrent}"
        )
        if mode == "optimized"
        else ComponentDecision(False, f"traditional mode: {mode_reason}")
    )
    return ClientConfig(
        mode="optimized" if mode == "optimized" else "traditional",
        mode_reason=mode_reason,
        performance_mode=str(cfg.get("performance_mode", "optimized")),
        max_concurrent_requests=max_concurrent,
        connection_pool_size=pool_size,
        timeout_s=timeout_s,
        enable_memory_optimization=bool(cfg.get("enable_memory_optimization", True)),
        enable_lazy_loading=bool(cfg.get("enable_lazy_loading", True)),
        providers=_providers(cfg),
        plugin_manager=_component(mode, mode_reason, flags, "use_lockfree_plugin_manager"),
        connection_pool=_component(mode, mode_reason, flags, "use_optimized_connection_pool"),
        request_processor=_component(mode, mode_reason, flags, "use_async_request_processor"),
        concurrency_manager=manager,
        pool=pool,
        processor=processor,
        concurrency=concurrency,
    )
