"""ResourceSampler, cpu_summary and memory_trend, on synthetic data with exact expectations."""

from __future__ import annotations

from collections import namedtuple
from contextlib import nullcontext
from typing import Any

import numpy as np
import psutil
import pytest

from harborbench.metrics.resources import (
    BYTES_PER_MB,
    ResourceSample,
    ResourceSampler,
    cpu_summary,
    memory_trend,
)

_Mem = namedtuple("_Mem", "rss")
_Times = namedtuple("_Times", "user system")


class FakeProcess:
    """Stands in for psutil.Process, recording the calls the sampler makes."""

    def __init__(self) -> None:
        self.percent_calls = 0
        self.rss = 50 * BYTES_PER_MB
        self.user_s = 1.0

    def oneshot(self) -> Any:
        return nullcontext()

    def memory_info(self) -> _Mem:
        return _Mem(self.rss)

    def cpu_times(self) -> _Times:
        return _Times(self.user_s, 0.25)

    def cpu_percent(self, interval: float | None = None) -> float:
        assert interval is None  # never the blocking form
        self.percent_calls += 1
        return 0.0 if self.percent_calls == 1 else 42.0


def test_sampler_primes_cpu_percent_and_reads_everything() -> None:
    fake = FakeProcess()
    sampler = ResourceSampler(fake)  # type: ignore[arg-type]
    assert fake.percent_calls == 1  # primed at construction
    fake.rss += BYTES_PER_MB
    fake.user_s = 3.5
    s = sampler.sample(2.0)
    assert s == ResourceSample(
        t_s=2.0,
        rss_bytes=51 * BYTES_PER_MB,
        cpu_user_s=3.5,
        cpu_system_s=0.25,
        cpu_percent=42.0,
    )
    assert s.cpu_total_s == 3.75
    assert fake.percent_calls == 2


def test_sampler_on_the_real_process() -> None:
    sampler = ResourceSampler()
    assert sampler.process.pid == psutil.Process().pid
    first = sampler.sample(0.0)
    total = 0
    for i in range(2_000_000):  # burn some CPU so that the primed cpu_percent has something
        total += i
    second = sampler.sample(1.0)
    assert total == 1_999_999_000_000
    assert first.rss_bytes > 0
    assert second.cpu_total_s >= first.cpu_total_s
    assert second.cpu_percent > 0.0  # a sampler that was not primed would report 0.0 first


def _samples(cpu_total_at: list[tuple[float, float]]) -> list[ResourceSample]:
    return [ResourceSample(t, 10**8, cpu * 0.75, cpu * 0.25, 0.0) for t, cpu in cpu_total_at]


def test_cpu_summary_exact() -> None:
    summary = cpu_summary(_samples([(0.0, 10.0), (5.0, 12.0), (10.0, 15.0)]), 1000)
    assert summary.cpu_seconds == 5.0
    assert summary.cpu_percent_mean == 50.0
    assert summary.ops_per_cpu_second == 200.0
    assert summary.saturated is False
    assert summary.n_samples == 3


def test_cpu_summary_saturated_above_90_percent() -> None:
    assert cpu_summary(_samples([(0.0, 0.0), (10.0, 9.0)]), 1).saturated is False
    busy = cpu_summary(_samples([(0.0, 0.0), (10.0, 9.2)]), 1)
    assert busy.saturated is True
    assert busy.cpu_percent_mean == pytest.approx(92.0, rel=1e-12)


def test_cpu_summary_degenerate_inputs() -> None:
    for samples in ([], _samples([(0.0, 1.0)]), _samples([(3.0, 1.0), (3.0, 2.0)])):
        s = cpu_summary(samples, 10)
        assert (s.cpu_seconds, s.cpu_percent_mean, s.ops_per_cpu_second, s.saturated) == (
            0.0,
            0.0,
            None,
            False,
        )
    idle = cpu_summary(_samples([(0.0, 1.0), (10.0, 1.0)]), 5)
    assert idle.cpu_seconds == 0.0
    assert idle.ops_per_cpu_second is None


def _rss_series(
    slope_mb_per_min: float, base_mb: float, duration_s: float, seed: int, outliers: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, duration_s + 1e-9, 1.0)
    rss_mb = base_mb + slope_mb_per_min * t / 60.0 + rng.normal(0.0, 0.5, len(t))
    if outliers:  # GC spikes: 5 % of the points, 40 MB high, bunched at the end of the window
        spikes = rng.choice(np.arange(len(t) * 3 // 4, len(t)), size=len(t) // 20, replace=False)
        rss_mb[spikes] += 40.0
    return t, rss_mb * BYTES_PER_MB


def test_memory_trend_recovers_a_known_slope_from_noisy_data() -> None:
    t, rss = _rss_series(2.0, 300.0, 600.0, seed=0, outliers=False)  # 95 % CI: misses 1 seed in 20
    trend = memory_trend(t, rss)
    assert trend.slope_mb_per_min is not None
    assert trend.slope_ci_low is not None
    assert trend.slope_ci_high is not None
    assert abs(trend.slope_mb_per_min - 2.0) < 0.02
    assert trend.slope_ci_low <= 2.0 <= trend.slope_ci_high
    assert trend.slope_ci_high - trend.slope_ci_low < 0.1
    assert trend.verdict == "pass"


def test_memory_trend_is_robust_to_outliers() -> None:
    t, rss = _rss_series(2.0, 300.0, 600.0, seed=11)
    trend = memory_trend(t, rss)
    assert trend.slope_mb_per_min is not None
    assert trend.slope_ci_high is not None
    assert abs(trend.slope_mb_per_min - 2.0) < 0.05  # 30 spikes of 40 MB move it by < 2.5 %
    assert trend.slope_ci_high < 5.0
    assert trend.n_samples == 601
    assert trend.window_s == 600.0
    # Growth of the fitted line over 10 minutes (2 MB/min x 10 on a level of about 300 MB),
    # not of two single samples.
    assert trend.growth_pct == pytest.approx(100 * 20.0 / 300.0, rel=0.02)
    assert trend.verdict == "pass"
    assert "within 5 MB/min" in trend.reason
    # least squares on the same data is pulled off by the spikes; Theil-Sen is not
    ols_slope = np.polyfit(t / 60.0, rss / BYTES_PER_MB, 1)[0]
    assert abs(ols_slope - 2.0) > 0.5


def test_memory_trend_fails_a_leak_by_slope() -> None:
    t, rss = _rss_series(8.0, 3000.0, 600.0, seed=12)
    trend = memory_trend(t, rss)
    assert trend.growth_pct < 20.0
    assert trend.slope_ci_low is not None and trend.slope_ci_low > 5.0
    assert trend.verdict == "fail"
    assert "lies above 5 MB/min" in trend.reason


def test_memory_trend_inconclusive_when_interval_straddles_the_limit() -> None:
    t, rss = _rss_series(5.0, 3000.0, 600.0, seed=13, outliers=False)
    trend = memory_trend(t, rss)
    assert trend.slope_ci_low is not None and trend.slope_ci_high is not None
    assert trend.slope_ci_low < 5.0 < trend.slope_ci_high
    assert trend.verdict == "inconclusive"
    assert "straddles" in trend.reason


def test_memory_trend_short_window_is_inconclusive_not_pass() -> None:
    t, rss = _rss_series(0.0, 300.0, 60.0, seed=14, outliers=False)
    trend = memory_trend(t, rss)
    assert trend.verdict == "inconclusive"
    assert "too short for a slope" in trend.reason
    assert trend.slope_mb_per_min is not None  # still computed, for information
    few = memory_trend([0.0, 100.0, 200.0, 300.0, 400.0], [1e8] * 5)
    assert few.verdict == "inconclusive"
    assert "5 samples" in few.reason


def test_memory_trend_growth_over_limit_fails_even_on_a_short_window() -> None:
    trend = memory_trend(np.arange(30.0), np.linspace(100e6, 130e6, 30))
    assert trend.growth_pct == pytest.approx(30.0, rel=1e-12)
    assert trend.verdict == "fail"
    assert "reaches 20%" in trend.reason


def test_memory_trend_thresholds_are_parameters() -> None:
    t, rss = _rss_series(2.0, 300.0, 600.0, seed=11)
    trend = memory_trend(t, rss, max_slope_mb_per_min=1.0)
    assert trend.verdict == "fail"
    trend = memory_trend(t, rss, min_window_s=900.0)
    assert trend.verdict == "inconclusive"


def test_memory_trend_too_few_samples_and_repeated_times() -> None:
    for t, rss in (([], []), ([1.0], [1e8]), ([2.0, 2.0], [1e8, 2e8])):
        trend = memory_trend(t, rss)
        assert trend.verdict == "inconclusive"
        assert trend.slope_mb_per_min is None
        assert trend.slope_ci_low is None
        assert trend.growth_pct == 0.0
    # a repeated final time (last tick and window end together) is accepted
    trend = memory_trend([0.0, 1.0, 2.0, 2.0], [1e8, 1e8, 1e8, 1e8])
    assert trend.slope_mb_per_min == 0.0


@pytest.mark.parametrize(
    ("t", "rss", "message"),
    [
        ([0.0, 1.0], [1e8], "equal length"),
        ([[0.0, 1.0]], [[1e8, 1e8]], "1-D"),
        ([0.0, float("nan")], [1e8, 1e8], "finite"),
        ([1.0, 0.0], [1e8, 1e8], "non-decreasing"),
        ([0.0, 1.0], [0.0, 1e8], "positive"),
    ],
)
def test_memory_trend_rejects_bad_input(t: Any, rss: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        memory_trend(t, rss)
    with pytest.raises(ValueError, match="confidence"):
        memory_trend([0.0, 1.0], [1e8, 1e8], confidence=1.0)


# --- the memory verdict on synthetic series (issue 11): judged from the whole series ----------


def _flat_sawtooth(phase: float, *, period_s: float = 47.0, depth_mb: float = 30.0) -> Any:
    """10 min at 1 Hz: a flat 100 MB plus an allocator/GC sawtooth (ramp up, drop) at a phase."""
    t = np.arange(0.0, 601.0)
    saw = depth_mb * (((t / period_s) + phase) % 1.0)
    return t, (100.0 + saw) * BYTES_PER_MB


def test_a_flat_series_with_a_sawtooth_passes_at_nearly_every_phase() -> None:
    phases = np.random.default_rng(2024).uniform(0.0, 1.0, size=200)
    verdicts = [memory_trend(*_flat_sawtooth(p)).verdict for p in phases]
    assert verdicts.count("pass") >= 0.95 * len(phases)
    # The first/last-sample rule this replaces failed a sawtooth whose last sample sat near a
    # peak and first near a trough (growth up to 30%): some phases of this very set.
    _t, rss = _flat_sawtooth(0.0)
    assert 100 * (rss[-1] - rss[0]) / rss[0] > 20.0


def test_a_steady_slow_leak_fails() -> None:
    t = np.arange(0.0, 601.0)
    rss = (100.0 + 8.0 * t / 60.0) * BYTES_PER_MB  # 8 MB/min: 80% growth... of slope, 10 min
    noisy = rss + np.random.default_rng(5).normal(0.0, 0.3e6, size=len(t))
    trend = memory_trend(t, noisy, max_growth_pct=200.0)  # judged on the slope alone
    assert trend.verdict == "fail"
    assert trend.slope_ci_low is not None and trend.slope_ci_low > 5.0


@pytest.mark.parametrize("where", [0, -1])
def test_one_sample_dip_at_either_end_does_not_decide(where: int) -> None:
    t = np.arange(0.0, 601.0)
    rss = np.full(len(t), 100e6)
    rss[1::2] += 0.2e6  # a little noise, so Sen's interval is defined
    dipped = rss.copy()
    dipped[where] = 60e6  # one sample 40% low: a first/last rule reads +67% or -40% growth
    assert memory_trend(t, dipped).verdict == memory_trend(t, rss).verdict == "pass"
    assert abs(memory_trend(t, dipped).growth_pct) < 1.0


def test_the_gate_and_the_trend_use_one_slope_rule() -> None:
    """A point slope under the limit with an interval straddling it is not a gate pass."""
    from harborbench.metrics.resources import slope_verdict

    assert slope_verdict(4.0, 6.0, 600.0, 601, 5.0) == "inconclusive"
    assert slope_verdict(4.0, 4.99, 600.0, 601, 5.0) == "pass"
    assert slope_verdict(4.0, 5.0, 600.0, 601, 5.0) == "inconclusive"  # at the limit: not below
    assert slope_verdict(5.0, 6.0, 600.0, 601, 5.0) == "fail"
    assert slope_verdict(1.0, 2.0, 299.0, 601, 5.0) == "inconclusive"  # window under 5 min
    assert slope_verdict(1.0, 2.0, 300.0, 601, 5.0) == "pass"
