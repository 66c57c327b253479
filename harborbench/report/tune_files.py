"""Files of ``harborbench tune``: ``result.json``, ``sweep.csv``, ``recommended_config.yaml``.

All written atomically with :func:`harborbench.report.files.write_atomic` into
``reports/<name>/``; the first save moves an earlier run of the same name to
``reports/<name>/history/<timestamp>/`` (the recommended config with it), later saves of the same
sweep (after each point) replace its own files.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from harborbench.errors import RunFailedError
from harborbench.report.files import (
    archive_previous,
    check_run_folder,
    csv_text,
    run_dir,
    seconds_to_ms,
    write_atomic,
    write_failed,
)
from harborbench.tune.result import SweepPoint, TuneResult
from harborbench.units import format_duration

RECOMMENDED_CONFIG = "recommended_config.yaml"


def sweep_rows(result: TuneResult) -> list[dict[str, Any]]:
    """One row per sweep point, then the confirmation (``point`` = ``confirm``); units in names.

    ``usl_predicted_ops`` is X(N) of the fitted USL at the point's concurrency (empty when
    the fit is poor); ``missed_gates`` lists the gates that failed and ``unsure_gates`` those
    that were inconclusive (``;``-separated); ``chosen`` marks the recommended point.
    """
    points: list[tuple[str, SweepPoint]] = [(str(p.index), p) for p in result.points]
    if result.confirmation is not None:
        points.append(("confirm", result.confirmation.point))
    rows = []
    for label, p in points:
        predicted = result.fit.predict(p.concurrency)
        rows.append(
            {
                "point": label,
                "phase": p.phase,
                "concurrency": p.concurrency,
                "max_concurrent_requests": p.max_concurrent_requests,
                "connection_pool_size": p.connection_pool_size,
                "workers": p.workers,
                "max_batch_size": p.max_batch_size,
                "batch_window_ms": seconds_to_ms(p.batch_window_s),
                "window_s": round(p.window_s, 3),
                "successes": p.successes,
                "failures": p.failures,
                "throughput_ops": round(p.throughput_ops, 3),
                "usl_predicted_ops": None if predicted is None else round(predicted, 3),
                "error_rate": None if p.error_rate is None else round(p.error_rate, 6),
                "service_p50_ms": seconds_to_ms(p.service_time.p50_s),
                "service_p95_ms": seconds_to_ms(p.service_time.p95_s),
                "service_p99_ms": seconds_to_ms(p.service_time.p99_s),
                "service_mean_ms": seconds_to_ms(p.service_time.mean_s),
                "cpu_percent_mean": round(p.cpu_percent_mean, 1),
                "ops_per_cpu_second": None
                if p.ops_per_cpu_second is None
                else round(p.ops_per_cpu_second, 2),
                "meets_gates": p.meets_gates,
                "missed_gates": ";".join(p.missed_gates),
                "unsure_gates": ";".join(p.unsure_gates),
                "chosen": label != "confirm" and result.chosen == p.index,
                "generator_saturated": p.generator_saturated,
            }
        )
    return rows


def _figures(p: SweepPoint) -> str:
    p95 = "n/a" if p.service_time.p95_s is None else f"{p.service_time.p95_s * 1e3:.1f} ms"
    err = "n/a" if p.error_rate is None else f"{p.error_rate:.2%}"
    return f"{p.throughput_ops:.1f} ops/s, p95 {p95}, error rate {err}"


def recommended_config_text(result: TuneResult, source: str | None = None) -> str:
    """The YAML of the recommended config with a comment header (profile, date, machine,
    measured figures).

    Args:
        result: a finished sweep with ``recommended_config`` set.
        source: the profile's path, shown in the header.

    Raises:
        ValueError: the sweep recommended nothing.
    """
    if result.recommended_config is None or result.chosen is None:
        raise ValueError("the sweep recommended no config")
    env = result.environment
    best = result.points[result.chosen]
    fit = result.fit
    lines = [
        "# Client configuration recommended by `harborbench tune` (harborbench "
        f"{result.harborbench_version}).",
        f"# profile: {result.profile.get('name')}" + (f" ({source})" if source else ""),
        f"# date: {result.created_at}",
        f"# machine: {env.get('cpu_model')}, {env.get('cpu_usable')} usable of "
        f"{env.get('cpu_count')} CPUs, {env.get('os')}, Python {env.get('python')}, "
        f"aiohttp {env.get('aiohttp')}",
        f"# sweep: {len(result.points)} points of {format_duration(result.trial_window_s)} "
        f"(warmup {format_duration(result.trial_warmup_s)}) in {result.elapsed_s:.0f} s; "
        f"stopped: {result.stop_reason}",
        f"# chosen point {best.index} ({best.phase}): {_figures(best)}",
    ]
    if fit.good and fit.lambda_ops is not None:
        peak = "none" if fit.peak_concurrency is None else f"{fit.peak_concurrency:.0f}"
        lines.append(
            f"# USL fit: lambda {fit.lambda_ops:.1f} ops/s, sigma {fit.sigma:.4f}, "
            f"kappa {fit.kappa:.6f}, peak N* {peak}, R^2 {fit.r_squared:.3f}"
        )
    else:
        lines.append(f"# USL fit: {fit.note}")
    conf = result.confirmation
    if conf is not None:
        c = conf.point
        parts = ["MISSES " + ", ".join(c.missed_gates)] if c.missed_gates else []
        if c.unsure_gates:
            parts.append("INCONCLUSIVE for " + ", ".join(c.unsure_gates))
        verdict = "; ".join(parts) or "meets every gate"
        lines.append(
            f"# confirmation ({conf.point.window_s:.1f} s): {_figures(conf.point)}; {verdict}"
        )
    lines += [
        "# Client keys only, no target and no key. Load it with",
        "#   create_fast_client(yaml.safe_load(open(path)), base_url=URL)",
        "# adding api_key_env=NAME for an endpoint that needs a key. In a profile, put these",
        "# keys under client: without timeout_s (a profile sets it as request.timeout).",
        "",
    ]
    body = yaml.safe_dump(result.recommended_config, sort_keys=False, default_flow_style=False)
    return "\n".join(lines) + body


class TuneWriter:
    """Saves a sweep's files, archiving an earlier run of the same name on the first save.

    Args:
        reports: the reports folder.
        name: the run name (letters, digits, ``_.-``).
        source: the profile's path, for the header of the recommended config.

    Raises:
        ValueError: an unsafe name.
        UserInputError: the run's folder ``reports/<name>`` cannot be written (checked here,
            before anything is measured; see :func:`~harborbench.report.files.check_run_folder`).
    """

    def __init__(self, reports: Path, name: str, source: str | None = None) -> None:
        self.folder = run_dir(reports, name)
        check_run_folder(self.folder)
        self.source = source
        self._archived = False
        self.history: Path | None = None

    def _archive(self) -> None:
        self.history = archive_previous(self.folder)
        config = self.folder / RECOMMENDED_CONFIG
        if config.exists():
            if self.history is None:
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
                self.history = self.folder / "history" / stamp
                self.history.mkdir(parents=True, exist_ok=False)
            shutil.move(str(config), self.history / RECOMMENDED_CONFIG)
        self._archived = True

    def save(self, result: TuneResult) -> Path:
        """Write ``result.json`` and ``sweep.csv``, and ``recommended_config.yaml`` when the
        sweep recommends a config; returns the folder."""
        text = result.model_dump_json(indent=2) + "\n"
        try:
            if not self._archived:
                self._archive()
            write_atomic(self.folder / "result.json", text)
            write_atomic(self.folder / "sweep.csv", csv_text(sweep_rows(result)))
            if result.recommended_config is not None:
                write_atomic(
                    self.folder / RECOMMENDED_CONFIG, recommended_config_text(result, self.source)
                )
        except OSError as exc:
            what = f"the sweep's files in {self.folder}"
            raise RunFailedError(write_failed(what, exc, text, result.name)) from None
        return self.folder
