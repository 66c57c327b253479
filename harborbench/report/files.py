"""Result files: ``reports/<name>/result.json``, ``summary.csv``, ``timeseries.csv`` (SPEC 7).

Every file is written atomically (to a temporary file in the same folder, then renamed), so a
reader never sees half a file. The first save of a run moves an earlier run of the same name to
``reports/<name>/history/<timestamp>/``; later saves of the same run (after each trial) replace
the run's own files.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harborbench.errors import RunFailedError, UserInputError
from harborbench.result import RunResult, TrialResult
from harborbench.units import BYTES_PER_MB

if TYPE_CHECKING:
    import pandas as pd


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()

RESULT_FILES = ("result.json", "summary.csv", "timeseries.csv", "report.html")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file 0600; a report is an ordinary file (0666 less the umask).
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_dir(reports: Path, name: str) -> Path:
    """The folder of run ``name`` under ``reports``.

    Raises:
        ValueError: the name is empty, ``.`` or ``..``, or has a character other than letters,
            digits, ``_``, ``.`` and ``-`` (so it cannot escape the folder).
    """
    if name in ("", ".", ".."):
        raise ValueError(f"run name {name!r} is not allowed; use for example 'baseline-2'")
    if not _SAFE_NAME.match(name):
        raise ValueError(f"run name {name!r} may contain only letters, digits, '_', '.' and '-'")
    return reports / name


def check_writable_dir(folder: Path, option: str = "--reports-dir") -> None:
    """Make sure ``folder`` exists (creating it) and a file can be written there.

    Called before anything is measured, so a bad output folder costs nothing.

    Raises:
        UserInputError: it is a file, cannot be created, or is not writable (exit 2).
    """
    if folder.exists() and not folder.is_dir():
        raise UserInputError(
            f"{option} {folder}: is a file, not a folder.", hint="Give a folder path."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise UserInputError(
            f"{option} {folder}: cannot write there ({exc.strerror or exc}).",
            hint="Choose a folder you can write to.",
        ) from None


def check_run_folder(folder: Path, option: str | None = None) -> None:
    """Make sure the files of a run (or a sweep, a comparison) can be written in ``folder``.

    Called before anything is measured, so that a run never measures for minutes and then
    loses its result to an unwritable path: the reports folder and ``folder`` are created if
    missing, a file is written and removed in ``folder``, and its ``history/`` (where an
    earlier run is moved) must not be a file.

    Args:
        folder: ``reports/<name>``.
        option: how the user named the folder, for the message (default ``--name <name>``).

    Raises:
        UserInputError: the reports folder or ``folder`` is a file or cannot be created or
            written, or its ``history`` is a file (exit 2); the message names the path and
            the fix.
    """
    named = option or f"--name {folder.name}"
    check_writable_dir(folder.parent)
    if folder.exists() and not folder.is_dir():
        raise UserInputError(
            f"{named}: {folder} is a file, not a folder.",
            hint="Give another --name, or move the file away.",
        )
    history = folder / "history"
    if history.exists() and not history.is_dir():
        raise UserInputError(
            f"{named}: {history} is a file; an earlier run is moved there.",
            hint="Move the file away, or give another --name.",
        )
    check_writable_dir(folder, named)


def save_fallback(text: str, name: str, suffix: str = ".json") -> Path | None:
    """Write ``text`` to a new file in the system's temporary folder, when its place failed.

    Args:
        text: the whole file (a result, a report).
        name: part of the file name (a run name).
        suffix: the file's extension.

    Returns:
        The path of the new file (``harborbench-<name>-XXXX<suffix>``, mode 0600), or ``None``
        when even that cannot be written.
    """
    try:
        fd, path = tempfile.mkstemp(prefix=f"harborbench-{name}-", suffix=suffix)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    except OSError:
        return None
    return Path(path)


def write_failed(what: str, exc: OSError, text: str, name: str, suffix: str = ".json") -> str:
    """The message of a write that failed at the end, after saving ``text`` to a fallback file.

    Args:
        what: what could not be written, e.g. ``"the result files in reports/x"``.
        exc: the error of the write.
        text: the content that must not be lost.
        name: a name for the fallback file.
        suffix: the fallback file's extension.

    Returns:
        ``"cannot write WHAT (reason); the result is saved in PATH."`` (or says that the
        fallback failed too).
    """
    fallback = save_fallback(text, name, suffix)
    where = (
        f"the result is saved in {fallback}"
        if fallback is not None
        else "the fallback file in the temporary folder could not be written either"
    )
    return f"cannot write {what} ({exc.strerror or exc}); {where}."


def archive_previous(folder: Path) -> Path | None:
    """Move an earlier run's files from ``folder`` to ``folder/history/<timestamp>/``.

    Returns:
        The history folder used, or ``None`` if there was nothing to move.
    """
    present = [folder / f for f in RESULT_FILES if (folder / f).exists()]
    present += [p for p in folder.glob("*.csv") if p not in present] if folder.exists() else []
    if not present:
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dest = folder / "history" / stamp
    dest.mkdir(parents=True, exist_ok=False)
    for p in present:
        shutil.move(str(p), dest / p.name)
    return dest


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows of one shape as CSV text: a header from the first row's keys, then the rows."""
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def seconds_to_ms(x: float | None) -> float | None:
    """Seconds to milliseconds rounded to 0.1 µs, for CSV columns named ``*_ms``."""
    return None if x is None else round(x * 1e3, 4)


def summary_rows(result: RunResult) -> list[dict[str, Any]]:
    """One row per trial plus one ``total`` row; tidy, units in the column names."""
    rows = []
    trials: list[tuple[str, TrialResult]] = [(str(t.index + 1), t) for t in result.trials]
    if result.total is not None and len(result.trials) > 1:
        trials.append(("total", result.total))
    for label, t in trials:
        rt = t.response_time
        rows.append(
            {
                "run": result.name,
                "trial": label,
                "window_s": round(t.window_s, 3),
                "successes": t.successes,
                "failures": t.failures,
                "in_flight_at_end": t.in_flight_at_end,
                "throughput_ops": round(t.throughput_ops, 3),
                "goodput_ops": None if t.goodput_ops is None else round(t.goodput_ops, 3),
                "slo_met": t.slo_met,
                "attempted_ops": round(t.attempted_ops, 3),
                "failed_ops": round(t.failed_ops, 3),
                "error_rate": None if t.error_rate is None else round(t.error_rate, 6),
                "service_p50_ms": seconds_to_ms(t.service_time.p50_s),
                "service_p90_ms": seconds_to_ms(t.service_time.p90_s),
                "service_p95_ms": seconds_to_ms(t.service_time.p95_s),
                "service_p99_ms": seconds_to_ms(t.service_time.p99_s),
                "service_p999_ms": seconds_to_ms(t.service_time.p999_s),
                "service_max_ms": seconds_to_ms(t.service_time.max_s),
                "service_mean_ms": seconds_to_ms(t.service_time.mean_s),
                "response_p95_ms": seconds_to_ms(rt.p95_s) if rt else None,
                "response_p99_ms": seconds_to_ms(rt.p99_s) if rt else None,
                "ttft_p50_ms": seconds_to_ms(t.stream.ttft.p50_s) if t.stream else None,
                "ttft_p95_ms": seconds_to_ms(t.stream.ttft.p95_s) if t.stream else None,
                "icl_p50_ms": seconds_to_ms(t.stream.icl.p50_s) if t.stream else None,
                "itl_p50_ms": seconds_to_ms(t.stream.itl.p50_s) if t.stream else None,
                "tpot_p50_ms": seconds_to_ms(t.stream.tpot.p50_s) if t.stream else None,
                "output_tokens_per_s": round(t.stream.output_tokens_per_s, 2) if t.stream else None,
                "token_source": t.stream.token_source if t.stream else None,
                "prompt_tokens": t.tokens.prompt_tokens if t.tokens else None,
                "completion_tokens": t.tokens.completion_tokens if t.tokens else None,
                "estimated_prompt_tokens": t.tokens.estimated_prompt_tokens if t.tokens else None,
                "replay_send_lag_p99_ms": seconds_to_ms(t.replay.send_lag.p99_s)
                if t.replay
                else None,
                "replay_send_lag_max_ms": seconds_to_ms(t.replay.send_lag.max_s)
                if t.replay
                else None,
                "cpu_seconds": round(t.cpu.cpu_seconds, 3),
                "cpu_percent_mean": round(t.cpu.cpu_percent_mean, 1),
                "ops_per_cpu_second": None
                if t.cpu.ops_per_cpu_second is None
                else round(t.cpu.ops_per_cpu_second, 2),
                "rss_start_mb": round(t.memory.rss_start_bytes / BYTES_PER_MB, 2),
                "rss_end_mb": round(t.memory.rss_end_bytes / BYTES_PER_MB, 2),
                "memory_growth_pct": round(t.memory.growth_pct, 2),
                "memory_slope_mb_per_min": t.memory.slope_mb_per_min,
                "memory_verdict": t.memory.verdict,
                "generator_saturated": t.health.generator_saturated,
                "interrupted": t.interrupted,
            }
        )
    return rows


def timeseries_rows(result: RunResult) -> list[dict[str, Any]]:
    """One row per trial and second; ``t_s`` < 0 is warmup."""
    rows = []
    for t in result.trials:
        for r in t.timeseries:
            rows.append(
                {
                    "run": result.name,
                    "trial": t.index + 1,
                    "t_s": r.t_s,
                    "phase": "warmup" if r.warmup else "measure",
                    "successes": r.successes,
                    "failures": r.failures,
                    "throughput_ops": round(r.throughput_ops, 3),
                    "slo_met": r.slo_met,
                    "service_p50_ms": seconds_to_ms(r.service_p50_s),
                    "service_p95_ms": seconds_to_ms(r.service_p95_s),
                    "service_p99_ms": seconds_to_ms(r.service_p99_s),
                    "response_p99_ms": seconds_to_ms(r.response_p99_s),
                    "rss_mb": None if r.rss_bytes is None else round(r.rss_bytes / BYTES_PER_MB, 3),
                    "cpu_percent": r.cpu_percent,
                }
            )
    return rows


def summary_frame(result: RunResult) -> pd.DataFrame:
    """The per-trial summary as a pandas DataFrame: the rows of :func:`summary_rows`
    (``summary.csv``), one per trial plus ``total`` for two trials or more."""
    import pandas as pd

    return pd.DataFrame(summary_rows(result))


def timeseries_frame(result: RunResult) -> pd.DataFrame:
    """The time series as a pandas DataFrame: the rows of :func:`timeseries_rows`
    (``timeseries.csv``), one per trial and second, ``t_s`` < 0 in warmup."""
    import pandas as pd

    return pd.DataFrame(timeseries_rows(result))


def frame_csv(frame: pd.DataFrame) -> str:
    """A DataFrame as tidy CSV text: one header row, no index, empty cells for missing values
    (the format :func:`csv_text` writes); no columns at all gives an empty file."""
    if frame.columns.empty:
        return ""
    text: str = frame.to_csv(index=False, lineterminator="\n")
    return text


class ResultWriter:
    """Saves a run's files, archiving an earlier run of the same name on the first save.

    Args:
        reports: the reports folder (``./reports`` by default in the CLI).
        name: the run name.

    Raises:
        ValueError: an unsafe name.
        UserInputError: the run's folder cannot be written (see :func:`check_run_folder`).
    """

    def __init__(self, reports: Path, name: str) -> None:
        self.folder = run_dir(reports, name)
        check_run_folder(self.folder)
        self._archived = False
        self.history: Path | None = None

    def save(self, result: RunResult) -> Path:
        """Write ``result.json``, ``summary.csv`` and ``timeseries.csv``; returns the folder.

        Raises:
            RunFailedError: a file cannot be written; the message gives the path of a fallback
                copy of ``result.json`` in the temporary folder (:func:`write_failed`).
        """
        text = result.model_dump_json(indent=2) + "\n"
        try:
            if not self._archived:
                self.history = archive_previous(self.folder)
                self._archived = True
            write_atomic(self.folder / "result.json", text)
            write_atomic(self.folder / "summary.csv", frame_csv(summary_frame(result)))
            write_atomic(self.folder / "timeseries.csv", frame_csv(timeseries_frame(result)))
        except OSError as exc:
            what = f"the result files in {self.folder}"
            raise RunFailedError(write_failed(what, exc, text, result.name)) from None
        return self.folder
