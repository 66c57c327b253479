"""Whether two runs can be compared: differences of environment and workload, and warnings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harborbench.compare.bootstrap import MIN_INTERVALS
from harborbench.compare.models import Comparability, Difference
from harborbench.environment import COMPARABLE_KEYS
from harborbench.result import RunResult

#: Environment keys that must be equal for a ``--fail-on`` gate to be judged (issue 13): the
#: machine (host name, architecture, CPU model, CPU count and usable CPUs), the kernel (``os``
#: holds the system and kernel release), Python, and the versions of the libraries measured
#: with (aiohttp, numpy, harborbench). The git commit is not one of them: B is usually a new
#: commit.
ENVIRONMENT_KEYS = tuple(
    dict.fromkeys(
        (
            *COMPARABLE_KEYS,
            "hostname",
            "machine",
            "cpu_usable",
            "os",
            "python_implementation",
            "numpy",
        )
    )
)

#: Profile sections whose differences make two runs measure different workloads.
WORKLOAD_KEYS = ("load", "request", "target", "slo")
#: Profile keys added after results were first written, with the value a result written before
#: them implied: a result without the key compares equal to one with this value.
IMPLIED: dict[str, Any] = {
    "request.prefix_tokens": None,
    "request.dataset": None,
    "request.dataset_order": "random",
    "request.extra_body": {},
    "request.headers": {},
    "load.trace": None,
    "load.timestamp_unit": "ms",
    "load.time_scale": 1.0,
    "load.limit": None,
    "slo": None,
}
#: Profile keys whose differences are worth a note but do not change the workload.
NOTE_KEYS = ("warmup", "duration", "repeat", "seed")


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def _differences(a: dict[str, Any], b: dict[str, Any], keys: Sequence[str]) -> list[Difference]:
    fa: dict[str, Any] = {}
    fb: dict[str, Any] = {}
    for key in keys:
        _flatten(key, a.get(key), fa)
        _flatten(key, b.get(key), fb)
    return [
        Difference(key=k, a=fa.get(k), b=fb.get(k))
        for k in sorted(set(fa) | set(fb))
        if fa.get(k, IMPLIED.get(k)) != fb.get(k, IMPLIED.get(k))
    ]


def comparability(a: RunResult, b: RunResult) -> Comparability:
    """Compare the two runs' environments and workloads.

    Environments differ when any of :data:`ENVIRONMENT_KEYS` (host, CPU model and count,
    kernel, Python, aiohttp, numpy, harborbench) differ; workloads when the profiles' ``load``,
    ``request`` or ``target`` sections differ. ``warmup``, ``duration``, ``repeat`` and ``seed``
    differences are listed as notes. Health problems of either run are warnings. Two runs of
    the same client config in different effective modes (the disabling environment variable)
    are a workload difference too, and so are a different topology (one process, or N shards:
    N shards are N clients) and an incomplete run (a shard was lost).

    Args:
        a, b: the two runs.

    Returns:
        The differences; ``comparable`` is False when the environment or the workload differs.
    """
    env = _differences(a.environment, b.environment, ENVIRONMENT_KEYS)
    work = _differences(a.profile, b.profile, WORKLOAD_KEYS)
    notes = _differences(a.profile, b.profile, NOTE_KEYS)
    modes = [_mode(r) for r in (a, b)]
    if a.profile.get("client") == b.profile.get("client") and modes[0] != modes[1]:
        # The same client config ran in different modes: something outside the profile (the
        # HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION variable) changed what was measured.
        work.append(Difference(key="client mode (effective)", a=modes[0], b=modes[1]))
    topologies = [_topology(r) for r in (a, b)]
    if topologies[0] != topologies[1]:  # N shards are N clients: another experiment
        work.append(Difference(key="topology", a=topologies[0], b=topologies[1]))
    statuses = [r.status for r in (a, b)]
    if statuses != ["complete", "complete"]:  # a lost shard: the survivors' figures only
        work.append(Difference(key="status", a=statuses[0], b=statuses[1]))
    warnings = []
    for side, r in (("A", a), ("B", b)):
        reason = str(r.total.client_status.get("mode_reason", "")) if r.total else ""
        if "HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION" in reason:
            warnings.append(
                f"{side} ({r.name}) ran in {_mode(r)} mode because "
                "HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION was set, whatever its profile says"
            )
    if env:
        keys = ", ".join(d.key for d in env)
        warnings.append(f"A and B were measured on different machines or software ({keys})")
    if work:
        keys = ", ".join(d.key for d in work)
        warnings.append(f"A and B ran different workloads ({keys})")
    for side, r in (("A", a), ("B", b)):
        if r.interrupted:
            warnings.append(f"{side} ({r.name}) was interrupted: its result is partial")
        if r.total is not None and r.total.health.generator_saturated:
            warnings.append(f"{side} ({r.name}): the load generator was a bottleneck")
    return Comparability(
        comparable=not env and not work,
        environment=env,
        workload=work,
        notes=notes,
        warnings=warnings,
    )


def _topology(r: RunResult) -> str:
    """How the run was split: ``one process``, or the backend and shard count."""
    t = r.topology
    return "one process" if t is None else f"{t.workers} shards via {t.backend}"


def _mode(r: RunResult) -> str | None:
    """The client mode a run actually used (``optimized`` or ``traditional``)."""
    mode = r.total.client_status.get("mode") if r.total else None
    return None if mode is None else str(mode)


def thin_data_warnings(a: RunResult, b: RunResult) -> list[str]:
    """One warning line per run whose data is too thin for a decision, naming what to change.

    Thin means fewer than :data:`~harborbench.compare.bootstrap.MIN_INTERVALS` 1-second
    intervals in the measurement windows of all its trials, or a trial whose window is shorter
    than the profile's warmup.

    Args:
        a, b: the two runs.

    Returns:
        Up to two lines, A's first.
    """
    out = []
    for side, r in (("A", a), ("B", b)):
        intervals = sum(
            1 for t in r.trials for row in t.timeseries if not row.warmup and row.t_s >= 0
        )
        warmup_s = r.profile.get("warmup")
        short = [
            t.window_s
            for t in r.trials
            if isinstance(warmup_s, int | float) and t.window_s < float(warmup_s)
        ]
        problems = []
        if intervals < MIN_INTERVALS:
            problems.append(
                f"only {intervals} 1-s intervals (at least {MIN_INTERVALS} are needed for an "
                "interval)"
            )
        if short:
            problems.append(
                f"a measurement window of {min(short):.3g} s, shorter than its warmup of "
                f"{float(warmup_s):.3g} s"  # type: ignore[arg-type]
            )
        if problems:
            out.append(
                f"{side} ({r.name}) has {' and '.join(problems)}: raise duration, or measure more "
                "trials (repeat, or compare --run --rounds)"
            )
    return out
