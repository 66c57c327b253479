"""Token counts given as a number or as a seeded distribution, and their samplers.

One form serves the profile's ``request.prompt_tokens`` / ``request.max_tokens`` and the mock
server's ``output_tokens``. It mirrors the mock's latency distributions, with counts (plain
integers, no units) instead of durations::

    200                                           # every request: 200
    {distribution: fixed, value: 200}
    {distribution: uniform, low: 100, high: 300}  # integers, both ends included
    {distribution: normal, mean: 200, stddev: 50}
    {distribution: lognormal, median: 200, p99: 1000}
    {distribution: exponential, mean: 200}

Draws are rounded to the nearest integer and clipped to ``[1, MAX_COUNT]`` (a normal draw of -3
becomes 1; a log-normal tail never asks for more than a million tokens).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_serializer,
    model_validator,
)

__all__ = [
    "MAX_COUNT",
    "CountSpec",
    "ExponentialCount",
    "FixedCount",
    "LognormalCount",
    "NormalCount",
    "OptionalCountSpec",
    "UniformCount",
    "count_mean",
    "make_count_sampler",
]

#: Largest count any draw gives (tokens).
MAX_COUNT = 1_000_000
#: z-score of the 99th percentile of the standard normal distribution, Φ⁻¹(0.99).
_Z_P99 = 2.3263478740408408


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class FixedCount(_Strict):
    """Always ``value``; written and dumped as the plain number."""

    distribution: Literal["fixed"] = "fixed"
    value: int = Field(ge=1, le=MAX_COUNT)

    @model_serializer
    def _as_number(self) -> int:
        return self.value


class UniformCount(_Strict):
    """An integer drawn uniformly from ``[low, high]`` (both included)."""

    distribution: Literal["uniform"]
    low: int = Field(ge=1, le=MAX_COUNT)
    high: int = Field(ge=1, le=MAX_COUNT)

    @model_validator(mode="after")
    def _ordered(self) -> UniformCount:
        if self.high < self.low:
            raise ValueError("a uniform count needs low <= high")
        return self


class NormalCount(_Strict):
    """Normal with ``mean`` and ``stddev``, rounded, clipped to ``[1, MAX_COUNT]``."""

    distribution: Literal["normal"]
    mean: float = Field(ge=1, le=MAX_COUNT)
    stddev: float = Field(ge=0)


class LognormalCount(_Strict):
    """Log-normal given by its median and 99th percentile (as the mock's latency is).

    ``mu = ln(median)``, ``sigma = ln(p99 / median) / z_0.99`` (``z_0.99`` = 2.3263...).
    """

    distribution: Literal["lognormal"]
    median: float = Field(ge=1, le=MAX_COUNT)
    p99: float = Field(ge=1, le=MAX_COUNT)

    @model_validator(mode="after")
    def _ordered(self) -> LognormalCount:
        if self.p99 < self.median:
            raise ValueError("a lognormal count needs p99 >= median")
        return self


class ExponentialCount(_Strict):
    """Exponential with the given ``mean``, rounded, clipped to ``[1, MAX_COUNT]``."""

    distribution: Literal["exponential"]
    mean: float = Field(ge=1, le=MAX_COUNT)


def _count_shorthand(value: Any) -> Any:
    """Let a plain integer stand for ``{distribution: fixed, value: N}``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {"distribution": "fixed", "value": value}
    if isinstance(value, dict):
        if "distribution" not in value and "value" in value:
            return {"distribution": "fixed", **value}
        return value
    if value is None:
        return value
    raise ValueError(
        "expected an integer (a number of tokens) or a distribution such as "
        "{distribution: uniform, low: 100, high: 300}"
    )


#: A token count: an integer or a distribution chosen by its ``distribution`` key.
CountSpec = Annotated[
    FixedCount | UniformCount | NormalCount | LognormalCount | ExponentialCount,
    BeforeValidator(_count_shorthand),
    Field(discriminator="distribution"),
]


#: The same, or ``None`` (an optional field).
OptionalCountSpec = Annotated[CountSpec | None, BeforeValidator(_count_shorthand)]


def _clip(x: float) -> int:
    return min(max(round(x), 1), MAX_COUNT)


def make_count_sampler(
    spec: FixedCount | UniformCount | NormalCount | LognormalCount | ExponentialCount,
    rng: random.Random,
) -> Callable[[], int]:
    """Build a function that draws one count from ``spec``.

    Args:
        spec: the distribution.
        rng: the seeded generator to draw from.

    Returns:
        A no-argument function returning an int in ``[1, MAX_COUNT]``.

    Methods (Python's :mod:`random`): ``randint`` (uniform), ``gauss`` (normal),
    ``lognormvariate`` (log-normal), ``expovariate`` (exponential); each draw rounded to the
    nearest integer and clipped.
    """
    if isinstance(spec, FixedCount):
        value = spec.value
        return lambda: value
    if isinstance(spec, UniformCount):
        low, high = spec.low, spec.high
        return lambda: rng.randint(low, high)
    if isinstance(spec, NormalCount):
        mean, stddev = spec.mean, spec.stddev
        return lambda: _clip(rng.gauss(mean, stddev))
    if isinstance(spec, LognormalCount):
        mu, sigma = math.log(spec.median), math.log(spec.p99 / spec.median) / _Z_P99
        return lambda: _clip(rng.lognormvariate(mu, sigma))
    if isinstance(spec, ExponentialCount):
        rate = 1.0 / spec.mean
        return lambda: _clip(rng.expovariate(rate))
    raise TypeError(f"unknown count spec {spec!r}")  # pragma: no cover - schema forbids it


def count_mean(
    spec: FixedCount | UniformCount | NormalCount | LognormalCount | ExponentialCount,
) -> float:
    """The mean of the distribution before rounding and clipping (for descriptions)."""
    if isinstance(spec, FixedCount):
        return float(spec.value)
    if isinstance(spec, UniformCount):
        return (spec.low + spec.high) / 2
    if isinstance(spec, LognormalCount):
        sigma = math.log(spec.p99 / spec.median) / _Z_P99
        return spec.median * math.exp(sigma * sigma / 2)
    return float(spec.mean)
