"""The data of ``harborbench compare``: the metrics it reports and the ``comparison.json`` model.

Every model is pydantic (unknown keys refused, frozen); :func:`tidy_rows` flattens a
:class:`Comparison` into the rows of ``comparison.csv``.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from harborbench.compare import bootstrap as cs

#: Version of ``comparison.json``. History: 1: first version (0.1.0); 2: ``kind``.
COMPARISON_SCHEMA_VERSION = 2


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricSpec(NamedTuple):
    """A metric compare reports: label, unit (of A and B), good direction, gateable."""

    label: str
    unit: str
    better: cs.Better
    gateable: bool


METRICS: dict[str, MetricSpec] = {
    "throughput": MetricSpec("throughput", "ops/s", "higher", True),
    "goodput": MetricSpec("goodput (met the slo)", "ops/s", "higher", True),
    "attempted": MetricSpec("completed (ok + failed)", "ops/s", "higher", True),
    "error_rate": MetricSpec("error rate", "fraction", "lower", True),
    "p50": MetricSpec("service p50", "s", "lower", True),
    "p95": MetricSpec("service p95", "s", "lower", True),
    "p99": MetricSpec("service p99", "s", "lower", True),
    "p999": MetricSpec("service p99.9", "s", "lower", True),
    "max": MetricSpec("service max", "s", "lower", False),
    "cpu_efficiency": MetricSpec("CPU efficiency", "ops/CPU-s", "higher", True),
    "memory_growth": MetricSpec("memory growth", "%", "lower", False),
    "memory_slope": MetricSpec("memory slope", "MB/min", "lower", False),
    "ttft_p50": MetricSpec("TTFT p50", "s", "lower", True),
    "ttft_p95": MetricSpec("TTFT p95", "s", "lower", True),
    "icl_p50": MetricSpec("inter-chunk p50", "s", "lower", True),
    "icl_p95": MetricSpec("inter-chunk p95", "s", "lower", True),
    "itl_p50": MetricSpec("inter-token p50", "s", "lower", True),
    "itl_p95": MetricSpec("inter-token p95", "s", "lower", True),
    "tpot_p50": MetricSpec("time per output token p50", "s", "lower", True),
    "tpot_p95": MetricSpec("time per output token p95", "s", "lower", True),
}


class MetricRow(_Model):
    """One metric of A and B, the change, its interval and the verdict.

    Attributes:
        metric: the key (``throughput``, ``p99``, ...); label: for display; unit: of ``a``/``b``.
        better: the direction in which the metric is good.
        a, b: the runs' figures (None when not measured).
        ratio: b / a; change_pct: ``100 * (ratio - 1)`` (None when a is 0 or missing).
        ci_low, ci_high: the interval at ``confidence``, of the ratio B/A when ``ci_of`` is
            ``"ratio"``, of B - A in ``unit`` when ``"difference"``; None when there is none.
        method: how the interval was obtained (or why there is none).
        p_value: two-sided Mann-Whitney U p-value on per-interval values, when computed.
        min_detectable_pct: smallest relative change the data could detect (80% power).
        n_a, n_b: units of data behind the interval (intervals, trials or requests).
        verdict: better, worse, no significant difference, inconclusive, or not tested.
        reason: one sentence explaining the verdict.
    """

    metric: str
    label: str
    unit: str
    better: cs.Better
    a: float | None
    b: float | None
    ratio: float | None
    change_pct: float | None
    ci_low: float | None
    ci_high: float | None
    ci_of: Literal["ratio", "difference"]
    confidence: float
    method: str
    p_value: float | None
    min_detectable_pct: float | None
    n_a: int
    n_b: int
    verdict: cs.Verdict
    reason: str


class ReferenceRow(_Model):
    """B's throughput against the plan's figures (505.6 ops/s baseline, 1000 ops/s target)."""

    label: str
    plan_baseline_ops: float
    plan_target_ops: float
    b_throughput_ops: float
    ratio_to_plan_baseline: float
    b_ci_low: float | None
    b_ci_high: float | None
    target: Literal["met", "missed", "inconclusive"]
    reason: str


class Difference(_Model):
    """One key whose value differs between A and B."""

    key: str
    a: Any
    b: Any


class Comparability(_Model):
    """Whether A and B were measured on the same kind of machine with the same workload."""

    comparable: bool
    environment: list[Difference]
    workload: list[Difference]
    notes: list[Difference]
    warnings: list[str]


class FailOn(_Model):
    """A ``--fail-on METRIC:CHANGE`` gate: the change of B over A that must not be exceeded."""

    text: str
    metric: str
    change_pct: float

    @property
    def threshold_ratio(self) -> float:
        """The threshold as a ratio B/A (``-5%`` is 0.95)."""
        return 1.0 + self.change_pct / 100.0


class GateOutcome(_Model):
    """A ``--fail-on`` gate judged on the interval of its metric.

    Attributes:
        gate: the gate as written; metric: its metric key.
        threshold_ratio: the worst acceptable B/A.
        ci_low, ci_high: the interval of B/A it was judged on (None when there is none).
        verdict: pass, fail or inconclusive.
        reason: one sentence explaining the verdict.
        min_detectable_pct: smallest change the data can detect now (80% power), percent.
        rounds_needed: for an inconclusive gate, about how many trials (rounds) a side would
            decide it at the current noise; None when unknown or not applicable.
        hint: for an inconclusive gate, what would decide it.
    """

    gate: str
    metric: str
    threshold_ratio: float
    ci_low: float | None
    ci_high: float | None
    verdict: cs.GateVerdict
    reason: str
    min_detectable_pct: float | None = None
    rounds_needed: int | None = None
    hint: str = ""


class RunRef(_Model):
    """Which run a side of the comparison is."""

    name: str
    created_at: str
    trials: int
    intervals: int


class SessionInfo(_Model):
    """How a ``compare --run`` session measured A and B (:mod:`harborbench.compare.session`).

    Attributes:
        rounds: interleaved rounds completed (one trial of each side per round).
        first_look: rounds before the gates were first judged (``--rounds``).
        max_rounds: the most rounds allowed (``--max-rounds``).
        budget_s: the wall budget in seconds (``--budget``), or None.
        stop_reason: why the session stopped (``every gate conclusive``, ``max rounds``,
            ``budget``, ``undecidable``, ``rounds done`` or ``interrupted``).
        elapsed_s: wall seconds of the session.
    """

    rounds: int
    first_look: int
    max_rounds: int
    budget_s: float | None
    stop_reason: str
    elapsed_s: float


class Comparison(_Model):
    """The whole comparison of B against A (``comparison.json``).

    ``interrupted`` is True when a ``compare --run`` session was stopped (Ctrl-C, SIGTERM):
    the comparison then covers the complete rounds measured before the stop.
    """

    schema_version: int = COMPARISON_SCHEMA_VERSION
    kind: Literal["comparison"] = "comparison"
    a: RunRef
    b: RunRef
    confidence: float
    seed: int
    n_resamples: int
    rows: list[MetricRow]
    reference: ReferenceRow | None
    comparability: Comparability
    gates: list[GateOutcome]
    session: SessionInfo | None = None
    interrupted: bool = False

    def row(self, metric: str) -> MetricRow | None:
        """The row of ``metric`` (a key of :data:`METRICS`), or None if not reported."""
        return next((r for r in self.rows if r.metric == metric), None)


def tidy_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """The comparison as tidy CSV rows: one per metric, then the plan's reference row.

    Returns:
        dicts with the same keys in the same order (units in the ``unit`` column).
    """
    out: list[dict[str, Any]] = []
    for r in comparison.rows:
        out.append(
            {
                "a_run": comparison.a.name,
                "b_run": comparison.b.name,
                **r.model_dump(exclude={"label"}),
            }
        )
    ref = comparison.reference
    if ref is not None:
        out.append(
            {
                "a_run": "plan_reference",
                "b_run": comparison.b.name,
                "metric": "throughput_vs_plan_baseline",
                "unit": "ops/s",
                "better": "higher",
                "a": ref.plan_baseline_ops,
                "b": ref.b_throughput_ops,
                "ratio": ref.ratio_to_plan_baseline,
                "change_pct": 100.0 * (ref.ratio_to_plan_baseline - 1.0),
                "ci_low": None,
                "ci_high": None,
                "ci_of": "ratio",
                "confidence": comparison.confidence,
                "method": ref.label,
                "p_value": None,
                "min_detectable_pct": None,
                "n_a": 0,
                "n_b": comparison.b.intervals,
                "verdict": f"target {ref.plan_target_ops:g} ops/s {ref.target}",
                "reason": ref.reason,
            }
        )
    return out
