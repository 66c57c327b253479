"""The smoke workload of one rollback path: build the client, load it, check it, close it.

For each path, :func:`smoke_path` builds a fresh client through an injectable factory (a test
passes a deliberately broken double), compares ``optimization_status()`` with the path's
expectation, drives a closed loop of ``max_concurrent_requests + extra_workers`` workers (more
than the limit, so the limit is really tested) for a short time against the mock, sends one
streamed request, and then checks: every request succeeded; every response, and the streamed
text, equal the reference path's first response (the mock's text depends only on the token
count, which is fixed here); the server saw at most ``max_concurrent_requests`` in flight and
exactly as many requests as the client reported; ``get_statistics()`` shows the engine that the
mode implies; and after ``aclose()`` no new asyncio task, ``harborai*`` thread or socket to the
server is left.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import psutil

from harborbench.harborai import create_fast_client
from harborbench.harborai.config import DISABLE_ENV_VAR
from harborbench.mockserver.settings import MockSettings
from harborbench.rollback.matrix import (
    CheckRow,
    Expected,
    RollbackPath,
    check_status,
    observed_status,
    path_environment,
)

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


def default_factory(config: dict[str, Any]) -> RollbackClient:
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
    factory: ClientFactory = default_factory,
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
        expected=path.expected.describe(),
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
