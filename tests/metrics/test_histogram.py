"""LatencyHistogram: exact against HdrHistogram, and against sorted data within its precision."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from harborbench.metrics.histogram import (
    _LAYOUT,
    FLUSH_AT,
    LOWEST_DISCERNIBLE_NS,
    MAX_NS,
    MIN_NS,
    SIGNIFICANT_FIGURES,
    LatencyHistogram,
    counts_matrix,
    is_insufficient,
    min_samples_for,
    percentile_ns_from_counts,
)

RELATIVE_ERROR = 1 / 1024  # the documented precision: |reported - sample| / sample < 1/1024


def _hist(values: np.ndarray | list[int]) -> LatencyHistogram:
    h = LatencyHistogram()
    for v in values:
        h.record_ns(int(v))
    return h


def _lognormal_ns(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(13.0, 1.5, n), MIN_NS, MAX_NS).astype(np.int64)


def _reference_rank_value(sorted_values: np.ndarray, q: float) -> int:
    """The sample HdrHistogram's rank rule points at: rank max(1, int(q*n/100 + 0.5)), 1-based."""
    rank = max(1, int(q * len(sorted_values) / 100 + 0.5))
    return int(sorted_values[rank - 1])


def test_bucket_index_matches_hdrhistogram_at_every_boundary() -> None:
    ref = HdrHistogram(LOWEST_DISCERNIBLE_NS, MAX_NS, SIGNIFICANT_FIGURES)
    powers = [1 << k for k in range(10, 42)]
    edges = sorted({p + d for p in powers for d in (-2, -1, 0, 1, 2)} | {MIN_NS, MAX_NS})
    values = np.array([v for v in edges if MIN_NS <= v <= MAX_NS], dtype=np.int64)
    values = np.concatenate([values, _lognormal_ns(3, 2000)])
    got = _LAYOUT.index_of(values)
    expected = [ref._counts_index_for(int(v)) for v in values]
    assert got.tolist() == expected


def test_bucket_value_tables_match_hdrhistogram() -> None:
    ref = HdrHistogram(LOWEST_DISCERNIBLE_NS, MAX_NS, SIGNIFICANT_FIGURES)
    assert _LAYOUT.counts_len == ref.counts_len == 33_792
    for index in range(0, ref.counts_len, 7):
        low = ref.get_value_from_index(index)
        assert _LAYOUT.lowest_ns[index] == ref.get_lowest_equivalent_value(low)
        assert _LAYOUT.highest_ns[index] == ref.get_highest_equivalent_value(low)
        assert _LAYOUT.median_ns[index] == ref._hdr_median_equiv_value(low)


def test_bucket_width_is_within_stated_precision_over_the_range() -> None:
    index = _LAYOUT.index_of(np.array([MIN_NS, MAX_NS], dtype=np.int64))
    low = _LAYOUT.lowest_ns[index[0] : index[1] + 1]
    high = _LAYOUT.highest_ns[index[0] : index[1] + 1]
    # any sample in a bucket is reported as the bucket's lowest or highest value
    assert np.all((high - low) / low < RELATIVE_ERROR)


@pytest.mark.parametrize("q", [0.0, 1.0, 25.0, 50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0])
def test_percentiles_of_known_data_within_precision(q: float) -> None:
    values = np.arange(1, 10_001, dtype=np.int64) * 1_000  # 1 µs .. 10 ms in 1 µs steps
    h = _hist(values)
    ref = HdrHistogram(LOWEST_DISCERNIBLE_NS, MAX_NS, SIGNIFICANT_FIGURES)
    for v in values:
        ref.record_value(int(v))
    got = h.percentile_ns(q)
    assert got == ref.get_value_at_percentile(q)
    true = _reference_rank_value(values, q)
    if q == 0:
        assert true * (1 - RELATIVE_ERROR) <= got <= true
    else:
        assert true <= got <= true * (1 + RELATIVE_ERROR)


def test_summary_of_known_data() -> None:
    values = np.arange(1, 10_001, dtype=np.int64) * 1_000
    s = _hist(values).summary()
    assert list(s) == ["p50", "p90", "p95", "p99", "p999", "max", "mean"]
    for name, true in [
        ("p50", 5_000_000),
        ("p90", 9_000_000),
        ("p95", 9_500_000),
        ("p99", 9_900_000),
        ("p999", 9_990_000),
        ("max", 10_000_000),
    ]:
        value = s[name]["value_ns"]
        assert value is not None
        assert true <= value <= true * (1 + RELATIVE_ERROR), name
        assert s[name]["count"] == 10_000
        assert s[name]["insufficient"] is False
    mean = s["mean"]["value_ns"]
    assert mean is not None
    assert abs(mean - 5_000_500) <= 5_000_500 * RELATIVE_ERROR
    assert s["mean"]["percentile"] is None
    assert s["p999"]["percentile"] == 99.9


def test_min_max_mean_and_count() -> None:
    values = _lognormal_ns(5, 5000)
    h = _hist(values)
    assert h.count == 5000
    assert values.min() * (1 - RELATIVE_ERROR) <= h.min_ns <= values.min()
    assert values.max() <= h.max_ns <= values.max() * (1 + RELATIVE_ERROR)
    assert h.max_ns == h.percentile_ns(100)
    assert abs(h.mean_ns - values.mean()) <= values.mean() * RELATIVE_ERROR


def test_count_includes_values_not_yet_binned() -> None:
    h = LatencyHistogram()
    for _ in range(FLUSH_AT - 1):
        h.record_ns(5_000)
    assert h.count == FLUSH_AT - 1
    h.record_ns(7_000)
    h.record_ns(9_000)
    assert h.count == FLUSH_AT + 1
    assert h.max_ns == 9_007  # 9000 lies in [8192, 16384): buckets 8 ns wide, 9000..9007
    assert h.min_ns == 5_000  # [4096, 8192): buckets 4 ns wide, 5000..5003


def test_merge_equals_histogram_of_pooled_data_exactly() -> None:
    parts = [_lognormal_ns(seed, n) for seed, n in [(1, 3000), (2, 1), (3, 7000), (4, 1500)]]
    parts.append(np.array([10, MAX_NS + 5], dtype=np.int64))  # clamped values merge too
    merged = LatencyHistogram()
    for part in parts:
        merged.merge(_hist(part))
    pooled = _hist(np.concatenate(parts))
    assert merged == pooled
    assert merged.count == pooled.count == 11_503
    assert merged.clamped_below_count == 1
    assert merged.clamped_above_count == 1
    for q in [0.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0]:
        assert merged.percentile_ns(q) == pooled.percentile_ns(q)
    assert merged.min_ns == pooled.min_ns
    assert merged.max_ns == pooled.max_ns
    assert merged.mean_ns == pooled.mean_ns
    assert merged.summary() == pooled.summary()
    assert merged.encode() == pooled.encode()


def test_merge_with_itself_doubles_and_copy_is_independent() -> None:
    h = _hist([1_000, 2_000, 3_000])
    c = h.copy()
    h.merge(h)
    assert h.count == 6
    assert c.count == 3
    assert c == _hist([1_000, 2_000, 3_000])
    assert h != c


def test_encode_decode_round_trip() -> None:
    h = _hist(np.concatenate([_lognormal_ns(7, 20_000), [0, -3, MAX_NS * 2]]))
    encoded = h.encode()
    assert isinstance(encoded, str)
    assert encoded.startswith("HISTF")
    assert len(encoded) < 20_000
    d = LatencyHistogram.decode(
        encoded, clamped_below=h.clamped_below_count, clamped_above=h.clamped_above_count
    )
    assert d == h
    assert d.summary() == h.summary()
    assert d.encode() == encoded
    d.record_ns(5_000)  # a decoded histogram keeps recording and merging
    d.merge(h)
    assert d.count == 2 * h.count + 1


def test_encode_decode_empty() -> None:
    d = LatencyHistogram.decode(LatencyHistogram().encode())
    assert d.count == 0
    assert d == LatencyHistogram()


def test_decode_rejects_other_layouts_and_garbage() -> None:
    other = HdrHistogram(1_000, MAX_NS, 2)
    other.record_value(5_000)
    with pytest.raises(ValueError, match="expected"):
        LatencyHistogram.decode(other.encode().decode("ascii"))
    for junk in ["", "abc", "HISTFAAAAB14nJNpmSzM", "é"]:
        with pytest.raises(ValueError, match="not a valid encoded histogram"):
            LatencyHistogram.decode(junk)


def test_clamping_is_counted() -> None:
    h = _hist([0, -5, 999, 1_000, MAX_NS, MAX_NS + 1])
    assert h.clamped_below_count == 3
    assert h.clamped_above_count == 1
    assert h.clamped_count == 4
    assert h.count == 6
    assert h.min_ns == MIN_NS
    assert h.percentile_ns(50) == MIN_NS  # rank 3 of 6 is a clamped value at 1 µs
    assert MAX_NS <= h.max_ns <= MAX_NS * (1 + RELATIVE_ERROR)


@pytest.mark.parametrize(
    ("q", "needed"), [(50.0, 20), (90.0, 100), (95.0, 200), (99.0, 1000), (99.9, 10_000)]
)
def test_insufficient_rule_boundaries(q: float, needed: int) -> None:
    assert min_samples_for(q) == needed
    assert is_insufficient(q, needed - 1) is True
    assert is_insufficient(q, needed) is False


def test_insufficient_flags_in_summary() -> None:
    s = _hist(np.arange(1, 101) * 10_000).summary()
    flags = {name: entry["insufficient"] for name, entry in s.items()}
    assert flags == {
        "p50": False,
        "p90": False,
        "p95": True,
        "p99": True,
        "p999": True,
        "max": False,
        "mean": False,
    }
    assert is_insufficient(100.0, 1) is False
    assert is_insufficient(100.0, 0) is True


def test_empty_histogram() -> None:
    h = LatencyHistogram()
    assert h.count == 0
    with pytest.raises(ValueError, match="empty"):
        h.percentile_ns(50)
    with pytest.raises(ValueError, match="empty"):
        _ = h.min_ns
    with pytest.raises(ValueError, match="empty"):
        _ = h.max_ns
    with pytest.raises(ValueError, match="empty"):
        _ = h.mean_ns
    s = h.summary()
    assert all(e["value_ns"] is None and e["insufficient"] and e["count"] == 0 for e in s.values())
    assert h.percentile_spectrum() == []
    assert h.count_above_ns(0) == 0
    assert repr(h) == "LatencyHistogram(count=0)"


@pytest.mark.parametrize("q", [-0.1, 100.1, float("nan")])
def test_percentile_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        _hist([1_000]).percentile_ns(q)


def test_count_above() -> None:
    h = _hist([1_000_000] * 5 + [200_000_000] * 3 + [50_000_000])
    assert h.count_above_ns(100_000_000) == 3
    assert h.count_above_ns(10_000_000) == 4
    assert h.count_above_ns(0) == 9
    assert h.count_above_ns(300_000_000) == 0


def test_percentile_spectrum_is_monotone_and_ends_at_max() -> None:
    h = _hist(_lognormal_ns(9, 4096))
    spectrum = h.percentile_spectrum(ticks_per_half_distance=4)
    qs = [q for q, _ in spectrum]
    values = [v for _, v in spectrum]
    assert qs[0] == 0.0
    assert spectrum[-1] == (100.0, h.max_ns)
    assert qs == sorted(qs)
    assert values == sorted(values)
    assert len(spectrum) == 4 * 12 + 1 + 1  # k = 0..48 (4096 * 2**-12 == 1) then 100
    assert all(v == h.percentile_ns(q) for q, v in spectrum)
    with pytest.raises(ValueError):
        h.percentile_spectrum(0)


def test_percentile_of_count_rows_equals_percentile_of_merges() -> None:
    hists = [_hist(_lognormal_ns(seed, 500 + seed)) for seed in range(5)]
    index, matrix = counts_matrix(hists)
    assert matrix.shape == (5, len(index))
    for q in [0.0, 50.0, 99.0, 100.0]:
        per_row = percentile_ns_from_counts(index, matrix, q)
        assert per_row.tolist() == [h.percentile_ns(q) for h in hists]
        weights = np.array([[2.0, 0.0, 1.0, 0.0, 1.0]])
        merged = hists[0].copy()
        merged.merge(hists[0])
        merged.merge(hists[2])
        merged.merge(hists[4])
        assert percentile_ns_from_counts(index, weights @ matrix, q).tolist() == [
            merged.percentile_ns(q)
        ]
    with pytest.raises(ValueError, match="empty"):
        percentile_ns_from_counts(index, np.zeros((1, len(index))), 50.0)
    empty_index, empty = counts_matrix([])
    assert empty_index.shape == (0,)
    assert empty.shape == (0, 0)


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99, 0.999])
def test_percentile_apis_refuse_a_fraction(q: float) -> None:
    """percentile_ns(0.99) would silently be p0.99; the scale is 0-100."""
    from harborbench.metrics.histogram import percentile_ns_from_counts

    h = LatencyHistogram()
    h.record_many_ns([1_000_000, 2_000_000])
    with pytest.raises(ValueError, match="0-100 scale"):
        h.percentile_ns(q)
    index, counts = h._nonzero()
    with pytest.raises(ValueError, match="0-100 scale"):
        percentile_ns_from_counts(index, counts, q)


def test_percentile_edges_next_to_the_fraction_range_are_accepted() -> None:
    h = LatencyHistogram()
    h.record_many_ns(list(range(1_000_000, 101_000_000, 1_000_000)))  # 1..100 ms
    assert h.percentile_ns(0) <= 1_000_000 <= h.percentile_ns(1)
    assert h.percentile_spectrum(100)[1][0] < 1  # dense plot ticks below p1 still work


def test_the_appender_records_as_record_ns_does() -> None:
    appended, recorded = LatencyHistogram(), LatencyHistogram()
    add = appended.appender()
    values = [0, 500, 1_500, 2_000_000, 5 * 3_600_000_000_000]
    for v in values:
        add(v)
        recorded.record_ns(v)
    assert appended.count == len(values)  # read before any flush: the buffer is counted
    assert appended == recorded
    assert (appended.clamped_below_count, appended.clamped_above_count) == (2, 1)
    appended.flush()
    assert appended == recorded and appended.percentile_ns(50) == recorded.percentile_ns(50)


# --- shown_above: a few samples that still decide a latency gate --------------------------------


@pytest.mark.parametrize(
    ("q", "count", "above", "shown"),
    [
        (95.0, 10, 10, True),  # 0.05^10
        (95.0, 10, 3, True),  # P(X >= 3) = 1.15%
        (95.0, 10, 2, False),  # P(X >= 2) = 8.6%
        (95.0, 10, 0, False),
        (95.0, 0, 0, False),
        (95.0, 1, 1, False),  # P(X >= 1) = 5%: not below 5%
        (99.0, 100, 4, True),  # P(X >= 4) = 1.8%
        (99.0, 100, 3, False),  # P(X >= 3) = 7.9%
        (50.0, 5, 5, True),  # 0.5^5 = 3.1%
        (50.0, 4, 4, False),  # 0.5^4 = 6.25%
    ],
)
def test_shown_above_is_the_exact_binomial_test(
    q: float, count: int, above: int, shown: bool
) -> None:
    from harborbench.metrics.histogram import shown_above

    assert shown_above(q, count, above) is shown


def test_shown_above_needs_the_tail_strictly_below_alpha(monkeypatch: pytest.MonkeyPatch) -> None:
    from scipy.stats import binom

    from harborbench.metrics import histogram

    tail = float(binom.sf(2, 10, 1.0 - 95.0 / 100.0))  # P(X >= 3) for 10 samples at p95
    monkeypatch.setattr(histogram, "SHOWN_ABOVE_ALPHA", tail)
    assert histogram.shown_above(95.0, 10, 3) is False
    monkeypatch.setattr(histogram, "SHOWN_ABOVE_ALPHA", math.nextafter(tail, 1.0))
    assert histogram.shown_above(95.0, 10, 3) is True
