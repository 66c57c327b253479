"""Seeded samplers for the mock server's latencies and output lengths.

The samplers draw from one :class:`random.Random` (Mersenne Twister) that the server seeds from
``MockSettings.seed``; a scalar draw costs about a tenth of a microsecond, which keeps the
request handler lean (a numpy ``Generator`` costs several times more per scalar draw).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from harborbench.counts import (
    ExponentialCount,
    FixedCount,
    LognormalCount,
    NormalCount,
    UniformCount,
    make_count_sampler,
)
from harborbench.mockserver.settings import (
    ExponentialLatency,
    FixedLatency,
    LatencySpec,
    LognormalLatency,
    NormalLatency,
    OutputTokens,
    UniformLatency,
)

__all__ = ["make_latency_sampler", "make_token_sampler"]

CountDistribution = FixedCount | UniformCount | NormalCount | LognormalCount | ExponentialCount


def make_latency_sampler(spec: LatencySpec, rng: random.Random) -> Callable[[], float]:
    """Build a function that draws one latency in seconds from ``spec``.

    Args:
        spec: the distribution (fixed, uniform, normal, lognormal or exponential).
        rng: the seeded generator to draw from (shared, so draws interleave in call order).

    Returns:
        A no-argument function returning a latency in seconds (float, >= 0).

    Methods (Python's :mod:`random`): uniform ``rng.uniform(low, high)``; normal
    ``rng.gauss(mean, stddev)`` clipped at 0 (so the clipped mass sits at 0 when
    ``mean < 3 stddev``); lognormal ``rng.lognormvariate(mu, sigma)`` with ``mu = ln(median)``,
    ``sigma = ln(p99/median) / 2.3263`` (the 0.99 quantile of the standard normal);
    exponential ``rng.expovariate(1 / mean)``.
    """
    if isinstance(spec, FixedLatency):
        value_s = spec.value
        return lambda: value_s
    if isinstance(spec, UniformLatency):
        low_s, high_s = spec.low, spec.high
        uniform = rng.uniform
        return lambda: uniform(low_s, high_s)
    if isinstance(spec, NormalLatency):
        mean_s, stddev_s = spec.mean, spec.stddev
        gauss = rng.gauss
        return lambda: max(0.0, gauss(mean_s, stddev_s))
    if isinstance(spec, LognormalLatency):
        mu, sigma = spec.mu, spec.sigma
        lognorm = rng.lognormvariate
        return lambda: lognorm(mu, sigma)
    if isinstance(spec, ExponentialLatency):
        if spec.mean == 0:
            return lambda: 0.0
        rate_per_s = 1.0 / spec.mean
        expo = rng.expovariate
        return lambda: expo(rate_per_s)
    raise TypeError(f"unknown latency spec {spec!r}")  # pragma: no cover - schema forbids it


def make_token_sampler(
    spec: OutputTokens | CountDistribution, rng: random.Random
) -> Callable[[], int]:
    """Build a function that draws one output length in tokens.

    Args:
        spec: the inclusive integer range (uniform on ``[min, max]``), or a distribution of
            :mod:`harborbench.counts` (:func:`harborbench.counts.make_count_sampler`).
        rng: the seeded generator to draw from.

    Returns:
        A no-argument function returning the number of tokens (int, >= 1).
    """
    if not isinstance(spec, OutputTokens):
        return make_count_sampler(spec, rng)
    low, high = spec.min, spec.max
    if low == high:
        return lambda: low
    randint = rng.randint
    return lambda: randint(low, high)
