"""``--fail-on METRIC:CHANGE%`` gates: parsing them, and judging them on a comparison.

A gate is judged on the interval of its metric's row, never on the point estimate: it fails only
when the whole interval lies beyond the threshold (see :func:`evaluate_gate`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from harborbench.compare import bootstrap as cs
from harborbench.compare.models import METRICS, Comparison, FailOn, GateOutcome
from harborbench.errors import UserInputError
from harborbench.metrics import stats

_ALIASES = {"p99.9": "p999", "attempted_ops": "attempted", "ops_per_cpu_second": "cpu_efficiency"}
_FAIL_ON = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*:\s*([+-]?)(\d+(?:\.\d+)?)\s*%\s*$")


def parse_fail_on(text: str) -> FailOn:
    """Parse a ``--fail-on`` gate such as ``throughput:-5%`` or ``p99:+10%``.

    Without a sign the change is taken in the metric's bad direction (``p99:10%`` is ``+10%``);
    a sign in the good direction (``throughput:+5%``) is refused as a likely mistake.

    Args:
        text: ``METRIC:CHANGE%``; METRIC one of the gateable keys of :data:`METRICS`
            (``p99.9`` is accepted for ``p999``).

    Returns:
        The gate.

    Raises:
        UserInputError: the text does not parse, the metric is unknown or not gateable, or the
            sign points in the metric's good direction.
    """
    gateable = ", ".join(k for k, m in METRICS.items() if m.gateable)
    match = _FAIL_ON.match(text)
    if not match:
        raise UserInputError(
            f"--fail-on {text!r}: expected METRIC:CHANGE%, for example throughput:-5% or p99:+10%."
        )
    name, sign, number = match.groups()
    metric = _ALIASES.get(name.lower(), name.lower())
    spec = METRICS.get(metric)
    if spec is None or not spec.gateable:
        raise UserInputError(f"--fail-on {text!r}: unknown metric {name!r}; use one of {gateable}.")
    bad_sign = "-" if spec.better == "higher" else "+"
    if sign and sign != bad_sign:
        raise UserInputError(
            f"--fail-on {text!r}: {metric} is better when {spec.better}, so a regression is "
            f"{'a decrease' if bad_sign == '-' else 'an increase'}.",
            hint=f"Write {metric}:{bad_sign}{number}%.",
        )
    value = float(number)
    if bad_sign == "-" and value >= 100:
        raise UserInputError(f"--fail-on {text!r}: a decrease must be smaller than 100%.")
    return FailOn(text=text.strip(), metric=metric, change_pct=-value if bad_sign == "-" else value)


def check_measurable(gates: Sequence[FailOn], slo: Sequence[tuple[str, bool]]) -> None:
    """Refuse a ``goodput`` gate when a side has no ``slo`` section: its goodput is not measured,
    and no amount of data can change that (bad input, exit 2; not an inconclusive gate).

    The one check, for finished runs (:func:`harborbench.compare.compare_results`) and for the
    profiles of ``compare --run`` before anything is measured.

    Args:
        gates: the ``--fail-on`` gates.
        slo: ``(what, has an slo section)`` of A and of B, ``what`` naming the run or profile.

    Raises:
        UserInputError: a goodput gate, and a side without an slo section.
    """
    gate = next((g for g in gates if g.metric == "goodput"), None)
    missing = [what for what, has_slo in slo if not has_slo]
    if gate is None or not missing:
        return
    raise UserInputError(
        f"--fail-on {gate.text}: goodput counts the requests that met the objectives of the "
        f"profile's slo section, and {' and '.join(missing)} "
        f"{'has' if len(missing) == 1 else 'have'} none, so goodput is not measured.",
        hint="Add an slo section (for example slo: {latency_max: 500ms}) to both profiles and "
        "run them again, or gate on throughput instead.",
    )


#: Latency metrics: judged on successful ops only.
LATENCY_METRICS = ("p50", "p95", "p99", "p999", "ttft_p50", "ttft_p95", "itl_p50", "itl_p95")
#: Error rate above which latency gates without an error-rate gate get a note.
HIGH_ERROR_RATE = 0.01


def rounds_needed(
    low: float, high: float, estimate: float, threshold: float, units: int
) -> int | None:
    """About how many trials (rounds) a side would decide a gate at the current noise.

    The interval's half-width in log ratio shrinks as ``1 / sqrt(units)``; the gate is decided
    when it is smaller than the distance from the estimate to the threshold:
    ``ceil(units * (half_width / distance) ** 2)``.

    Args:
        low, high: the interval of B/A (positive).
        estimate: B/A on all the data (positive).
        threshold: the gate's threshold ratio.
        units: trials (rounds) a side behind the interval, >= 1.

    Returns:
        The number (more than ``units``), or None when the estimate lies on the threshold or the
        figures are not positive.
    """
    if min(low, high, estimate, threshold) <= 0:
        return None
    half = (math.log(high) - math.log(low)) / 2.0
    distance = abs(math.log(estimate) - math.log(threshold))
    if distance == 0.0 or half <= 0.0:
        return None
    return max(units + 1, math.ceil(units * (half / distance) ** 2))


def evaluate_gate(
    comparison: Comparison, gate: FailOn, *, allow_different_environment: bool = False
) -> GateOutcome:
    """Judge one ``--fail-on`` gate on the comparison's interval of its metric.

    It fails only when the whole interval lies beyond the threshold, passes when it lies wholly
    within, and is inconclusive when it straddles the threshold or there is no interval. Two
    rules come first (issue 13):

    * A and B measured in different environments (:data:`~harborbench.compare.differences.
      ENVIRONMENT_KEYS`: machine, CPU count, kernel, Python, library versions): inconclusive,
      naming the differences, unless ``allow_different_environment``.
    * One trial on a side cannot show run-to-run noise: a gate that would fail is inconclusive
      instead, with the hint to measure more trials (a pass stays a pass).

    Args:
        comparison: the comparison (its rows, trials and comparability).
        gate: the gate.
        allow_different_environment: judge the gate across different environments.

    Returns:
        The outcome; an inconclusive one says what more data would decide it.
    """
    row = comparison.row(gate.metric)
    threshold = gate.threshold_ratio
    units = min(comparison.a.trials, comparison.b.trials)
    mdc = row.min_detectable_pct if row else None

    def outcome(
        verdict: cs.GateVerdict, reason: str, hint: str = "", *, more_data_helps: bool = True
    ) -> GateOutcome:
        needed = None
        if (
            verdict == "inconclusive"
            and more_data_helps
            and row is not None
            and row.ci_of == "ratio"
        ):
            if None not in (row.ci_low, row.ci_high, row.ratio):
                needed = rounds_needed(row.ci_low, row.ci_high, row.ratio, threshold, units)  # type: ignore[arg-type]
            if not hint:
                hint = _more_data_hint(mdc, needed, units)
        return GateOutcome(
            gate=gate.text, metric=gate.metric, threshold_ratio=threshold,
            ci_low=row.ci_low if row else None, ci_high=row.ci_high if row else None,
            verdict=verdict, reason=reason, min_detectable_pct=mdc, rounds_needed=needed,
            hint=hint,
        )  # fmt: skip

    env = comparison.comparability.environment
    if env and not allow_different_environment:
        keys = ", ".join(f"{d.key} {d.a!r} vs {d.b!r}" for d in env)
        return outcome(
            "inconclusive",
            f"A and B were measured in different environments ({keys}); a gate never fails "
            "across environments",
            "Measure A and B on the same machine (compare --run), or pass "
            "--allow-different-environment to judge anyway.",
            more_data_helps=False,
        )
    if row is None:
        return outcome("inconclusive", f"{gate.metric} was not measured in both runs")
    if row.ci_low is None or row.ci_high is None:
        return outcome("inconclusive", f"no interval for {gate.metric}: {row.reason}")
    if row.ci_of == "difference":  # A is 0: any certain increase is an infinite ratio
        if row.ci_low == 0 == row.ci_high:
            return outcome("pass", f"{gate.metric} is 0 in both runs")
        bad = row.ci_low > 0 if row.better == "lower" else row.ci_high < 0
        if bad:
            return _one_trial(
                outcome, units, f"A is 0 and B - A lies in [{row.ci_low:.4g}, {row.ci_high:.4g}]"
            )
        return outcome("inconclusive", f"A is 0; the ratio is undefined ({row.reason})")
    interval = cs.ChangeInterval("ratio", row.ci_low, row.ci_high, row.min_detectable_pct)
    judged = cs.as_stats_interval(interval, row.n_a, row.n_b)
    verdict = stats.gate_verdict(judged, threshold, row.better)
    side = "below" if row.better == "higher" else "above"
    where = {
        "fail": f"wholly {side}",
        "pass": "on the good side of",
        "inconclusive": "straddling",
    }[verdict]
    reason = (
        f"B/A in [{row.ci_low:.4f}, {row.ci_high:.4f}] at {row.confidence:.0%}, {where} the "
        f"threshold {threshold:.4f}"
    )
    if verdict == "fail":
        return _one_trial(outcome, units, reason)
    return outcome(verdict, reason)


def _one_trial(outcome: Any, units: int, reason: str) -> GateOutcome:
    """A failing gate, unless a side has one trial (then inconclusive, with the hint)."""
    if units >= 2:
        return outcome("fail", reason)  # type: ignore[no-any-return]
    return outcome(  # type: ignore[no-any-return]
        "inconclusive",
        f"{reason}, but with one trial a side run-to-run noise is invisible and alone can "
        "produce this change",
        "Measure at least 2 trials a side: repeat: 2 or more in the profiles, or "
        "compare --run A.yaml B.yaml --rounds 2 or more.",
    )


def _more_data_hint(mdc: float | None, needed: int | None, units: int) -> str:
    parts = []
    if mdc is not None and math.isfinite(mdc):
        parts.append(f"the smallest change these data can detect is {mdc:.1f}%")
    if needed is not None:
        parts.append(f"about {needed} trials (rounds) a side would decide it (now {units})")
    elif mdc is not None:
        parts.append("the estimate lies on the threshold: more data alone may not decide it")
    text = "; ".join(parts)
    return (text[:1].upper() + text[1:] + ".") if text else ""


def failure_notes(comparison: Comparison, gates: Sequence[FailOn]) -> list[str]:
    """A note when latency gates are set, no error-rate gate is, and many requests failed.

    Latency is measured on successful ops only, so a latency gate cannot see failures.

    Args:
        comparison: the comparison (its error-rate row).
        gates: the ``--fail-on`` gates in force.

    Returns:
        One line, or none.
    """
    metrics = {g.metric for g in gates}
    latency = sorted(metrics & set(LATENCY_METRICS))
    row = comparison.row("error_rate")
    if not latency or "error_rate" in metrics or row is None:
        return []
    rates = [x for x in (row.a, row.b) if x is not None]
    if not rates or max(rates) <= HIGH_ERROR_RATE:
        return []
    a = "n/a" if row.a is None else f"{row.a:.1%}"
    b = "n/a" if row.b is None else f"{row.b:.1%}"
    return [
        f"latency gates ({', '.join(latency)}) judge successful ops only and ignore the failures "
        f"(error rate A {a}, B {b}); add --fail-on error_rate:+50% (or another limit) to gate "
        "them"
    ]
