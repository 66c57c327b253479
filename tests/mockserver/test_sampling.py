"""The samplers' exact statistics for a fixed seed (many draws, tight tolerances)."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest

from harborbench.mockserver.sampling import make_latency_sampler, make_token_sampler
from harborbench.mockserver.settings import MockSettings

N = 200_000


def draws(latency: object, seed: int = 1234) -> np.ndarray:
    spec = MockSettings.model_validate({"latency": latency}).latency
    sample = make_latency_sampler(spec, random.Random(seed))
    return np.array([sample() for _ in range(N)])


def test_fixed_is_exact() -> None:
    values = draws("25ms")
    assert values.min() == values.max() == 0.025


def test_uniform() -> None:
    values = draws({"distribution": "uniform", "low": "10ms", "high": "30ms"})
    assert values.min() >= 0.010
    assert values.max() <= 0.030
    assert values.mean() == pytest.approx(0.020, rel=0.005)
    assert values.std() == pytest.approx(0.020 / math.sqrt(12), rel=0.01)


def test_normal() -> None:
    values = draws({"distribution": "normal", "mean": "50ms", "stddev": "5ms"})
    assert values.mean() == pytest.approx(0.050, rel=0.002)
    assert values.std() == pytest.approx(0.005, rel=0.01)


def test_normal_is_clipped_at_zero() -> None:
    values = draws({"distribution": "normal", "mean": "1ms", "stddev": "10ms"})
    assert values.min() == 0.0
    # P(X < 0) for N(1, 10) ms is Phi(-0.1) = 0.4602
    assert (values == 0.0).mean() == pytest.approx(0.4602, abs=0.005)


def test_lognormal_median_and_p99() -> None:
    values = draws({"distribution": "lognormal", "median": "20ms", "p99": "200ms"})
    assert np.median(values) == pytest.approx(0.020, rel=0.02)
    assert np.quantile(values, 0.99) == pytest.approx(0.200, rel=0.05)


def test_lognormal_with_p99_equal_median_is_fixed() -> None:
    values = draws({"distribution": "lognormal", "median": "20ms", "p99": "20ms"})
    assert values.min() == pytest.approx(0.020)
    assert values.max() == pytest.approx(0.020)


def test_exponential() -> None:
    values = draws({"distribution": "exponential", "mean": "10ms"})
    assert values.mean() == pytest.approx(0.010, rel=0.01)
    assert np.median(values) == pytest.approx(0.010 * math.log(2), rel=0.02)


def test_exponential_zero_mean_is_zero() -> None:
    assert draws({"distribution": "exponential", "mean": "0s"}).max() == 0.0


def test_same_seed_same_sequence_other_seed_differs() -> None:
    spec = {"distribution": "exponential", "mean": "10ms"}
    assert np.array_equal(draws(spec, seed=5), draws(spec, seed=5))
    assert not np.array_equal(draws(spec, seed=5), draws(spec, seed=6))


def test_token_sampler_covers_range_uniformly() -> None:
    spec = MockSettings.model_validate({"output_tokens": {"min": 3, "max": 6}}).output_tokens
    sample = make_token_sampler(spec, random.Random(0))
    counts = Counter(sample() for _ in range(40_000))
    assert sorted(counts) == [3, 4, 5, 6]
    for n in range(3, 7):
        assert counts[n] == pytest.approx(10_000, rel=0.05)


def test_token_sampler_fixed() -> None:
    spec = MockSettings.model_validate({"output_tokens": 7}).output_tokens
    sample = make_token_sampler(spec, random.Random(0))
    assert {sample() for _ in range(100)} == {7}
