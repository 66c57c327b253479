"""The rollback matrix of issue 6 and the report model of ``harborbench rollback-check``.

:data:`ROLLBACK_PATHS` lists the nine ways the plan gives to switch the optimization off (or
partly off), each with the ``optimization_status()`` the client must report, written by hand
from SPEC section 3 and the plan's rollback section, never inferred from a run. A test builds
every path with the real client and checks the table against it, so that a change of the client
or of the table is caught.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from harborbench import __version__
from harborbench.harborai.config import DISABLE_ENV_VAR

Verdict = Literal["pass", "fail", "inconclusive"]
#: Version of the report (``schema_version``). History: 1: first version (0.1.0); 2: each row's
#: ``elapsed_s`` and the report's ``gates_elapsed_s``; 3: ``kind``.
REPORT_SCHEMA_VERSION = 3

#: The four components of ``optimization_status()["components"]``.
COMPONENTS = (
    "lockfree_plugin_manager",
    "optimized_connection_pool",
    "async_request_processor",
    "concurrency_manager",
)
_ALL = frozenset(COMPONENTS)
_NONE: frozenset[str] = frozenset()

#: The plan's full optimized configuration (SPEC section 3): the reference row.
OPTIMIZED_CONFIG: dict[str, Any] = {
    "enable_memory_optimization": True,
    "enable_lazy_loading": True,
    "performance_mode": "optimized",
    "max_concurrent_requests": 100,
    "connection_pool_size": 50,
    "concurrency_optimization": {
        "enabled": True,
        "use_lockfree_plugin_manager": True,
        "use_optimized_connection_pool": True,
        "use_async_request_processor": True,
        "force_traditional_mode": False,
    },
}


def _optimized_with(**flags: bool) -> dict[str, Any]:
    """The reference config with some ``concurrency_optimization`` flags changed."""
    config = copy.deepcopy(OPTIMIZED_CONFIG)
    config["concurrency_optimization"].update(flags)
    return config


@dataclass(frozen=True, slots=True)
class Expected:
    """What ``optimization_status()`` must show for a path (written by hand, never inferred).

    Attributes:
        mode: ``"optimized"`` or ``"traditional"``.
        mode_reason: text that ``mode_reason`` must contain (the switch that decided).
        active: the components that must be active, exactly (names of :data:`COMPONENTS`).
        lazy_loading: ``lazy_loading.enabled``.
        memory_optimization: ``memory_optimization.enabled``.
        performance_mode: ``"optimized"`` or ``"basic"``.
        max_concurrent_requests: int, the limit on requests in flight.
        connection_pool_size: int, connections per origin at start.
    """

    mode: Literal["optimized", "traditional"]
    mode_reason: str
    active: frozenset[str]
    lazy_loading: bool
    memory_optimization: bool
    performance_mode: str
    max_concurrent_requests: int
    connection_pool_size: int

    def describe(self) -> str:
        """One line: mode, active components, limits (for the table's "expected" column)."""
        return _describe(
            self.mode, self.active, self.max_concurrent_requests, self.connection_pool_size
        )


def _describe(mode: str, active: frozenset[str], limit: int, pool: int) -> str:
    parts = "all 4" if active == _ALL else ", ".join(sorted(active)) or "none"
    return f"{mode}; active: {parts}; limit {limit}, pool {pool}"


@dataclass(frozen=True, slots=True)
class RollbackPath:
    """One rollback path of the plan: a client config, an environment, and its expectation.

    Attributes:
        number: 1..9, the order of the issue.
        key: short stable id (JUnit test name, JSON).
        title: what the path does, for people.
        config: the client config without the target (``base_url``/``api_key`` are added).
        env: ``HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION`` during construction and use:
            a value, or ``None`` to remove it (so that a variable set in the caller's
            environment cannot change a path that does not test it).
        expected: the status the client must report.
    """

    number: int
    key: str
    title: str
    config: Mapping[str, Any] = field(hash=False)
    env: str | None
    expected: Expected


def _expect(
    mode: Literal["optimized", "traditional"],
    reason: str,
    active: frozenset[str],
    *,
    memory: bool = True,
    performance_mode: str = "optimized",
    limit: int = 100,
    pool: int = 50,
) -> Expected:
    return Expected(mode, reason, active, True, memory, performance_mode, limit, pool)


_OPT = "concurrency optimization enabled"
#: The nine paths of issue 6, in its order; path 1 is the reference for response content.
ROLLBACK_PATHS: tuple[RollbackPath, ...] = (
    RollbackPath(1, "optimized", "full optimized config (reference)",
                 OPTIMIZED_CONFIG, None, _expect("optimized", _OPT, _ALL)),
    RollbackPath(2, "enabled-false", "concurrency_optimization.enabled: false",
                 _optimized_with(enabled=False), None,
                 _expect("traditional", "concurrency_optimization.enabled is false", _NONE)),
    RollbackPath(3, "env-disable", f"{DISABLE_ENV_VAR}=true over the optimized config",
                 OPTIMIZED_CONFIG, "true",
                 _expect("traditional", f"disabled by {DISABLE_ENV_VAR}", _NONE)),
    RollbackPath(4, "no-lockfree-plugin-manager", "use_lockfree_plugin_manager: false",
                 _optimized_with(use_lockfree_plugin_manager=False), None,
                 _expect("optimized", _OPT, _ALL - {"lockfree_plugin_manager"})),
    RollbackPath(5, "no-optimized-connection-pool", "use_optimized_connection_pool: false",
                 _optimized_with(use_optimized_connection_pool=False), None,
                 _expect("optimized", _OPT, _ALL - {"optimized_connection_pool"})),
    RollbackPath(6, "no-async-request-processor", "use_async_request_processor: false",
                 _optimized_with(use_async_request_processor=False), None,
                 _expect("optimized", _OPT, _ALL - {"async_request_processor"})),
    RollbackPath(7, "force-traditional", "force_traditional_mode: true over enabled: true",
                 _optimized_with(force_traditional_mode=True), None,
                 _expect("traditional", "force_traditional_mode is true", _NONE)),
    RollbackPath(8, "basic-mode", "performance_mode: basic, 10 requests, pool of 5",
                 {"performance_mode": "basic", "max_concurrent_requests": 10,
                  "connection_pool_size": 5}, None,
                 _expect("traditional", "performance_mode is 'basic'", _NONE,
                         performance_mode="basic", limit=10, pool=5)),
    RollbackPath(9, "minimal", "minimal config: memory optimization off, lazy loading on",
                 {"enable_memory_optimization": False, "enable_lazy_loading": True}, None,
                 _expect("optimized", _OPT, _ALL, memory=False)),
)  # fmt: skip


def check_status(status: Mapping[str, Any], expected: Expected) -> list[str]:
    """Compare a client's ``optimization_status()`` with a path's expectation.

    Args:
        status: the dict returned by ``optimization_status()``.
        expected: the path's hand-written expectation.

    Returns:
        One sentence per difference (empty when the status is exactly as expected).
    """
    problems: list[str] = []

    def get(*keys: str) -> Any:
        value: Any = status
        for k in keys:
            value = value.get(k) if isinstance(value, Mapping) else None
        return value

    if get("mode") != expected.mode:
        problems.append(f"mode is {get('mode')!r}, expected {expected.mode!r}")
    reason = get("mode_reason")
    if not isinstance(reason, str) or expected.mode_reason not in reason:
        problems.append(f"mode_reason {reason!r} does not mention {expected.mode_reason!r}")
    components = get("components")
    if not isinstance(components, Mapping) or set(components) != set(COMPONENTS):
        problems.append(f"components lists {sorted(components or {})}, expected {list(COMPONENTS)}")
    else:
        for name in COMPONENTS:
            active = get("components", name, "active")
            want = name in expected.active
            if active is not want:
                why = get("components", name, "reason")
                problems.append(f"{name} active={active!r}, expected {want} ({why})")
    for keys, want_value in (
        (("lazy_loading", "enabled"), expected.lazy_loading),
        (("memory_optimization", "enabled"), expected.memory_optimization),
        (("performance_mode",), expected.performance_mode),
        (("max_concurrent_requests",), expected.max_concurrent_requests),
        (("connection_pool_size",), expected.connection_pool_size),
    ):
        got = get(*keys)
        if got != want_value or type(got) is not type(want_value):
            problems.append(f"{'.'.join(keys)} is {got!r}, expected {want_value!r}")
    return problems


def observed_status(status: Mapping[str, Any]) -> str:
    """One line describing a status dict like :meth:`Expected.describe` (for the table)."""
    comps = status.get("components")
    active = frozenset(
        k for k, v in (comps.items() if isinstance(comps, Mapping) else ()) if v.get("active")
    )
    return _describe(
        str(status.get("mode")),
        active,
        status.get("max_concurrent_requests", -1),
        status.get("connection_pool_size", -1),
    )


@contextlib.contextmanager
def path_environment(value: str | None) -> Iterator[None]:
    """Set (or, with ``None``, remove) ``HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION``, restore after.

    Args:
        value: the value to set for the duration of the block, or None to unset it.
    """
    old = os.environ.get(DISABLE_ENV_VAR)
    try:
        if value is None:
            os.environ.pop(DISABLE_ENV_VAR, None)
        else:
            os.environ[DISABLE_ENV_VAR] = value
        yield
    finally:
        if old is None:
            os.environ.pop(DISABLE_ENV_VAR, None)
        else:
            os.environ[DISABLE_ENV_VAR] = old


# --- the report -----------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckRow(_Model):
    """One row of the report: a rollback path or a gate.

    Attributes:
        kind: ``"path"`` or ``"gate"``.
        key: stable id (the path key, or the gate's name).
        name: the row's title for people.
        expected: the expected status, or the gate's threshold.
        observed: what was seen.
        verdict: pass, fail or inconclusive.
        problem: for a failure or an inconclusive row, one line saying what broke or why.
        details: figures behind the row (counts, intervals, the client's status).
        elapsed_s: wall-clock seconds spent on this row alone: a path's whole smoke check
            (client built, load, close); 0 for a gate row, because every gate is judged on
            one shared measurement (:attr:`RollbackReport.gates_elapsed_s`).
    """

    kind: Literal["path", "gate"]
    key: str
    name: str
    expected: str
    observed: str
    verdict: Verdict
    problem: str | None
    details: dict[str, Any]
    elapsed_s: float = 0.0


class RollbackReport(_Model):
    """The whole check, as written by ``--json`` / ``--output``.

    Attributes:
        schema_version: :data:`REPORT_SCHEMA_VERSION`.
        created_at: ISO time (UTC); harborbench_version: the tool's version.
        quick, skip_gates: the options used.
        settings: durations, workload and thresholds in force.
        rows: the nine paths, then the gates.
        verdict: fail if any row failed, else inconclusive if any was, else pass.
        exit_code: 1, 3 or 0 for those verdicts (SPEC section 2).
        wall_s: seconds the check took.
        gates_elapsed_s: seconds of the gates' measurement (both modes, every round), shared by
            all gate rows; None when the gates were skipped.
        interrupted: stopped by Ctrl-C or SIGTERM: the rows are what was checked before.
    """

    schema_version: int = REPORT_SCHEMA_VERSION
    kind: Literal["rollback-check"] = "rollback-check"
    created_at: str
    harborbench_version: str
    quick: bool
    skip_gates: bool
    settings: dict[str, Any]
    rows: list[CheckRow]
    verdict: Verdict
    exit_code: int
    wall_s: float
    gates_elapsed_s: float | None = None
    interrupted: bool = False


def overall(rows: list[CheckRow]) -> tuple[Verdict, int]:
    """The overall verdict and exit code: any fail 1, else any inconclusive 3, else 0."""
    verdicts = {r.verdict for r in rows}
    if "fail" in verdicts:
        return "fail", 1
    if "inconclusive" in verdicts:
        return "inconclusive", 3
    return "pass", 0


def new_report(
    rows: list[CheckRow],
    *,
    quick: bool,
    skip_gates: bool,
    settings: dict[str, Any],
    wall_s: float,
    gates_elapsed_s: float | None = None,
    interrupted: bool = False,
) -> RollbackReport:
    """Assemble the report and its verdict from the rows.

    Args:
        rows: the paths, then the gates.
        quick, skip_gates: the options used.
        settings: durations, workload and thresholds in force.
        wall_s: seconds the whole check took.
        gates_elapsed_s: seconds of the gates' shared measurement; None when skipped.
        interrupted: stopped by Ctrl-C or SIGTERM.

    Returns:
        The report.
    """
    verdict, code = overall(rows)
    return RollbackReport(
        schema_version=REPORT_SCHEMA_VERSION,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        harborbench_version=__version__,
        quick=quick,
        skip_gates=skip_gates,
        settings=settings,
        rows=rows,
        verdict=verdict,
        exit_code=code,
        wall_s=wall_s,
        gates_elapsed_s=gates_elapsed_s,
        interrupted=interrupted,
    )
