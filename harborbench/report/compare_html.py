"""The self-contained HTML page of a comparison: ``reports/compare-<A>-<B>/report.html``.

Same rules as the run report (:mod:`harborbench.report.html`): inline CSS and SVG, no script,
nothing fetched, every value escaped. The page shows the two latency spectra overlaid, the change
of every metric with its confidence interval (a forest plot), the metric table as in the
terminal, the plan's reference row, the ``--fail-on`` gates and what makes the runs comparable
or not.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harborbench.report.charts import (
    Chart,
    legend_above,
    report_figure,
    spectrum_chart,
    to_chart,
)
from harborbench.report.compare_table import display_unit, format_value
from harborbench.report.html import REPORT_FILE, _badge, _e, _kv, _page, _table
from harborbench.result import LatencySummary, RunResult

if TYPE_CHECKING:
    from harborbench.compare import Comparison, MetricRow

_VERDICT_COLOUR = {
    "better": "#2ca02c",
    "worse": "#d62728",
    "no significant difference": "#7f7f7f",
    "inconclusive": "#e6a100",
    "not tested": "#bbbbbb",
}
_VERDICT_BADGE = {
    "better": "pass",
    "worse": "fail",
    "no significant difference": "",
    "inconclusive": "inconclusive",
    "not tested": "",
}


def _ratio_interval_pct(row: MetricRow) -> tuple[float, float] | None:
    """The row's interval as percent change of B over A, when it is an interval of B/A."""
    if row.ci_of != "ratio" or row.ci_low is None or row.ci_high is None:
        return None
    return 100.0 * (row.ci_low - 1.0), 100.0 * (row.ci_high - 1.0)


def changes_chart(comparison: Comparison) -> Chart:
    """Change of B over A per metric, with its confidence interval (a forest plot).

    Only rows whose interval is of the ratio B/A are drawn (``ci_of == "ratio"``): the point is
    ``change_pct`` = 100 (B/A - 1), the bar the interval ``100 (ci - 1)``, coloured by verdict.
    Rows with an interval of a difference (memory) are in the table only, since they have no
    common percent scale.

    Args:
        comparison: from :func:`harborbench.compare.compare_results`.

    Returns:
        chart ``chart-changes``.
    """
    chart_id = "chart-changes"
    title = f"Change of B over A with {comparison.confidence:.0%} confidence intervals (%)"
    rows = [r for r in comparison.rows if r.change_pct is not None]
    with report_figure(chart_id) as fig:
        height = max(2.0, 0.32 * len(rows) + 1.0)
        fig.set_size_inches(10.0, height)
        ax = fig.add_subplot()
        if not rows:
            ax.text(0.5, 0.5, "no metric with a change", ha="center", va="center",
                    transform=ax.transAxes, color="#777777")  # fmt: skip
            ax.set_xticks([])
            ax.set_yticks([])
            return to_chart(fig, chart_id, title)
        ys = list(range(len(rows)))[::-1]
        for y, row in zip(ys, rows, strict=True):
            col = _VERDICT_COLOUR[row.verdict]
            ci = _ratio_interval_pct(row)
            if ci is not None:
                ax.plot([ci[0], ci[1]], [y, y], color=col, lw=2.2, solid_capstyle="butt")
            assert row.change_pct is not None
            ax.plot([row.change_pct], [y], "o", color=col, ms=5)
        seen: set[str] = set()
        for row in rows:  # one legend entry per verdict present
            if row.verdict not in seen:
                seen.add(row.verdict)
                ax.plot([], [], "o-", color=_VERDICT_COLOUR[row.verdict], label=row.verdict)
        ax.axvline(0.0, color="#333333", lw=0.8)
        arrows = {"higher": "↑", "lower": "↓"}
        ax.set_yticks(ys, [f"{r.label} {arrows[r.better]}" for r in rows])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("change of B over A (%); ↑/↓: the direction in which the metric is good")
        legend_above(fig, ax)
        return to_chart(fig, chart_id, title)


def compare_charts(comparison: Comparison, a: RunResult, b: RunResult) -> list[Chart]:
    """The charts of a comparison page: the two spectra overlaid, then the changes.

    Args:
        comparison: the comparison of B against A.
        a, b: the two runs (their merged service-time histograms are drawn).

    Returns:
        charts ``chart-spectrum`` (A blue, B red) and ``chart-changes``.
    """
    dists: list[tuple[str, LatencySummary]] = []
    for label, run in (("A (baseline) service time", a), ("B (candidate) service time", b)):
        if run.total is not None:
            dists.append((label, run.total.service_time))
    return [spectrum_chart(dists), changes_chart(comparison)]


def _interval_text(row: MetricRow) -> str:
    if row.ci_low is None or row.ci_high is None:
        return "–"
    if row.ci_of == "difference":
        return (
            f"Δ [{format_value(row.ci_low, row.unit)}, {format_value(row.ci_high, row.unit)}] "
            f"{display_unit(row.unit)}"
        )
    return f"[{100 * (row.ci_low - 1):+.1f}%, {100 * (row.ci_high - 1):+.1f}%]"


def _metrics_table(comparison: Comparison) -> str:
    rows = []
    for r in comparison.rows:
        change = "–" if r.ratio is None or r.change_pct is None else (
            f"×{r.ratio:.3f} ({r.change_pct:+.1f}%)"
        )  # fmt: skip
        mde = "–" if r.min_detectable_pct is None else f"{r.min_detectable_pct:.1f}%"
        p = "–" if r.p_value is None else f"{r.p_value:.3g}"
        badge = _VERDICT_BADGE[r.verdict]
        verdict = f'<span class="badge {badge}">{_e(r.verdict)}</span>' if badge else _e(r.verdict)
        rows.append(
            [
                _e(f"{r.label} ({'↑' if r.better == 'higher' else '↓'} good)"),
                _e(display_unit(r.unit)),
                _e(format_value(r.a, r.unit)),
                _e(format_value(r.b, r.unit)),
                _e(change),
                _e(_interval_text(r)),
                _e(mde),
                _e(p),
                verdict,
                _e(r.reason),
            ]
        )
    head = ["metric", "unit", "A", "B", "B/A", "interval", "detectable", "p", "verdict", "reason"]
    return _table(head, rows, numeric=range(2, 8))


def _reference(comparison: Comparison) -> str:
    ref = comparison.reference
    if ref is None:
        return ""
    ci = (
        ""
        if ref.b_ci_low is None or ref.b_ci_high is None
        else f" [{ref.b_ci_low:,.1f}, {ref.b_ci_high:,.1f}]"
    )
    target = {"met": "pass", "missed": "fail", "inconclusive": "inconclusive"}[ref.target]
    text = (
        f"{ref.label}: B {ref.b_throughput_ops:,.1f} ops/s{ci}, x{ref.ratio_to_plan_baseline:.2f} "
        f"the plan's {ref.plan_baseline_ops} ops/s baseline; target {ref.plan_target_ops:g} "
        "ops/s "
    )
    return (
        "<h2>Plan reference</h2><p>"
        + _e(text)
        + _badge(target)
        + f" {_e(ref.target)}: {_e(ref.reason)}</p>"
    )


def _gates(comparison: Comparison) -> str:
    if not comparison.gates:
        return ""
    rows = [
        [
            _e(g.gate),
            _e(f"{100 * (g.threshold_ratio - 1):+.1f}%"),
            _e(
                "–"
                if g.ci_low is None or g.ci_high is None
                else f"[{100 * (g.ci_low - 1):+.1f}%, {100 * (g.ci_high - 1):+.1f}%]"
            ),
            _badge(g.verdict),
            _e(g.reason),
        ]
        for g in comparison.gates
    ]
    return "<h2>Gates (--fail-on)</h2>" + _table(
        ["gate", "threshold", "interval", "verdict", "reason"], rows
    )


def _comparability(comparison: Comparison) -> str:
    comp = comparison.comparability
    parts = ["<h2>Comparability</h2>"]
    if comp.comparable:
        parts.append("<p>" + _badge("pass") + " same kind of machine and the same workload.</p>")
    else:
        parts.append(
            "<p>" + _badge("inconclusive") + " not comparable: the differences below can "
            "explain a change by themselves.</p>"
        )  # fmt: skip
    if comp.warnings:
        parts.append("<ul>" + "".join(f"<li>{_e(w)}</li>" for w in comp.warnings) + "</ul>")
    diffs = [
        [_e(kind), _e(d.key), _e(d.a), _e(d.b)]
        for kind, group in (
            ("environment", comp.environment),
            ("workload", comp.workload),
            ("note", comp.notes),
        )
        for d in group
    ]
    if diffs:
        parts.append(_table(["kind", "key", "A", "B"], diffs))
    return "".join(parts)


_CAPTIONS = {
    "chart-spectrum": "Service time by percentile of both runs (all trials merged), HdrHistogram "
    "style. Shaded: fewer than 10 samples above the percentile in the larger run.",
    "chart-changes": "Point: B/A - 1 in percent; bar: its confidence interval. Green better, red "
    "worse, grey no significant difference, amber inconclusive. Memory rows (intervals of a "
    "difference) are in the table only.",
}


def render_compare_html(comparison: Comparison, a: RunResult, b: RunResult) -> str:
    """Render a comparison as one self-contained HTML page.

    Args:
        comparison: from :func:`harborbench.compare.compare_results` (B against baseline A).
        a: the baseline run; b: the candidate run (for the spectra).

    Returns:
        the HTML document, with the SVG charts ``chart-spectrum`` and ``chart-changes``. Every
        value from the inputs is escaped with :func:`html.escape`.
    """
    ra, rb = comparison.a, comparison.b
    head = (
        f"<h1>harborbench compare: {_e(rb.name)} against {_e(ra.name)}</h1>"
        f'<p class="sub">A (baseline) = {_e(ra.name)}, {_e(ra.created_at)}, {_e(ra.trials)} '
        f"trial(s), {_e(ra.intervals)} intervals · B (candidate) = {_e(rb.name)}, "
        f"{_e(rb.created_at)}, {_e(rb.trials)} trial(s), {_e(rb.intervals)} intervals</p>"
        f'<p class="sub">{_e(f"{comparison.confidence:.0%}")} intervals, bootstrap with '
        f"{_e(comparison.n_resamples)} resamples, seed {_e(comparison.seed)}</p>"
    )
    charts = "".join(
        f"<figure><h3>{_e(c.title)}</h3>{c.svg}"
        f"<figcaption>{_e(_CAPTIONS.get(c.chart_id, ''))}</figcaption></figure>"
        for c in compare_charts(comparison, a, b)
    )
    runs = _kv(
        [
            ("A description", _e(a.profile.get("description") or "–")),
            ("B description", _e(b.profile.get("description") or "–")),
        ]
    )
    body = "".join(
        [
            head,
            _comparability(comparison),
            "<h2>Metrics</h2>",
            _metrics_table(comparison),
            _gates(comparison),
            _reference(comparison),
            "<h2>Charts</h2>",
            charts,
            "<h2>Runs</h2>",
            runs,
        ]
    )
    title = f"harborbench compare: {rb.name} against {ra.name}"
    return _page(title, body, f"harborbench {b.harborbench_version}")


def write_compare_html(comparison: Comparison, a: RunResult, b: RunResult, folder: Path) -> Path:
    """Write ``report.html`` of a comparison into ``folder``, atomically.

    Args:
        comparison: the comparison; a, b: the two runs.
        folder: the comparison's folder (``reports/compare-<A>-<B>/``); created if missing.

    Returns:
        the path of the written file.

    Raises:
        OSError: the file cannot be written.
    """
    from harborbench.report.files import write_atomic

    path = Path(folder) / REPORT_FILE
    write_atomic(path, render_compare_html(comparison, a, b))
    return path
