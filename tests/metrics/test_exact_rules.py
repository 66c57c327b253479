"""Exact figures and both sides of each rule of metrics/, where the other tests leave room.

Written against the mutants mutmut left alive (tests/MUTATION.md): the HDR layout against
hdrh's own bucket boundaries, the memory judgements at their boundaries and in every branch of
their reasons, the histogram's reset and clamped counts, and the small helpers.
"""

from __future__ import annotations

import asyncio
import math
import sys

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from harborbench.metrics.goodput import SloLimits, request_tpot_ns
from harborbench.metrics.histogram import (
    _LAYOUT,
    LOWEST_DISCERNIBLE_NS,
    MAX_NS,
    SIGNIFICANT_FIGURES,
    LatencyHistogram,
    _Layout,
    counts_matrix,
)
from harborbench.metrics.looplag import LoopLagMonitor
from harborbench.metrics.resources import (
    combined_verdict,
    growth_verdict,
    memory_trend,
    slope_verdict,
)
from harborbench.metrics.stats import Interval, mann_whitney, verdict

# --- the HDR layout, built afresh, against hdrh's bucket boundaries ----------------------------


def test_a_fresh_layout_has_hdrh_bucket_boundaries_at_every_counter() -> None:
    ref = HdrHistogram(LOWEST_DISCERNIBLE_NS, MAX_NS, SIGNIFICANT_FIGURES)
    layout = _Layout()  # not the module's instance: the construction itself is under test
    assert (layout.unit_mag, layout.half_mag, layout.half_count) == (0, 10, 1024)
    assert (layout.sub_bucket_mask, layout.counts_len) == (2047, 33_792)
    index = np.arange(ref.counts_len)
    lowest = np.array([ref.get_value_from_index(int(i)) for i in index], dtype=np.int64)
    assert layout.lowest_ns.tolist() == lowest.tolist()
    # hdrh: a bucket holds [lowest, lowest + 2**bucket); its median is lowest + size / 2
    size = np.array([ref.get_highest_equivalent_value(int(v)) + 1 - v for v in lowest[::97]])
    assert layout.highest_ns[::97].tolist() == (lowest[::97] + size - 1).tolist()
    assert layout.median_ns[::97].tolist() == (lowest[::97] + size // 2).tolist()
    assert layout.lowest_ns.dtype == np.int64 and layout.highest_ns.dtype == np.int64
    # hand-checked corners: 1 ns buckets up to 2047, then 2 ns, ..., 2**31 ns at the top
    assert layout.lowest_ns[:3].tolist() == [0, 1, 2]
    assert layout.highest_ns[2047] == 2047 and layout.lowest_ns[2048] == 2048
    assert layout.highest_ns[2048] == 2049 and layout.median_ns[2048] == 2049
    assert int(layout.highest_ns[-1] - layout.lowest_ns[-1]) == 2**31 - 1
    for name in ("lowest_ns", "highest_ns", "median_ns"):
        assert np.array_equal(getattr(layout, name), getattr(_LAYOUT, name))


def test_counts_matrix_of_nothing_keeps_its_dtypes() -> None:
    index, matrix = counts_matrix([])
    assert index.dtype == np.int64 and index.shape == (0,)
    assert matrix.dtype == np.float64 and matrix.shape == (0, 0)


# --- histogram bookkeeping ----------------------------------------------------------------------


def test_clamped_counts_add_up_over_several_flushes() -> None:
    h = LatencyHistogram()
    h.record_many_ns([5, 10**13])
    assert (h.clamped_below_count, h.clamped_above_count) == (1, 1)  # read: flushed
    h.record_many_ns([7, 8, 10**14])
    assert (h.clamped_below_count, h.clamped_above_count) == (3, 2)
    assert h.count == 5


def test_reset_forgets_everything_and_the_histogram_records_again() -> None:
    h = LatencyHistogram()
    h.record_many_ns([5, 2_000, 3_000, 10**13])
    h.reset()
    assert h.count == 0 and h.clamped_count == 0 and h == LatencyHistogram()
    assert (h._hdr.total_count, h._hdr.min_value, h._hdr.max_value) == (0, sys.maxsize, 0)
    assert not h._counts.any()
    h.record_ns(4_000)
    assert (h.count, h.min_ns, h.max_ns) == (1, 4_000, 4_001)  # the bucket [4000, 4001]
    assert (h._hdr.min_value, h._hdr.max_value) == (4_000, 4_000)
    fresh = LatencyHistogram()
    fresh.record_ns(4_000)
    assert h == fresh and h.encode() == fresh.encode()


def test_a_merged_histogram_keeps_recording() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    a.record_ns(5_000)
    b.record_ns(2_000)
    a.merge(b)
    assert (a._hdr.min_value, a._hdr.max_value) == (2_000, 5_000)
    a.record_ns(9_000)
    assert (a.count, a.min_ns, a.max_ns) == (3, 2_000, 9_007)  # the bucket [9000, 9007]


def test_repr_names_the_count_and_three_figures() -> None:
    h = LatencyHistogram()
    h.record_many_ns(list(range(1_000, 101_000, 1_000)))  # 1 .. 100 µs
    assert repr(h) == (
        f"LatencyHistogram(count=100, p50_ns={h.percentile_ns(50)}, "
        f"p99_ns={h.percentile_ns(99)}, max_ns={h.max_ns})"
    )
    assert h.percentile_ns(50) == 50_015 and h.percentile_ns(99) == 99_007
    assert repr(LatencyHistogram()) == "LatencyHistogram(count=0)"


def test_a_fraction_is_refused_with_the_percentile_it_probably_meant() -> None:
    with pytest.raises(ValueError, match=r"\(write 99 for p99\)$"):
        LatencyHistogram().percentile_ns(0.99)
    with pytest.raises(ValueError, match=r"\(write 50 for p50\)$"):
        LatencyHistogram().percentile_ns(0.5)


def test_decode_errors_name_the_problem() -> None:
    with pytest.raises(ValueError) as info:
        LatencyHistogram.decode("A" * 20)  # hdrh raises an exception without a message here
    assert str(info.value) == "not a valid encoded histogram: HdrCookieException"
    other = HdrHistogram(1, 1_000_000, 2)
    other.record_value(5)
    with pytest.raises(ValueError) as info:
        LatencyHistogram.decode(other.encode().decode("ascii"))
    assert str(info.value) == (
        "encoded histogram has (lowest, highest, significant figures) "
        "(1, 1000000, 2), expected (1, 3600000000000, 3)"
    )


# --- the memory judgements ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("growth", "expected"),
    [(None, "inconclusive"), (math.inf, "inconclusive"), (math.nan, "inconclusive"),
     (19.999, "pass"), (20.0, "fail"), (-50.0, "pass")],
)  # fmt: skip
def test_growth_verdict(growth: float | None, expected: str) -> None:
    assert growth_verdict(growth, 20.0) == expected


@pytest.mark.parametrize(
    ("low", "high", "window", "n", "expected"),
    [
        (None, 1.0, 300.0, 10, "inconclusive"),
        (1.0, None, 300.0, 10, "inconclusive"),
        (math.nan, 1.0, 300.0, 10, "inconclusive"),
        (1.0, math.inf, 300.0, 10, "inconclusive"),
        (1.0, 2.0, 300.0, 10, "pass"),  # window and samples exactly at their minimum
        (1.0, 2.0, 299.9, 10, "inconclusive"),
        (1.0, 2.0, 300.0, 9, "inconclusive"),
        (5.0, 6.0, 300.0, 10, "fail"),
        (4.9, 6.0, 300.0, 10, "inconclusive"),
    ],
)
def test_slope_verdict(
    low: float | None, high: float | None, window: float, n: int, expected: str
) -> None:
    assert slope_verdict(low, high, window, n, 5.0) == expected


@pytest.mark.parametrize(
    ("growth", "slope", "expected"),
    [
        ("pass", "pass", "pass"),
        ("pass", "fail", "fail"),
        ("fail", "pass", "fail"),
        ("fail", "inconclusive", "fail"),
        ("inconclusive", "fail", "fail"),
        ("pass", "inconclusive", "inconclusive"),
        ("inconclusive", "pass", "inconclusive"),
        ("inconclusive", "inconclusive", "inconclusive"),
    ],
)
def test_combined_verdict(growth: str, slope: str, expected: str) -> None:
    assert combined_verdict(growth, slope) == expected  # type: ignore[arg-type]


def _linear(t0: float = 0.0, n: int = 11, step_s: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    t = t0 + np.arange(n) * step_s
    return t, 100e6 + (t - t0) * 1e4  # +0.6 MB/min from 100 MB


def test_memory_trend_of_a_clean_line_exactly() -> None:
    t, rss = _linear(t0=1000.0)  # the window need not start at 0
    trend = memory_trend(t, rss)
    assert trend.slope_mb_per_min == pytest.approx(0.6, rel=1e-9)
    assert trend.growth_pct == pytest.approx(3.0, rel=1e-9)
    assert trend.level_start_bytes == pytest.approx(100e6, rel=1e-12)
    assert trend.level_end_bytes == pytest.approx(103e6, rel=1e-12)
    assert (trend.window_s, trend.n_samples, trend.verdict) == (300.0, 11, "pass")
    assert trend.reason == (
        "slope 0.6 MB/min (95% CI 0.6 to 0.6) is within 5 MB/min; growth 3% (fitted line)"
    )


def test_memory_trend_interval_follows_the_confidence() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(31) * 10.0
    rss = 100e6 + t * 1e4 + rng.normal(0, 2e5, len(t))
    from scipy import stats as sps

    for confidence in (0.8, 0.95):
        trend = memory_trend(t, rss, confidence=confidence)
        ref = sps.theilslopes(rss / 1e6, t / 60.0, alpha=confidence)
        assert (trend.slope_ci_low, trend.slope_ci_high) == pytest.approx(
            (ref.low_slope, ref.high_slope), rel=1e-12
        )
        assert f"({confidence:.0%} CI " in trend.reason


def test_memory_trend_judges_a_window_of_exactly_the_minimum() -> None:
    t, rss = _linear(n=10, step_s=300.0 / 9)  # 10 samples over exactly 300 s
    trend = memory_trend(t, rss)
    assert trend.window_s == 300.0 and trend.verdict == "pass"
    assert "too short" not in trend.reason
    short = memory_trend(t[:9], rss[:9], min_window_s=250.0)  # 9 samples: one too few
    assert short.verdict == "inconclusive"
    assert short.reason.startswith("window 267 s with 9 samples is too short for a slope "
                                   "(needs >= 250 s and >= 10 samples); growth ")  # fmt: skip
    few = memory_trend(t[:6], rss[:6], min_window_s=60.0, min_samples=6)
    assert few.verdict == "pass"  # the minimum sample count is a parameter too


def test_memory_trend_reasons_of_a_failing_and_a_straddling_slope() -> None:
    t = np.arange(11) * 30.0
    leak = memory_trend(t, 100e6 + t * 2e5, max_growth_pct=1000.0)  # +12 MB/min
    assert leak.verdict == "fail"
    assert leak.reason == (
        "slope 12 MB/min (95% CI 12 to 12) lies above 5 MB/min; growth 60% (fitted line)"
    )
    grown = memory_trend(t, 100e6 + t * 2e5)
    assert grown.reason == (
        "growth 60% (fitted line) reaches 20% (slope 12 MB/min (95% CI 12 to 12))"
    )
    noisy = 100e6 + t * 8.3e4 + np.array([0, 3, -3, 2, -2, 0, 3, -3, 2, -2, 0]) * 1e6
    straddle = memory_trend(t, noisy, max_growth_pct=1000.0)
    assert straddle.verdict == "inconclusive"
    assert straddle.reason == (
        "slope 4.98 MB/min (95% CI 3.65 to 5.98) straddles 5 MB/min; growth 24.9% (fitted line)"
    )


def test_memory_trend_growth_from_the_first_sample_when_the_line_starts_at_or_below_zero() -> None:
    # a steep rise from a low plateau: the robust line crosses zero before the window starts
    t = [0.0, 60.0, 120.0, 180.0, 240.0, 300.0]
    trend = memory_trend(t, [1e6, 2e6, 1e6, 100e6, 200e6, 300e6])
    assert trend.level_start_bytes == 1e6  # the first sample, not the fitted line
    assert trend.growth_pct == pytest.approx(100 * (trend.level_end_bytes - 1e6) / 1e6)
    assert trend.verdict == "fail"


def test_memory_trend_with_an_undefined_interval() -> None:
    # heavily tied times: Sen's variance is negative, scipy warns and gives NaN bounds
    t = [0.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0]
    rss = [100e6, 101e6, 101e6, 101e6, 101e6, 101e6, 102e6]
    trend = memory_trend(t, rss)  # no warning escapes (the test suite turns them into errors)
    assert trend.slope_ci_low is None and trend.slope_ci_high is None
    assert trend.slope_mb_per_min == 1.0 and trend.verdict == "inconclusive"
    assert trend.reason == (
        "growth 1% (fitted line); the slope interval is undefined for these samples"
    )


def test_memory_trend_of_a_flat_series_and_of_a_1_mb_step() -> None:
    t = np.arange(11) * 30.0
    flat = memory_trend(t, np.full(11, 100e6))
    assert (flat.slope_mb_per_min, flat.slope_ci_low, flat.slope_ci_high) == (0.0, 0.0, 0.0)
    assert (flat.level_start_bytes, flat.growth_pct, flat.verdict) == (100e6, 0.0, "pass")
    # a rise of exactly 1 MB is not flat
    step = memory_trend(t, 100e6 + t / 300.0 * 1e6)
    assert step.slope_mb_per_min == pytest.approx(0.2, rel=1e-9)


@pytest.mark.parametrize(
    ("t", "rss", "window", "first", "last", "reason"),
    [
        ([], [], 0.0, 0.0, 0.0, "0 RSS sample(s) over 0 s: no trend"),
        ([5.0], [7e7], 0.0, 7e7, 7e7, "1 RSS sample(s) over 0 s: no trend"),
        ([5.0, 5.0], [7e7, 9e7], 0.0, 7e7, 9e7, "2 RSS sample(s) over 0 s: no trend"),
    ],
)
def test_memory_trend_without_a_trend(
    t: list[float], rss: list[float], window: float, first: float, last: float, reason: str
) -> None:
    trend = memory_trend(t, rss)
    assert (trend.growth_pct, trend.slope_mb_per_min, trend.window_s) == (0.0, None, window)
    assert (trend.n_samples, trend.verdict, trend.reason) == (len(t), "inconclusive", reason)
    assert (trend.level_start_bytes, trend.level_end_bytes) == (first, last)


def test_memory_trend_of_two_samples_half_a_second_apart() -> None:
    trend = memory_trend([0.0, 0.5], [1e8, 1e8 + 5e4])  # two samples suffice for a line
    assert trend.slope_mb_per_min == pytest.approx(6.0)
    assert trend.level_end_bytes == pytest.approx(1e8 + 5e4)


def test_memory_trend_input_errors_are_exact() -> None:
    with pytest.raises(ValueError, match=r"^t_s and rss_bytes must be finite$"):
        memory_trend([0.0, math.nan], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"^t_s must be non-decreasing$"):
        memory_trend([1.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match=r"^rss_bytes must be positive$"):
        memory_trend([0.0, 1.0], [1.0, 0.0])
    assert memory_trend([0.0, 1.0], [1.0, 1.0]).n_samples == 2  # 1 byte is positive
    with pytest.raises(ValueError, match="confidence"):
        memory_trend([0.0, 1.0], [1.0, 1.0], confidence=0.0)


# --- stats, goodput, loop lag -------------------------------------------------------------------


def test_mann_whitney_is_two_sided_and_takes_single_values() -> None:
    assert mann_whitney([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]) == (0.0, pytest.approx(2 / 70))
    assert mann_whitney([1.0, 2.0, 3.0], [4.0]) == (0.0, 0.5)
    with pytest.raises(ValueError, match=r"^a needs at least 1 values, got 0$"):
        mann_whitney([], [1.0])
    with pytest.raises(ValueError, match=r"^b must be 1-D, got shape \(1, 2\)$"):
        mann_whitney([1.0], [[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"^b must hold finite values$"):
        mann_whitney([1.0], [math.inf])


def test_verdict_when_lower_is_better() -> None:
    up = Interval(1.2, 1.1, 1.3, "m", 10, 10)
    assert verdict(up, "lower") == "worse" and verdict(up, "higher") == "better"
    down = Interval(0.8, 0.7, 0.9, "m", 10, 10)
    assert verdict(down, "lower") == "better" and verdict(down, "higher") == "worse"


def test_slo_limits_from_seconds_are_exact_nanoseconds() -> None:
    assert SloLimits.from_seconds(10.0, 2.5, 30.0) == SloLimits(
        10_000_000_000, 2_500_000_000, 30_000_000_000
    )
    assert SloLimits.from_seconds(None, None, 0.2) == SloLimits(None, None, 200_000_000)


def test_tpot_needs_more_than_a_billionth_of_a_token_after_the_first_chunk() -> None:
    assert request_tpot_ns(3_000, 1_000, 2.0, 1.0) == 2_000  # one token after the first chunk
    assert request_tpot_ns(3_000, 1_000, 1e-9, 0.0) is None  # exactly at the limit
    assert request_tpot_ns(3_000, 1_000, 2e-9, 0.0) == 1_000_000_000_000


async def test_the_loop_lag_task_is_named_and_runs_once() -> None:
    monitor = LoopLagMonitor(interval_s=0.001)
    await monitor.start()
    try:
        assert monitor._task is not None
        assert monitor._task.get_name() == "harborbench-loop-lag"
        with pytest.raises(RuntimeError, match=r"^LoopLagMonitor is already running$"):
            await monitor.start()
        await asyncio.sleep(0.01)
    finally:
        await monitor.stop()
