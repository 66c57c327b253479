"""The schema of a workload profile (SPEC section 5): pydantic models, unknown keys refused.

:class:`Profile` and its sections (:class:`RequestSpec`, :class:`TargetSpec`,
:class:`LoadSpec` with its :class:`Stage` list, :class:`Gates`) are frozen and strict. Durations
are float seconds written with units (``Duration``), fractions accept ``"1%"`` (``Fraction``).
Loading from YAML or plain data is :mod:`harborbench.profile.loader`.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from harborbench.mockserver.settings import MockSettings
from harborbench.profile.diagnostics import AtKey
from harborbench.profile.overrides import duration_text
from harborbench.units import parse_duration

#: The request sent when a profile gives neither ``messages`` nor ``prompt_tokens``.
DEFAULT_MESSAGES: tuple[tuple[str, str], ...] = (
    ("user", "Reply with one short sentence about harbors."),
)
#: Characters per token assumed when synthesizing a prompt of ``prompt_tokens`` tokens; the
#: usual rule of thumb for English text with OpenAI tokenizers.
CHARS_PER_TOKEN = 4

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RUN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


# --- field types --------------------------------------------------------------------------


def _duration_in(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value  # the float check then rejects it with the type in the message
    raise ValueError(
        f"a duration needs units: write for example '{value:g}s' or '{value:g}ms', "
        "not a bare number"
    )


#: Seconds, written with units (``"500ms"``); serialized with units (as MockSettings does).
Duration = Annotated[
    float,
    BeforeValidator(_duration_in),
    PlainSerializer(duration_text, return_type=str),
]


def _fraction_in(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not text.endswith("%"):
            raise ValueError("write a fraction such as 0.01 or a percentage such as '1%'")
        try:
            return float(text[:-1]) / 100.0
        except ValueError:
            raise ValueError("write a percentage such as '1%' or a fraction such as 0.01") from None
    return value


#: A fraction in [0, 1]; also written as a percentage string (``"1%"`` is 0.01).
Fraction = Annotated[float, BeforeValidator(_fraction_in), Field(ge=0.0, le=1.0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


# --- the schema ---------------------------------------------------------------------------


class Message(_Model):
    """One chat message of the request: ``role`` and ``content`` (text)."""

    role: Literal["system", "user", "assistant"]
    content: str


class RequestSpec(_Model):
    """What every request of the workload sends.

    Attributes:
        model: the model name sent in the request.
        messages: the chat messages; exclusive with ``prompt_tokens``.
        prompt_tokens: instead of ``messages``, synthesize one user message of about this many
            tokens (``CHARS_PER_TOKEN`` characters each), deterministic for a given seed.
        max_tokens: the request's ``max_tokens`` (output tokens).
        stream: ask for a Server-Sent-Events stream.
        timeout: seconds a single request may take before it counts as a timeout.
    """

    model: str = Field(default="gpt-4o-mini", min_length=1)
    messages: list[Message] | None = Field(default=None, min_length=1)
    prompt_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    max_tokens: int = Field(default=64, ge=1)
    stream: bool = False
    timeout: Duration = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_prompt(self) -> RequestSpec:
        if self.messages is not None and self.prompt_tokens is not None:
            raise AtKey(
                "prompt_tokens", "give either messages or prompt_tokens, not both; remove one"
            )
        return self

    def build_messages(self, seed: int = 0) -> list[dict[str, str]]:
        """Return the chat messages to send, as plain dicts (``{"role": ..., "content": ...}``).

        Args:
            seed: seed of the synthesized prompt (used only with ``prompt_tokens``); the same
                seed and size always give the same text.

        Returns:
            ``messages`` as given; or one user message of ``prompt_tokens * CHARS_PER_TOKEN``
            characters of pseudo-random lowercase words; or ``DEFAULT_MESSAGES``.
        """
        if self.messages is not None:
            return [{"role": m.role, "content": m.content} for m in self.messages]
        if self.prompt_tokens is not None:
            return [{"role": "user", "content": _synthetic_text(self.prompt_tokens, seed)}]
        return [{"role": role, "content": content} for role, content in DEFAULT_MESSAGES]


def _synthetic_text(tokens: int, seed: int) -> str:
    rng = random.Random(f"harborbench-prompt:{seed}:{tokens}")
    letters = "etaoinshrdlucmfwypvbgk"
    n_chars = tokens * CHARS_PER_TOKEN
    parts: list[str] = []
    length = -1  # n words take their letters plus n - 1 spaces
    while length < n_chars:
        word = "".join(rng.choice(letters) for _ in range(rng.randint(2, 7)))
        parts.append(word)
        length += len(word) + 1
    text = " ".join(parts)[:n_chars]
    return text[:-1] + "e" if text.endswith(" ") else text


class TargetSpec(_Model):
    """Where requests go: the built-in mock (started in its own process) or a ``base_url``.

    Attributes:
        mock: settings of the built-in mock server; the default when no ``base_url`` is given.
        base_url: an OpenAI-compatible endpoint such as ``https://api.example.com/v1``.
        api_key_env: with ``base_url``: the NAME of the environment variable holding the key.
    """

    mock: MockSettings | None = None
    base_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    api_key_env: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_mock(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("mock") is None and data.get("base_url") is None:
            return {**data, "mock": {}}
        return data

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        # Never echo the value: a key pasted here by mistake must not reach a log.
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(
                "must be the NAME of an environment variable (letters, digits, _), "
                "never the key itself"
            )
        return value

    @model_validator(mode="after")
    def _one_target(self) -> TargetSpec:
        if self.mock is not None and self.base_url is not None:
            raise AtKey("base_url", "give either mock or base_url, not both; remove one")
        if self.api_key_env is not None and self.base_url is None:
            raise AtKey("api_key_env", "api_key_env applies only with base_url; remove it")
        return self


class Stage(_Model):
    """One step of a staged load: ``duration`` seconds at ``rate`` ops/s or ``concurrency``."""

    duration: Duration = Field(gt=0)
    rate: float | None = Field(default=None, gt=0)
    concurrency: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_level(self) -> Stage:
        if (self.rate is None) == (self.concurrency is None):
            raise ValueError("a stage needs exactly one of rate (ops/s) or concurrency")
        return self


class LoadSpec(_Model):
    """How hard to drive the target.

    Exactly one of:
        concurrency: closed loop with this many workers, each sending its next request when
            its last one ends.
        rate: open loop at this many ops/s, on an absolute schedule from the start time;
            ``arrival`` chooses constant spacing or a seeded Poisson process.
        stages: a list of (duration, rate or concurrency) steps, all of the same kind; rate
            stages use ``arrival`` too.

    Open loop only:
        max_outstanding: the most requests pending at once; an arrival beyond it is not sent but
            counted as dropped (k6's ``dropped_iterations``) and the generator is flagged as
            saturated. Default: 4 x the client's ``max_concurrent_requests`` (the requests the
            client can have on the wire plus a bounded queue), so an overloaded client keeps
            working at its capacity instead of drowning in a backlog of tasks.
    """

    concurrency: int | None = Field(default=None, ge=1)
    rate: float | None = Field(default=None, gt=0)
    arrival: Literal["constant", "poisson"] = "constant"
    stages: list[Stage] | None = Field(default=None, min_length=1)
    max_outstanding: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_kind(self) -> LoadSpec:
        given = [k for k in ("concurrency", "rate", "stages") if getattr(self, k) is not None]
        if len(given) != 1:
            if not given:
                raise ValueError("give one of concurrency, rate (ops/s) or stages")
            raise AtKey(
                given[1], f"give only one of {' / '.join(given)}; they are different load models"
            )
        if self.stages is not None:
            kinds = {"rate" if s.rate is not None else "concurrency" for s in self.stages}
            if len(kinds) > 1:
                first = self.stages[0].rate is not None
                odd = next(i for i, s in enumerate(self.stages) if (s.rate is not None) != first)
                raise AtKey(
                    ("stages", odd),
                    f"stage {odd} mixes kinds: all stages must use rate, or all concurrency",
                )
        if self.arrival == "poisson" and self.kind == "closed":
            raise AtKey("arrival", "arrival applies to open-loop rates; remove it or use rate")
        closed = self.kind == "closed" or self.stage_kind == "concurrency"
        if self.max_outstanding is not None and closed:
            raise AtKey(
                "max_outstanding",
                "max_outstanding bounds an open loop's backlog; a closed loop has concurrency "
                "requests at most: remove it or use rate",
            )
        return self

    @property
    def kind(self) -> Literal["closed", "open", "stages"]:
        """``closed`` (concurrency), ``open`` (rate) or ``stages``."""
        if self.concurrency is not None:
            return "closed"
        if self.rate is not None:
            return "open"
        return "stages"

    @property
    def stage_kind(self) -> Literal["rate", "concurrency"] | None:
        """With stages: whether they set ``rate`` or ``concurrency``; otherwise ``None``."""
        if not self.stages:
            return None
        return "rate" if self.stages[0].rate is not None else "concurrency"


class Gates(_Model):
    """Pass/fail thresholds of a run (SPEC section 8); each is optional.

    Attributes:
        throughput_min: minimum successful ops/s.
        p95_max: maximum 95th percentile latency, seconds (written ``200ms``).
        error_rate_max: maximum failed / (successful + failed), a fraction (``1%`` = 0.01).
        memory_growth_max_pct: maximum RSS growth over the window, percent.
        memory_slope_max_mb_per_min: maximum RSS slope, MB per minute.
        success_rate_min: minimum successful / (successful + failed), a fraction.
        cpu_efficiency_gain_min_pct: minimum gain in ops per CPU second over a baseline run,
            percent; a relative gate used only by ``compare`` and ``rollback-check``.
    """

    throughput_min: float | None = Field(default=None, ge=0)
    p95_max: Duration | None = Field(default=None, gt=0)
    error_rate_max: Fraction | None = None
    memory_growth_max_pct: float | None = Field(default=None, ge=0)
    memory_slope_max_mb_per_min: float | None = Field(default=None, ge=0)
    success_rate_min: Fraction | None = None
    cpu_efficiency_gain_min_pct: float | None = None


class Profile(_Model):
    """A complete workload profile (SPEC section 5).

    Attributes:
        name: the run name (``reports/<name>/``): letters, digits, ``_``, ``.``, ``-``.
        description: free text shown by ``harborbench profiles``.
        target, request, client, load, gates: the sections described in their classes;
            ``client`` is the config dict of ``create_fast_client``, checked by
            ``harborbench.harborai.config.validate_config``.
        warmup: seconds of load before the measurement window (excluded from every figure).
        duration: seconds of the measurement window after warmup; with stages it may be left
            out and is then the sum of the stage durations (if given, it must equal that sum).
        repeat: number of trials.
        seed: seed of every random choice of the run (Poisson arrivals, synthesized prompt).
    """

    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    target: TargetSpec = Field(default_factory=TargetSpec)
    request: RequestSpec = Field(default_factory=RequestSpec)
    client: dict[str, Any] = Field(default_factory=dict)
    load: LoadSpec
    warmup: Duration = Field(default=0.0, ge=0)
    duration: Duration = Field(gt=0)
    repeat: int = Field(default=1, ge=1)
    seed: int = Field(default=0, ge=0)
    gates: Gates = Field(default_factory=Gates)

    @model_validator(mode="before")
    @classmethod
    def _duration_from_stages(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "duration" in data:
            return data
        load = data.get("load")
        stages = load.get("stages") if isinstance(load, dict) else None
        if not isinstance(stages, list):
            return data
        total = 0.0
        for stage in stages:
            raw = stage.get("duration") if isinstance(stage, dict) else None
            # A bad stage duration is reported on the stage; do not add "duration missing".
            with contextlib.suppress(ValueError):
                total += _duration_in(raw) if isinstance(raw, str) else 0.0
        return {**data, "duration": duration_text(total)} if total > 0 else data

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _RUN_NAME.match(value) or value in (".", ".."):
            raise ValueError(
                "a run name may use only letters, digits, '_', '.' and '-' (it names the "
                "folder reports/<name>/); for example steady-500"
            )
        return value

    @field_validator("client")
    @classmethod
    def _client_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        for forbidden, where in (("base_url", "target.base_url"), ("api_key_env", None)):
            if forbidden in value:
                to = where or "target.api_key_env"
                raise ValueError(f"{forbidden!r} does not belong in client; set {to} instead")
        secret = _find_key(value, "api_key")
        if secret is not None:
            raise ValueError(
                f"{secret!r}: an API key is never written in a profile; put it in an "
                "environment variable and name that variable in target.api_key_env"
            )
        # The client library owns its schema: unknown keys and bad values are found there.
        from harborbench.harborai.config import validate_config
        from harborbench.harborai.errors import ConfigError

        try:
            validate_config(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _stages_sum(self) -> Profile:
        if self.load.stages is not None:
            total = sum(s.duration for s in self.load.stages)
            if abs(total - self.duration) > 1e-6 * max(1.0, total):
                raise AtKey(
                    "duration",
                    f"with stages, duration must equal the sum of the stage durations "
                    f"({duration_text(total)}); remove duration or fix it",
                )
        return self


def _find_key(value: Any, key: str, path: str = "client") -> str | None:
    """Dotted path of the first mapping key named ``key`` inside ``value``, or ``None``."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            here = f"{path}.{k}"
            if k == key:
                return here
            found = _find_key(v, key, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _find_key(v, key, f"{path}[{i}]")
            if found is not None:
                return found
    return None
