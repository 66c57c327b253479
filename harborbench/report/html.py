"""The self-contained HTML report of a run: ``reports/<name>/report.html``.

One file that opens offline: inline CSS, inline SVG charts (:mod:`harborbench.report.charts`), no
script, no font or style sheet from the network, and a Content-Security-Policy that forbids every
fetch and every script, so even a value that slipped through could not run. Every value taken
from a result (names, descriptions, error messages, environment, profile) passes through
:func:`html.escape` before it reaches the page.

The page holds what the terminal summary shows (headline figures, latency table, gates with their
verdicts, measurement-health warnings), the charts, the failures by kind, the per-trial figures,
the environment, the resolved profile and the metric definitions.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harborbench.report.charts import Chart, run_charts
from harborbench.report.files import write_atomic
from harborbench.report.summary import (
    describe_connections,
    describe_load,
    describe_retries,
    describe_stream,
    stream_latency_rows,
)
from harborbench.report.workload import (
    describe_goodput,
    describe_prompts,
    describe_replay,
    describe_tokens,
)
from harborbench.result import PLAN_BASELINE_OPS, PLAN_TARGET_OPS, LatencySummary, RunResult
from harborbench.units import BYTES_PER_MB

REPORT_FILE = "report.html"

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"
_SECRET_KEY = re.compile(r"^(api_?key|authorization|password|passwd|secret|bearer|token)$", re.I)
_URL_USERINFO = re.compile(r"^(https?://)[^/@\s]+@", re.I)

_CSS = """
:root { color-scheme: light; --fg: #1b1f24; --muted: #5b6570; --line: #d8dde3; --bg2: #f5f7f9; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
  "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: #fff; }
main { max-width: 1120px; margin: 0 auto; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
p.sub { margin: 0 0 12px; color: var(--muted); }
table { border-collapse: collapse; margin: 6px 0 10px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg2); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
table.kv th { width: 170px; white-space: nowrap; }
.insufficient { color: var(--muted); }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-weight: 600;
  font-size: 12px; }
.pass { background: #dff3e4; color: #1a6b32; }
.fail { background: #fbe0e0; color: #a11a1a; }
.inconclusive { background: #fff1cc; color: #7a5800; }
.warning { background: #fff1cc; color: #7a5800; }
.critical { background: #fbe0e0; color: #a11a1a; }
.banner { padding: 8px 12px; border-radius: 6px; margin: 10px 0; }
figure { margin: 14px 0 22px; }
h3 { font-size: 14.5px; margin: 0 0 2px; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 2px; }
svg.chart { display: block; width: 100%; height: auto; }
pre { background: var(--bg2); border: 1px solid var(--line); padding: 10px; overflow-x: auto;
  font-size: 12.5px; }
dl.defs dt { font-weight: 600; margin-top: 6px; }
dl.defs dd { margin: 0 0 0 18px; }
footer { margin-top: 28px; color: var(--muted); font-size: 12px; }
"""

_CAPTIONS: dict[str, str] = {
    "chart-throughput": "Successful ops completed in each 1-second interval (a point at the middle "
    "of its second). The grey band is warmup, excluded from every figure.",
    "chart-latency-time": "Service time of the successful ops completed in each second: p95 solid, "
    "p99 dashed; dotted: response time from the intended send time (open loop). Each point is "
    "that second's own histogram.",
    "chart-spectrum": "Percentile spectrum of the whole window (all trials merged), HdrHistogram "
    "style: the x axis stretches the tail (90%, 99%, 99.9%, 99.99%). Dashed lines: maxima. "
    "Shaded: fewer than 10 samples above the percentile, too few to trust.",
    "chart-rss": "RSS of the measuring process at the end of each second, with the Theil-Sen "
    "fitted slope over the measurement window (dashed).",
    "chart-errors": "Failed requests completed in each second (every kind; the table below breaks "
    "them down).",
}


def _e(value: object) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}"


def _pct(fraction: float | None, digits: int = 2) -> str:
    return "–" if fraction is None else f"{fraction * 100:.{digits}f}%"


def _badge(word: str) -> str:
    cls = word if word in ("pass", "fail", "inconclusive", "warning", "critical") else ""
    return f'<span class="badge {cls}">{_e(word)}</span>'


def _table(
    head: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Sequence[int] = ()
) -> str:
    """A table from header labels (escaped here) and rows of cells that are already HTML."""
    ths = "".join(
        f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(head)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table>"


def _kv(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column key/value table; keys are escaped here, values are already HTML."""
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def redact(value: Any) -> Any:
    """A copy of a JSON-like value with secrets hidden, for display.

    Values under keys that name a secret (``api_key``, ``authorization``, ``password``, ...) become
    ``"[redacted]"``, and ``user:password@`` is removed from ``http(s)://`` URLs. Profiles cannot
    hold a key (they name an environment variable instead): this is a second line of defence.

    Args:
        value: dicts, lists and scalars as loaded from JSON.

    Returns:
        the redacted copy.
    """
    if isinstance(value, Mapping):
        return {
            k: "[redacted]" if _SECRET_KEY.match(str(k)) and v is not None else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_USERINFO.sub(r"\1", value)
    return value


def _latency_section(rows: list[tuple[str, LatencySummary]]) -> str:
    labels = (("p50", "p50"), ("p90", "p90"), ("p95", "p95"), ("p99", "p99"), ("p999", "p99.9"))
    out = []
    for name, s in rows:
        cells = [_e(name)]
        for key, _ in labels:
            text = _ms(getattr(s, f"{key}_s"))
            cells.append(
                f'<span class="insufficient" title="too few samples">{_e(text)}*</span>'
                if key in s.insufficient
                else _e(text)
            )
        cells += [_e(_ms(s.max_s)), _e(_ms(s.mean_s)), _e(f"{s.count:,}")]
        out.append(cells)
    head = ["distribution", *(label for _, label in labels), "max", "mean", "samples"]
    return (
        "<h2>Latency of successful ops (ms)</h2>"
        + _table(head, out, numeric=range(1, 9))
        + '<p class="sub">* too few samples for this percentile (fewer than 10 above it)</p>'
    )


def _headline(result: RunResult) -> str:
    t = result.total
    assert t is not None
    load = result.profile.get("load", {})
    ratio = t.throughput_ops / PLAN_BASELINE_OPS
    err = _pct(t.error_rate)
    kinds = ", ".join(f"{k}: {n:,}" for k, n in sorted(t.failures_by_kind.items()))
    eff = t.cpu.ops_per_cpu_second
    m = t.memory
    slope = "n/a" if m.slope_mb_per_min is None else f"{m.slope_mb_per_min:+.2f} MB/min"
    if m.slope_ci_low is not None and m.slope_ci_high is not None:
        slope += f" [{m.slope_ci_low:+.2f}, {m.slope_ci_high:+.2f}]"
    rows = [
        ("load", _e(describe_load(load if isinstance(load, dict) else {}))),
        (
            "window",
            _e(f"{t.window_s:.1f} s over {len(result.trials)} trial(s), warmup excluded"),
        ),
        (
            "throughput",
            f"<strong>{_e(f'{t.throughput_ops:,.1f}')} ops/s</strong> successful "
            + _e(f"(attempted {t.attempted_ops:,.1f}, failed {t.failed_ops:,.1f} ops/s)"),
        ),
        (
            "plan reference",
            _e(
                f"{PLAN_BASELINE_OPS} ops/s baseline (x{ratio:.2f}), {PLAN_TARGET_OPS:g} ops/s "
                "target: the plan's figures from another machine, not a measured baseline"
            ),
        ),
        (
            "requests",
            _e(
                f"{t.successes:,} ok, {t.failures:,} failed (error rate {err}"
                + (f"; {kinds}" if kinds else "")
                + f"), {t.in_flight_at_end:,} in flight at end, "
                f"{t.warmup_requests:,} warmup requests excluded"
            ),
        ),
        (
            "CPU",
            _e(
                f"{t.cpu.cpu_seconds:.2f} CPU s, {t.cpu.cpu_percent_mean:.0f}% of a core, "
                + ("efficiency n/a" if eff is None else f"{eff:,.0f} ops per CPU second")
                + (" (saturated)" if t.cpu.saturated else "")
            ),
        ),
        (
            "memory",
            _e(
                f"RSS {m.rss_start_bytes / BYTES_PER_MB:.1f} → "
                f"{m.rss_end_bytes / BYTES_PER_MB:.1f} MB "
                f"(max {m.rss_max_bytes / BYTES_PER_MB:.1f} MB, {m.growth_pct:+.1f}%), "
                f"slope {slope}, "
            )
            + _badge(m.verdict)
            + " "
            + _e(f"({m.reason})"),
        ),
    ]
    goodput = describe_goodput(result, t)
    if goodput is not None:
        rows.insert(3, ("goodput", f"<strong>{_e(goodput)}</strong>"))
    rows.insert(1, ("prompts", _e(describe_prompts(result.profile))))
    for label, text in (("tokens", describe_tokens(t)), ("replay", describe_replay(t))):
        if text is not None:
            rows.append((label, _e(text)))
    if t.client_status.get("mode"):
        mode = f"{t.client_status['mode']} mode ({t.client_status.get('mode_reason')})"
        rows.append(("client", _e(mode)))
    connections = describe_connections(t.connections)
    if connections:
        rows.append(("connections", _e(connections)))
    retries = describe_retries(result)
    if retries:
        rows.append(("retries", _e(retries)))
    if t.stream is not None:
        rows.append(("streams", _e(describe_stream(t.stream))))
    return "<h2>Summary</h2>" + _kv(rows)


def _gates(result: RunResult) -> str:
    if not result.gates:
        return "<h2>Gates</h2><p>No gate configured in the profile.</p>"
    rows = [
        [
            _e(g.name),
            _e(g.threshold),
            _e(g.observed),
            _badge(g.verdict),
            "" if g.alert == "ok" else _badge(g.alert),
            _e(g.detail),
        ]
        for g in result.gates
    ]
    return "<h2>Gates</h2>" + _table(
        ["gate", "threshold", "observed", "verdict", "alert", "detail"], rows
    )


def _health(result: RunResult) -> str:
    t = result.total
    assert t is not None
    h = t.health
    rows = [
        (
            "achieved / configured",
            _e(f"{h.achieved_level:,.1f} / {h.configured_level:,.1f} {h.level_unit}"),
        ),
        ("event-loop lag p99 / max", _e(f"{_ms(h.loop_lag_p99_s)} / {_ms(h.loop_lag_max_s)} ms")),
        ("send lag p99 / max", _e(f"{_ms(h.send_lag_p99_s)} / {_ms(h.send_lag_max_s)} ms")),
        ("requests never sent", _e(f"{h.unsent:,}")),
        (
            "generator saturated",
            _badge("fail") + " yes: the figures are limited by the load generator"
            if h.generator_saturated
            else "no",
        ),
    ]
    warn = ""
    if h.warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in h.warnings)
        warn = f'<div class="banner warning"><strong>Warnings</strong><ul>{items}</ul></div>'
    return "<h2>Health of the measurement</h2>" + warn + _kv(rows)


def _charts(charts: Sequence[Chart]) -> str:
    parts = ["<h2>Charts</h2>"]
    for c in charts:
        caption = _CAPTIONS.get(c.chart_id, "")
        parts.append(
            f"<figure><h3>{_e(c.title)}</h3>{c.svg}<figcaption>{_e(caption)}</figcaption></figure>"
        )
    return "".join(parts)


def _failures(result: RunResult) -> str:
    t = result.total
    assert t is not None
    if not t.failures_by_kind:
        return "<h2>Failures</h2><p>No failed request in the measurement window.</p>"
    rows = [
        [_e(kind), _e(f"{n:,}"), _e(t.failure_examples.get(kind, ""))]
        for kind, n in sorted(t.failures_by_kind.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return "<h2>Failures</h2>" + _table(["kind", "count", "example"], rows, numeric=(1,))


def _trials(result: RunResult) -> str:
    if len(result.trials) < 2:
        return ""
    rows = [
        [
            _e(t.index + 1),
            _e(f"{t.window_s:.1f}"),
            _e(f"{t.successes:,}"),
            _e(f"{t.failures:,}"),
            _e(f"{t.throughput_ops:,.1f}"),
            _e(_pct(t.error_rate)),
            _e(_ms(t.service_time.p95_s)),
            _e(_ms(t.service_time.p99_s)),
            _e(f"{t.memory.growth_pct:+.1f}%"),
            _badge(t.memory.verdict),
        ]
        for t in result.trials
    ]
    head = ["trial", "window s", "ok", "failed", "ops/s", "error rate", "p95 ms", "p99 ms",
            "RSS growth", "memory"]  # fmt: skip
    return "<h2>Trials</h2>" + _table(head, rows, numeric=range(0, 9))


def _environment(result: RunResult) -> str:
    rows = [
        (str(k), _e(json.dumps(v) if isinstance(v, dict | list) else v))
        for k, v in redact(result.environment).items()
    ]
    rows.insert(0, ("created at", _e(result.created_at)))
    return "<h2>Environment</h2>" + _kv(rows)


def _profile(result: RunResult) -> str:
    text = json.dumps(redact(result.profile), indent=2, ensure_ascii=False, sort_keys=False)
    return "<h2>Profile (resolved)</h2><pre>" + _e(text) + "</pre>"


def _definitions(result: RunResult) -> str:
    items = "".join(
        f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in result.metric_definitions.items()
    )
    return f'<h2>Metric definitions</h2><dl class="defs">{items}</dl>'


def _page(title: str, body: str, generator: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="{_e(generator)}">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"{body}\n"
        "<footer>Generated by "
        + _e(generator)
        + ". Self-contained: no script, nothing loaded from the network.</footer>\n"
        "</main>\n</body>\n</html>\n"
    )


def render_run_html(result: RunResult) -> str:
    """Render a run's report as one self-contained HTML page.

    Args:
        result: the run (as written to ``result.json``).

    Returns:
        the HTML document (UTF-8 text). It contains five inline SVG charts (ids
        ``chart-throughput``, ``chart-latency-time``, ``chart-spectrum``, ``chart-rss``,
        ``chart-errors``) when at least one trial completed, otherwise a note that nothing was
        measured. Every value from the result is escaped with :func:`html.escape`.
    """
    description = result.profile.get("description")
    head = f"<h1>harborbench run: {_e(result.name)}</h1>"
    if description:
        head += f'<p class="sub">{_e(description)}</p>'
    head += (
        f'<p class="sub">{_e(result.created_at)} · harborbench {_e(result.harborbench_version)}'
        f" · result schema {_e(result.schema_version)}</p>"
    )
    if result.interrupted:
        head += (
            '<div class="banner warning"><strong>Interrupted:</strong> the run was stopped '
            "early; these are the figures of what was measured.</div>"
        )
    generator = f"harborbench {result.harborbench_version}"
    title = f"harborbench run: {result.name}"
    if result.total is None:
        body = (
            head
            + '<div class="banner warning">No trial completed: nothing was measured.</div>'
            + _environment(result)
            + _profile(result)
            + _definitions(result)
        )
        return _page(title, body, generator)
    t = result.total
    lat_rows: list[tuple[str, LatencySummary]] = [("service time", t.service_time)]
    if t.response_time is not None:
        lat_rows.append(("response time (from intended send)", t.response_time))
    if t.stream is not None:
        lat_rows += stream_latency_rows(t.stream)
    body = "".join(
        [
            head,
            _headline(result),
            _gates(result),
            _latency_section(lat_rows),
            _health(result),
            _charts(run_charts(result.trials, t)),
            _failures(result),
            _trials(result),
            _environment(result),
            _profile(result),
            _definitions(result),
        ]
    )
    return _page(title, body, generator)


def write_run_html(result: RunResult, folder: Path) -> Path:
    """Write ``report.html`` for a run into ``folder``, atomically.

    Args:
        result: the run.
        folder: the run's folder (``reports/<name>/``); created if missing.

    Returns:
        the path of the written file.

    Raises:
        OSError: the file cannot be written.
    """
    path = Path(folder) / REPORT_FILE
    write_atomic(path, render_run_html(result))
    return path
