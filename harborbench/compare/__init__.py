"""Compare two runs: the change of every metric, its confidence interval, and a verdict.

``compare_results(a, b)`` is the library behind ``harborbench compare A B`` (issue 5). A is the
baseline, B the candidate; every change is B relative to A. It returns a :class:`Comparison`
(pydantic, JSON-ready) and prints nothing.

Methods (see :mod:`harborbench.compare.bootstrap`): rates (throughput, attempted ops/s, error rate,
CPU efficiency) are ratios of sums over the 1-second intervals of the measurement window, and
their intervals come from a stationary block bootstrap of those intervals (two-stage, trials
then blocks of intervals, when a run has several trials; expanded for few units). Latency
percentiles come from merging resampled per-interval HDR histograms, never from averaging
percentiles. Streaming percentiles, for which a run keeps no per-interval histogram, are shown
but not tested. Warmup rows are excluded everywhere.
A metric with too little data is ``inconclusive`` with the reason, never a made-up interval.

The parts: :mod:`~harborbench.compare.models` (the metrics and the ``comparison.json`` model),
:mod:`~harborbench.compare.rows` (each metric's figures, interval and verdict),
:mod:`~harborbench.compare.bootstrap` (the resampling), :mod:`~harborbench.compare.fail_on`
(``--fail-on`` gates) and :mod:`~harborbench.compare.differences` (comparability of the runs).
This module holds :func:`compare_results`, which wires them, and re-exports their public names.
"""

from __future__ import annotations

from collections.abc import Sequence

from harborbench.compare.differences import (
    NOTE_KEYS,
    WORKLOAD_KEYS,
    comparability,
    thin_data_warnings,
)
from harborbench.compare.fail_on import (
    check_measurable,
    evaluate_gate,
    failure_notes,
    parse_fail_on,
)
from harborbench.compare.models import (
    COMPARISON_SCHEMA_VERSION,
    METRICS,
    Comparability,
    Comparison,
    Difference,
    FailOn,
    GateOutcome,
    MetricRow,
    MetricSpec,
    ReferenceRow,
    RunRef,
    SessionInfo,
    tidy_rows,
)
from harborbench.compare.rows import _Ctx, _Side
from harborbench.result import RunResult

__all__ = [
    "COMPARISON_SCHEMA_VERSION",
    "METRICS",
    "NOTE_KEYS",
    "N_RESAMPLES",
    "WORKLOAD_KEYS",
    "Comparability",
    "Comparison",
    "Difference",
    "FailOn",
    "GateOutcome",
    "MetricRow",
    "MetricSpec",
    "ReferenceRow",
    "RunRef",
    "SessionInfo",
    "comparability",
    "compare_results",
    "evaluate_gate",
    "parse_fail_on",
    "tidy_rows",
]

N_RESAMPLES = 2000


def compare_results(
    a: RunResult,
    b: RunResult,
    *,
    confidence: float = 0.95,
    seed: int = 0,
    n_resamples: int = N_RESAMPLES,
    fail_on: Sequence[FailOn] = (),
    paired: bool = False,
    allow_different_environment: bool = False,
) -> Comparison:
    """Compare run B with baseline run A, metric by metric.

    Args:
        a: the baseline run.
        b: the candidate run.
        confidence: level of every interval, in (0, 1).
        seed: seed of the bootstrap (the same inputs and seed give the same intervals).
        n_resamples: bootstrap resamples per run and metric family.
        fail_on: gates to judge (:func:`parse_fail_on`).
        paired: A's and B's trials are interleaved rounds of one session (``compare --run``,
            rollback-check): round ``i`` of A and of B are resampled together.
        allow_different_environment: judge ``fail_on`` gates even when A and B were measured
            on different machines or software (otherwise such gates are inconclusive).

    Returns:
        The comparison: one :class:`MetricRow` per metric (stream rows only when both runs
        streamed), the plan's reference row, comparability, and the gates' outcomes.

    Raises:
        ValueError: ``confidence`` outside (0, 1) or ``n_resamples`` < 100.
        UserInputError: a ``goodput`` gate and a run without an slo section
            (:func:`~harborbench.compare.fail_on.check_measurable`).
    """
    check_measurable(
        fail_on, [(f"run {r.name!r}", r.profile.get("slo") is not None) for r in (a, b)]
    )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if n_resamples < 100:
        raise ValueError(f"n_resamples must be >= 100, got {n_resamples!r}")
    sa, sb = _Side(a), _Side(b)
    ctx = _Ctx(sa, sb, confidence, seed, n_resamples, paired=paired)
    rows = [*ctx.rate_rows(), *ctx.latency_rows(), *ctx.memory_rows(), *ctx.stream_rows()]
    order = list(METRICS)
    rows.sort(key=lambda r: order.index(r.metric))
    comparison = Comparison(
        schema_version=COMPARISON_SCHEMA_VERSION,
        a=RunRef(
            name=a.name, created_at=a.created_at, trials=len(a.trials), intervals=len(sa.rows)
        ),
        b=RunRef(
            name=b.name, created_at=b.created_at, trials=len(b.trials), intervals=len(sb.rows)
        ),
        confidence=confidence,
        seed=seed,
        n_resamples=n_resamples,
        rows=rows,
        reference=ctx.reference_row(),
        comparability=comparability(a, b),
        gates=[],
    )
    gates = [
        evaluate_gate(comparison, g, allow_different_environment=allow_different_environment)
        for g in fail_on
    ]
    comp = comparison.comparability
    warnings = [*comp.warnings, *thin_data_warnings(a, b), *failure_notes(comparison, fail_on)]
    return comparison.model_copy(
        update={"gates": gates, "comparability": comp.model_copy(update={"warnings": warnings})}
    )
