"""Comparison statistics: intervals, verdicts and gates on synthetic data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harborbench.metrics.histogram import LatencyHistogram
from harborbench.metrics.stats import (
    Interval,
    gate_verdict,
    mann_whitney,
    verdict,
)


def _normal(seed: int, mean: float, sd: float, n: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, sd, n)


def _interval(low: float, high: float) -> Interval:
    return Interval((low + high) / 2, low, high, "test", 10, 10)


def test_mann_whitney_exact_cases() -> None:
    u, p = mann_whitney([1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0])
    assert u == 0.0
    assert p == pytest.approx(2 / 252, rel=1e-12)  # exact: 2 of the C(10, 5) orderings
    a = _normal(8, 0.0, 1.0, 40)
    u, p = mann_whitney(a, a.copy())
    assert u == 40 * 40 / 2
    assert p == 1.0
    with pytest.raises(ValueError, match="at least 1"):
        mann_whitney([], [1.0])


@pytest.mark.parametrize(
    ("low", "high", "threshold_ratio", "better", "expected"),
    [
        # --fail-on throughput:-5%
        (0.96, 1.02, 0.95, "higher", "pass"),
        (0.95, 1.02, 0.95, "higher", "pass"),
        (0.90, 0.94, 0.95, "higher", "fail"),
        (0.93, 0.97, 0.95, "higher", "inconclusive"),
        (0.90, 0.95, 0.95, "higher", "inconclusive"),
        # --fail-on p99:+10%
        (1.00, 1.05, 1.10, "lower", "pass"),
        (1.00, 1.10, 1.10, "lower", "pass"),
        (1.12, 1.30, 1.10, "lower", "fail"),
        (1.05, 1.15, 1.10, "lower", "inconclusive"),
        (1.10, 1.20, 1.10, "lower", "inconclusive"),
        (math.nan, math.nan, 1.10, "lower", "inconclusive"),
    ],
)
def test_gate_verdict(
    low: float, high: float, threshold_ratio: float, better: str, expected: str
) -> None:
    assert gate_verdict(_interval(low, high), threshold_ratio, better) == expected  # type: ignore[arg-type]


def test_gate_and_verdict_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="better"):
        gate_verdict(_interval(0.9, 1.1), 0.95, "up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        gate_verdict(_interval(0.9, 1.1), 0.0, "higher")
    with pytest.raises(ValueError, match="better"):
        verdict(_interval(0.9, 1.1), "up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold"):
        verdict(_interval(0.9, 1.1), "higher", threshold=-0.1)


def test_verdict_threshold() -> None:
    ci = _interval(1.03, 1.08)
    assert verdict(ci, "higher") == "better"
    assert verdict(ci, "higher", threshold=0.05) == "no significant difference"
    assert verdict(_interval(0.90, 0.94), "lower", threshold=0.05) == "better"
    assert verdict(_interval(math.nan, math.nan), "lower") == "no significant difference"


def _interval_histograms(
    seed: int, median_ns: float, n: int = 40, per: int = 300
) -> list[LatencyHistogram]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h = LatencyHistogram()
        for v in rng.lognormal(np.log(median_ns), 0.5, per):
            h.record_ns(int(v))
        out.append(h)
    return out
