"""Statistics for comparing two runs: ratio confidence intervals, rank test, detectable change.

Every interval is an interval of the ratio ``B / A`` (B the candidate, A the baseline) of a
statistic, so 1.0 means "no change", 1.10 "B is 10 % higher". Methods:

* :func:`bootstrap_ratio_ci`: bootstrap of two independent samples (for example the per-interval
  throughputs or the per-trial values of two runs) with ``scipy.stats.bootstrap``; percentile
  interval by default, BCa on request (B. Efron, "Better bootstrap confidence intervals", JASA
  1987). The percentile method is the default because BCa's acceleration comes from the jackknife,
  which is inconsistent for medians and other quantiles (Efron 1982, "The jackknife, the bootstrap
  and other resampling plans", ch. 3); choose BCa for smooth statistics such as the mean.
* :func:`percentile_ratio_ci`: bootstrap over the per-interval histograms of each run: intervals
  are resampled with replacement, *merged*, and the percentile of the merge is taken. Percentiles
  are never averaged.
* :func:`mann_whitney`: two-sided Mann-Whitney U test (``scipy.stats.mannwhitneyu``).
* :func:`minimum_detectable_change`: smallest relative change of the mean that the data could
  detect, from the Welch two-sample t approximation.

:func:`verdict` and :func:`gate_verdict` turn an interval into words for ``compare``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from harborbench.metrics.histogram import (
    LatencyHistogram,
    counts_matrix,
    percentile_ns_from_counts,
)

Better = Literal["higher", "lower"]
BootstrapMethod = Literal["percentile", "BCa"]
Statistic = Callable[..., Any]
FloatArray = npt.NDArray[np.float64]

_METHOD_LABEL: dict[str, str] = {"percentile": "percentile bootstrap", "BCa": "BCa"}
_MAX_BATCH_ELEMENTS = 4_000_000  # bounds the memory of one bootstrap batch (~32 MB of float64)


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence interval of the ratio B / A of a statistic.

    Attributes:
        estimate: the ratio computed on all the data.
        low: lower bound of the interval.
        high: upper bound of the interval.
        method: how the interval was computed ("percentile bootstrap", "BCa", or
            "percentile bootstrap over intervals").
        n_a: number of observations (values, or non-empty intervals) of A.
        n_b: number of observations of B.
        confidence: confidence level, in (0, 1).
        note: why the requested method was replaced, if it was; else "".
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


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def _scipy_bootstrap(
    data: tuple[FloatArray, FloatArray],
    statistic: Callable[..., Any],
    *,
    method: BootstrapMethod,
    confidence: float,
    n_resamples: int,
    seed: int | None,
    batch: int,
) -> tuple[float, float, str, str]:
    """Run scipy's bootstrap; fall back to the percentile method when BCa is undefined.

    Returns:
        (low, high, method label, note).
    """
    if method not in _METHOD_LABEL:
        raise ValueError(f"method must be 'percentile' or 'BCa', got {method!r}")

    from scipy import stats as scipy_stats  # imported where used: scipy is slow to import

    def run(kind: str) -> tuple[float, float, bool]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = scipy_stats.bootstrap(
                data,
                statistic,
                n_resamples=n_resamples,
                batch=batch,
                vectorized=True,
                paired=False,
                confidence_level=confidence,
                method=kind,
                rng=np.random.default_rng(seed),
            )
        low = float(result.confidence_interval.low)
        high = float(result.confidence_interval.high)
        return low, high, bool(caught) or math.isnan(low) or math.isnan(high)

    low, high, degenerate = run(method)
    if method == "BCa" and degenerate:
        low, high, _ = run("percentile")
        return low, high, _METHOD_LABEL["percentile"], "BCa undefined for these data"
    return low, high, _METHOD_LABEL[method], ""


def bootstrap_ratio_ci(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    stat: Statistic = np.median,
    *,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int | None = None,
    method: BootstrapMethod = "percentile",
) -> Interval:
    """Bootstrap confidence interval of ``stat(b) / stat(a)`` for two independent samples.

    A and B are resampled independently (``scipy.stats.bootstrap``, ``paired=False``). With BCa,
    data for which BCa is undefined (for example constant samples) fall back to the percentile
    method, said in ``Interval.note``.

    Args:
        a: float array, shape (n_a,), n_a >= 2: the baseline's observations (e.g. ops/s per
            interval).
        b: float array, shape (n_b,), n_b >= 2: the candidate's observations, same unit.
        stat: the statistic; called as ``stat(x, axis=-1)`` (``np.median``, ``np.mean``).
        confidence: confidence level in (0, 1).
        n_resamples: bootstrap resamples.
        seed: seed of the resampling generator, for reproducible intervals.
        method: "percentile" (default) or "BCa".

    Returns:
        the interval; bounds may be infinite if resamples of A give a zero statistic.

    Raises:
        ValueError: for samples that are not 1-D, too short or not finite, a zero ``stat(a)``,
            an unknown method or a confidence outside (0, 1).
    """
    xa = _sample("a", a, 2)
    xb = _sample("b", b, 2)
    _check_confidence(confidence)
    denominator = float(stat(xa, axis=-1))
    if denominator == 0.0:
        raise ValueError("the statistic of a is 0: the ratio is undefined")
    estimate = float(stat(xb, axis=-1)) / denominator

    def ratio(x: FloatArray, y: FloatArray, axis: int = -1) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            result: FloatArray = np.asarray(stat(y, axis=axis)) / np.asarray(stat(x, axis=axis))
        return result

    batch = max(1, _MAX_BATCH_ELEMENTS // max(len(xa), len(xb)))
    low, high, label, note = _scipy_bootstrap(
        (xa, xb),
        ratio,
        method=method,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        batch=batch,
    )
    return Interval(estimate, low, high, label, len(xa), len(xb), confidence, note)


def percentile_ratio_ci(
    hist_a_per_interval: Sequence[LatencyHistogram],
    hist_b_per_interval: Sequence[LatencyHistogram],
    q: float,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | None = None,
) -> Interval:
    """Confidence interval of the ratio of a latency percentile, B over A, from interval histograms.

    The resampling unit is the interval (for example one second of a run): each bootstrap resample
    draws the intervals of A with replacement and merges their histograms, likewise for B, and
    takes the percentile of each merge; the interval is the percentile interval of the resampled
    ratios. Percentiles are never averaged. Resampling whole intervals keeps the dependence
    between requests of the same second. Empty intervals carry no latency and are left out.

    Args:
        hist_a_per_interval: A's histograms, one per interval, at least 2 non-empty.
        hist_b_per_interval: B's histograms, one per interval, at least 2 non-empty.
        q: the percentile, in [0, 100] (99 for p99).
        confidence: confidence level in (0, 1).
        n_resamples: bootstrap resamples.
        seed: seed of the resampling generator.

    Returns:
        the interval, ``method="percentile bootstrap over intervals"``; ``n_a``/``n_b`` count the
        non-empty intervals.

    Raises:
        ValueError: with fewer than 2 non-empty intervals on a side, ``q`` outside [0, 100] or a
            confidence outside (0, 1).
    """
    _check_confidence(confidence)
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {q!r}")
    sides = []
    for name, histograms in (("a", hist_a_per_interval), ("b", hist_b_per_interval)):
        kept = [h for h in histograms if h.count]
        if len(kept) < 2:
            raise ValueError(f"{name} needs at least 2 non-empty intervals, got {len(kept)}")
        sides.append(counts_matrix(kept))
    (index_a, counts_a), (index_b, counts_b) = sides
    estimate = float(percentile_ns_from_counts(index_b, counts_b.sum(axis=0), q)) / float(
        percentile_ns_from_counts(index_a, counts_a.sum(axis=0), q)
    )
    rng = np.random.default_rng(seed)
    batch = max(1, _MAX_BATCH_ELEMENTS // max(counts_a.size, counts_b.size))
    ratios = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, batch):
        size = min(batch, n_resamples - start)
        values_a = _resampled_percentiles(index_a, counts_a, q, size, rng)
        values_b = _resampled_percentiles(index_b, counts_b, q, size, rng)
        ratios[start : start + size] = values_b / values_a
    alpha = 1.0 - confidence
    low, high = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
    return Interval(
        estimate,
        float(low),
        float(high),
        "percentile bootstrap over intervals",
        len(counts_a),
        len(counts_b),
        confidence,
    )


def _resampled_percentiles(
    bucket_index: npt.NDArray[np.int64],
    counts: FloatArray,
    q: float,
    size: int,
    rng: np.random.Generator,
) -> FloatArray:
    """Percentile of ``size`` merges of rows of ``counts`` drawn with replacement."""
    n = len(counts)
    draws = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
    weights = np.bincount(draws.ravel(), minlength=size * n).reshape(size, n)
    # einsum's plain loop: a BLAS matmul of these small shapes is slower (thread start-up)
    merged = np.einsum("ri,ik->rk", weights.astype(np.float64), counts)
    return percentile_ns_from_counts(bucket_index, merged, q).astype(np.float64)


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
    from scipy import stats as scipy_stats  # imported where used: scipy is slow to import

    result = scipy_stats.mannwhitneyu(xa, xb, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def minimum_detectable_change(
    a: npt.ArrayLike, b: npt.ArrayLike, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Smallest relative change of the mean that these samples could detect.

    Approximation: a two-sided Welch t-test at level ``alpha`` detects a difference of means
    ``delta`` with probability ``power`` when ``delta = (t(1 - alpha/2, df) + t(power, df)) * se``,
    with ``se = sqrt(s_a**2 / n_a + s_b**2 / n_b)`` and the Welch-Satterthwaite ``df`` (the usual
    normal-theory power formula with t quantiles; it slightly understates the change for very
    small samples, where the noncentral t would be exact). The result is ``delta / |mean(a)|``.

    Args:
        a: float array, shape (n_a,): the baseline's observations.
        b: float array, shape (n_b,): the candidate's observations.
        alpha: significance level, in (0, 1).
        power: probability of detection, in (0, 1).

    Returns:
        the change as a fraction of A's mean (0.05 = 5 %); ``inf`` when a sample has fewer than 2
        values or A's mean is 0; 0.0 when both samples are constant.

    Raises:
        ValueError: for samples that are not 1-D or not finite, or alpha/power outside (0, 1).
    """
    xa = _sample("a", a, 0)
    xb = _sample("b", b, 0)
    if not (0.0 < alpha < 1.0 and 0.0 < power < 1.0):
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha!r}, {power!r}")
    if len(xa) < 2 or len(xb) < 2 or float(np.mean(xa)) == 0.0:
        return math.inf
    va = float(np.var(xa, ddof=1)) / len(xa)
    vb = float(np.var(xb, ddof=1)) / len(xb)
    se = math.sqrt(va + vb)
    if se == 0.0:
        return 0.0
    df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
    from scipy import stats as scipy_stats  # imported where used: scipy is slow to import

    t = scipy_stats.t
    delta = (float(t.ppf(1 - alpha / 2, df)) + float(t.ppf(power, df))) * se
    return delta / abs(float(np.mean(xa)))


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
