"""Statistics behind ``harborbench compare``: bootstrap intervals of ratios between two runs.

The unit of resampling is the 1-second interval of a run's time series (warmup excluded). When a
run has several trials (``repeat`` > 1, or ``compare --run --rounds N``) the bootstrap is two-stage:
trials are drawn with replacement, then intervals with replacement within each drawn trial, so
that the variation between trials (machine drift, a slow start) widens the interval as it should
(the hierarchical bootstrap of Davison & Hinkley 1997, section 3.8). With one trial it is the
ordinary bootstrap of intervals (Efron & Tibshirani 1993). A and B are resampled independently and
the interval of the ratio B/A is read from the percentiles of the resampled ratios ("percentile
bootstrap").

Assumption, stated: 1-second intervals are treated as exchangeable. Load tests have some
autocorrelation between neighbouring seconds, which makes these intervals somewhat narrow; run
longer or with ``repeat`` > 1 when a decision rests on a narrow margin.

Percentiles are never averaged: a resample of a latency percentile merges the resampled intervals'
HDR histograms (a weighted sum of their bucket counts) and reads the percentile of the merge.

Relation to :mod:`harborbench.metrics.stats`: the verdicts, the gate rule and the rank test are
that module's (:func:`change_verdict` and :func:`mann_whitney_p` only wrap them for the cases it
leaves out). What is here and not there: the two-stage (trials, then intervals) resampling,
rates as ratios of sums, and a detectable change
for any bootstrapped statistic; they could move into ``metrics/stats.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt

from harborbench.metrics import stats
from harborbench.metrics.histogram import percentile_ns_from_counts

FloatArray = npt.NDArray[np.float64]
Better = Literal["higher", "lower"]
Verdict = Literal["better", "worse", "no significant difference", "inconclusive", "not tested"]
GateVerdict = Literal["pass", "fail", "inconclusive"]

#: Fewest 1-second intervals per run for a bootstrap interval; below it a row is inconclusive.
MIN_INTERVALS = 10
#: Power used for the smallest detectable change.
POWER = 0.8
#: Resampled rows of a bucket-count matrix handled at once (bounds memory to a few MB per chunk).
_CHUNK = 256
#: Quantiles of the standard normal (the standard library's; no need for scipy here).
_STANDARD_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class Resampled:
    """Bootstrap replicates of one statistic of one run.

    Attributes:
        estimate: the statistic on the full data.
        replicates: float64 array, shape (n_resamples,): the statistic on each resample.
        n: how many units were resampled (intervals).
        method: how the replicates were drawn, in words.
    """

    estimate: float
    replicates: FloatArray
    n: int
    method: str


@dataclass(frozen=True, slots=True)
class ChangeInterval:
    """The interval of the change from A to B.

    Attributes:
        of: ``"ratio"`` (B/A) or ``"difference"`` (B - A, in the metric's unit; used when A is 0
            and the ratio is undefined).
        low, high: the bounds at the requested confidence.
        min_detectable_pct: smallest relative change the data could detect (ratio only), percent.
    """

    of: Literal["ratio", "difference"]
    low: float
    high: float
    min_detectable_pct: float | None


def resample_weights(
    group_sizes: Sequence[int], n_resamples: int, rng: np.random.Generator
) -> FloatArray:
    """Multiplicity of every unit in each resample of a (two-stage) bootstrap.

    Stage one draws ``G`` groups (trials) with replacement; stage two draws, for every drawn copy of
    group ``g``, ``n_g`` units with replacement from it. The ``c`` copies of a group together draw
    ``c * n_g`` units, so the multiplicities are ``Multinomial(c * n_g, uniform)``. With one group
    this is the ordinary bootstrap (Efron & Tibshirani 1993).

    Args:
        group_sizes: units per group (intervals per trial), each >= 1.
        n_resamples: number of resamples ``R``.
        rng: the random generator (seeded by the caller, so results are reproducible).

    Returns:
        float64 array, shape (R, sum(group_sizes)): how many times each unit is in each resample.
    """
    sizes = [int(s) for s in group_sizes]
    n_groups = len(sizes)
    if n_groups == 1:
        copies = np.ones((n_resamples, 1), dtype=np.int64)
    else:
        copies = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_resamples)
    blocks = []
    for g, size in enumerate(sizes):
        draws = copies[:, g] * size
        blocks.append(rng.multinomial(draws, np.full(size, 1.0 / size)))
    return np.concatenate(blocks, axis=1).astype(np.float64)


def _method(group_sizes: Sequence[int], what: str) -> str:
    n = sum(group_sizes)
    if len(group_sizes) == 1:
        return f"percentile bootstrap over {n} 1-s intervals ({what})"
    return (
        f"two-stage percentile bootstrap: {len(group_sizes)} trials, then {n} 1-s intervals "
        f"within them ({what})"
    )


def resample_ratio_of_sums(
    numerator: FloatArray,
    denominator: FloatArray,
    group_sizes: Sequence[int],
    n_resamples: int,
    rng: np.random.Generator,
    what: str,
) -> Resampled:
    """Bootstrap a rate that is a ratio of sums over intervals (e.g. successes / seconds).

    Args:
        numerator, denominator: float64 arrays, shape (N,): per-interval sums (successes and
            interval length in seconds for throughput; failures and completions for error rate).
        group_sizes: intervals per trial, summing to N.
        n_resamples: number of resamples.
        rng: the random generator.
        what: the statistic in words, for the method label.

    Returns:
        The replicates of ``sum(w * numerator) / sum(w * denominator)``; a resample whose
        denominator is 0 gives NaN.
    """
    weights = resample_weights(group_sizes, n_resamples, rng)
    num = weights @ numerator
    den = weights @ denominator
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    total_den = float(denominator.sum())
    estimate = float(numerator.sum()) / total_den if total_den > 0 else math.nan
    return Resampled(estimate, reps, len(numerator), _method(group_sizes, what))


def resample_percentiles(
    bucket_index: npt.NDArray[np.int64],
    counts: FloatArray,
    group_sizes: Sequence[int],
    qs: Sequence[float],
    n_resamples: int,
    rng: np.random.Generator,
) -> dict[float, Resampled]:
    """Bootstrap latency percentiles by merging resampled per-interval histograms.

    Every percentile is read from the same resamples (one merge per resample).

    Args:
        bucket_index: int64 array, shape (k,): the HDR counter indices of the columns of ``counts``
            (:func:`harborbench.metrics.histogram.counts_matrix`).
        counts: float64 array, shape (N, k): bucket counts of each interval's histogram.
        group_sizes: intervals per trial, summing to N.
        qs: the percentiles, each in (0, 100].
        n_resamples: number of resamples.
        rng: the random generator.

    Returns:
        For each ``q``, replicates in nanoseconds; a resample that holds no sample gives NaN.
    """
    weights = resample_weights(group_sizes, n_resamples, rng)
    reps = {q: np.full(n_resamples, np.nan) for q in qs}
    for start in range(0, n_resamples, _CHUNK):
        merged = weights[start : start + _CHUNK] @ counts
        ok = merged.sum(axis=1) > 0
        if ok.any():
            for q in qs:
                part = reps[q][start : start + _CHUNK]
                part[ok] = percentile_ns_from_counts(bucket_index, merged[ok], q)
    total = counts.sum(axis=0)
    method = _method(group_sizes, "merged interval histograms")
    return {
        q: Resampled(
            float(percentile_ns_from_counts(bucket_index, total, q)), reps[q], len(counts), method
        )
        for q in qs
    }


def change_interval(
    a: Resampled, b: Resampled, confidence: float, *, difference: bool = False
) -> ChangeInterval | None:
    """Interval of the ratio B/A (or of B - A when A can be 0), by the percentile method.

    The smallest detectable change uses the normal approximation of the log-ratio's bootstrap
    distribution: ``exp((z_(1-alpha/2) + z_power) * sd(log ratio)) - 1`` with ``alpha = 1 -
    confidence`` and power 0.8 (the usual two-sided power formula, e.g. Cohen 1988, ch. 12).

    Args:
        a, b: the replicates of the same statistic for runs A and B (same ``n_resamples``).
        confidence: e.g. 0.95.
        difference: always give the interval of B - A (for figures that can be 0 or negative).

    Returns:
        The interval, or None when too few replicates are defined (fewer than 90% non-NaN).
    """
    ok = ~(np.isnan(a.replicates) | np.isnan(b.replicates))
    if ok.sum() < 0.9 * len(ok):
        return None
    ra, rb = a.replicates[ok], b.replicates[ok]
    tail = (1.0 - confidence) / 2.0
    if not difference and a.estimate > 0 and np.all(ra > 0) and b.estimate > 0 and np.all(rb > 0):
        ratio = rb / ra
        low, high = np.quantile(ratio, [tail, 1.0 - tail])
        sd = float(np.std(np.log(ratio), ddof=1))
        z = _STANDARD_NORMAL.inv_cdf(1.0 - tail) + _STANDARD_NORMAL.inv_cdf(POWER)
        return ChangeInterval("ratio", float(low), float(high), 100.0 * math.expm1(z * sd))
    low, high = np.quantile(rb - ra, [tail, 1.0 - tail])
    return ChangeInterval("difference", float(low), float(high), None)


def mann_whitney_p(
    a: Sequence[float] | FloatArray, b: Sequence[float] | FloatArray
) -> float | None:
    """Two-sided p-value of :func:`harborbench.metrics.stats.mann_whitney`, or None if undefined.

    Args:
        a, b: per-interval values of the two runs (NaN values are dropped).

    Returns:
        The p-value, or None when either side has fewer than 2 values or all values are equal
        (the test's variance is then 0).
    """
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    xa, xb = xa[~np.isnan(xa)], xb[~np.isnan(xb)]
    if len(xa) < 2 or len(xb) < 2 or np.ptp(np.concatenate([xa, xb])) == 0:
        return None
    return stats.mann_whitney(xa, xb)[1]


def as_stats_interval(interval: ChangeInterval, n_a: int, n_b: int) -> stats.Interval:
    """The ratio interval as :class:`harborbench.metrics.stats.Interval` (estimate = midpoint)."""
    mid = (interval.low + interval.high) / 2.0
    return stats.Interval(mid, interval.low, interval.high, "percentile bootstrap", n_a, n_b)


def change_verdict(interval: ChangeInterval, better: Better) -> Verdict:
    """Better, worse or no significant difference, from where the interval lies.

    A ratio interval is judged by :func:`harborbench.metrics.stats.verdict` (it must exclude 1);
    a difference interval (A was 0) the same way against 0.

    Args:
        interval: the interval of the ratio (compared with 1) or difference (compared with 0).
        better: the direction in which the metric is good.

    Returns:
        ``"better"`` when the whole interval lies on the good side of no change, ``"worse"`` when
        it lies wholly on the bad side, otherwise ``"no significant difference"``.
    """
    if interval.of == "ratio":
        return stats.verdict(as_stats_interval(interval, 0, 0), better)
    if interval.low > 0.0:
        return "better" if better == "higher" else "worse"
    if interval.high < 0.0:
        return "worse" if better == "higher" else "better"
    return "no significant difference"
