"""Statistics behind ``harborbench compare``: bootstrap intervals of ratios between two runs.

Method (issue 13), in three layers:

1. **Dependence within a trial.** Consecutive 1-second intervals are not independent (load, GC
   and neighbours drift slowly), so they are resampled in blocks: the *stationary bootstrap* of
   Politis & Romano (1994, JASA 89:1303), blocks of geometric length, drawn with
   ``arch.bootstrap.StationaryBootstrap``. The expected block length is chosen automatically by
   ``arch.bootstrap.optimal_block_length`` (Politis & White 2004, Econometric Reviews 23:53, with
   the correction of Patton, Politis & White 2009), see :func:`block_length`.
2. **Variation between trials.** When a run has several trials (``repeat`` > 1, or the rounds of
   ``compare --run``), trials are the outer resampling unit: trials are drawn with replacement,
   then each drawn copy is resampled in stationary blocks within itself (the two-stage bootstrap
   of Davison & Hinkley 1997, section 3.8). When A and B were measured in interleaved rounds
   (``paired=True``), the same rounds are drawn for A and B, so that drift shared by a round
   cancels in the ratio.
3. **Few units.** A percentile interval from few independent units (three trials, or a short
   trial of few blocks) is too narrow. The interval is the *expanded percentile interval* of
   Hesterberg (2015, The American Statistician 69:371, section 5): the percentile interval at
   the level whose normal quantile is ``sqrt(n / (n - 1)) * t_(n-1)`` of the requested one, with
   ``n`` the independent units behind it (trials, or blocks of a single trial).

A and B are resampled independently (except for the paired rounds) and the interval of the ratio
B/A is read from the resampled ratios. Rates are ratios of sums over intervals; latency
percentiles come from merging the resampled intervals' HDR histograms (percentiles are never
averaged). This is the one bootstrap of harborbench; ``benchmarks/gate_calibration.py``
measures its false-failure rate and power on the mock.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt

from harborbench.metrics import stats
from harborbench.metrics.histogram import percentile_ns_from_counts

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Better = Literal["higher", "lower"]
Verdict = Literal["better", "worse", "no significant difference", "inconclusive", "not tested"]
GateVerdict = Literal["pass", "fail", "inconclusive"]

#: Fewest 1-second intervals per run for a bootstrap interval; below it a row is inconclusive.
#: Also the fewest values from which a block length is estimated (below it: blocks of 1 s).
MIN_INTERVALS = 10
#: Power used for the smallest detectable change.
POWER = 0.8
#: Resampled rows of a bucket-count matrix handled at once (bounds memory to a few MB per chunk).
_CHUNK = 256
#: Quantiles of the standard normal (the standard library's; no need for scipy here).
_STANDARD_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class Weights:
    """How many times each 1-second interval of a run is in each bootstrap resample.

    Attributes:
        matrix: float64 array, shape (n_resamples, N): multiplicities of the N intervals.
        units: independent units behind a resample: the number of trials when there are
            several, else the number of blocks of the one trial (N / mean block length).
        block_s: the mean block length of the stationary bootstrap, in intervals (seconds).
        method: the resampling in words.
    """

    matrix: FloatArray
    units: float
    block_s: float
    method: str


@dataclass(frozen=True, slots=True)
class Resampled:
    """Bootstrap replicates of one statistic of one run.

    Attributes:
        estimate: the statistic on the full data.
        replicates: float64 array, shape (n_resamples,): the statistic on each resample.
        n: how many intervals were resampled.
        units: independent units behind the replicates (see :class:`Weights`).
        method: how the replicates were drawn, in words.
    """

    estimate: float
    replicates: FloatArray
    n: int
    units: float
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


def block_length(series: Sequence[FloatArray]) -> float:
    """Mean block length of the stationary bootstrap for a run's per-second series.

    Each trial's series is centred on its own mean (so that a step between trials is not taken
    for dependence), the trials are joined, and ``arch.bootstrap.optimal_block_length`` (Politis
    & White 2004, corrected by Patton, Politis & White 2009) estimates the stationary
    bootstrap's optimal mean block length from the autocorrelation.

    Args:
        series: one float64 array per trial, shape (n_g,): a per-second value (ops/s, p50 s).
            NaN values are dropped.

    Returns:
        The mean block length in intervals, at least 1 and at most the shortest trial's length;
        1.0 (independent intervals) when fewer than :data:`MIN_INTERVALS` values are given or
        the values are constant, as no dependence can be estimated then.
    """
    from arch.bootstrap import optimal_block_length

    parts = [np.asarray(x, dtype=np.float64) for x in series]
    parts = [x[~np.isnan(x)] for x in parts]
    parts = [x - x.mean() for x in parts if len(x)]
    if not parts:
        return 1.0
    joined = np.concatenate(parts)
    if len(joined) < MIN_INTERVALS or np.ptp(joined) == 0:
        return 1.0
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        value = float(optimal_block_length(joined)["stationary"].iloc[0])
    if not math.isfinite(value):
        return 1.0
    return float(min(max(value, 1.0), min(len(x) for x in parts)))


def outer_draws(n_groups: int, n_resamples: int, rng: np.random.Generator) -> IntArray:
    """Copies of every trial in each resample of the outer stage (trials with replacement).

    Args:
        n_groups: number of trials ``G`` (>= 1).
        n_resamples: number of resamples ``R``.
        rng: the random generator.

    Returns:
        int64 array, shape (R, G), each row summing to G (all ones when G is 1).
    """
    if n_groups == 1:
        return np.ones((n_resamples, 1), dtype=np.int64)
    draws = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_resamples)
    return np.asarray(draws, dtype=np.int64)


def resample_weights(
    group_sizes: Sequence[int],
    n_resamples: int,
    rng: np.random.Generator,
    *,
    block_s: float = 1.0,
    copies: IntArray | None = None,
) -> Weights:
    """Multiplicities of every interval in each resample of the (two-stage) block bootstrap.

    Outer stage: ``copies`` (or :func:`outer_draws`) says how many copies of each trial a
    resample holds. Inner stage: each copy of trial ``g`` is a stationary-bootstrap resample of
    its ``n_g`` intervals (``arch.bootstrap.StationaryBootstrap`` with mean block ``block_s``,
    wrapping around the trial's end); with ``block_s`` 1 the blocks have length 1 and the inner
    stage is the ordinary bootstrap, drawn directly as a multinomial.

    Args:
        group_sizes: intervals per trial, each >= 1.
        n_resamples: number of resamples ``R``.
        rng: the random generator (seeded by the caller, so results are reproducible).
        block_s: mean block length in intervals, >= 1.
        copies: int array, shape (R, G), from :func:`outer_draws`; shared by A and B when their
            rounds are paired. None: drawn here.

    Returns:
        The weights, matrix of shape (R, sum(group_sizes)).
    """
    from arch.bootstrap import StationaryBootstrap

    sizes = [int(s) for s in group_sizes]
    if copies is None:
        copies = outer_draws(len(sizes), n_resamples, rng)
    blocks = []
    for g, size in enumerate(sizes):
        block = min(max(block_s, 1.0), float(size))
        if block <= 1.0:
            draws = copies[:, g] * size
            blocks.append(rng.multinomial(draws, np.full(size, 1.0 / size)).astype(np.float64))
            continue
        part = np.zeros((n_resamples, size), dtype=np.float64)
        # arch types block_size as int, but a mean block length is real (p = 1 / block).
        boot = StationaryBootstrap(block, np.arange(size), seed=rng)  # type: ignore[arg-type]
        for r in range(n_resamples):
            for _ in range(int(copies[r, g])):
                part[r] += np.bincount(boot.update_indices(), minlength=size)
        blocks.append(part)
    n = sum(sizes)
    units = float(len(sizes)) if len(sizes) > 1 else n / max(block_s, 1.0)
    if len(sizes) == 1:
        method = f"stationary block bootstrap of {n} 1-s intervals (mean block {block_s:.2g} s)"
    else:
        method = (
            f"two-stage bootstrap: {len(sizes)} trials, then stationary blocks (mean "
            f"{block_s:.2g} s) of {n} 1-s intervals within them"
        )
    return Weights(np.concatenate(blocks, axis=1), units, block_s, method)


def resample_ratio_of_sums(
    numerator: FloatArray, denominator: FloatArray, weights: Weights, what: str
) -> Resampled:
    """Bootstrap a rate that is a ratio of sums over intervals (e.g. successes / seconds).

    Args:
        numerator, denominator: float64 arrays, shape (N,): per-interval sums (successes and
            interval length in seconds for throughput; failures and completions for error rate).
            An interval to leave out has 0 in both.
        weights: from :func:`resample_weights`, matrix of shape (R, N).
        what: the statistic in words, for the method label.

    Returns:
        The replicates of ``sum(w * numerator) / sum(w * denominator)``; a resample whose
        denominator is 0 gives NaN.
    """
    num = weights.matrix @ numerator
    den = weights.matrix @ denominator
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    total_den = float(denominator.sum())
    estimate = float(numerator.sum()) / total_den if total_den > 0 else math.nan
    used = int(np.count_nonzero(denominator))
    return Resampled(estimate, reps, used, weights.units, f"{weights.method} ({what})")


def resample_percentiles(
    bucket_index: IntArray, counts: FloatArray, weights: Weights, qs: Sequence[float]
) -> dict[float, Resampled]:
    """Bootstrap latency percentiles by merging resampled per-interval histograms.

    Every percentile is read from the same resamples (one merge per resample).

    Args:
        bucket_index: int64 array, shape (k,): the HDR counter indices of the columns of ``counts``
            (:func:`harborbench.metrics.histogram.counts_matrix`).
        counts: float64 array, shape (N, k): bucket counts of each interval's histogram.
        weights: from :func:`resample_weights`, matrix of shape (R, N).
        qs: the percentiles, each in (0, 100].

    Returns:
        For each ``q``, replicates in nanoseconds; a resample that holds no sample gives NaN.
    """
    n_resamples = len(weights.matrix)
    reps = {q: np.full(n_resamples, np.nan) for q in qs}
    for start in range(0, n_resamples, _CHUNK):
        merged = weights.matrix[start : start + _CHUNK] @ counts
        ok = merged.sum(axis=1) > 0
        if ok.any():
            for q in qs:
                part = reps[q][start : start + _CHUNK]
                part[ok] = percentile_ns_from_counts(bucket_index, merged[ok], q)
    total = counts.sum(axis=0)
    method = f"{weights.method} (merged interval histograms)"
    return {
        q: Resampled(
            float(percentile_ns_from_counts(bucket_index, total, q)),
            reps[q],
            len(counts),
            weights.units,
            method,
        )
        for q in qs
    }


def expanded_z(confidence: float, units: float) -> float:
    """Normal quantile of Hesterberg's expanded percentile interval for ``units`` units.

    ``sqrt(n / (n - 1)) * t_(n-1)(1 - alpha/2)`` with ``alpha = 1 - confidence`` (Hesterberg
    2015, section 5): it widens the percentile interval of a bootstrap from few units to the
    width of a t interval. ``n`` below 2 is taken as 2.

    Args:
        confidence: e.g. 0.95.
        units: independent units (trials, or blocks of one trial).

    Returns:
        The quantile, e.g. 2.38 for 10 units at 95% (1.96 for infinitely many).
    """
    n = max(float(units), 2.0)
    from scipy import stats as sps  # imported when used: scipy is slow to import

    return math.sqrt(n / (n - 1.0)) * float(sps.t.ppf(0.5 + confidence / 2.0, n - 1.0))


def change_interval(
    a: Resampled, b: Resampled, confidence: float, *, difference: bool = False
) -> ChangeInterval | None:
    """Interval of the ratio B/A (or of B - A when A can be 0): expanded percentile method.

    The bounds are the quantiles ``Phi(-z)`` and ``Phi(z)`` of the resampled ratios, with ``z``
    from :func:`expanded_z` for the fewer units of A and B. The smallest detectable change uses
    the normal approximation of the log-ratio's bootstrap distribution: ``exp((z + z_power) *
    sd(log ratio)) - 1`` with power 0.8 (the usual two-sided power formula, e.g. Cohen 1988,
    ch. 12).

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
    z = expanded_z(confidence, min(a.units, b.units))
    tail = 1.0 - _STANDARD_NORMAL.cdf(z)
    if not difference and a.estimate > 0 and np.all(ra > 0) and b.estimate > 0 and np.all(rb > 0):
        ratio = rb / ra
        low, high = np.quantile(ratio, [tail, 1.0 - tail])
        sd = float(np.std(np.log(ratio), ddof=1))
        mdc = 100.0 * math.expm1((z + _STANDARD_NORMAL.inv_cdf(POWER)) * sd)
        return ChangeInterval("ratio", float(low), float(high), mdc)
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
