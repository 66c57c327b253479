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
The smoke workload and the thresholds are in :mod:`harborbench.rollback_gates` and here.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import psutil
from pydantic import BaseModel, ConfigDict

from harborbench import __version__
from harborbench.harborai import create_fast_client
from harborbench.harborai.config import DISABLE_ENV_VAR
from harborbench.mockserver.settings import MockSettings

__all__ = [
    "COMPONENTS",
    "OPTIMIZED_CONFIG",
    "ROLLBACK_PATHS",
    "CheckRow",
    "ClientFactory",
    "Expected",
    "RollbackClient",
    "RollbackPath",
    "RollbackReport",
    "SmokeSettings",
    "check_status",
    "mock_settings",
    "path_environment",
    "smoke_path",
]

Verdict = Literal["pass", "fail", "inconclusive"]
REPORT_SCHEMA_VERSION = 1

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


# --- the client under test, injectable ----------------------------------------------------


class RollbackClient(Protocol):
    """What the check needs from a client: ``chat.completions.acreate``, status, close."""

    @property
    def chat(self) -> Any:
        """``client.chat``, whose ``completions.acreate(...)`` sends a request."""

    def optimization_status(self) -> dict[str, Any]:
        """The status dict of SPEC section 3."""

    def get_statistics(self) -> dict[str, Any]:
        """The counters of the active components."""

    async def aclose(self) -> None:
        """Close the client and everything it owns."""


#: Builds a client from a config dict; :func:`harborbench.harborai.create_fast_client` by default.
ClientFactory = Callable[[dict[str, Any]], RollbackClient]


def _default_factory(config: dict[str, Any]) -> RollbackClient:
    return create_fast_client(config)


# --- the smoke workload -------------------------------------------------------------------

#: Fixed request of every smoke call; the mock's output length is fixed, so content is too.
SMOKE_MODEL = "harbor-mock"
SMOKE_MESSAGES = ({"role": "user", "content": "rollback check: answer with the usual words"},)
SMOKE_MAX_TOKENS = 64
SMOKE_OUTPUT_TOKENS = 32
#: Seconds given to tasks still finishing after ``aclose()`` before they count as leaked.
LEAK_GRACE_S = 1.0


def mock_settings() -> MockSettings:
    """The mock's behaviour for the whole check: the optimized profile's latency, fixed length.

    Log-normal latency (median 20 ms, p99 120 ms) as in ``profiles/optimized.yaml``, and a fixed
    output of :data:`SMOKE_OUTPUT_TOKENS` tokens so that the same request gets the same content
    (the mock's text depends only on the token count).
    """
    return MockSettings.model_validate(
        {
            "latency": {"distribution": "lognormal", "median": "20ms", "p99": "120ms"},
            "output_tokens": SMOKE_OUTPUT_TOKENS,
            "seed": 1,
        }
    )


@dataclass(frozen=True, slots=True)
class SmokeSettings:
    """The smoke workload of one path.

    Attributes:
        duration_s: seconds of closed-loop load per path.
        extra_workers: workers beyond the path's ``max_concurrent_requests``, so that the limit
            is really tested (the offered concurrency exceeds it).
    """

    duration_s: float = 1.5
    extra_workers: int = 10


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What must be identical between a path's responses and the reference's."""

    response_type: str
    model: str
    content: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


def _fingerprint(response: Any) -> Fingerprint:
    choice = response.choices[0]
    usage = response.usage
    return Fingerprint(
        response_type=type(response).__name__,
        model=response.model,
        content=choice.message.content,
        finish_reason=choice.finish_reason,
        prompt_tokens=None if usage is None else usage.prompt_tokens,
        completion_tokens=None if usage is None else usage.completion_tokens,
    )


@dataclass(slots=True)
class _Tally:
    successes: int = 0
    failures: int = 0
    first_error: str | None = None
    mismatches: int = 0
    first_mismatch: str | None = None
    first: Fingerprint | None = None


def _diff(got: Fingerprint, want: Fingerprint) -> str:
    for name in Fingerprint.__slots__:
        a, b = getattr(got, name), getattr(want, name)
        if a != b:
            return f"{name} {_short(a)} differs from the reference's {_short(b)}"
    return "identical"  # pragma: no cover - only called on unequal fingerprints


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def _worker(
    client: RollbackClient, deadline_s: float, tally: _Tally, ref: Fingerprint | None
) -> None:
    create = client.chat.completions.acreate
    while time.perf_counter() < deadline_s:
        try:
            response = await create(
                model=SMOKE_MODEL, messages=list(SMOKE_MESSAGES), max_tokens=SMOKE_MAX_TOKENS
            )
            fp = _fingerprint(response)
        except Exception as exc:  # every failure is counted and the first one shown
            tally.failures += 1
            if tally.first_error is None:
                tally.first_error = f"{type(exc).__name__}: {exc}"
            continue
        tally.successes += 1
        if tally.first is None:
            tally.first = fp
        want = ref if ref is not None else tally.first
        if fp != want:
            tally.mismatches += 1
            if tally.first_mismatch is None:
                tally.first_mismatch = _diff(fp, want)


async def _stream_content(client: RollbackClient) -> str:
    stream = await client.chat.completions.acreate(
        model=SMOKE_MODEL,
        messages=list(SMOKE_MESSAGES),
        max_tokens=SMOKE_MAX_TOKENS,
        stream=True,
    )
    parts: list[str] = []
    try:
        async for chunk in stream:
            for choice in chunk.choices:
                parts.append(choice.delta.content or "")
    finally:
        await stream.aclose()
    return "".join(parts)


def _client_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("harborai"))


def _sockets_to(port: int) -> int:
    conns = psutil.Process().net_connections(kind="tcp")
    return sum(1 for c in conns if c.raddr and c.raddr.port == port)


@dataclass(frozen=True, slots=True)
class PathOutcome:
    """The result of one path's smoke run (see :func:`smoke_path`)."""

    row: CheckRow
    reference: Fingerprint | None


async def smoke_path(
    path: RollbackPath,
    *,
    base_url: str,
    api_key: str,
    server: Any,
    settings: SmokeSettings,
    reference: Fingerprint | None,
    factory: ClientFactory = _default_factory,
) -> PathOutcome:
    """Build the path's client, check its status, run the smoke load, check results and leaks.

    Args:
        path: the rollback path.
        base_url, api_key: the mock server's OpenAI base URL and the (dummy) key.
        server: the :class:`~harborbench.mockserver.process.MockServer` (its counters are reset
            before and read after the path).
        settings: duration and offered concurrency of the smoke load.
        reference: the reference path's response fingerprint (None while running path 1,
            whose responses are compared with its own first response).
        factory: builds the client from the config dict.

    Returns:
        The path's row (verdict ``pass`` or ``fail``, with every broken check listed) and the
        fingerprint of its first successful response.
    """
    problems: list[str] = []
    port = int(base_url.split(":")[-1].split("/")[0])
    tasks_before = asyncio.all_tasks()
    sockets_before = _sockets_to(port)
    threads_before = _client_threads()
    await asyncio.to_thread(server.reset_stats)
    tally = _Tally()
    status: dict[str, Any] = {}
    stream_text: str | None = None
    statistics: dict[str, Any] = {}
    config = {**copy.deepcopy(dict(path.config)), "base_url": base_url, "api_key": api_key}
    start_s = time.perf_counter()
    with path_environment(path.env):
        try:
            client = factory(config)
        except Exception as exc:
            client = None
            problems.append(f"the client could not be built: {type(exc).__name__}: {exc}")
        if client is not None:
            try:
                status = client.optimization_status()
                problems += check_status(status, path.expected)
                workers = path.expected.max_concurrent_requests + settings.extra_workers
                deadline_s = time.perf_counter() + settings.duration_s
                await asyncio.gather(
                    *(_worker(client, deadline_s, tally, reference) for _ in range(workers))
                )
                try:
                    stream_text = await _stream_content(client)
                except Exception as exc:
                    problems.append(f"the streamed request failed: {type(exc).__name__}: {exc}")
                statistics = client.get_statistics()
            finally:
                await client.aclose()
    elapsed_s = time.perf_counter() - start_s
    server_stats = await asyncio.to_thread(server.stats)
    problems += _request_problems(tally, reference, stream_text)
    problems += _engine_problems(statistics, path.expected) if client is not None else []
    problems += _limit_problems(server_stats, tally, stream_text, path.expected)
    problems += await _leak_problems(tasks_before, sockets_before, threads_before, port)
    ok = not problems
    observed = observed_status(status) if status else "no status (client not built)"
    details = {
        "successes": tally.successes,
        "failures": tally.failures,
        "mismatches": tally.mismatches,
        "throughput_ops": tally.successes / elapsed_s if elapsed_s > 0 else 0.0,
        "server_requests_total": server_stats.get("requests_total"),
        "server_max_in_flight": server_stats.get("max_in_flight"),
        "max_concurrent_requests": path.expected.max_concurrent_requests,
        "offered_concurrency": path.expected.max_concurrent_requests + settings.extra_workers,
        "env": {DISABLE_ENV_VAR: path.env},
        "config": dict(path.config),
        "status": status,
        "problems": problems,
    }
    row = CheckRow(
        kind="path",
        key=path.key,
        name=f"path {path.number}: {path.title}",
        expected=path.expected.describe() + "; all requests succeed with the reference content",
        observed=f"{observed}; {tally.successes} ok, {tally.failures} failed, "
        f"server max in flight {server_stats.get('max_in_flight')}",
        verdict="pass" if ok else "fail",
        problem=None if ok else "; ".join(problems),
        details=details,
    )
    return PathOutcome(row=row, reference=tally.first)


def _request_problems(
    tally: _Tally, reference: Fingerprint | None, stream: str | None
) -> list[str]:
    out: list[str] = []
    if tally.failures:
        out.append(f"{tally.failures} of {tally.successes + tally.failures} requests failed "
                   f"(first: {tally.first_error})")  # fmt: skip
    if tally.successes == 0:
        out.append("no request succeeded")
    if tally.mismatches:
        out.append(
            f"{tally.mismatches} responses differ from the reference ({tally.first_mismatch})"
        )
    want = reference or tally.first
    if stream is not None and want is not None and stream != want.content:
        out.append(f"streamed content {_short(stream)} differs from the reference's "
                   f"{_short(want.content)}")  # fmt: skip
    return out


def _engine_problems(statistics: Mapping[str, Any], expected: Expected) -> list[str]:
    """What really ran, from ``get_statistics()``: the traditional engine or the manager."""
    out: list[str] = []
    if expected.mode == "traditional" and "traditional" not in statistics:
        out.append("get_statistics() shows no traditional engine: the optimized path ran")
    if expected.mode == "optimized" and "concurrency_manager" not in statistics:
        out.append("get_statistics() shows no concurrency manager: the optimized path did not run")
    processor = "request_processor" in statistics
    want = "async_request_processor" in expected.active
    if processor != want:
        out.append(f"get_statistics() {'shows' if processor else 'lacks'} the request processor")
    return out


def _limit_problems(
    server_stats: Mapping[str, Any], tally: _Tally, stream: str | None, expected: Expected
) -> list[str]:
    out: list[str] = []
    peak = server_stats.get("max_in_flight")
    if not isinstance(peak, int) or peak > expected.max_concurrent_requests:
        out.append(f"the server saw {peak} requests in flight, over max_concurrent_requests="
                   f"{expected.max_concurrent_requests}")  # fmt: skip
    sent = tally.successes + tally.failures + (1 if stream is not None else 0)
    received = server_stats.get("requests_total")
    if received != sent:
        out.append(f"the server received {received} requests, the client reported {sent}")
    return out


async def _leak_problems(
    tasks_before: set[asyncio.Task[Any]], sockets_before: int, threads_before: list[str], port: int
) -> list[str]:
    out: list[str] = []
    new = {t for t in asyncio.all_tasks() if t not in tasks_before and not t.done()}
    current = asyncio.current_task()
    if current is not None:
        new.discard(current)
    if new:
        _, pending = await asyncio.wait(new, timeout=LEAK_GRACE_S)
        if pending:
            names = ", ".join(sorted(t.get_name() for t in pending))
            out.append(f"{len(pending)} asyncio task(s) still running after aclose(): {names}")
    await asyncio.sleep(0)  # one loop turn: transports closed by aclose() release their sockets
    sockets = _sockets_to(port)
    if sockets > sockets_before:
        out.append(f"{sockets - sockets_before} socket(s) to the server still open after aclose()")
    threads = _client_threads()
    if len(threads) > len(threads_before):
        out.append(f"client thread(s) still alive after aclose(): {', '.join(threads)}")
    return out


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
    """

    kind: Literal["path", "gate"]
    key: str
    name: str
    expected: str
    observed: str
    verdict: Verdict
    problem: str | None
    details: dict[str, Any]


class RollbackReport(_Model):
    """The whole check, as written by ``--json`` / ``--output``.

    Attributes:
        schema_version: 1.
        created_at: ISO time (UTC); harborbench_version: the tool's version.
        quick, skip_gates: the options used.
        settings: durations, workload and thresholds in force.
        rows: the nine paths, then the gates.
        verdict: fail if any row failed, else inconclusive if any was, else pass.
        exit_code: 1, 3 or 0 for those verdicts (SPEC section 2).
        wall_s: seconds the check took.
    """

    schema_version: int
    created_at: str
    harborbench_version: str
    quick: bool
    skip_gates: bool
    settings: dict[str, Any]
    rows: list[CheckRow]
    verdict: Verdict
    exit_code: int
    wall_s: float


def overall(rows: list[CheckRow]) -> tuple[Verdict, int]:
    """The overall verdict and exit code: any fail 1, else any inconclusive 3, else 0."""
    verdicts = {r.verdict for r in rows}
    if "fail" in verdicts:
        return "fail", 1
    if "inconclusive" in verdicts:
        return "inconclusive", 3
    return "pass", 0


def new_report(
    rows: list[CheckRow], *, quick: bool, skip_gates: bool, settings: dict[str, Any], wall_s: float
) -> RollbackReport:
    """Assemble the report and its verdict from the rows."""
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
    )


# --- the whole check ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RollbackOptions:
    """How to run the check.

    Attributes:
        quick: shorter smoke loads and gate rounds (see :func:`options_for`).
        skip_gates: check only the rollback paths.
        smoke: the smoke workload of each path.
        gates: the thresholds (:class:`harborbench.rollback_gates.GateSettings`), None for the
            defaults.
        workload: the gates' workload (:class:`harborbench.rollback_gates.GateWorkload`), None
            for the defaults.
    """

    quick: bool = False
    skip_gates: bool = False
    smoke: SmokeSettings = SmokeSettings()
    gates: Any = None
    workload: Any = None


async def arollback_check(
    options: RollbackOptions,
    *,
    factory: ClientFactory = _default_factory,
    progress: Callable[[str], None] | None = None,
) -> RollbackReport:
    """Run every rollback path, then (unless skipped) the gates; return the report.

    Args:
        options: durations, thresholds, quick and skip flags.
        factory: builds the client of each path from its config dict (a test passes a broken
            double here). The gates always measure :func:`create_fast_client` through the engine.
        progress: called with one line of text before each step.

    Returns:
        The report: one row per path, then one per gate, with the overall verdict and exit code.

    Raises:
        TargetUnreachableError: the mock server would not start (exit 4).
    """
    from harborbench.engine.runner import MOCK_API_KEY
    from harborbench.mockserver.process import MockServer
    from harborbench.rollback_gates import GateSettings, GateWorkload, measure_gates

    gates = options.gates if options.gates is not None else GateSettings()
    workload = options.workload if options.workload is not None else GateWorkload()
    start_s = time.perf_counter()
    rows: list[CheckRow] = []
    async with MockServer(mock_settings()) as server:
        reference: Fingerprint | None = None
        for path in ROLLBACK_PATHS:
            if progress is not None:
                progress(f"path {path.number}/{len(ROLLBACK_PATHS)}: {path.title}")
            outcome = await smoke_path(
                path,
                base_url=server.base_url,
                api_key=MOCK_API_KEY,
                server=server,
                settings=options.smoke,
                reference=reference,
                factory=factory,
            )
            if path.number == 1:
                reference = outcome.reference
            rows.append(outcome.row)
        if not options.skip_gates:
            rows += await measure_gates(
                server.base_url, MOCK_API_KEY, server, gates, workload, progress
            )
    settings = {
        "smoke_duration_s": options.smoke.duration_s,
        "smoke_extra_workers": options.smoke.extra_workers,
        "mock": mock_settings().model_dump(mode="json"),
        "gates": None if options.skip_gates else gates.as_dict(),
        "gate_workload": None
        if options.skip_gates
        else {
            "rounds": workload.rounds,
            "warmup_s": workload.warmup_s,
            "window_s": workload.window_s,
            "concurrency": workload.concurrency,
            "confidence": workload.confidence,
        },
    }
    return new_report(
        rows,
        quick=options.quick,
        skip_gates=options.skip_gates,
        settings=settings,
        wall_s=time.perf_counter() - start_s,
    )
