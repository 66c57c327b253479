"""The runner: drives the client under test through a profile and measures it.

``run(profile)`` is the library entry point behind ``harborbench run``: through a
:class:`~harborbench.engine.session.MeasurementSession` it starts the target (the built-in mock in
its own process, or an external ``base_url``), runs ``profile.repeat`` trials
(:func:`run_trial`), and returns a :class:`~harborbench.result.RunResult`. It never prints:
progress reaches the caller through a callback, and each finished trial through ``on_trial`` so
that the caller can save results as it goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from harborbench import __version__
from harborbench.engine.assemble import interval_rows, trial_result
from harborbench.engine.clock import Clock
from harborbench.engine.drivers import drive_closed_loop, drive_open_loop
from harborbench.engine.progress import Progress, ProgressCallback
from harborbench.engine.prompts import RequestFactory
from harborbench.engine.recorder import Recorder
from harborbench.engine.redaction import REDACTED, secret_values
from harborbench.engine.request import RequestSender
from harborbench.engine.schedule import LoadPlan, build_plan, trace_plan
from harborbench.engine.summaries import (
    merge_trials,
)
from harborbench.errors import (
    AllRequestsFailedError,
    ProfileError,
    RunFailedError,
    TargetUnreachableError,
)
from harborbench.gates import evaluate_gates
from harborbench.harborai import create_fast_client
from harborbench.harborai.config import ClientConfig
from harborbench.harborai.errors import ConfigError
from harborbench.metrics.goodput import SloLimits
from harborbench.metrics.looplag import LoopLagMonitor
from harborbench.metrics.resources import (
    ResourceSample,
    ResourceSampler,
)
from harborbench.result import (
    METRIC_DEFINITIONS,
    PLAN_BASELINE_OPS,
    PLAN_TARGET_OPS,
    SCHEMA_VERSION,
    IntervalRow,
    RunResult,
    TrialResult,
)
from harborbench.units import NS_PER_S

if TYPE_CHECKING:
    from harborbench.mockserver.process import MockServer
    from harborbench.profile import Profile

#: API key sent to the built-in mock (it accepts any); never a real secret.
MOCK_API_KEY = "harborbench-mock-key"


def plan_from_profile(profile: Profile) -> LoadPlan:
    """Turn a profile's ``load``, ``warmup``, ``duration`` and ``seed`` into a :class:`LoadPlan`."""
    load = profile.load
    trace = load.replayed_trace()
    if trace is not None:
        return trace_plan(
            warmup_s=profile.warmup, window_s=profile.duration, offsets_ns=trace.offsets_ns
        )
    if load.stages:
        kind = "open" if load.stages[0].rate is not None else "closed"
        levels = [
            (s.duration, float(s.rate if s.rate is not None else s.concurrency or 0))
            for s in load.stages
        ]
    elif load.rate is not None:
        kind, levels = "open", [(profile.duration, float(load.rate))]
    else:
        kind, levels = "closed", [(profile.duration, float(load.concurrency or 0))]
    return build_plan(
        warmup_s=profile.warmup,
        levels=levels,
        kind=kind,  # type: ignore[arg-type]
        arrival=load.arrival,
        seed=profile.seed,
    )


def client_config(profile: Profile, base_url: str, api_key: str | None) -> ClientConfig:
    """The config given to ``create_fast_client``: the profile's ``client`` (validated when the
    profile was loaded; not validated again) plus the target, the timeout (``timeout_s`` is
    ``request.timeout``: a profile's client section may not set it) and the request headers
    (values from the environment resolved here, never stored).

    Raises:
        ProfileError: a header names an environment variable that is not set.
    """
    client = profile.client
    update: dict[str, Any] = {"base_url": base_url, "timeout_s": profile.request.timeout}
    if api_key is not None:
        update["api_key"] = api_key
    headers = resolve_headers(profile)
    if headers:
        update["default_headers"] = headers
    return client.model_copy(update=update)


def resolve_headers(profile: Profile) -> dict[str, str]:
    """The profile's ``request.headers`` with ``{env: NAME}`` values read from the environment.

    Raises:
        ProfileError: a named variable is not set (the message names the header and the
            variable, never a value).
    """
    out: dict[str, str] = {}
    for name, value in profile.request.headers.items():
        if isinstance(value, str):
            out[name] = value
            continue
        found = os.environ.get(value.env)
        if not found:
            raise ProfileError(
                f"request.headers.{name} reads the environment variable {value.env!r}, "
                "which is not set.",
                hint=f"Export {value.env}=<value> and run again.",
            )
        out[name] = found
    return out


def trial_secrets(profile: Profile, api_key: str | None) -> tuple[str, ...]:
    """The values masked in a trial's failure texts: the API key and every header value.

    Header values come from the profile or, for ``{env: NAME}``, from the environment (a
    variable that is not set adds nothing; :func:`resolve_headers` refuses it before a request).
    """
    headers = [
        value if isinstance(value, str) else os.environ.get(value.env, "")
        for value in profile.request.headers.values()
    ]
    return secret_values(api_key, headers)


def request_factory(profile: Profile, stripe: tuple[int, int] = (0, 1)) -> RequestFactory:
    """The parameters of each request of a trial, in order (a fresh sequence per trial)."""
    return RequestFactory(profile.request, profile.seed, profile.load.replayed_trace(), stripe)


def check_target_reachable(base_url: str, timeout_s: float = 3.0) -> None:
    """Check that something accepts TCP connections at ``base_url`` before measuring.

    Raises:
        TargetUnreachableError: the host cannot be resolved or refuses the connection, so a run
            would only wait out its duration counting connection errors.
    """
    url = urllib.parse.urlsplit(base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ProfileError(
            f"target.base_url {base_url!r} is not an http(s) URL.",
            hint="Write it like https://api.example.com/v1.",
        )
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise TargetUnreachableError(
            f"cannot connect to the target {url.hostname}:{port} ({exc.strerror or exc}).",
            hint="Start the server, or fix target.base_url in the profile.",
        ) from None


@contextlib.contextmanager
def open_target(profile: Profile) -> Iterator[tuple[str, str | None, MockServer | None]]:
    """Yield ``(base_url, api_key, mock_server_or_None)`` for the profile's target."""
    target = profile.target
    if target.base_url:
        key = None
        if target.api_key_env:
            key = os.environ.get(target.api_key_env)
            if not key:
                raise ProfileError(
                    f"target.api_key_env names {target.api_key_env!r}, which is not set.",
                    hint=f"Export {target.api_key_env}=<your key> and run again.",
                )
        check_target_reachable(target.base_url)
        yield target.base_url, key, None
        return
    from harborbench.mockserver.process import MockServer
    from harborbench.mockserver.settings import MockSettings

    with MockServer(target.mock or MockSettings()) as server:
        yield server.base_url, MOCK_API_KEY, server


class TrialClient(Protocol):
    """What a trial needs of the client under test (``FastHarborAI`` or a test double).

    ``chat.completions.acreate(**params)`` sends one request; ``optimization_status()`` and
    ``get_statistics()`` return dicts stored in the result; ``aclose()`` releases it.
    """

    @property
    def chat(self) -> Any: ...

    def optimization_status(self) -> dict[str, Any]: ...

    def get_statistics(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


#: Open loop: default backlog bound, in multiples of the client's ``max_concurrent_requests``.
MAX_OUTSTANDING_PER_CLIENT_SLOT = 4
#: The client limit assumed when the client does not report ``max_concurrent_requests``.
DEFAULT_CLIENT_LIMIT = 100


def max_outstanding(profile: Profile, status: dict[str, Any]) -> int:
    """The open loop's backlog bound: ``load.max_outstanding``, or 4 x the client's limit.

    Args:
        profile: the profile (its ``load.max_outstanding`` wins when set).
        status: the client's ``optimization_status()`` (its ``max_concurrent_requests``).

    Returns:
        The most requests pending at once (>= 1).
    """
    if profile.load.max_outstanding is not None:
        return profile.load.max_outstanding
    limit = status.get("max_concurrent_requests")
    if not isinstance(limit, int) or limit < 1:
        limit = DEFAULT_CLIENT_LIMIT
    return MAX_OUTSTANDING_PER_CLIENT_SLOT * limit


async def run_trial(
    profile: Profile,
    plan: LoadPlan,
    base_url: str,
    api_key: str | None,
    *,
    index: int,
    server: MockServer | None = None,
    progress: ProgressCallback | None = None,
    stop: asyncio.Event | None = None,
    clock: Clock | None = None,
    client: TrialClient | None = None,
    start_ns: int | None = None,
    on_rows: Callable[[list[IntervalRow]], object] | None = None,
) -> TrialResult:
    """Run one trial: warmup then the measurement window.

    The load driver and the one-second ticker run in one ``asyncio.TaskGroup``: an exception in
    either (or in the ``progress`` callback) ends the trial and is raised, never swallowed.

    Args:
        profile: the validated profile.
        plan: its load plan (:func:`plan_from_profile`).
        base_url, api_key: the target (unused when ``client`` is given).
        index: 0-based trial number.
        server: the built-in mock, whose counters are reset and read around the trial.
        progress: called about once per second.
        stop: when set, the trial ends early and is marked interrupted.
        clock: reads the time and sleeps (default :class:`~harborbench.engine.clock.Clock`,
            ``time.perf_counter_ns``); tests pass a virtual clock.
        client: the client under test; default a fresh ``create_fast_client`` for this trial,
            closed at its end. A client passed in is used as is and not closed.
        start_ns: when given, the trial starts at this ``clock.now_ns()`` reading (the client is
            built first), so that shards started together share one measurement window; a start
            already in the past starts at once, keeping the schedule anchored at ``start_ns``.
        on_rows: called once per second with the time-series rows closed in that second (often
            one, none during a stall), as a shard's progress and liveness report.

    Returns:
        The trial's figures.

    Raises:
        ProfileError: the ``client`` section is not a valid client config.
    """
    clock = clock if clock is not None else Clock()
    factory = request_factory(profile, plan.stripe)
    slo = (
        SloLimits.from_seconds(profile.slo.ttft_max, profile.slo.tpot_max, profile.slo.latency_max)
        if profile.slo is not None
        else None
    )
    own_client = client is None
    if client is None:
        try:
            client = create_fast_client(client_config(profile, base_url, api_key))
        except ConfigError as exc:
            raise ProfileError(
                f"client: {exc}", hint="Fix the client section of the profile."
            ) from None
    if server is not None:
        await asyncio.to_thread(server.reset_stats)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    pending: set[asyncio.Task[None]] = set()
    lag = LoopLagMonitor()
    status = client.optimization_status()
    backlog = max_outstanding(profile, status) if plan.kind == "open" else None
    try:
        if start_ns is None:
            start_ns = clock.now_ns()
        else:
            await clock.sleep_until_ns(start_ns)
        rec = Recorder(
            start_ns, plan.warmup_s, plan.window_s, open_loop=plan.kind == "open", slo=slo,
            secrets=trial_secrets(profile, api_key),
        )  # fmt: skip
        sender = RequestSender(
            client.chat.completions.acreate, factory.next_params, rec, clock.reader,
            stream=profile.request.stream,
        )  # fmt: skip
        sampler = ResourceSampler()
        await lag.start()
        rows: list[IntervalRow] = []
        samples: list[ResourceSample] = []
        if plan.kind == "open":

            def dropped(intended_ns: npt.NDArray[np.int64]) -> None:
                factory.skip(len(intended_ns))  # the next arrival keeps its own trace line
                rec.arrivals_dropped(intended_ns)

            driver = drive_open_loop(
                plan, sender.send, start_ns, clock, pending,
                window_end_ns=rec.window_end_ns,
                max_outstanding=backlog or 1,
                on_dropped=dropped, on_late=rec.arrivals_late,
            )  # fmt: skip
        else:
            driver = drive_closed_loop(plan, sender.send, start_ns, clock)
        ticker = _tick(
            rec, sampler, samples, rows, plan, clock, progress, sender, index, profile.repeat, lag,
            on_rows,
        )  # fmt: skip
        try:
            async with asyncio.TaskGroup() as group:
                driver_task = group.create_task(driver)
                ticker_task = group.create_task(ticker)
                interrupted = await _wait_window(rec.window_end_ns, stop, clock)
                ticker_task.cancel()
                if plan.kind == "open" and not interrupted:
                    await driver_task  # only overdue arrivals are left: counted as sent late
                driver_task.cancel()
                end_ns = min(clock.now_ns(), rec.window_end_ns)
                in_flight_at_end = sender.close_window(end_ns, profile.request.timeout)
                window_s = max((end_ns - rec.warmup_end_ns) / NS_PER_S, 0.0)
                samples.append(sampler.sample(window_s))  # before the unmeasured clean-up
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None
        await _cancel_all(pending)
        closed = rec.pop_intervals_before(math.inf)  # type: ignore[arg-type]
        rows.extend(interval_rows(closed, samples, plan, window_s, slo=slo is not None))
        statistics = client.get_statistics()
    finally:
        # Structured concurrency: whatever ended the trial (the window, a stop, a bug in a
        # driver), no worker, request or timer outlives it.
        await _cancel_all(pending)
        await lag.stop()
        if own_client:
            await client.aclose()
    server_stats = await asyncio.to_thread(server.stats) if server is not None else None
    return trial_result(
        profile, plan, rec, sender, lag, samples, rows, index=index, started_at=started_at,
        window_s=window_s, in_flight_at_end=in_flight_at_end, interrupted=interrupted,
        status=status, statistics=statistics, server_stats=server_stats, max_outstanding=backlog,
    )  # fmt: skip


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that ended a trial's task group (a bug in the driver, the ticker or progress).

    The task group cancels its other tasks when one fails, so the group holds that one error;
    it is raised as itself (its own traceback kept) so callers see the real exception type.
    """
    first = group.exceptions[0]
    return _first_error(first) if isinstance(first, BaseExceptionGroup) else first


async def _cancel_all(pending: set[asyncio.Task[None]]) -> None:
    """Cancel every pending request, and wait until they have ended."""
    everything = list(pending)
    for task in everything:
        task.cancel()
    await asyncio.gather(*everything, return_exceptions=True)


async def _wait_window(end_ns: int, stop: asyncio.Event | None, clock: Clock) -> bool:
    """Wait until the window ends; return True if stopped early by ``stop``."""
    while (remaining_ns := end_ns - clock.now_ns()) > 0:
        if stop is None:
            await clock.sleep_until_ns(end_ns)
            continue
        try:
            await asyncio.wait_for(stop.wait(), remaining_ns / NS_PER_S)
        except TimeoutError:
            continue
        return True
    return False


async def _tick(
    rec: Recorder,
    sampler: ResourceSampler,
    samples: list[ResourceSample],
    rows: list[IntervalRow],
    plan: LoadPlan,
    clock: Clock,
    progress: ProgressCallback | None,
    sender: RequestSender,
    index: int,
    trials: int,
    lag: LoopLagMonitor,
    on_rows: Callable[[list[IntervalRow]], object] | None = None,
) -> None:
    """Once per second, on a grid aligned to the window start: sample, close intervals, report.

    At the start of the window the event-loop lag is reset, so warmup stalls do not count. Ticks
    stop before the end of the window (the trial takes the last sample itself); a tick that
    comes due late, after a stall, is still stamped with its own second.
    """
    j = -math.ceil(plan.warmup_s) + 1 if plan.warmup_s > 0 else 0
    while True:
        tick_ns = rec.warmup_end_ns + j * NS_PER_S
        if tick_ns >= rec.window_end_ns:
            return
        if tick_ns >= rec.start_ns:
            await clock.sleep_until_ns(tick_ns)
            samples.append(sampler.sample(float(j)))
            if j == 0:
                lag.histogram.reset()
            closed = interval_rows(
                rec.pop_intervals_before(j), samples, plan, None, slo=rec.slo is not None
            )
            rows.extend(closed)
            if on_rows is not None:
                on_rows(closed)
            if progress is not None:
                last = closed[-1] if closed and closed[-1].t_s == j - 1 else None
                p95 = last.service_p95_s if last else None
                progress(
                    Progress(
                        trial=index + 1,
                        trials=trials,
                        phase="warmup" if j <= 0 and plan.warmup_s > 0 else "measure",
                        elapsed_s=(clock.now_ns() - rec.start_ns) / NS_PER_S,
                        total_s=plan.total_s,
                        throughput_ops=float(last.successes) if last else 0.0,
                        p95_s=p95,
                        successes=rec.successes,
                        failures=rec.failures,
                        in_flight=sender.in_flight,
                    )
                )
        j += 1


def build_result(
    profile: Profile,
    name: str,
    trials: list[TrialResult],
    environment: dict[str, Any],
    *,
    interrupted: bool,
) -> RunResult:
    """Assemble the run's result from its trials (merged histograms, summed counts, gates).

    An interrupted run is ``status: incomplete`` (it did not measure all it planned); the
    coordinator of a split run also marks it so when a shard was lost.
    """
    total = merge_trials(trials) if trials else None
    return RunResult(
        schema_version=SCHEMA_VERSION,
        name=name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        harborbench_version=__version__,
        profile=redacted_profile(profile),
        environment=environment,
        metric_definitions=METRIC_DEFINITIONS,
        reference={"plan_baseline_ops": PLAN_BASELINE_OPS, "plan_target_ops": PLAN_TARGET_OPS},
        trials=trials,
        total=total,
        gates=evaluate_gates(total, profile.gates) if total else [],
        interrupted=interrupted,
        status="incomplete" if interrupted else "complete",
    )


def redacted_profile(profile: Profile) -> dict[str, Any]:
    """The resolved profile as stored in ``result.json``: request header values written in the
    profile are replaced by ``"<redacted>"`` (they may be tokens); ``{env: NAME}`` keeps only the
    variable's name, and no value read from the environment is ever in it."""
    data = profile.model_dump(mode="json")
    headers = data["request"].get("headers") or {}
    data["request"]["headers"] = {
        k: (v if isinstance(v, dict) else REDACTED) for k, v in headers.items()
    }
    return data


async def arun(
    profile: Profile,
    *,
    name: str | None = None,
    progress: ProgressCallback | None = None,
    on_trial: Callable[[RunResult], object] | None = None,
    stop: asyncio.Event | None = None,
) -> RunResult:
    """Run a profile: start the target, run every trial, return the result.

    Args:
        profile: a validated profile (:func:`harborbench.profile.load_profile`).
        name: the run name (default: the profile's name).
        progress: called about once per second with a :class:`Progress`.
        on_trial: called with the result so far after every trial (to save as you go).
        stop: set it to end the run early; the partial result is marked interrupted.

    Returns:
        The run's result (``interrupted`` set if stopped early).

    Raises:
        TargetUnreachableError: the mock would not start or the target cannot be reached.
        AllRequestsFailedError: not one measured request succeeded (the result is still passed
            to ``on_trial`` first).
        ProfileError: the client section or the API key variable is wrong.
    """
    from harborbench.engine.session import MeasurementSession  # it builds on this module

    run_name = name or profile.name
    session = MeasurementSession(profile)
    trials: list[TrialResult] = []
    interrupted = False
    async with session:
        for index in range(profile.repeat):
            trial = await session.trial(profile, index=index, progress=progress, stop=stop)
            trials.append(trial)
            interrupted = trial.interrupted
            if on_trial is not None:
                on_trial(session.result(profile, trials, interrupted=interrupted, name=run_name))
            if interrupted:
                break
    result = session.result(profile, trials, interrupted=interrupted, name=run_name)
    session.check_succeeded(result)
    return result


def as_sentences(parts: list[str]) -> str:
    """Join clauses such as health warnings as sentences: a capital first, a full stop last."""
    return " ".join(
        p[:1].upper() + p[1:] + ("" if p.endswith((".", "!", "?")) else ".") for p in parts if p
    )


def _nothing_succeeded(total: TrialResult, base_url: str) -> RunFailedError:
    """The error for a run in which not one measured request succeeded (exit 4).

    Three cases are told apart: requests sent in the window that were all still in flight at
    its end; no request sent in the window at all (those of the warmup still held every worker
    or slot of the client); and requests that failed, where a 404 from a ``base_url`` without
    ``/v1`` names the fix.
    """
    health = as_sentences(total.health.warnings)
    if total.failures == 0:
        if total.in_flight_at_end == 0:
            msg = (
                f"no request was sent inside the {total.window_s:.1f} s window: the requests "
                "sent during warmup were still pending and held every worker (or every slot of "
                "the client), so nothing was measured."
            )
        else:
            msg = (
                f"no request completed inside the {total.window_s:.1f} s window "
                f"({total.in_flight_at_end} sent in it were still in flight at its end)."
            )
        return AllRequestsFailedError(
            f"{msg} {health}".strip(),
            hint="Lower the load or lengthen the duration; check the target's latency.",
        )
    kinds = ", ".join(f"{k} x{n}" for k, n in total.failures_by_kind.items())
    first = next(iter(total.failure_examples.values()), "")
    msg = f"every measured request failed ({kinds}); first error: {first}"
    if set(total.failures_by_kind) <= {"connection", "timeout"}:
        return TargetUnreachableError(msg, hint=f"Is the target at {base_url} up?")
    root = base_url.rstrip("/")
    without_v1 = not urllib.parse.urlsplit(root).path.endswith("/v1")
    if "http_404" in total.failures_by_kind and without_v1:
        return AllRequestsFailedError(
            msg.rstrip(".") + ".",
            hint=f"The target answered 404 Not Found, and an OpenAI-compatible API is served "
            f"under /v1: set target.base_url to {root}/v1.",
        )
    return AllRequestsFailedError(msg)


def run(profile: Profile, **kwargs: Any) -> RunResult:
    """Synchronous :func:`arun` (for notebooks and scripts): ``harborbench.engine.run(profile)``."""
    return asyncio.run(arun(profile, **kwargs))
