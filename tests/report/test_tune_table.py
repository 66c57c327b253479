"""The Rich rendering of `harborbench tune`."""

from __future__ import annotations

from rich.console import Console

from harborbench.report.tune_table import load_chart, render_tune
from tests.report.test_tune_files import fake_result


def _render(p95_max_s: float) -> str:
    console = Console(width=100, record=True, force_terminal=False)
    render_tune(fake_result(p95_max_s), console, folder="reports/fake-tune")
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
