"""The HTML report: structure, charts, no external resources, escaping, and a real browser."""

from __future__ import annotations

import re
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harborbench.metrics.histogram import LatencyHistogram
from harborbench.report.charts import inline_svg, run_charts
from harborbench.report.html import REPORT_FILE, redact, render_run_html, write_run_html
from harborbench.result import (
    METRIC_DEFINITIONS,
    SCHEMA_VERSION,
    CpuFigures,
    GateResult,
    HealthFigures,
    IntervalRow,
    LatencySummary,
    MemoryFigures,
    RunResult,
    TrialResult,
)
from tests.chromium import find_chromium

HOSTILE = "<script>alert(1)</script>"
HOSTILE_ATTR = '"><img src=x onerror=alert(2)>'
CHART_IDS = [
    "chart-throughput",
    "chart-latency-time",
    "chart-spectrum",
    "chart-rss",
    "chart-errors",
]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip


# --- a small, deterministic RunResult -------------------------------------------------------


def _summary(values_ns: list[int]) -> LatencySummary:
    h = LatencyHistogram()
    for v in values_ns:
        h.record_ns(v)
    n = h.count

    def p(q: float) -> float | None:
        return h.percentile_ns(q) / 1e9 if n else None

    return LatencySummary(
        count=n, p50_s=p(50), p90_s=p(90), p95_s=p(95), p99_s=p(99), p999_s=p(99.9),
        max_s=h.max_ns / 1e9 if n else None, mean_s=h.mean_ns / 1e9 if n else None,
        insufficient=[k for k, q in (("p99", 99), ("p999", 99.9)) if n * (1 - q / 100) < 10],
        histogram=h.encode() if n else "",
    )  # fmt: skip


def _trial(index: int, *, seed: int, failures_at: int = 5) -> TrialResult:
    rng = np.random.default_rng(seed)
    rows = []
    all_ns: list[int] = []
    for t in range(-2, 10):
        ok = 0 if t < 0 else 100
        lat = [int(x) for x in rng.lognormal(np.log(20e6), 0.5, size=ok)]
        all_ns += lat
        s = _summary(lat)
        fails = 3 if t == failures_at else 0
        rows.append(
            IntervalRow(
                t_s=float(t), warmup=t < 0, successes=ok, failures=fails, throughput_ops=float(ok),
                service_p50_s=s.p50_s, service_p95_s=s.p95_s, service_p99_s=s.p99_s,
                response_p99_s=s.p99_s, rss_bytes=100_000_000 + 1_000_000 * (t + 2),
                cpu_percent=40.0, service_histogram=s.histogram, response_histogram=s.histogram,
            )
        )  # fmt: skip
    service = _summary(all_ns)
    return TrialResult(
        index=index, started_at="2024-01-01T00:00:00+00:00", window_s=10.0, successes=1000,
        failures=3, failures_by_kind={"http_500": 2, HOSTILE: 1},
        failure_examples={"http_500": "server said 500", HOSTILE: HOSTILE_ATTR},
        in_flight_at_end=2, warmup_requests=50, throughput_ops=100.0, attempted_ops=100.3,
        failed_ops=0.3, error_rate=3 / 1003, service_time=service, response_time=service,
        stream=None,
        cpu=CpuFigures(cpu_seconds=4.0, cpu_percent_mean=40.0, ops_per_cpu_second=250.0,
                       saturated=False),
        memory=MemoryFigures(
            rss_start_bytes=102_000_000, rss_end_bytes=111_000_000, rss_max_bytes=111_000_000,
            growth_pct=8.8, slope_mb_per_min=60.0, slope_ci_low=59.0, slope_ci_high=61.0,
            verdict="inconclusive", reason=f"too short {HOSTILE}",
        ),
        health=HealthFigures(
            loop_lag_p99_s=0.001, loop_lag_max_s=0.002, send_lag_p99_s=0.001,
            send_lag_max_s=0.003, configured_level=100.0, achieved_level=100.0,
            level_unit="ops/s", unsent=0, generator_saturated=False, warnings=[HOSTILE],
        ),
        connections={"server_connections_accepted": 4, "server_requests_total": 1003},
        client_status={}, client_statistics={}, server_stats=None, timeseries=rows,
        interrupted=False,
    )  # fmt: skip


def make_result(*, trials: int = 1, name: str = HOSTILE) -> RunResult:
    """A RunResult with hostile text in every user-controlled string the report shows."""
    ts = [_trial(i, seed=i + 1) for i in range(trials)]
    return RunResult(
        schema_version=SCHEMA_VERSION,
        name=name,
        created_at="2024-01-01T00:00:00+00:00",
        harborbench_version="0.1.0",
        profile={
            "name": HOSTILE,
            "description": HOSTILE + HOSTILE_ATTR,
            "load": {"rate": 100.0, "arrival": "constant"},
            "target": {"base_url": "https://user:hunter2@api.example.com/v1", "api_key": "sk-1"},
        },
        environment={"python": "3.11", "hostname": HOSTILE},
        metric_definitions=dict(METRIC_DEFINITIONS),
        reference={"plan_baseline_ops": 505.6, "plan_target_ops": 1000.0},
        trials=ts,
        total=ts[0] if ts else None,
        gates=[
            GateResult(
                name="p95 latency",
                threshold="< 200 ms",
                observed="40 ms",
                verdict="pass",
                alert="ok",
                detail=HOSTILE,
            ),
            GateResult(
                name="throughput",
                threshold=">= 1000 ops/s",
                observed="100 ops/s",
                verdict="fail",
                alert="critical",
                detail="too slow",
            ),
        ],
        interrupted=False,
    )


@pytest.fixture(scope="module")
def page() -> str:
    """The report of a one-trial run (rendered once per module: a render takes about 1 s)."""
    return render_run_html(make_result())


@pytest.fixture(scope="module")
def page2() -> str:
    """The report of a two-trial run."""
    return render_run_html(make_result(trials=2))


# --- an HTML checker on the standard library's parser ----------------------------------------


class Checker(HTMLParser):
    """Collects tags, ids and svg titles, and checks that every element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.svg_titles: dict[str, str] = {}
        self._svg: str | None = None
        self._in_title = False
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "svg":
            self._svg = a.get("id") or ""
        if tag == "title" and self._svg is not None:
            self._in_title = True
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "svg":
            self._svg = None
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_title and self._svg:
            self.svg_titles[self._svg] = self.svg_titles.get(self._svg, "") + data


def check(text: str) -> Checker:
    c = Checker()
    c.feed(text)
    c.close()
    return c


# --- tests ------------------------------------------------------------------------------------


def test_html_parses_with_balanced_elements(page: str) -> None:
    c = check(page)
    assert page.startswith("<!DOCTYPE html>\n")
    assert c.errors == []
    assert c.stack == []
    assert [t for t, _ in c.tags[:3]] == ["html", "head", "meta"]


def test_each_chart_is_an_inline_svg_with_id_and_title(page: str) -> None:
    c = check(page)
    svg_ids = [a.get("id") for t, a in c.tags if t == "svg"]
    assert svg_ids == CHART_IDS
    assert c.svg_titles == {
        "chart-throughput": "Throughput per second (successful ops/s)",
        "chart-latency-time": "Service time p95 and p99 per second (ms)",
        "chart-spectrum": "Latency by percentile (ms)",
        "chart-rss": "Memory: RSS of the measuring process (MB)",
        "chart-errors": "Errors: failed requests per second",
    }
    # the spectrum's HdrHistogram-style axis and the fitted RSS slope are drawn as text
    spectrum = page[page.index('id="chart-spectrum"') : page.index('id="chart-rss"')]
    for label in ("0%", "90%", "99%", "99.9%", "99.99%"):
        assert f">{label}<" in spectrum
    assert "fit +60.00 MB/min (95% CI +59.00 to +61.00)" in page


def test_ids_are_unique_and_every_reference_resolves(page: str) -> None:
    ids = [a["id"] for _, a in check(page).tags if a.get("id")]
    assert len(ids) == len(set(ids))
    refs = re.findall(r'url\(#([^)]+)\)|href="#([^"]+)"', page)
    assert refs, "matplotlib SVG uses clip paths and markers by reference"
    assert {a or b for a, b in refs} <= set(ids)


def test_no_script_and_nothing_from_the_network(page: str) -> None:
    c = check(page)
    tags = {t for t, _ in c.tags}
    assert tags & {"script", "link", "iframe", "object", "embed", "img", "image"} == set()
    for tag, attrs in c.tags:
        assert "src" not in attrs, tag
        for key, value in attrs.items():
            assert not key.startswith("on"), (tag, key)
            if key in ("href", "xlink:href"):
                assert value is not None and value.startswith("#"), (tag, key, value)
    urls = set(re.findall(r"(?:https?:)?//[^\s\"'<>)&]+", page))
    # XML namespace names are identifiers, never fetched; the profile's URL is shown as text
    assert urls == {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
        "https://api.example.com/v1",
    }
    assert "@import" not in page and "@font-face" not in page
    csp = [a["content"] for t, a in c.tags if t == "meta" and a.get("http-equiv")]
    assert csp == ["default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"]


def test_hostile_text_appears_only_escaped(page: str) -> None:
    c = check(page)
    assert HOSTILE not in page
    assert "<img" not in page and "onerror=" not in page.replace("onerror=alert(2)&gt;", "")
    assert not [t for t, _ in c.tags if t in ("script", "img")]
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    # name (title, h1), profile name and description (header and profile), failure kind,
    # gate detail, memory reason, health warning, environment: all shown, all escaped
    assert page.count(escaped) >= 9
    text = "".join(c.text)
    assert text.count(HOSTILE) == page.count(escaped)
    assert HOSTILE_ATTR in text  # shown as text, quotes and brackets intact


def test_secrets_are_redacted_from_the_profile(page: str) -> None:
    assert "sk-1" not in page and "hunter2" not in page
    assert redact({"a": [{"api_key": "k", "url": "http://u:p@h/x"}], "max_tokens": 5}) == {
        "a": [{"api_key": "[redacted]", "url": "http://h/x"}],
        "max_tokens": 5,
    }


def test_tables_show_the_summary_figures(page: str) -> None:
    text = " ".join("".join(check(page).text).split())
    assert "100.0 ops/s successful (attempted 100.3, failed 0.3 ops/s)" in text
    assert "1,000 ok, 3 failed (error rate 0.30%" in text
    assert "505.6 ops/s baseline (x0.20)" in text
    for word in ("Gates", "p95 latency", "< 200 ms", "critical", "Metric definitions",
                 "coordinated omission", "Environment", "Profile (resolved)"):  # fmt: skip
        assert word in text
    assert 'class="badge fail">fail<' in page and 'class="badge pass">pass<' in page


def test_render_is_deterministic(page2: str) -> None:
    assert render_run_html(make_result(trials=2)) == page2
    assert "<h2>Trials</h2>" in page2
    assert "trial 2: service p95" in page2  # one line per trial in the time charts


def test_run_without_trials_renders_a_note() -> None:
    r = make_result(trials=0)
    page = render_run_html(r)
    c = check(page)
    assert c.errors == [] and c.stack == []
    assert "No trial completed: nothing was measured." in page
    assert "<svg" not in page


def test_charts_without_data_still_render() -> None:
    trial = _trial(0, seed=1)
    empty = trial.model_copy(update={"timeseries": []})
    charts = run_charts([empty], None)
    assert [ch.chart_id for ch in charts] == CHART_IDS
    for ch in charts:
        assert ch.svg.startswith(f'<svg id="{ch.chart_id}"')
    assert "no successful ops" in charts[2].svg
    assert "no time series recorded" in charts[0].svg


def test_inline_svg_prefixes_ids_and_drops_the_prologue() -> None:
    doc = (
        '<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg width="10pt" height="5pt" viewBox="0 0 10 5">'
        "<metadata><x>http://creativecommons.org/ns#</x></metadata>"
        '<defs><clipPath id="p1"/><path id="m2"/></defs><g clip-path="url(#p1)">'
        '<use xlink:href="#m2"/></g></svg>'
    )
    out = inline_svg(doc, "chart-x", "A <b> title")
    assert out == (
        '<svg id="chart-x" class="chart" role="img" width="100%" '
        'aria-labelledby="chart-x-title" viewBox="0 0 10 5">'
        '<title id="chart-x-title">A &lt;b&gt; title</title>'
        '<defs><clipPath id="chart-x-p1"/><path id="chart-x-m2"/></defs>'
        '<g clip-path="url(#chart-x-p1)"><use xlink:href="#chart-x-m2"/></g></svg>\n'
    )
    with pytest.raises(ValueError, match="chart id"):
        inline_svg(doc, 'x" onload="y', "t")


def test_write_run_html_writes_report_html(tmp_path: Path, page: str) -> None:
    path = write_run_html(make_result(), tmp_path / "run")
    assert path == tmp_path / "run" / REPORT_FILE
    assert path.read_text(encoding="utf-8") == page
    assert [p.name for p in (tmp_path / "run").iterdir()] == [REPORT_FILE]  # no temp file left


# --- a real browser ---------------------------------------------------------------------------

_NOISE = re.compile(r"dbus|bluez|UPower|property\.cc|vaapi|idle_linux|sandbox_linux")


def _open_in_chromium(html_path: Path, workdir: Path) -> tuple[str, list[str], Path]:
    """Load a page headless; returns (dumped DOM, console lines, screenshot path)."""
    shot = workdir / "shot.png"
    proc = subprocess.run(
        [
            find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={workdir / 'profile'}",
            "--enable-logging=stderr", "--v=0", "--window-size=1280,2000",
            f"--screenshot={shot}", "--dump-dom", html_path.resolve().as_uri(),
        ],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [
        line
        for line in proc.stderr.splitlines()
        if (":CONSOLE" in line or "Uncaught" in line) and not _NOISE.search(line)
    ]
    return proc.stdout, console, shot


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_chromium_detects_console_errors(tmp_path: Path) -> None:
    """The check of the next test can fail: a page with a throwing script is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><p>x</p><script>throw new Error('kaput')</script>")
    _, console, _ = _open_in_chromium(bad, tmp_path)
    assert any("Uncaught Error: kaput" in line for line in console), console


def test_report_renders_in_headless_chromium_without_console_errors(
    tmp_path: Path, page2: str
) -> None:
    path = tmp_path / REPORT_FILE
    path.write_text(page2, encoding="utf-8")
    dom, console, shot = _open_in_chromium(path, tmp_path)
    assert console == []  # no script error, no blocked fetch (CSP), no failed load
    assert [m for m in re.findall(r'<svg id="(chart-[a-z-]+)"', dom)] == CHART_IDS
    assert "<script" not in dom
    assert _png_size(shot) == (1280, 2000)
    with Image.open(shot) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 100  # tables and charts, not a blank page
