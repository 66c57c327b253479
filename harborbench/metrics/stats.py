"""Verdicts and the rank test for comparing two runs.

Every interval here is an interval of the ratio ``B / A`` (B the candidate, A the baseline) of a
statistic, so 1.0 means "no change", 1.10 "B is 10 % higher". The intervals themselves come from
the one bootstrap of harborbench, :mod:`harborbench.compare.bootstrap` (a stationary block
bootstrap of 1-second intervals, trials as the outer unit); this module turns an interval into
words:

* :func:`verdict`: better, worse or no significant difference (the interval must exclude 1);
* :func:`gate_verdict`: pass, fail or inconclusive against a threshold (``compare --fail-on``);
* :func:`mann_whitney`: two-sided Mann-Whitney U test (``scipy.stats.mannwhitneyu``), reported
  beside the interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Better = Literal["higher", "lower"]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence interval of the ratio B / A of a statistic.

    Attributes:
        estimate: the ratio computed on all the data.
        low: lower bound of the interval.
        high: upper bound of the interval.
        method: how the interval was computed (see :mod:`harborbench.compare.bootstrap`).
        n_a: number of observations (values, or non-empty intervals) of A.
        n_b: number of observations of B.
        confidence: confidence level, in (0, 1).
        note: a remark on the method, if any; else "".
    """

    estimate: float
    low: float
    high: float
    method: str
    n_a: int
    n_b: int
    confidence: float = 0.95
    note: str = ""

    def contains(self, ratio: float) -> bool:
        """Whether ``low <= ratio <= high``."""
        return self.low <= ratio <= self.high


def _sample(name: str, values: npt.ArrayLike, minimum: int) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if len(array) < minimum:
        raise ValueError(f"{name} needs at least {minimum} values, got {len(array)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold finite values")
    return array


def mann_whitney(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test of A against B (``scipy.stats.mannwhitneyu``).

    Args:
        a: float array, shape (n_a,), n_a >= 1.
        b: float array, shape (n_b,), n_b >= 1.

    Returns:
        ``(u, p_value)``: U of ``a`` (pairs with a_i > b_j, ties counting one half;
        ``n_a * n_b / 2`` means no shift) and the two-sided p-value (exact for small samples
        without ties, else the normal approximation with tie and continuity corrections, as
        scipy chooses).

    Raises:
        ValueError: for samples that are not 1-D, empty or not finite.
    """
    xa = _sample("a", a, 1)
    xb = _sample("b", b, 1)
    from scipy import stats as scipy_stats  # imported when used: scipy is slow to import

    result = scipy_stats.mannwhitneyu(xa, xb, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def verdict(
    interval: Interval, better: Better = "higher", threshold: float | None = None
) -> Literal["better", "worse", "no significant difference"]:
    """Whether B is better or worse than A, judged on the whole confidence interval of B / A.

    Args:
        interval: the interval of the ratio B / A.
        better: "higher" if a larger value is better (throughput), "lower" if smaller is better
            (latency, error rate).
        threshold: smallest relative change that counts (0.05 = 5 %); default 0: the interval
            must exclude 1 (B above A when ``low > 1 + threshold``, below when
            ``high < 1 - threshold``).

    Returns:
        "better", "worse", or "no significant difference" (also for an undefined interval).

    Raises:
        ValueError: for an unknown ``better`` or a negative threshold.
    """
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    margin = threshold or 0.0
    if margin < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    if interval.low > 1.0 + margin:
        return "better" if better == "higher" else "worse"
    if interval.high < 1.0 - margin:
        return "worse" if better == "higher" else "better"
    return "no significant difference"


def gate_verdict(
    interval: Interval, threshold_ratio: float, better: Better
) -> Literal["pass", "fail", "inconclusive"]:
    """A regression gate on the interval of B / A (``compare --fail-on``).

    ``--fail-on throughput:-5%`` is ``threshold_ratio=0.95, better="higher"``; ``--fail-on
    p99:+10%`` is ``threshold_ratio=1.10, better="lower"``.

    Args:
        interval: the interval of the ratio B / A.
        threshold_ratio: the worst acceptable ratio, > 0.
        better: "higher" or "lower", the good direction of the metric.

    Returns:
        "fail" only when the whole interval lies beyond the threshold on the bad side; "pass" when
        the whole interval lies on the good side (the threshold itself included); "inconclusive"
        when it straddles the threshold or is undefined.

    Raises:
        ValueError: for an unknown ``better`` or a threshold that is not positive.
    """
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    if not threshold_ratio > 0:
        raise ValueError(f"threshold_ratio must be positive, got {threshold_ratio!r}")
    if better == "higher":
        if interval.high < threshold_ratio:
            return "fail"
        if interval.low >= threshold_ratio:
            return "pass"
    else:
        if interval.low > threshold_ratio:
            return "fail"
        if interval.high <= threshold_ratio:
            return "pass"
    return "inconclusive"
