"""``harborbench tune``: sweep the client's settings within a time budget and recommend a config.

The sweep (issue 7), against one target opened once (:func:`harborbench.engine.runner.open_target`),
each point a short trial with warmup through :func:`~harborbench.engine.runner.run_trial`:

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
(:func:`select_point`) is the highest throughput among points meeting every gate; points within
:data:`TIE_FRACTION` of it count as tied and the one using the fewest resources wins. A final,
longer trial at the chosen settings confirms it. The library never prints; the CLI renders.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from harborbench import __version__
from harborbench.engine.runner import gate_thresholds, open_target, plan_from_profile, run_trial
from harborbench.environment import collect_environment
from harborbench.errors import AllRequestsFailedError, TargetUnreachableError, UserInputError
from harborbench.gates import GateThresholds, evaluate_gates
from harborbench.harborai.config import resolve_config
from harborbench.metrics.usl import UslFit, fit_usl
from harborbench.profile import load_profile_dict
from harborbench.profile.overrides import duration_text
from harborbench.result import GateResult, TrialResult
from harborbench.tune.result import (
    TUNE_SCHEMA_VERSION,
    Confirmation,
    Knobs,
    Phase,
    PointScore,
    SweepPoint,
    TuneResult,
)

if TYPE_CHECKING:
    from harborbench.profile import Profile

#: Throughput must rise by at least this fraction over the best so far to keep doubling N.
RISE_MIN_FRACTION = 0.05
#: Throughputs within this fraction of the best count as tied (within run-to-run noise).
TIE_FRACTION = 0.02
#: A confirmation further than this fraction from the sweep's figure gets a note.
CONFIRM_TOLERANCE = 0.2
CONCURRENCY_FACTOR = 2
CONCURRENCY_MAX = 1024
#: Gates that get worse with load: when one fails, doubling N further cannot help.
LOAD_GATES = ("p95 latency", "error rate", "success rate")
#: Gates a short trial cannot judge (the slope needs >= 5 minutes): not used to choose.
UNJUDGED_GATES = ("memory slope",)
#: The budget is split in this many trial-sized units (about 13 sweep points + confirmation).
BUDGET_UNITS = 16
#: Seconds of the budget kept for starting the target; per-trial set-up and tear-down.
STARTUP_RESERVE_S = 2.0
TRIAL_OVERHEAD_S = 0.3
MIN_BUDGET_S = 15.0

# --- timing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrialTiming:
    """Warmup and window of the sweep's trials and of the confirmation, seconds."""

    warmup_s: float
    window_s: float
    confirm_window_s: float

    @classmethod
    def from_budget(cls, budget_s: float) -> TrialTiming:
        """Split a budget: ``unit = (budget - 2 s) / 16``; warmup a quarter of it (0.5-5 s),
        window the rest (1-30 s), the confirmation window twice the sweep's.

        Args:
            budget_s: seconds for the whole sweep, confirmation included.

        Returns:
            The timing, seconds rounded to the millisecond.

        Raises:
            UserInputError: a budget under :data:`MIN_BUDGET_S`.
        """
        if budget_s < MIN_BUDGET_S:
            raise UserInputError(
                f"--budget {duration_text(budget_s)} is too short for a sweep; give at least "
                f"{MIN_BUDGET_S:g}s, for example --budget 1m."
            )
        unit_s = (budget_s - STARTUP_RESERVE_S) / BUDGET_UNITS
        warmup_s = min(max(0.25 * unit_s, 0.5), 5.0)
        window_s = min(max(unit_s - warmup_s - TRIAL_OVERHEAD_S, 1.0), 30.0)
        return cls(round(warmup_s, 3), round(window_s, 3), round(2 * window_s, 3))


# --- selection --------------------------------------------------------------------------------


def select_point(scores: Sequence[PointScore], tie_fraction: float = TIE_FRACTION) -> int | None:
    """Index of the recommended point, or ``None`` if no point meets the gates.

    Rule: among points meeting every gate, those with throughput >= (1 - ``tie_fraction``) x
    the best are tied; the tie goes to the smallest :meth:`Knobs.resource_key` (then the higher
    throughput, then the earlier point).

    Args:
        scores: the points, in sweep order.
        tie_fraction: relative throughput difference treated as noise (0.02 = 2%).

    Returns:
        The index into ``scores``, or ``None``.
    """
    ok = [i for i, s in enumerate(scores) if s.meets_gates]
    if not ok:
        return None
    best = max(scores[i].throughput_ops for i in ok)
    tied = [i for i in ok if scores[i].throughput_ops >= (1.0 - tie_fraction) * best]
    return min(tied, key=lambda i: (scores[i].knobs.resource_key(), -scores[i].throughput_ops))


def closest_point(scores: Sequence[PointScore]) -> int | None:
    """Index of the point with the smallest total gate shortfall (ties: higher throughput).

    Args:
        scores: the points, with :func:`gate_shortfall` in ``shortfall``.

    Returns:
        The index into ``scores``, or ``None`` when there is no point.
    """
    if not scores:
        return None
    return min(range(len(scores)), key=lambda i: (scores[i].shortfall, -scores[i].throughput_ops))


def gate_shortfall(trial: TrialResult, gates: GateThresholds) -> float:
    """Sum over gates of the relative amount by which ``trial`` misses each (0: meets all).

    Each term is ``max(gap, 0) / |limit|``: throughput 800 against a 1000 ops/s minimum adds
    0.2, p95 300 ms against 200 ms adds 0.5; error rates are divided by at least 0.01 and
    memory growth by at least 1%, so a zero limit stays finite. A figure that could not be
    measured counts 1. Used to name the closest point when nothing meets the gates.

    Args:
        trial: the point's figures.
        gates: the profile's thresholds (the memory slope is not used).

    Returns:
        The shortfall, >= 0, dimensionless.
    """

    def miss(value: float | None, limit: float, above: bool, floor: float = 1e-9) -> float:
        if value is None:
            return 1.0
        gap = (value - limit) if above else (limit - value)
        return max(gap, 0.0) / max(abs(limit), floor)

    total = 0.0
    completed = trial.successes + trial.failures
    if gates.throughput_min is not None:
        total += miss(trial.throughput_ops, gates.throughput_min, above=False)
    if gates.p95_max is not None:
        total += miss(trial.service_time.p95_s, gates.p95_max, above=True)
    if gates.error_rate_max is not None:
        total += miss(trial.error_rate, gates.error_rate_max, above=True, floor=0.01)
    if gates.success_rate_min is not None:
        ok = trial.successes / completed if completed else None
        total += miss(ok, gates.success_rate_min, above=False)
    if gates.memory_growth_max_pct is not None:
        total += miss(trial.memory.growth_pct, gates.memory_growth_max_pct, above=True, floor=1.0)
    return total


def judge(gates: list[GateResult]) -> tuple[bool, list[str]]:
    """Whether a sweep point meets its gates, and the names of those it does not meet.

    A gate passes only with a ``pass`` verdict; ``inconclusive`` does not meet it, except the
    gates of :data:`UNJUDGED_GATES`, which a short trial can never judge.

    Args:
        gates: the point's gates (:func:`harborbench.gates.evaluate_gates`).

    Returns:
        ``(meets, missed gate names)``.
    """
    missed = [g.name for g in gates if g.verdict != "pass" and g.name not in UNJUDGED_GATES]
    return not missed, missed


# --- the sweep --------------------------------------------------------------------------------

PointCallback = Callable[[SweepPoint, TuneResult], object]


def base_knobs(profile: Profile, concurrency: int) -> Knobs:
    """The settings of a load-phase point: the profile's client (defaults resolved) with no
    resource below the offered load.

    ``max_concurrent_requests`` is N, ``connection_pool_size`` and the processor's ``workers``
    are at least N (so that neither caps the load curve; the later phases try smaller ones),
    batching is the profile's.

    Args:
        profile: the profile whose ``client`` section is the starting point.
        concurrency: N, closed-loop workers.

    Returns:
        The knobs; ``workers`` and batching ``None`` when the request processor is not active
        (traditional mode).
    """
    cfg = resolve_config(
        {**profile.client, "max_concurrent_requests": concurrency}, base_url="http://127.0.0.1/v1"
    )
    pool = max(cfg.connection_pool_size, concurrency)
    if not cfg.request_processor.active:
        return Knobs(concurrency, pool)
    p = cfg.processor
    return Knobs(concurrency, pool, max(p.workers, concurrency), p.max_batch_size,
                 p.batch_window_s)  # fmt: skip


def trial_profile(profile: Profile, knobs: Knobs, warmup_s: float, window_s: float) -> Profile:
    """The profile of one point: its client config with ``knobs``, closed loop at N, 1 trial."""
    data = profile.model_dump(mode="json")
    data["client"] = knobs.apply(profile.client)
    data["load"] = {"concurrency": knobs.concurrency}
    data["warmup"] = duration_text(warmup_s)
    data["duration"] = duration_text(window_s)
    data["repeat"] = 1
    return load_profile_dict(data, source=f"tune point {knobs.label()}")


def recommended_config(profile: Profile, knobs: Knobs) -> dict[str, Any]:
    """The client config to ship: the profile's ``client`` with ``knobs`` and its timeout.

    It holds only client keys (no ``base_url``, no key): ``create_fast_client(config,
    base_url=...)`` accepts it as is.
    """
    config = knobs.apply(profile.client)
    config.setdefault("timeout_s", profile.request.timeout)
    return config


def processor_candidates(base: Knobs) -> list[Knobs]:
    """Fewer workers with micro-batching around ``base``: N/2 x 2, N/4 x 4, N/4 x 4 in 1 ms."""
    if base.workers is None:
        return []
    n = base.concurrency
    out = [
        replace(base, workers=max(1, n // 2), max_batch_size=2, batch_window_s=0.0),
        replace(base, workers=max(1, n // 4), max_batch_size=4, batch_window_s=0.0),
        replace(base, workers=max(1, n // 4), max_batch_size=4, batch_window_s=0.001),
    ]
    return [k for i, k in enumerate(out) if k != base and k not in out[:i]]


def pool_candidates(base: Knobs) -> list[Knobs]:
    """Smaller ``connection_pool_size`` around ``base``: N (if the base's is larger), N/2, N/4;
    at most two."""
    n = base.concurrency
    sizes = [s for s in dict.fromkeys((n, n // 2, n // 4)) if 1 <= s < base.connection_pool_size]
    return [replace(base, connection_pool_size=s) for s in sizes[:2]]


class _Sweep:
    """State of one sweep: the points so far and the budget clock."""

    def __init__(
        self,
        profile: Profile,
        name: str,
        budget_s: float,
        timing: TrialTiming,
        clock: Callable[[], float],
    ) -> None:
        self.profile = profile
        self.name = name
        self.budget_s = budget_s
        self.timing = timing
        self.clock = clock
        self.started = clock()
        self.thresholds = gate_thresholds(profile)
        self.points: list[SweepPoint] = []
        self.notes: list[str] = []
        self.environment = collect_environment()
        self.last_cost_s = timing.warmup_s + timing.window_s + 2 * TRIAL_OVERHEAD_S

    def affordable(self) -> bool:
        """Whether one more point fits in the budget with the confirmation still ahead."""
        confirm_s = self.timing.warmup_s + self.timing.confirm_window_s + TRIAL_OVERHEAD_S
        remaining = self.budget_s - (self.clock() - self.started)
        return remaining >= self.last_cost_s + confirm_s

    def point(self, trial: TrialResult, knobs: Knobs, phase: Phase, index: int) -> SweepPoint:
        gates = evaluate_gates(trial, self.thresholds)
        meets, missed = judge(gates)
        return SweepPoint(
            index=index, phase=phase, concurrency=knobs.concurrency,
            max_concurrent_requests=knobs.concurrency,
            connection_pool_size=knobs.connection_pool_size, workers=knobs.workers,
            max_batch_size=knobs.max_batch_size, batch_window_s=knobs.batch_window_s,
            window_s=trial.window_s, successes=trial.successes, failures=trial.failures,
            in_flight_at_end=trial.in_flight_at_end, throughput_ops=trial.throughput_ops,
            attempted_ops=trial.attempted_ops, error_rate=trial.error_rate,
            service_time=trial.service_time, cpu_percent_mean=trial.cpu.cpu_percent_mean,
            ops_per_cpu_second=trial.cpu.ops_per_cpu_second,
            generator_saturated=trial.health.generator_saturated,
            warnings=list(trial.health.warnings), gates=gates, meets_gates=meets,
            missed_gates=missed, shortfall=gate_shortfall(trial, self.thresholds),
        )  # fmt: skip

    def fit(self) -> UslFit:
        load = [p for p in self.points if p.phase == "concurrency"]
        return fit_usl([p.concurrency for p in load], [p.throughput_ops for p in load])

    def result(
        self,
        stop_reason: str,
        *,
        confirmation: Confirmation | None = None,
        interrupted: bool = False,
        final: bool = False,
    ) -> TuneResult:
        scores = [p.score() for p in self.points]
        chosen = select_point(scores)
        recommended = None
        if final and chosen is not None:
            recommended = recommended_config(self.profile, self.points[chosen].knobs())
        return TuneResult(
            schema_version=TUNE_SCHEMA_VERSION,
            name=self.name,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            harborbench_version=__version__,
            profile=self.profile.model_dump(mode="json"),
            environment=self.environment,
            budget_s=self.budget_s,
            elapsed_s=round(self.clock() - self.started, 3),
            trial_warmup_s=self.timing.warmup_s,
            trial_window_s=self.timing.window_s,
            rise_min_fraction=RISE_MIN_FRACTION,
            tie_fraction=TIE_FRACTION,
            points=list(self.points),
            fit=self.fit(),
            chosen=chosen,
            closest=closest_point(scores) if chosen is None else None,
            stop_reason=stop_reason,
            notes=list(self.notes),
            confirmation=confirmation,
            recommended_config=recommended,
            interrupted=interrupted,
        )


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
) -> TuneResult:
    """Sweep the client's settings for a profile's workload and confirm the best point.

    Args:
        profile: a validated profile; its ``load`` is replaced by closed-loop concurrency.
        budget_s: wall-clock seconds for the whole sweep, confirmation included (>= 15).
        name: the run name (default ``<profile name>-tune``).
        on_point: called after each measured point with the point and the result so far.
        stop: set it to end early; the result is then marked interrupted (no confirmation).
        clock: monotonic seconds, for the budget.

    Returns:
        The sweep: points, USL fit, chosen (or closest) point, confirmation, recommended config
        (``None`` when no point met the gates).

    Raises:
        UserInputError: a budget under :data:`MIN_BUDGET_S`.
        TargetUnreachableError, AllRequestsFailedError: nothing succeeded at the first point.
        ProfileError: an invalid client section.
    """
    timing = TrialTiming.from_budget(budget_s)
    sweep = _Sweep(profile, name or f"{profile.name}-tune", budget_s, timing, clock)
    if profile.load.kind != "closed":
        sweep.notes.append(
            f"the profile's {profile.load.kind} load is replaced by closed-loop concurrency for "
            "the sweep; p95 is judged on service time"
        )
    if os.environ.get("HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION"):
        sweep.notes.append("HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION is set in the environment")
    with open_target(profile) as (base_url, api_key, server):

        async def measure(knobs: Knobs, phase: Phase, window_s: float) -> SweepPoint | None:
            variant = trial_profile(profile, knobs, timing.warmup_s, window_s)
            trial = await run_trial(
                variant, plan_from_profile(variant), base_url, api_key,
                index=len(sweep.points), server=server, stop=stop,
            )  # fmt: skip
            if not sweep.points:
                _check_first(trial, base_url)
            if trial.interrupted:
                return None
            return sweep.point(trial, knobs, phase, len(sweep.points))

        stop_reason = await _sweep(sweep, measure, on_point)
        if stop_reason == "interrupted":
            return sweep.result(stop_reason, interrupted=True)
        chosen = select_point([p.score() for p in sweep.points])
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
        return sweep.result(stop_reason, confirmation=confirmation, final=True)


Measure = Callable[[Knobs, Phase, float], Any]


async def _sweep(sweep: _Sweep, measure: Measure, on_point: PointCallback | None) -> str:
    """Run the three phases; return why the sweep stopped."""

    async def one(knobs: Knobs, phase: Phase) -> SweepPoint | str:
        if not sweep.affordable():
            return "budget"
        started = sweep.clock()
        point: SweepPoint | None = await measure(knobs, phase, sweep.timing.window_s)
        sweep.last_cost_s = sweep.clock() - started
        if point is None:
            return "interrupted"
        sweep.points.append(point)
        if on_point is not None:
            on_point(point, sweep.result("running"))
        return point

    reason = f"concurrency reached the sweep's maximum ({CONCURRENCY_MAX})"
    n, best_ops = 1, 0.0
    while n <= CONCURRENCY_MAX:
        got = await one(base_knobs(sweep.profile, n), "concurrency")
        if got == "interrupted":
            return got
        if isinstance(got, str):
            return f"the budget ran out before N={n}"
        broken = [g.name for g in got.gates if g.verdict == "fail" and g.name in LOAD_GATES]
        if broken:
            reason = f"{', '.join(broken)} gate broke at N={n}"
            break
        if n > 1 and got.throughput_ops < (1.0 + RISE_MIN_FRACTION) * best_ops:
            reason = f"throughput stopped rising at N={n} (< +{RISE_MIN_FRACTION:.0%})"
            break
        best_ops = max(best_ops, got.throughput_ops)
        n *= CONCURRENCY_FACTOR
    phases: tuple[tuple[Phase, Callable[[Knobs], list[Knobs]]], ...] = (
        ("pool", pool_candidates),
        ("processor", processor_candidates),
    )
    for phase, candidates in phases:
        current = select_point([p.score() for p in sweep.points])
        if current is None:  # smaller resources cannot rescue a point that misses the gates
            return f"{reason}; no point met the gates, so no smaller settings were tried"
        for knobs in candidates(sweep.points[current].knobs()):
            got = await one(knobs, phase)
            if got == "interrupted":
                return got
            if isinstance(got, str):
                return f"{reason}; the budget ran out in the {phase} phase"
    return reason
