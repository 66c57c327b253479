"""The Rich rendering of ``harborbench tune``: the sweep table, a text chart, the fitted model."""

from __future__ import annotations

from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from harborbench.tune.result import SweepPoint, TuneResult

#: Width in characters of the longest bar of the text chart.
BAR_WIDTH = 22


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x * 1e3:.1f}"


_GATE_ABBREV = {"throughput": "ops", "p95 latency": "p95", "error rate": "err",
                "success rate": "ok%", "memory growth": "mem"}  # fmt: skip


def _gates_cell(p: SweepPoint) -> str:
    """Rich markup of a point's gates: ``pass``, or ``✗ ops,p95`` (failed, red) and/or
    ``? p95`` (inconclusive, yellow: not met, but not failed either)."""
    if p.meets_gates:
        return "[green]pass[/]"
    parts = []
    if p.missed_gates:
        missed = ",".join(_GATE_ABBREV.get(g, g) for g in p.missed_gates)
        parts.append(f"[red]✗ {escape(missed)}[/]")
    if p.unsure_gates:
        unsure = ",".join(_GATE_ABBREV.get(g, g) for g in p.unsure_gates)
        parts.append(f"[yellow]? {escape(unsure)}[/]")
    return " ".join(parts)


def _processor(p: SweepPoint) -> str:
    """``workers`` alone, or ``workers×batch`` and ``/window`` when batching."""
    if p.workers is None:
        return "–"
    if (p.max_batch_size or 1) <= 1:
        return str(p.workers)
    window = (p.batch_window_s or 0.0) * 1e3
    return f"{p.workers}×{p.max_batch_size}" + (f"/{window:g}ms" if window else "")


def sweep_table(result: TuneResult) -> Table:
    """The sweep as a table, one row per point and the confirmation; the chosen row highlighted
    (the closest point in yellow when no point met the gates)."""
    table = Table(
        title="Sweep: one short trial per point", title_justify="left", box=box.SIMPLE_HEAD,
        padding=(0, 0), show_edge=False,
        pad_edge=False,
    )  # fmt: skip
    goodput = any(p.goodput_ops is not None for p in result.points)
    labels = ["#", "phase", "N", "pool", "workers", "ops/s", "USL ops/s", "p95 ms", "errors"]
    if goodput:
        labels.insert(6, "goodput")
    for label in labels:
        table.add_column(label, justify="left" if label == "phase" else "right")
    table.add_column("gates")
    rows: list[tuple[str, SweepPoint]] = [(str(p.index), p) for p in result.points]
    if result.confirmation is not None:
        rows.append(("conf", result.confirmation.point))
    for label, p in rows:
        predicted = result.fit.predict(p.concurrency) if p.phase == "concurrency" else None
        gates = _gates_cell(p)
        if p.generator_saturated:
            gates += " [yellow]sat[/]"
        err = "–" if p.error_rate is None else f"{p.error_rate:.1%}"
        style = None
        if label == "conf":
            style = "bold cyan"
        elif p.index == result.chosen:
            style = "bold green reverse"
        elif p.index == result.closest:
            style = "yellow reverse"
        cells = [
            label, "load" if p.phase == "concurrency" else p.phase[:4], str(p.concurrency),
            str(p.connection_pool_size), _processor(p), f"{p.throughput_ops:,.0f}",
            "–" if predicted is None else f"{predicted:,.0f}", _ms(p.service_time.p95_s), err,
            gates,
        ]  # fmt: skip
        if goodput:
            cells.insert(6, "–" if p.goodput_ops is None else f"{p.goodput_ops:,.0f}")
        table.add_row(*cells, style=style)
    marks = []
    if result.chosen is not None:
        marks.append("[bold green reverse] chosen [/]")
    elif result.closest is not None:
        why = "no unsaturated point" if result.only_saturated_met() else "no point"
        marks.append(f"[yellow reverse] closest ({why} met the gates) [/]")
    if result.confirmation is not None:
        marks.append("[bold cyan]conf[/]: confirmation at the chosen settings")
    marks.append(escape("workers: processor workers[×batch size[/window]]; ✗: gates failed"))
    if any(p.unsure_gates for p in result.points) or (
        result.confirmation is not None and result.confirmation.point.unsure_gates
    ):
        marks.append("?: gates inconclusive (too few samples to judge; not counted as met)")
    if any(p.generator_saturated for p in result.points):
        marks.append("sat: load generator saturated")
    table.caption = "\n".join(marks)
    table.caption_justify = "left"
    return table


def load_chart(result: TuneResult) -> Text:
    """A text chart of throughput and p95 against concurrency (the load phase), bars scaled to
    the largest value of each."""
    points = [p for p in result.points if p.phase == "concurrency"]
    text = Text()
    if not points:
        return text
    top_ops = max(p.throughput_ops for p in points) or 1.0
    top_p95 = max((p.service_time.p95_s or 0.0) for p in points) or 1.0
    text.append("throughput (ops/s) and p95 (ms) against concurrency N\n", style="bold")
    for p in points:
        ops_bar = round(BAR_WIDTH * p.throughput_ops / top_ops)
        p95 = p.service_time.p95_s
        p95_bar = 0 if p95 is None else round(BAR_WIDTH * p95 / top_p95)
        text.append(f"N={p.concurrency:<4} ")
        text.append("█" * ops_bar + " " * (BAR_WIDTH - ops_bar), style="green")
        text.append(f" {p.throughput_ops:>6,.0f}  ")
        text.append("▒" * p95_bar + " " * (BAR_WIDTH - p95_bar), style="magenta")
        text.append(f" {_ms(p95):>6}\n")
    return text


def model_text(result: TuneResult) -> Text:
    """The fitted Universal Scalability Law, or why it is not used."""
    fit = result.fit
    text = Text()
    text.append("USL (Gunther) X(N) = λN / (1 + σ(N−1) + κN(N−1)): ", style="bold")
    if fit.lambda_ops is None or fit.sigma is None or fit.kappa is None:
        text.append(fit.note, style="yellow")
        return text
    peak = fit.peak_text() if fit.peak_concurrency is None else f"{fit.peak_concurrency:,.0f}"
    peak_ops = (
        "" if fit.peak_throughput_ops is None else f" at {fit.peak_throughput_ops:,.0f} ops/s"
    )
    text.append(
        f"λ = {fit.lambda_ops:,.1f} ops/s, σ (contention) = {fit.sigma:.4f}, "
        f"κ (coherency) = {fit.kappa:.2e}, predicted peak N* = {peak}{peak_ops}, "
        f"R² = {fit.r_squared:.3f} over {fit.points} points"
    )
    if not fit.good:
        text.append(f"\n{fit.note}", style="yellow")
    return text


def verdict_text(result: TuneResult, folder: str | None = None, *, html: bool = False) -> Text:
    """The outcome: recommendation and confirmation (measured against predicted), or none.

    Args:
        result: the sweep.
        folder: where its files were written; ``None`` leaves out the "files:" line.
        html: whether ``report.html`` was written there too (listed last on the "files:" line).

    Returns:
        the text, several lines.
    """
    text = Text()
    if result.interrupted:
        text.append("Interrupted: the sweep is incomplete and nothing is recommended.\n", "yellow")
    elif result.only_saturated_met():
        text.append(
            "Nothing recommended: every point that met the gates was measured with the load "
            "generator saturated (see the note).\n",
            style="bold yellow",
        )
    elif result.chosen is None:
        text.append("No point met every gate of the profile", style="bold red")
        if result.closest is not None:
            p = result.points[result.closest]
            text.append(
                f"; closest: point {p.index} ({p.knobs().label()}), {p.throughput_ops:,.1f} ops/s,"
                f" {p.gates_text()}"
            )
        text.append(".\n")
    else:
        p = result.points[result.chosen]
        text.append("Recommended: ", style="bold")
        good = (
            f", goodput {p.goodput_ops:,.1f} ops/s (the objective)"
            if result.objective == "goodput" and p.goodput_ops is not None
            else ""
        )
        text.append(f"{p.knobs().label()} ({p.throughput_ops:,.1f} ops/s{good} in the sweep)\n")
        conf = result.confirmation
        if conf is not None:
            c = conf.point
            usl = "" if conf.usl_predicted_ops is None else f", USL {conf.usl_predicted_ops:,.1f}"
            ratio = "" if conf.ratio_to_sweep is None else f" (x{conf.ratio_to_sweep:.2f})"
            text.append("Confirmation: ", style="bold")
            text.append(
                f"{c.throughput_ops:,.1f} ops/s measured over {c.window_s:.1f} s against "
                f"{conf.sweep_throughput_ops:,.1f} predicted by the sweep{ratio}{usl}; "
                f"p95 {_ms(c.service_time.p95_s)} ms; "
            )
            style = "green" if c.meets_gates else "bold red" if c.missed_gates else "yellow"
            text.append(f"{c.gates_text()}\n", style=style)
    text.append(f"Stopped: {result.stop_reason}; {len(result.points)} points in "
                f"{result.elapsed_s:.0f} s of a {result.budget_s:.0f} s budget.")  # fmt: skip
    for note in result.notes:
        text.append(f"\nNote: {note}", style="yellow")
    if folder is not None:
        files = (
            "result.json, sweep.csv"
            + (", recommended_config.yaml" if result.recommended_config is not None else "")
            + (", report.html" if html else "")
        )
        text.append(f"\nfiles: {folder}/{files}", style="dim")
    return text


def render_tune(
    result: TuneResult, console: Console, *, folder: str | None = None, html: bool = False
) -> None:
    """Print the whole tune report: table, chart, model, verdict.

    Args:
        result: the sweep.
        console: where to print.
        folder: where its files were written (see :func:`verdict_text`).
        html: whether ``report.html`` was written in ``folder``.
    """
    body = Group(sweep_table(result), load_chart(result), model_text(result), Text(),
                 verdict_text(result, folder, html=html))  # fmt: skip
    console.print(Panel(body, title=f"harborbench tune — {escape(result.name)}", expand=False))
