"""The adaptive stopping rule of noise-aware sessions, and the cross-machine gate rule.

Synthetic trials (no server, no sleeps): a virtual clock advances 10 s per trial.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from harborbench.compare import Comparison, compare_results, parse_fail_on
from harborbench.compare.session import SessionBudget, Step, decidable, next_step, run_session
from harborbench.result import TrialResult
from tests.compare.test_compare import ENVIRONMENT, make_run, make_trial

GATE = [parse_fail_on("throughput:-5%")]


def _series(rng: np.random.Generator, level: float, n: int = 12) -> list[int]:
    return [int(x) for x in level * (1.0 + 0.01 * rng.standard_normal(n))]


class _Lab:
    """A fake lab: trial ``r`` of a side has throughput ``level * drift[r]`` plus 1% noise."""

    def __init__(self, ratio: float, drift: Sequence[float], seed: int = 0) -> None:
        self.ratio, self.drift = ratio, list(drift)
        self.rng = np.random.default_rng(seed)
        self.now = 0.0
        self.calls: list[tuple[int, int]] = []
        self.stop = asyncio.Event()
        self.stop_at: tuple[int, int] | None = None

    def clock(self) -> float:
        return self.now

    async def trial(self, side: int, index: int) -> TrialResult:
        self.calls.append((side, index))
        self.now += 10.0
        level = 1000.0 * self.drift[index % len(self.drift)] * (self.ratio if side else 1.0)
        interrupted = self.stop_at == (side, index)
        if interrupted:
            self.stop.set()
        trial = make_trial(index, _series(self.rng, level), seed=100 * side + index)
        return trial.model_copy(update={"interrupted": interrupted})

    def compare(self, ta: list[TrialResult], tb: list[TrialResult]) -> Comparison:
        a = make_run("a", [[r.successes for r in t.timeseries if not r.warmup] for t in ta])
        b = make_run("b", [[r.successes for r in t.timeseries if not r.warmup] for t in tb])
        return compare_results(a, b, n_resamples=400, fail_on=GATE, paired=True)


def _session(lab: _Lab, budget: SessionBudget, gates: Any = GATE) -> Any:
    return asyncio.run(
        run_session(lab.trial, lab.compare, budget, gates=gates, stop=lab.stop, clock=lab.clock)
    )


def test_a_clear_case_stops_at_the_first_look() -> None:
    lab = _Lab(ratio=0.7, drift=[1.0])
    out = _session(lab, SessionBudget(rounds=2, max_rounds=8))
    assert out.rounds == 2 and out.stop_reason == "every gate conclusive"
    assert out.comparison.gates[0].verdict == "fail"
    assert lab.calls == [(0, 0), (1, 0), (1, 1), (0, 1)]  # the order alternates each round


def test_rounds_are_added_until_the_gate_is_decided() -> None:
    # B is 4% slower, the gate allows 5%: one look at 2 rounds of drifting trials straddles
    # 0.95; more rounds narrow the interval until it passes.
    lab = _Lab(ratio=0.96, drift=[1.0, 0.97, 1.03, 0.99, 1.01])
    budget = SessionBudget(rounds=2, max_rounds=12)
    out = _session(lab, budget)
    assert out.rounds > 2
    assert out.stop_reason == "every gate conclusive"
    assert out.comparison.gates[0].verdict == "pass"
    # the rule: each earlier look was inconclusive
    first = lab.compare(out.trials[0][:2], out.trials[1][:2])
    assert first.gates[0].verdict == "inconclusive"
    assert first.gates[0].rounds_needed is not None and first.gates[0].rounds_needed > 2


def test_max_rounds_ends_an_undecided_session() -> None:
    lab = _Lab(ratio=0.95, drift=[1.0, 0.9, 1.1])  # exactly on the threshold: never decided
    out = _session(lab, SessionBudget(rounds=2, max_rounds=4))
    assert out.rounds == 4 and out.stop_reason == "max rounds"
    gate = out.comparison.gates[0]
    assert gate.verdict == "inconclusive"
    assert "smallest change these data can detect" in gate.hint


def test_the_budget_ends_a_session_before_a_round_that_would_not_fit() -> None:
    lab = _Lab(ratio=0.95, drift=[1.0, 0.9, 1.1])
    # 20 s per round: after 3 rounds (60 s) a fourth would end at 80 s > 70 s.
    out = _session(lab, SessionBudget(rounds=2, max_rounds=50, budget_s=70.0))
    assert out.rounds == 3 and out.stop_reason == "budget"
    assert lab.now == 60.0


def test_without_gates_the_session_runs_its_rounds() -> None:
    lab = _Lab(ratio=0.95, drift=[1.0, 0.9, 1.1])
    out = _session(lab, SessionBudget(rounds=3, max_rounds=10), gates=())
    assert out.rounds == 3 and out.stop_reason == "rounds done"
    assert out.comparison is not None


def test_an_interrupt_keeps_the_trials_measured() -> None:
    lab = _Lab(ratio=1.0, drift=[1.0])
    lab.stop_at = (1, 1)  # Ctrl-C during B's trial of the second round (order B then A)
    out = _session(lab, SessionBudget(rounds=3, max_rounds=10))
    assert out.stop_reason == "interrupted" and out.rounds == 1
    assert [len(t) for t in out.trials] == [1, 2]
    assert out.trials[1][-1].interrupted


def test_a_stop_during_the_last_trial_of_a_round_that_still_ran_whole_counts_the_round() -> None:
    lab = _Lab(ratio=1.0, drift=[1.0])
    stop = asyncio.Event()
    calls: list[tuple[int, int]] = []

    async def trial(side: int, index: int) -> TrialResult:
        calls.append((side, index))
        result = await lab.trial(side, index)
        if (side, index) == (1, 0):
            stop.set()  # Ctrl-C as B's trial of round 1 ends: B's trial is whole
        return result

    out = asyncio.run(
        run_session(trial, lab.compare, SessionBudget(rounds=3), gates=GATE, stop=stop,
                    clock=lab.clock)
    )  # fmt: skip
    assert calls == [(0, 0), (1, 0)]
    assert out.stop_reason == "interrupted" and out.rounds == 1


def _cmp(rounds: int, verdicts: Sequence[str], env_differs: bool = False) -> Comparison:
    a = make_run("a", [[1000] * 12] * rounds)
    b = make_run(
        "b", [[1000] * 12] * rounds, environment={"os": "Linux 9.9"} if env_differs else None
    )
    c = compare_results(a, b, n_resamples=100, fail_on=GATE * len(verdicts))
    gates = [g.model_copy(update={"verdict": v}) for g, v in zip(c.gates, verdicts, strict=True)]
    return c.model_copy(update={"gates": gates})


@pytest.mark.parametrize(
    ("rounds_done", "verdicts", "elapsed_s", "more", "reason"),
    [
        (1, ["inconclusive"], 10.0, True, "gates inconclusive"),  # before the first look
        (2, ["pass", "fail"], 20.0, False, "every gate conclusive"),
        (2, ["pass", "inconclusive"], 20.0, True, "gates inconclusive"),
        (5, ["inconclusive"], 50.0, True, "gates inconclusive"),  # 6 rounds * 10 s = 60 <= 60
        (5, ["inconclusive"], 51.0, False, "budget"),  # 6 * 10.2 s = 61.2 > 60
        (6, ["inconclusive"], 10.0, False, "max rounds"),
    ],
)
def test_next_step_boundaries(
    rounds_done: int, verdicts: list[str], elapsed_s: float, more: bool, reason: str
) -> None:
    budget = SessionBudget(rounds=2, max_rounds=6, budget_s=60.0)
    step = next_step(_cmp(2, verdicts), rounds_done, budget, elapsed_s)
    assert (step.more, step.reason) == (more, reason)


def test_a_gate_across_environments_is_undecidable_by_more_rounds() -> None:
    c = compare_results(
        make_run("a", [[1000] * 12] * 2),
        make_run("b", [[1000] * 12] * 2, environment={"os": "Linux 9.9"}),
        n_resamples=100,
        fail_on=GATE,
    )
    step = next_step(c, 2, SessionBudget(rounds=2, max_rounds=6), 1.0)
    assert (step.more, step.reason) == (False, "undecidable")


def test_budget_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_rounds"):
        SessionBudget(rounds=3, max_rounds=2)
    with pytest.raises(ValueError, match="rounds"):
        SessionBudget(rounds=0)
    with pytest.raises(ValueError, match="budget_s"):
        SessionBudget(budget_s=0.0)


# --- a gate never fails across environments -------------------------------------------------


@pytest.mark.parametrize(
    ("key", "other"),
    [
        ("os", "Linux 6.9.1-other"),  # the kernel release
        ("cpu_count", 64),
        ("hostname", "elsewhere"),
        ("python", "3.12.1"),
        ("aiohttp", "3.10.0"),
        ("numpy", "2.0.0"),
        ("cpu_model", "Other CPU"),
    ],
)
def test_a_gate_is_inconclusive_across_environments(key: str, other: object) -> None:
    env = {**ENVIRONMENT, "os": "Linux 6.8.0", "numpy": "1.26.4"}
    slow = [int(x * 0.7) for x in [1000] * 12]
    a = make_run("a", [[1000] * 12] * 2, environment=env)
    b = make_run("b", [slow] * 2, environment={**env, key: other})
    same = make_run("b", [slow] * 2, environment=env)
    assert compare_results(a, same, n_resamples=200, fail_on=GATE).gates[0].verdict == "fail"
    gate = compare_results(a, b, n_resamples=200, fail_on=GATE).gates[0]
    assert gate.verdict == "inconclusive"
    assert key in gate.reason and "different environments" in gate.reason
    assert "--allow-different-environment" in gate.hint
    allowed = compare_results(a, b, n_resamples=200, fail_on=GATE, allow_different_environment=True)
    assert allowed.gates[0].verdict == "fail"


def test_the_git_commit_is_not_an_environment_difference() -> None:
    a = make_run("a", [[1000] * 12] * 2, environment={"git_commit": "abc"})
    b = make_run("b", [[700] * 12] * 2, environment={"git_commit": "def"})
    assert compare_results(a, b, n_resamples=200, fail_on=GATE).gates[0].verdict == "fail"


def test_the_plan_reference_row_is_never_a_gate() -> None:
    a = make_run("a", [[400] * 12] * 2)
    b = make_run("b", [[400] * 12] * 2)
    c = compare_results(a, b, n_resamples=200, fail_on=GATE)
    assert c.reference is not None and c.reference.target == "missed"  # below 1000 ops/s
    assert [g.verdict for g in c.gates] == ["pass"]  # judged on A, not on 505.6 or 1000


# --- thin data ----------------------------------------------------------------------------------


def test_thin_data_gets_one_warning_line_naming_the_fix() -> None:
    a = make_run("a", [[1000] * 6], profile={"warmup": 8.0})
    b = make_run("b", [[1000] * 30])
    warnings = compare_results(a, b, n_resamples=100).comparability.warnings
    (line,) = warnings
    assert line.startswith("A (a) has only 6 1-s intervals")
    assert "shorter than its warmup of 8 s" in line
    assert "raise duration" in line
    ok = compare_results(make_run("a", [[1000] * 10]), b, n_resamples=100)
    assert ok.comparability.warnings == []  # 10 intervals, warmup 2 s < window 10 s


def test_latency_gates_say_they_ignore_failures() -> None:
    a = make_run("a", [[1000] * 12] * 2)
    b = make_run("b", [[1000] * 12] * 2, failures=[20] * 12)  # 2% failed
    p99 = [parse_fail_on("p99:+10%")]
    warned = compare_results(a, b, n_resamples=100, fail_on=p99).comparability.warnings
    assert any("judge successful ops only" in w and "B 2.0%" in w for w in warned)
    both = [*p99, parse_fail_on("error_rate:+50%")]
    quiet = compare_results(a, b, n_resamples=100, fail_on=both).comparability.warnings
    assert not any("successful ops only" in w for w in quiet)
    low = make_run("b", [[1000] * 12] * 2, failures=[10] * 12)  # 0.99%: not high
    assert not any(
        "successful ops only" in w
        for w in compare_results(a, low, n_resamples=100, fail_on=p99).comparability.warnings
    )


# --- the session loop with a scripted lab: call order, looks, interrupts, elapsed time --------


class _Script:
    """Trials that cost 10 s of a virtual clock starting at 1000 s; compare returns a fixed
    comparison whose gate verdicts are scripted per look."""

    def __init__(self, looks: Sequence[str], interrupt_at: tuple[int, int] | None = None) -> None:
        self.now = 1000.0
        self.calls: list[tuple[int, int]] = []
        self.looks = list(looks)
        self.compared = 0
        self.interrupt_at = interrupt_at
        self.stop = asyncio.Event()
        self.stop_at: tuple[int, int] | None = None
        self.base = _cmp(2, ["inconclusive"])

    def clock(self) -> float:
        return self.now

    async def trial(self, side: int, index: int) -> TrialResult:
        self.calls.append((side, index))
        self.now += 10.0
        if self.stop_at == (side, index):
            self.stop.set()  # a signal during the trial, which itself ends normally
        return TrialResult.model_construct(index=index, interrupted=self.interrupt_at == (side,
                                           index))  # fmt: skip

    def compare(self, ta: list[TrialResult], tb: list[TrialResult]) -> Comparison:
        verdict = self.looks[min(self.compared, len(self.looks) - 1)]
        self.compared += 1
        gates = [g.model_copy(update={"verdict": verdict}) for g in self.base.gates]
        return self.base.model_copy(update={"gates": gates})


def _scripted(lab: _Script, budget: SessionBudget, gates: Any = GATE, stop: Any = None) -> Any:
    return asyncio.run(
        run_session(lab.trial, lab.compare, budget, gates=gates, stop=stop, clock=lab.clock)
    )


def test_the_order_alternates_every_round_and_one_look_follows_each_round() -> None:
    lab = _Script(["inconclusive", "inconclusive", "pass"])
    out = _scripted(lab, SessionBudget(rounds=2, max_rounds=9))
    assert lab.calls == [(0, 0), (1, 0), (1, 1), (0, 1), (0, 2), (1, 2), (1, 3), (0, 3)]
    assert lab.compared == 3  # looks after rounds 2, 3 and 4: none before the first `rounds`
    assert (out.rounds, out.stop_reason, out.elapsed_s) == (4, "every gate conclusive", 80.0)
    assert out.comparison.gates[0].verdict == "pass"


def test_without_gates_the_comparison_is_made_once_at_the_end() -> None:
    lab = _Script(["pass"])
    out = _scripted(lab, SessionBudget(rounds=3, max_rounds=9), gates=())
    assert lab.compared == 1 and out.comparison is not None
    assert (out.rounds, out.stop_reason, out.elapsed_s) == (3, "rounds done", 60.0)


def test_an_interrupted_trial_ends_the_session_without_a_stop_event() -> None:
    lab = _Script(["inconclusive"], interrupt_at=(0, 0))
    out = _scripted(lab, SessionBudget(rounds=2, max_rounds=9))
    assert (out.rounds, out.stop_reason, out.elapsed_s) == (0, "interrupted", 10.0)
    assert out.comparison is None and lab.calls == [(0, 0)]


def test_a_stop_during_a_normal_trial_ends_the_session_after_it() -> None:
    lab = _Script(["inconclusive"])
    lab.stop_at = (0, 2)  # the third round, after two looks (rounds=1)
    out = _scripted(lab, SessionBudget(rounds=1, max_rounds=9), stop=lab.stop)
    assert (out.rounds, out.stop_reason, out.elapsed_s) == (2, "interrupted", 50.0)
    assert out.comparison is not None  # the last look is kept
    assert lab.compared == 2


def test_the_budget_is_judged_on_the_time_since_the_session_started() -> None:
    lab = _Script(["inconclusive"])  # the clock starts at 1000 s, not at 0
    out = _scripted(lab, SessionBudget(rounds=1, max_rounds=50, budget_s=65.0))
    assert (out.rounds, out.stop_reason, out.elapsed_s) == (3, "budget", 60.0)


def test_next_step_without_a_look_runs_the_rounds_then_stops() -> None:
    budget = SessionBudget(rounds=3, max_rounds=5)
    assert next_step(None, 2, budget, 0.0) == Step(True, "gates inconclusive")
    assert next_step(None, 3, budget, 0.0) == Step(False, "rounds done")


def test_gates_on_metrics_without_an_interval_are_not_decidable() -> None:
    a = make_run("a", [[1000] * 12] * 2)
    gates = [parse_fail_on("throughput:-5%"), parse_fail_on("ttft_p95:+5%")]
    c = compare_results(a, make_run("b", [[1000] * 12] * 2), n_resamples=100, fail_on=gates)
    assert c.row("ttft_p95") is None  # neither run streamed: no row, the gate is inconclusive
    forced = c.model_copy(
        update={"gates": [g.model_copy(update={"verdict": "inconclusive"}) for g in c.gates]}
    )
    assert decidable(forced) == ["throughput:-5%"]
    no_interval = forced.model_copy(
        update={"rows": [r.model_copy(update={"verdict": "not tested"}) for r in forced.rows]}
    )
    assert decidable(no_interval) == []
