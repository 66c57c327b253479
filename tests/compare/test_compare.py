"""compare_results on synthetic runs built from per-second throughput lists and latency samples."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from harborbench.compare import (
    Comparison,
    FailOn,
    comparability,
    compare_results,
    parse_fail_on,
    tidy_rows,
)
from harborbench.compare.bootstrap import (
    MIN_INTERVALS,
    ChangeInterval,
    change_verdict,
    mann_whitney_p,
    resample_weights,
)
from harborbench.engine.summaries import latency_summary, merge_trials
from harborbench.errors import UserInputError
from harborbench.metrics.histogram import LatencyHistogram
from harborbench.result import (
    METRIC_DEFINITIONS,
    SCHEMA_VERSION,
    CpuFigures,
    HealthFigures,
    IntervalRow,
    MemoryFigures,
    RunResult,
    TrialResult,
)

ENVIRONMENT: dict[str, Any] = {
    "harborbench": "0.1.0",
    "python": "3.11.9",
    "aiohttp": "3.9.5",
    "cpu_model": "Test CPU @ 2.0GHz",
    "cpu_count": 2,
    "hostname": "bench-1",
}
PROFILE: dict[str, Any] = {
    "name": "synthetic",
    "target": {"mock": {"latency": {"distribution": "lognormal", "median": 0.02}}},
    "request": {"model": "gpt-4o-mini", "max_tokens": 64, "stream": False},
    "load": {"concurrency": 32},
    "warmup": 2.0,
    "duration": 30.0,
    "repeat": 1,
    "seed": 1,
}
STEADY = [1000 + (15 if i % 2 else -15) for i in range(30)]  # 1000 ops/s, +-15 alternating


def _compare(a: RunResult, b: RunResult, **kwargs: Any) -> Comparison:
    """compare_results with 1000 resamples (half the default) to keep this file fast."""
    return compare_results(a, b, n_resamples=1000, **kwargs)


def _row(t_s: int, warmup: bool, ok: int, failed: int, hist: LatencyHistogram) -> IntervalRow:
    def pct(q: float) -> float | None:
        return hist.percentile_ns(q) / 1e9 if hist.count else None

    return IntervalRow(
        t_s=float(t_s), warmup=warmup, successes=ok, failures=failed, throughput_ops=float(ok),
        service_p50_s=pct(50), service_p95_s=pct(95), service_p99_s=pct(99), response_p99_s=None,
        rss_bytes=100_000_000, cpu_percent=None if warmup else 50.0,
        service_histogram=hist.encode() if hist.count else "", response_histogram="",
    )  # fmt: skip


def _ns(seconds: np.ndarray[Any, Any]) -> list[int]:
    """Seconds as whole nanoseconds, truncated as ``int(v * 1e9)`` truncates each."""
    return (seconds * 1e9).astype(np.int64).tolist()  # type: ignore[no-any-return]


def make_trial(
    index: int,
    successes: Sequence[int],
    *,
    latency_median_s: float = 0.02,
    latency_sigma: float = 0.3,
    failures: Sequence[int] | None = None,
    warmup_successes: Sequence[int] = (50_000, 50_000),
    seed: int = 0,
    growth_pct: float = 1.0,
) -> TrialResult:
    """A trial with one 1-s row per entry of ``successes`` after ``len(warmup_successes)`` warmup
    rows; each success gets a log-normal latency (seeded), so the same arguments give the same
    trial, histogram for histogram."""
    rng = np.random.default_rng(seed)
    fails = list(failures) if failures is not None else [0] * len(successes)
    rows = []
    total = LatencyHistogram()
    for i, n in enumerate(warmup_successes):  # warmup: wild figures that must not count
        h = LatencyHistogram()
        h.record_many_ns(_ns(rng.lognormal(math.log(5.0), 0.1, size=min(n, 100))))
        rows.append(_row(i - len(warmup_successes), True, n, 0, h))
    for t, (n, f) in enumerate(zip(successes, fails, strict=True)):
        h = LatencyHistogram()
        h.record_many_ns(_ns(rng.lognormal(math.log(latency_median_s), latency_sigma, size=n)))
        total.merge(h)
        rows.append(_row(t, False, n, f, h))
    window_s = float(len(successes))
    ok, failed = sum(successes), sum(fails)
    cpu_s = 0.5 * window_s
    rss_end = round(100_000_000 * (1 + growth_pct / 100))
    return TrialResult(
        index=index, started_at="2024-01-01T00:00:00+00:00", window_s=window_s,
        successes=ok, failures=failed, failures_by_kind={"http_500": failed} if failed else {},
        failure_examples={}, in_flight_at_end=0, warmup_requests=sum(warmup_successes),
        throughput_ops=ok / window_s, attempted_ops=(ok + failed) / window_s,
        failed_ops=failed / window_s, error_rate=failed / (ok + failed) if ok + failed else None,
        service_time=latency_summary(total), response_time=None, stream=None,
        cpu=CpuFigures(cpu_seconds=cpu_s, cpu_percent_mean=50.0, ops_per_cpu_second=ok / cpu_s,
                       saturated=False),
        memory=MemoryFigures(rss_start_bytes=100_000_000, rss_end_bytes=rss_end,
                             rss_max_bytes=rss_end, growth_pct=growth_pct,
                             slope_mb_per_min=None, slope_ci_low=None, slope_ci_high=None,
                             verdict="inconclusive", reason="window shorter than 5 min"),
        health=HealthFigures(loop_lag_p99_s=0.001, loop_lag_max_s=0.002, send_lag_p99_s=None,
                             send_lag_max_s=None, configured_level=32.0, achieved_level=31.0,
                             level_unit="concurrency", unsent=0, generator_saturated=False,
                             warnings=[]),
        connections={}, client_status={}, client_statistics={}, server_stats=None,
        timeseries=rows, interrupted=False,
    )  # fmt: skip


def make_run(
    name: str,
    trials: Sequence[Sequence[int]],
    *,
    environment: dict[str, Any] | None = None,
    profile: dict[str, Any] | None = None,
    seed: int = 0,
    **trial_kwargs: Any,
) -> RunResult:
    """A run of one trial per list of per-second successes (trial ``i`` seeded ``seed + i``)."""
    built = [make_trial(i, s, seed=seed + i, **trial_kwargs) for i, s in enumerate(trials)]
    return RunResult(
        schema_version=SCHEMA_VERSION, name=name, created_at="2024-01-01T00:00:00+00:00",
        harborbench_version="0.1.0", profile={**PROFILE, **(profile or {}), "name": name},
        environment={**ENVIRONMENT, **(environment or {})},
        metric_definitions=METRIC_DEFINITIONS,
        reference={"plan_baseline_ops": 505.6, "plan_target_ops": 1000.0},
        trials=built, total=merge_trials(built), gates=[], interrupted=False,
    )  # fmt: skip


def _verdicts(c: Comparison) -> dict[str, str]:
    return {r.metric: r.verdict for r in c.rows}


def test_identical_runs_show_no_significant_difference() -> None:
    a = make_run("a", [STEADY])
    b = make_run("b", [STEADY])  # same seed: the same latency samples, histogram for histogram
    c = _compare(a, b, fail_on=[parse_fail_on("throughput:-5%"), parse_fail_on("p99:+10%")])
    v = _verdicts(c)
    for metric in ("throughput", "attempted", "error_rate", "p50", "p95", "p99", "p999",
                   "cpu_efficiency"):  # fmt: skip
        assert v[metric] == "no significant difference", metric
        row = c.row(metric)
        assert row is not None and row.ci_low is not None and row.ci_high is not None
        assert row.ci_low <= (1.0 if row.ci_of == "ratio" else 0.0) <= row.ci_high
    throughput = c.row("throughput")
    assert throughput is not None
    assert throughput.a == throughput.b == 1000.0
    assert throughput.ratio == 1.0 and throughput.change_pct == 0.0
    assert throughput.ci_of == "ratio"
    assert 0.95 < throughput.ci_low < 1.0 < throughput.ci_high < 1.05  # type: ignore[operator]
    assert throughput.p_value == 1.0  # identical per-interval series
    assert c.row("error_rate").ci_of == "difference"  # type: ignore[union-attr]  # A has no errors
    assert v["max"] == "not tested"
    assert v["memory_growth"] == "inconclusive"  # one trial per run
    assert v["memory_slope"] == "inconclusive"
    assert [g.verdict for g in c.gates] == ["pass", "pass"]
    assert c.comparability.comparable
    assert c.comparability.warnings == []


def test_warmup_rows_are_excluded() -> None:
    a = make_run("a", [STEADY], warmup_successes=(10, 10))
    b = make_run("b", [STEADY], warmup_successes=(90_000, 90_000, 90_000))
    c = _compare(a, b)
    assert c.a.intervals == c.b.intervals == 30
    row = c.row("throughput")
    assert row is not None and row.verdict == "no significant difference"
    assert row.ci_low is not None and row.ci_high is not None
    assert row.ci_low < 1.0 < row.ci_high < 1.05


def test_clear_regression_is_worse_and_fails_the_gate() -> None:
    a = make_run("a", [STEADY, STEADY])
    slow = [int(x * 0.8) for x in STEADY]
    b = make_run("b", [slow, slow], latency_median_s=0.03, seed=7)
    c = _compare(a, b, fail_on=[parse_fail_on("throughput:-5%"), parse_fail_on("p95:+10%")])
    row = c.row("throughput")
    assert row is not None
    assert row.verdict == "worse"
    assert row.ratio == pytest.approx(0.8, abs=0.001)
    assert row.ci_high is not None and row.ci_high < 0.95
    assert c.row("p95").verdict == "worse"  # type: ignore[union-attr]
    assert c.row("p50").verdict == "worse"  # type: ignore[union-attr]
    assert [g.verdict for g in c.gates] == ["fail", "fail"]
    assert row.p_value is not None and row.p_value < 1e-6


def test_one_trial_a_side_never_fails_a_gate() -> None:
    """Run-to-run noise is invisible in one trial: the same data fail with 2 trials a side."""
    slow = [int(x * 0.8) for x in STEADY]
    gates = [parse_fail_on("throughput:-5%")]
    one = _compare(make_run("a", [STEADY]), make_run("b", [slow], seed=7), fail_on=gates)
    assert one.row("throughput").verdict == "worse"  # type: ignore[union-attr]
    (gate,) = one.gates
    assert gate.verdict == "inconclusive"
    assert "one trial a side" in gate.reason
    assert "--rounds 2" in gate.hint and "repeat" in gate.hint
    mixed = _compare(make_run("a", [STEADY, STEADY]), make_run("b", [slow], seed=7), fail_on=gates)
    assert mixed.gates[0].verdict == "inconclusive"
    two = _compare(
        make_run("a", [STEADY, STEADY]), make_run("b", [slow, slow], seed=7), fail_on=gates
    )
    assert two.gates[0].verdict == "fail"
    passing = _compare(make_run("a", [STEADY]), make_run("b", [STEADY], seed=7), fail_on=gates)
    assert passing.gates[0].verdict == "pass"  # one trial may pass: only a failure needs more


def test_clear_improvement_is_better() -> None:
    a = make_run("a", [STEADY], latency_median_s=0.03)
    b = make_run("b", [[int(x * 1.3) for x in STEADY]], latency_median_s=0.02, seed=3)
    v = _verdicts(_compare(a, b))
    assert v["throughput"] == v["p50"] == v["p95"] == v["p99"] == v["cpu_efficiency"] == "better"


def test_small_regression_inside_wide_noise_is_inconclusive() -> None:
    noisy = [1000 + (400 if i % 2 else -400) for i in range(30)]
    a = make_run("a", [noisy])
    b = make_run("b", [[int(x * 0.97) for x in noisy]], seed=5)
    c = _compare(a, b, fail_on=[parse_fail_on("throughput:-5%")])
    row = c.row("throughput")
    assert row is not None and row.ci_low is not None and row.ci_high is not None
    assert row.verdict == "no significant difference"
    assert row.ci_low < 0.95 < row.ci_high
    assert row.min_detectable_pct is not None and row.min_detectable_pct > 3.0
    assert c.gates[0].verdict == "inconclusive"


def test_too_few_intervals_is_inconclusive_without_an_interval() -> None:
    short = STEADY[: MIN_INTERVALS - 1]
    c = _compare(make_run("a", [short]), make_run("b", [short]))
    row = c.row("throughput")
    assert row is not None
    assert row.verdict == "inconclusive"
    assert row.ci_low is None and row.ci_high is None
    assert "too few 1-s intervals" in row.reason
    assert c.reference is not None and c.reference.target == "inconclusive"


def test_trials_widen_the_throughput_interval() -> None:
    drift = [[x + d for x in STEADY] for d in (-100, 0, 100)]  # trial-to-trial drift
    flat = [STEADY, STEADY, STEADY]
    a_drift, b_drift = make_run("a", drift), make_run("b", drift, seed=10)
    a_flat, b_flat = make_run("a", flat), make_run("b", flat, seed=10)
    wide = _compare(a_drift, b_drift).row("throughput")
    narrow = _compare(a_flat, b_flat).row("throughput")
    assert wide is not None and narrow is not None
    assert "two-stage" in wide.method and "3 trials" in wide.method
    assert wide.ci_high - wide.ci_low > 3 * (narrow.ci_high - narrow.ci_low)  # type: ignore[operator]


def test_same_seed_same_comparison() -> None:
    a, b = make_run("a", [STEADY]), make_run("b", [STEADY], seed=4)
    assert _compare(a, b, seed=1) == _compare(a, b, seed=1)


def test_errors_in_b_only_use_a_difference_interval() -> None:
    a = make_run("a", [STEADY, STEADY])
    b = make_run("b", [STEADY, STEADY], failures=[50] * 30)
    c = _compare(a, b, fail_on=[parse_fail_on("error_rate:+50%")])
    row = c.row("error_rate")
    assert row is not None
    assert row.ci_of == "difference" and row.ratio is None
    assert row.verdict == "worse"
    assert c.gates[0].verdict == "fail"


def test_reference_row_uses_the_plan_figures() -> None:
    c = _compare(make_run("a", [STEADY]), make_run("b", [[1200] * 30]))
    ref = c.reference
    assert ref is not None
    assert ref.plan_baseline_ops == 505.6 and ref.plan_target_ops == 1000.0
    assert ref.b_throughput_ops == 1200.0
    assert ref.ratio_to_plan_baseline == pytest.approx(1200.0 / 505.6)
    assert ref.target == "met"
    assert "another machine" in ref.label


def test_differing_environment_and_workload_are_listed() -> None:
    a = make_run("a", [STEADY])
    b = make_run(
        "b",
        [STEADY],
        environment={"cpu_model": "Other CPU", "hostname": "elsewhere"},
        profile={"load": {"concurrency": 64}, "duration": 60.0},
    )
    comp = comparability(a, b)
    assert not comp.comparable
    assert [(d.key, d.a, d.b) for d in comp.environment] == [
        ("cpu_model", "Test CPU @ 2.0GHz", "Other CPU"),
        ("hostname", "bench-1", "elsewhere"),
    ]
    assert [(d.key, d.a, d.b) for d in comp.workload] == [("load.concurrency", 32, 64)]
    assert [d.key for d in comp.notes] == ["duration"]
    assert len(comp.warnings) == 2


@pytest.mark.parametrize(
    ("text", "metric", "change"),
    [
        ("throughput:-5%", "throughput", -5.0),
        ("p99:+10%", "p99", 10.0),
        ("p99:10%", "p99", 10.0),
        ("throughput:5%", "throughput", -5.0),
        ("p99.9:+20%", "p999", 20.0),
        (" error_rate : +50 % ", "error_rate", 50.0),
    ],
)
def test_parse_fail_on(text: str, metric: str, change: float) -> None:
    gate = parse_fail_on(text)
    assert (gate.metric, gate.change_pct) == (metric, change)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("throughput", "expected METRIC:CHANGE%"),
        ("throughput:-5", "expected METRIC:CHANGE%"),
        ("speed:-5%", "unknown metric 'speed'"),
        ("max:+5%", "unknown metric 'max'"),
        ("throughput:+5%", "a regression is a decrease"),
        ("p99:-10%", "a regression is an increase"),
        ("throughput:-100%", "smaller than 100%"),
    ],
)
def test_parse_fail_on_refuses(text: str, message: str) -> None:
    with pytest.raises(UserInputError, match=re.escape(message)):
        parse_fail_on(text)


def test_gate_outcomes_at_the_threshold() -> None:
    a = make_run("a", [STEADY, STEADY])
    slow = [int(x * 0.8) for x in STEADY]
    b = make_run("b", [slow, slow], seed=7)
    gates = [parse_fail_on(t) for t in ("throughput:-5%", "throughput:-25%", "throughput:-20%")]
    c = _compare(a, b, fail_on=gates)
    row = c.row("throughput")
    assert row is not None and row.ci_low is not None and row.ci_high is not None
    assert row.ci_low < 0.8 < row.ci_high  # so -20% straddles, -5% is beyond, -25% is within
    assert [g.verdict for g in c.gates] == ["fail", "pass", "inconclusive"]
    assert FailOn(text="t", metric="throughput", change_pct=-5.0).threshold_ratio == 0.95


def test_change_verdict_on_a_difference_interval() -> None:
    up = ChangeInterval("difference", 0.001, 0.003, None)
    assert change_verdict(up, "lower") == "worse"
    assert change_verdict(up, "higher") == "better"
    assert change_verdict(ChangeInterval("difference", 0.0, 0.0, None), "lower") == (
        "no significant difference"
    )


def test_mann_whitney_p_undefined_cases() -> None:
    assert mann_whitney_p([1.0, 1.0], [1.0, 1.0]) is None  # all tied
    assert mann_whitney_p([1.0], [2.0, 3.0]) is None
    assert mann_whitney_p([1.0, 2.0, 3.0], [10.0, 11.0, 12.0]) == pytest.approx(0.1)


@pytest.mark.parametrize("block_s", [1.0, 2.5])
def test_resample_weights_two_stage(block_s: float) -> None:
    rng = np.random.default_rng(0)
    w = resample_weights([3, 5], 200, rng, block_s=block_s)
    assert w.matrix.shape == (200, 8)
    assert set(np.unique(w.matrix.sum(axis=1)).tolist()) == {6.0, 8.0, 10.0}  # 2x3, 3+5, 2x5
    assert w.units == 2.0 and "two-stage" in w.method
    one = resample_weights([4], 50, np.random.default_rng(0), block_s=block_s)
    assert np.all(one.matrix.sum(axis=1) == 4.0)
    assert one.units == 4 / block_s


def test_tidy_rows_have_one_header_and_the_reference() -> None:
    c = _compare(make_run("a", [STEADY]), make_run("b", [STEADY]))
    rows = tidy_rows(c)
    assert len({tuple(r) for r in rows}) == 1  # every row has the same columns
    assert rows[-1]["metric"] == "throughput_vs_plan_baseline"
    assert [r["metric"] for r in rows[:3]] == ["throughput", "attempted", "error_rate"]


def test_the_headline_says_plainly_when_b_is_not_faster() -> None:
    from harborbench.report.compare_table import headline

    same = _compare(make_run("a", [STEADY]), make_run("b", [STEADY]))
    line = headline(same)
    assert line.startswith("b against a: throughput: no significant difference (x1, 95% CI")
    slower = _compare(
        make_run("a", [STEADY]),
        make_run("b", [[int(x * 0.8) for x in STEADY]], latency_median_s=0.03, seed=7),
    )
    assert "throughput: worse (x0.8" in headline(slower)


def _with_mode(run: RunResult, mode: str, reason: str) -> RunResult:
    assert run.total is not None
    total = run.total.model_copy(update={"client_status": {"mode": mode, "mode_reason": reason}})
    return run.model_copy(update={"total": total})


def test_the_same_client_config_in_another_effective_mode_is_not_comparable() -> None:
    a = _with_mode(make_run("a", [STEADY]), "optimized", "enabled (default)")
    b = _with_mode(
        make_run("b", [STEADY]),
        "traditional",
        "disabled by HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION",
    )
    comp = _compare(a, b).comparability
    assert not comp.comparable
    assert [d.key for d in comp.workload] == ["client mode (effective)"]
    assert any("HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION was set" in w for w in comp.warnings)


def streamed(run: RunResult) -> RunResult:
    """The run as if it had streamed: every streaming latency is its service time."""
    from harborbench.result import StreamSummary

    assert run.total is not None
    s = run.total.service_time
    stream = StreamSummary(
        ttft=s, icl=s, itl=s, tpot=s, output_tokens=10, output_tokens_per_s=1.0,
        output_chunks=10, token_source="usage", tokens_from_usage=1,
        tokens_from_chunk_count=0, per_chunk_tokens_known=1, done_marker_missing=0,
    )  # fmt: skip
    return run.model_copy(update={"total": run.total.model_copy(update={"stream": stream})})


def test_streaming_rows_are_shown_but_not_tested() -> None:
    c = _compare(streamed(make_run("a", [STEADY])), streamed(make_run("b", [STEADY])))
    for metric in ("ttft_p50", "ttft_p95", "icl_p50", "itl_p50", "itl_p95", "tpot_p95"):
        row = c.row(metric)
        assert row is not None and row.verdict == "not tested", metric
        assert row.ci_low is None and "not independent" in row.reason


def _with_goodput(run: RunResult, share: float) -> RunResult:
    """The run with ``share`` of each second's successes meeting its slo."""
    trials = []
    for t in run.trials:
        rows = [r.model_copy(update={"slo_met": round(r.successes * share)}) for r in t.timeseries]
        met = sum(r.slo_met or 0 for r in rows if not r.warmup)
        trials.append(t.model_copy(update={"timeseries": rows, "slo_met": met,
                                           "goodput_ops": met / t.window_s}))  # fmt: skip
    profile = {**run.profile, "slo": {"latency_max": "200ms"}}
    return run.model_copy(update={"trials": trials, "total": merge_trials(trials),
                                  "profile": profile})  # fmt: skip


def test_goodput_row_compares_runs_with_an_slo() -> None:
    a = _with_goodput(make_run("a", [STEADY]), 0.9)
    b = _with_goodput(make_run("b", [STEADY], seed=5), 0.5)
    c = _compare(a, b)
    row = next(r for r in c.rows if r.metric == "goodput")
    assert row.a == pytest.approx(0.9 * a.total.throughput_ops, rel=0.01)  # type: ignore[union-attr]
    assert row.verdict == "worse"
    assert row.ratio is not None and row.ratio == pytest.approx(0.5 / 0.9, rel=0.02)
    plain = _compare(make_run("a", [STEADY]), make_run("b", [STEADY], seed=5))
    assert "goodput" not in _verdicts(plain)  # no slo: no goodput row
    mixed = _compare(a, make_run("b", [STEADY], seed=5))
    assert "goodput" not in _verdicts(mixed)
    assert any(d.key.startswith("slo") for d in mixed.comparability.workload)
