"""The coordinator of a run split into shards: ``harborbench run P --workers N`` / ``--ray``.

It sends no requests itself. It loads the global plan, starts the target (the built-in mock when
local), starts the shards through a :class:`~harborbench.scaleout.backend.Backend`, waits until
every shard is ready (prepare), picks one start time ``t0`` for each trial, relays a stop,
collects, merges exactly (:mod:`harborbench.scaleout.merge`), checks the invariants and returns
one :class:`~harborbench.result.RunResult` that every command reads as a normal run.

Failure policy (docs: shared/SCALEOUT.md): a shard that dies, or is silent for
:data:`SILENT_LOST_S` while its trial runs, is lost: the others are stopped, the result is
``status: incomplete`` with the survivors' figures labelled as such and no gate judged, and the
command exits 4. No restart, no rebalancing: both would silently change the experiment.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from harborbench import __version__
from harborbench.engine.progress import Progress, ProgressCallback
from harborbench.engine.runner import plan_from_profile
from harborbench.engine.schedule import LoadPlan
from harborbench.engine.session import MeasurementSession
from harborbench.errors import UserInputError
from harborbench.result import IntervalRow, RunResult, ShardRecord, TrialResult
from harborbench.scaleout.backend import Backend, Lost
from harborbench.scaleout.merge import check_invariants, merge_rows, merge_shards
from harborbench.scaleout.shard import ShardInfo, ShardSpec, ShardTrial, Tick
from harborbench.units import NS_PER_S

if TYPE_CHECKING:
    from harborbench.profile import Profile

#: A shard that sends nothing for this long while its trial runs is lost.
SILENT_LOST_S = 3.0
#: Time between sending the go and ``t0``, so every shard has it before the start.
START_MARGIN_S = 1.0
#: Deadline for every shard to be ready (spawn imports numpy, scipy, aiohttp: 5-7 s each).
PREPARE_DEADLINE_S = 120.0
#: The largest shard count accepted (a shard is a process or an actor with one core).
MAX_WORKERS = 1024
#: After a stop or a lost shard, how long the others have to send their partial results.
STOP_GRACE_S = 15.0


def resolve_workers(value: str) -> int:
    """``--workers`` as a shard count: a positive integer, or ``auto`` (one per usable core).

    Raises:
        UserInputError: anything else (exit 2).
    """
    if value == "auto":
        usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        return max(len(usable) if usable is not None else (os.cpu_count() or 1), 1)
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n > MAX_WORKERS:
        raise UserInputError(
            f"--workers {n}: at most {MAX_WORKERS} shards.",
            hint="A shard drives one core; use fewer shards with more load each.",
        )
    if n < 1 or str(n) != value.strip():
        raise UserInputError(
            f"--workers {value!r} is not a shard count.",
            hint="Give a positive integer or 'auto' (one shard per usable core).",
        )
    return n


def check_split(profile: Profile, workers: int) -> None:
    """Refuse, before any load, a workload that cannot be split into ``workers`` shards.

    Raises:
        UserInputError: a closed-loop level below the shard count (a shard would run no
            worker; exit 2).
    """
    plan = plan_from_profile(profile)
    if plan.kind == "closed":
        low = min(s.concurrency or 0 for s in plan.steps)
        if low < workers:
            raise UserInputError(
                f"--workers {workers}: the profile's closed-loop concurrency drops to {low}, "
                "below the number of shards, so a shard would have no worker.",
                hint=f"Use --workers {low} or fewer, or raise load.concurrency.",
            )


class _Trial:
    """Bookkeeping of one trial while the shards run it."""

    def __init__(self, n: int, t0_ns: int, now_ns: int) -> None:
        self.results: dict[int, ShardTrial] = {}
        self.lost: dict[int, str] = {}
        self.last_seen = dict.fromkeys(range(n), max(t0_ns, now_ns))
        self.ticks: dict[int, Tick] = {}
        self.rows: dict[int, dict[float, IntervalRow]] = {i: {} for i in range(n)}
        self.shown_t = -math.inf

    def waiting(self, n: int) -> list[int]:
        return [i for i in range(n) if i not in self.results and i not in self.lost]


async def arun_sharded(
    profile: Profile,
    backend: Backend,
    workers: int,
    *,
    name: str | None = None,
    progress: ProgressCallback | None = None,
    on_trial: Callable[[RunResult], object] | None = None,
    stop: asyncio.Event | None = None,
) -> RunResult:
    """Run a profile as ``workers`` shards through ``backend`` and merge them into one result.

    Args:
        profile: a validated profile.
        backend: starts and talks to the shards (it is closed before this returns).
        workers: the number of shards N (>= 1).
        name: the run name (default: the profile's).
        progress: called about once per second with the merged figures and ``shards k/N``.
        on_trial: called with the result so far after every trial (to save as you go).
        stop: set it to stop every shard; the partial result is marked interrupted.

    Returns:
        The merged result; ``status`` is ``incomplete`` when a shard was lost (or the run was
        interrupted).

    Raises:
        UserInputError: the split is impossible, or the shards run another harborbench version.
        RunFailedError: a shard did not start; TargetUnreachableError: the target is down;
            AllRequestsFailedError: not one measured request succeeded (after ``on_trial``).
    """
    check_split(profile, workers)
    run_name = name or profile.name
    session = MeasurementSession(profile)
    plan = session.plan(profile)
    topo = backend.topology(workers)
    merged_trials: list[TrialResult] = []
    records = [ShardRecord(index=i, status="ok") for i in range(workers)]
    shard_trials: list[list[TrialResult]] = [[] for _ in range(workers)]
    lateness: list[float] = [0.0] * workers
    lost: dict[int, str] = {}
    interrupted = False

    def result_so_far() -> RunResult:
        result = session.result(profile, merged_trials, interrupted=interrupted, name=run_name)
        shards = [
            r.model_copy(
                update={
                    "status": "lost" if i in lost else ("interrupted" if interrupted else "ok"),
                    "reason": lost.get(i),
                    "start_lateness_s": lateness[i],
                    "trials": shard_trials[i],
                }
            )
            for i, r in enumerate(records)
        ]
        update: dict[str, object] = {"topology": topo, "shards": shards}
        if lost:
            update |= {"status": "incomplete", "gates": []}
        return result.model_copy(update=update)

    async with session:
        target = session.target
        server = target.server
        specs = [
            ShardSpec(profile, target.base_url, target.api_key, i, workers) for i in range(workers)
        ]
        try:
            infos = await asyncio.to_thread(backend.prepare, specs, PREPARE_DEADLINE_S)
            _check_versions(infos)
            offsets = backend.clock_offsets(infos)
            records = [
                ShardRecord(
                    index=i,
                    status="ok",
                    host=info.host,
                    pid=info.pid,
                    boot_id=info.boot_id,
                    clock_offset_s=offsets[i][0],
                    clock_uncertainty_s=offsets[i][1],
                )
                for i, info in enumerate(infos)
            ]
            for index in range(profile.repeat):
                if stop is not None and stop.is_set():
                    interrupted = True
                    break
                if server is not None:
                    await asyncio.to_thread(server.reset_stats)
                t0 = backend.now() + round(START_MARGIN_S * NS_PER_S)
                backend.start(index, [t0 + round(off * NS_PER_S) for off, _ in offsets])
                trial = await _collect_trial(
                    backend, workers, (index, profile.repeat), t0, plan.total_s,
                    profile.request.timeout, progress, stop,
                )  # fmt: skip
                server_stats = await asyncio.to_thread(server.stats) if server else None
                lost.update(trial.lost)
                done = sorted(trial.results)
                for i in done:
                    shard_trials[i].append(trial.results[i].trial)
                    lateness[i] = max(lateness[i], trial.results[i].start_lateness_s)
                if done:
                    results = [trial.results[i].trial for i in done]
                    stats = server_stats if not trial.lost else None
                    merged = _merge_trial(results, done, plan, profile, stats, trial.lost, workers)
                    merged_trials.append(merged)
                interrupted = bool(lost) or any(t.interrupted for t in merged_trials)
                if on_trial is not None:
                    on_trial(result_so_far())
                if interrupted or not done:
                    break
        finally:
            await asyncio.to_thread(backend.close)
    result = result_so_far()
    session.check_succeeded(result)  # exit 4, as in one process
    return result


def _check_versions(infos: list[ShardInfo]) -> None:
    other = [f"shard {s.index} on {s.host}: {s.version}" for s in infos if s.version != __version__]
    if other:
        raise UserInputError(
            f"the shards run another harborbench version than this one ({__version__}): "
            + "; ".join(other)
            + ".",
            hint="Install the same harborbench version on every node.",
        )


async def _collect_trial(
    backend: Backend,
    n: int,
    trial_of: tuple[int, int],
    t0_ns: int,
    total_s: float,
    request_timeout_s: float,
    progress: ProgressCallback | None,
    stop: asyncio.Event | None,
) -> _Trial:
    """Collect one trial's reports until every shard has answered or is lost."""
    trial = _Trial(n, t0_ns, backend.now())
    window_end_ns = t0_ns + round(total_s * NS_PER_S)
    deadline_ns = window_end_ns + round((request_timeout_s + STOP_GRACE_S) * NS_PER_S)
    stopped_at: int | None = None
    while trial.waiting(n):
        now = backend.now()
        if stopped_at is None and (trial.lost or (stop is not None and stop.is_set())):
            backend.stop()
            stopped_at = now
        if now > deadline_ns or (
            stopped_at is not None and now > stopped_at + round(STOP_GRACE_S * NS_PER_S)
        ):
            for i in trial.waiting(n):
                trial.lost[i] = "no result before the deadline"
            break
        if now < window_end_ns and stopped_at is None:  # a running shard ticks every second
            for i in trial.waiting(n):
                if now - trial.last_seen[i] > SILENT_LOST_S * NS_PER_S:
                    trial.lost[i] = f"silent for more than {SILENT_LOST_S:.0f} s"
        for event in await asyncio.to_thread(backend.collect, 0.25):
            _handle(trial, event, trial_of, n, t0_ns, total_s, backend.now(), progress)
    return trial


def _handle(
    trial: _Trial,
    event: object,
    trial_of: tuple[int, int],
    n: int,
    t0_ns: int,
    total_s: float,
    now: int,
    progress: ProgressCallback | None,
) -> None:
    index = trial_of[0]
    if isinstance(event, Lost):
        trial.lost.setdefault(event.index, event.reason)
    elif isinstance(event, ShardTrial) and event.trial.index == index:
        trial.results[event.index] = event
        trial.last_seen[event.index] = now
    elif isinstance(event, Tick) and event.trial == index:
        trial.last_seen[event.index] = now
        trial.ticks[event.index] = event
        for row in event.rows:
            trial.rows[event.index][row.t_s] = row
        if progress is not None:
            _show(trial, trial_of, n, t0_ns, total_s, now, progress)


def _show(
    trial: _Trial,
    trial_of: tuple[int, int],
    n: int,
    t0_ns: int,
    total_s: float,
    now: int,
    progress: ProgressCallback,
) -> None:
    """Progress from the merged figures of the latest second that every live shard closed."""
    live = [i for i in range(n) if i not in trial.lost]
    reporting = [i for i in live if i in trial.ticks]
    if len(reporting) < len(live):
        return
    latest = [max(trial.rows[i], default=-math.inf) for i in live]
    t = min(latest)
    if t <= trial.shown_t and t != -math.inf:
        return
    trial.shown_t = t
    rows = [trial.rows[i][t] for i in live if t in trial.rows[i]]
    merged = merge_rows([rows])[0] if rows else None
    for i in live:  # keep memory bounded: seconds already shown are not needed again
        for old in [s for s in trial.rows[i] if s < t]:
            del trial.rows[i][old]
    ticks = [trial.ticks[i] for i in live]
    progress(
        Progress(
            trial=trial_of[0] + 1,
            trials=trial_of[1],
            phase=ticks[0].phase,
            elapsed_s=max(now - t0_ns, 0) / NS_PER_S,
            total_s=total_s,
            throughput_ops=float(merged.successes) if merged else 0.0,
            p95_s=merged.service_p95_s if merged else None,
            successes=sum(k.successes for k in ticks),
            failures=sum(k.failures for k in ticks),
            in_flight=sum(k.in_flight for k in ticks),
            shards=(len(live), n),
        )
    )


def _merge_trial(
    trials: list[TrialResult],
    indices: list[int],
    plan: LoadPlan,
    profile: Profile,
    server_stats: dict[str, object] | None,
    lost: dict[int, str],
    workers: int,
) -> TrialResult:
    """Merge one trial's shard results; add the server's counters and the invariant checks."""
    merged = merge_shards(trials, plan, profile.gates, indices)
    server_total = server_stats.get("requests_total") if server_stats else None
    problems = check_invariants(
        trials, merged, plan, server_total if isinstance(server_total, int) else None
    )
    warnings = list(merged.health.warnings)
    warnings += [f"merge invariant broken: {p}" for p in problems]
    if lost:
        gone = "; ".join(f"shard {i}: {why}" for i, why in sorted(lost.items()))
        warnings.insert(
            0,
            f"INCOMPLETE: {len(lost)} of {workers} shards lost ({gone}); these figures are the "
            f"{len(indices)} surviving shard(s) only, measured against the whole configured load",
        )
    connections = dict(merged.connections)
    if server_stats is not None:
        connections["server_connections_accepted"] = server_stats.get("connections_accepted")
        connections["server_requests_total"] = server_stats.get("requests_total")
        connections["server_max_in_flight"] = server_stats.get("max_in_flight")
    return merged.model_copy(
        update={
            "health": merged.health.model_copy(update={"warnings": warnings}),
            "server_stats": server_stats,
            "connections": connections,
        }
    )
