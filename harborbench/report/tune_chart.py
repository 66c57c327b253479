"""The chart of a tune sweep as inline SVG: throughput and p95 against concurrency, with the
fitted Universal Scalability Law (for :mod:`harborbench.report.tune_html`).

Drawn with matplotlib through :func:`harborbench.report.charts.report_figure` (no pyplot, no
global state); like every chart of the reports, it draws no text taken from the profile.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from harborbench.metrics.usl import usl_throughput
from harborbench.report.charts import Chart, report_figure, to_chart
from harborbench.tune.result import SweepPoint, TuneResult
from harborbench.units import parse_duration

if TYPE_CHECKING:
    from matplotlib.axes import Axes

CHART_ID = "chart-tune"
CHART_TITLE = "Throughput and service-time p95 against concurrency N"

_LOAD_COLOUR = "#1f77b4"
_OTHER_COLOUR = "#7f7f7f"
_MISS_COLOUR = "#d62728"
_CHOSEN_COLOUR = "#2ca02c"
_CLOSEST_COLOUR = "#e6a100"
_CONFIRM_COLOUR = "#ff7f0e"
_USL_GOOD_COLOUR = "#333333"
_USL_POOR_COLOUR = "#9467bd"


def _gate_limit(gates: dict[str, Any], key: str, duration: bool) -> float | None:
    """A gate threshold from the resolved profile (``None`` when absent or unreadable)."""
    value = gates.get(key)
    try:
        if value is None:
            return None
        return parse_duration(value) if duration and isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None


def fit_label(result: TuneResult) -> str | None:
    """The legend text of the fitted USL curve, or ``None`` when there are no parameters.

    Args:
        result: the sweep.

    Returns:
        for example ``"USL fit: λ 40.0 ops/s, σ 0.0200, κ 5.00e-04, R² 1.000 (good), peak N* 44"``.
    """
    fit = result.fit
    if fit.lambda_ops is None or fit.sigma is None or fit.kappa is None:
        return None
    r2 = "n/a" if fit.r_squared is None else f"{fit.r_squared:.3f}"
    quality = "good" if fit.good else "poor: not used"
    peak = "" if fit.peak_concurrency is None else f", peak N* {fit.peak_concurrency:.0f}"
    return (
        f"USL fit: λ {fit.lambda_ops:,.1f} ops/s, σ {fit.sigma:.4f}, κ {fit.kappa:.2e}, "
        f"R² {r2} ({quality}){peak}"
    )


def _mark(ax: Axes, p: SweepPoint, y: float | None, colour: str, label: str | None) -> None:
    """A ring around a point (chosen or closest)."""
    if y is not None:
        ax.plot([p.concurrency], [y], "o", ms=13, mfc="none", mec=colour, mew=2.2, label=label)


def tune_chart(result: TuneResult) -> Chart:
    """Throughput (top) and service-time p95 (bottom) against concurrency N, log2 x axis.

    Load-phase points (pool and workers >= N) are joined by a line; pool and processor points
    (the same N, smaller settings) are hollow grey; a red ``x`` marks a point that misses a gate.
    The USL curve ``X(N)`` of :func:`harborbench.metrics.usl.usl_throughput` is dashed when the
    fit has parameters (dark when good, purple when poor), over the measured range of N. The
    chosen point has a green ring (the closest point an amber one when nothing met the gates),
    the confirmation an orange diamond. The profile's throughput and p95 gates are dotted lines.
    No text from the profile is drawn: only numbers and this module's labels.

    Args:
        result: the sweep.

    Returns:
        chart ``chart-tune``.
    """
    with report_figure(CHART_ID) as fig:
        fig.set_size_inches(10.0, 5.6)
        ax_ops, ax_p95 = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
        points = result.points
        if not points:
            ax_ops.text(0.5, 0.5, "no sweep point was measured", ha="center", va="center",
                        transform=ax_ops.transAxes, color="#777777")  # fmt: skip
            for ax in (ax_ops, ax_p95):
                ax.set_xticks([])
                ax.set_yticks([])
            return to_chart(fig, CHART_ID, CHART_TITLE)
        load = sorted((p for p in points if p.phase == "concurrency"), key=lambda p: p.concurrency)
        other = [p for p in points if p.phase != "concurrency"]

        def p95(p: SweepPoint) -> float | None:
            v = p.service_time.p95_s
            return None if v is None else v * 1e3

        for ax, y in ((ax_ops, lambda p: p.throughput_ops), (ax_p95, p95)):
            first = ax is ax_ops
            pts = [(p.concurrency, y(p)) for p in load]
            ax.plot([n for n, _ in pts], [math.nan if v is None else v for _, v in pts],
                    color=_LOAD_COLOUR, lw=1.5, marker="o", ms=4,
                    label="load phase (pool, workers ≥ N)" if first else None)  # fmt: skip
            if other:
                ax.plot([p.concurrency for p in other],
                        [math.nan if y(p) is None else y(p) for p in other], ls="none",
                        marker="s", ms=6, mfc="none", mec=_OTHER_COLOUR,
                        label="pool / processor phases (same N, smaller settings)" if first
                        else None)  # fmt: skip
            missed = [p for p in points if not p.meets_gates and y(p) is not None]
            if missed:
                ax.plot([p.concurrency for p in missed], [y(p) for p in missed], ls="none",
                        marker="x", ms=7, mew=1.6, color=_MISS_COLOUR,
                        label="misses a gate" if first else None)  # fmt: skip
            if result.chosen is not None:
                chosen = points[result.chosen]
                _mark(ax, chosen, y(chosen), _CHOSEN_COLOUR,
                      f"chosen: point {chosen.index}" if first else None)  # fmt: skip
            elif result.closest is not None:
                closest = points[result.closest]
                _mark(ax, closest, y(closest), _CLOSEST_COLOUR,
                      f"closest: point {closest.index} (no point met the gates)" if first
                      else None)  # fmt: skip
            if result.confirmation is not None:
                c = result.confirmation.point
                if y(c) is not None:
                    ax.plot([c.concurrency], [y(c)], "D", ms=7, color=_CONFIRM_COLOUR,
                            label="confirmation (longer trial)" if first else None)  # fmt: skip

        fit = result.fit
        label = fit_label(result)
        levels = sorted({p.concurrency for p in points})
        lo, hi = levels[0], levels[-1]
        if label is not None and fit.lambda_ops is not None and fit.sigma is not None \
                and fit.kappa is not None:  # fmt: skip
            xs = [lo * (hi / lo) ** (i / 199) for i in range(200)]
            ys = usl_throughput(xs, fit.lambda_ops, fit.sigma, fit.kappa)
            ax_ops.plot(xs, ys, ls="--", lw=1.3,
                        color=_USL_GOOD_COLOUR if fit.good else _USL_POOR_COLOUR,
                        label=label)  # fmt: skip
        else:
            ax_ops.text(0.5, 0.6, "no USL curve: no fit (see the model below the chart)",
                        ha="center", va="center", transform=ax_ops.transAxes,
                        color="#777777")  # fmt: skip

        gates = result.profile.get("gates")
        gates = gates if isinstance(gates, dict) else {}
        ops_min = _gate_limit(gates, "throughput_min", duration=False)
        if ops_min is not None:
            ax_ops.axhline(ops_min, color=_MISS_COLOUR, lw=1.0, ls=":",
                           label=f"throughput gate ≥ {ops_min:g} ops/s")  # fmt: skip
        p95_max = _gate_limit(gates, "p95_max", duration=True)
        if p95_max is not None:
            ax_p95.axhline(p95_max * 1e3, color=_MISS_COLOUR, lw=1.0, ls=":",
                           label=f"p95 gate < {p95_max * 1e3:g} ms")  # fmt: skip
            ax_p95.legend(loc="upper left")

        ax_ops.set_xscale("log", base=2)
        ax_ops.set_xlim(lo / 1.4, hi * 1.4)
        ax_p95.set_xticks(levels, [str(n) for n in levels])
        ax_p95.minorticks_off()
        ax_ops.set_ylim(bottom=0)
        ax_p95.set_ylim(bottom=0)
        ax_ops.set_ylabel("successful ops/s")
        ax_p95.set_ylabel("service p95 (ms)")
        ax_p95.set_xlabel("concurrency N (closed-loop workers = max_concurrent_requests), log2")
        handles, labels = ax_ops.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper left", ncols=2)
        return to_chart(fig, CHART_ID, CHART_TITLE)
