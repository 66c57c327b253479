"""The result model: what a run measured, as written to ``reports/<name>/result.json``.

Pydantic models at the file boundary (SPEC section 7). Every figure carries its unit in its name
(seconds ``_s``, bytes ``_bytes``, ops per second ``_ops``). The report package and ``compare``
read only this model.

Schema versions (``schema_version``; older files are upgraded on reading, see
:mod:`harborbench.documents`):
    1: first version (harborbench 0.1.0).
    2: streams: ``stream.itl`` of version 1 (gaps between chunks) is now ``stream.icl``
       (inter-chunk latency); ``stream.itl`` is the inter-token latency, from streams whose
       per-chunk token counts are known; where token counts came from, and streams that ended
       without ``[DONE]``. Version 1 files are read with :func:`_migrate_v1`.
       Also added (with defaults, so older files read as one-process complete runs):
       ``status``, ``topology`` and ``shards`` of runs split with ``--workers`` / ``--ray``.
    3: ``kind: "run"``; ``total`` is written only for runs of two trials or more (all trials
       merged); with one trial it is ``null`` in the file and :attr:`RunResult.total` reads
       ``trials[0]``, which is the whole run. Earlier versions wrote a byte-for-byte copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    field_serializer,
    model_validator,
)

from harborbench.errors import ResultFileError

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 3
PLAN_BASELINE_OPS = 505.6
PLAN_TARGET_OPS = 1000.0

METRIC_DEFINITIONS: dict[str, str] = {
    "op": "one chat-completion request sent over a real socket that came back with a parsed, "
    "successful response",
    "measurement_window": "from the end of warmup to the end of the configured duration; an "
    "arrival belongs to it by its intended send time (closed loop: its send time); requests of "
    "the warmup are excluded from every figure",
    "planned_arrivals": "open loop: every arrival intended inside the window is accounted for "
    "once: planned = sent in the window (completed, failed or in flight at its end) + unsent "
    "(dropped: max_outstanding requests were pending, k6's dropped_iterations) + sent_late "
    "(reached by the generator only after the window closed, e.g. after a stall; not sent)",
    "throughput_ops": "successful ops completed inside the window / window length (ops/s)",
    "attempted_ops": "requests sent inside the window (completed, failed or still in flight at "
    "its end) / window length",
    "in_flight_at_end": "requests sent in the window and still pending when it closed, having "
    "waited at most the request timeout; neither successes nor failures. One pending for longer "
    "than the request timeout never came back in time: a timeout failure",
    "error_rate": "failed / (successful + failed), so requests that never came back (pending "
    "past the request timeout when the window closed) count, by kind: http_<status>, timeout, "
    "connection, "
    "stream, invalid_response (a 2xx answer that is not JSON, lacks id/choices/message.role, or "
    "is not an event stream for a stream request), client_error",
    "success_rate": "successful / (successful + failed + unsent): an open-loop arrival dropped "
    "because max_outstanding requests were pending is not a success; in closed loop successful "
    "/ completed; requests in flight at the window's end have no outcome yet and are left out",
    "dropped_pct": "open loop: unsent / planned arrivals of the window, percent; gate "
    "dropped_max_pct (1% when the profile sets none, passes at or below it)",
    "service_time": "from the moment the request is handed to the client to the parsed response "
    "(time.perf_counter_ns)",
    "response_time": "open loop only: from the intended send time of the arrival schedule to the "
    "parsed response, so that a stall or a queue cannot hide (coordinated omission correction)",
    "percentiles": "from an HDR histogram, 3 significant figures (relative error <= 0.1%), "
    "range 1 us to 1 h (values outside are recorded at the edge and counted: clamped_below, "
    "clamped_above, health.clamped_latencies); percentiles of several trials or intervals come "
    "from merged histograms, never averaged; a percentile is marked insufficient when fewer than "
    "10 samples lie above it; percentiles are on the 0-100 scale",
    "ttft": "streams: time to first token, from the send to the first chunk carrying text",
    "icl": "streams: inter-chunk latency, the gap between consecutive chunks carrying text (a "
    "chunk may carry several tokens, so this is not an inter-token latency)",
    "itl": "streams: inter-token latency, only from streams whose every content chunk carried "
    "a token count (cumulative usage per chunk, as vLLM's continuous_usage_stats): a chunk of k "
    "tokens after a gap g gives k samples of g/k; empty when no server sent per-chunk counts",
    "tpot": "streams: time per output token, per request: (end - first token) / (output tokens "
    "- tokens in the first chunk); the first chunk's tokens are the server's per-chunk count "
    "when known, else output tokens / content chunks. Follows vLLM benchmark_serving and NVIDIA "
    "GenAI-Perf ((latency - TTFT) / (output tokens - 1)), corrected for chunks carrying several "
    "tokens (vLLM issue #27485)",
    "output_tokens": "streams: the server's usage.completion_tokens; for a stream without usage "
    "its content chunks are counted instead, and token_source says so (usage, chunk_count or "
    "mixed)",
    "done_marker_missing": "streams that ended cleanly after a finish_reason without "
    "'data: [DONE]'; counted as successes, as the official openai SDK accepts them",
    "cpu_efficiency": "successful ops per CPU second of the measuring process",
    "memory_growth": "RSS of the measuring process sampled every second; growth = change of the "
    "fitted Theil-Sen line over the window, in percent of its level at the start (robust to a "
    "sawtooth or one odd sample; never from two single samples); fails at or above the limit",
    "memory_slope": "RSS of the measuring process, Theil-Sen slope in MB/min with a 95% interval; "
    "passes when the whole interval is below the limit, fails when it is wholly at or above it; "
    "inconclusive for a window shorter than 5 minutes",
    "send_lag": "open loop: actual send time minus intended send time, over every arrival of the "
    "window sent or reached late (sent_late)",
    "achieved_level": "open loop: requests sent in the window / window (ops/s); closed loop: "
    "time spent in the client call inside the window, summed over requests / window (the mean "
    "concurrency in the client call, measured); with the client setting that caps requests on "
    "the wire (client_limit) and the mean number above it, waiting inside the client",
    "generator_saturated": "the load generator limited the measurement: CPU above 90% of a core, "
    "event-loop lag p99 above 100 ms, open-loop send lag p99 above 20 ms, or arrivals dropped "
    "or reached late",
    "goodput_ops": "successful requests that met every objective of the profile's slo "
    "(ttft_max, tpot_max, latency_max; limits inclusive) / window length (DistServe, OSDI 2024; "
    "vLLM bench serve); times from the intended send in open loop, from the send in closed loop",
    "tokens": "prompt and completion tokens of the measured successes from the server's usage; "
    "prompts are generated at about 4 characters a token (no tokenizer), and that estimate is "
    "shown beside the server's count",
    "replay": "trace replay: each arrival is sent at start + its trace timestamp x time_scale; "
    "send lag = actual minus trace time, over every arrival sent in the window",
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


TokenSource = Literal["usage", "chunk_count", "mixed", "none"]


class StreamSummary(_Model):
    """Streaming figures (see ``metric_definitions``): TTFT, inter-chunk latency, inter-token
    latency (only where per-chunk token counts are known), time per output token, tokens/s, and
    where the token counts came from.

    ``token_source``: ``usage`` (every request's count is the server's usage), ``chunk_count``
    (none sent usage: chunks were counted as tokens), ``mixed``, or ``none`` (no stream).
    """

    ttft: LatencySummary
    icl: LatencySummary
    itl: LatencySummary
    tpot: LatencySummary
    output_tokens: int
    output_tokens_per_s: float
    output_chunks: int
    token_source: TokenSource
    tokens_from_usage: int
    tokens_from_chunk_count: int
    per_chunk_tokens_known: int
    done_marker_missing: int


def token_source(from_usage: int, from_chunk_count: int) -> TokenSource:
    """Where a set of streams' token counts came from, given how many requests used each."""
    if from_usage and from_chunk_count:
        return "mixed"
    return "usage" if from_usage else "chunk_count" if from_chunk_count else "none"


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
    # The client setting that caps requests on the wire, its value, and the mean number of
    # requests in the client call above it (waiting inside the client; either loop kind).
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
    slo_met: int | None = None  # successes meeting every slo objective (None: no slo)


class TokenFigures(_Model):
    """Tokens of the measured successes, from the server's usage (with the client's estimate)."""

    prompt_tokens: int
    completion_tokens: int
    with_usage: int
    without_usage: int
    estimated_prompt_tokens: int  # of the successes with usage: characters / 4
    estimate: str = "4 characters a token (no tokenizer)"


class ReplayFigures(_Model):
    """Trace replay: the trace's arrival times against the achieved ones."""

    trace: str
    trace_lines: int  # lines of the trace file
    replayed_lines: int  # after load.limit
    time_scale: float
    planned_in_window: int  # arrivals whose trace time falls in the window
    sent_in_window: int
    trace_span_s: float | None  # first to last trace time of the arrivals sent in the window
    achieved_span_s: float | None  # first to last actual send of the same arrivals
    send_lag: LatencySummary  # actual - trace time, every arrival sent in the window


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
    goodput_ops: float | None = None  # None: the profile sets no slo
    slo_met: int | None = None
    tokens: TokenFigures | None = None
    replay: ReplayFigures | None = None


class GateResult(_Model):
    """One gate of SPEC section 8 evaluated on a run."""

    name: str
    threshold: str
    observed: str
    verdict: Literal["pass", "fail", "inconclusive"]
    alert: Literal["ok", "warning", "critical"]
    detail: str


class Topology(_Model):
    """How a run was spread over processes or hosts (``harborbench run --workers/--ray``).

    Attributes:
        backend: ``"multiprocessing"`` (shard processes on this host) or ``"ray"`` (one Ray
            actor per shard).
        workers: number of shards N.
        split: the rule giving each shard its part of the one global plan.
        ray_version, ray_address, placement: Ray runs only (``--ray``, ``--placement``).
    """

    backend: Literal["multiprocessing", "ray"]
    workers: int
    split: str = "global index k runs on shard k mod N (open loop: arrivals; closed: workers)"
    ray_version: str | None = None
    ray_address: str | None = None
    placement: str | None = None


class ShardRecord(_Model):
    """One shard of a split run: where it ran, how it ended, and its own trial results.

    Attributes:
        index: shard i of N (0-based).
        status: ``ok``; ``lost`` (died or went silent; the run is incomplete);
            ``interrupted`` (stopped by Ctrl-C or because another shard was lost).
        reason: why a shard is not ``ok``.
        host, pid, boot_id: where it ran.
        clock_offset_s, clock_uncertainty_s: its clock minus the coordinator's, and the bound on
            that estimate (0 on the coordinator's own host: one CLOCK_MONOTONIC).
        start_lateness_s: worst lateness of its start over the trials (how late it received
            the go for the common start time ``t0``; the schedule stays anchored at ``t0``).
        trials: its own figures per trial, before the merge.
    """

    index: int
    status: Literal["ok", "lost", "interrupted"]
    reason: str | None = None
    host: str | None = None
    pid: int | None = None
    boot_id: str | None = None
    clock_offset_s: float = 0.0
    clock_uncertainty_s: float = 0.0
    start_lateness_s: float | None = None
    trials: list[TrialResult] = []


class RunResult(_Model):
    """Everything one ``harborbench run`` measured (``result.json``).

    ``total`` is the whole run: all trials merged (histograms merged, counts summed), or the
    only trial of a one-trial run, or ``None`` before the first trial ended. Read it there, not
    in the file: the file stores it only when it differs from ``trials[0]``.
    """

    schema_version: int = SCHEMA_VERSION
    kind: Literal["run"] = "run"
    name: str
    created_at: str
    harborbench_version: str
    profile: dict[str, Any]
    environment: dict[str, Any]
    metric_definitions: dict[str, str]
    reference: dict[str, float]
    trials: list[TrialResult]
    total: TrialResult | None
    gates: list[GateResult]
    interrupted: bool
    # incomplete: the run did not measure all it planned: it was interrupted (``interrupted``)
    # or a shard was lost (:attr:`lost_shards`)
    status: Literal["complete", "incomplete"] = "complete"
    topology: Topology | None = None  # None: one process (no --workers / --ray)
    shards: list[ShardRecord] = []

    @property
    def lost_shards(self) -> list[ShardRecord]:
        """The shards of a split run that died or went silent (they make it ``incomplete``)."""
        return [s for s in self.shards if s.status == "lost"]

    def summary_frame(self) -> pd.DataFrame:
        """Per-trial summary as a pandas DataFrame, the rows of ``summary.csv``: one per trial
        (``trial`` "1", "2", ...) plus ``total`` for two trials or more; units in the column
        names (``_ms``, ``_ops``, ``_mb``, ``_pct``)."""
        from harborbench.report.files import summary_frame

        return summary_frame(self)

    def timeseries_frame(self) -> pd.DataFrame:
        """The 1-second time series as a pandas DataFrame, the rows of ``timeseries.csv``: one
        per trial and second; ``t_s`` < 0 (``phase`` "warmup") is warmup."""
        from harborbench.report.files import timeseries_frame

        return timeseries_frame(self)

    @model_validator(mode="before")
    @classmethod
    def _total_of_one_trial(cls, data: Any) -> Any:
        """A one-trial run's file has ``total: null``: the whole run is ``trials[0]``."""
        if isinstance(data, dict) and data.get("total") is None:
            trials = data.get("trials")
            if isinstance(trials, list) and len(trials) == 1:
                return {**data, "total": trials[0]}
        return data

    @field_serializer("total", mode="wrap")
    def _no_copy_of_the_only_trial(
        self, value: TrialResult | None, handler: SerializerFunctionWrapHandler
    ) -> Any:
        return None if len(self.trials) == 1 else handler(value)


def load_result(path: str | Path, *, command: str | None = None) -> RunResult:
    """Read the ``result.json`` of a run (any schema version up to :data:`SCHEMA_VERSION`).

    Args:
        path: the file.
        command: the command reading it (``"compare"``), named when the file is of another kind.

    Returns:
        The validated result; a file of an older version is upgraded
        (:func:`harborbench.documents.load_document`).

    Raises:
        ResultFileError: missing, unreadable, not the result of a run (the message names what
            it is), written by a newer harborbench, with no trial, or with a damaged histogram.
    """
    from harborbench.documents import load_document

    p = Path(path)
    result = load_document(p, "run", command)
    assert isinstance(result, RunResult)
    _check_trials(p, result)
    _check_histograms(p, result)
    return result


def _check_trials(path: Path, result: RunResult) -> None:
    """Refuse a result with no trial: nothing in it can be compared or reported.

    A run writes one only when it ended before its first trial did: a split run stopped (or
    whose shards were all lost) before then, marked ``interrupted`` or ``incomplete``. A
    complete run always has a trial, so such a file was not written by a run.
    """
    if result.trials:
        return
    if result.interrupted or result.status == "incomplete":
        raise ResultFileError(
            f"{path}: the run ended before its first trial did (it was interrupted, or its "
            "shards were lost), so it has no trial to read.",
            hint="Run it again: harborbench run PROFILE.",
        )
    raise ResultFileError(
        f'{path}: invalid result file at trials: no trial ("trials": []), and a complete run '
        "always has one; is it the right file?"
    )


def _migrate_v1(data: dict[str, Any]) -> None:
    """Read a version 1 result as version 2, in place: its ``stream.itl`` was the gap between
    chunks (now ``icl``); its token counts' source is unknown (``none``), and no per-token
    inter-token latency was measured (an empty ``itl``)."""
    empty = {
        "count": 0, "p50_s": None, "p90_s": None, "p95_s": None, "p99_s": None,
        "p999_s": None, "max_s": None, "mean_s": None, "histogram": "",
        "insufficient": ["p50", "p90", "p95", "p99", "p999"],
    }  # fmt: skip
    trials = data.get("trials")
    totals = [data.get("total")] + (trials if isinstance(trials, list) else [])
    for trial in totals:
        stream = trial.get("stream") if isinstance(trial, dict) else None
        if isinstance(stream, dict) and "icl" not in stream:
            stream["icl"] = stream.pop("itl", empty)
            stream["itl"] = empty
            stream.setdefault("output_chunks", 0)
            stream.setdefault("token_source", "none")
            stream.setdefault("tokens_from_usage", 0)
            stream.setdefault("tokens_from_chunk_count", 0)
            stream.setdefault("per_chunk_tokens_known", 0)
            stream.setdefault("done_marker_missing", 0)


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
            summaries |= {"stream.ttft": t.stream.ttft, "stream.icl": t.stream.icl,
                          "stream.itl": t.stream.itl, "stream.tpot": t.stream.tpot}  # fmt: skip
        if t.replay is not None:
            summaries["replay.send_lag"] = t.replay.send_lag
        for key, summary in summaries.items():
            if summary is not None:
                check(f"{prefix}.{key}.histogram", summary.histogram)
        for j, row in enumerate(t.timeseries):
            check(f"{prefix}.timeseries.{j}.service_histogram", row.service_histogram)
            check(f"{prefix}.timeseries.{j}.response_histogram", row.response_histogram)
