"""Whether two runs can be compared: differences of environment and workload, and warnings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harborbench.compare.models import Comparability, Difference
from harborbench.environment import COMPARABLE_KEYS
from harborbench.result import RunResult

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

    Environments differ when any of :data:`harborbench.environment.COMPARABLE_KEYS` (CPU model
    and count, Python, aiohttp, harborbench) differ; workloads when the profiles' ``load``,
    ``request`` or ``target`` sections differ. ``warmup``, ``duration``, ``repeat`` and ``seed``
    differences are listed as notes. Health problems of either run are warnings. Two runs of
    the same client config in different effective modes (the disabling environment variable)
    are a workload difference too.

    Args:
        a, b: the two runs.

    Returns:
        The differences; ``comparable`` is False when the environment or the workload differs.
    """
    env = _differences(a.environment, b.environment, COMPARABLE_KEYS)
    work = _differences(a.profile, b.profile, WORKLOAD_KEYS)
    notes = _differences(a.profile, b.profile, NOTE_KEYS)
    modes = [_mode(r) for r in (a, b)]
    if a.profile.get("client") == b.profile.get("client") and modes[0] != modes[1]:
        # The same client config ran in different modes: something outside the profile (the
        # HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION variable) changed what was measured.
        work.append(Difference(key="client mode (effective)", a=modes[0], b=modes[1]))
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


def _mode(r: RunResult) -> str | None:
    """The client mode a run actually used (``optimized`` or ``traditional``)."""
    mode = r.total.client_status.get("mode") if r.total else None
    return None if mode is None else str(mode)
