"""``harborbench rollback-check``: every rollback path of the plan, then the gates; for CI."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from harborbench.cli.app import app
from harborbench.errors import (
    GateFailed,
    InconclusiveError,
    Interrupted,
    RunFailedError,
    UserInputError,
)

if TYPE_CHECKING:
    from harborbench.rollback import RollbackReport
    from harborbench.rollback.smoke import ClientFactory

#: The factory that builds each path's client (``None``: the real client); a test replaces it
#: with a broken double. Imported lazily: the rollback package pulls in scipy.
CLIENT_FACTORY: ClientFactory | None = None

ROLLBACK_HELP = "\n\n".join(
    [
        ("Check that every rollback path of the plan works and that the gates hold."),
        (
            "Starts the built-in mock server, then for each of the nine rollback paths (full "
            "optimized config; concurrency_optimization.enabled false; "
            "HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION=true; each of the three component flags "
            "false alone; force_traditional_mode; performance_mode basic; the plan's minimal "
            "config) builds a fresh client and checks: optimization_status() is exactly as "
            "expected for that path, every request of a short closed-loop load succeeds with the "
            "same content as the reference path (streamed too), the server never sees more "
            "requests in flight than max_concurrent_requests, and nothing (task, thread, socket) "
            "is left after closing."
        ),
        (
            "Then the gates: the traditional baseline and the optimized mode are measured in "
            "interleaved rounds (closed loop, 48 workers); the plan's absolute gates are judged "
            "on the optimized mode (>= 1000 ops/s, p95 < 200 ms, errors < 1%, success >= 95%, "
            "memory growth < 20%; the memory slope gate needs 5-minute runs and is off unless a "
            "--gates file sets it), and the relative gates with bootstrap intervals "
            "(optimized/traditional throughput >= 0.8, CPU efficiency gain >= +30%): a gate fails"
            ' only when its whole interval is on the bad side, so noise gives "inconclusive", not'
            " a false failure. Thresholds: the defaults, then --gates FILE (the keys of a "
            "profile's gates section), then the flags."
        ),
        (
            "Wall time on a 2-core machine: about 50 s by default (9 paths x ~1.7 s, then 3 "
            "rounds of 2 x 5 s), about 30 s with --quick, about 17 s with --skip-gates. While a "
            "relative gate is inconclusive, rounds are added (up to twice as many), as compare "
            "--run does. Ctrl-C or SIGTERM stops early: the JSON and JUnit reports keep what was "
            "checked, marked interrupted (exit 130)."
        ),
        ("Examples:"),
        "harborbench rollback-check",
        "harborbench rollback-check --quick --junit rollback.xml",
        "harborbench rollback-check --skip-gates --json > rollback.json",
        "harborbench rollback-check --gates ci-gates.yaml --output reports/rollback.json",
        "harborbench rollback-check --throughput-min 800 --cpu-gain-min-pct 20",
        (
            "Exit codes: 0 every path and gate passed, 1 a path or gate failed (the message names"
            " it), 2 bad option or gates file, 3 a gate inconclusive, 4 the check could not run "
            "(for example the mock server would not start), 130 interrupted."
        ),
    ]
)


def parse_fraction(option: str, text: str) -> float:
    """Read a fraction written as ``0.05`` or as a percentage ``5%``, as profiles accept it.

    Args:
        option: the flag, for the message.
        text: the value as typed.

    Returns:
        The fraction, in [0, 1] (``"5%"`` gives 0.05).

    Raises:
        UserInputError: not a number or a percentage, or outside 0-1 (0%-100%).
    """
    raw = text.strip()
    percent = raw.endswith("%")
    try:
        value = float(raw[:-1] if percent else raw)
    except ValueError:
        value = math.nan
    if math.isfinite(value) and percent:
        value /= 100.0
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise UserInputError(
            f"{option} {text!r} is not a fraction between 0 and 1 or a percentage between "
            "0% and 100%.",
            hint=f"Write for example {option} 0.05 or {option} 5%.",
        )
    return value


def check_output_file(option: str, path: Path, *, example: str) -> None:
    """Make sure a report can be written at ``path``, before the check runs.

    The folder holding ``path`` is created if missing (as writing would), and a temporary file
    is written and removed there.

    Args:
        option: the flag, for the message.
        path: the file to be written.
        example: a file name for the hint when ``path`` is a folder.

    Raises:
        UserInputError: ``path`` is a folder, a parent is a file, or the folder cannot be
            created or written (exit 2).
    """
    if path.is_dir():
        raise UserInputError(
            f"{option} {path} is a folder, not a file.",
            hint=f"Give a file path, for example {option} {path / example}.",
        )
    folder = path.parent
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise UserInputError(
            f"{option} {path}: {blocker} is a file, not a folder.",
            hint=f"Choose another path for {option}.",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise UserInputError(
            f"{option} {path}: cannot write in {folder} ({exc.strerror or exc}).",
            hint="Choose a folder you can write to.",
        ) from None


@app.command("rollback-check", help=ROLLBACK_HELP)
def rollback_command(
    quick: bool = typer.Option(False, "--quick", help="Shorter loads (about 30 s in all)."),
    skip_gates: bool = typer.Option(False, "--skip-gates", help="Check only the rollback paths."),
    gates_file: Path | None = typer.Option(
        None, "--gates", metavar="FILE", help="YAML file with the keys of a profile's gates."
    ),
    throughput_min: float | None = typer.Option(
        None, "--throughput-min", metavar="OPS", help="Minimum optimized ops/s (plan: 1000)."
    ),
    p95_max: str | None = typer.Option(
        None, "--p95-max", metavar="DURATION", help="Maximum p95 latency, e.g. 200ms."
    ),
    error_rate_max: str | None = typer.Option(
        None,
        "--error-rate-max",
        metavar="FRACTION",
        help="Maximum error rate, a fraction or a percentage, e.g. 0.01 or 1%.",
    ),
    throughput_ratio_min: float | None = typer.Option(
        None,
        "--throughput-ratio-min",
        metavar="RATIO",
        help="Minimum optimized / traditional throughput (default 0.8).",
    ),
    cpu_gain_min_pct: float | None = typer.Option(
        None,
        "--cpu-gain-min-pct",
        metavar="PCT",
        help="Minimum CPU efficiency gain over traditional, percent (plan: 30).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON report on stdout."),
    output: Path | None = typer.Option(
        None, "--output", "-o", metavar="FILE", help="Write the JSON report to FILE."
    ),
    junit: Path | None = typer.Option(
        None, "--junit", metavar="FILE", help="Write a JUnit XML file (one case per row)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
    workers: str | None = typer.Option(None, "--workers", hidden=True),
    ray: str | None = typer.Option(None, "--ray", hidden=True),
) -> None:
    import asyncio

    from harborbench.cli.run import refuse_scaleout

    refuse_scaleout("rollback-check", workers, ray)
    from harborbench.report.console import stderr, stdout
    from harborbench.report.files import write_failed
    from harborbench.report.rollback_table import (
        junit_xml,
        render_rollback,
        report_json,
        write_junit,
        write_report_json,
    )
    from harborbench.rollback import arollback_check, options_for
    from harborbench.rollback.gates import gate_settings, load_gates_file
    from harborbench.rollback.smoke import default_factory
    from harborbench.units import parse_duration

    p95_s = None
    if p95_max is not None:
        try:
            p95_s = parse_duration(p95_max)
        except ValueError as exc:
            raise UserInputError(f"--p95-max: {exc}.") from None
    error_rate = (
        None if error_rate_max is None else parse_fraction("--error-rate-max", error_rate_max)
    )
    if throughput_min is not None and throughput_min < 0:
        raise UserInputError(f"--throughput-min must be >= 0, got {throughput_min:g}.")
    if throughput_ratio_min is not None and throughput_ratio_min <= 0:
        raise UserInputError(f"--throughput-ratio-min must be > 0, got {throughput_ratio_min:g}.")
    file_gates = load_gates_file(gates_file) if gates_file is not None else None
    settings = gate_settings(
        file_gates,
        throughput_min=throughput_min,
        p95_max=p95_s,
        error_rate_max=error_rate,
        throughput_ratio_min=throughput_ratio_min,
        cpu_efficiency_gain_min_pct=cpu_gain_min_pct,
    )
    options = options_for(quick=quick, skip_gates=skip_gates, gates=settings)
    # Before anything runs: a bad output path must not cost the whole check.
    if output is not None:
        check_output_file("--output", output, example="rollback.json")
    if junit is not None:
        check_output_file("--junit", junit, example="rollback.xml")

    def progress(line: str) -> None:
        stderr.print(f"[dim]{line}[/]", highlight=False)

    from harborbench.cli.signals import stop_on_signals

    async def main() -> RollbackReport:
        with stop_on_signals("Stopping: keeping what was checked so far…") as stop:
            return await arollback_check(
                options,
                factory=CLIENT_FACTORY or default_factory,
                progress=None if quiet or as_json else progress,
                stop=stop,
            )

    report = asyncio.run(main())
    for path, write, text, suffix in (
        (output, write_report_json, report_json, ".json"),
        (junit, write_junit, junit_xml, ".xml"),
    ):
        if path is not None:
            try:
                write(report, path)
            except OSError as exc:
                message = write_failed(str(path), exc, text(report), "rollback-check", suffix)
                raise RunFailedError(message) from None
    if as_json:
        typer.echo(report_json(report), nl=False)
    else:
        render_rollback(report, stdout)
    if report.interrupted:
        written = [str(p) for p in (output, junit) if p is not None]
        where = f" (written, marked interrupted: {', '.join(written)})" if written else ""
        raise Interrupted(f"Interrupted; the report holds what was checked so far{where}.")
    failed = [r for r in report.rows if r.verdict == "fail"]
    if failed:
        lines = "; ".join(f"{r.name}: {r.problem}" for r in failed)
        raise GateFailed(f"{len(failed)} check(s) failed: {lines}")
    unsure = [r for r in report.rows if r.verdict == "inconclusive"]
    if unsure:
        raise InconclusiveError(
            f"{len(unsure)} gate(s) inconclusive: "
            + "; ".join(f"{r.name}: {r.problem}" for r in unsure),
            hint="Run without --quick, or on a quieter machine, for narrower intervals.",
        )
