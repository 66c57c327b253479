"""The sweep of ``harborbench tune``: trial timing, the settings of each point, the phases.

:class:`TrialTiming` splits the budget into trials; :func:`base_knobs`,
:func:`pool_candidates` and :func:`processor_candidates` give the settings of the load,
connection-pool and request-processor phases; :func:`_sweep` runs the phases against an
injected measurement (so that tests drive it with a fake one and a fake clock) and says why it
stopped. The entry point that measures for real is :func:`harborbench.tune.atune`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from harborbench import __version__
from harborbench.engine.runner import redacted_profile
from harborbench.environment import collect_environment
from harborbench.errors import UserInputError
from harborbench.gates import evaluate_gates
from harborbench.harborai.config import resolve_config
from harborbench.metrics.usl import UslFit, fit_usl
from harborbench.profile import load_profile_dict
from harborbench.profile.overrides import duration_text
from harborbench.result import TrialResult
from harborbench.tune.result import (
    TUNE_SCHEMA_VERSION,
    Confirmation,
    Knobs,
    Objective,
    Phase,
    SweepPoint,
    TuneResult,
)
from harborbench.tune.selection import (
    NO_SUCCESS,
    TIE_FRACTION,
    closest_point,
    gate_shortfall,
    judge,
    saturation_note,
    select_point,
)
from harborbench.units import format_duration

if TYPE_CHECKING:
    from harborbench.profile import Profile

#: Throughput must rise by at least this fraction over the best so far to keep doubling N.
RISE_MIN_FRACTION = 0.05
CONCURRENCY_FACTOR = 2
CONCURRENCY_MAX = 1024
#: Gates that get worse with load: when one fails, doubling N further cannot help.
LOAD_GATES = ("p95 latency", "error rate", "success rate")
#: The budget is split in this many trial-sized units (about 13 sweep points + confirmation).
BUDGET_UNITS = 16
#: Seconds of the budget kept for starting the target; per-trial set-up and tear-down.
STARTUP_RESERVE_S = 2.0
TRIAL_OVERHEAD_S = 0.3
MIN_BUDGET_S = 15.0

# --- timing -------------------------------------------------------------------------------


def check_budget(budget_s: float, shown: str | None = None) -> None:
    """Refuse a budget too short for a sweep (under :data:`MIN_BUDGET_S`).

    Args:
        budget_s: the budget, seconds.
        shown: the budget as the user wrote it, for the message (default: ``budget_s`` with
            units, ``0s`` for zero).

    Raises:
        UserInputError: the budget is under :data:`MIN_BUDGET_S`.
    """
    if budget_s >= MIN_BUDGET_S:
        return
    if shown is None:
        shown = format_duration(budget_s) if budget_s > 0 else "0s"
    raise UserInputError(
        f"--budget {shown.strip()} is too short for a sweep; give at least "
        f"{MIN_BUDGET_S:g}s, for example --budget 1m."
    )


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
        check_budget(budget_s)
        unit_s = (budget_s - STARTUP_RESERVE_S) / BUDGET_UNITS
        warmup_s = min(max(0.25 * unit_s, 0.5), 5.0)
        window_s = min(max(unit_s - warmup_s - TRIAL_OVERHEAD_S, 1.0), 30.0)
        return cls(round(warmup_s, 3), round(window_s, 3), round(2 * window_s, 3))


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
    client = profile.client.model_copy(update={"max_concurrent_requests": concurrency})
    # The target is the run's, not the client section's: a placeholder resolves the decisions.
    resolved = resolve_config(client.model_copy(update={"base_url": "http://127.0.0.1/v1"}))
    limits = resolved.limits
    pool = max(limits.connection_pool_size, concurrency)
    if not resolved.request_processor.active:
        return Knobs(concurrency, pool)
    p = client.request_processor
    return Knobs(concurrency, pool, max(limits.workers, concurrency), p.max_batch_size,
                 p.batch_window_s)  # fmt: skip


def trial_profile(profile: Profile, knobs: Knobs, warmup_s: float, window_s: float) -> Profile:
    """The profile of one point: its client config with ``knobs``, closed loop at N, 1 trial."""
    data = profile.model_dump(mode="json")
    data["client"] = knobs.apply(profile.client).model_dump(mode="json", exclude_unset=True)
    data["load"] = {"concurrency": knobs.concurrency}
    data["warmup"] = duration_text(warmup_s)
    data["duration"] = duration_text(window_s)
    data["repeat"] = 1
    return load_profile_dict(data, source=f"tune point {knobs.label()}")


def recommended_config(profile: Profile, knobs: Knobs) -> dict[str, Any]:
    """The client config to ship: the profile's ``client`` with ``knobs``, and ``timeout_s``
    (the profile's ``request.timeout``, which the sweep measured with).

    It holds only client keys, no target and no key: ``create_fast_client(config,
    base_url=...)`` accepts it once a target is added (README, "Tuning").
    """
    config = knobs.apply(profile.client)
    config = config.model_copy(update={"timeout_s": profile.request.timeout})
    return config.model_dump(mode="json", exclude_unset=True)


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
        objective: Objective = "throughput",
    ) -> None:
        self.profile = profile
        self.objective: Objective = objective
        self.name = name
        self.budget_s = budget_s
        self.timing = timing
        self.clock = clock
        self.started = clock()
        self.thresholds = profile.gates
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
        meets, missed, unsure = judge(gates)
        if trial.successes == 0:  # gates that judge neither throughput nor successes can pass
            meets, missed = False, [*missed, NO_SUCCESS]
        return SweepPoint(
            index=index, phase=phase, concurrency=knobs.concurrency,
            max_concurrent_requests=knobs.concurrency,
            connection_pool_size=knobs.connection_pool_size, workers=knobs.workers,
            max_batch_size=knobs.max_batch_size, batch_window_s=knobs.batch_window_s,
            window_s=trial.window_s, successes=trial.successes, failures=trial.failures,
            in_flight_at_end=trial.in_flight_at_end, throughput_ops=trial.throughput_ops,
            attempted_ops=trial.attempted_ops, error_rate=trial.error_rate,
            service_time=trial.service_time, goodput_ops=trial.goodput_ops,
            cpu_percent_mean=trial.cpu.cpu_percent_mean,
            ops_per_cpu_second=trial.cpu.ops_per_cpu_second,
            generator_saturated=trial.health.generator_saturated,
            warnings=list(trial.health.warnings), gates=gates, meets_gates=meets,
            missed_gates=missed, unsure_gates=unsure,
            shortfall=gate_shortfall(trial, self.thresholds),
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
        scores = [p.score(self.objective) for p in self.points]
        chosen = select_point(scores)
        passed_over = saturation_note(scores)
        recommended = None
        if final and chosen is not None:
            recommended = recommended_config(self.profile, self.points[chosen].knobs())
        return TuneResult(
            schema_version=TUNE_SCHEMA_VERSION,
            name=self.name,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            harborbench_version=__version__,
            profile=redacted_profile(self.profile),  # no header value in a report
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
            notes=[*self.notes, *([passed_over] if passed_over else [])],
            confirmation=confirmation,
            recommended_config=recommended,
            interrupted=interrupted,
            objective=self.objective,
        )


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
        value = got.value(sweep.objective)
        # A rise of 5% of nothing is no rise: a flat zero (no request meets the slo) stops too.
        rose = value > best_ops and value >= (1.0 + RISE_MIN_FRACTION) * best_ops
        if n > 1 and not rose:
            reason = f"{sweep.objective} stopped rising at N={n} (< +{RISE_MIN_FRACTION:.0%})"
            break
        best_ops = max(best_ops, value)
        n *= CONCURRENCY_FACTOR
    phases: tuple[tuple[Phase, Callable[[Knobs], list[Knobs]]], ...] = (
        ("pool", pool_candidates),
        ("processor", processor_candidates),
    )
    for phase, candidates in phases:
        current = select_point([p.score(sweep.objective) for p in sweep.points])
        if current is None:  # smaller resources cannot rescue a point that misses the gates
            if any(p.meets_gates for p in sweep.points):  # all of them saturated
                return (
                    f"{reason}; no point met the gates with the load generator unsaturated, so "
                    "no smaller settings were tried"
                )
            return f"{reason}; no point met the gates, so no smaller settings were tried"
        for knobs in candidates(sweep.points[current].knobs()):
            got = await one(knobs, phase)
            if got == "interrupted":
                return got
            if isinstance(got, str):
                return f"{reason}; the budget ran out in the {phase} phase"
    return reason
