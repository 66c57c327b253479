"""The Rich rendering of `harborbench tune`."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from harborbench.cli.tune import _exit
from harborbench.errors import InconclusiveError
from harborbench.report.tune_table import load_chart, render_tune, verdict_text
from tests.report.test_tune_files import fake_result


def _render(p95_max_s: float, p95_verdict: str | None = None) -> str:
    console = Console(width=100, record=True, force_terminal=False)
    render_tune(fake_result(p95_max_s, p95_verdict), console, folder="reports/fake-tune")
    return console.export_text()


def test_a_recommendation_is_highlighted_and_explained() -> None:
    text = _render(10.0)
    assert "chosen" in text and "closest" not in text
    assert "USL (Gunther)" in text and "R² = 1.000" in text
    assert "Recommended: N=32 pool=32 workers=8 batch=4/0ms (604.9 ops/s in the sweep)" in text
    assert "files: reports/fake-tune/result.json, sweep.csv, recommended_config.yaml" in text


def test_no_recommendation_shows_the_closest_point() -> None:
    text = _render(0.001)
    assert "No point met every gate of the profile; closest: point 0" in text
    assert "closest (no point met the gates)" in text
    assert "recommended_config.yaml" not in text


def test_chart_has_one_bar_line_per_load_point() -> None:
    result = fake_result(10.0)
    lines = load_chart(result).plain.splitlines()
    load = [p for p in result.points if p.phase == "concurrency"]
    assert len(lines) == 1 + len(load)
    assert lines[1].startswith("N=1 ") and lines[-1].startswith(f"N={load[-1].concurrency} ")


def test_inconclusive_gates_are_shown_as_unsure_not_as_missed() -> None:
    text = _render(10.0, p95_verdict="inconclusive")  # p95 from too few samples everywhere
    assert text.count("? p95") == 7 and "✗" not in text.split("workers: processor")[0]
    assert "?: gates inconclusive" in text
    assert "misses" not in text and "missing" not in text
    verdict = verdict_text(fake_result(10.0, p95_verdict="inconclusive")).plain
    assert verdict.startswith(
        "No point met every gate of the profile; closest: point 5 (N=32 pool=50 workers=32), "
        "604.9 ops/s, inconclusive: p95 latency.\n"
    )


def test_failed_gates_keep_the_cross() -> None:
    text = _render(0.001)
    assert "✗ p95" in text and "? p95" not in text and "?: gates inconclusive" not in text
    assert verdict_text(fake_result(0.001)).plain.startswith(
        "No point met every gate of the profile; closest: point 0 (N=1 pool=50 workers=1), "
        "40.0 ops/s, misses p95 latency.\n"
    )


def test_files_line_names_report_html_only_when_written() -> None:
    result = fake_result(10.0)
    files = "files: reports/fake-tune/result.json, sweep.csv, recommended_config.yaml"
    assert verdict_text(result, "reports/fake-tune").plain.splitlines()[-1] == files
    with_html = verdict_text(result, "reports/fake-tune", html=True).plain.splitlines()[-1]
    assert with_html == f"{files}, report.html"
    console = Console(width=200, record=True, force_terminal=False)
    render_tune(result, console, folder="reports/fake-tune", html=True)
    assert f"{files}, report.html" in console.export_text()


def test_only_saturated_points_meeting_the_gates_recommend_nothing_and_exit_3() -> None:
    done = fake_result(10.0)
    points = [p.model_copy(update={"generator_saturated": True}) for p in done.points]
    result = done.model_copy(update={"points": points, "chosen": None, "closest": 0,
                                     "confirmation": None, "recommended_config": None})  # fmt: skip
    assert result.only_saturated_met() and not done.only_saturated_met()
    assert verdict_text(result).plain.startswith(
        "Nothing recommended: every point that met the gates was measured with the load "
        "generator saturated (see the note).\n"
    )
    console = Console(width=100, record=True, force_terminal=False)
    render_tune(result, console)
    assert "closest (no unsaturated point met the gates)" in console.export_text()
    with pytest.raises(InconclusiveError, match="every point of the sweep that met the gates "
                       "was measured with the load generator saturated") as caught:  # fmt: skip
        _exit(result, Path("reports/fake-tune"))
    assert caught.value.exit_code == 3
    # a point that misses a gate is no recommendation either way: still "no point met", exit 1
    missed = [p.model_copy(update={"meets_gates": False}) for p in points]
    assert not result.model_copy(update={"points": missed}).only_saturated_met()
