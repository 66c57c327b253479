"""``evaluate_gate`` on hand-built comparisons: every branch, whole outcomes compared exactly.

No bootstrap runs here: the rows carry the interval a comparison would have computed, so each
test states the interval, the gate and the full :class:`GateOutcome` expected (reason, hint,
rounds needed), and both sides of each boundary.
"""

from __future__ import annotations

from typing import Any

import pytest

from harborbench.compare import evaluate_gate, parse_fail_on
from harborbench.compare.fail_on import failure_notes
from harborbench.compare.models import (
    Comparability,
    Comparison,
    Difference,
    GateOutcome,
    MetricRow,
    RunRef,
)


def _row(metric: str = "throughput", **kw: Any) -> MetricRow:
    base: dict[str, Any] = {
        "metric": metric, "label": metric, "unit": "ops/s",
        "better": "lower" if metric.startswith("p") or metric == "error_rate" else "higher",
        "a": 100.0, "b": 90.0, "ratio": 0.9, "change_pct": -10.0, "ci_low": 0.85,
        "ci_high": 0.93, "ci_of": "ratio", "confidence": 0.95, "method": "bootstrap",
        "p_value": None, "min_detectable_pct": 3.0, "n_a": 40, "n_b": 40,
        "verdict": "worse", "reason": "why",
    }  # fmt: skip
    return MetricRow(**{**base, **kw})


def _comparison(
    rows: list[MetricRow], *, trials: tuple[int, int] = (3, 3), env: list[Difference] | None = None
) -> Comparison:
    return Comparison(
        a=RunRef(name="a", created_at="t", trials=trials[0], intervals=30),
        b=RunRef(name="b", created_at="t", trials=trials[1], intervals=30),
        confidence=0.95, seed=0, n_resamples=1000, rows=rows, reference=None,
        comparability=Comparability(comparable=not env, environment=env or [], workload=[],
                                    notes=[], warnings=[]),
        gates=[],
    )  # fmt: skip


def _outcome(gate: str, metric: str, threshold: float, **kw: Any) -> GateOutcome:
    return GateOutcome(gate=gate, metric=metric, threshold_ratio=threshold, **kw)


def test_a_ratio_interval_wholly_beyond_the_threshold_fails() -> None:
    c = _comparison([_row(ci_low=0.85, ci_high=0.93)])
    assert evaluate_gate(c, parse_fail_on("throughput:-5%")) == _outcome(
        "throughput:-5%", "throughput", 0.95, ci_low=0.85, ci_high=0.93, verdict="fail",
        reason="B/A in [0.8500, 0.9300] at 95%, wholly below the threshold 0.9500",
        min_detectable_pct=3.0,
    )  # fmt: skip


def test_a_ratio_interval_on_the_good_side_passes_with_no_hint() -> None:
    c = _comparison([_row(ci_low=0.95, ci_high=1.02)])  # low on the threshold: still a pass
    assert evaluate_gate(c, parse_fail_on("throughput:-5%")) == _outcome(
        "throughput:-5%", "throughput", 0.95, ci_low=0.95, ci_high=1.02, verdict="pass",
        reason="B/A in [0.9500, 1.0200] at 95%, on the good side of the threshold 0.9500",
        min_detectable_pct=3.0,
    )  # fmt: skip


def test_a_straddling_interval_is_inconclusive_and_says_how_many_rounds_would_decide() -> None:
    # half width ln(1.0/0.9)/2 = 0.05268; distance |ln(0.93) - ln(0.95)| = 0.02128;
    # 3 * (0.05268 / 0.02128)**2 = 18.39 -> 19 rounds a side.
    c = _comparison([_row(ratio=0.93, ci_low=0.9, ci_high=1.0)])
    assert evaluate_gate(c, parse_fail_on("throughput:-5%")) == _outcome(
        "throughput:-5%", "throughput", 0.95, ci_low=0.9, ci_high=1.0, verdict="inconclusive",
        reason="B/A in [0.9000, 1.0000] at 95%, straddling the threshold 0.9500",
        min_detectable_pct=3.0, rounds_needed=19,
        hint="The smallest change these data can detect is 3.0%; about 19 trials (rounds) a "
        "side would decide it (now 3).",
    )  # fmt: skip


def test_rounds_are_counted_on_the_side_with_fewer_trials() -> None:
    c = _comparison([_row(ratio=0.93, ci_low=0.9, ci_high=1.0)], trials=(2, 5))
    out = evaluate_gate(c, parse_fail_on("throughput:-5%"))
    assert (out.rounds_needed, out.hint.endswith("(now 2).")) == (13, True)  # ceil(12.26)


@pytest.mark.parametrize(
    ("low", "high", "verdict", "where"),
    [
        (1.101, 1.3, "fail", "wholly above"),
        (1.0, 1.1, "pass", "on the good side of"),
        (1.0, 1.2, "inconclusive", "straddling"),
    ],
)
def test_a_latency_gate_fails_above_its_threshold(
    low: float, high: float, verdict: str, where: str
) -> None:
    c = _comparison([_row("p99", ratio=(low + high) / 2, ci_low=low, ci_high=high)])
    out = evaluate_gate(c, parse_fail_on("p99:+10%"))
    assert (out.verdict, out.ci_low, out.ci_high) == (verdict, low, high)
    assert out.reason == (f"B/A in [{low:.4f}, {high:.4f}] at 95%, {where} the threshold 1.1000")


def test_one_trial_a_side_makes_a_failure_inconclusive_but_keeps_its_reason() -> None:
    c = _comparison([_row(ci_low=0.85, ci_high=0.93)], trials=(1, 4))
    out = evaluate_gate(c, parse_fail_on("throughput:-5%"))
    assert out == _outcome(
        "throughput:-5%", "throughput", 0.95, ci_low=0.85, ci_high=0.93, verdict="inconclusive",
        reason="B/A in [0.8500, 0.9300] at 95%, wholly below the threshold 0.9500, but with one "
        "trial a side run-to-run noise is invisible and alone can produce this change",
        min_detectable_pct=3.0, rounds_needed=2,
        hint="Measure at least 2 trials a side: repeat: 2 or more in the profiles, or "
        "compare --run A.yaml B.yaml --rounds 2 or more.",
    )  # fmt: skip


def test_one_trial_a_side_leaves_a_pass_a_pass() -> None:
    c = _comparison([_row(ci_low=0.96, ci_high=1.1)], trials=(1, 1))
    assert evaluate_gate(c, parse_fail_on("throughput:-5%")).verdict == "pass"


def test_different_environments_make_any_gate_inconclusive_unless_allowed() -> None:
    env = [Difference(key="cpu_count", a=2, b=64), Difference(key="python", a="3.11", b="3.12")]
    c = _comparison([_row(ratio=0.89, ci_low=0.85, ci_high=0.93)], env=env)
    gate = parse_fail_on("throughput:-5%")
    assert evaluate_gate(c, gate) == _outcome(
        "throughput:-5%", "throughput", 0.95, ci_low=0.85, ci_high=0.93, verdict="inconclusive",
        reason="A and B were measured in different environments (cpu_count 2 vs 64, python "
        "'3.11' vs '3.12'); a gate never fails across environments",
        min_detectable_pct=3.0, rounds_needed=None,
        hint="Measure A and B on the same machine (compare --run), or pass "
        "--allow-different-environment to judge anyway.",
    )  # fmt: skip
    assert evaluate_gate(c, gate, allow_different_environment=True).verdict == "fail"


def test_a_metric_missing_from_the_comparison_is_inconclusive_with_nothing_to_add() -> None:
    c = _comparison([_row()])
    assert evaluate_gate(c, parse_fail_on("p99:+10%")) == _outcome(
        "p99:+10%", "p99", 1.1, ci_low=None, ci_high=None, verdict="inconclusive",
        reason="p99 was not measured in both runs",
    )  # fmt: skip


@pytest.mark.parametrize(("low", "high"), [(None, 1.0), (0.9, None)])
def test_a_row_without_an_interval_is_inconclusive_and_names_its_reason(
    low: float | None, high: float | None
) -> None:
    c = _comparison([_row(ci_low=low, ci_high=high, reason="too few intervals")])
    assert evaluate_gate(c, parse_fail_on("throughput:-5%")) == _outcome(
        "throughput:-5%", "throughput", 0.95, ci_low=low, ci_high=high, verdict="inconclusive",
        reason="no interval for throughput: too few intervals", min_detectable_pct=3.0,
        hint="The smallest change these data can detect is 3.0%; the estimate lies on the "
        "threshold: more data alone may not decide it.",
    )  # fmt: skip


def _difference_row(metric: str, low: float, high: float) -> MetricRow:
    return _row(metric, a=0.0, ratio=None, change_pct=None, ci_low=low, ci_high=high,
                ci_of="difference", reason="A is 0", min_detectable_pct=None)  # fmt: skip


def test_a_difference_interval_of_zeros_passes() -> None:
    c = _comparison([_difference_row("error_rate", 0.0, 0.0)])
    assert evaluate_gate(c, parse_fail_on("error_rate:+50%")) == _outcome(
        "error_rate:+50%", "error_rate", 1.5, ci_low=0.0, ci_high=0.0, verdict="pass",
        reason="error_rate is 0 in both runs",
    )  # fmt: skip


@pytest.mark.parametrize(("trials", "verdict"), [((2, 2), "fail"), ((1, 2), "inconclusive")])
def test_a_certain_increase_over_zero_fails_a_lower_is_better_gate(
    trials: tuple[int, int], verdict: str
) -> None:
    c = _comparison([_difference_row("error_rate", 0.01, 0.03)], trials=trials)
    out = evaluate_gate(c, parse_fail_on("error_rate:+50%"))
    assert (out.verdict, out.rounds_needed, out.min_detectable_pct) == (verdict, None, None)
    assert out.reason.startswith("A is 0 and B - A lies in [0.01, 0.03]")


@pytest.mark.parametrize(
    ("metric", "gate", "low", "high"),
    [
        ("error_rate", "error_rate:+50%", 0.0, 0.03),  # low on 0: not certainly worse
        ("error_rate", "error_rate:+50%", -0.01, 0.03),
        ("throughput", "throughput:-5%", -3.0, 0.0),  # high on 0: not certainly worse
    ],
)
def test_a_difference_interval_touching_zero_is_inconclusive(
    metric: str, gate: str, low: float, high: float
) -> None:
    c = _comparison([_difference_row(metric, low, high)])
    out = evaluate_gate(c, parse_fail_on(gate))
    assert out == _outcome(
        gate, metric, out.threshold_ratio, ci_low=low, ci_high=high, verdict="inconclusive",
        reason="A is 0; the ratio is undefined (A is 0)",
    )  # fmt: skip


def test_a_certain_decrease_from_zero_fails_a_higher_is_better_gate() -> None:
    c = _comparison([_difference_row("throughput", -3.0, -1.0)])
    out = evaluate_gate(c, parse_fail_on("throughput:-5%"))
    assert (out.verdict, out.reason) == ("fail", "A is 0 and B - A lies in [-3, -1]")


@pytest.mark.parametrize(
    ("a", "b", "notes"),
    [
        (0.0, 0.01, 0),  # 1% exactly: not above the limit
        (0.0, 0.0101, 1),
        (0.02, None, 1),
        (None, None, 0),
    ],
)
def test_failure_notes_fire_above_one_percent(a: float | None, b: float | None, notes: int) -> None:
    c = _comparison([_row("error_rate", a=a, b=b)])
    assert len(failure_notes(c, [parse_fail_on("p99:+10%")])) == notes
