"""Noise-aware sessions: interleaved rounds of A and B until every gate is decided (issue 13).

``compare --run A.yaml B.yaml`` and ``rollback-check``'s relative gates measure two workloads
in interleaved rounds against one target. A fixed number of rounds is either too few (the gates
stay inconclusive, which blocks a CI job just like a failure) or too many (time wasted on a
clear case). So a session runs its first ``rounds`` rounds, compares, and keeps adding one round
at a time while a ``--fail-on`` gate is inconclusive and more data could decide it, until every
gate is conclusive or a budget (``max_rounds``, ``budget_s``) runs out: :func:`next_step` is the
rule, :func:`run_session` the loop.

Each round runs one trial of each side; the order alternates (A B, then B A, ...) so that a
linear drift of the machine falls equally on both, and the comparison pairs the rounds
(``compare_results(..., paired=True)``). The sequential looks are not corrected for: the
false-failure rate of the whole procedure is what ``benchmarks/gate_calibration.py`` measures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harborbench.compare.models import Comparison, FailOn
from harborbench.result import TrialResult

__all__ = ["SessionBudget", "SessionOutcome", "Step", "next_step", "run_session"]

StopReason = Literal[
    "rounds done", "every gate conclusive", "max rounds", "budget", "undecidable", "interrupted"
]


@dataclass(frozen=True, slots=True)
class SessionBudget:
    """How many rounds a session runs.

    Attributes:
        rounds: rounds before the first look (and all the rounds when there is no gate), >= 1.
        max_rounds: the most rounds in all, >= ``rounds``.
        budget_s: wall seconds the session may take (None: no limit); a round is started only
            when the rounds so far, at their mean duration, say it fits.
    """

    rounds: int = 3
    max_rounds: int = 10
    budget_s: float | None = None

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.max_rounds < self.rounds:
            raise ValueError(f"max_rounds ({self.max_rounds}) must be >= rounds ({self.rounds})")
        if self.budget_s is not None and not self.budget_s > 0:
            raise ValueError(f"budget_s must be positive, got {self.budget_s}")


@dataclass(frozen=True, slots=True)
class Step:
    """What the stopping rule decided after a round: go on, or stop and why."""

    more: bool
    reason: StopReason | Literal["gates inconclusive"]


def decidable(comparison: Comparison) -> list[str]:
    """The inconclusive gates that more rounds could decide.

    Not decidable: a gate inconclusive because A and B come from different environments, or
    whose metric has no interval by nature (a maximum, streaming rows: "not tested").

    Args:
        comparison: the comparison after the latest round.

    Returns:
        The texts of those gates.
    """
    out = []
    for g in comparison.gates:
        if g.verdict != "inconclusive" or comparison.comparability.environment:
            continue
        row = comparison.row(g.metric)
        if row is not None and row.verdict != "not tested":
            out.append(g.gate)
    return out


def next_step(
    comparison: Comparison | None,
    rounds_done: int,
    budget: SessionBudget,
    elapsed_s: float,
) -> Step:
    """The adaptive stopping rule of a session.

    Stop when: the first ``budget.rounds`` rounds are done and there is no gate (``rounds
    done``) or no gate is inconclusive (``every gate conclusive``) or none of the inconclusive
    ones could be decided by more data (``undecidable``); or ``max_rounds`` is reached (``max
    rounds``); or one more round, at the mean duration of the rounds so far, would end after
    ``budget_s`` (``budget``). Otherwise run one more round.

    Args:
        comparison: the comparison of the rounds so far, with its gates (None before a look).
        rounds_done: rounds completed.
        budget: the session's budget.
        elapsed_s: wall seconds since the session started.

    Returns:
        The decision.
    """
    if rounds_done < budget.rounds:
        return Step(True, "gates inconclusive")
    if comparison is None or not comparison.gates:
        return Step(False, "rounds done")
    if all(g.verdict != "inconclusive" for g in comparison.gates):
        return Step(False, "every gate conclusive")
    if not decidable(comparison):
        return Step(False, "undecidable")
    if rounds_done >= budget.max_rounds:
        return Step(False, "max rounds")
    if budget.budget_s is not None and elapsed_s * (rounds_done + 1) / rounds_done > (
        budget.budget_s
    ):
        return Step(False, "budget")
    return Step(True, "gates inconclusive")


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    """What a session measured and why it stopped.

    Attributes:
        trials: A's and B's trials, one per round each (B may have one fewer when interrupted).
        comparison: the comparison of the last look (None when no look was made).
        rounds: rounds completed (both sides measured).
        stop_reason: why it stopped.
        elapsed_s: wall seconds of the session.
    """

    trials: tuple[list[TrialResult], list[TrialResult]]
    comparison: Comparison | None
    rounds: int
    stop_reason: StopReason
    elapsed_s: float


async def run_session(
    run_round_trial: Callable[[int, int], Any],
    compare: Callable[[list[TrialResult], list[TrialResult]], Comparison],
    budget: SessionBudget,
    *,
    gates: Sequence[FailOn] = (),
    stop: asyncio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_round: Callable[[list[TrialResult], list[TrialResult]], None] | None = None,
) -> SessionOutcome:
    """Run interleaved rounds until :func:`next_step` says stop, or ``stop`` is set.

    Args:
        run_round_trial: ``await run_round_trial(side, round)`` runs one trial (side 0 is A, 1
            is B) and returns its :class:`~harborbench.result.TrialResult`.
        compare: builds the comparison (with the gates) from the trials so far.
        budget: rounds, max rounds and wall budget.
        gates: the ``--fail-on`` gates (only whether there are any matters here: ``compare``
            judges them).
        stop: when set (Ctrl-C, SIGTERM) the current trial ends early and the session stops.
        clock: seconds, for the wall budget (injected by tests).
        on_round: called with the trials so far after every trial (to save as you go).

    Returns:
        The outcome; ``stop_reason`` is ``interrupted`` when ``stop`` ended it.
    """
    start = clock()
    trials: tuple[list[TrialResult], list[TrialResult]] = ([], [])
    comparison: Comparison | None = None
    rounds = 0
    while True:
        order = (0, 1) if rounds % 2 == 0 else (1, 0)
        for side in order:
            trial = await run_round_trial(side, rounds)
            trials[side].append(trial)
            if on_round is not None:
                on_round(*trials)
            if trial.interrupted or (stop is not None and stop.is_set()):
                # A round whose second trial still ran whole is complete: it counts (and is
                # judged) even though the stop came during it.
                whole = rounds + (side == order[1] and not trial.interrupted)
                return SessionOutcome(trials, comparison, whole, "interrupted", clock() - start)
        rounds += 1
        if rounds >= budget.rounds and gates:
            comparison = compare(*trials)
        # Without gates nothing is compared before the end (comparison stays None).
        step = next_step(comparison, rounds, budget, clock() - start)
        if not step.more:
            if comparison is None:
                comparison = compare(*trials)
            reason: StopReason = step.reason  # type: ignore[assignment]
            return SessionOutcome(trials, comparison, rounds, reason, clock() - start)
