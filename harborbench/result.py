"""The result model: what a run measured, as written to ``reports/<name>/result.json``.

Pydantic models at the file boundary (SPEC section 7). Every figure carries its unit in its name
(seconds ``_s``, bytes ``_bytes``, ops per second ``_ops``). The report package and ``compare``
read only this model.

Schema versions (``schema_version``):
    1: first version (harborbench 0.1.0).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from harborbench.errors import ResultFileError

SCHEMA_VERSION = 1
PLAN_BASELINE_OPS = 505.6
PLAN_TARGET_OPS = 1000.0

METRIC_DEFINITIONS: dict[str, str] = {
    "op": "one chat-completion request sent over a real socket that came back with a parsed, "
    "successful response",
    "measurement_window": "from the end of warmup to the end of the configured duration; requests "
    "sent during warmup are excluded from every figure",
    "throughput_ops": "successful ops completed inside the window / window length (ops/s)",
    "attempted_ops": "requests sent inside the window (completed, failed or still in flight at "
    "its end) / window length",
    "in_flight_at_end": "requests sent in the window and still pending when it closed; neither "
    "successes nor failures",
    "error_rate": "failed / (successful + failed), by kind: http_<status>, timeout, connection, "
    "stream, client_error",
    "service_time": "from the moment the request is handed to the client to the parsed response "
    "(time.perf_counter_ns)",
    "response_time": "open loop only: from the intended send time of the arrival schedule to the "
    "parsed response, so that a stall or a queue cannot hide (coordinated omission correction)",
    "percentiles": "from an HDR histogram, 3 significant figures (relative error <= 0.1%), "
    "range 1 us to 1 h; percentiles of several trials or intervals come from merged histograms, "
    "never averaged; a percentile is marked insufficient when fewer than 10 samples lie above it",
    "ttft": "streams: time to first token, from the send to the first chunk carrying text",
    "itl": "streams: inter-token latency, the gap between consecutive content chunks",
    "tpot": "streams: time per output token after the first, per request",
    "cpu_efficiency": "successful ops per CPU second of the measuring process",
    "memory_growth": "RSS of the measuring process sampled every second; growth = change of the "
    "fitted Theil-Sen line over the window, in percent of its level at the start (robust to a "
    "sawtooth or one odd sample; never from two single samples); fails at or above the limit",
    "memory_slope": "RSS of the measuring process, Theil-Sen slope in MB/min with a 95% interval; "
    "passes when the whole interval is below the limit, fails when it is wholly at or above it; "
    "inconclusive for a window shorter than 5 minutes",
    "send_lag": "open loop: actual send time minus intended send time",
    "loop_lag": "how late a periodic 50 ms timer of the event loop woke up",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LatencySummary(_Model):
    """Percentiles of one latency distribution, seconds, with the sample count."""

    count: int
    p50_s: float | None
    p90_s: float | None
    p95_s: float | None
    p99_s: float | None
    p999_s: float | None
    max_s: float | None
    mean_s: float | None
    insufficient: list[str]
    histogram: str  # hdrh encoding, mergeable
    # Samples outside the histogram's range [1 us, 1 h], recorded at its edge; kept beside the
    # encoding (which cannot hold them) so that merges keep them.
    clamped_below: int = 0
    clamped_above: int = 0


class StreamSummary(_Model):
    """Streaming figures: TTFT, inter-token latency, time per output token, tokens/s."""

    ttft: LatencySummary
    itl: LatencySummary
    tpot: LatencySummary
    output_tokens: int
    output_tokens_per_s: float


class CpuFigures(_Model):
    """CPU use of the measuring process over the window."""

    cpu_seconds: float
    cpu_percent_mean: float
    ops_per_cpu_second: float | None
    saturated: bool


class MemoryFigures(_Model):
    """RSS of the measuring process over the window, and its trend.

    ``rss_start_bytes`` and ``rss_end_bytes`` are the fitted Theil-Sen line at the window's start
    and end (robust to a sawtooth or one odd sample), ``growth_pct`` the growth between them;
    ``rss_max_bytes`` is the largest sample. ``trend_window_s`` and ``samples`` are the span and
    number of samples of the fit; ``max_growth_pct`` and ``max_slope_mb_per_min`` the limits the
    verdict was judged against.
    """

    rss_start_bytes: int
    rss_end_bytes: int
    rss_max_bytes: int
    growth_pct: float
    slope_mb_per_min: float | None
    slope_ci_low: float | None
    slope_ci_high: float | None
    verdict: Literal["pass", "fail", "inconclusive"]
    reason: str
    trend_window_s: float = 0.0
    samples: int = 0
    max_growth_pct: float = 20.0
    max_slope_mb_per_min: float = 5.0


class HealthFigures(_Model):
    """Health of the measurement itself (is the load generator the bottleneck?)."""

    loop_lag_p99_s: float | None
    loop_lag_max_s: float | None
    send_lag_p99_s: float | None
    send_lag_max_s: float | None
    configured_level: float
    achieved_level: float
    level_unit: Literal["ops/s", "concurrency"]
    unsent: int  # arrivals of the window dropped because max_outstanding were pending
    generator_saturated: bool
    warnings: list[str]
    sent_late: int = 0  # arrivals of the window the generator reached only after it closed
    max_outstanding: int | None = None  # open loop: the backlog bound in force
    clamped_latencies: int = 0  # latencies outside [1 us, 1 h] recorded at the edge
    # Closed loop: the client setting that caps requests on the wire, its value, and the mean
    # number of requests in the client call above it (waiting inside the client).
    client_limit_setting: str | None = None
    client_limit: int | None = None
    waiting_in_client_level: float | None = None


class IntervalRow(_Model):
    """The main figures of one one-second interval (by completion time)."""

    t_s: float  # interval start, seconds from the start of the measurement window (< 0: warmup)
    warmup: bool
    successes: int
    failures: int
    throughput_ops: float
    service_p50_s: float | None
    service_p95_s: float | None
    service_p99_s: float | None
    response_p99_s: float | None
    rss_bytes: int | None
    cpu_percent: float | None
    service_histogram: str
    response_histogram: str


class TrialResult(_Model):
    """The figures of one trial (one repetition of the workload)."""

    index: int
    started_at: str
    window_s: float
    successes: int
    failures: int
    failures_by_kind: dict[str, int]
    failure_examples: dict[str, str]
    in_flight_at_end: int
    warmup_requests: int
    throughput_ops: float
    attempted_ops: float
    failed_ops: float
    error_rate: float | None
    service_time: LatencySummary
    response_time: LatencySummary | None
    stream: StreamSummary | None
    cpu: CpuFigures
    memory: MemoryFigures
    health: HealthFigures
    connections: dict[str, Any]
    client_status: dict[str, Any]
    client_statistics: dict[str, Any]
    server_stats: dict[str, Any] | None
    timeseries: list[IntervalRow]
    interrupted: bool


class GateResult(_Model):
    """One gate of SPEC section 8 evaluated on a run."""

    name: str
    threshold: str
    observed: str
    verdict: Literal["pass", "fail", "inconclusive"]
    alert: Literal["ok", "warning", "critical"]
    detail: str


class RunResult(_Model):
    """Everything one ``harborbench run`` measured (``result.json``)."""

    schema_version: int
    name: str
    created_at: str
    harborbench_version: str
    profile: dict[str, Any]
    environment: dict[str, Any]
    metric_definitions: dict[str, str]
    reference: dict[str, float]
    trials: list[TrialResult]
    total: TrialResult | None  # all trials merged (histograms merged, counts summed)
    gates: list[GateResult]
    interrupted: bool


def load_result(path: str | Path) -> RunResult:
    """Read a ``result.json``.

    Args:
        path: the file.

    Returns:
        The validated result.

    Raises:
        ResultFileError: missing, unreadable, not a harborbench result, or written by a newer
            harborbench (its ``schema_version`` is above :data:`SCHEMA_VERSION`).
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultFileError(
            f"{p}: no such result file.", hint="Run `harborbench run PROFILE` first."
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultFileError(f"{p}: not readable as JSON ({exc}).") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ResultFileError(f"{p}: not a harborbench result file (no schema_version).")
    version = data["schema_version"]
    if data.get("kind") not in (None, "run"):
        raise ResultFileError(
            f"{p}: a {data.get('kind')} result, not the result of `harborbench run`.",
            hint="Give a run name or the result.json of a run.",
        )
    if isinstance(version, bool) or not isinstance(version, int):
        raise ResultFileError(f"{p}: schema_version must be an integer, not {version!r}.")
    if version > SCHEMA_VERSION:
        raise ResultFileError(
            f"{p}: written with result schema version {version}, newer than this harborbench "
            f"understands ({SCHEMA_VERSION}).",
            hint="Upgrade harborbench (pip install -U harborbench) to read it.",
        )
    try:
        result = RunResult.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ResultFileError(f"{p}: invalid result file at {loc}: {first['msg']}.") from None
    _check_histograms(p, result)
    return result


def _check_histograms(path: Path, result: RunResult) -> None:
    """Decode every stored histogram once, so that a damaged one is reported here, by key."""
    from harborbench.metrics.histogram import LatencyHistogram

    def check(where: str, encoded: str) -> None:
        if encoded:
            try:
                LatencyHistogram.decode(encoded)
            except ValueError:
                raise ResultFileError(
                    f"{path}: invalid result file at {where}: not a valid encoded histogram."
                ) from None

    trials = [(f"trials.{i}", t) for i, t in enumerate(result.trials)]
    if result.total is not None:
        trials.append(("total", result.total))
    for prefix, t in trials:
        summaries = {"service_time": t.service_time, "response_time": t.response_time}
        if t.stream is not None:
            summaries |= {"stream.ttft": t.stream.ttft, "stream.itl": t.stream.itl,
                          "stream.tpot": t.stream.tpot}  # fmt: skip
        for key, summary in summaries.items():
            if summary is not None:
                check(f"{prefix}.{key}.histogram", summary.histogram)
        for j, row in enumerate(t.timeseries):
            check(f"{prefix}.timeseries.{j}.service_histogram", row.service_histogram)
            check(f"{prefix}.timeseries.{j}.response_histogram", row.response_histogram)
