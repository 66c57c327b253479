"""The one schema of the built-in mock server's behaviour: :class:`MockSettings`.

The same model validates the flags of ``harborbench serve``, a ``--settings FILE.yaml`` and the
``target.mock`` section of a workload profile. Every duration is a string with units
(``"10ms"``, ``"1.5s"``; see :mod:`harborbench.units`) stored as float seconds; a bare number
for a duration is refused so that ``10`` never silently means seconds or milliseconds.

A YAML example with every section (all optional; the defaults answer at once, without faults)::

    latency: {distribution: lognormal, median: 20ms, p99: 200ms}
    stream:
      ttft: {distribution: uniform, low: 50ms, high: 150ms}
      inter_token: 5ms          # shorthand for {distribution: fixed, value: 5ms}
      tokens_per_chunk: 1
    output_tokens: {min: 16, max: 64}   # or a fixed int: 32, or a distribution
                                        # {distribution: lognormal, median: 100, p99: 800},
                                        # or max_tokens: exactly the request's max_tokens
    faults:
      error_rate: 0.01
      error_status: 429         # 429 adds Retry-After (and retry-after-ms)
      retry_after: 1s
      hang_rate: 0.0
      reset_rate: 0.0
      stream_break_rate: 0.0
      stream_error_rate: 0.0
      stalls: [{at: 10s, duration: 2s}]
    seed: 0

Invalid settings raise :class:`pydantic.ValidationError`; ``harborbench serve`` and the
profile loader turn it into :class:`harborbench.errors.MockSettingsError` /
:class:`harborbench.errors.ProfileError` (exit 2).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from harborbench.counts import (
    ExponentialCount,
    FixedCount,
    LognormalCount,
    NormalCount,
    UniformCount,
)
from harborbench.units import parse_duration

if TYPE_CHECKING:
    from pydantic import ValidationError

    from harborbench.profile.diagnostics import Where

__all__ = [
    "Duration",
    "ExponentialLatency",
    "FaultSettings",
    "FixedLatency",
    "LatencySpec",
    "LognormalLatency",
    "MockSettings",
    "NormalLatency",
    "OutputTokens",
    "Stall",
    "StreamSettings",
    "UniformLatency",
    "format_seconds",
    "settings_problems",
]

#: z-score of the 99th percentile of the standard normal distribution, Φ⁻¹(0.99).
Z_P99 = 2.3263478740408408


def _parse_duration_field(value: Any) -> float:
    """Accept only a string with units; a bare number (int or float) is an error."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(
            f"a duration must be a string with units such as '10ms' or '1.5s', not {value!r}"
        )
    if value.strip().startswith("-"):
        raise ValueError(f"a duration cannot be negative, got {value!r}; write for example '10ms'")
    return parse_duration(value)


def format_seconds(seconds: float) -> str:
    """Format seconds as a duration string that :func:`parse_duration` reads back.

    Args:
        seconds: a non-negative duration in seconds.

    Returns:
        The value rounded to the nanosecond, e.g. ``"0.01s"``, ``"3600s"``, ``"0.000000001s"``
        (no exponent, which the duration grammar does not accept).
    """
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


#: A duration: written ``"10ms"``; validated to float seconds; serialized back with units.
Duration = Annotated[
    float,
    BeforeValidator(_parse_duration_field),
    PlainSerializer(format_seconds, return_type=str),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FixedLatency(_Strict):
    """Every request waits exactly ``value`` seconds."""

    distribution: Literal["fixed"] = "fixed"
    value: Duration = 0.0


class UniformLatency(_Strict):
    """Latency drawn uniformly from ``[low, high]`` seconds."""

    distribution: Literal["uniform"]
    low: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self) -> UniformLatency:
        if self.high < self.low:
            raise ValueError("uniform latency needs low <= high")
        return self


class NormalLatency(_Strict):
    """Normal latency with ``mean`` and ``stddev`` seconds; negative draws are clipped to 0."""

    distribution: Literal["normal"]
    mean: Duration
    stddev: Duration


class LognormalLatency(_Strict):
    """Log-normal latency given by its median and 99th percentile, in seconds.

    With ``mu = ln(median)`` and ``sigma = ln(p99 / median) / z_0.99`` (``z_0.99`` =
    2.3263..., the standard normal quantile), the draws have exactly that median and p99.
    """

    distribution: Literal["lognormal"]
    median: Duration
    p99: Duration

    @model_validator(mode="after")
    def _ordered(self) -> LognormalLatency:
        if self.median <= 0:
            raise ValueError("lognormal latency needs median > 0")
        if self.p99 < self.median:
            raise ValueError("lognormal latency needs p99 >= median")
        return self

    @property
    def mu(self) -> float:
        """Mean of the underlying normal distribution, ``ln(median)`` (ln seconds)."""
        return math.log(self.median)

    @property
    def sigma(self) -> float:
        """Standard deviation of the underlying normal, ``ln(p99/median) / z_0.99``."""
        return math.log(self.p99 / self.median) / Z_P99


class ExponentialLatency(_Strict):
    """Exponential latency with the given ``mean`` seconds (rate = 1 / mean)."""

    distribution: Literal["exponential"]
    mean: Duration


def _latency_shorthand(value: Any) -> Any:
    """Let ``latency: 10ms`` stand for ``{distribution: fixed, value: 10ms}``."""
    if isinstance(value, str):
        return {"distribution": "fixed", "value": value}
    if isinstance(value, dict) and "distribution" not in value and "value" in value:
        return {"distribution": "fixed", **value}
    return value


#: One latency distribution, chosen by its ``distribution`` key.
LatencySpec = Annotated[
    FixedLatency | UniformLatency | NormalLatency | LognormalLatency | ExponentialLatency,
    BeforeValidator(_latency_shorthand),
    Field(discriminator="distribution"),
]


class OutputTokens(_Strict):
    """Number of generated tokens, drawn uniformly from the integers ``[min, max]``.

    A request's ``max_tokens`` (or ``max_completion_tokens``) caps the draw.
    """

    min: int = Field(default=16, ge=1)
    max: int = Field(default=64, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _fixed_int(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return {"min": value, "max": value}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> OutputTokens:
        if self.max < self.min:
            raise ValueError("output_tokens needs min <= max")
        return self


#: A distribution of output lengths (tokens), the form of :mod:`harborbench.counts`.
OutputDistribution = Annotated[
    FixedCount | UniformCount | NormalCount | LognormalCount | ExponentialCount,
    Field(discriminator="distribution"),
]


class StreamSettings(_Strict):
    """Timing of Server-Sent-Event streams (``"stream": true`` requests).

    For a stream, ``ttft`` replaces the request ``latency``: the role chunk and the first
    content chunk are sent after ``ttft``; each later content chunk after ``inter_token``.
    """

    ttft: LatencySpec = Field(default_factory=FixedLatency)
    inter_token: LatencySpec = Field(default_factory=FixedLatency)
    tokens_per_chunk: int = Field(default=1, ge=1)


class Stall(_Strict):
    """A window in which the server stops answering: from ``at`` after start, for ``duration``.

    Requests that arrive in the window, and stream chunks due in it, wait until it ends.
    """

    at: Duration
    duration: Duration


class FaultSettings(_Strict):
    """Injected faults. The rates are fractions of requests, each in ``[0, 1]``.

    One uniform draw per request picks at most one fault, so the rates must sum to at most 1.
    ``stream_break_rate`` and ``stream_error_rate`` apply to streaming requests only (a
    non-streaming request that draws them is answered normally).
    """

    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    error_status: int = Field(default=500, ge=400, le=599)
    retry_after: Duration = 1.0
    hang_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    reset_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    stream_break_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    stream_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    stalls: tuple[Stall, ...] = ()

    @model_validator(mode="after")
    def _sum_at_most_one(self) -> FaultSettings:
        total = (
            self.error_rate
            + self.hang_rate
            + self.reset_rate
            + self.stream_break_rate
            + self.stream_error_rate
        )
        if total > 1.0 + 1e-12:
            raise ValueError(
                f"the fault rates sum to {total:g}; one draw picks at most one fault per "
                "request, so error_rate + hang_rate + reset_rate + stream_break_rate + "
                "stream_error_rate must be at most 1"
            )
        return self


class MockSettings(_Strict):
    """Everything the built-in OpenAI-compatible mock server can be told to do.

    Attributes:
        latency: delay before a non-streaming answer (seconds, by distribution).
        stream: time to first token, inter-token delay and tokens per chunk of streams.
        output_tokens: generated tokens per answer: a uniform integer range ``{min, max}`` (or
            one number), a distribution of :mod:`harborbench.counts`, each capped by the
            request's ``max_tokens``; or ``"max_tokens"``: exactly the request's ``max_tokens``
            (so a dataset's or a trace's expected output lengths, sent as ``max_tokens``, are
            what the mock generates). A request with ``"ignore_eos": true`` (vLLM's option) also
            gets exactly its ``max_tokens``.
        faults: injected errors, hangs, resets, broken streams and stall windows.
        seed: seed of the server's random draws; the i-th request received gets the i-th
            draws, so a sequential client sees the same behaviour run after run.
        models: model ids listed by ``GET /v1/models`` (any requested model is echoed back).
    """

    latency: LatencySpec = Field(default_factory=FixedLatency)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    output_tokens: OutputTokens | OutputDistribution | Literal["max_tokens"] = Field(
        default_factory=OutputTokens
    )
    faults: FaultSettings = Field(default_factory=FaultSettings)
    seed: int = 0
    models: tuple[str, ...] = ("harbor-mock",)


def settings_problems(exc: ValidationError, where: Where | str) -> str:
    """One line naming every invalid key of mock settings, ended by a full stop (so a hint may
    follow it).

    Written by the one formatter of validation errors,
    :func:`harborbench.profile.diagnostics.problems` (``file:line: key.path: what is wrong;
    the fix``, or ``key.path (from --flag)``, did-you-mean, no echoed secrets).

    Args:
        exc: the error of validating :class:`MockSettings`.
        where: where the settings came from: a :class:`~harborbench.profile.diagnostics.Where`
            (file, lines, flags) or a plain source name such as ``"--settings-json"``.

    Returns:
        ``"invalid mock settings in SOURCE: key.path: problem; ..."``.
    """
    from harborbench.profile.diagnostics import Where, problems

    place = where if isinstance(where, Where) else Where(where)
    text = "invalid mock settings in " + "; ".join(problems(MockSettings, exc, place))
    return text if text.endswith((".", "!", "?")) else text + "."
