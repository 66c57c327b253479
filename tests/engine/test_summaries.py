"""Merging trials: sums, merged histograms, and the worst trial's lags."""

from __future__ import annotations

from typing import Any

import pytest

from harborbench.engine.runner import arun
from harborbench.engine.summaries import merge_trials
from harborbench.profile import load_profile_dict


async def test_merged_trials_keep_the_worst_lag_and_sum_the_counts() -> None:
    data: dict[str, Any] = {
        "name": "merge",
        "target": {"mock": {"latency": "2ms"}},
        "request": {"prompt_tokens": 10, "max_tokens": 8},
        "load": {"rate": 100},
        "warmup": "0s",
        "duration": "1s",
        "repeat": 2,
    }
    result = await arun(load_profile_dict(data))
    a, b = result.trials
    stalled = b.model_copy(
        update={
            "health": b.health.model_copy(update={"loop_lag_max_s": 0.5, "send_lag_p99_s": 0.4})
        }
    )
    total = merge_trials([a, stalled])
    assert total.health.loop_lag_max_s == 0.5
    assert total.health.send_lag_p99_s == 0.4
    assert total.successes == a.successes + b.successes
    assert total.window_s == pytest.approx(a.window_s + b.window_s)
    assert total.service_time.count == a.service_time.count + b.service_time.count
    assert total.attempted_ops == pytest.approx(
        (a.attempted_ops * a.window_s + b.attempted_ops * b.window_s) / total.window_s
    )


async def test_merged_memory_counts_the_windows_only() -> None:
    data: dict[str, Any] = {
        "name": "merge-mem",
        "target": {"mock": {"latency": "2ms"}},
        "request": {"prompt_tokens": 10, "max_tokens": 8},
        "load": {"rate": 50},
        "warmup": "0s",
        "duration": "1s",
    }
    (t,) = (await arun(load_profile_dict(data))).trials
    mb = 10**6
    first = t.model_copy(
        update={"memory": t.memory.model_copy(update={"rss_start_bytes": 100 * mb,
                "rss_end_bytes": 101 * mb, "rss_max_bytes": 101 * mb, "growth_pct": 1.0})}
    )  # fmt: skip
    second = t.model_copy(
        update={"memory": t.memory.model_copy(update={"rss_start_bytes": 110 * mb,
                "rss_end_bytes": 112 * mb, "rss_max_bytes": 113 * mb, "growth_pct": 1.8})}
    )  # fmt: skip
    memory = merge_trials([first, second]).memory
    assert (memory.rss_start_bytes, memory.rss_end_bytes) == (100 * mb, 112 * mb)
    assert memory.rss_max_bytes == 113 * mb
    # inside the windows: 1 + 2 MB of the first trial's 100 MB; the 9 MB between them (this
    # process's own work, or another run's trials) is not counted
    assert memory.growth_pct == pytest.approx(3.0)
    assert "+9.0 MB between trials" in memory.reason
