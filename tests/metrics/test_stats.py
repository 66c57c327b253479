"""Comparison statistics: intervals, verdicts and gates on synthetic data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harborbench.metrics.histogram import LatencyHistogram
from harborbench.metrics.stats import (
    Interval,
    bootstrap_ratio_ci,
    gate_verdict,
    mann_whitney,
    minimum_detectable_change,
    percentile_ratio_ci,
    verdict,
)


def _normal(seed: int, mean: float, sd: float, n: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, sd, n)


def _interval(low: float, high: float) -> Interval:
    return Interval((low + high) / 2, low, high, "test", 10, 10)


@pytest.mark.parametrize("method", ["percentile", "BCa"])
@pytest.mark.parametrize("stat", [np.median, np.mean])
def test_identical_samples_give_no_significant_difference(method: str, stat: object) -> None:
    a = _normal(1, 1000.0, 50.0, 60)
    ci = bootstrap_ratio_ci(a, a.copy(), stat, seed=7, method=method, n_resamples=2000)  # type: ignore[arg-type]
    assert ci.estimate == 1.0
    assert ci.low < 1.0 < ci.high
    assert ci.contains(1.0)
    assert ci.method == {"percentile": "percentile bootstrap", "BCa": "BCa"}[method]
    assert ci.note == ""
    assert (ci.n_a, ci.n_b, ci.confidence) == (60, 60, 0.95)
    assert verdict(ci, "higher") == "no significant difference"
    assert verdict(ci, "lower") == "no significant difference"
    assert gate_verdict(ci, 0.95, "higher") == "pass"  # identical data pass a -5 % gate


def test_clear_shift_is_better_or_worse_by_direction() -> None:
    a = _normal(2, 1000.0, 50.0, 60)
    b = _normal(3, 1200.0, 60.0, 60)
    ci = bootstrap_ratio_ci(a, b, np.mean, seed=1, n_resamples=2000)
    assert ci.estimate == pytest.approx(float(np.mean(b) / np.mean(a)), rel=1e-12)
    assert 1.15 < ci.low < ci.estimate < ci.high < 1.25
    assert verdict(ci, "higher") == "better"  # throughput up
    assert verdict(ci, "lower") == "worse"  # latency up
    down = bootstrap_ratio_ci(b, a, np.mean, seed=1, n_resamples=2000)
    assert down.high < 0.9
    assert verdict(down, "higher") == "worse"
    assert verdict(down, "lower") == "better"
    assert gate_verdict(down, 0.95, "higher") == "fail"  # a clear regression is caught


def test_small_regression_inside_wide_noise_is_inconclusive() -> None:
    a = _normal(4, 1000.0, 250.0, 12)
    b = _normal(5, 960.0, 250.0, 12)
    ci = bootstrap_ratio_ci(a, b, np.mean, seed=3, n_resamples=2000)
    assert ci.low < 0.95 < ci.high
    assert gate_verdict(ci, 0.95, "higher") == "inconclusive"
    assert verdict(ci, "higher") == "no significant difference"


def test_bootstrap_is_reproducible_by_seed() -> None:
    a, b = _normal(6, 10.0, 1.0, 30), _normal(7, 10.5, 1.0, 30)
    first = bootstrap_ratio_ci(a, b, seed=11, n_resamples=999)
    assert bootstrap_ratio_ci(a, b, seed=11, n_resamples=999) == first
    assert bootstrap_ratio_ci(a, b, seed=12, n_resamples=999) != first


def test_bca_falls_back_to_percentile_on_constant_samples() -> None:
    ci = bootstrap_ratio_ci([3.0] * 5, [6.0] * 5, np.mean, seed=1, method="BCa", n_resamples=999)
    assert (ci.estimate, ci.low, ci.high) == (2.0, 2.0, 2.0)
    assert ci.method == "percentile bootstrap"
    assert ci.note == "BCa undefined for these data"


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_ratio_ci([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        bootstrap_ratio_ci([1.0, math.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="1-D"):
        bootstrap_ratio_ci([[1.0, 2.0]], [1.0, 2.0])
    with pytest.raises(ValueError, match="undefined"):
        bootstrap_ratio_ci([0.0, 0.0, 0.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="method"):
        bootstrap_ratio_ci([1.0, 2.0], [1.0, 2.0], method="basic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ratio_ci([1.0, 2.0], [1.0, 2.0], confidence=95)


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


def test_minimum_detectable_change_by_hand() -> None:
    # s**2 = 4/3 on both sides, n = 4: se = sqrt(2/3), Welch df = 6
    # (t(0.975, 6) + t(0.8, 6)) * se / mean = (2.44691185 + 0.90570329) * 0.81649658 / 10
    a = [9.0, 11.0, 9.0, 11.0]
    assert minimum_detectable_change(a, a) == pytest.approx(0.27373987959763, rel=1e-9)
    noisier = minimum_detectable_change(a, [5.0, 15.0, 5.0, 15.0])
    assert noisier > 0.5
    bigger = minimum_detectable_change(a * 25, a * 25)
    assert bigger < 0.27373987959763 / 4  # 25x the data: better than 1/5 of the change
    assert minimum_detectable_change([2.0, 2.0], [2.0, 2.0]) == 0.0
    assert minimum_detectable_change([2.0], [2.0, 3.0]) == math.inf
    assert minimum_detectable_change([-1.0, 1.0], [2.0, 3.0]) == math.inf  # mean of A is 0
    with pytest.raises(ValueError, match="alpha"):
        minimum_detectable_change(a, a, alpha=0.0)


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


def test_percentile_ratio_identical_runs() -> None:
    hists = _interval_histograms(1, 2e6)
    ci = percentile_ratio_ci(hists, hists, 99, seed=5, n_resamples=1000)
    assert ci.estimate == 1.0
    assert ci.low < 1.0 < ci.high
    assert ci.method == "percentile bootstrap over intervals"
    assert (ci.n_a, ci.n_b) == (40, 40)
    assert verdict(ci, "lower") == "no significant difference"
    assert gate_verdict(ci, 1.10, "lower") == "pass"


def test_percentile_ratio_detects_a_slower_run_and_estimate_is_the_merged_ratio() -> None:
    a = _interval_histograms(2, 2e6)
    b = _interval_histograms(3, 2.5e6)
    ci = percentile_ratio_ci(a, b, 95, seed=5, n_resamples=1000)
    merged_a, merged_b = LatencyHistogram(), LatencyHistogram()
    for h in a:
        merged_a.merge(h)
    for h in b:
        merged_b.merge(h)
    assert ci.estimate == merged_b.percentile_ns(95) / merged_a.percentile_ns(95)
    assert 1.15 < ci.low < ci.estimate < ci.high < 1.35
    assert verdict(ci, "lower") == "worse"
    assert gate_verdict(ci, 1.10, "lower") == "fail"
    assert percentile_ratio_ci(a, b, 95, seed=5, n_resamples=1000) == ci  # seeded


def test_percentile_ratio_drops_empty_intervals_and_needs_two() -> None:
    a = _interval_histograms(4, 1e6, n=3)
    with_empty = [*a, LatencyHistogram()]
    ci = percentile_ratio_ci(with_empty, a, 50, seed=1, n_resamples=200)
    assert (ci.n_a, ci.n_b) == (3, 3)
    with pytest.raises(ValueError, match="at least 2 non-empty"):
        percentile_ratio_ci([a[0], LatencyHistogram()], a, 50)
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        percentile_ratio_ci(a, a, 101)
