"""The HTML page of a tune sweep: structure, the chart and its USL curve, highlighted rows,
per-point gates, escaping, nothing loaded from the network."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harborbench.metrics.usl import UslFit
from harborbench.report.html import REPORT_FILE
from harborbench.report.tune_chart import fit_label, tune_chart
from harborbench.report.tune_html import render_tune_html, write_tune_html
from harborbench.result import GateResult
from harborbench.tune.result import Confirmation, TuneResult
from tests.report.test_html import HOSTILE, HOSTILE_ATTR, check
from tests.report.test_tune_files import fake_result

GOOD_FIT_LABEL = "USL fit: λ 40.0 ops/s, σ 0.0200, κ 5.00e-04, R² 1.000 (good), peak N* 44"


def _gate(name: str, verdict: str, detail: str = "") -> GateResult:
    return GateResult(name=name, threshold="< 1%", observed="?", verdict=verdict,  # type: ignore[arg-type]
                      alert="ok", detail=detail)  # fmt: skip


def hostile_result() -> TuneResult:
    """The fake lab's sweep (chosen point 10) with a confirmation, an inconclusive gate on
    point 1, and hostile text in every string the page shows."""
    result = fake_result()
    assert result.chosen == 10
    points = list(result.points)
    one = points[1]
    points[1] = one.model_copy(
        update={
            "gates": [*one.gates, _gate("error rate", "inconclusive")],
            "meets_gates": False,
            "missed_gates": ["error rate"],
            "warnings": [HOSTILE],
        }
    )
    chosen = points[10]
    confirm = chosen.model_copy(
        update={
            "index": 12,
            "window_s": 4.0,
            "throughput_ops": 590.0,
            "gates": [*chosen.gates, _gate("memory growth", "pass", detail=HOSTILE)],
        }
    )
    profile = {**result.profile, "name": HOSTILE, "description": HOSTILE + HOSTILE_ATTR}
    return result.model_copy(
        update={
            "name": "tune-" + HOSTILE,
            "profile": profile,
            "environment": {**result.environment, "hostname": HOSTILE},
            "notes": [HOSTILE],
            "points": points,
            "confirmation": Confirmation(
                point=confirm,
                sweep_throughput_ops=chosen.throughput_ops,
                usl_predicted_ops=604.9,
                ratio_to_sweep=590.0 / chosen.throughput_ops,
            ),
        }
    )


@pytest.fixture(scope="module")
def page() -> str:
    return render_tune_html(hostile_result())


@pytest.fixture(scope="module")
def page_no_fit() -> str:
    """Nothing meets the gates: one point, no fit, no recommendation."""
    return render_tune_html(fake_result(p95_max_s=0.001))


def _svg(page: str) -> str:
    return page[page.index("<svg") : page.index("</svg>")]


def test_page_parses_with_one_chart_with_id_and_title(page: str) -> None:
    c = check(page)
    assert page.startswith("<!DOCTYPE html>\n")
    assert c.errors == [] and c.stack == []
    assert [a.get("id") for t, a in c.tags if t == "svg"] == ["chart-tune"]
    assert c.svg_titles == {"chart-tune": "Throughput and service-time p95 against concurrency N"}
    ids = [a["id"] for _, a in c.tags if a.get("id")]
    assert len(ids) == len(set(ids))
    refs = {a or b for a, b in re.findall(r'url\(#([^)]+)\)|href="#([^"]+)"', page)}
    assert refs and refs <= set(ids)


def test_chart_has_the_usl_curve_chosen_point_confirmation_and_gates(page: str) -> None:
    svg = _svg(page)
    assert fit_label(hostile_result()) == GOOD_FIT_LABEL
    assert f">{GOOD_FIT_LABEL}<" in svg
    for label in ("chosen: point 10", "confirmation (longer trial)", "misses a gate",
                  "throughput gate ≥ 1000 ops/s", "p95 gate &lt; 200 ms",
                  "load phase (pool, workers ≥ N)"):  # fmt: skip
        assert f">{label}<" in svg, label
    for tick in ("1", "2", "4", "8", "16", "32", "64"):  # one tick per N, log2 axis
        assert f">{tick}<" in svg
    assert "no USL curve" not in svg and "closest" not in svg


def test_a_poor_fit_is_drawn_and_labelled_poor() -> None:
    result = fake_result()
    poor = result.fit.model_copy(update={"good": False, "r_squared": 0.5, "note": "poor fit"})
    label = fit_label(result.model_copy(update={"fit": poor}))
    assert (
        label
        == "USL fit: λ 40.0 ops/s, σ 0.0200, κ 5.00e-04, R² 0.500 (poor: not used), peak N* 44"
    )
    svg = tune_chart(result.model_copy(update={"fit": poor})).svg
    assert f">{label}<" in svg


def test_without_a_fit_the_curve_is_absent_and_explained(page_no_fit: str) -> None:
    c = check(page_no_fit)
    assert c.errors == [] and c.stack == []
    svg = _svg(page_no_fit)
    assert "USL fit:" not in svg
    assert ">no USL curve: no fit (see the model below the chart)<" in svg
    assert ">closest: point 0 (no point met the gates)<" in svg and "chosen" not in svg
    text = " ".join("".join(c.text).split())
    assert "No USL curve: too few load levels for a fit (1; needs 4)" in text
    assert "no fit: too few load levels" in text
    assert "nothing: no point met every gate of the profile; closest: point 0" in text
    assert "No config is recommended" in text
    assert page_no_fit.count('<tr class="closest"') == 1
    assert '<tr class="chosen"' not in page_no_fit


def test_sweep_table_highlights_the_chosen_row_and_shows_every_gate_verdict(page: str) -> None:
    rows = re.findall(r"<tr[^>]*>.*?</tr>", page, flags=re.S)
    chosen = [r for r in rows if r.startswith('<tr class="chosen"')]
    assert len(chosen) == 1 and chosen[0].startswith('<tr class="chosen" style="background:')
    assert "<td>10 <strong>chosen</strong></td>" in chosen[0]
    assert '<span class="badge pass">met</span> p95 latency' in chosen[0]
    confirm = [r for r in rows if r.startswith('<tr class="confirmation"')]
    assert len(confirm) == 1 and "<td>confirm <strong>confirmation</strong></td>" in confirm[0]
    point1 = next(r for r in rows if r.startswith("<tr><td>1</td>"))
    assert '<span class="badge inconclusive">inconclusive</span> error rate' in point1
    # 12 points + the confirmation, plus the header row and the tables of the other sections
    body_rows = [r for r in rows if re.match(r"<tr[^>]*><td>(\d+|confirm)\b", r)]
    assert len(body_rows) == 13


def test_page_text_shows_outcome_model_config_and_notes(page: str) -> None:
    text = " ".join("".join(check(page).text).split())
    for words in (
        "point 10 (processor): N=32 pool=32 workers=8 batch=4/0ms, 604.9 ops/s",
        "590.0 ops/s measured over 4.0 s against 604.9 predicted by the sweep (x0.98), USL 604.9",
        "throughput stopped rising at N=64 (< +5%)",
        "12 points in 36 s of a 1000 s budget",
        "Model: Universal Scalability Law",
        "44.3 (X(N*) = 627.2 ops/s)",
        "Gates of the confirmation",
        "max_concurrent_requests: 32",
        "batch_window_s: 0.0",
        f"point 1: {HOSTILE}",
        "Environment",
        "Profile (resolved)",
    ):
        assert words in text, words


def test_hostile_text_is_escaped(page: str) -> None:
    c = check(page)
    assert HOSTILE not in page and "<img" not in page
    assert not [t for t, _ in c.tags if t in ("script", "img")]
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    # name (title, h1), description, profile (name, description), note, point warning,
    # confirmation gate detail, environment, recommended config header (profile name)
    assert page.count(escaped) >= 9
    assert "".join(c.text).count(HOSTILE) == page.count(escaped)
    assert HOSTILE_ATTR in "".join(c.text)


def test_no_script_and_nothing_from_the_network(page: str, page_no_fit: str) -> None:
    for p in (page, page_no_fit):
        c = check(p)
        assert "<script" not in p.lower()
        assert {t for t, _ in c.tags} & {"script", "link", "iframe", "object", "embed", "img",
                                         "image"} == set()  # fmt: skip
        for tag, attrs in c.tags:
            assert "src" not in attrs, tag
            for key, value in attrs.items():
                assert not key.startswith("on"), (tag, key)
                if key in ("href", "xlink:href"):
                    assert value is not None and value.startswith("#"), (tag, key, value)
        urls = set(re.findall(r"(?:https?:)?//[^\s\"'<>)&]+", p))
        assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
        assert "@import" not in p and "@font-face" not in p


def test_write_tune_html_writes_report_html_atomically(tmp_path: Path) -> None:
    result = fake_result()
    path = write_tune_html(result, tmp_path / "t")
    assert path == tmp_path / "t" / REPORT_FILE
    assert path.read_text(encoding="utf-8") == render_tune_html(result)  # deterministic
    assert [p.name for p in (tmp_path / "t").iterdir()] == [REPORT_FILE]  # no temp file left


def test_a_sweep_with_no_point_still_renders() -> None:
    empty = fake_result().model_copy(
        update={"points": [], "chosen": None, "closest": None, "fit": UslFit(points=0,
                note="no point"), "recommended_config": None, "interrupted": True}
    )  # fmt: skip
    page = render_tune_html(empty)
    c = check(page)
    assert c.errors == [] and c.stack == []
    assert ">no sweep point was measured<" in _svg(page)
    assert "Interrupted:" in page and "nothing: the sweep was interrupted" in page
