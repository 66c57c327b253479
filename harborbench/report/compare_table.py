"""The Rich rendering of ``harborbench compare``: the metric table, the plan's row, warnings."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harborbench.compare import Comparison, MetricRow

_VERDICT_STYLE = {
    "better": "bold green",
    "worse": "bold red",
    "no significant difference": "white",
    "inconclusive": "yellow",
    "not tested": "dim",
}
_GATE_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}


_DISPLAY_UNIT = {"s": "ms", "fraction": "%"}


def format_value(value: float | None, unit: str) -> str:
    """Format a figure for display, without its unit: seconds as ms, fractions as percent.

    Args:
        value: the figure in ``unit`` (seconds for ``"s"``, a fraction for ``"fraction"``).
        unit: the unit of the row; the display unit is :func:`display_unit`.

    Returns:
        The text, ``"–"`` for None.
    """
    if value is None:
        return "–"
    if unit == "s":
        ms = value * 1e3
        return f"{ms:.3f}" if abs(ms) < 10 else f"{ms:.1f}"
    if unit == "fraction":
        return f"{value * 100:.3f}"
    if unit == "%":
        return f"{value:.2f}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"


def display_unit(unit: str) -> str:
    """The unit figures of ``unit`` are shown in (``"s"`` -> ``"ms"``, fraction -> ``"%"``)."""
    return _DISPLAY_UNIT.get(unit, unit)


def _change(row: MetricRow) -> str:
    if row.ratio is None or row.change_pct is None:
        return "–"
    return f"×{row.ratio:.3f} ({row.change_pct:+.1f}%)"


def _interval(row: MetricRow) -> str:
    if row.ci_low is None or row.ci_high is None:
        return "–"
    if row.ci_of == "difference":
        return f"Δ [{format_value(row.ci_low, row.unit)}, {format_value(row.ci_high, row.unit)}]"
    return f"[{100 * (row.ci_low - 1):+.1f}%, {100 * (row.ci_high - 1):+.1f}%]"


def comparison_table(comparison: Comparison) -> Table:
    """The table of every metric: A, B, change, interval, smallest detectable change, verdict.

    Args:
        comparison: the result of :func:`harborbench.compare.compare_results`.

    Returns:
        A Rich table (the reasons of inconclusive rows go in its caption).
    """
    a, b = comparison.a, comparison.b
    table = Table(
        title=f"B = {escape(b.name)} against baseline A = {escape(a.name)}",
        title_justify="left",
    )
    table.add_column("metric (↑/↓ good)", no_wrap=True)
    table.add_column(f"A {escape(a.name)}", justify="right")
    table.add_column(f"B {escape(b.name)}", justify="right")
    table.add_column("change B/A", justify="right", no_wrap=True)
    table.add_column(f"{comparison.confidence:.0%} CI of change", justify="right", no_wrap=True)
    table.add_column("MDC", justify="right")
    table.add_column("verdict", no_wrap=True)
    notes: list[str] = []
    for row in comparison.rows:
        style = _VERDICT_STYLE[row.verdict]
        verdict = f"[{style}]{row.verdict}[/]"
        if row.verdict in ("inconclusive", "not tested") and row.reason:
            notes.append(f"{row.label}: {row.reason}")
            verdict += f" [dim]({len(notes)})[/]"
        mdc = f"±{row.min_detectable_pct:.1f}%" if row.min_detectable_pct is not None else "–"
        arrow = "↑" if row.better == "higher" else "↓"
        table.add_row(
            f"{escape(row.label)} {display_unit(row.unit)} {arrow}",
            format_value(row.a, row.unit),
            format_value(row.b, row.unit),
            _change(row),
            _interval(row),
            mdc,
            verdict,
        )
    ref = comparison.reference
    if ref is not None:
        table.add_section()
        target_style = {"met": "green", "missed": "red", "inconclusive": "yellow"}[ref.target]
        table.add_row(
            "[dim]plan reference[/] ops/s ↑",
            f"[dim]{ref.plan_baseline_ops:g} (plan)[/]",
            format_value(ref.b_throughput_ops, "ops/s"),
            f"×{ref.ratio_to_plan_baseline:.2f}",
            "–"
            if ref.b_ci_low is None or ref.b_ci_high is None
            else f"B in [{ref.b_ci_low:,.0f}, {ref.b_ci_high:,.0f}]",
            "–",
            f"[{target_style}]target {ref.plan_target_ops:g}: {ref.target}[/]",
        )
        notes.append(f"plan reference: {ref.label}")
    methods = sorted({r.method for r in comparison.rows if r.method != "none"})
    caption = [f"({i}) {escape(n)}" for i, n in enumerate(notes, 1)]
    caption += [f"method: {escape(m)}" for m in methods]
    caption.append("MDC: minimum detectable change, the smallest the data could detect (80% power)")
    table.caption = "\n".join(caption)
    table.caption_justify = "left"
    return table


def render_comparison(comparison: Comparison, console: Console) -> None:
    """Print the comparison: comparability warnings, the table, and the ``--fail-on`` gates.

    Args:
        comparison: the comparison.
        console: where to print (stdout in the CLI).
    """
    comp = comparison.comparability
    for w in comp.warnings:
        console.print(f"[yellow]Warning:[/] {escape(w)}")
    for d in [*comp.environment, *comp.workload]:
        console.print(f"  [yellow]{escape(d.key)}[/]: A {escape(str(d.a))}  B {escape(str(d.b))}")
    for d in comp.notes:
        console.print(f"  [dim]note {escape(d.key)}: A {escape(str(d.a))}  B {escape(str(d.b))}[/]")
    console.print(comparison_table(comparison))
    line = headline(comparison)
    if line:
        console.print(f"[bold]In short:[/] {escape(line)}")
    for g in comparison.gates:
        style = _GATE_STYLE[g.verdict]
        console.print(
            f"gate [bold]{escape(g.gate)}[/]: [{style}]{g.verdict}[/] ({escape(g.reason)})"
        )


_HEADLINE_METRICS = ("throughput", "p99", "cpu_efficiency")


def headline(comparison: Comparison) -> str:
    """One sentence on what B does to throughput, p99 and CPU efficiency, verdicts included.

    It says plainly when B is not faster: "throughput: no significant difference (x1.015,
    95% CI -0.5% to +3.3%)".
    """
    parts = []
    rows = {r.metric: r for r in comparison.rows}
    for key in _HEADLINE_METRICS:
        r = rows.get(key)
        if r is None:
            continue
        text = f"{r.label}: {r.verdict}"
        if r.ratio is not None:
            text += f" (x{r.ratio:.3g}"
            if r.ci_of == "ratio" and r.ci_low is not None and r.ci_high is not None:
                text += (
                    f", {r.confidence:.0%} CI {100 * (r.ci_low - 1):+.1f}% to "
                    f"{100 * (r.ci_high - 1):+.1f}%"
                )
            text += ")"
        parts.append(text)
    return f"{comparison.b.name} against {comparison.a.name}: " + "; ".join(parts) if parts else ""
