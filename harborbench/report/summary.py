"""The Rich summary of a run printed by ``harborbench run``."""

from __future__ import annotations

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from harborbench.report.workload import (
    describe_goodput,
    describe_prompts,
    describe_replay,
    describe_tokens,
    describe_trace_load,
)
from harborbench.result import (
    METRIC_DEFINITIONS,
    PLAN_BASELINE_OPS,
    PLAN_TARGET_OPS,
    LatencySummary,
    RunResult,
    StreamSummary,
    TrialResult,
)
from harborbench.units import BYTES_PER_MB, format_duration, parse_duration

_VERDICT_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x * 1e3:.3f}" if x < 0.01 else f"{x * 1e3:.1f}"


def _latency_table(rows: list[tuple[str, LatencySummary | None]]) -> Table:
    table = Table(title="Latency of successful ops (ms)", title_justify="left")
    table.add_column("distribution")
    for label in ("p50", "p90", "p95", "p99", "p99.9", "max", "mean", "samples"):
        table.add_column(label, justify="right")
    for name, s in rows:
        if s is None:
            continue
        cells = []
        for key, attr in (("p50", s.p50_s), ("p90", s.p90_s), ("p95", s.p95_s), ("p99", s.p99_s),
                          ("p999", s.p999_s)):  # fmt: skip
            text = _ms(attr)
            cells.append(f"[dim]{text}*[/]" if key in s.insufficient else text)
        table.add_row(name, *cells, _ms(s.max_s), _ms(s.mean_s), str(s.count))
    if any(s is not None and s.insufficient for _, s in rows):
        table.caption = "* too few samples for this percentile (fewer than 10 above it)"
    return table


def health_lines(t: TrialResult) -> list[str]:
    """The summary's health lines of a trial (or the merged run): ``generator saturated`` first
    when the generator limited the measurement (``health.generator_saturated`` in result.json,
    defined in its ``metric_definitions``), then the health warnings."""
    lines = list(t.health.warnings)
    if t.health.generator_saturated:
        why = METRIC_DEFINITIONS["generator_saturated"].removeprefix(
            "the load generator limited the measurement: "
        )
        lines.insert(
            0,
            f"generator saturated: the load generator limited the measurement ({why}); these "
            "figures measure this machine as much as the client",
        )
    return lines


def render_summary(
    result: RunResult, console: Console, *, folder: str | None = None, html: bool = False
) -> None:
    """Print the summary of a run: throughput, latency, errors, CPU, memory, health, gates."""
    t = result.total
    if t is None:
        console.print("[yellow]No trial completed: nothing was measured.[/]")
        return
    profile = result.profile
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    load = profile.get("load", {})
    state = " [yellow](interrupted)[/]" if result.interrupted else ""
    if result.lost_shards:
        state = " [bold red](INCOMPLETE: a shard was lost; survivors only)[/]"
    head.add_row("run", escape(result.name) + state)
    if result.topology is not None:
        head.add_row("topology", escape(describe_topology(result)))
    head.add_row("load", escape(describe_load(load)))
    head.add_row("prompts", escape(describe_prompts(profile)))
    head.add_row(
        "window", f"{t.window_s:.1f} s over {len(result.trials)} trial(s), warmup excluded"
    )
    ratio = t.throughput_ops / PLAN_BASELINE_OPS
    head.add_row(
        "throughput",
        f"[bold]{t.throughput_ops:,.1f} ops/s[/] successful   "
        f"(attempted {t.attempted_ops:,.1f}, failed {t.failed_ops:,.1f} ops/s)",
    )
    goodput = describe_goodput(result, t)
    if goodput is not None:
        head.add_row("goodput", f"[bold]{escape(goodput)}[/]")
    head.add_row(
        "plan reference",
        f"{PLAN_BASELINE_OPS} ops/s baseline (x{ratio:.2f}), {PLAN_TARGET_OPS:g} ops/s target — "
        "the plan's figures from another machine, not a measured baseline",
    )
    err = "–" if t.error_rate is None else f"{t.error_rate:.2%}"
    kinds = ", ".join(f"{escape(k)}: {n}" for k, n in sorted(t.failures_by_kind.items()))
    head.add_row(
        "requests",
        f"{t.successes:,} ok, {t.failures:,} failed (error rate {err}"
        + (f"; {kinds}" if kinds else "")
        + f"), {t.in_flight_at_end} in flight at end",
    )
    status = t.client_status
    if status.get("mode"):
        head.add_row(
            "client",
            f"{escape(str(status['mode']))} mode ({escape(str(status.get('mode_reason')))})",
        )
    eff = t.cpu.ops_per_cpu_second
    head.add_row(
        "CPU",
        f"{t.cpu.cpu_seconds:.2f} CPU s, {t.cpu.cpu_percent_mean:.0f}% of a core, "
        + ("efficiency n/a" if eff is None else f"{eff:,.0f} ops per CPU second"),
    )
    m = t.memory
    slope = "n/a" if m.slope_mb_per_min is None else f"{m.slope_mb_per_min:+.2f} MB/min"
    if m.slope_ci_low is not None and m.slope_ci_high is not None:
        slope += f" [{m.slope_ci_low:+.2f}, {m.slope_ci_high:+.2f}]"
    head.add_row(
        "memory",
        f"RSS {m.rss_start_bytes / BYTES_PER_MB:.1f} → {m.rss_end_bytes / BYTES_PER_MB:.1f} MB "
        f"({m.growth_pct:+.1f}%), slope {slope}, "
        f"[{_VERDICT_STYLE[m.verdict]}]{m.verdict}[/] ({escape(m.reason)})",
    )
    head.add_row("connections", escape(describe_connections(t.connections)) or "–")
    tokens = describe_tokens(t)
    if tokens is not None:
        head.add_row("tokens", escape(tokens))
    replay = describe_replay(t)
    if replay is not None:
        head.add_row("replay", escape(replay))
    retries = describe_retries(result)
    if retries:
        head.add_row("retries", f"[yellow]{escape(retries)}[/]")
    parts: list[object] = [head]
    lat_rows: list[tuple[str, LatencySummary | None]] = [("service time", t.service_time)]
    if t.response_time is not None:
        lat_rows.append(("response time (from intended send)", t.response_time))
    if t.stream is not None:
        lat_rows += stream_latency_rows(t.stream)
    parts.append(_latency_table(lat_rows))
    if result.shards:
        parts.append(shard_table(result))
    if t.stream is not None:
        line = describe_stream(t.stream)
        style = "yellow" if t.stream.token_source != "usage" or t.stream.done_marker_missing else ""
        parts.append(f"[{style}]{escape(line)}[/]" if style else escape(line))
    if result.gates:
        gates = Table(title="Gates", title_justify="left")
        for col in ("gate", "threshold", "observed", "verdict", "alert", "detail"):
            gates.add_column(col)
        for g in result.gates:
            alert = {"ok": "", "warning": "[yellow]warning[/]", "critical": "[red]critical[/]"}[
                g.alert
            ]
            gates.add_row(
                g.name, g.threshold, g.observed,
                f"[{_VERDICT_STYLE[g.verdict]}]{g.verdict}[/]", alert, escape(g.detail),
            )  # fmt: skip
        parts.append(gates)
    health = health_lines(t)
    if health:
        parts.append(
            "[yellow]Measurement health:[/]\n" + "\n".join(f"  • {escape(w)}" for w in health)
        )
    if folder:
        parts.append(
            f"[dim]files: {escape(folder)}/result.json, summary.csv, timeseries.csv"
            + (", report.html" if html else "")
            + "[/]"
        )
    console.print(Panel(Group(*parts), title="harborbench run", border_style="blue"))  # type: ignore[arg-type]


def describe_topology(result: RunResult) -> str:
    """One line: how the run was split (``one process`` for a run without shards)."""
    topo = result.topology
    if topo is None:
        return "one process"
    text = f"{topo.workers} shard(s) via {topo.backend}"
    if topo.backend == "ray":
        text += f" {topo.ray_version} at {topo.ray_address}, placement {topo.placement or 'none'}"
    return text + "; figures above are the exact merge of the shards"


def shard_table(result: RunResult) -> Table:
    """One line per shard under the merged figures: host, ops/s, CPU, loop lag, clock offset.

    A shard's ops/s is its own successes over the common window; the merged figure is their sum.
    """
    table = Table(
        title="Shards (each sends its stripe of the one global plan)", title_justify="left"
    )
    for col in ("shard", "status", "host", "pid", "ops/s", "CPU", "loop lag p99",
                "clock offset", "start late"):  # fmt: skip
        table.add_column(col, justify="right" if col not in ("status", "host") else "left")
    for s in result.shards:
        window = sum(t.window_s for t in s.trials)
        ops = sum(t.successes for t in s.trials) / window if window else None
        cpu = max((t.cpu.cpu_percent_mean for t in s.trials), default=None)
        lag = max((t.health.loop_lag_p99_s or 0.0 for t in s.trials), default=None)
        status = s.status if s.reason is None else f"{s.status}: {s.reason}"
        table.add_row(
            str(s.index),
            f"[red]{escape(status)}[/]" if s.status == "lost" else escape(status),
            escape(s.host or "?"),
            str(s.pid or "?"),
            "–" if ops is None else f"{ops:,.1f}",
            "–" if cpu is None else f"{cpu:.0f}%",
            _ms(lag) + " ms" if lag is not None else "–",
            f"{s.clock_offset_s * 1e3:+.3f} ± {s.clock_uncertainty_s * 1e3:.3f} ms",
            "–" if s.start_lateness_s is None else f"{s.start_lateness_s * 1e3:.1f} ms",
        )
    return table


def describe_load(load: dict[str, object]) -> str:
    """One line describing a profile's load section (closed, open, stages or trace)."""
    if load.get("trace"):
        return describe_trace_load(load)
    if load.get("stages"):
        stages = load["stages"]
        assert isinstance(stages, list)
        return "stages: " + ", ".join(
            f"{_duration(s.get('duration'))} @ "
            + (
                f"{_number(s['rate'])} ops/s"
                if s.get("rate") is not None
                else f"{s.get('concurrency')} workers"
            )
            for s in stages
        )
    if load.get("rate") is not None:
        return f"open loop, {load['rate']} ops/s ({load.get('arrival', 'constant')} arrivals)"
    return f"closed loop, {load.get('concurrency')} workers"


def _duration(value: object) -> str:
    """A stored duration (exact text such as ``"2.6666666666666665s"``) as people read it."""
    try:
        return format_duration(parse_duration(value)) if isinstance(value, str) else str(value)
    except ValueError:
        return str(value)


def _number(value: object) -> str:
    """``300.0`` as ``300``, ``312.5`` as ``312.5``."""
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def stream_latency_rows(stream: StreamSummary) -> list[tuple[str, LatencySummary]]:
    """The latency rows of a streamed run: TTFT, inter-chunk, inter-token (only when per-chunk
    token counts were known), time per output token."""
    rows = [("time to first token", stream.ttft), ("inter-chunk", stream.icl)]
    if stream.itl.count:
        rows.append(("inter-token", stream.itl))
    rows.append(("time per output token", stream.tpot))
    return rows


def describe_stream(stream: StreamSummary) -> str:
    """One line: output tokens and their source, chunks, and streams without ``[DONE]``."""
    chunks = stream.output_chunks
    per_chunk = f", {stream.output_tokens / chunks:.1f} per chunk" if chunks else ""
    source = {
        "usage": "from the server's usage",
        "chunk_count": "COUNTED AS CHUNKS: the server sent no usage, so these are chunks, "
        "not tokens",
        "mixed": f"from usage for {stream.tokens_from_usage:,} streams, COUNTED AS CHUNKS for "
        f"{stream.tokens_from_chunk_count:,} without usage",
        "none": "source unknown",
    }[stream.token_source]
    line = (
        f"output tokens: {stream.output_tokens:,} ({stream.output_tokens_per_s:,.0f}/s), "
        f"{source}; {chunks:,} content chunks{per_chunk}"
    )
    if stream.itl.count == 0:
        line += "; inter-token latency not measured (no per-chunk token counts)"
    if stream.done_marker_missing:
        line += f"; {stream.done_marker_missing:,} streams ended without 'data: [DONE]'"
    return line


def describe_connections(conn: dict[str, object]) -> str:
    """One line on connections: the client pool's new/reused and waits, the server's accepts."""
    parts = []
    pool = conn.get("client")
    if isinstance(pool, dict) and "connections_created" in pool:
        waits = int(pool.get("gate_waits", 0) or 0) + int(pool.get("connector_waits", 0) or 0)
        wait_s = float(pool.get("gate_wait_s", 0) or 0) + float(
            pool.get("connector_wait_s", 0) or 0
        )
        parts.append(
            f"client pool: {pool['connections_created']} new, {pool.get('connections_reused')} "
            f"reused, {waits} waits for a pooled connection ({wait_s:.1f} s in all)"
        )
    if conn.get("server_connections_accepted") is not None:
        parts.append(
            f"server: {conn['server_connections_accepted']} accepted for "
            f"{conn.get('server_requests_total')} requests (last trial, warmup included)"
        )
    return "; ".join(parts)


def describe_retries(result: RunResult) -> str:
    """A warning line when the client retried or the server answered errors, else ``""``.

    The client's retries turn some server errors into successes: the error rate is the
    client's, what the caller sees; this line shows what the server saw (all trials, warmup
    included).
    """
    retries = after_reset = after_timeout = 0
    server_errors = 0
    server_requests = 0
    for t in result.trials:
        proc = t.client_statistics.get("request_processor")
        if isinstance(proc, dict):
            retries += int(proc.get("retries", 0) or 0)
            after_reset += int(proc.get("retries_after_reset", 0) or 0)
            after_timeout += int(proc.get("retries_after_timeout", 0) or 0)
        if t.server_stats:
            by_status = t.server_stats.get("requests_by_status") or {}
            server_errors += sum(n for code, n in by_status.items() if not code.startswith("2"))
            server_requests += int(t.server_stats.get("requests_total") or 0)
    if not retries and not server_errors:
        return ""
    text = f"the client retried {retries:,} times"
    if after_reset or after_timeout:
        text += (
            f" ({after_reset:,} after a connection reset, which the server may have executed; "
            f"{after_timeout:,} after a timeout)"
        )
    if server_requests:
        text += (
            f"; the server answered {server_errors:,} errors to {server_requests:,} requests "
            "(warmup included): a retried request that then succeeded counts as a success"
        )
    return text
