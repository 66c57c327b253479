"""Cost of recording latencies: LatencyHistogram against a list + numpy.percentile.

Run: ``.venv/bin/python benchmarks/histogram.py [N]`` (N values, default 1,000,000).

Prints, side by side, the cost per recorded value (best of 5 rounds, ns), the cost of reading
p50/p90/p95/p99/p99.9 at the end, and the memory held. Figures depend on the machine; the
docstring of LatencyHistogram quotes a run on the development machine.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np
from hdrh.histogram import HdrHistogram

from harborbench.metrics.histogram import (
    LOWEST_DISCERNIBLE_NS,
    MAX_NS,
    SIGNIFICANT_FIGURES,
    LatencyHistogram,
)

ROUNDS = 5
PERCENTILES = [50.0, 90.0, 95.0, 99.0, 99.9]


def _best_ns_per_value(record: Callable[[list[int]], object], values: list[int]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter_ns()
        record(values)
        best = min(best, (time.perf_counter_ns() - start) / len(values))
    return best


def _record_latency_histogram(values: list[int]) -> LatencyHistogram:
    h = LatencyHistogram()
    record_ns = h.record_ns
    for v in values:
        record_ns(v)
    _ = h.count  # bins the last pending values
    return h


def _record_hdrh(values: list[int]) -> HdrHistogram:
    h = HdrHistogram(LOWEST_DISCERNIBLE_NS, MAX_NS, SIGNIFICANT_FIGURES)
    record_value = h.record_value
    for v in values:
        record_value(v)
    return h


def _record_list(values: list[int]) -> list[int]:
    out: list[int] = []
    append = out.append
    for v in values:
        append(v)
    return out


def _time_ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1e6


def main() -> None:
    """Print the comparison table."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = np.random.default_rng(0)
    values = [int(v) for v in np.clip(rng.lognormal(14.0, 1.0, n), 1_000, MAX_NS)]

    hist_ns = _best_ns_per_value(_record_latency_histogram, values)
    hdrh_ns = _best_ns_per_value(_record_hdrh, values)
    list_ns = _best_ns_per_value(_record_list, values)

    hist = _record_latency_histogram(values)
    raw = _record_list(values)
    hist_query_ms = _time_ms(hist.summary)
    list_query_ms = _time_ms(lambda: np.percentile(np.asarray(raw, dtype=np.int64), PERCENTILES))
    list_bytes = sys.getsizeof(raw) + sum(sys.getsizeof(v) for v in raw[:1000]) * n // 1000

    print(f"{n:,} values, best of {ROUNDS} rounds, Python {sys.version.split()[0]}")
    print(f"{'':34}{'record ns/value':>16}{'5 percentiles ms':>18}{'memory KiB':>12}")
    print(f"{'LatencyHistogram.record_ns':34}{hist_ns:16.0f}{hist_query_ms:18.2f}{264:12,}")
    print(f"{'hdrh HdrHistogram.record_value':34}{hdrh_ns:16.0f}{'':>18}{264:12,}")
    print(
        f"{'list.append + numpy.percentile':34}{list_ns:16.0f}{list_query_ms:18.2f}"
        f"{list_bytes // 1024:12,}"
    )
    check = np.percentile(np.asarray(raw, dtype=np.int64), 99, method="inverted_cdf")
    print(f"p99: histogram {hist.percentile_ns(99):,} ns, exact {int(check):,} ns")


if __name__ == "__main__":
    main()
