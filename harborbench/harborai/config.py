"""Client configuration: one typed pydantic model of the config keys, and the resolution of
every decision (mode, components, sizes) with its reason.

The keys are those of SPEC section 3 (the plan's keys) plus the client's own (targets, pool,
request processor, concurrency manager)::

    base_url: http://127.0.0.1:8000/v1   # one target for every model
    api_key: ...                         # or api_key_env: NAME_OF_ENV_VAR
    default_headers: {X-Name: value}     # extra HTTP headers of every request (never printed)
    timeout_s: 60                        # > 0
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

:class:`ClientConfig` is the model of these keys (unknown keys refused, bounds as field
constraints, no type coercion); it is validated once, where a config enters: by
:func:`parse_config` for a dict (raising :class:`ConfigError`), or as the ``client`` section of
a harborbench profile (whose error formatter names the file, line and key). Keys whose default
depends on other keys (``max_concurrent_requests``, ``connection_pool_size``,
``connection_pool.min_size``/``max_size``, ``request_processor.workers``) are ``None`` until set;
:meth:`ClientConfig.limits` gives the effective sizes by the rules below, so that a changed key
(``model_copy(update=...)``) changes the sizes that follow from it.

Precedence of the mode decision, strongest first (SPEC section 3): the environment variable
``HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION``, ``concurrency_optimization.force_traditional_mode``,
``concurrency_optimization.enabled``, ``performance_mode`` (``basic`` is the plan's downgrade to the
traditional path), then the per-component flags. Every decision keeps its reason
(:func:`resolve_config`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError

__all__ = [
    "DISABLE_ENV_VAR",
    "AtKey",
    "ClientConfig",
    "ComponentDecision",
    "ConcurrencyManagerConfig",
    "ConcurrencyOptimizationConfig",
    "ConnectionPoolConfig",
    "Limits",
    "ProviderConfig",
    "RateLimitConfig",
    "RequestProcessorConfig",
    "ResolvedConfig",
    "RetryConfig",
    "Target",
    "decide_mode",
    "parse_config",
    "resolve_config",
    "validate_config",
]

DISABLE_ENV_VAR = "HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}

#: A non-empty string (URLs, keys, names).
Text = Annotated[str, Field(min_length=1)]


MAX_LIMIT = 10_000
"""The most requests in flight, connections, workers or batch size one client may be configured
with (the same bound as a profile's ``load.concurrency``): each slot is an asyncio task, a
thread or a socket, and ``max_concurrent_requests: 100000000000`` was accepted and exhausted the
machine's memory before the first request."""


class AtKey(ValueError):
    """A model-level validation error that belongs to one of the model's keys.

    Raised inside a model validator, it lets an error report point at that key (pydantic
    reports model-level errors at the model itself). A rule that involves several keys names
    the one to blame first and the others that may have caused it in ``others``; a report that
    knows where each key came from (harborbench's profile formatter) may blame the one the user
    just changed instead.

    Args:
        key: the key (or key path, relative to the model) to blame.
        message: what is wrong and the fix.
        others: key paths of the other keys of the rule, relative to the model.
    """

    def __init__(
        self,
        key: str | int | tuple[str | int, ...],
        message: str,
        others: tuple[tuple[str | int, ...], ...] = (),
    ) -> None:
        super().__init__(message)
        self.key: tuple[str | int, ...] = key if isinstance(key, tuple) else (key,)
        self.others = others


class _Settings(BaseModel):
    """Base of the config models: unknown keys refused, immutable, no coercion ("5" is not 5,
    true is not 1), no infinities or NaN."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


# --- the model of the keys -------------------------------------------------------------------


class ProviderConfig(_Settings):
    """One named target of ``providers``: where it is, its key, the models it serves.

    Attributes:
        base_url: the target's OpenAI-compatible base URL (a trailing ``/`` is dropped).
        api_key: the API key (never printed); with neither key set the top-level key applies.
        api_key_env: name of the environment variable holding the key, read when the
            provider's plugin is created.
        models: the model names it serves (at least one).
    """

    base_url: Text
    api_key: Text | None = Field(default=None, repr=False)
    api_key_env: Text | None = None
    models: list[str] = Field(min_length=1)


class ConcurrencyOptimizationConfig(_Settings):
    """The plan's switches: the mode (``enabled``, ``force_traditional_mode``) and one flag per
    optimized component (each only matters in optimized mode)."""

    enabled: bool = True
    use_lockfree_plugin_manager: bool = True
    use_optimized_connection_pool: bool = True
    use_async_request_processor: bool = True
    force_traditional_mode: bool = False


class ConnectionPoolConfig(_Settings):
    """Optimized connection pool: bounds of the per-origin connection limit and its adaptation.

    Attributes:
        min_size: floor of the adaptive limit; default ``min(connection_pool_size, max_size)``
            (never below the configured pool size: shrinking to the idle level made a later
            burst wait for connections, burst profile p95 172 ms against 70 ms).
        max_size: ceiling of the adaptive limit; default
            ``max(connection_pool_size, max_concurrent_requests)``.
        adaptive: whether the limit adapts to use.
        health_check_interval_s: seconds between health checks and adaptation steps; 0: no
            monitor.
    """

    min_size: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    max_size: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    adaptive: bool = True
    health_check_interval_s: float = Field(default=5.0, ge=0)


class RateLimitConfig(_Settings):
    """Token bucket: ``rate_per_s`` tokens per second (> 0), at most ``burst`` tokens banked."""

    rate_per_s: float = Field(gt=0)
    burst: int = Field(ge=1)


class RetryConfig(_Settings):
    """Retry policy: attempts after the first, backoff bounds in seconds
    (``max_delay_s >= base_delay_s``), retry budget as a fraction of requests."""

    max_retries: int = Field(default=2, ge=0)
    base_delay_s: float = Field(default=0.1, ge=0)
    max_delay_s: float = Field(default=10.0, ge=0)
    budget_ratio: float = Field(default=0.2, ge=0)

    @model_validator(mode="after")
    def _delays_in_order(self) -> RetryConfig:
        if self.max_delay_s < self.base_delay_s:
            raise AtKey(
                "max_delay_s",
                f"max_delay_s ({self.max_delay_s:g}) is below base_delay_s "
                f"({self.base_delay_s:g}); raise max_delay_s to at least {self.base_delay_s:g} "
                f"or lower base_delay_s to at most {self.max_delay_s:g}",
                others=(("base_delay_s",),),
            )
        return self


class RequestProcessorConfig(_Settings):
    """Async request processor settings.

    Attributes:
        workers: worker tasks (requests sent at once); default ``max_concurrent_requests``.
        max_batch_size: requests taken per worker turn (1: no batching).
        batch_window_s: seconds a worker waits to fill a batch.
        coalesce_identical: identical non-streamed requests in flight share one call.
        rate_limit: a token bucket, or ``None`` (null) for no limit.
        retry: the retry policy.
    """

    workers: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    max_batch_size: int = Field(default=1, ge=1, le=MAX_LIMIT)
    batch_window_s: float = Field(default=0.0, ge=0)
    coalesce_identical: bool = False
    rate_limit: RateLimitConfig | None = None
    retry: RetryConfig = Field(default_factory=RetryConfig)


class ConcurrencyManagerConfig(_Settings):
    """Concurrency manager: adaptive (AIMD) limit on or off, and its floor (capped at
    ``max_concurrent_requests``)."""

    adaptive_limit: bool = True
    min_limit: int = Field(default=1, ge=1, le=MAX_LIMIT)


@dataclass(frozen=True, slots=True)
class Limits:
    """The effective sizes of a config: each key's value, or its default by the rule of the key.

    Attributes:
        max_concurrent_requests: requests in flight at most (default 100; basic mode 10).
        connection_pool_size: connections per origin at start (default 50; basic mode 5).
        pool_min_size, pool_max_size: bounds of the optimized pool's adaptive limit.
        pool_initial_size: the optimized pool's limit at start: the pool size, within the
            bounds.
        workers: request processor workers.
        min_limit: floor of the adaptive concurrency limit, at most max_concurrent_requests.
    """

    max_concurrent_requests: int
    connection_pool_size: int
    pool_min_size: int
    pool_max_size: int
    pool_initial_size: int
    workers: int
    min_limit: int


class ClientConfig(_Settings):
    """The client's configuration: every key of the module docstring, typed and bounded.

    Unknown keys, wrong types (no coercion), values out of bounds and non-finite numbers are
    refused by validation (``pydantic.ValidationError``; :func:`parse_config` turns it into
    :class:`ConfigError`). A target (``base_url`` or ``providers``) is needed only to build a
    client (:func:`resolve_config`), not to validate. ``model_dump(exclude_unset=True)`` gives
    back the keys as written (the defaults left out).

    Attributes:
        enable_memory_optimization, enable_lazy_loading, performance_mode: the plan's flags.
        max_concurrent_requests, connection_pool_size: ``None`` for the default
            (see :class:`Limits`).
        concurrency_optimization, connection_pool, request_processor, concurrency_manager:
            the nested sections.
        base_url, api_key, api_key_env: the default target (serves every model no named
            provider serves) and its key; ``api_key`` is never printed.
        default_headers: extra HTTP headers of every request (values never printed).
        providers: named targets (:class:`ProviderConfig`).
        timeout_s: seconds for one whole call (> 0), waits and retries included.

    Raises (on validation):
        pydantic.ValidationError: also when ``connection_pool.min_size`` exceeds its
            ``max_size`` (given or derived), or ``request_processor.retry.max_delay_s`` is below
            its ``base_delay_s``; these two carry an :class:`AtKey` naming the key.
    """

    # Declared in the order of a written config (the plan's keys, the sections, the target):
    # ``model_dump`` keeps this order, and tune's recommended_config.yaml is such a dump.
    enable_memory_optimization: bool = True
    enable_lazy_loading: bool = True
    performance_mode: Literal["optimized", "basic"] = "optimized"
    max_concurrent_requests: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    connection_pool_size: int | None = Field(default=None, ge=1, le=MAX_LIMIT)
    concurrency_optimization: ConcurrencyOptimizationConfig = Field(
        default_factory=ConcurrencyOptimizationConfig
    )
    connection_pool: ConnectionPoolConfig = Field(default_factory=ConnectionPoolConfig)
    request_processor: RequestProcessorConfig = Field(default_factory=RequestProcessorConfig)
    concurrency_manager: ConcurrencyManagerConfig = Field(default_factory=ConcurrencyManagerConfig)
    base_url: Text | None = None
    api_key: Text | None = Field(default=None, repr=False)
    api_key_env: Text | None = None
    default_headers: dict[Text, str] = Field(default_factory=dict, repr=False)
    providers: dict[Text, ProviderConfig] = Field(default_factory=dict)
    timeout_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _pool_bounds_in_order(self) -> ClientConfig:
        limits = self.limits()
        low, high = limits.pool_min_size, limits.pool_max_size
        if low <= high:
            return self  # a derived min_size never exceeds max_size: min_size was set
        lower = f"lower min_size to at most {high}"
        if self.connection_pool.max_size is not None:
            raise AtKey(
                ("connection_pool", "min_size"),
                f"connection_pool.min_size ({low}) is above connection_pool.max_size ({high}); "
                f"{lower}, or raise max_size to {low} or more",
                others=(("connection_pool", "max_size"),),
            )
        raise AtKey(
            ("connection_pool", "min_size"),
            f"connection_pool.min_size ({low}) is above max_size ({high}): max_size is not "
            "set, so it is the larger of connection_pool_size "
            f"({self._given('connection_pool_size', limits.connection_pool_size)}) and "
            "max_concurrent_requests "
            f"({self._given('max_concurrent_requests', limits.max_concurrent_requests)}); "
            f"{lower}, or set connection_pool.max_size (or max_concurrent_requests) to {low} "
            "or more",
            others=(("max_concurrent_requests",), ("connection_pool_size",)),
        )

    def _given(self, key: str, value: int) -> str:
        """``"50"`` for a key that was set, ``"50 by default"`` for one that was not."""
        return f"{value}" if key in self.model_fields_set else f"{value} by default"

    def limits(self) -> Limits:
        """The effective sizes (see :class:`Limits`), computed from the current keys."""
        basic = self.performance_mode == "basic"
        n = self.max_concurrent_requests
        if n is None:
            n = 10 if basic else 100
        pool = self.connection_pool_size
        if pool is None:
            pool = 5 if basic else 50
        cp = self.connection_pool
        max_size = max(pool, n) if cp.max_size is None else cp.max_size
        min_size = min(pool, max_size) if cp.min_size is None else cp.min_size
        workers = self.request_processor.workers
        return Limits(
            max_concurrent_requests=n,
            connection_pool_size=pool,
            pool_min_size=min_size,
            pool_max_size=max_size,
            pool_initial_size=min(max(pool, min_size), max_size),
            workers=n if workers is None else workers,
            min_limit=min(self.concurrency_manager.min_limit, n),
        )


def _merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = _merge(old, value)
        else:
            merged[key] = value
    return merged


def _config_error(exc: ValidationError) -> ConfigError:
    """pydantic's own messages, one per key (dotted path; an :class:`AtKey` names its key),
    without the input values (a header value or key may be a secret). Profiles get the file,
    line and fix from harborbench's formatter instead."""
    lines = []
    for e in exc.errors(include_url=False, include_input=False):
        at = e.get("ctx", {}).get("error")
        loc = (*e["loc"], *at.key) if isinstance(at, AtKey) else e["loc"]
        message = str(at) if isinstance(at, AtKey) else e["msg"]
        lines.append(f"config key {'.'.join(str(p) for p in loc) or '(top level)'!r}: {message}")
    return ConfigError("; ".join(lines))


def parse_config(
    config: ClientConfig | Mapping[str, Any] | None = None, **overrides: Any
) -> ClientConfig:
    """The validated :class:`ClientConfig` of a config dict, with keyword overrides.

    Args:
        config: a config mapping (see the module docstring), a :class:`ClientConfig` (returned
            as is when there are no overrides), or None (every default).
        **overrides: top-level keys that replace (mappings: deep-merge into) ``config``.

    Returns:
        The validated config; the keys given are its ``model_fields_set``.

    Raises:
        ConfigError: an unknown key or a wrong type or value, each named by its dotted path.
    """
    if isinstance(config, ClientConfig):
        if not overrides:
            return config
        config = config.model_dump(exclude_unset=True)
    try:
        return ClientConfig.model_validate(_merge(config or {}, overrides))
    except ValidationError as exc:
        raise _config_error(exc) from None


def validate_config(config: Mapping[str, Any]) -> None:
    """Check the keys and value types of a client config dict (no target is required).

    Raises:
        ConfigError: as :func:`parse_config`.
    """
    parse_config(config)


# --- resolution ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ComponentDecision:
    """Whether one component is active, and why (a sentence for ``optimization_status()``)."""

    active: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Target:
    """Where one provider's requests go: ``name``, ``base_url`` (no trailing ``/``), the API key
    or its variable (the provider's own, else the top-level one; never printed), its models
    (empty for the default target of the top-level ``base_url``, which serves every model that
    no named provider serves) and the config's ``default_headers`` (never printed)."""

    name: str
    base_url: str
    api_key: str | None = field(repr=False)
    api_key_env: str | None
    models: tuple[str, ...]
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class ResolvedConfig:
    """A validated config with every decision made: what :class:`FastHarborAI` is built from.

    Attributes:
        config: the keys (:class:`ClientConfig`).
        limits: the effective sizes (:meth:`ClientConfig.limits`).
        mode: "optimized" (asyncio + the components) or "traditional" (threads + blocking HTTP).
        mode_reason: why that mode was chosen.
        targets: the providers, then the default target of ``base_url`` (if set); at least one.
        plugin_manager, connection_pool, request_processor, concurrency_manager: whether each
            component is active, and why.
    """

    config: ClientConfig
    limits: Limits
    mode: Literal["optimized", "traditional"]
    mode_reason: str
    targets: tuple[Target, ...]
    plugin_manager: ComponentDecision
    connection_pool: ComponentDecision
    request_processor: ComponentDecision
    concurrency_manager: ComponentDecision


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


def decide_mode(
    config: ClientConfig, environ: Mapping[str, str] | None = None
) -> tuple[Literal["optimized", "traditional"], str]:
    """The mode and its reason, by the precedence of the module docstring.

    Args:
        config: the validated config.
        environ: where ``HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION`` is read; ``os.environ``
            when None.

    Raises:
        ConfigError: the environment variable is set to something that is not a boolean.
    """
    co = config.concurrency_optimization
    if _env_disables(os.environ if environ is None else environ):
        return "traditional", f"disabled by {DISABLE_ENV_VAR}"
    if co.force_traditional_mode:
        return "traditional", "concurrency_optimization.force_traditional_mode is true"
    if not co.enabled:
        return "traditional", "concurrency_optimization.enabled is false"
    if config.performance_mode == "basic":
        return "traditional", "performance_mode is 'basic'"
    return "optimized", "concurrency optimization enabled (default)"


def _component(
    mode: str,
    mode_reason: str,
    flags: ConcurrencyOptimizationConfig,
    flag: Literal[
        "use_lockfree_plugin_manager",
        "use_optimized_connection_pool",
        "use_async_request_processor",
    ],
) -> ComponentDecision:
    if mode != "optimized":
        return ComponentDecision(False, f"traditional mode: {mode_reason}")
    if getattr(flags, flag):
        explicit = "set" if flag in flags.model_fields_set else "default"
        return ComponentDecision(True, f"concurrency_optimization.{flag} is true ({explicit})")
    return ComponentDecision(False, f"concurrency_optimization.{flag} is false")


def _targets(config: ClientConfig) -> tuple[Target, ...]:
    out: list[Target] = []
    headers = tuple(config.default_headers.items())
    for name, p in config.providers.items():
        own_key = p.api_key is not None or p.api_key_env is not None  # else the top-level key
        out.append(
            Target(
                name=name,
                base_url=p.base_url.rstrip("/"),
                api_key=p.api_key if own_key else config.api_key,
                api_key_env=p.api_key_env if own_key else config.api_key_env,
                models=tuple(p.models),
                headers=headers,
            )
        )
    if config.base_url is not None:
        out.append(
            Target(
                name="default",
                base_url=config.base_url.rstrip("/"),
                api_key=config.api_key,
                api_key_env=config.api_key_env,
                models=(),
                headers=headers,
            )
        )
    if not out:
        raise ConfigError("no target configured: set 'base_url' (or a 'providers' table)")
    return tuple(out)


def resolve_config(
    config: ClientConfig | Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> ResolvedConfig:
    """Validate a config (unless it is a :class:`ClientConfig` already and there are no
    overrides), apply overrides, and resolve every decision with its reason.

    Args:
        config: a config mapping (see the module docstring), a :class:`ClientConfig`, or None.
        environ: the environment to read ``HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION`` from;
            ``os.environ`` when None.
        **overrides: top-level keys that replace (mappings: deep-merge into) ``config``.

    Returns:
        the resolved configuration.

    Raises:
        ConfigError: an unknown key or a bad value (named by its dotted path), no target
            (neither base_url nor providers), or a non-boolean value of the environment
            variable.
    """
    cfg = parse_config(config, **overrides)
    mode, mode_reason = decide_mode(cfg, environ)
    limits = cfg.limits()
    flags = cfg.concurrency_optimization
    manager = (
        ComponentDecision(
            True,
            f"optimized mode; enforces max_concurrent_requests={limits.max_concurrent_requests}",
        )
        if mode == "optimized"
        else ComponentDecision(False, f"traditional mode: {mode_reason}")
    )
    return ResolvedConfig(
        config=cfg,
        limits=limits,
        mode=mode,
        mode_reason=mode_reason,
        targets=_targets(cfg),
        plugin_manager=_component(mode, mode_reason, flags, "use_lockfree_plugin_manager"),
        connection_pool=_component(mode, mode_reason, flags, "use_optimized_connection_pool"),
        request_processor=_component(mode, mode_reason, flags, "use_async_request_processor"),
        concurrency_manager=manager,
    )
