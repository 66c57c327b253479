"""The Universal Scalability Law: the formula, and a fit that recovers known parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harborbench.metrics.usl import FIT_MIN_POINTS, fit_usl, usl_throughput

LEVELS = [1, 2, 4, 8, 16, 32, 64, 128, 256]


def test_formula_at_known_points() -> None:
    # X(1) = lambda whatever sigma and kappa; X(N) by hand for N = 10.
    assert float(usl_throughput(1, 50.0, 0.3, 0.01)) == pytest.approx(50.0)
    expected = 50.0 * 10 / (1 + 0.05 * 9 + 0.001 * 10 * 9)
    assert float(usl_throughput(10, 50.0, 0.05, 0.001)) == pytest.approx(expected, rel=1e-12)
    # sigma = kappa = 0 is linear scaling.
    assert usl_throughput([1, 2, 8], 7.0, 0.0, 0.0).tolist() == pytest.approx([7.0, 14.0, 56.0])


def test_fit_recovers_exact_parameters() -> None:
    truth = (40.0, 0.02, 3e-4)
    x = usl_throughput(LEVELS, *truth)
    fit = fit_usl(LEVELS, x.tolist())
    assert fit.good and fit.points == len(LEVELS)
    assert fit.lambda_ops == pytest.approx(truth[0], rel=1e-5)
    assert fit.sigma == pytest.approx(truth[1], rel=1e-4)
    assert fit.kappa == pytest.approx(truth[2], rel=1e-4)
    assert fit.r_squared == pytest.approx(1.0, abs=1e-9)
    peak = math.sqrt((1 - truth[1]) / truth[2])  # Gunther's N*
    assert fit.peak_concurrency == pytest.approx(peak, rel=1e-4)
    assert fit.peak_throughput_ops == pytest.approx(float(usl_throughput(peak, *truth)), rel=1e-5)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fit_recovers_parameters_from_noisy_data(seed: int) -> None:
    truth = (35.0, 0.05, 1e-4)
    rng = np.random.default_rng(seed)
    noisy = usl_throughput(LEVELS, *truth) * rng.normal(1.0, 0.02, size=len(LEVELS))
    fit = fit_usl(LEVELS, noisy.tolist())
    assert fit.good, fit.note
    assert fit.lambda_ops == pytest.approx(truth[0], rel=0.05)
    assert fit.sigma == pytest.approx(truth[1], abs=0.015)
    assert fit.kappa == pytest.approx(truth[2], rel=0.35)
    assert fit.r_squared is not None and fit.r_squared > 0.98
    assert fit.peak_concurrency == pytest.approx(math.sqrt(0.95 / 1e-4), rel=0.2)
    assert fit.predict(64) == pytest.approx(float(usl_throughput(64, *truth)), rel=0.05)


def test_linear_data_has_no_peak() -> None:
    fit = fit_usl([1, 2, 4, 8], [10.0, 20.0, 40.0, 80.0])
    assert fit.good
    assert fit.kappa == pytest.approx(0.0, abs=1e-6)
    assert fit.sigma == pytest.approx(0.0, abs=1e-6)
    assert fit.peak_concurrency is None or fit.peak_concurrency > 1e3


def test_too_few_levels_is_not_a_fit() -> None:
    fit = fit_usl([1, 2, 4, 4], [10.0, 19.0, 35.0, 36.0])
    assert FIT_MIN_POINTS == 4
    assert not fit.good and fit.lambda_ops is None
    assert "too few load levels" in fit.note and "measured points are used" in fit.note
    assert fit.predict(2) is None


def test_a_poor_fit_says_so_and_predicts_nothing() -> None:
    # Throughput that jumps up and down with N: no USL curve explains it.
    fit = fit_usl([1, 2, 4, 8, 16, 32], [100.0, 5.0, 100.0, 5.0, 100.0, 5.0])
    assert not fit.good
    assert fit.r_squared is not None and fit.r_squared < 0.9
    assert fit.note.startswith("poor fit (R^2")
    assert fit.predict(8) is None


def test_a_peak_far_beyond_the_measured_range_is_not_reported() -> None:
    # Nearly linear data with a trace of coherency: the fit puts N* in the millions.
    n = np.array([1, 2, 4, 8])
    x = usl_throughput(n, 37.0, 0.0, 1e-9) * np.array([1.0, 1.001, 0.999, 1.0])
    fit = fit_usl(n, x)
    assert fit.good
    assert fit.peak_concurrency is None and fit.peak_throughput_ops is None
    assert "no peak within 4x the measured range" in fit.note
