"""The engine's progress updates: what a caller's progress callback receives.

This is the engine's one type that a display needs; :mod:`harborbench.report.progress` imports
it from here and nothing else from the engine (an import-linter contract, see pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Progress", "ProgressCallback"]


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress update, sent about once per second.

    Attributes:
        trial: 1-based trial number; trials: how many trials in all.
        phase: ``"warmup"`` or ``"measure"``.
        elapsed_s: seconds since the start of the trial; total_s: warmup + window.
        throughput_ops: successful ops/s in the last completed second.
        p95_s: service-time p95 of the last completed second (``None`` if no success).
        successes, failures: measured so far in this trial.
        in_flight: measured requests pending now.
        shards: ``(reporting, total)`` in a run split into shards (``harborbench.scaleout``):
            the figures are the merged ones of the ``reporting`` shards; ``None`` in one process.
    """

    trial: int
    trials: int
    phase: str
    elapsed_s: float
    total_s: float
    throughput_ops: float
    p95_s: float | None
    successes: int
    failures: int
    in_flight: int
    shards: tuple[int, int] | None = None


ProgressCallback = Callable[[Progress], None]
