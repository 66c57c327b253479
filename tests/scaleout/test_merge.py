"""Merge rules: the merge of shards is the histogram of the pooled samples, counter for counter."""

from __future__ import annotations

import numpy as np
import pytest

from harborbench.engine.schedule import build_plan
from harborbench.engine.summaries import decode
from harborbench.metrics.histogram import LatencyHistogram
from harborbench.profile import Gates
from harborbench.scaleout.merge import check_invariants, merge_rows, merge_shards
from tests.scaleout.synthetic import hist as _hist
from tests.scaleout.synthetic import row as _row
from tests.scaleout.synthetic import synthetic_shard

PLAN = build_plan(warmup_s=0, levels=[(2.0, 4)], kind="closed")


def test_merged_histogram_is_the_histogram_of_the_pooled_samples() -> None:
    rng = np.random.default_rng(5)
    shards = [
        [rng.lognormal(16 + k, 0.7, size=300).astype(np.int64).tolist() for _ in range(2)]
        for k in range(3)
    ]
    merged = merge_shards([synthetic_shard(s) for s in shards], PLAN, Gates())
    pooled = _hist([v for s in shards for second in s for v in second])
    assert decode(merged.service_time) == pooled  # counter for counter
    assert merged.service_time.p99_s == pooled.percentile_ns(99) / 1e9
    assert merged.service_time.count == 1800
    for t in (0, 1):  # per-second rows: the histogram of that second's pooled samples
        second = _hist([v for s in shards for v in s[t]])
        row = merged.timeseries[t]
        assert LatencyHistogram.decode(row.service_histogram) == second
        assert row.service_p95_s == second.percentile_ns(95) / 1e9
        assert row.successes == 900 and row.rss_bytes == 3 * (100_000_000 + t)


def test_averaging_percentiles_would_be_visibly_wrong_for_a_skewed_pair() -> None:
    fast = [[1_000_000] * 990]  # 990 requests at 1 ms
    slow = [[500_000_000] * 10]  # 10 requests at 500 ms
    merged = merge_shards([synthetic_shard(fast), synthetic_shard(slow)], PLAN, Gates())
    # 1000 samples: rank 990 is the last fast one, so p99 is ~1 ms; averaging says ~250 ms.
    assert merged.service_time.p99_s == pytest.approx(0.001, rel=1e-3)
    averaged = (0.001 + 0.5) / 2
    assert averaged > 200 * merged.service_time.p99_s


def test_counts_summed_rates_over_the_common_window() -> None:
    a, b = synthetic_shard([[2_000_000] * 10, [2_000_000] * 30]), synthetic_shard([[1] * 20] * 2)
    m = merge_shards([a, b], PLAN, Gates(), indices=[0, 3])
    assert (m.successes, m.failures, m.in_flight_at_end, m.warmup_requests) == (80, 2, 4, 6)
    assert m.window_s == 2.0 and m.throughput_ops == 40.0 and m.failures_by_kind == {"http_500": 2}
    assert m.cpu.cpu_seconds == 2.0 and m.cpu.ops_per_cpu_second == 40.0
    assert m.cpu.cpu_percent_mean == 100.0
    assert m.health.configured_level == 4.0  # the global plan's, not a sum over shards
    assert m.health.achieved_level == 4.0
    assert m.health.warnings == ["shard 0: a warning", "shard 3: a warning"]
    assert m.connections["client"] == {"connections_created": 4, "connections_reused": 10}
    assert m.client_statistics == {"x": {"retries": 2}}
    assert m.memory.rss_start_bytes == 200_000_000


def test_configured_level_is_the_global_plans_even_with_a_shard_missing() -> None:
    m = merge_shards([synthetic_shard([[5] * 4] * 2)], PLAN, Gates())
    assert m.health.configured_level == 4.0 and m.health.achieved_level == 2.0
    assert any("achieved 2.0 concurrency of the configured 4.0" in w for w in m.health.warnings)


def test_invariants_hold_for_a_merge_and_catch_a_row_that_does_not_add_up() -> None:
    shards = [synthetic_shard([[7] * 5, [9] * 6]), synthetic_shard([[8] * 3, [1] * 2])]
    merged = merge_shards(shards, PLAN, Gates())
    assert check_invariants(shards, merged, PLAN) == []
    broken = merged.model_copy(update={"timeseries": merged.timeseries[:1]})
    assert check_invariants(shards, broken, PLAN) == [
        "successes do not add up: shards 16, merged 16, per-second rows 8"
    ]


def test_server_counter_bounds() -> None:
    shards = [synthetic_shard([[7] * 5]), synthetic_shard([[8] * 3])]
    m = merge_shards(shards, PLAN, Gates())
    # client: warmup 6 + ok 8 + failed 2 = 16 completed, + 4 in flight = 20 sent
    assert check_invariants(shards, m, PLAN, server_requests_total=16) == []
    assert check_invariants(shards, m, PLAN, server_requests_total=20) == []
    low = check_invariants(shards, m, PLAN, server_requests_total=15)
    high = check_invariants(shards, m, PLAN, server_requests_total=21)
    assert low == [
        "the server counted 15 requests, outside the client's [16, 20] (completed .. sent)"
    ]
    assert len(high) == 1 and "21" in high[0]


def test_merge_rows_sums_matching_seconds_only() -> None:
    rows = merge_rows([[_row(0, [5, 6], 10), _row(1, [7], 10)], [_row(1, [8, 9, 10], 20)]])
    assert [(r.t_s, r.successes, r.rss_bytes) for r in rows] == [(0.0, 2, 10), (1.0, 4, 30)]


def test_nothing_to_merge() -> None:
    with pytest.raises(ValueError, match="no shard results"):
        merge_shards([], PLAN, Gates())


def test_open_loop_arrivals_balance_planned_sent_unsent_and_sent_late() -> None:
    plan = build_plan(warmup_s=0, levels=[(2.0, 10.0)], kind="open")  # 20 planned arrivals
    shards = [synthetic_shard([[1_000] * 4, [1_000] * 3]) for _ in range(2)]  # 7 + 1 + 2 each
    merged = merge_shards(shards, plan, Gates())
    assert check_invariants(shards, merged, plan) == []
    late = shards[0].model_copy(
        update={"health": shards[0].health.model_copy(update={"sent_late": 1})}
    )
    merged = merge_shards([late, shards[1]], plan, Gates())
    assert merged.health.sent_late == 1
    assert check_invariants([late, shards[1]], merged, plan) == [
        "open-loop arrivals do not add up: planned 20 != sent in window 20 + unsent 0 + sent late 1"
    ]
