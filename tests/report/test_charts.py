"""The run charts' layout: legends on the canvas, readable maxima, a log percentile axis."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pytest

from harborbench.report import charts
from harborbench.report.charts import Chart, rss_chart, spectrum_chart
from harborbench.result import LatencySummary
from tests.report.test_html import _summary, make_result

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Every figure rendered by :func:`charts.to_chart` (already drawn when it is captured)."""
    drawn: list[Figure] = []
    render: Callable[[Figure, str, str], Chart] = charts.to_chart

    def capture(fig: Figure, chart_id: str, title: str) -> Chart:
        chart = render(fig, chart_id, title)
        drawn.append(fig)
        return chart

    monkeypatch.setattr(charts, "to_chart", capture)
    return drawn


def _lognormal(median_ms: float, n: int, seed: int) -> LatencySummary:
    rng = np.random.default_rng(seed)
    return _summary([int(x) for x in rng.lognormal(np.log(median_ms * 1e6), 0.3, size=n)])


@pytest.mark.parametrize("n_trials", [3, 5])
def test_multi_trial_legends_stay_on_the_canvas(figures: list[Figure], n_trials: int) -> None:
    result = make_result(trials=n_trials)
    charts.latency_over_time_chart(result.trials)
    rss_chart(result.trials)
    assert len(figures) == 2
    for fig in figures:
        (legend,) = fig.legends
        canvas = fig.bbox
        texts = legend.get_texts()
        # latency: warmup + 3 lines a trial (open loop); memory: warmup + line and fit a trial
        assert len(texts) in (1 + 3 * n_trials, 1 + 2 * n_trials)
        for artist in [legend, *texts]:
            box = artist.get_window_extent()
            assert box.x0 >= canvas.x0 - 0.5, (artist, box, canvas)
            assert box.x1 <= canvas.x1 + 0.5, (artist, box, canvas)
            assert box.y0 >= canvas.y0 - 0.5 and box.y1 <= canvas.y1 + 0.5, (artist, box)


def test_legend_rows_make_the_figure_taller_not_the_plot_smaller(figures: list[Figure]) -> None:
    one, five = make_result(trials=1), make_result(trials=5)
    rss_chart(one.trials)
    rss_chart(five.trials)
    (w1, h1), (w5, h5) = (f.get_size_inches() for f in figures)
    assert w1 == w5 == charts.FIGURE_SIZE_IN[0]
    assert h1 == charts.FIGURE_SIZE_IN[1]
    assert h5 > h1
    plot1, plot5 = (f.axes[0].get_window_extent().height for f in figures)
    assert plot5 == pytest.approx(plot1, rel=0.1)


def test_close_maxima_labels_do_not_overlap(figures: list[Figure]) -> None:
    service = _lognormal(20.0, 2_000, seed=1)
    response = _lognormal(20.0, 2_000, seed=1)  # the same maximum: the worst case
    ttft = _lognormal(5.0, 2_000, seed=2)
    spectrum_chart([("service time", service), ("response time", response), ("ttft", ttft)])
    (fig,) = figures
    labels = [t for t in fig.axes[0].texts if t.get_text().startswith("max ")]
    assert len(labels) == 3
    boxes = [t.get_window_extent() for t in labels]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)
        assert a.x0 >= fig.bbox.x0


@pytest.mark.parametrize("spread", [0.05, 0.3, 2.0])
def test_percentile_axis_is_always_logarithmic(figures: list[Figure], spread: float) -> None:
    rng = np.random.default_rng(3)
    narrow = _summary([int(x) for x in rng.lognormal(np.log(40e6), spread, size=3_000)])
    spectrum_chart([("service time", narrow)])
    (fig,) = figures
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    low, high = ax.get_ylim()
    labels = [t.get_text() for t in ax.get_yticklabels() if low <= t.get_position()[1] <= high]
    assert len([s for s in labels if s]) >= 2, labels  # a narrow range still has labels


def test_max_label_formats() -> None:
    assert charts._ms_text(417.4) == "417"
    assert charts._ms_text(41.74) == "41.7"
    assert charts._ms_text(12_345.6) == "12,346"
    assert charts._ms_text(0.01234) == "0.0123"
