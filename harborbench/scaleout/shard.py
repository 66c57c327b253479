"""What runs inside one shard, whichever backend started it: today's engine on a stripe.

A shard gets a :class:`ShardSpec`, reports :func:`shard_info` when it is ready (prepare phase),
and runs each trial with :func:`run_shard_trial` from the common start time ``t0``. It reports
one :class:`Tick` per second while it runs (progress and liveness) and its trial result at the
end. It never prints.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harborbench import __version__
from harborbench.result import IntervalRow, TrialResult
from harborbench.units import NS_PER_S

if TYPE_CHECKING:
    from harborbench.engine.progress import Progress
    from harborbench.profile import Profile


@dataclass(frozen=True, slots=True)
class ShardSpec:
    """Everything a shard needs: the profile, the target, and which stripe is its own.

    Attributes:
        profile: the validated profile (the same for every shard).
        base_url: the target; api_key: its key (sent to the shard, never recorded).
        index, count: this is shard ``index`` of ``count``.
    """

    profile: Profile
    base_url: str
    api_key: str | None
    index: int
    count: int


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """What a shard reports when it is ready (before any load)."""

    index: int
    version: str
    host: str
    pid: int
    boot_id: str


@dataclass(frozen=True, slots=True)
class Tick:
    """One second of a running shard: the rows it closed and its running totals."""

    index: int
    trial: int
    phase: str
    rows: list[IntervalRow]
    successes: int
    failures: int
    in_flight: int


@dataclass(frozen=True, slots=True)
class ShardTrial:
    """A shard's finished trial, and how late it saw the go for ``t0`` (seconds, >= 0)."""

    index: int
    trial: TrialResult
    start_lateness_s: float


def boot_id() -> str:
    """This host's boot id (Linux): processes with the same one share one CLOCK_MONOTONIC."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="utf-8").strip()
    except OSError:
        return f"{socket.gethostname()}-unknown-boot"


def shard_info(index: int) -> ShardInfo:
    """Version, host, pid and boot id of the calling process, as shard ``index``."""
    return ShardInfo(index, __version__, socket.gethostname(), os.getpid(), boot_id())


def prepare_shard(spec: ShardSpec) -> ShardInfo:
    """The prepare phase inside a shard: import the engine, build the plan, check the target.

    Done before the shard says it is ready, so that the go for ``t0`` finds it ready to send
    (imports alone take seconds: numpy, scipy, aiohttp).

    Raises:
        TargetUnreachableError: the target does not accept connections from this shard's host.
    """
    from harborbench.engine.runner import check_target_reachable, plan_from_profile

    plan_from_profile(spec.profile)
    check_target_reachable(spec.base_url)
    return shard_info(spec.index)


async def run_shard_trial(
    spec: ShardSpec,
    trial: int,
    t0_ns: int,
    stop: asyncio.Event,
    report: Callable[[Tick], object],
    clock: Callable[[], int] = time.perf_counter_ns,
) -> ShardTrial:
    """Run trial ``trial`` of the profile on this shard's stripe, starting at ``t0_ns``.

    Args:
        spec: the shard's spec.
        trial: 0-based trial number.
        t0_ns: the common start time on this shard's ``clock`` (already offset-corrected).
        stop: set to end the trial early (it is then marked interrupted).
        report: called once per second with a :class:`Tick`.
        clock: nanosecond clock (``time.perf_counter_ns``: CLOCK_MONOTONIC on Linux).

    Returns:
        The shard's trial result.
    """
    from harborbench.engine.clock import Clock
    from harborbench.engine.runner import plan_from_profile, run_trial

    plan = dataclasses.replace(plan_from_profile(spec.profile), stripe=(spec.index, spec.count))
    lateness_s = max(clock() - t0_ns, 0) / NS_PER_S
    pending: list[IntervalRow] = []

    def progress(p: Progress) -> None:
        report(
            Tick(spec.index, trial, p.phase, list(pending), p.successes, p.failures, p.in_flight)
        )
        pending.clear()

    result = await run_trial(
        spec.profile, plan, spec.base_url, spec.api_key,
        index=trial, progress=progress, stop=stop, clock=Clock(clock), start_ns=t0_ns,
        on_rows=pending.extend,
    )  # fmt: skip
    return ShardTrial(spec.index, result, lateness_s)
