"""``harborbench tune``: sweep the client's settings within a time budget and recommend a config.

The sweep (issue 7), against one target opened once by a
:class:`~harborbench.engine.session.MeasurementSession`, each point a short trial with warmup:

1. **Load**: closed-loop concurrency ``N`` = 1, 2, 4, ... (geometric, factor 2) with
   ``max_concurrent_requests = N``, until throughput stops rising (less than
   :data:`RISE_MIN_FRACTION` over the best so far), a load-sensitive gate (p95, error rate,
   success rate) breaks, or the budget runs out.
   Pool size and processor workers are at least N here, so neither caps the curve.
2. **Connection pool**: smaller ``connection_pool_size`` (N/2, N/4) at the best point.
3. **Request processor** (optimized mode only): fewer workers with micro-batching
   (``workers``, ``max_batch_size``, ``batch_window_s``) around the best point.

Phases 2 and 3 save resources around the best point that meets every gate; when no load point
meets them, the sweep ends after phase 1.

The load curve is modelled with the Universal Scalability Law
(:func:`harborbench.metrics.usl.fit_usl`). The choice
(:func:`select_point`) is the highest throughput among points meeting every gate whose
measurement is trustworthy (the load generator not saturated); points within
:data:`TIE_FRACTION` of it count as tied and the one using the fewest resources wins. A
saturated point passed over is named in a note (:func:`saturation_note`); when every point
meeting the gates is saturated, nothing is recommended (``tune`` exits 3, inconclusive). A
final, longer trial at the chosen settings confirms it. The library never prints; the CLI
renders.

The parts: :mod:`~harborbench.tune.sweep` (timing, candidates, the phases),
:mod:`~harborbench.tune.selection` (the choice rule) and :mod:`~harborbench.tune.result` (the
sweep's records and result file). This module holds :func:`atune`, which measures each point for
real, and re-exports their public names.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from harborbench.engine.session import MeasurementSession
from harborbench.errors import AllRequestsFailedError, TargetUnreachableError, UserInputError
from harborbench.result import TrialResult
from harborbench.tune.result import (
    TUNE_SCHEMA_VERSION,
    Confirmation,
    Knobs,
    Objective,
    Phase,
    PointScore,
    SweepPoint,
    TuneResult,
)
from harborbench.tune.selection import (
    TIE_FRACTION,
    UNJUDGED_GATES,
    closest_point,
    gate_shortfall,
    judge,
    saturation_note,
    select_point,
)
from harborbench.tune.sweep import (
    BUDGET_UNITS,
    CONCURRENCY_FACTOR,
    CONCURRENCY_MAX,
    LOAD_GATES,
    MIN_BUDGET_S,
    RISE_MIN_FRACTION,
    STARTUP_RESERVE_S,
    TRIAL_OVERHEAD_S,
    PointCallback,
    TrialTiming,
    _Sweep,
    _sweep,
    base_knobs,
    pool_candidates,
    processor_candidates,
    recommended_config,
    trial_profile,
)

if TYPE_CHECKING:
    from harborbench.profile import Profile

__all__ = [
    "BUDGET_UNITS",
    "CONCURRENCY_FACTOR",
    "CONCURRENCY_MAX",
    "CONFIRM_TOLERANCE",
    "LOAD_GATES",
    "MIN_BUDGET_S",
    "RISE_MIN_FRACTION",
    "STARTUP_RESERVE_S",
    "TIE_FRACTION",
    "TRIAL_OVERHEAD_S",
    "TUNE_SCHEMA_VERSION",
    "UNJUDGED_GATES",
    "Confirmation",
    "Knobs",
    "Phase",
    "PointCallback",
    "PointScore",
    "SweepPoint",
    "TrialTiming",
    "TuneResult",
    "atune",
    "base_knobs",
    "closest_point",
    "gate_shortfall",
    "judge",
    "pool_candidates",
    "processor_candidates",
    "recommended_config",
    "saturation_note",
    "select_point",
    "trial_profile",
]

#: A confirmation further than this fraction from the sweep's figure gets a note.
CONFIRM_TOLERANCE = 0.2


def _check_first(trial: TrialResult, base_url: str) -> None:
    """Raise when not one request of the first point succeeded (the target or client is down)."""
    if trial.successes or trial.interrupted:
        return
    kinds = ", ".join(f"{k} x{n}" for k, n in trial.failures_by_kind.items()) or "none completed"
    first = next(iter(trial.failure_examples.values()), "no request completed in the window")
    msg = f"every request of the first sweep point failed ({kinds}); first error: {first}"
    if trial.failures_by_kind and set(trial.failures_by_kind) <= {"connection"}:
        raise TargetUnreachableError(msg, hint=f"Is the target at {base_url} up?")
    raise AllRequestsFailedError(msg)


async def atune(
    profile: Profile,
    *,
    budget_s: float,
    name: str | None = None,
    on_point: PointCallback | None = None,
    stop: asyncio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    objective: Objective = "throughput",
) -> TuneResult:
    """Sweep the client's settings for a profile's workload and confirm the best point.

    Args:
        profile: a validated profile; its ``load`` is replaced by closed-loop concurrency.
        budget_s: wall-clock seconds for the whole sweep, confirmation included (>= 15).
        name: the run name (default ``<profile name>-tune``).
        on_point: called after each measured point with the point and the result so far.
        stop: set it to end early; the result is then marked interrupted (no confirmation).
        clock: monotonic seconds, for the budget.
        objective: what the sweep maximizes: ``"throughput"`` (successful ops/s) or
            ``"goodput"`` (ops/s meeting every objective of the profile's ``slo``).

    Returns:
        The sweep: points, USL fit, chosen (or closest) point, confirmation, recommended config
        (``None`` when no point met the gates).

    Raises:
        UserInputError: a budget under :data:`MIN_BUDGET_S`, or ``objective="goodput"`` with a
            profile without ``slo``.
        TargetUnreachableError, AllRequestsFailedError: nothing succeeded at the first point.
        ProfileError: an invalid client section.
    """
    timing = TrialTiming.from_budget(budget_s)
    if objective == "goodput" and profile.slo is None:
        raise UserInputError(
            "--objective goodput needs per-request objectives: the profile has no slo section.",
            hint="Add for example slo: {latency_max: 200ms} (or --set 'slo={latency_max: 200ms}').",
        )
    sweep = _Sweep(profile, name or f"{profile.name}-tune", budget_s, timing, clock, objective)
    if profile.load.kind != "closed":
        sweep.notes.append(
            f"the profile's {profile.load.kind} load is replaced by closed-loop concurrency for "
            "the sweep; p95 is judged on service time"
        )
    if os.environ.get("HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION"):
        sweep.notes.append("HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION is set in the environment")
    session = MeasurementSession(profile, environment=sweep.environment)

    async def measure(knobs: Knobs, phase: Phase, window_s: float) -> SweepPoint | None:
        variant = trial_profile(profile, knobs, timing.warmup_s, window_s)
        trial = await session.trial(variant, index=len(sweep.points), stop=stop)
        if not sweep.points:
            _check_first(trial, session.target.base_url)
        if trial.interrupted:
            return None
        return sweep.point(trial, knobs, phase, len(sweep.points))

    async with session:
        stop_reason = await _sweep(sweep, measure, on_point)
        if stop_reason == "interrupted":
            return sweep.result(stop_reason, interrupted=True)
        chosen = select_point([p.score(objective) for p in sweep.points])
        if chosen is None:
            return sweep.result(stop_reason, final=True)
        best = sweep.points[chosen]
        confirm = await measure(best.knobs(), best.phase, timing.confirm_window_s)
        if confirm is None:
            return sweep.result("interrupted", interrupted=True)
        predicted = sweep.fit().predict(best.concurrency)
        confirmation = Confirmation(
            point=confirm.model_copy(update={"index": -1}),
            sweep_throughput_ops=best.throughput_ops,
            usl_predicted_ops=predicted,
            ratio_to_sweep=confirm.throughput_ops / best.throughput_ops
            if best.throughput_ops > 0
            else None,
        )
        ratio = confirmation.ratio_to_sweep
        if ratio is not None and abs(ratio - 1.0) > CONFIRM_TOLERANCE:
            sweep.notes.append(
                f"the confirmation measured x{ratio:.2f} the sweep's throughput at these "
                "settings: short trials on this machine are noisy, or the point sits near a "
                "cliff; a larger --budget gives longer trials"
            )
        if confirm.generator_saturated:  # the chosen sweep point never is (select_point)
            sweep.notes.append(
                "the load generator was saturated during the confirmation: its figures are the "
                "limit of this machine's harness as much as the client's, so it confirms the "
                "recommendation (from an unsaturated sweep point) only weakly; run it again "
                "with nothing else on this machine"
            )
        return sweep.result(stop_reason, confirmation=confirmation, final=True)
