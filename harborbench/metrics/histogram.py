"""Mergeable high-dynamic-range latency histograms over nanoseconds.

:class:`LatencyHistogram` wraps an ``hdrh.histogram.HdrHistogram`` (the Python port of Gil Tene's
HdrHistogram) configured for request latencies:

* range: values are clamped to [1 µs, 1 h] = [``MIN_NS``, ``MAX_NS``]; a clamped value is counted
  (``clamped_below_count`` / ``clamped_above_count``) so a report can say it happened;
* precision: 3 significant figures with a lowest discernible value of 1 ns: buckets are 1 ns wide
  up to 2048 ns and 2**k ns wide in [1024 * 2**k, 2048 * 2**k), so a reported value (the lowest or
  highest value of the sample's bucket) is within **0.1 % (relative error < 1/1024 ~ 0.098 %)**
  of the sample it stands for, anywhere in the range;
* memory: a fixed 33,792 counters of 8 bytes (264 KiB) per histogram, whatever the number of
  samples, plus a write buffer of at most ``FLUSH_AT`` pending values;
* merging is exact: counts are added bucket by bucket, so the merge of several histograms is the
  histogram of the pooled samples, counter for counter.

Percentiles are never averaged: to combine workers, trials or intervals, merge their histograms and
read the percentile of the merge (:func:`percentile_ns_from_counts` does this for many merges at
once, for the bootstrap in :mod:`harborbench.metrics.stats`).

Percentile rule (the one HdrHistogram uses): for ``q`` in (0, 100] and ``n`` samples the value of
rank ``max(1, int(q * n / 100 + 0.5))`` (1-based, in ascending order) is found and the *highest*
value of its bucket is returned, so a percentile never under-reports by more than the bucket; for
``q == 0`` the lowest value of the first bucket is returned.
"""

from __future__ import annotations

import binascii
import sys
import zlib
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
from hdrh.codec import HdrCookieException, HdrLengthException
from hdrh.histogram import HdrHistogram

MIN_NS = 1_000
"""Smallest value kept, 1 µs; smaller values (also zero and negative ones) are raised to it."""
MAX_NS = 3_600_000_000_000
"""Largest value kept, 1 h; larger values are lowered to it."""
SIGNIFICANT_FIGURES = 3
"""Decimal significant figures HdrHistogram maintains: relative error <= 1/1024 per value."""
LOWEST_DISCERNIBLE_NS = 1
"""HdrHistogram's lowest discernible value: 1 ns, so 3 significant figures hold down to 1 µs."""
FLUSH_AT = 1024
"""Values buffered by :meth:`LatencyHistogram.record_ns` before they are binned in one batch."""
MIN_TAIL_SAMPLES = 10
"""A percentile q is *insufficient* when fewer than this many samples lie above it."""

SUMMARY_PERCENTILES: dict[str, float] = {
    "p50": 50.0,
    "p90": 90.0,
    "p95": 95.0,
    "p99": 99.0,
    "p999": 99.9,
}
"""Names and percentiles reported by :meth:`LatencyHistogram.summary`."""

IntArray = npt.NDArray[np.int64]


class SummaryEntry(TypedDict):
    """One figure of :meth:`LatencyHistogram.summary` (JSON-ready).

    Keys:
        value_ns: the value in nanoseconds (int for percentiles and max, float for the mean), or
            None when the histogram is empty.
        percentile: the percentile in [0, 100] (100.0 for max), or None for the mean.
        count: number of samples the figure is computed from.
        insufficient: True when the sample count is too small for the figure (see
            :func:`is_insufficient`).
    """

    value_ns: float | None
    percentile: float | None
    count: int
    insufficient: bool


def min_samples_for(q: float) -> int:
    """Smallest sample count for which percentile ``q`` is not insufficient.

    Args:
        q: percentile in [0, 100).

    Returns:
        ``ceil(MIN_TAIL_SAMPLES / (1 - q/100))``, e.g. 20 for p50, 1000 for p99, 10000 for p99.9.

    Raises:
        ValueError: if ``q`` is outside [0, 100).
    """
    if not 0.0 <= q < 100.0:
        raise ValueError(f"percentile must be in [0, 100), got {q!r}")
    tail = (100 - Fraction(repr(q))) / 100
    return int(-(-Fraction(MIN_TAIL_SAMPLES) // tail))


def is_insufficient(q: float, count: int) -> bool:
    """Whether ``count`` samples are too few to report percentile ``q``.

    The rule: fewer than ``MIN_TAIL_SAMPLES`` (10) samples lie above the percentile, that is
    ``count * (1 - q/100) < 10``, computed exactly on ``q`` as written (99.9 is 999/10), so p99
    needs 1000 samples and p99.9 needs 10000. ``q == 100`` (the maximum) is insufficient only when
    ``count == 0``.

    Args:
        q: percentile in [0, 100].
        count: number of samples.

    Returns:
        True when the percentile should be marked insufficient.
    """
    if count <= 0:
        return True
    if q >= 100.0:
        return False
    return count < min_samples_for(q)


#: The chance of a false failure accepted when a few samples decide a latency gate by
#: themselves (:func:`shown_above`).
SHOWN_ABOVE_ALPHA = 0.05


def shown_above(q: float, count: int, above: int) -> bool:
    """Whether ``above`` of ``count`` samples over a limit show that percentile ``q`` is over it.

    For a percentile with too few samples to report (:func:`is_insufficient`) a gate cannot
    pass, but the samples can still decide that it fails: if the population's ``q``-th
    percentile were at or below the limit, each sample would lie above it with probability at
    most ``1 - q/100``, so the count above would be at most Binomial(count, 1 - q/100). The
    exact binomial test rejects that when ``P(X >= above) <`` :data:`SHOWN_ABOVE_ALPHA`
    (the order-statistic argument of distribution-free quantile tests, Conover, *Practical
    Nonparametric Statistics*, 3rd ed., section 3.2). Ten samples all over the limit give
    0.05^10; three of ten give 1.2% (shown); two of ten give 8.6% (not shown).

    Args:
        q: percentile in (0, 100).
        count: number of samples (>= 0).
        above: how many of them lie above the limit (0 <= above <= count).

    Returns:
        True when the percentile is shown to be above the limit.
    """
    if above <= 0 or count <= 0:
        return False
    from scipy.stats import binom

    tail = float(binom.sf(above - 1, count, 1.0 - q / 100.0))
    return tail < SHOWN_ABOVE_ALPHA


class _Layout:
    """Bucket layout of every LatencyHistogram (one HdrHistogram configuration, computed once)."""

    __slots__ = (
        "counts_len",
        "half_count",
        "half_mag",
        "highest_ns",
        "lowest_ns",
        "median_ns",
        "sub_bucket_mask",
        "unit_mag",
    )

    def __init__(self) -> None:
        probe = HdrHistogram(LOWEST_DISCERNIBLE_NS, MAX_NS, SIGNIFICANT_FIGURES)
        self.unit_mag: int = probe.unit_magnitude
        self.half_mag: int = probe.sub_bucket_half_count_magnitude
        self.half_count: int = probe.sub_bucket_half_count
        self.sub_bucket_mask: int = probe.sub_bucket_mask
        self.counts_len: int = probe.counts_len
        index = np.arange(self.counts_len, dtype=np.int64)
        bucket = (index >> self.half_mag) - 1
        sub = (index & (self.half_count - 1)) + self.half_count
        sub = np.where(bucket < 0, sub - self.half_count, sub)
        bucket = np.maximum(bucket, 0)
        self.lowest_ns: IntArray = sub << (bucket + self.unit_mag)
        size = np.left_shift(1, self.unit_mag + self.bucket_of(self.lowest_ns))
        self.highest_ns: IntArray = self.lowest_ns + size - 1
        self.median_ns: IntArray = self.lowest_ns + (size >> 1)

    def bucket_of(self, values_ns: IntArray) -> IntArray:
        """HdrHistogram's bucket index of each value (values < 2**53, so float64 is exact)."""
        _, bit_length = np.frexp((values_ns | self.sub_bucket_mask).astype(np.float64))
        return bit_length.astype(np.int64) - self.unit_mag - (self.half_mag + 1)

    def index_of(self, values_ns: IntArray) -> IntArray:
        """Counter index of each value, identical to HdrHistogram's ``_counts_index_for``."""
        bucket = self.bucket_of(values_ns)
        sub = values_ns >> (bucket + self.unit_mag)
        return ((bucket + 1) << self.half_mag) + sub - self.half_count


_LAYOUT = _Layout()


def _check_percentile(q: float) -> None:
    """Refuse a percentile outside [0, 100], and a fraction such as 0.99 meant as p99.

    Percentiles are on the 0-100 scale everywhere; ``0 < q < 1`` is refused rather than read as
    p0.99, the silent wrong answer a caller thinking in fractions would get.
    """
    if not 0.0 <= q <= 100.0:  # also rejects NaN
        raise ValueError(f"percentile must be in [0, 100], got {q!r}")
    if 0.0 < q < 1.0:
        raise ValueError(
            f"percentile {q!r} looks like a fraction: percentiles are on the 0-100 scale "
            f"(write {q * 100:g} for p{q * 100:g})"
        )


def percentile_ns_from_counts(
    bucket_index: npt.NDArray[np.integer[Any]],
    counts: npt.NDArray[Any],
    q: float,
) -> IntArray:
    """Percentile of each row of a matrix of bucket counts (each row one merged histogram).

    This is how the bootstrap of :mod:`harborbench.metrics.stats` takes the percentile of many
    merged histograms at once; :meth:`LatencyHistogram.percentile_ns` uses it too, so both follow
    the same rank rule (see the module docstring).

    Args:
        bucket_index: int array, shape (k,): the counter indices the columns stand for, ascending
            (as returned by :func:`counts_matrix`).
        counts: array of non-negative integer counts (int or float dtype), shape (k,) or (r, k).
        q: percentile in [0, 100].

    Returns:
        int64 array, shape () for 1-D ``counts`` or (r,): the percentile in nanoseconds of each row.

    Raises:
        ValueError: if ``q`` is outside [0, 100] or a row has no samples.
    """
    _check_percentile(q)
    return _percentile_of_counts(bucket_index, counts, q)


def _percentile_of_counts(
    bucket_index: npt.NDArray[np.integer[Any]], counts: npt.NDArray[Any], q: float
) -> IntArray:
    """:func:`percentile_ns_from_counts` for a ``q`` already known to lie in [0, 100]."""
    matrix = np.atleast_2d(counts)
    cumulative = np.cumsum(matrix, axis=1, dtype=np.float64)
    totals = cumulative[:, -1] if cumulative.shape[1] else np.zeros(len(cumulative))
    if np.any(totals <= 0):
        raise ValueError("percentile of an empty histogram")
    # HdrHistogram's rank rule, same float arithmetic: max(1, int(q * n / 100 + 0.5)).
    target = np.maximum(1.0, np.floor(q * totals / 100 + 0.5))
    position = (cumulative >= target[:, None]).argmax(axis=1)
    index = np.asarray(bucket_index, dtype=np.int64)[position]
    table = _LAYOUT.highest_ns if q > 0 else _LAYOUT.lowest_ns
    values: IntArray = table[index]
    return values.reshape(()) if np.ndim(counts) == 1 else values


def counts_matrix(
    histograms: Sequence[LatencyHistogram],
) -> tuple[IntArray, npt.NDArray[np.float64]]:
    """Counts of several histograms side by side, restricted to the buckets any of them uses.

    Args:
        histograms: the histograms (for example one per 1-second interval).

    Returns:
        ``(bucket_index, counts)``: int64 array, shape (k,), the ascending counter indices used by
        at least one histogram; float64 array, shape (len(histograms), k), their counts (exact
        integers up to 2**53). A weighted sum of rows is the count vector of a merge.
    """
    per_histogram = [h._nonzero() for h in histograms]
    if not per_histogram:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float64)
    bucket_index: IntArray = np.unique(np.concatenate([index for index, _ in per_histogram]))
    matrix = np.zeros((len(per_histogram), len(bucket_index)), dtype=np.float64)
    for row, (index, counts) in enumerate(per_histogram):
        matrix[row, np.searchsorted(bucket_index, index)] = counts
    return bucket_index, matrix


class LatencyHistogram:
    """A mergeable high-dynamic-range histogram of latencies in nanoseconds.

    Range [1 µs, 1 h] (values outside are clamped and counted), 3 significant figures: every
    reported value is within 0.1 % (relative error <= 1/1024) of the sample it stands for. Memory is
    constant (264 KiB of counters). Merging is exact. Percentiles are never averaged: merge, then
    read. Not thread-safe: use one histogram per thread or task group, then merge.

    Cost of :meth:`record_ns`: 0.12 to 0.21 µs per value amortized (a list append; every
    ``FLUSH_AT`` = 1024 values are binned in one numpy batch), against 0.65 to 0.98 µs for
    ``HdrHistogram.record_value`` called per value and 0.01 to 0.02 µs for a bare
    ``list.append`` (``benchmarks/histogram.py``, best of 5 rounds, CPython 3.11 on the shared
    2-core development machine; the spread is between runs). Reading five percentiles of 10**6
    values takes about 8 ms, against about 210 ms for ``numpy.percentile`` over the list.

    Every reading method (``count``, percentiles, ``encode`` ...) first bins the pending values.
    """

    __slots__ = ("_clamped_above", "_clamped_below", "_counts", "_hdr", "_pending")

    def __init__(self) -> None:
        """Create an empty histogram."""
        self._hdr = HdrHistogram(LOWEST_DISCERNIBLE_NS, MAX_NS, SIGNIFICANT_FIGURES)
        self._attach_counts()
        self._pending: list[int] = []
        self._clamped_below = 0
        self._clamped_above = 0

    def _attach_counts(self) -> None:
        # A writable uint64 view on HdrHistogram's own ctypes counters (no copy).
        self._counts: npt.NDArray[np.uint64] = np.ctypeslib.as_array(self._hdr.counts)

    def record_ns(self, value_ns: int) -> None:
        """Record one latency.

        Args:
            value_ns: the latency in nanoseconds (int, e.g. a difference of
                ``time.perf_counter_ns()``); values below 1 µs or above 1 h are clamped and counted.
        """
        pending = self._pending
        pending.append(value_ns)
        if len(pending) >= FLUSH_AT:
            self._flush()

    def appender(self) -> Callable[[int], None]:
        """A function that records one latency (ns) as :meth:`record_ns` does, minus the call.

        It is the write buffer's ``list.append``: it never bins, so whoever uses it must call
        :meth:`flush` regularly (the engine's recorder does once a second) or the buffer grows
        without bound. Every read bins the buffer first, so figures are exact at any moment.
        """
        return self._pending.append

    def flush(self) -> None:
        """Bin the values waiting in the write buffer (reads do this themselves)."""
        self._flush()

    def _flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        values = np.asarray(pending, dtype=np.int64)
        pending.clear()
        self._clamped_below += int(np.count_nonzero(values < MIN_NS))
        self._clamped_above += int(np.count_nonzero(values > MAX_NS))
        np.clip(values, MIN_NS, MAX_NS, out=values)
        index = _LAYOUT.index_of(values)
        low = int(index.min())
        # counts of each index in [low, max], added as a slice: what np.add.at(counts, index, 1)
        # adds, about ten times cheaper (a flush of 1,024 values: 155 -> 14 µs)
        added = np.bincount(index - low)
        self._counts[low : low + len(added)] += added.astype(np.uint64)
        hdr = self._hdr
        hdr.total_count += len(values)
        hdr.min_value = min(hdr.min_value, int(values.min()))
        hdr.max_value = max(hdr.max_value, int(values.max()))

    def _nonzero(self) -> tuple[IntArray, npt.NDArray[np.uint64]]:
        self._flush()
        index = np.flatnonzero(self._counts).astype(np.int64)
        return index, self._counts[index]

    def merge(self, other: LatencyHistogram) -> None:
        """Add every sample of ``other`` into this histogram (exact, bucket by bucket).

        Args:
            other: another histogram; it is not modified (it may be this histogram itself).
        """
        self._flush()
        other._flush()
        self._counts += other._counts
        self._clamped_below += other._clamped_below
        self._clamped_above += other._clamped_above
        hdr, ohdr = self._hdr, other._hdr
        if ohdr.total_count:
            hdr.total_count += ohdr.total_count
            hdr.min_value = min(hdr.min_value, ohdr.min_value)
            hdr.max_value = max(hdr.max_value, ohdr.max_value)

    def record_many_ns(self, values_ns: Sequence[int]) -> None:
        """Record several latencies at once (nanoseconds), as :meth:`record_ns` each would."""
        self._pending.extend(values_ns)
        if len(self._pending) >= FLUSH_AT:
            self._flush()

    def reset(self) -> None:
        """Forget every sample, keeping the counters' memory for reuse.

        A histogram reused this way costs no new allocation: creating and freeing many
        264 KiB histograms (one per second, say) fragments the C heap and makes the process's
        RSS grow although nothing leaks, which would spoil the memory slope of a long run.
        """
        self._pending.clear()
        self._counts[:] = 0
        hdr = self._hdr
        hdr.total_count = 0
        hdr.min_value = sys.maxsize
        hdr.max_value = 0
        self._clamped_below = 0
        self._clamped_above = 0

    def copy(self) -> LatencyHistogram:
        """Return an independent histogram with the same samples."""
        clone = LatencyHistogram()
        clone.merge(self)
        return clone

    def __eq__(self, other: object) -> bool:
        """Equal when both hold the same count in every bucket and the same clamped counts."""
        if not isinstance(other, LatencyHistogram):
            return NotImplemented
        self._flush()
        other._flush()
        return (
            self._clamped_below == other._clamped_below
            and self._clamped_above == other._clamped_above
            and bool(np.array_equal(self._counts, other._counts))
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        """Short description: the sample count, and p50/p99/max in nanoseconds when not empty."""
        if not self.count:
            return "LatencyHistogram(count=0)"
        return (
            f"LatencyHistogram(count={self.count}, p50_ns={self.percentile_ns(50)}, "
            f"p99_ns={self.percentile_ns(99)}, max_ns={self.max_ns})"
        )

    @property
    def count(self) -> int:
        """Number of recorded samples (clamped ones included)."""
        return int(self._hdr.total_count) + len(self._pending)

    @property
    def clamped_below_count(self) -> int:
        """Samples below 1 µs (zero and negative included) recorded as 1 µs."""
        self._flush()
        return self._clamped_below

    @property
    def clamped_above_count(self) -> int:
        """Samples above 1 h recorded as 1 h."""
        self._flush()
        return self._clamped_above

    @property
    def clamped_count(self) -> int:
        """Samples outside [1 µs, 1 h] that were clamped into it."""
        return self.clamped_below_count + self.clamped_above_count

    def _require_samples(self) -> tuple[IntArray, npt.NDArray[np.uint64]]:
        index, counts = self._nonzero()
        if not len(index):
            raise ValueError("the histogram is empty")
        return index, counts

    @property
    def min_ns(self) -> int:
        """Smallest recorded value, as the lowest value of its bucket (ns).

        Raises:
            ValueError: if the histogram is empty.
        """
        index, _ = self._require_samples()
        return int(_LAYOUT.lowest_ns[index[0]])

    @property
    def max_ns(self) -> int:
        """Largest recorded value, as the highest value of its bucket (ns); equals percentile 100.

        Raises:
            ValueError: if the histogram is empty.
        """
        index, _ = self._require_samples()
        return int(_LAYOUT.highest_ns[index[-1]])

    @property
    def mean_ns(self) -> float:
        """Mean of the samples, each taken at the middle of its bucket (HdrHistogram's rule), ns.

        Raises:
            ValueError: if the histogram is empty.
        """
        index, counts = self._require_samples()
        weights = counts.astype(np.float64)
        return float(weights @ _LAYOUT.median_ns[index].astype(np.float64) / weights.sum())

    def percentile_ns(self, q: float) -> int:
        """Value at percentile ``q`` (rank rule in the module docstring), in nanoseconds.

        Args:
            q: percentile in [0, 100] (99.9 for p99.9).

        Returns:
            the highest value of the bucket holding the sample of rank
            ``max(1, int(q * count / 100 + 0.5))``; within 0.1 % above that sample.

        Raises:
            ValueError: if ``q`` is outside [0, 100], is a fraction in (0, 1) (``0.99`` for
                p99: write ``99``), or the histogram is empty.
        """
        _check_percentile(q)
        index, counts = self._require_samples()
        return int(percentile_ns_from_counts(index, counts, q))

    def count_above_ns(self, threshold_ns: int) -> int:
        """Number of samples whose bucket lies wholly above ``threshold_ns``.

        Samples within 0.1 % of the threshold share its bucket and are not counted.

        Args:
            threshold_ns: the threshold in nanoseconds.

        Returns:
            the count of samples in buckets whose lowest value is greater than ``threshold_ns``.
        """
        index, counts = self._nonzero()
        return int(counts[_LAYOUT.lowest_ns[index] > threshold_ns].sum())

    def summary(self) -> dict[str, SummaryEntry]:
        """The standard figures: p50, p90, p95, p99, p999, max and mean, each with its count.

        Each percentile carries ``insufficient`` (see :func:`is_insufficient`: fewer than 10 samples
        above it); max and mean are insufficient only when the histogram is empty, in which case
        every ``value_ns`` is None.

        Returns:
            dict keyed ``p50``, ``p90``, ``p95``, ``p99``, ``p999``, ``max``, ``mean`` (in order).
        """
        index, counts = self._nonzero()
        n = int(counts.sum())
        result: dict[str, SummaryEntry] = {}
        for name, q in [*SUMMARY_PERCENTILES.items(), ("max", 100.0)]:
            value = int(percentile_ns_from_counts(index, counts, q)) if n else None
            result[name] = SummaryEntry(
                value_ns=value, percentile=q, count=n, insufficient=is_insufficient(q, n)
            )
        result["mean"] = SummaryEntry(
            value_ns=self.mean_ns if n else None, percentile=None, count=n, insufficient=n == 0
        )
        return result

    def percentile_spectrum(self, ticks_per_half_distance: int = 5) -> list[tuple[float, int]]:
        """Percentile curve for plots, denser towards the tail (HdrHistogram's percentile output).

        Percentiles ``100 * (1 - 2 ** (-k / ticks_per_half_distance))`` for k = 0, 1, ... while at
        least one sample lies above, then 100.

        Args:
            ticks_per_half_distance: points per halving of the distance to 100 %.

        Returns:
            list of ``(percentile, value_ns)``, percentiles ascending; empty for an empty histogram.

        Raises:
            ValueError: if ``ticks_per_half_distance`` < 1.
        """
        if ticks_per_half_distance < 1:
            raise ValueError("ticks_per_half_distance must be >= 1")
        index, counts = self._nonzero()
        n = int(counts.sum())
        if not n:
            return []
        percentiles: list[float] = []
        k = 0
        while n * 2.0 ** (-k / ticks_per_half_distance) >= 1.0:
            percentiles.append(100.0 * (1.0 - 2.0 ** (-k / ticks_per_half_distance)))
            k += 1
        percentiles.append(100.0)
        # Dense ticks put points below p1 (p0.69 ...): read them without the fraction check.
        return [(q, int(_percentile_of_counts(index, counts, q))) for q in percentiles]

    def encode(self) -> str:
        """Serialize to HdrHistogram's own compressed, base64 V2 encoding (``HISTF...``).

        The clamped counts are not part of the encoding: store them beside it if needed and pass
        them to :meth:`decode`.

        Returns:
            an ASCII string, typically well under 1 KB for a latency distribution.
        """
        self._flush()
        encoded: bytes = self._hdr.encode()
        return encoded.decode("ascii")

    @classmethod
    def decode(
        cls, encoded: str, *, clamped_below: int = 0, clamped_above: int = 0
    ) -> LatencyHistogram:
        """Rebuild a histogram from :meth:`encode` output.

        Args:
            encoded: the base64 string produced by :meth:`encode`.
            clamped_below: the ``clamped_below_count`` stored beside it, if any.
            clamped_above: the ``clamped_above_count`` stored beside it, if any.

        Returns:
            a histogram equal to the encoded one.

        Raises:
            ValueError: if the string is not an HdrHistogram encoding, or one with another range or
                precision than LatencyHistogram's.
        """
        try:
            hdr = HdrHistogram.decode(encoded.encode("ascii"))
        except (
            binascii.Error,
            zlib.error,
            HdrCookieException,
            HdrLengthException,
            TypeError,
            UnicodeEncodeError,
            ValueError,
        ) as exc:
            reason = str(exc) or type(exc).__name__  # some hdrh errors carry no message
            raise ValueError(f"not a valid encoded histogram: {reason}") from exc
        layout = (hdr.lowest_trackable_value, hdr.highest_trackable_value, hdr.significant_figures)
        expected = (LOWEST_DISCERNIBLE_NS, MAX_NS, SIGNIFICANT_FIGURES)
        if layout != expected:
            raise ValueError(
                "encoded histogram has (lowest, highest, significant figures) "
                f"{layout}, expected {expected}"
            )
        histogram = cls.__new__(cls)
        histogram._hdr = hdr
        histogram._attach_counts()
        histogram._pending = []
        histogram._clamped_below = clamped_below
        histogram._clamped_above = clamped_above
        return histogram
