"""A trial's figures from its parts (trial_result is pure bookkeeping): the resource samples
clipped to the window, the memory limits of the profile, the connections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harborbench.engine.assemble import trial_result
from harborbench.engine.recorder import Recorder
from harborbench.engine.request import RequestSender
from harborbench.engine.runner import plan_from_profile
from harborbench.metrics.looplag import LoopLagMonitor
from harborbench.metrics.resources import ResourceSample
from harborbench.result import TrialResult
from tests.engine.virtual import profile

MB = 1_000_000


def sample(t_s: float, rss: float = 100 * MB, cpu_s: float | None = None) -> ResourceSample:
    return ResourceSample(t_s=t_s, rss_bytes=round(rss), cpu_user_s=10 + t_s / 2 if cpu_s is None
                          else cpu_s, cpu_system_s=0.0, cpu_percent=50.0)  # fmt: skip


def result(
    samples: list[ResourceSample], window_s: float, load: Any = None, rec: Any = None,
    **extra: Any,
) -> TrialResult:  # fmt: skip
    prof = profile(load or {"concurrency": 1}, **extra)
    plan = plan_from_profile(prof)
    rec = rec or Recorder(0, plan.warmup_s, window_s, open_loop=False)
    sender = RequestSender(lambda **p: None, {}, rec, lambda: 0)
    return trial_result(
        prof, plan, rec, sender, LoopLagMonitor(), samples, [], index=2, started_at="s",
        window_s=window_s, in_flight_at_end=0, interrupted=False, status={}, statistics={},
        server_stats=None,
    )  # fmt: skip


def test_cpu_comes_from_the_samples_at_the_window_start_and_end() -> None:
    # a warmup sample, and a late tick appended after the end sample: clipped and sorted
    samples = [sample(-1.0), sample(0.0), sample(0.5), sample(2.0), sample(1.0), sample(2.5)]
    t = result(samples, 2.0)
    assert t.cpu.cpu_seconds == pytest.approx(1.0)  # 10 + 2/2 - (10 + 0/2)
    assert t.cpu.cpu_percent_mean == pytest.approx(50.0)
    assert t.memory.rss_max_bytes == 100 * MB
    assert (t.index, t.started_at) == (2, "s")
    assert t.cpu.ops_per_cpu_second == 0.0  # no success
    assert not t.cpu.saturated and not any("CPU core" in w for w in t.health.warnings)
    assert [r.t_s for r in t.timeseries] == [0.0, 1.0]  # no warmup: from 0 s
    assert result([], 2.0).memory.rss_max_bytes == 0


def test_a_busy_cpu_reaches_the_health_verdict() -> None:
    rec = Recorder(0, 0.0, 2.0, open_loop=False)
    rec.successes = 19
    samples = [sample(t, cpu_s=t * 0.95) for t in (0.0, 1.0, 2.0)]
    t = result(samples, 2.0, rec=rec)
    assert t.cpu.cpu_seconds == pytest.approx(1.9)
    assert t.cpu.ops_per_cpu_second == pytest.approx(10.0)
    assert t.cpu.saturated and t.health.generator_saturated
    assert t.health.warnings[0].startswith("the load generator used 95% of a CPU core")


def test_the_profiles_memory_limits_judge_the_trend() -> None:
    # 301 samples over 300 s, RSS rising 3 MB/min from 100 MB: 15% growth
    samples = [sample(float(t), 100 * MB + t * 3 * MB / 60) for t in range(301)]
    plain = result(samples, 300.0, duration="300s")
    assert (plain.memory.max_slope_mb_per_min, plain.memory.max_growth_pct) == (5.0, 20.0)
    m = plain.memory
    assert m.slope_mb_per_min == pytest.approx(3.0)
    assert m.slope_ci_low is not None and m.slope_ci_high is not None
    assert m.slope_ci_low <= 3.0 + 1e-9 and m.slope_ci_high >= 3.0 - 1e-9
    assert (m.trend_window_s, m.samples) == (300.0, 301)
    assert (m.rss_start_bytes, m.rss_end_bytes) == (100 * MB, 115 * MB)
    assert m.verdict == "pass"
    slope = result(samples, 300.0, duration="300s", gates={"memory_slope_max_mb_per_min": 1})
    assert slope.memory.max_slope_mb_per_min == 1.0
    assert slope.memory.verdict == "fail"
    growth = result(samples, 300.0, duration="300s", gates={"memory_growth_max_pct": 10})
    assert growth.memory.max_growth_pct == 10.0
    assert growth.memory.growth_pct == pytest.approx(15.0)
    assert growth.memory.verdict == "fail"
    assert growth.memory.rss_max_bytes == 115 * MB


def test_connections_name_the_pool_and_the_server_counters() -> None:
    prof = profile({"concurrency": 1})
    plan = plan_from_profile(prof)
    rec = Recorder(0, 0.0, 1.0, open_loop=False)
    sender = RequestSender(lambda **p: None, {}, rec, lambda: 0)
    stats = {"connection_pool": {"limit": 8, "open": 3}}
    server = {"connections_accepted": 4, "requests_total": 9, "max_in_flight": 2, "other": 1}
    t = trial_result(
        prof, plan, rec, sender, LoopLagMonitor(), [], [], index=0, started_at="s",
        window_s=1.0, in_flight_at_end=0, interrupted=False, status={"mode": "x"},
        statistics=stats, server_stats=server,
    )  # fmt: skip
    assert t.connections == {
        "client": {"limit": 8, "open": 3}, "server_connections_accepted": 4,
        "server_requests_total": 9, "server_max_in_flight": 2,
    }  # fmt: skip
    assert (t.client_status, t.client_statistics, t.server_stats) == ({"mode": "x"}, stats, server)
    assert t.health.client_limit == 8


def test_stream_goodput_and_replay_figures_of_the_profile(tmp_path: Path) -> None:
    rec = Recorder(0, 0.0, 2.0, open_loop=True)
    rec.stream.output_tokens = 30
    rec.slo_met = 5
    request = {"prompt_tokens": 4, "max_tokens": 4, "stream": True}
    t = result([], 2.0, {"rate": 1}, rec=rec, request=request, slo={"latency_max": "1s"})
    assert t.stream is not None and t.stream.output_tokens_per_s == 15.0
    assert (t.slo_met, t.goodput_ops) == (5, 2.5)
    assert t.replay is None
    plain = result([], 2.0)
    assert (plain.stream, plain.slo_met, plain.goodput_ops) == (None, None, None)
    trace = tmp_path / "t.jsonl"
    rows = [
        {"timestamp": ms, "input_length": 1, "output_length": 1}
        for ms in (0, 1000, 2000, 3000, 9000)
    ]
    trace.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    load = {"trace": str(trace), "time_scale": 0.5, "limit": 4}
    bare = {"max_tokens": 4}
    replay = result(
        [], 1.0, load, rec=Recorder(0, 0.0, 1.0, open_loop=True), duration="1s", request=bare
    ).replay
    assert replay is not None
    assert (replay.trace, replay.trace_lines, replay.replayed_lines, replay.time_scale) == (
        str(trace), 5, 4, 0.5,
    )  # fmt: skip
    assert replay.planned_in_window == 2  # 0 and 0.5 s; 1.0 s is the end
    seconds = result(
        [],
        1.0,
        {**load, "timestamp_unit": "s", "limit": None},
        rec=Recorder(0, 0.0, 1.0, open_loop=True),
        duration="1s",
        request=bare,
    ).replay
    assert seconds is not None and (seconds.replayed_lines, seconds.planned_in_window) == (5, 1)


def test_interrupted_and_sent_reach_the_health_verdict() -> None:
    prof = profile({"rate": 10})
    plan = plan_from_profile(prof)
    rec = Recorder(0, 0.0, 2.0, open_loop=True)
    rec.successes = 3
    sender = RequestSender(lambda **p: None, {}, rec, lambda: 0)

    def judged(interrupted: bool) -> TrialResult:
        return trial_result(
            prof, plan, rec, sender, LoopLagMonitor(), [], [], index=0, started_at="s",
            window_s=2.0, in_flight_at_end=1, interrupted=interrupted, status={}, statistics={},
            server_stats=None,
        )  # fmt: skip

    t = judged(False)
    assert t.health.achieved_level == 2.0  # (3 completed + 1 in flight) / 2 s
    assert any("keep up" in w for w in t.health.warnings)
    assert not any("keep up" in w for w in judged(True).health.warnings)
