"""rollback-check's gate functions one by one: thresholds, the workload, the rows (exact text)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import harborbench.engine.session as session_module
import harborbench.rollback.gates as gates_module
from harborbench.errors import UserInputError
from harborbench.harborai.config import DISABLE_ENV_VAR
from harborbench.profile import Gates
from harborbench.result import GateResult
from harborbench.rollback.gates import (
    DEFAULT_ABSOLUTE,
    DEFAULT_CPU_GAIN_MIN_PCT,
    DEFAULT_THROUGHPUT_RATIO_MIN,
    GateSettings,
    GateWorkload,
    _absolute_row,
    _profile,
    _relative_gates,
    _relative_rows,
    gate_settings,
    load_gates_file,
    measure_gates,
)
from harborbench.rollback.matrix import OPTIMIZED_CONFIG, ROLLBACK_PATHS
from tests.compare.test_compare import make_trial


def test_the_defaults_are_the_plans_without_the_memory_slope() -> None:
    assert DEFAULT_THROUGHPUT_RATIO_MIN == 0.8
    assert DEFAULT_CPU_GAIN_MIN_PCT == 30.0
    assert DEFAULT_ABSOLUTE.memory_slope_max_mb_per_min is None
    assert DEFAULT_ABSOLUTE.cpu_efficiency_gain_min_pct is None
    s = GateSettings()
    assert (s.absolute, s.throughput_ratio_min, s.cpu_efficiency_gain_min_pct) == (
        DEFAULT_ABSOLUTE, 0.8, 30.0,
    )  # fmt: skip


def test_settings_as_plain_data() -> None:
    absolute = Gates(throughput_min=900, p95_max="250ms", error_rate_max="1%",
                     memory_growth_max_pct=20, memory_slope_max_mb_per_min=5,
                     success_rate_min="95%", dropped_max_pct=2)  # fmt: skip
    assert GateSettings(absolute, 0.7, 25.0).as_dict() == {
        "throughput_min_ops": 900.0, "p95_max_s": 0.25, "error_rate_max": 0.01,
        "memory_growth_max_pct": 20.0, "memory_slope_max_mb_per_min": 5.0,
        "success_rate_min": 0.95, "dropped_max_pct": 2.0, "throughput_ratio_min": 0.7,
        "cpu_efficiency_gain_min_pct": 25.0,
    }  # fmt: skip


def test_workload_rounds_and_length() -> None:
    w = GateWorkload()
    assert (w.rounds, w.warmup_s, w.window_s, w.concurrency, w.confidence) == (
        3, 1.0, 4.0, 48, 0.95,
    )  # fmt: skip
    assert w.most_rounds == 6
    assert w.total_s == 30.0
    assert GateWorkload(rounds=3, max_rounds=4).most_rounds == 4
    assert GateWorkload(rounds=3, max_rounds=2).most_rounds == 3
    assert GateWorkload(rounds=2, warmup_s=0.5, window_s=2.0).total_s == 10.0


def test_gate_settings_file_keys_replace_defaults_and_flags_win(tmp_path: Path) -> None:
    f = tmp_path / "g.yaml"
    f.write_text("p95_max: 300ms\ncpu_efficiency_gain_min_pct: null\n")
    s = gate_settings(load_gates_file(f))
    assert s.absolute.p95_max == 0.3
    assert s.absolute.throughput_min == DEFAULT_ABSOLUTE.throughput_min
    assert s.cpu_efficiency_gain_min_pct is None  # null turns the gate off
    assert s.throughput_ratio_min == 0.8
    flags = gate_settings(throughput_ratio_min=0.9, cpu_efficiency_gain_min_pct=10.0,
                          error_rate_max=0.02, throughput_min=None)  # fmt: skip
    assert (flags.throughput_ratio_min, flags.cpu_efficiency_gain_min_pct) == (0.9, 10.0)
    assert flags.absolute.error_rate_max == 0.02
    assert flags.absolute.throughput_min == DEFAULT_ABSOLUTE.throughput_min
    assert flags.absolute.cpu_efficiency_gain_min_pct is None  # never an absolute gate here
    unset = gate_settings(Gates())
    assert unset == GateSettings()
    # a flag left out (None) does not stop the flags after it
    later = gate_settings(throughput_min=None, p95_max=0.3, throughput_ratio_min=None)
    assert (later.absolute.p95_max, later.throughput_ratio_min) == (0.3, 0.8)


def test_load_gates_file_reports_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(UserInputError) as err:
        load_gates_file(tmp_path)  # a directory
    assert str(err.value).startswith(f"--gates {tmp_path} ")
    with pytest.raises(UserInputError) as missing:
        load_gates_file(tmp_path / "none.yaml")
    assert str(missing.value) == (
        f"--gates {tmp_path / 'none.yaml'}: no such file; give a YAML file with keys such as "
        "throughput_min: 1000 and p95_max: 200ms"
    )


def test_load_gates_file_errors_start_with_the_file(tmp_path: Path) -> None:
    f = tmp_path / "g.yaml"
    f.write_text("- 1\n")
    with pytest.raises(UserInputError) as err:
        load_gates_file(f)
    assert str(err.value).startswith(
        f"invalid gates file {f}: it must be a mapping of gate names to thresholds, with the "
        "keys of a profile's gates section (throughput_min, "
    )
    f.write_text("p95_max: [\n")
    with pytest.raises(UserInputError) as yaml_err:
        load_gates_file(f)
    assert str(yaml_err.value).startswith(f"invalid gates file {f}:")
    f.write_text("p95_max: 200\n")
    with pytest.raises(UserInputError) as bad:
        load_gates_file(f)
    assert str(bad.value).startswith(f"invalid gates file {f}:1: p95_max")
    f.write_text("throughput_mni: 1\np95_mx: 2\n")
    with pytest.raises(UserInputError) as two:
        load_gates_file(f)
    assert str(two.value).startswith(f"invalid gates file {f}:1: throughput_mni")
    assert f"; {f}:2: p95_mx" in str(two.value)
    f.write_text("p95_max: 1\np95_max: 2\nerror_rate_max: 1\nerror_rate_max: 2\n")
    with pytest.raises(UserInputError) as yaml_two:
        load_gates_file(f)
    assert str(yaml_two.value) == (
        f"invalid gates file {f}:2: p95_max: duplicate key 'p95_max' (first on line 1); keep "
        f"only one of them; {f}:4: error_rate_max: duplicate key 'error_rate_max' (first on "
        "line 3); keep only one of them"
    )
    f.write_text("throughput_min: 800\n")
    assert load_gates_file(f).throughput_min == 800.0


def test_the_gate_profiles() -> None:
    w = GateWorkload(warmup_s=0.5, window_s=2.0, concurrency=7)
    p = _profile("rollback-optimized", dict(OPTIMIZED_CONFIG), w)
    assert p.name == "rollback-optimized"
    assert p.load.concurrency == 7
    assert (p.warmup, p.duration, p.seed) == (0.5, 2.0, 1)
    assert p.request.model == "gpt-4o-mini"
    assert p.request.max_tokens.value == 64  # type: ignore[union-attr]
    assert p.request.prompt_tokens.value == 200  # type: ignore[union-attr]
    assert p.client.model_dump(exclude_unset=True) == dict(OPTIMIZED_CONFIG)
    assert p.target.mock is not None


def gate(verdict: str) -> GateResult:
    return GateResult(name="p95 latency", threshold="<= 200 ms", observed="250 ms",
                      verdict=verdict, alert="critical", detail="over by 50 ms")  # type: ignore[arg-type]  # fmt: skip


def test_absolute_rows() -> None:
    row = _absolute_row(gate("fail"), ["w1"])
    assert (row.kind, row.key, row.name) == ("gate", "absolute.p95_latency",
                                             "p95 latency (optimized mode)")  # fmt: skip
    assert (row.expected, row.observed, row.verdict) == ("<= 200 ms", "250 ms", "fail")
    assert row.problem == "p95 latency 250 ms, needs <= 200 ms: over by 50 ms"
    assert row.details == {"alert": "critical", "detail": "over by 50 ms",
                           "generator_warnings": ["w1"]}  # fmt: skip
    assert _absolute_row(gate("pass"), []).problem is None
    assert _absolute_row(gate("inconclusive"), []).problem is not None


def test_relative_gates_in_force() -> None:
    both = _relative_gates(GateSettings(throughput_ratio_min=0.8, cpu_efficiency_gain_min_pct=30))
    (t, tkey, tname), (c, ckey, cname) = both
    assert (t.text, t.metric, t.change_pct) == ("throughput ratio >= 0.8", "throughput",
                                                pytest.approx(-20.0))  # fmt: skip
    assert (tkey, tname) == ("relative.throughput_ratio", "throughput, optimized / traditional")
    assert (c.text, c.metric, c.change_pct) == ("CPU efficiency gain >= +30%", "cpu_efficiency",
                                                30.0)  # fmt: skip
    assert (ckey, cname) == ("relative.cpu_efficiency_gain", "CPU efficiency gain over traditional")
    assert _relative_gates(GateSettings(throughput_ratio_min=None,
                                        cpu_efficiency_gain_min_pct=None)) == []  # fmt: skip
    only_cpu = _relative_gates(GateSettings(throughput_ratio_min=None))
    assert [k for _, k, _ in only_cpu] == ["relative.cpu_efficiency_gain"]


def outcome(verdict: str, **kw: Any) -> Any:
    base = {"verdict": verdict, "ci_low": 0.91, "ci_high": 1.234, "threshold_ratio": 0.8,
            "reason": "the interval is above 0.8", "hint": "", "min_detectable_pct": 4.5,
            "rounds_needed": None}  # fmt: skip
    base.update(kw)
    return SimpleNamespace(**base)


def comparison(outcomes: list[Any], rows: dict[str, Any]) -> Any:
    return SimpleNamespace(gates=outcomes, row=lambda metric: rows.get(metric))


def test_relative_rows_show_the_ratio_and_interval() -> None:
    wanted = _relative_gates(GateSettings(throughput_ratio_min=0.8, cpu_efficiency_gain_min_pct=30))
    row_t = SimpleNamespace(ratio=1.05, a=1000.0, b=1050.0, unit="ops/s", method="bootstrap")
    comp = comparison(
        [outcome("pass"), outcome("inconclusive", ci_low=None, threshold_ratio=1.3,
                                  reason="too noisy", hint="run more rounds", rounds_needed=9)],
        {"throughput": row_t},
    )  # fmt: skip
    t, c = _relative_rows(comp, wanted, GateWorkload(confidence=0.9), ["w"], 3)
    assert (t.kind, t.key, t.name) == ("gate", "relative.throughput_ratio",
                                       "throughput, optimized / traditional")  # fmt: skip
    assert t.expected == ">= 0.800x (90% interval)"
    assert t.observed == "1.050x [0.910, 1.234]"
    assert (t.verdict, t.problem) == ("pass", None)
    assert t.details == {
        "traditional": 1000.0, "optimized": 1050.0, "unit": "ops/s", "ratio": 1.05,
        "ci_low": 0.91, "ci_high": 1.234, "threshold_ratio": 0.8, "method": "bootstrap",
        "reason": "the interval is above 0.8", "rounds": 3, "min_detectable_pct": 4.5,
        "rounds_needed": None, "generator_warnings": ["w"],
    }  # fmt: skip
    assert c.expected == ">= 1.300x (90% interval)"
    assert c.observed == "n/a"  # no row for the metric
    assert c.problem == "too noisy. run more rounds"
    assert c.details["traditional"] is None and c.details["method"] is None
    assert c.details["rounds_needed"] == 9
    no_hint = comparison([outcome("fail", reason="below", ci_high=None)], {"throughput": row_t})
    (r,) = _relative_rows(no_hint, wanted[:1], GateWorkload(), [], 1)
    assert r.problem == "below"
    assert r.observed == "1.050x"
    assert r.expected == ">= 0.800x (95% interval)"


class FakeTrials:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str | None]] = []

    async def __call__(self, profile: Any, plan: Any, base_url: str, api_key: str, *,
                       index: int, server: Any, stop: Any, **hooks: Any) -> Any:  # fmt: skip
        side = profile.name.removeprefix("rollback-")
        self.calls.append((side, index, os.environ.get(DISABLE_ENV_VAR)))
        # path 2's config (optimization off) against path 1's (optimized)
        expected = ROLLBACK_PATHS[1].config if side == "traditional" else OPTIMIZED_CONFIG
        assert profile.client.model_dump(exclude_unset=True) == dict(expected)
        assert (base_url, api_key, server) == ("http://127.0.0.1:1/v1", "k", "srv")
        assert plan.max_concurrency == 48
        trial = make_trial(index, [1000] * 4, seed=len(self.calls))
        if side == "optimized":
            health = trial.health.model_copy(update={"warnings": ["z slow", "a busy"]})
            trial = trial.model_copy(update={"health": health})
        return trial


def test_measure_gates_reports_progress_and_judges_the_optimized_side(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeTrials()
    monkeypatch.setattr(session_module, "run_trial", fake)
    monkeypatch.setenv(DISABLE_ENV_VAR, "true")
    lines: list[str] = []
    settings = GateSettings(Gates(throughput_min=500), throughput_ratio_min=None,
                            cpu_efficiency_gain_min_pct=None)  # fmt: skip

    async def main() -> Any:
        return await measure_gates("http://127.0.0.1:1/v1", "k", "srv", settings,
                                   GateWorkload(rounds=2), progress=lines.append)  # fmt: skip

    out = asyncio.run(main())
    assert lines[:2] == ["gates: round 1/2, traditional mode", "gates: round 1/2, optimized mode"]
    assert len(lines) == 4
    assert all(env is None for _, _, env in fake.calls)  # the switch is unset for every trial
    assert os.environ[DISABLE_ENV_VAR] == "true"  # and restored
    (row,) = out.rows
    assert (row.key, row.verdict) == ("absolute.throughput", "pass")
    assert row.details["generator_warnings"] == ["a busy", "z slow"]
    assert (out.rounds, out.interrupted) == (2, False)


def test_the_relative_gates_compare_interleaved_paired_rounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both sides are built as interleaved runs (memory judged per trial), neither marked
    interrupted, and compared paired at the workload's confidence."""
    fake = FakeTrials()
    monkeypatch.setattr(session_module, "run_trial", fake)
    seen: list[tuple[Any, Any, dict[str, Any]]] = []
    real = gates_module.compare_results

    def spy(a: Any, b: Any, **kw: Any) -> Any:
        seen.append((a, b, kw))
        return real(a, b, **kw)

    monkeypatch.setattr(gates_module, "compare_results", spy)
    settings = GateSettings(Gates(memory_growth_max_pct=20), throughput_ratio_min=0.5,
                            cpu_efficiency_gain_min_pct=None)  # fmt: skip

    async def main() -> Any:
        return await measure_gates("http://127.0.0.1:1/v1", "k", "srv", settings,
                                   GateWorkload(rounds=2, confidence=0.9))  # fmt: skip

    out = asyncio.run(main())
    a, b, kw = seen[-1]
    assert (a.name, b.name) == ("rollback-traditional", "rollback-optimized")
    assert a.profile["client"] == ROLLBACK_PATHS[1].config
    assert b.profile["client"] == OPTIMIZED_CONFIG
    assert (a.interrupted, b.interrupted) == (False, False)
    assert (kw["confidence"], kw["paired"]) == (0.9, True)
    for run in (a, b):  # each trial grew 1 MB of 100; the other mode's trials ran between
        assert run.total.memory.growth_pct == pytest.approx(3.0)
        assert "between trials, not load, not counted" in run.total.memory.reason
    (memory,) = [r for r in out.rows if r.key == "absolute.memory_growth"]
    assert memory.verdict == "pass"
    (relative,) = [r for r in out.rows if r.key == "relative.throughput_ratio"]
    assert relative.details["generator_warnings"] == ["a busy", "z slow"]


class StopAt(FakeTrials):
    """Sets ``stop`` during one trial; the trial itself still completes (a Ctrl-C at its end)."""

    def __init__(self, at: tuple[str, int], interrupted: bool = False) -> None:
        super().__init__()
        self.at, self.interrupted = at, interrupted

    async def __call__(self, profile: Any, plan: Any, *a: Any, stop: Any, **kw: Any) -> Any:
        trial = await super().__call__(profile, plan, *a, stop=stop, **kw)
        if self.calls[-1][:2] == self.at:
            stop.set()
            trial = trial.model_copy(update={"interrupted": self.interrupted})
        return trial


def measure_stopped(monkeypatch: pytest.MonkeyPatch, fake: StopAt) -> Any:
    monkeypatch.setattr(session_module, "run_trial", fake)
    settings = GateSettings(Gates(throughput_min=500), throughput_ratio_min=0.5,
                            cpu_efficiency_gain_min_pct=None)  # fmt: skip

    async def main() -> Any:
        return await measure_gates("http://127.0.0.1:1/v1", "k", "srv", settings,
                                   GateWorkload(rounds=2), stop=asyncio.Event())  # fmt: skip

    return asyncio.run(main())


def test_a_stop_after_a_complete_trial_ends_the_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = StopAt(("optimized", 0))
    out = measure_stopped(monkeypatch, fake)
    assert [c[:2] for c in fake.calls] == [("traditional", 0), ("optimized", 0)]
    # both trials of round 1 ran whole: the round counts, and the relative gates judge it
    assert (out.interrupted, out.stop_reason, out.rounds) == (True, "interrupted", 1)
    assert "relative.throughput_ratio" in [r.key for r in out.rows]


def test_a_stop_after_the_first_trial_of_a_round_counts_no_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = StopAt(("traditional", 0))
    out = measure_stopped(monkeypatch, fake)
    assert [c[:2] for c in fake.calls] == [("traditional", 0)]
    assert (out.interrupted, out.rounds) == (True, 0)


def test_a_stop_in_the_first_trial_judges_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    out = measure_stopped(monkeypatch, StopAt(("traditional", 0), interrupted=True))
    assert (out.rows, out.rounds, out.interrupted) == ([], 0, True)


class DroppingTrials(FakeTrials):
    """The optimized side's trials report ``unsent`` dropped arrivals each."""

    def __init__(self, unsent: int) -> None:
        super().__init__()
        self.unsent = unsent

    async def __call__(self, profile: Any, *args: Any, **kwargs: Any) -> Any:
        trial = await super().__call__(profile, *args, **kwargs)
        if profile.name.endswith("optimized"):
            health = trial.health.model_copy(update={"unsent": self.unsent})
            trial = trial.model_copy(update={"health": health})
        return trial


@pytest.mark.parametrize(("unsent", "verdict", "observed"),
                         [(210, "pass", "95.01%"), (250, "fail", "94.12%")])  # fmt: skip
def test_rollback_judges_dropped_arrivals_with_runs_success_rate_rule(
    monkeypatch: pytest.MonkeyPatch, unsent: int, verdict: str, observed: str
) -> None:
    # 2 optimized trials of 4,000 successes: 8,000 of 8,000 + 2 x unsent (the one rule of
    # harborbench.gates.success_rate, as `run` uses)
    monkeypatch.setattr(session_module, "run_trial", DroppingTrials(unsent))
    settings = GateSettings(Gates(success_rate_min="95%"), throughput_ratio_min=None,
                            cpu_efficiency_gain_min_pct=None)  # fmt: skip

    async def main() -> Any:
        return await measure_gates("http://127.0.0.1:1/v1", "k", "srv", settings,
                                   GateWorkload(rounds=2))  # fmt: skip

    (row,) = asyncio.run(main()).rows
    assert (row.key, row.verdict, row.observed) == ("absolute.success_rate", verdict, observed)
