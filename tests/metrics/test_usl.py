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


def test_fit_of_a_fast_target_starts_from_its_per_worker_throughput() -> None:
    # 100,000 ops/s per worker: started from lambda = 1 (curve_fit's default) the solver stalls
    # far away; from max(X/N) it recovers the curve.
    n = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])
    truth = (1e5, 0.001, 1e-7)
    noisy = usl_throughput(n, *truth) * np.random.default_rng(0).normal(1.0, 0.05, len(n))
    fit = fit_usl(n.tolist(), noisy.tolist())
    assert fit.good, fit.note
    assert fit.lambda_ops == pytest.approx(1e5, rel=0.02)
    assert fit.sigma is not None and fit.sigma < 0.01


def test_fit_of_a_slow_target_below_one_op_per_second() -> None:
    # An LLM call of 20 s: 0.05 ops/s per worker (lambda is not bounded below by 1).
    truth = (0.05, 0.02, 3e-4)
    fit = fit_usl(LEVELS, usl_throughput(LEVELS, *truth).tolist())
    assert fit.lambda_ops == pytest.approx(0.05, rel=1e-5)
    assert fit.sigma == pytest.approx(0.02, rel=1e-4)
    assert fit.kappa == pytest.approx(3e-4, rel=1e-4)
    assert fit.note == ""  # a good fit with its peak in range says nothing


def test_r_squared_is_computed_about_the_mean() -> None:
    n = [1, 2, 4, 8]
    x = np.array([1.0, 1.1, 1.2, 1.3])  # total sum of squares 0.05 (< 1)
    fit = fit_usl(n, x.tolist())
    assert fit.lambda_ops is not None and fit.sigma is not None and fit.kappa is not None
    predicted = usl_throughput(n, fit.lambda_ops, fit.sigma, fit.kappa)
    expected = 1.0 - np.sum((x - predicted) ** 2) / np.sum((x - x.mean()) ** 2)
    assert fit.r_squared == pytest.approx(expected, rel=1e-9)
    assert 0.9 < expected < 0.99


def test_a_flat_series_has_r_squared_0_and_is_a_poor_fit() -> None:
    fit = fit_usl([1, 2, 4, 8], [10.0, 10.0, 10.0, 10.0])  # no variance to explain
    assert fit.r_squared == 0.0 and not fit.good
    assert fit.note == "poor fit (R^2 0.00 < 0.9): the measured points are used"


def test_a_curve_falling_from_one_worker_has_no_peak() -> None:
    # Each added worker lowers throughput: sigma goes to its bound 1 and N* = sqrt((1-sigma)/kappa)
    # lands far below one worker, which is no load at all (it was reported as a peak of ~19
    # ops/s at N = 5e-8, above every measured point).
    fit = fit_usl([1, 2, 4, 8], [10.0, 6.0, 4.0, 3.0])
    assert fit.sigma is not None and fit.sigma <= 1.0
    assert fit.peak_concurrency is None and fit.peak_throughput_ops is None
    assert fit.note.startswith("no peak at N >= 1: throughput falls from one worker (N* ")
    assert fit.peak_text() == "none (throughput falls from N = 1)"


def test_a_poor_fit_and_a_missing_peak_give_both_reasons() -> None:
    fit = fit_usl([1, 2, 4, 8], [10.0, 3.0, 9.0, 2.0])
    assert not fit.good
    poor, peak = fit.note.split("; ")
    assert poor.startswith("poor fit (R^2 0.30 < 0.9)")
    assert peak.startswith("no peak at N >= 1")


def test_exact_notes_of_the_other_outcomes() -> None:
    few = fit_usl([1, 2, 4, 4], [10.0, 19.0, 35.0, 36.0])
    assert few.note == "too few load levels for a fit (3; needs 4): the measured points are used"
    assert few.points == 4
    bad = fit_usl([1, 2, 3, 4], [1.0, math.nan, 3.0, 4.0])
    assert bad.points == 4 and bad.lambda_ops is None and not bad.good
    assert bad.note == "the fit did not converge (array must not contain infs or NaNs)"
    assert bad.peak_text() == "none (κ = 0)"
    n = np.array([1, 2, 4, 8])
    far = fit_usl(n, usl_throughput(n, 37.0, 0.0, 1e-9) * np.array([1.0, 1.001, 0.999, 1.0]))
    assert far.peak_text() == "none within 4x the measured range"


def test_a_peak_between_one_and_two_workers_is_reported() -> None:
    # N* = sqrt((1 - 0.1) / 0.4) = 1.5: a real (if early) peak, above one worker
    fit = fit_usl([1, 2, 4, 8], usl_throughput([1, 2, 4, 8], 10.0, 0.1, 0.4).tolist())
    assert fit.peak_concurrency == pytest.approx(1.5, rel=1e-6)
    assert fit.peak_throughput_ops == pytest.approx(float(usl_throughput(1.5, 10.0, 0.1, 0.4)))
    # N* = 0.9: below one worker, no peak
    falling = fit_usl([1, 2, 4, 8], usl_throughput([1, 2, 4, 8], 10.0, 0.1, 0.9 / 0.81).tolist())
    assert falling.peak_concurrency is None
    assert falling.note == "no peak at N >= 1: throughput falls from one worker (N* 0.9)"
