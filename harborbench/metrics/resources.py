"""CPU and memory of the measuring process: sampling, CPU efficiency, and the RSS trend.

Units: time in seconds, memory in bytes; the slope is reported in MB/min with 1 MB = 10**6 bytes
(the unit of the plan's "5 MB/min" gate).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import psutil

from harborbench.units import BYTES_PER_MB

SATURATION_CPU_PERCENT = 90.0
"""Mean CPU above this percent of one core flags the load generator as the bottleneck."""
MIN_TREND_SAMPLES = 10
"""Fewer RSS samples than this make the slope inconclusive."""

Verdict = Literal["pass", "fail", "inconclusive"]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ResourceSample:
    """One reading of the measuring process's resources.

    Attributes:
        t_s: the caller's timestamp of the reading, seconds (e.g. from the start of the window).
        rss_bytes: resident set size, bytes.
        cpu_user_s: user CPU time of the process since it started, seconds (cumulative).
        cpu_system_s: system CPU time of the process since it started, seconds (cumulative).
        cpu_percent: CPU use since the previous reading, percent of one core (may exceed 100
            on several cores), from ``psutil.Process.cpu_percent``.
    """

    t_s: float
    rss_bytes: int
    cpu_user_s: float
    cpu_system_s: float
    cpu_percent: float

    @property
    def cpu_total_s(self) -> float:
        """User plus system CPU time, seconds (cumulative)."""
        return self.cpu_user_s + self.cpu_system_s


class ResourceSampler:
    """Reads RSS and CPU of one process (by default the measuring process itself) with psutil.

    ``psutil.Process.cpu_percent(None)`` reports use since its previous call and returns a
    meaningless 0.0 on the first; the constructor makes that first call, so the first
    :meth:`sample` reports the use since the sampler was created. The engine calls :meth:`sample`
    about once per second.
    """

    __slots__ = ("_process",)

    def __init__(self, process: psutil.Process | None = None) -> None:
        """Create the sampler and prime ``cpu_percent``.

        Args:
            process: the process to watch; default the current process.
        """
        self._process = process if process is not None else psutil.Process()
        self._process.cpu_percent(None)

    @property
    def process(self) -> psutil.Process:
        """The watched process."""
        return self._process

    def sample(self, t_s: float) -> ResourceSample:
        """Take one reading.

        Args:
            t_s: timestamp to store with the reading, seconds (the caller's clock).

        Returns:
            the reading.

        Raises:
            psutil.NoSuchProcess: if the watched process has ended.
        """
        process = self._process
        with process.oneshot():
            rss_bytes = process.memory_info().rss
            times = process.cpu_times()
            percent = process.cpu_percent(None)
        return ResourceSample(
            t_s=float(t_s),
            rss_bytes=int(rss_bytes),
            cpu_user_s=float(times.user),
            cpu_system_s=float(times.system),
            cpu_percent=float(percent),
        )


@dataclass(frozen=True, slots=True)
class CpuSummary:
    """CPU use of the measuring process over a window.

    Attributes:
        cpu_seconds: user + system CPU time spent between the first and the last sample, s.
        cpu_percent_mean: ``100 * cpu_seconds / (t_last - t_first)``, percent of one core.
        ops_per_cpu_second: successful ops per CPU second (efficiency), None if no CPU time.
        saturated: mean above 90 % of one core: the load generator is a bottleneck (a Python
            process runs its event loop on one core).
        n_samples: samples the figures come from; with fewer than 2 every figure is 0 / None.
    """

    cpu_seconds: float
    cpu_percent_mean: float
    ops_per_cpu_second: float | None
    saturated: bool
    n_samples: int


def cpu_summary(samples: Sequence[ResourceSample], successful_ops: int) -> CpuSummary:
    """CPU seconds, mean CPU percent and efficiency over the samples' time span.

    The mean is computed from the cumulative CPU times of the first and last samples (not by
    averaging the per-sample ``cpu_percent``), so it is exact whatever the sampling rhythm.

    Args:
        samples: readings in time order, covering the window (first at its start, last at its end).
        successful_ops: successful ops completed in the window.

    Returns:
        the summary; with fewer than 2 samples or a zero time span: cpu_seconds 0.0,
        cpu_percent_mean 0.0, ops_per_cpu_second None, saturated False.
    """
    if len(samples) < 2 or samples[-1].t_s <= samples[0].t_s:
        return CpuSummary(0.0, 0.0, None, False, len(samples))
    first, last = samples[0], samples[-1]
    cpu_seconds = max(last.cpu_total_s - first.cpu_total_s, 0.0)
    percent = 100.0 * cpu_seconds / (last.t_s - first.t_s)
    return CpuSummary(
        cpu_seconds=cpu_seconds,
        cpu_percent_mean=percent,
        ops_per_cpu_second=successful_ops / cpu_seconds if cpu_seconds > 0 else None,
        saturated=percent > SATURATION_CPU_PERCENT,
        n_samples=len(samples),
    )


def _theil_sen(
    x: FloatArray, y: FloatArray, confidence: float
) -> tuple[float, float, float, float]:
    """Theil-Sen fit of y on x: (slope, Sen's low, Sen's high, intercept); NaN bounds if undefined.

    The intercept is Sen's: the median of ``y - slope * x``.
    """
    if np.ptp(y) == 0:  # flat series: every pairwise slope is 0 (Sen's variance would be 0)
        return 0.0, 0.0, 0.0, float(y[0])
    with warnings.catch_warnings():
        # Sen's variance can come out <= 0 for heavily tied data: scipy then warns and gives NaN.
        warnings.simplefilter("ignore", RuntimeWarning)
        from scipy import stats as scipy_stats  # imported where used: scipy is slow to import

        fit = scipy_stats.theilslopes(y, x, alpha=confidence)
    return float(fit[0]), float(fit[2]), float(fit[3]), float(fit[1])


def growth_verdict(growth_pct: float | None, max_growth_pct: float) -> Verdict:
    """The memory-growth judgement (the one rule, used by the trend and by the gate).

    Args:
        growth_pct: robust growth over the window, percent (None: no trend could be fitted).
        max_growth_pct: the limit, percent; growth must stay below it (plan: < 20%).

    Returns:
        ``"inconclusive"`` without a growth figure, ``"fail"`` at or above the limit, else
        ``"pass"``.
    """
    if growth_pct is None or not math.isfinite(growth_pct):
        return "inconclusive"
    return "fail" if growth_pct >= max_growth_pct else "pass"


def slope_verdict(
    ci_low: float | None,
    ci_high: float | None,
    window_s: float,
    n_samples: int,
    max_slope_mb_per_min: float,
    *,
    min_window_s: float = 300.0,
    min_samples: int = MIN_TREND_SAMPLES,
) -> Verdict:
    """The memory-slope judgement (the one rule, used by the trend and by the gate).

    The slope must stay below the limit (plan: < 5 MB/min over at least 5 minutes): it passes
    when the whole confidence interval lies below the limit, fails when the whole interval lies
    at or above it, and is inconclusive when the interval straddles it, is undefined, or the
    window is shorter than ``min_window_s`` or has fewer than ``min_samples`` samples.
    """
    if ci_low is None or ci_high is None or not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return "inconclusive"
    if window_s < min_window_s or n_samples < min_samples:
        return "inconclusive"
    if ci_high < max_slope_mb_per_min:
        return "pass"
    return "fail" if ci_low >= max_slope_mb_per_min else "inconclusive"


def combined_verdict(growth: Verdict, slope: Verdict) -> Verdict:
    """The memory verdict: fail if either part fails, pass if both pass, else inconclusive."""
    if "fail" in (growth, slope):
        return "fail"
    return "pass" if growth == slope == "pass" else "inconclusive"


@dataclass(frozen=True, slots=True)
class MemoryTrend:
    """RSS growth and robust slope over a window, with a verdict.

    Attributes:
        growth_pct: growth of the fitted Theil-Sen line over the window, percent of its level at
            the window's start: ``100 * (level_end - level_start) / level_start``. Judged from the
            whole series, so a sawtooth (allocator, garbage collector) or one odd sample at
            either end does not decide it (0.0 with fewer than 2 samples or a zero-length window).
        level_start_bytes, level_end_bytes: the fitted line at the first and last sample times,
            bytes (the first and last samples themselves when no line can be fitted).
        slope_mb_per_min: Theil-Sen slope of RSS against time, MB/min (None with fewer than 2
            samples or a zero-length window; the three slope fields are None together).
        slope_ci_low: lower bound of its confidence interval (95 % by default), MB/min.
        slope_ci_high: upper bound, MB/min.
        window_s: time from the first to the last sample, seconds.
        n_samples: number of samples.
        verdict: ``"fail"`` if either :func:`growth_verdict` or :func:`slope_verdict` fails,
            ``"pass"`` if both pass, ``"inconclusive"`` otherwise.
        reason: one sentence explaining the verdict, with the figures.
    """

    growth_pct: float
    slope_mb_per_min: float | None
    slope_ci_low: float | None
    slope_ci_high: float | None
    window_s: float
    n_samples: int
    verdict: Verdict
    reason: str
    level_start_bytes: float = 0.0
    level_end_bytes: float = 0.0


def memory_trend(
    t_s: npt.ArrayLike,
    rss_bytes: npt.ArrayLike,
    *,
    min_window_s: float = 300.0,
    min_samples: int = MIN_TREND_SAMPLES,
    max_slope_mb_per_min: float = 5.0,
    max_growth_pct: float = 20.0,
    confidence: float = 0.95,
) -> MemoryTrend:
    """Growth and robust slope of RSS over a window, judged against the plan's memory gates.

    The slope is the Theil-Sen estimator (the median of the slopes of all pairs of points; H. Theil,
    "A rank-invariant method of linear and polynomial regression analysis", 1950; P. K. Sen,
    "Estimates of the regression coefficient based on Kendall's tau", JASA 1968) with Sen's
    confidence interval, computed by ``scipy.stats.theilslopes``. It tolerates up to ~29 % of
    outlying points (a garbage-collection spike, an allocation burst), unlike least squares. The
    growth is read from the same fitted line (Sen's intercept), not from two single samples.

    Args:
        t_s: float array, shape (n,): sample times in seconds, non-decreasing (pairs of samples
            at the same time are left out of the slope, as Theil-Sen does).
        rss_bytes: array, shape (n,): RSS at those times, bytes, positive.
        min_window_s: shortest window for which the slope can decide, seconds (plan: 5 minutes).
        min_samples: fewest samples for which the slope can decide.
        max_slope_mb_per_min: slope limit, MB/min (plan: 5).
        max_growth_pct: growth limit, percent (plan: 20).
        confidence: confidence level of the slope interval, in (0, 1).

    Returns:
        the trend and its verdict (see :class:`MemoryTrend`). A window too short for a slope never
        passes: it is inconclusive, or fails if the growth alone already reaches its limit.

    Raises:
        ValueError: if the arrays differ in shape, are not 1-D, hold non-finite values, the
            times decrease, an RSS is not positive, or ``confidence`` is outside (0, 1).
    """
    t = np.asarray(t_s, dtype=np.float64)
    rss = np.asarray(rss_bytes, dtype=np.float64)
    if t.ndim != 1 or t.shape != rss.shape:
        raise ValueError(
            f"t_s and rss_bytes must be 1-D of equal length, got {t.shape}, {rss.shape}"
        )
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(rss))):
        raise ValueError("t_s and rss_bytes must be finite")
    if np.any(np.diff(t) < 0):
        raise ValueError("t_s must be non-decreasing")
    if np.any(rss <= 0):
        raise ValueError("rss_bytes must be positive")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    n = len(t)
    window_s = float(t[-1] - t[0]) if n else 0.0
    if n < 2 or window_s <= 0:
        reason = f"{n} RSS sample(s) over {window_s:g} s: no trend"
        first = float(rss[0]) if n else 0.0
        last = float(rss[-1]) if n else 0.0
        return MemoryTrend(0.0, None, None, None, window_s, n, "inconclusive", reason, first, last)
    x_min = (t - t[0]) / 60.0
    slope, low, high, intercept = _theil_sen(x_min, rss / BYTES_PER_MB, confidence)
    level_start = intercept * BYTES_PER_MB
    level_end = (intercept + slope * x_min[-1]) * BYTES_PER_MB
    if level_start <= 0:  # a line through a steep fall: growth from the first sample instead
        level_start = float(rss[0])
    growth_pct = float(100.0 * (level_end - level_start) / level_start)
    level = f"{confidence:.0%}"
    slope_text = f"slope {slope:.3g} MB/min ({level} CI {low:.3g} to {high:.3g})"
    growth_text = f"growth {growth_pct:.3g}% (fitted line)"
    finite = math.isfinite(low) and math.isfinite(high)
    g = growth_verdict(growth_pct, max_growth_pct)
    s = slope_verdict(
        low if finite else None, high if finite else None, window_s, n, max_slope_mb_per_min,
        min_window_s=min_window_s, min_samples=min_samples,
    )  # fmt: skip
    verdict = combined_verdict(g, s)
    if not finite:
        reason = f"{growth_text}; the slope interval is undefined for these samples"
    elif g == "fail":
        reason = f"{growth_text} reaches {max_growth_pct:g}% ({slope_text})"
    elif window_s < min_window_s or n < min_samples:
        reason = (
            f"window {window_s:.0f} s with {n} samples is too short for a slope "
            f"(needs >= {min_window_s:.0f} s and >= {min_samples} samples); {growth_text}"
        )
    elif s == "fail":
        reason = f"{slope_text} lies above {max_slope_mb_per_min:g} MB/min; {growth_text}"
    elif s == "pass":
        reason = f"{slope_text} is within {max_slope_mb_per_min:g} MB/min; {growth_text}"
    else:
        reason = f"{slope_text} straddles {max_slope_mb_per_min:g} MB/min; {growth_text}"
    return MemoryTrend(
        growth_pct,
        slope,
        low if finite else None,
        high if finite else None,
        window_s,
        n,
        verdict,
        reason,
        level_start,
        level_end,
    )
