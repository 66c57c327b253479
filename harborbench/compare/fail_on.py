"""``--fail-on METRIC:CHANGE%`` gates: parsing them, and judging them on a comparison.

A gate is judged on the interval of its metric's row, never on the point estimate: it fails only
when the whole interval lies beyond the threshold (see :func:`evaluate_gate`).
"""

from __future__ import annotations

import re

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


def evaluate_gate(comparison: Comparison, gate: FailOn) -> GateOutcome:
    """Judge one ``--fail-on`` gate on the comparison's interval of its metric.

    It fails only when the whole interval lies beyond the threshold, passes when it lies wholly
    within, and is inconclusive when it straddles the threshold or there is no interval.

    Args:
        comparison: the comparison (its rows).
        gate: the gate.

    Returns:
        The outcome.
    """
    row = comparison.row(gate.metric)
    threshold = gate.threshold_ratio

    def outcome(verdict: cs.GateVerdict, reason: str) -> GateOutcome:
        return GateOutcome(
            gate=gate.text, metric=gate.metric, threshold_ratio=threshold,
            ci_low=row.ci_low if row else None, ci_high=row.ci_high if row else None,
            verdict=verdict, reason=reason,
        )  # fmt: skip

    if row is None:
        return outcome("inconclusive", f"{gate.metric} was not measured in both runs")
    if row.ci_low is None or row.ci_high is None:
        return outcome("inconclusive", f"no interval for {gate.metric}: {row.reason}")
    if row.ci_of == "difference":  # A is 0: any certain increase is an infinite ratio
        if row.ci_low == 0 == row.ci_high:
            return outcome("pass", f"{gate.metric} is 0 in both runs")
        bad = row.ci_low > 0 if row.better == "lower" else row.ci_high < 0
        if bad:
            return outcome(
                "fail", f"A is 0 and B - A lies in [{row.ci_low:.4g}, {row.ci_high:.4g}]"
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
    return outcome(verdict, reason)
