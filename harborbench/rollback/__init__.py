"""Rollback check (issue 6): every rollback path of the plan on a smoke workload, then the gates.

``arollback_check(options)`` is the library behind ``harborbench rollback-check``. It starts one
built-in mock server (in its own process) and then:

1. runs each of the nine rollback paths of the plan (:data:`ROLLBACK_PATHS`, written by hand,
   with the ``optimization_status()`` each one must produce) on a short closed-loop smoke
   workload through a fresh client, and checks that the status matches the table, that every
   request succeeds with the same content as the reference path, that the server never saw
   more requests in flight than the path's ``max_concurrent_requests``, and that closing the
   client leaves no asyncio task, client thread or socket behind;
2. measures the traditional baseline and the optimized mode in interleaved rounds on the same
   workload, judges the plan's absolute gates (:func:`harborbench.gates.evaluate_gates`) on the
   optimized rounds and the relative gates (throughput ratio, CPU efficiency gain) with the
   bootstrap intervals of :func:`harborbench.compare.compare_results`, so that noise larger
   than the margin gives ``inconclusive``, not a false failure.

It prints nothing: progress goes to a callback and the outcome is a :class:`RollbackReport`.
The parts: :mod:`harborbench.rollback.matrix` (the table of paths, the report model),
:mod:`harborbench.rollback.smoke` (one path's smoke check), :mod:`harborbench.rollback.gates`
(thresholds, the ``--gates`` file, the measurement). This module wires them and re-exports
their public names.

Example::

    from harborbench.rollback import RollbackOptions, rollback_check

    report = rollback_check(RollbackOptions(skip_gates=True))
    print(report.verdict, [r.name for r in report.rows if r.verdict != "pass"])
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harborbench.rollback.gates import GateSettings, GateWorkload, measure_gates
from harborbench.rollback.matrix import (
    COMPONENTS,
    OPTIMIZED_CONFIG,
    ROLLBACK_PATHS,
    CheckRow,
    Expected,
    RollbackPath,
    RollbackReport,
    check_status,
    new_report,
    overall,
    path_environment,
)
from harborbench.rollback.smoke import (
    ClientFactory,
    Fingerprint,
    RollbackClient,
    SmokeSettings,
    default_factory,
    mock_settings,
    smoke_path,
)

__all__ = [
    "COMPONENTS",
    "OPTIMIZED_CONFIG",
    "QUICK_SMOKE",
    "QUICK_WORKLOAD",
    "ROLLBACK_PATHS",
    "CheckRow",
    "ClientFactory",
    "Expected",
    "GateSettings",
    "GateWorkload",
    "RollbackClient",
    "RollbackOptions",
    "RollbackPath",
    "RollbackReport",
    "SmokeSettings",
    "arollback_check",
    "check_status",
    "mock_settings",
    "options_for",
    "overall",
    "path_environment",
    "rollback_check",
    "smoke_path",
]

# --- the whole check ----------------------------------------------------------------------

#: ``--quick``: half a second of smoke load per path, two rounds of 5 s windows for the gates
#: (2 x 5 one-second intervals per mode: the least the relative gates' intervals accept).
QUICK_SMOKE = SmokeSettings(duration_s=0.5)
QUICK_WORKLOAD = GateWorkload(rounds=2, warmup_s=0.5, window_s=5.0)


@dataclass(frozen=True, slots=True)
class RollbackOptions:
    """How to run the check.

    Attributes:
        quick: recorded in the report; :func:`options_for` sets the shorter loads it implies.
        skip_gates: check only the rollback paths.
        smoke: the smoke workload of each path.
        gates: the thresholds in force.
        workload: the gates' workload (rounds, warmup and window seconds, concurrency).
    """

    quick: bool = False
    skip_gates: bool = False
    smoke: SmokeSettings = field(default_factory=SmokeSettings)
    gates: GateSettings = field(default_factory=GateSettings)
    workload: GateWorkload = field(default_factory=GateWorkload)


def options_for(
    *, quick: bool = False, skip_gates: bool = False, gates: GateSettings | None = None
) -> RollbackOptions:
    """The options of the command line: default or ``--quick`` loads, and the thresholds.

    Args:
        quick: use :data:`QUICK_SMOKE` and :data:`QUICK_WORKLOAD`.
        skip_gates: check only the rollback paths.
        gates: the thresholds; None for the defaults.

    Returns:
        The options.
    """
    return RollbackOptions(
        quick=quick,
        skip_gates=skip_gates,
        smoke=QUICK_SMOKE if quick else SmokeSettings(),
        gates=gates if gates is not None else GateSettings(),
        workload=QUICK_WORKLOAD if quick else GateWorkload(),
    )


async def arollback_check(
    options: RollbackOptions,
    *,
    factory: ClientFactory = default_factory,
    progress: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> RollbackReport:
    """Run every rollback path, then (unless skipped) the gates; return the report.

    Args:
        options: durations, thresholds, quick and skip flags.
        factory: builds the client of each path from its config dict (a test passes a broken
            double here). The gates always measure
            :func:`harborbench.harborai.create_fast_client`, through the engine.
        progress: called with one line of text before each step.
        stop: when set (Ctrl-C, SIGTERM), no further path or round starts and the current gate
            trial ends early; the report keeps what was checked and is marked interrupted.

    Returns:
        The report: one row per path, then one per gate, with the overall verdict and exit code;
        each path row carries the seconds of its own smoke check, and the report the seconds of
        the gates' shared measurement.

    Raises:
        TargetUnreachableError: the mock server would not start (exit 4).
    """
    from harborbench.engine.runner import MOCK_API_KEY
    from harborbench.mockserver.process import MockServer

    start_s = time.perf_counter()
    rows: list[CheckRow] = []
    gates_elapsed_s: float | None = None
    gate_figures: dict[str, object] = {}
    interrupted = False
    async with MockServer(mock_settings()) as server:
        reference: Fingerprint | None = None
        for path in ROLLBACK_PATHS:
            if stop is not None and stop.is_set():
                interrupted = True
                break
            if progress is not None:
                progress(f"path {path.number}/{len(ROLLBACK_PATHS)}: {path.title}")
            path_start_s = time.perf_counter()
            outcome = await smoke_path(
                path,
                base_url=server.base_url,
                api_key=MOCK_API_KEY,
                server=server,
                settings=options.smoke,
                reference=reference,
                factory=factory,
            )
            elapsed_s = time.perf_counter() - path_start_s
            if path.number == 1:
                reference = outcome.reference
            rows.append(outcome.row.model_copy(update={"elapsed_s": elapsed_s}))
        if not options.skip_gates and not interrupted:
            gates_start_s = time.perf_counter()
            measured = await measure_gates(
                server.base_url, MOCK_API_KEY, server, options.gates, options.workload, progress,
                stop,
            )  # fmt: skip
            rows += measured.rows
            interrupted = measured.interrupted
            gate_figures = {"rounds": measured.rounds, "stop_reason": measured.stop_reason}
            gates_elapsed_s = time.perf_counter() - gates_start_s
    w = options.workload
    settings = {
        "smoke_duration_s": options.smoke.duration_s,
        "smoke_extra_workers": options.smoke.extra_workers,
        "mock": mock_settings().model_dump(mode="json"),
        "gates": None if options.skip_gates else options.gates.as_dict(),
        "gate_workload": None
        if options.skip_gates
        else {
            "rounds": w.rounds,
            "max_rounds": w.most_rounds,
            **{f"measured_{k}": v for k, v in gate_figures.items()},
            "warmup_s": w.warmup_s,
            "window_s": w.window_s,
            "concurrency": w.concurrency,
            "confidence": w.confidence,
        },
    }
    return new_report(
        rows,
        quick=options.quick,
        skip_gates=options.skip_gates,
        settings=settings,
        wall_s=time.perf_counter() - start_s,
        gates_elapsed_s=gates_elapsed_s,
        interrupted=interrupted,
    )


def rollback_check(
    options: RollbackOptions | None = None,
    *,
    factory: ClientFactory = default_factory,
    progress: Callable[[str], None] | None = None,
) -> RollbackReport:
    """Synchronous :func:`arollback_check` (for scripts and notebooks); default options if None."""
    return asyncio.run(
        arollback_check(options or RollbackOptions(), factory=factory, progress=progress)
    )
