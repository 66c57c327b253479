"""Charts of a run as inline SVG, drawn with matplotlib (for the HTML report).

Every chart is a :class:`Chart`: an id, a title and the SVG markup, ready to be placed inside an
HTML page. The SVG is self-contained: text is kept as ``<text>`` elements (``svg.fonttype =
'none'``, the browser's own sans-serif font draws it, nothing is fetched), and every ``id`` in it
is prefixed with the chart id so that several charts in one page never share an id.

matplotlib is imported inside the functions, never at module import, so the CLI starts fast; the
figures are made with :class:`matplotlib.figure.Figure` directly (no pyplot, no global state).
No text from a profile or a result (a name, a description, an error message) is ever drawn in a
chart: only numbers and this module's own labels, so a chart cannot carry injected markup.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harborbench.metrics.histogram import LatencyHistogram
from harborbench.result import LatencySummary, TrialResult
from harborbench.units import BYTES_PER_MB

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_LABEL_STEP_PT = 64.0
"""Horizontal step (points) between the "max NN ms" labels of the percentile spectrum."""
SPECTRUM_MAX_PERCENTILE = 99.99
"""Right end of the percentile spectrum's x axis."""
FIGURE_SIZE_IN = (10.0, 3.2)
"""Width and height of every chart, inches (rendered at 100% of the page column)."""

_TRIAL_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
_WARMUP_COLOUR = "#bbbbbb"
_ID_ATTR = re.compile(r'\bid="([^"]+)"')
_ID_REF = re.compile(r'(\bid="|url\(#|href="#)([^")]+)([")])')
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
_SVG_OPEN = re.compile(r"<svg\b[^>]*>")


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart of the report.

    Attributes:
        chart_id: the ``id`` of the ``<svg>`` element, e.g. ``"chart-throughput"``; every id
            inside the SVG starts with it.
        title: what the chart shows, also the SVG's ``<title>``.
        svg: the ``<svg>...</svg>`` markup (no XML declaration, no DOCTYPE).
    """

    chart_id: str
    title: str
    svg: str


@contextmanager
def report_figure(chart_id: str) -> Iterator[Figure]:
    """A fresh matplotlib figure in the report's style (a context manager).

    Args:
        chart_id: the chart's id; it seeds ``svg.hashsalt`` so that the SVG ids are repeatable.

    Yields:
        a :class:`matplotlib.figure.Figure` of :data:`FIGURE_SIZE_IN`, constrained layout.
    """
    import matplotlib

    with matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": chart_id,
            "font.family": "sans-serif",
            "font.size": 9.0,
            "axes.grid": True,
            "grid.color": "#dddddd",
            "grid.linewidth": 0.6,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "legend.fontsize": 8.0,
            "legend.frameon": False,
        }
    ):
        from matplotlib.figure import Figure

        fig = Figure(figsize=FIGURE_SIZE_IN, layout="constrained")
        yield fig


def to_chart(fig: Figure, chart_id: str, title: str) -> Chart:
    """Render a figure as an inline SVG :class:`Chart` (see :func:`inline_svg`).

    Args:
        fig: the figure, made by :func:`report_figure`.
        chart_id: the id of the ``<svg>`` element.
        title: what the chart shows.

    Returns:
        the chart.
    """
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return Chart(chart_id, title, inline_svg(buf.getvalue(), chart_id, title))


def inline_svg(svg: str, chart_id: str, title: str) -> str:
    """Make a standalone SVG document fit for inline use in HTML.

    Drops everything before ``<svg`` (XML declaration, DOCTYPE), prefixes every ``id`` and every
    reference to it (``url(#x)``, ``href="#x"``) with ``chart_id``, replaces the fixed width and
    height by ``width="100%"`` (the ``viewBox`` keeps the aspect ratio), and adds ``id``,
    ``role="img"`` and a ``<title>``.

    Args:
        svg: an SVG document as matplotlib writes it.
        chart_id: the id of the ``<svg>`` element, letters, digits and ``-`` only.
        title: the accessible title; it is HTML-escaped here.

    Returns:
        the ``<svg>...</svg>`` markup.

    Raises:
        ValueError: no ``<svg`` element in ``svg``, or an unsafe ``chart_id``.
    """
    import html

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", chart_id):
        raise ValueError(f"chart id must be letters, digits and '-', got {chart_id!r}")
    start = svg.find("<svg")
    if start < 0:
        raise ValueError("no <svg> element in the SVG text")
    body = _METADATA.sub("", svg[start:])  # RDF namespaces and creator: not needed inline
    ids = set(_ID_ATTR.findall(body))

    def prefix(m: re.Match[str]) -> str:
        return f"{m.group(1)}{chart_id}-{m.group(2)}{m.group(3)}" if m.group(2) in ids else m[0]

    body = _ID_REF.sub(prefix, body)
    root = _SVG_OPEN.match(body)
    assert root is not None
    tag = root.group(0)
    tag = re.sub(r'\s(width|height)="[^"]*"', "", tag)
    tag = tag.replace(
        "<svg",
        f'<svg id="{chart_id}" class="chart" role="img" width="100%" '
        f'aria-labelledby="{chart_id}-title"',
        1,
    )
    return (
        tag
        + f'<title id="{chart_id}-title">{html.escape(title)}</title>'
        + body[root.end() :].rstrip()
        + "\n"
    )


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])


def colour(i: int) -> str:
    """The colour of the i-th trial or run (cycles through seven)."""
    return _TRIAL_COLOURS[i % len(_TRIAL_COLOURS)]


def _trial_label(trial: TrialResult, n_trials: int) -> str:
    return f"trial {trial.index + 1}" if n_trials > 1 else ""


def _shade_warmup(ax: Axes, trials: Sequence[TrialResult]) -> None:
    """Grey band over the warmup seconds (``t_s`` < 0), labelled once."""
    first = min((r.t_s for t in trials for r in t.timeseries), default=0.0)
    if first < 0:
        ax.axvspan(first, 0.0, color=_WARMUP_COLOUR, alpha=0.35, lw=0, label="warmup (excluded)")


def _time_axis(ax: Axes, trials: Sequence[TrialResult]) -> None:
    """Label the time axis, span the seconds of the time series, tick on whole seconds.

    Every time chart gets the same x range (start of the first interval to the end of the last),
    so that the charts line up one above the other.
    """
    from matplotlib.ticker import MaxNLocator

    starts = [r.t_s for t in trials for r in t.timeseries]
    if starts:
        ax.set_xlim(min(starts), max(starts) + 1.0)
    ax.set_xlabel("time from the start of the measurement window (s)")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=12, integer=True))


LEGEND_MAX_COLUMNS = 4
"""Most columns of a legend above a plot; fewer when the row would be wider than the figure."""


def legend_above(fig: Figure, ax: Axes) -> None:
    """The legend above the plot, outside it, so that it never hides a line.

    It takes as many columns (at most :data:`LEGEND_MAX_COLUMNS`) as fit in the figure's width,
    so that no entry is drawn off the canvas, and the figure grows taller by the height of the
    legend rows beyond the first, so that the plot keeps its height.

    Args:
        fig: the figure, made by :func:`report_figure`.
        ax: the axes whose labelled artists make the legend.
    """
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    width_px = fig.bbox.width
    for ncols in range(min(len(handles), LEGEND_MAX_COLUMNS), 0, -1):
        legend = fig.legend(handles, labels, loc="outside upper right", ncols=ncols)
        if ncols == 1 or legend.get_window_extent().width <= width_px:
            break
        legend.remove()
    rows = math.ceil(len(handles) / ncols)
    if rows > 1:
        row_in = legend.get_window_extent().height / rows / fig.dpi
        w_in, h_in = fig.get_size_inches()
        fig.set_size_inches(w_in, h_in + (rows - 1) * row_in)


def throughput_chart(trials: Sequence[TrialResult]) -> Chart:
    """Successful ops per second, one point per 1-second interval, warmup shaded.

    Args:
        trials: the run's trials; one line each.

    Returns:
        chart ``chart-throughput``. A point sits at the middle of its interval
        (``t_s + 0.5``); the value is ``IntervalRow.throughput_ops`` (successes completed in the
        interval / interval length).
    """
    chart_id, title = "chart-throughput", "Throughput per second (successful ops/s)"
    with report_figure(chart_id) as fig:
        ax = fig.add_subplot()
        if not any(t.timeseries for t in trials):
            _no_data(ax, "no time series recorded")
            return to_chart(fig, chart_id, title)
        _shade_warmup(ax, trials)
        for i, t in enumerate(trials):
            xs = [r.t_s + 0.5 for r in t.timeseries]
            ys = [r.throughput_ops for r in t.timeseries]
            label = _trial_label(t, len(trials)) or "successful ops/s"
            ax.plot(xs, ys, color=colour(i), lw=1.4, marker=".", ms=3, label=label)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("ops/s")
        _time_axis(ax, trials)
        legend_above(fig, ax)
        return to_chart(fig, chart_id, title)


def latency_over_time_chart(trials: Sequence[TrialResult]) -> Chart:
    """Service-time p95 and p99 per 1-second interval (ms), warmup shaded.

    Args:
        trials: the run's trials; solid p95 and dashed p99 per trial, plus a dotted
            response-time p99 (from the intended send time) for open-loop runs.

    Returns:
        chart ``chart-latency-time``. Each percentile is that interval's own histogram's
        (never an average); intervals with no success have no point.
    """
    chart_id, title = "chart-latency-time", "Service time p95 and p99 per second (ms)"
    with report_figure(chart_id) as fig:
        ax = fig.add_subplot()
        if not any(r.service_p95_s is not None for t in trials for r in t.timeseries):
            _no_data(ax, "no successful ops in any interval")
            return to_chart(fig, chart_id, title)
        _shade_warmup(ax, trials)
        for i, t in enumerate(trials):
            prefix = _trial_label(t, len(trials))
            prefix = f"{prefix}: " if prefix else ""
            xs = [r.t_s + 0.5 for r in t.timeseries]

            def ms(values: list[float | None]) -> list[float]:
                return [math.nan if v is None else v * 1e3 for v in values]

            ax.plot(xs, ms([r.service_p95_s for r in t.timeseries]), color=colour(i), lw=1.4,
                    marker=".", ms=3, label=f"{prefix}service p95")  # fmt: skip
            ax.plot(xs, ms([r.service_p99_s for r in t.timeseries]), color=colour(i), lw=1.0,
                    ls="--", label=f"{prefix}service p99")  # fmt: skip
            if any(r.response_p99_s is not None for r in t.timeseries):
                label = f"{prefix}response p99 (from intended send)"
                ax.plot(xs, ms([r.response_p99_s for r in t.timeseries]), color=colour(i),
                        lw=1.0, ls=":", label=label)  # fmt: skip
        ax.set_ylim(bottom=0)
        ax.set_ylabel("ms")
        _time_axis(ax, trials)
        legend_above(fig, ax)
        return to_chart(fig, chart_id, title)


def _spectrum_x(q: float) -> float:
    """HdrHistogram's percentile axis: ``1 / (1 - q/100)``, so 90% -> 10, 99% -> 100."""
    return 1.0 / (1.0 - q / 100.0)


def spectrum_chart(distributions: Sequence[tuple[str, LatencySummary]]) -> Chart:
    """Latency distributions as percentile spectra, HdrHistogram style, 0% to 99.99%.

    The x axis is ``1 / (1 - percentile/100)`` on a log scale, labelled 0%, 90%, 99%, 99.9%,
    99.99% (the layout of HdrHistogram's percentile plots, G. Tene); the points are
    :meth:`LatencyHistogram.percentile_spectrum` of each distribution's encoded histogram.
    The maximum is drawn as a dashed horizontal line, labelled at the right end; the labels of
    several distributions sit side by side (each :data:`MAX_LABEL_STEP_PT` further left), so that
    close maxima never print over each other. The part of the axis where fewer than 10
    samples lie above the percentile (the "insufficient" rule of the metric definitions, taken
    on the largest distribution) is shaded.

    Args:
        distributions: ``(label, summary)`` pairs; a summary without a histogram is left out.

    Returns:
        chart ``chart-spectrum``; the y axis (ms) is always logarithmic (a latency is never 0
        in practice; a percentile of 0 ns, which a log axis cannot show, is left out).
    """
    chart_id, title = "chart-spectrum", "Latency by percentile (ms)"
    with report_figure(chart_id) as fig:
        ax = fig.add_subplot()
        x_max = _spectrum_x(SPECTRUM_MAX_PERCENTILE)
        drawn = 0
        y_min, y_max = math.inf, 0.0
        largest = 0
        labels: list[tuple[float, str, str]] = []  # (max in ms, text, colour)
        for i, (label, summary) in enumerate(distributions):
            if not summary.histogram or summary.count == 0:
                continue
            hist = LatencyHistogram.decode(summary.histogram)
            points = [(q, v) for q, v in hist.percentile_spectrum() if q < 100.0]
            points = [(q, v) for q, v in points if _spectrum_x(q) <= x_max and v > 0]
            if not points:
                continue
            xs = [_spectrum_x(q) for q, _ in points]
            ys = [v / BYTES_PER_MB for _, v in points]
            col = colour(i)
            ax.plot(xs, ys, color=col, lw=1.5, label=f"{label} (n={summary.count:,})")
            max_ms = hist.max_ns / BYTES_PER_MB
            ax.axhline(max_ms, color=col, lw=0.8, ls="--", alpha=0.7)
            labels.append((max_ms, f"max {_ms_text(max_ms)} ms", col))
            y_min, y_max = min(y_min, min(ys)), max(y_max, max_ms)
            largest = max(largest, summary.count)
            drawn += 1
        if not drawn:
            _no_data(ax, "no successful ops")
            return to_chart(fig, chart_id, title)
        ax.set_xscale("log")
        ax.set_xlim(1.0, x_max)
        ticks = [1.0, 10.0, 100.0, 1_000.0, 10_000.0]
        ax.set_xticks(ticks, ["0%", "90%", "99%", "99.9%", "99.99%"])
        ax.minorticks_off()
        enough_up_to = largest / 10.0  # x beyond which fewer than 10 samples lie above
        if enough_up_to < x_max:
            ax.axvspan(max(enough_up_to, 1.0), x_max, color=_WARMUP_COLOUR, alpha=0.3, lw=0,
                       label="fewer than 10 samples above")  # fmt: skip
        for k, (max_ms, text, col) in enumerate(sorted(labels, key=lambda m: -m[0])):
            ax.annotate(text, (x_max, max_ms), xytext=(-4 - k * MAX_LABEL_STEP_PT, 2),
                        fontsize=7, textcoords="offset points", ha="right", color=col)  # fmt: skip
        _log_ms_axis(ax, y_min, y_max)
        ax.set_xlabel("percentile")
        ax.set_ylabel("ms")
        legend_above(fig, ax)
        return to_chart(fig, chart_id, title)


def _ms_text(value_ms: float) -> str:
    """A latency in ms for a label: three significant digits, whole ms from 1,000 ms up."""
    return f"{value_ms:,.0f}" if value_ms >= 1_000.0 else f"{value_ms:.3g}"


def _log_ms_axis(ax: Axes, y_min: float, y_max: float) -> None:
    """Make the y axis logarithmic, with plain-number labels (``20``, ``50``, ``100``).

    Ticks at 1, 2 and 5 times each power of ten; at every integer multiple when the values span
    less than one decade, so that a narrow range still has several labels; only at powers of ten
    beyond four decades.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    decades = math.log10(y_max / y_min) if y_min > 0 else math.inf
    subs: tuple[float, ...] = (1.0, 2.0, 5.0)
    if decades < 1.0:
        subs = tuple(float(k) for k in range(1, 10))
    elif decades > 4.0:
        subs = (1.0,)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=subs))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _ms_text(v)))


def _sen_intercept(xs: Sequence[float], ys: Sequence[float], slope: float) -> float:
    """Intercept of a Theil-Sen line: the median of ``y - slope * x`` (Sen's convention)."""
    residuals = sorted(y - slope * x for x, y in zip(xs, ys, strict=True))
    n = len(residuals)
    mid = n // 2
    return residuals[mid] if n % 2 else (residuals[mid - 1] + residuals[mid]) / 2.0


def rss_chart(trials: Sequence[TrialResult]) -> Chart:
    """RSS of the measuring process over time (MB) with each trial's fitted slope.

    A row's RSS was sampled at the end of its interval, so it is drawn at ``t_s + 1``. The fitted
    line has the trial's Theil-Sen slope (``MemoryFigures.slope_mb_per_min``) and Sen's intercept
    (median of ``rss - slope * t``) over the samples at ``t >= 0`` (the measurement window).

    Args:
        trials: the run's trials.

    Returns:
        chart ``chart-rss``.
    """
    chart_id, title = "chart-rss", "Memory: RSS of the measuring process (MB)"
    with report_figure(chart_id) as fig:
        ax = fig.add_subplot()
        if not any(r.rss_bytes is not None for t in trials for r in t.timeseries):
            _no_data(ax, "no RSS samples recorded")
            return to_chart(fig, chart_id, title)
        _shade_warmup(ax, trials)
        for i, t in enumerate(trials):
            prefix = _trial_label(t, len(trials))
            pts = [(r.t_s + 1.0, r.rss_bytes / BYTES_PER_MB) for r in t.timeseries if r.rss_bytes]
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colour(i), lw=1.4,
                    marker=".", ms=3, label=prefix or "RSS")  # fmt: skip
            m = t.memory
            window = [p for p in pts if p[0] >= 0]
            if m.slope_mb_per_min is None or len(window) < 2:
                continue
            slope_mb_per_s = m.slope_mb_per_min / 60.0
            xs = [p[0] for p in window]
            b = _sen_intercept(xs, [p[1] for p in window], slope_mb_per_s)
            text = f"fit {m.slope_mb_per_min:+.2f} MB/min"
            if m.slope_ci_low is not None and m.slope_ci_high is not None:
                text += f" (95% CI {m.slope_ci_low:+.2f} to {m.slope_ci_high:+.2f})"
            x0, x1 = xs[0], xs[-1]
            ax.plot([x0, x1], [b + slope_mb_per_s * x0, b + slope_mb_per_s * x1],
                    color=colour(i), lw=1.0, ls="--",
                    label=f"{prefix}: {text}" if prefix else text)  # fmt: skip
        ax.set_ylabel("MB")
        _time_axis(ax, trials)
        legend_above(fig, ax)
        return to_chart(fig, chart_id, title)


def errors_chart(trials: Sequence[TrialResult]) -> Chart:
    """Failed requests per 1-second interval (bars), warmup shaded.

    Args:
        trials: the run's trials; side-by-side bars per trial.

    Returns:
        chart ``chart-errors``; the y axis counts failed requests completed in each second.
    """
    chart_id, title = "chart-errors", "Errors: failed requests per second"
    with report_figure(chart_id) as fig:
        ax = fig.add_subplot()
        if not any(t.timeseries for t in trials):
            _no_data(ax, "no time series recorded")
            return to_chart(fig, chart_id, title)
        _shade_warmup(ax, trials)
        n = max(len(trials), 1)
        width = 0.8 / n
        total = 0
        for i, t in enumerate(trials):
            xs = [r.t_s + 0.1 + width * (i + 0.5) for r in t.timeseries]
            ys = [r.failures for r in t.timeseries]
            total += sum(ys)
            ax.bar(xs, ys, width=width, color=colour(i) if n > 1 else "#d62728",
                   label=_trial_label(t, n) or "failed requests")  # fmt: skip
        if total == 0:
            ax.text(0.5, 0.5, "no failed request", ha="center", va="center",
                    transform=ax.transAxes, color="#2ca02c")  # fmt: skip
            ax.set_ylim(0, 1)
        else:
            ax.set_ylim(bottom=0)
        ax.set_ylabel("failures")
        _time_axis(ax, trials)
        legend_above(fig, ax)
        return to_chart(fig, chart_id, title)


def run_charts(trials: Sequence[TrialResult], total: TrialResult | None) -> list[Chart]:
    """Every chart of a run's report, in page order.

    Args:
        trials: the run's trials (time series).
        total: all trials merged (distributions), or ``None`` if no trial completed.

    Returns:
        throughput, latency over time, percentile spectrum, RSS and errors charts.
    """
    dists: list[tuple[str, LatencySummary]] = []
    if total is not None:
        dists.append(("service time", total.service_time))
        if total.response_time is not None:
            dists.append(("response time (from intended send)", total.response_time))
        if total.stream is not None:
            dists.append(("time to first token", total.stream.ttft))
    return [
        throughput_chart(trials),
        latency_over_time_chart(trials),
        spectrum_chart(dists),
        rss_chart(trials),
        errors_chart(trials),
    ]
