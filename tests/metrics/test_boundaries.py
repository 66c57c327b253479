"""Boundaries of the metrics rules, each side tested: tests added for the mutants that survived
`scripts/mutation.sh metrics` (see tests/MUTATION.md)."""

from __future__ import annotations

import numpy as np
import pytest

from harborbench.metrics.histogram import (
    LatencyHistogram,
    min_samples_for,
    percentile_ns_from_counts,
)
from harborbench.metrics.resources import ResourceSample, cpu_summary
from harborbench.metrics.stats import Interval, verdict
from harborbench.metrics.usl import UslFit


def _interval(low: float, high: float) -> Interval:
    return Interval(estimate=(low + high) / 2, low=low, high=high, method="test", n_a=5, n_b=5)


def test_an_interval_contains_both_of_its_bounds() -> None:
    i = _interval(0.9, 1.1)
    assert i.contains(0.9) and i.contains(1.1) and i.contains(1.0)
    assert not i.contains(0.8999) and not i.contains(1.1001)


def test_verdict_needs_the_whole_interval_strictly_beyond_the_margin() -> None:
    # Default: larger is better.
    assert verdict(_interval(1.01, 1.2)) == "better"
    assert verdict(_interval(0.8, 0.99)) == "worse"
    # At the margin exactly: not significant (strict < and >), on both sides.
    assert verdict(_interval(1.05, 1.2), threshold=0.05) == "no significant difference"
    assert verdict(_interval(1.0501, 1.2), threshold=0.05) == "better"
    assert verdict(_interval(0.8, 0.95), threshold=0.05) == "no significant difference"
    assert verdict(_interval(0.8, 0.9499), threshold=0.05) == "worse"
    # An interval inside (1 - margin, 1 + margin) but not containing 1 is not "worse".
    assert verdict(_interval(0.97, 0.99), threshold=0.05) == "no significant difference"
    assert verdict(_interval(1.0, 1.2)) == "no significant difference"
    assert verdict(_interval(0.8, 1.0)) == "no significant difference"
    assert verdict(_interval(0.8, 0.9), better="lower") == "better"


@pytest.mark.parametrize(
    ("q", "n"),
    [(0.0, 10), (1.0, 11), (50.0, 20), (90.0, 100), (97.0, 334), (99.0, 1000), (99.9, 10000)],
)
def test_min_samples_for_rounds_up(q: float, n: int) -> None:
    assert min_samples_for(q) == n


@pytest.mark.parametrize("q", [-0.1, 100.0, 100.5, 101.0])
def test_min_samples_for_refuses_percentiles_outside_0_to_100(q: float) -> None:
    with pytest.raises(ValueError, match=r"percentile must be in \[0, 100\), got"):
        min_samples_for(q)


def test_percentile_of_one_sample_and_p0_uses_the_bucket_floor() -> None:
    h = LatencyHistogram()
    h.record_ns(1_234_567)
    p0, p100 = h.percentile_ns(0.0), h.percentile_ns(100.0)
    # One sample: every percentile falls in its bucket; p0 reads the bucket's lowest value,
    # any q > 0 its highest (HdrHistogram's equivalence range).
    assert p0 <= 1_234_567 <= p100
    assert p0 < p100
    assert h.percentile_ns(50.0) == p100


def test_percentile_from_counts_refuses_empty_rows() -> None:
    with pytest.raises(ValueError, match=r"^percentile of an empty histogram$"):
        percentile_ns_from_counts(np.asarray([5], dtype=np.int64), np.asarray([0.0]), 50.0)
    no_buckets = np.zeros(0, dtype=np.int64)
    with pytest.raises(ValueError, match=r"^percentile of an empty histogram$"):
        percentile_ns_from_counts(no_buckets, np.zeros((2, 0)), 50.0)
    with pytest.raises(ValueError, match=r"^the histogram is empty$"):
        LatencyHistogram().percentile_ns(50.0)
    # One sample in a row is enough.
    value = percentile_ns_from_counts(np.asarray([5], dtype=np.int64), np.asarray([1.0]), 50.0)
    assert int(value) > 0


def test_count_above_is_strictly_above_the_bucket_floor() -> None:
    h = LatencyHistogram()
    h.record_ns(2_000_000)
    floor = h.percentile_ns(0.0)
    assert h.count_above_ns(floor - 1) == 1
    assert h.count_above_ns(floor) == 0


def test_merge_adds_the_clamped_counts_and_keeps_the_minimum() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    a.record_ns(1)  # below 1 µs: clamped
    a.record_ns(10**14)  # above 1 h: clamped
    a.record_ns(5_000_000)
    b.record_ns(2)
    b.record_ns(10**13)  # above 1 h: clamped
    b.record_ns(3_000_000)
    a.merge(b)
    assert (a.clamped_below_count, a.clamped_above_count, a.count) == (2, 2, 6)
    c, d = LatencyHistogram(), LatencyHistogram()
    c.record_ns(5_000_000)
    d.record_ns(2_000_000)
    c.merge(d)
    assert c.min_ns == d.min_ns


def test_percentile_spectrum_ticks() -> None:
    h = LatencyHistogram()
    for v in range(1, 1001):
        h.record_ns(v * 1000)
    spectrum = [q for q, _ in h.percentile_spectrum()]
    assert spectrum[:3] == [0.0, pytest.approx(100 * (1 - 2 ** (-1 / 5))), pytest.approx(
        100 * (1 - 2 ** (-2 / 5)))]  # fmt: skip
    assert spectrum[-1] == 100.0
    one = [q for q, _ in h.percentile_spectrum(1)]
    assert one[:3] == [0.0, 50.0, 75.0]
    with pytest.raises(ValueError, match=r"^ticks_per_half_distance must be >= 1$"):
        h.percentile_spectrum(0)


def _sample(t_s: float, cpu_s: float) -> ResourceSample:
    return ResourceSample(t_s=t_s, rss_bytes=1, cpu_user_s=cpu_s, cpu_system_s=0.0, cpu_percent=0.0)


def test_cpu_summary_uses_the_first_and_last_samples() -> None:
    s = cpu_summary([_sample(10.0, 1.0), _sample(10.0, 1.0), _sample(12.0, 1.5)], 100)
    assert s.cpu_seconds == pytest.approx(0.5)
    assert s.cpu_percent_mean == pytest.approx(25.0)  # 0.5 s of CPU over 2 s, not over 22 s
    assert s.ops_per_cpu_second == pytest.approx(200.0)  # CPU time below 1 s still counts
    assert s.n_samples == 3
    flat = cpu_summary([_sample(1.0, 0.0)], 5)
    assert (flat.cpu_seconds, flat.ops_per_cpu_second, flat.n_samples) == (0.0, None, 1)


def test_usl_predict_needs_every_coefficient() -> None:
    full = {"lambda_ops": 100.0, "sigma": 0.1, "kappa": 0.01}
    fit = UslFit(points=5, good=True, **full)
    assert fit.predict(2) == pytest.approx(200 / (1 + 0.1 + 0.01 * 2))
    for missing in full:
        partial = UslFit.model_validate({"points": 5, "good": True} | full | {missing: None})
        assert partial.predict(2) is None
