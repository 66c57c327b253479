"""The trace-replay line of the summary says what was planned and what was sent."""

from __future__ import annotations

from harborbench.report.workload import describe_replay
from harborbench.result import LatencySummary, ReplayFigures, TrialResult


def test_the_replay_line_counts_sent_arrivals_and_planned_lines_apart() -> None:
    lag = LatencySummary.model_construct(p50_s=0.001, p99_s=0.002, max_s=0.003)
    replay = ReplayFigures.model_construct(
        trace="t.jsonl", trace_lines=200_000, replayed_lines=200_000, time_scale=1.0,
        planned_in_window=200, sent_in_window=200, trace_span_s=1.99, achieved_span_s=2.0,
        send_lag=lag,
    )  # fmt: skip
    line = describe_replay(TrialResult.model_construct(replay=replay))
    assert line is not None
    assert line.startswith(
        "200 of 200 trace arrivals of the window sent (200,000 of 200,000 trace lines planned); "
        "span 1.990 s in the trace, 2.000 s achieved"
    )
    assert "lines replayed" not in line  # 200 requests went out, not 200,000
    assert describe_replay(TrialResult.model_construct(replay=None)) is None
