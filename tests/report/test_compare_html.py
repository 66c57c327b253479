"""The HTML page of a comparison: structure, both charts, escaping, no external resources."""

from __future__ import annotations

from pathlib import Path

import pytest

from harborbench.compare import compare_results, parse_fail_on
from harborbench.report.compare_html import render_compare_html, write_compare_html
from harborbench.report.html import REPORT_FILE
from harborbench.result import RunResult
from tests.report.test_html import HOSTILE, check, make_result


@pytest.fixture(scope="module")
def runs() -> tuple[RunResult, RunResult]:
    a = make_result(name="base-" + HOSTILE)
    b = make_result(trials=2, name="cand-" + HOSTILE)
    return a, b


@pytest.fixture(scope="module")
def page(runs: tuple[RunResult, RunResult]) -> str:
    a, b = runs
    comparison = compare_results(a, b, n_resamples=200, fail_on=[parse_fail_on("throughput:-5%")])
    return render_compare_html(comparison, a, b)


def test_compare_page_parses_and_has_both_charts(page: str) -> None:
    c = check(page)
    assert c.errors == [] and c.stack == []
    assert [a.get("id") for t, a in c.tags if t == "svg"] == ["chart-spectrum", "chart-changes"]
    assert c.svg_titles["chart-changes"] == "Change of B over A with 95% confidence intervals (%)"
    spectrum = page[page.index('id="chart-spectrum"') : page.index('id="chart-changes"')]
    assert "A (baseline) service time (n=1,000)" in spectrum
    assert "B (candidate) service time (n=1,000)" in spectrum
    changes = page[page.index('id="chart-changes"') :]
    for label in ("throughput ↑", "service p95 ↓", "CPU efficiency ↑"):
        assert label in changes


def test_compare_page_tables(page: str) -> None:
    text = " ".join("".join(check(page).text).split())
    for words in ("Comparability", "Metrics", "Gates (--fail-on)", "throughput:-5%",
                  "Plan reference", "service p99 (↓ good)"):  # fmt: skip
        assert words in text


def test_compare_page_escapes_and_loads_nothing(page: str) -> None:
    c = check(page)
    assert HOSTILE not in page
    assert not [t for t, _ in c.tags if t in ("script", "img", "link", "iframe")]
    assert all("src" not in a for _, a in c.tags)
    text = "".join(c.text)
    assert f"cand-{HOSTILE} against base-{HOSTILE}" in text  # shown, as text


def test_write_compare_html(tmp_path: Path, runs: tuple[RunResult, RunResult]) -> None:
    a, b = runs
    comparison = compare_results(a, b, n_resamples=100)
    path = write_compare_html(comparison, a, b, tmp_path / "cmp")
    assert path == tmp_path / "cmp" / REPORT_FILE
    assert path.read_text(encoding="utf-8") == render_compare_html(comparison, a, b)
