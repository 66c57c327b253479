"""The runner: drives the client under test through a profile and measures it.

``run(profile)`` is the library entry point behind ``harborbench run``: it starts the target
(the built-in mock in its own process, or an external ``base_url``), runs ``profile.repeat``
trials, and returns a :class:`~harborbench.result.RunResult`. It never prints: progress reaches
the caller through a callback, and each finished trial through ``on_trial`` so that the caller
can save results as it goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from harborbench import __version__
from harborbench.engine.drivers import drive_closed_loop, drive_open_loop
from harborbench.engine.recorder import Interval, Recorder
from harborbench.engine.request import RequestSender
from harborbench.engine.schedule import NS_PER_S, LoadPlan, build_plan
from harborbench.engine.summaries import (
    latency_summary,
    merge_trials,
    stream_summary,
)
from harborbench.environment import collect_environment
from harborbench.errors import AllRequestsFailedError, ProfileError, TargetUnreachableError
from harborbench.gates import GateThresholds, evaluate_gates
from harborbench.harborai import create_fast_client
from harborbench.harborai.errors import ConfigError
from harborbench.metrics.histogram import LatencyHistogram
from harborbench.metrics.looplag import LoopLagMonitor
from harborbench.metrics.resources import (
    ResourceSample,
    ResourceSampler,
    cpu_summary,
    memory_trend,
)
from harborbench.result import (
    METRIC_DEFINITIONS,
    PLAN_BASELINE_OPS,
    PLAN_TARGET_OPS,
    SCHEMA_VERSION,
    CpuFigures,
    HealthFigures,
    IntervalRow,
    MemoryFigures,
    RunResult,
    TrialResult,
)

if TYPE_CHECKING:
    from harborbench.mockserver.process import MockServer
    from harborbench.profile import Profile

#: API key sent to the built-in mock (it accepts any); never a real secret.
MOCK_API_KEY = "harborbench-mock-key"
#: Health thresholds for the load generator itself.
LAG_WARN_S = 0.02
ACHIEVED_WARN_RATIO = 0.9


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


ProgressCallback = Callable[[Progress], None]


def plan_from_profile(profile: Profile) -> LoadPlan:
    """Turn a profile's ``load``, ``warmup``, ``duration`` and ``seed`` into a :class:`LoadPlan`."""
    load = profile.load
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


def client_config(profile: Profile, base_url: str, api_key: str | None) -> dict[str, Any]:
    """The config given to ``create_fast_client``: the profile's ``client`` plus the target."""
    config = dict(profile.client)
    config["base_url"] = base_url
    if api_key is not None:
        config["api_key"] = api_key
    config.setdefault("timeout_s", profile.request.timeout)
    return config


def request_params(profile: Profile) -> dict[str, Any]:
    """Keyword arguments of every ``acreate`` call of the run."""
    req = profile.request
    params: dict[str, Any] = {
        "model": req.model,
        "messages": req.build_messages(profile.seed),
        "max_tokens": req.max_tokens,
        "stream": req.stream,
    }
    if req.stream:
        params["stream_options"] = {"include_usage": True}
    return params


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
        yield target.base_url, key, None
        return
    from harborbench.mockserver.process import MockServer
    from harborbench.mockserver.settings import MockSettings

    with MockServer(target.mock or MockSettings()) as server:
        yield server.base_url, MOCK_API_KEY, server


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
    clock: Callable[[], int] = time.perf_counter_ns,
) -> TrialResult:
    """Run one trial: warmup then the measurement window, with a fresh client.

    Args:
        profile: the validated profile.
        plan: its load plan (:func:`plan_from_profile`).
        base_url, api_key: the target.
        index: 0-based trial number.
        server: the built-in mock, whose counters are reset and read around the trial.
        progress: called about once per second.
        stop: when set, the trial ends early and is marked interrupted.
        clock: nanosecond clock.

    Returns:
        The trial's figures.

    Raises:
        ProfileError: the ``client`` section is not a valid client config.
    """
    try:
        client = create_fast_client(client_config(profile, base_url, api_key))
    except ConfigError as exc:
        raise ProfileError(
            f"client: {exc}", hint="Fix the client section of the profile."
        ) from None
    if server is not None:
        await asyncio.to_thread(server.reset_stats)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        start_ns = clock()
        rec = Recorder(start_ns, plan.warmup_s, plan.window_s, open_loop=plan.kind == "open")
        sender = RequestSender(client.chat.completions.acreate, request_params(profile), rec, clock)
        sampler = ResourceSampler()
        lag = LoopLagMonitor()
        await lag.start()
        rows: list[IntervalRow] = []
        samples: list[ResourceSample] = []
        pending: set[asyncio.Task[None]] = set()

        def unsent() -> None:
            rec.unsent += 1

        if plan.kind == "open":
            driver = asyncio.create_task(
                drive_open_loop(plan, sender.send, start_ns, clock, pending, unsent)
            )
        else:
            driver = asyncio.create_task(drive_closed_loop(plan, sender.send, start_ns, clock))
        ticker = asyncio.create_task(
            _tick(rec, sampler, samples, rows, plan, clock, progress, sender, index, profile.repeat)
        )
        interrupted = await _wait_window(rec.window_end_ns, driver, stop, clock)
        end_ns = min(clock(), rec.window_end_ns)
        in_flight_at_end = sender.in_flight + rec.late_completions
        ticker.cancel()
        driver.cancel()
        for task in list(pending):
            task.cancel()
        await asyncio.gather(ticker, driver, *pending, return_exceptions=True)
        window_s = max((end_ns - rec.warmup_end_ns) / NS_PER_S, 0.0)
        samples.append(sampler.sample(window_s))
        rows.extend(_rows(rec.pop_intervals_before(math.inf), samples, plan, window_s))  # type: ignore[arg-type]
        await lag.stop()
        status = client.optimization_status()
        statistics = client.get_statistics()
    finally:
        await client.aclose()
    server_stats = await asyncio.to_thread(server.stats) if server is not None else None
    return _trial_result(
        profile, plan, rec, sender, lag, samples, rows, index=index, started_at=started_at,
        window_s=window_s, in_flight_at_end=in_flight_at_end, interrupted=interrupted,
        status=status, statistics=statistics, server_stats=server_stats,
    )  # fmt: skip


async def _wait_window(
    end_ns: int, driver: asyncio.Task[None], stop: asyncio.Event | None, clock: Callable[[], int]
) -> bool:
    """Wait until the window ends; return True if stopped early by ``stop``."""
    stop_task = asyncio.create_task(stop.wait()) if stop is not None else None
    waiting: set[asyncio.Future[Any]] = {driver}
    if stop_task is not None:
        waiting.add(stop_task)
    try:
        while (remaining_ns := end_ns - clock()) > 0:
            done, _ = await asyncio.wait(
                waiting, timeout=remaining_ns / NS_PER_S, return_when=asyncio.FIRST_COMPLETED
            )
            if stop_task is not None and stop_task in done:
                return True
            if driver in done:
                driver.result()  # a bug in a driver surfaces here
                waiting.discard(driver)
                if not waiting:
                    await asyncio.sleep(max(end_ns - clock(), 0) / NS_PER_S)
        return False
    finally:
        if stop_task is not None:
            stop_task.cancel()


async def _tick(
    rec: Recorder,
    sampler: ResourceSampler,
    samples: list[ResourceSample],
    rows: list[IntervalRow],
    plan: LoadPlan,
    clock: Callable[[], int],
    progress: ProgressCallback | None,
    sender: RequestSender,
    index: int,
    trials: int,
) -> None:
    """Once per second, on a grid aligned to the window start: sample, close intervals, report."""
    j = -math.ceil(plan.warmup_s) + 1 if plan.warmup_s > 0 else 0
    while True:
        tick_ns = rec.warmup_end_ns + j * NS_PER_S
        if tick_ns > rec.start_ns:
            delay_ns = tick_ns - clock()
            if delay_ns > 0:
                await asyncio.sleep(delay_ns / NS_PER_S)
            samples.append(sampler.sample(float(j)))
            closed = rec.pop_intervals_before(j)
            rows.extend(_rows(closed, samples, plan, None))
            if progress is not None:
                last = closed[-1] if closed and closed[-1].index == j - 1 else None
                p95 = last.service.percentile_ns(95) / NS_PER_S if last and last.successes else None
                progress(
                    Progress(
                        trial=index + 1,
                        trials=trials,
                        phase="warmup" if j <= 0 and plan.warmup_s > 0 else "measure",
                        elapsed_s=(clock() - rec.start_ns) / NS_PER_S,
                        total_s=plan.total_s,
                        throughput_ops=float(last.successes) if last else 0.0,
                        p95_s=p95,
                        successes=rec.successes,
                        failures=rec.failures,
                        in_flight=sender.in_flight,
                    )
                )
        j += 1


def _rows(
    intervals: list[Interval],
    samples: list[ResourceSample],
    plan: LoadPlan,
    window_s: float | None,
) -> list[IntervalRow]:
    """Close intervals into time-series rows, filling seconds with no completion with zeros."""
    by_t = {round(s.t_s): s for s in samples}
    out: list[IntervalRow] = []
    for iv in intervals:
        length_s = 1.0
        if window_s is not None and iv.index + 1 > window_s >= iv.index:
            length_s = max(window_s - iv.index, 1e-9)  # the last, partial second
        sample = by_t.get(iv.index + 1)
        out.append(
            IntervalRow(
                t_s=float(iv.index),
                warmup=iv.warmup,
                successes=iv.successes,
                failures=iv.failures,
                throughput_ops=iv.successes / length_s,
                service_p50_s=_pct(iv.service, 50),
                service_p95_s=_pct(iv.service, 95),
                service_p99_s=_pct(iv.service, 99),
                response_p99_s=_pct(iv.response, 99),
                rss_bytes=sample.rss_bytes if sample else None,
                cpu_percent=sample.cpu_percent if sample else None,
                service_histogram=iv.service.encode() if iv.service.count else "",
                response_histogram=iv.response.encode() if iv.response.count else "",
            )
        )
    return out


def _pct(h: LatencyHistogram, q: float) -> float | None:
    return h.percentile_ns(q) / NS_PER_S if h.count else None


def _fill_gaps(rows: list[IntervalRow], first: int, last: int) -> list[IntervalRow]:
    """One row per second from ``first`` to ``last``: seconds with no completion get zeros.

    A stall of the target shows up as zero-throughput rows instead of a missing second.
    """
    have = {round(r.t_s): r for r in rows}
    out = []
    for t in range(first, last + 1):
        row = have.get(t)
        if row is None:
            row = IntervalRow(
                t_s=float(t), warmup=t < 0, successes=0, failures=0, throughput_ops=0.0,
                service_p50_s=None, service_p95_s=None, service_p99_s=None, response_p99_s=None,
                rss_bytes=None, cpu_percent=None, service_histogram="", response_histogram="",
            )  # fmt: skip
        out.append(row)
    return out


def _trial_result(
    profile: Profile,
    plan: LoadPlan,
    rec: Recorder,
    sender: RequestSender,
    lag: LoopLagMonitor,
    samples: list[ResourceSample],
    rows: list[IntervalRow],
    *,
    index: int,
    started_at: str,
    window_s: float,
    in_flight_at_end: int,
    interrupted: bool,
    status: dict[str, Any],
    statistics: dict[str, Any],
    server_stats: dict[str, Any] | None,
) -> TrialResult:
    completed = rec.successes + rec.failures
    per_s = 1.0 / window_s if window_s > 0 else 0.0
    window_samples = [s for s in samples if s.t_s >= 0]
    cpu = cpu_summary(window_samples, rec.successes)
    gates = profile.gates
    trend = memory_trend(
        np.array([s.t_s for s in window_samples], dtype=float),
        np.array([s.rss_bytes for s in window_samples], dtype=float),
        max_slope_mb_per_min=gates.memory_slope_max_mb_per_min or 5.0,
        max_growth_pct=gates.memory_growth_max_pct or 20.0,
    )
    rss = [s.rss_bytes for s in window_samples] or [0]
    service = latency_summary(rec.service)
    response = latency_summary(rec.response) if plan.kind == "open" else None
    health = _health(plan, rec, lag, cpu.saturated, cpu.cpu_percent_mean, window_s, service)
    first_t = -math.ceil(plan.warmup_s) if plan.warmup_s > 0 else 0
    timeseries = _fill_gaps(rows, first_t, max(math.ceil(window_s) - 1, first_t))
    connections: dict[str, Any] = {}
    pool = statistics.get("connection_pool") if isinstance(statistics, dict) else None
    if isinstance(pool, dict):
        connections["client"] = pool
    if server_stats is not None:
        connections["server_connections_accepted"] = server_stats.get("connections_accepted")
        connections["server_requests_total"] = server_stats.get("requests_total")
        connections["server_max_in_flight"] = server_stats.get("max_in_flight")
    return TrialResult(
        index=index,
        started_at=started_at,
        window_s=window_s,
        successes=rec.successes,
        failures=rec.failures,
        failures_by_kind=dict(rec.failures_by_kind),
        failure_examples=dict(rec.failure_examples),
        in_flight_at_end=in_flight_at_end,
        warmup_requests=rec.warmup_requests,
        throughput_ops=rec.successes * per_s,
        attempted_ops=completed * per_s,
        failed_ops=rec.failures * per_s,
        error_rate=rec.failures / completed if completed else None,
        service_time=service,
        response_time=response,
        stream=stream_summary(rec.stream, window_s) if profile.request.stream else None,
        cpu=CpuFigures(
            cpu_seconds=cpu.cpu_seconds,
            cpu_percent_mean=cpu.cpu_percent_mean,
            ops_per_cpu_second=cpu.ops_per_cpu_second,
            saturated=cpu.saturated,
        ),
        memory=MemoryFigures(
            rss_start_bytes=int(rss[0]),
            rss_end_bytes=int(rss[-1]),
            rss_max_bytes=int(max(rss)),
            growth_pct=float(trend.growth_pct),
            slope_mb_per_min=_finite(trend.slope_mb_per_min),
            slope_ci_low=_finite(trend.slope_ci_low),
            slope_ci_high=_finite(trend.slope_ci_high),
            verdict=trend.verdict,
            reason=trend.reason,
        ),
        health=health,
        connections=connections,
        client_status=status,
        client_statistics=statistics,
        server_stats=server_stats,
        timeseries=timeseries,
        interrupted=interrupted,
    )


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _health(
    plan: LoadPlan,
    rec: Recorder,
    lag: LoopLagMonitor,
    cpu_saturated: bool,
    cpu_percent: float,
    window_s: float,
    service: Any,
) -> HealthFigures:
    """Judge whether the load generator itself limited the measurement (Locust-style check)."""
    warnings: list[str] = []
    measured = [s for s in plan.steps if s.end_s > plan.warmup_s]
    configured = (
        sum(
            (min(s.end_s, plan.total_s) - max(s.start_s, plan.warmup_s))
            * ((s.rate_ops if plan.kind == "open" else s.concurrency) or 0)
            for s in measured
        )
        / plan.window_s
        if plan.window_s > 0
        else 0.0
    )
    completed = rec.successes + rec.failures
    if plan.kind == "open":
        achieved = (completed + rec.unsent) / window_s if window_s > 0 else 0.0
        unit = "ops/s"
    else:  # Little's law: mean requests in flight = completion rate x mean service time
        mean_s = service.mean_s or 0.0
        achieved = completed / window_s * mean_s if window_s > 0 else 0.0
        unit = "concurrency"
    loop_p99 = lag.histogram.percentile_ns(99) / NS_PER_S if lag.histogram.count else None
    loop_max = lag.histogram.max_ns / NS_PER_S if lag.histogram.count else None
    send_p99 = rec.send_lag.percentile_ns(99) / NS_PER_S if rec.send_lag.count else None
    send_max = rec.send_lag.max_ns / NS_PER_S if rec.send_lag.count else None
    if cpu_saturated:
        warnings.append(
            f"the load generator used {cpu_percent:.0f}% of a CPU core: its own limits may cap "
            "these figures; lower the load or compare at equal load"
        )
    if loop_p99 is not None and loop_p99 > LAG_WARN_S:
        warnings.append(
            f"event-loop lag p99 {loop_p99 * 1e3:.1f} ms: the generator was busy; timings include "
            "its delays"
        )
    if send_p99 is not None and send_p99 > LAG_WARN_S:
        warnings.append(
            f"sends fell behind the schedule (p99 {send_p99 * 1e3:.1f} ms): the response times "
            "from the intended send include this lag"
        )
    if rec.unsent:
        warnings.append(f"{rec.unsent} arrivals were not sent: too many requests pending")
    if configured > 0 and achieved < ACHIEVED_WARN_RATIO * configured:
        warnings.append(
            f"achieved {achieved:.1f} {unit} of the configured {configured:.1f}: the client or "
            "the target could not keep up with the offered load"
        )
    saturated = cpu_saturated or (
        plan.kind == "open" and send_p99 is not None and send_p99 > LAG_WARN_S
    )
    return HealthFigures(
        loop_lag_p99_s=loop_p99,
        loop_lag_max_s=loop_max,
        send_lag_p99_s=send_p99,
        send_lag_max_s=send_max,
        configured_level=configured,
        achieved_level=achieved,
        level_unit=unit,  # type: ignore[arg-type]
        unsent=rec.unsent,
        generator_saturated=saturated,
        warnings=warnings,
    )


def gate_thresholds(profile: Profile) -> GateThresholds:
    """The absolute gates of a profile's ``gates`` section."""
    g = profile.gates
    return GateThresholds(
        throughput_min=g.throughput_min,
        p95_max=g.p95_max,
        error_rate_max=g.error_rate_max,
        memory_growth_max_pct=g.memory_growth_max_pct,
        memory_slope_max_mb_per_min=g.memory_slope_max_mb_per_min,
        success_rate_min=g.success_rate_min,
    )


def build_result(
    profile: Profile,
    name: str,
    trials: list[TrialResult],
    environment: dict[str, Any],
    *,
    interrupted: bool,
) -> RunResult:
    """Assemble the run's result from its trials (merged histograms, summed counts, gates)."""
    total = merge_trials(trials) if trials else None
    return RunResult(
        schema_version=SCHEMA_VERSION,
        name=name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        harborbench_version=__version__,
        profile=profile.model_dump(mode="json"),
        environment=environment,
        metric_definitions=METRIC_DEFINITIONS,
        reference={"plan_baseline_ops": PLAN_BASELINE_OPS, "plan_target_ops": PLAN_TARGET_OPS},
        trials=trials,
        total=total,
        gates=evaluate_gates(total, gate_thresholds(profile)) if total else [],
        interrupted=interrupted,
    )


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
    run_name = name or profile.name
    plan = plan_from_profile(profile)
    environment = collect_environment()
    trials: list[TrialResult] = []
    interrupted = False
    with open_target(profile) as (base_url, api_key, server):
        for index in range(profile.repeat):
            trial = await run_trial(
                profile, plan, base_url, api_key,
                index=index, server=server, progress=progress, stop=stop,
            )  # fmt: skip
            trials.append(trial)
            interrupted = trial.interrupted
            if on_trial is not None:
                on_trial(
                    build_result(profile, run_name, trials, environment, interrupted=interrupted)
                )
            if interrupted:
                break
    result = build_result(profile, run_name, trials, environment, interrupted=interrupted)
    if not interrupted and result.total is not None and result.total.successes == 0:
        examples = result.total.failure_examples
        kinds = ", ".join(f"{k} x{n}" for k, n in result.total.failures_by_kind.items()) or "none"
        first = next(iter(examples.values()), "no request completed in the window")
        msg = f"every measured request failed ({kinds}); first error: {first}"
        if result.total.failures_by_kind and set(result.total.failures_by_kind) <= {"connection"}:
            raise TargetUnreachableError(msg, hint=f"Is the target at {base_url} up?")
        raise AllRequestsFailedError(msg)
    return result


def run(profile: Profile, **kwargs: Any) -> RunResult:
    """Synchronous :func:`arun` (for notebooks and scripts): ``harborbench.engine.run(profile)``."""
    return asyncio.run(arun(profile, **kwargs))
