"""Trace replay (issue 17): each arrival is sent at its trace time on the absolute schedule,
within the send lag the run reports, with the trace line's lengths."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harborbench.engine.clock import Clock
from harborbench.engine.drivers import drive_open_loop
from harborbench.engine.prompts import CHARS_PER_TOKEN, RequestFactory
from harborbench.engine.recorder import Recorder
from harborbench.engine.request import RequestSender
from harborbench.engine.schedule import arrival_offsets_ns, trace_plan
from harborbench.engine.trace import load_trace, replay_figures
from harborbench.profile import RequestSpec

ROWS = [
    {"timestamp": t, "input_length": 10 + i, "output_length": 1 + i}
    for i, t in enumerate([0, 0, 3, 40, 41, 120, 200, 205, 330, 331, 332, 480])
]


def fake_reply() -> Any:
    usage = SimpleNamespace(prompt_tokens=1, completion_tokens=1)
    return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content="ok"))],
                           usage=usage)  # fmt: skip


async def test_a_trace_is_replayed_at_its_timestamps_within_the_reported_send_lag(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    trace = load_trace(path).scaled(0.5, limit=None)  # twice as fast: the last at 240 ms
    plan = trace_plan(warmup_s=0.0, window_s=0.5, offsets_ns=trace.offsets_ns)
    assert list(arrival_offsets_ns(plan)) == [round(r["timestamp"] * 0.5e6) for r in ROWS]

    clock = time.perf_counter_ns
    start = clock()
    rec = Recorder(start, 0.0, 0.5, open_loop=True)
    calls: list[tuple[int, dict[str, Any]]] = []

    async def create(**params: Any) -> Any:
        calls.append((clock(), params))
        await asyncio.sleep(0.01)
        return fake_reply()

    factory = RequestFactory(RequestSpec(), seed=0, trace=trace)
    sender = RequestSender(create, factory.next_params, rec, clock, stream=False)
    pending: set[asyncio.Task[None]] = set()
    await drive_open_loop(
        plan, sender.send, start, Clock(clock), pending, window_end_ns=rec.window_end_ns,
        max_outstanding=100, on_dropped=rec.arrivals_dropped, on_late=rec.arrivals_late,
    )  # fmt: skip
    await asyncio.gather(*pending)

    figures = replay_figures(str(path), len(ROWS), trace, 0.5, plan, rec.sends)
    assert figures.planned_in_window == figures.sent_in_window == len(ROWS)
    lag_max_ns = round(figures.send_lag.max_s * 1e9) if figures.send_lag.max_s else 0
    for i, (called_ns, params) in enumerate(calls):
        trace_time_ns = start + round(ROWS[i]["timestamp"] * 0.5e6)
        # never before its trace time, never later than the largest lag the run reports
        # (HDR histogram: values within 0.1%)
        assert trace_time_ns <= called_ns <= trace_time_ns + lag_max_ns * 1.001 + 1
        content = params["messages"][0]["content"]
        assert len(content) == ROWS[i]["input_length"] * CHARS_PER_TOKEN
        assert params["max_tokens"] == ROWS[i]["output_length"]
    assert figures.trace_span_s == 0.24
    assert figures.achieved_span_s is not None
    assert abs(figures.achieved_span_s - 0.24) <= figures.send_lag.max_s * 1.001  # type: ignore[operator]


def test_trace_plan_steps_carry_the_mean_arrival_rate() -> None:
    offsets = load_offsets([0, 100, 200, 1500, 1600, 1700, 1800])
    plan = trace_plan(warmup_s=1.0, window_s=1.0, offsets_ns=offsets)
    assert [s.rate_ops for s in plan.steps] == [3.0, 4.0]
    assert plan.total_s == 2.0
    short = trace_plan(warmup_s=0.0, window_s=1.6, offsets_ns=offsets)
    assert list(arrival_offsets_ns(short)) == [o * 1_000_000 for o in (0, 100, 200, 1500)]


def load_offsets(ms: list[int]) -> Any:
    import numpy as np

    return np.array([m * 1_000_000 for m in ms], dtype=np.int64)
