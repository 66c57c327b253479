"""The self-contained HTML page of a tune sweep: ``reports/<name>/report.html``.

Same rules as the run report (:mod:`harborbench.report.html`): inline CSS and SVG, no script,
nothing fetched, every value from the result escaped with :func:`html.escape`. The page shows
throughput and service-time p95 against concurrency with the fitted Universal Scalability Law
(:mod:`harborbench.metrics.usl`), the chosen point and the confirmation; the sweep table with the
gates of every point; the recommended client config as written to ``recommended_config.yaml``;
the fitted model; the notes; the environment and the resolved profile.
"""

from __future__ import annotations

import json
from pathlib import Path

from harborbench.report.files import write_atomic
from harborbench.report.html import REPORT_FILE, _badge, _e, _kv, _page, _table, redact
from harborbench.report.tune_chart import tune_chart
from harborbench.report.tune_files import recommended_config_text
from harborbench.tune.result import SweepPoint, TuneResult

#: Inline styles of the highlighted sweep rows (the page's style sheet is shared with the run
#: report; inline ``style`` attributes are allowed by its Content-Security-Policy).
_ROW_STYLE = {
    "chosen": "background:#dff3e4;font-weight:600",
    "closest": "background:#fff1cc",
    "confirmation": "background:#e3f0fb",
}
#: How a gate verdict is worded per sweep point, and its badge class.
_GATE_WORDS = (("pass", "met", "pass"), ("fail", "missed", "fail"),
               ("inconclusive", "inconclusive", "inconclusive"))  # fmt: skip


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1e3:.1f}"


def _gates_cell(p: SweepPoint) -> str:
    """The point's gates grouped as met / missed / inconclusive, each group with a badge."""
    if not p.gates:
        return "no gate"
    parts = []
    for verdict, word, cls in _GATE_WORDS:
        names = [g.name for g in p.gates if g.verdict == verdict]
        if names:
            parts.append(f'<span class="badge {cls}">{_e(word)}</span> {_e(", ".join(names))}')
    return "<br>".join(parts)


def _processor(p: SweepPoint) -> str:
    if p.workers is None:
        return "–"
    if (p.max_batch_size or 1) <= 1:
        return str(p.workers)
    return f"{p.workers} × batch {p.max_batch_size} / {(p.batch_window_s or 0.0) * 1e3:g} ms"


def _sweep_table(result: TuneResult) -> str:
    rows: list[tuple[str, SweepPoint, str]] = []
    for p in result.points:
        role = ""
        if p.index == result.chosen:
            role = "chosen"
        elif result.chosen is None and p.index == result.closest:
            role = "closest"
        rows.append((str(p.index), p, role))
    if result.confirmation is not None:
        rows.append(("confirm", result.confirmation.point, "confirmation"))
    head = ["#", "phase", "N", "pool", "workers", "ops/s", "USL ops/s", "p95 ms", "p99 ms",
            "errors", "CPU %", "gates"]  # fmt: skip
    numeric = set(range(2, 11))
    body = []
    for label, p, role in rows:
        predicted = result.fit.predict(p.concurrency) if p.phase == "concurrency" else None
        err = "–" if p.error_rate is None else f"{p.error_rate:.2%}"
        gates = _gates_cell(p)
        if p.generator_saturated:
            gates += '<br><span class="badge warning">generator saturated</span>'
        first = _e(label) + (f" <strong>{_e(role)}</strong>" if role else "")
        cells = [first, _e(p.phase), _e(p.concurrency), _e(p.connection_pool_size),
                 _e(_processor(p)), _e(f"{p.throughput_ops:,.1f}"),
                 _e("–" if predicted is None else f"{predicted:,.1f}"),
                 _e(_ms(p.service_time.p95_s)), _e(_ms(p.service_time.p99_s)), _e(err),
                 _e(f"{p.cpu_percent_mean:.0f}"), gates]  # fmt: skip
        tds = "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(cells)
        )
        attrs = f' class="{role}" style="{_ROW_STYLE[role]}"' if role else ""
        body.append(f"<tr{attrs}>{tds}</tr>")
    ths = "".join(
        f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(head)
    )
    return (
        "<h2>Sweep</h2>"
        f'<p class="sub">One short trial per point ({_e(f"{result.trial_window_s:g}")} s after '
        f"{_e(f'{result.trial_warmup_s:g}')} s of warmup); USL ops/s: X(N) of a good fit, "
        "load phase only. "
        "Gates: met, missed, or inconclusive (too few samples to judge).</p>"
        f"<table><thead><tr>{ths}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _outcome(result: TuneResult) -> str:
    rows: list[tuple[str, str]] = []
    if result.chosen is not None:
        p = result.points[result.chosen]
        rows.append(
            ("recommended", _badge("pass") + " " + _e(f"point {p.index} ({p.phase}): "
             f"{p.knobs().label()}, {p.throughput_ops:,.1f} ops/s, p95 "
             f"{_ms(p.service_time.p95_s)} ms in the sweep"))
        )  # fmt: skip
    else:
        text = "nothing: no point met every gate of the profile"
        if result.interrupted:
            text = "nothing: the sweep was interrupted"
        elif result.only_saturated_met():
            text = (
                "nothing: every point that met the gates was measured with the load generator "
                "saturated (see the notes)"
            )
        if (
            result.closest is not None
            and not result.interrupted
            and not result.only_saturated_met()
        ):
            c = result.points[result.closest]
            text += (
                f"; closest: point {c.index} ({c.knobs().label()}), "
                f"{c.throughput_ops:,.1f} ops/s, {c.gates_text()}"
            )
        rows.append(("recommended", _badge("fail") + " " + _e(text)))
    conf = result.confirmation
    if conf is not None:
        c = conf.point
        ratio = "" if conf.ratio_to_sweep is None else f" (x{conf.ratio_to_sweep:.2f})"
        usl = "" if conf.usl_predicted_ops is None else f", USL {conf.usl_predicted_ops:,.1f}"
        word = "pass" if c.meets_gates else "fail" if c.missed_gates else "inconclusive"
        missed = "" if c.meets_gates else ": " + c.gates_text()
        rows.append(
            ("confirmation", _e(f"{c.throughput_ops:,.1f} ops/s measured over {c.window_s:.1f} s "
             f"against {conf.sweep_throughput_ops:,.1f} predicted by the sweep{ratio}{usl}; "
             f"p95 {_ms(c.service_time.p95_s)} ms ") + _badge(word) + _e(missed))
        )  # fmt: skip
    rows += [
        ("stopped", _e(result.stop_reason)),
        ("sweep", _e(f"{len(result.points)} points in {result.elapsed_s:.0f} s of a "
                     f"{result.budget_s:.0f} s budget")),
        ("rules", _e(f"load doubles N while throughput rises by ≥ "
                     f"{result.rise_min_fraction:.0%}; ties within {result.tie_fraction:.0%} "
                     "go to the smaller settings")),
    ]  # fmt: skip
    return "<h2>Outcome</h2>" + _kv(rows)


def _model(result: TuneResult) -> str:
    fit = result.fit
    head = (
        "<h2>Model: Universal Scalability Law</h2><p>X(N) = λN / (1 + σ(N−1) + κN(N−1)) "
        "(N. J. Gunther, <em>Guerrilla Capacity Planning</em>, 2007): λ the throughput of one "
        "worker, σ contention, κ coherency; the peak is at N* = √((1−σ)/κ).</p>"
    )
    if fit.lambda_ops is None or fit.sigma is None or fit.kappa is None:
        return head + f"<p>{_badge('inconclusive')} no fit: {_e(fit.note)}</p>"
    peak = fit.peak_text() if fit.peak_concurrency is None else f"{fit.peak_concurrency:,.1f}"
    peak_ops = "–" if fit.peak_throughput_ops is None else f"{fit.peak_throughput_ops:,.1f} ops/s"
    rows = [
        ("λ", _e(f"{fit.lambda_ops:,.2f} ops/s")),
        ("σ (contention)", _e(f"{fit.sigma:.5f}")),
        ("κ (coherency)", _e(f"{fit.kappa:.3e}")),
        ("peak N*", _e(f"{peak} (X(N*) = {peak_ops})")),
        ("R²", _e("n/a" if fit.r_squared is None else f"{fit.r_squared:.4f}")),
        ("points", _e(fit.points)),
        ("quality", _badge("pass") + " good: used for the USL column"
         if fit.good else _badge("inconclusive") + " " + _e(fit.note)),
    ]  # fmt: skip
    return head + _kv(rows)


def _confirmation_gates(result: TuneResult) -> str:
    conf = result.confirmation
    if conf is None or not conf.point.gates:
        return ""
    rows = [[_e(g.name), _e(g.threshold), _e(g.observed), _badge(g.verdict), _e(g.detail)]
            for g in conf.point.gates]  # fmt: skip
    return "<h2>Gates of the confirmation</h2>" + _table(
        ["gate", "threshold", "observed", "verdict", "detail"], rows
    )


def _config(result: TuneResult) -> str:
    if result.recommended_config is None or result.chosen is None:
        return (
            "<h2>Recommended config</h2><p>No config is recommended, so no "
            "<code>recommended_config.yaml</code> was written.</p>"
        )
    shown = result.model_copy(update={"recommended_config": redact(result.recommended_config)})
    text = recommended_config_text(shown)
    return (
        "<h2>Recommended config</h2><p>As written to <code>recommended_config.yaml</code> "
        "(accepted as is by <code>create_fast_client</code>):</p><pre>" + _e(text) + "</pre>"
    )


def _notes(result: TuneResult) -> str:
    items = [_e(n) for n in result.notes]
    for p in result.points:
        items += [_e(f"point {p.index}: {w}") for w in p.warnings]
    if result.confirmation is not None:
        items += [_e(f"confirmation: {w}") for w in result.confirmation.point.warnings]
    if not items:
        return "<h2>Notes</h2><p>No note and no measurement warning.</p>"
    return "<h2>Notes</h2><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _environment(result: TuneResult) -> str:
    rows = [
        (str(k), _e(json.dumps(v) if isinstance(v, dict | list) else v))
        for k, v in redact(result.environment).items()
    ]
    rows.insert(0, ("created at", _e(result.created_at)))
    text = json.dumps(redact(result.profile), indent=2, ensure_ascii=False)
    return (
        "<h2>Environment</h2>" + _kv(rows) + "<h2>Profile (resolved)</h2><pre>" + _e(text)
        + "</pre>"
    )  # fmt: skip


def _caption(result: TuneResult) -> str:
    text = (
        "Top: successful ops/s of each point; bottom: its service-time p95. Line: the load "
        "phase (N doubles); hollow squares: pool and processor points at the same N; red x: "
        "misses a gate; green ring: the chosen point (amber: the closest, when no point met "
        "the gates); orange diamond: the confirmation; dotted red: the profile's gates."
    )
    fit = result.fit
    if fit.lambda_ops is None:
        text += f" No USL curve: {fit.note}."
    elif not fit.good:
        text += f" Dashed purple: the USL fit, drawn but not used ({fit.note})."
    else:
        text += " Dashed: the fitted USL curve."
    return text


def render_tune_html(result: TuneResult) -> str:
    """Render a tune sweep as one self-contained HTML page.

    Args:
        result: the sweep (as written to ``result.json``).

    Returns:
        the HTML document (UTF-8 text) with one inline SVG chart, id ``chart-tune``
        (:func:`harborbench.report.tune_chart.tune_chart`). Every value from the result is
        escaped with :func:`html.escape`; secrets in the profile and environment are hidden by
        :func:`harborbench.report.html.redact`.
    """
    head = f"<h1>harborbench tune: {_e(result.name)}</h1>"
    description = result.profile.get("description")
    if description:
        head += f'<p class="sub">{_e(description)}</p>'
    head += (
        f'<p class="sub">{_e(result.created_at)} · harborbench {_e(result.harborbench_version)}'
        f" · tune result schema {_e(result.schema_version)}</p>"
    )
    if result.interrupted:
        head += (
            '<div class="banner warning"><strong>Interrupted:</strong> the sweep was stopped '
            "early; these are the points it measured, and nothing is recommended.</div>"
        )
    chart = tune_chart(result)
    figure = (
        f"<h2>Chart</h2><figure><h3>{_e(chart.title)}</h3>{chart.svg}"
        f"<figcaption>{_e(_caption(result))}</figcaption></figure>"
    )
    body = "".join(
        [head, _outcome(result), figure, _model(result), _sweep_table(result),
         _confirmation_gates(result), _config(result), _notes(result), _environment(result)]
    )  # fmt: skip
    title = f"harborbench tune: {result.name}"
    return _page(title, body, f"harborbench {result.harborbench_version}")


def write_tune_html(result: TuneResult, folder: Path) -> Path:
    """Write ``report.html`` of a tune sweep into ``folder``, atomically.

    Args:
        result: the sweep.
        folder: the sweep's folder (``reports/<name>/``); created if missing.

    Returns:
        the path of the written file.

    Raises:
        OSError: the file cannot be written.
    """
    path = Path(folder) / REPORT_FILE
    write_atomic(path, render_tune_html(result))
    return path
