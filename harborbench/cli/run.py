"""``harborbench run PROFILE``: run a workload profile and write its reports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import typer

from harborbench.cli.app import app
from harborbench.cli.signals import stop_on_signals
from harborbench.errors import GateFailed, InconclusiveError, Interrupted, UserInputError

RUN_HELP = """Run a workload profile against the client and write reports/<name>/.

Starts the built-in mock server in its own process (unless the profile names a base_url),
runs warmup then the measurement window for each trial, prints a summary, and writes
result.json, summary.csv, timeseries.csv and report.html (charts, offline; --no-html to skip).
Ctrl-C (or SIGTERM) stops early and keeps what was measured.

Examples:

  harborbench run profiles/burst.yaml

  harborbench run profiles/optimized.yaml --set duration=10s --set load.rate=800

  harborbench run profiles/baseline.yaml --name baseline-$(git rev-parse --short HEAD)

  harborbench run profiles/steady.yaml --json > result.json

  harborbench run profiles/steady.yaml --loop uvloop   # needs: pip install 'harborbench[uvloop]'

Exit codes: 0 all gates pass, 1 a gate failed, 2 bad profile or option, 3 a gate
inconclusive, 4 the run failed, 130 interrupted.
"""


@app.command("run", help=RUN_HELP)
def run_command(
    profile_path: Path = typer.Argument(..., metavar="PROFILE", help="Profile YAML file."),
    name: str | None = typer.Option(
        None, "--name", "-n", help="Run name (default: the profile's name)."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", "-s", metavar="KEY=VALUE", help="Override a profile field, e.g. duration=10s."
    ),
    reports: Path = typer.Option(Path("reports"), "--reports-dir", help="Where reports go."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress and no summary."),
    as_json: bool = typer.Option(False, "--json", help="Print result.json on stdout."),
    no_html: bool = typer.Option(False, "--no-html", help="Do not write report.html."),
    loop: str = typer.Option(
        "asyncio",
        "--loop",
        metavar="asyncio|uvloop",
        help="Event loop of the measuring process; uvloop needs pip install 'harborbench[uvloop]'.",
    ),
) -> None:
    from harborbench.engine.runner import arun
    from harborbench.profile import load_profile
    from harborbench.report.console import stderr, stdout
    from harborbench.report.files import ResultWriter
    from harborbench.report.progress import ProgressDisplay
    from harborbench.report.summary import render_summary

    loop_factory = _loop_factory(loop)
    profile = load_profile(profile_path, overrides)
    run_name = profile.name if name is None else name
    try:
        writer = ResultWriter(reports, run_name)
    except ValueError as exc:
        raise UserInputError(f"--name: {exc}.") from None

    async def main() -> object:
        with (
            stop_on_signals("Stopping: finishing the current trial's bookkeeping…") as stop,
            ProgressDisplay(stderr, quiet=quiet or as_json) as display,
        ):
            return await arun(
                profile, name=run_name, progress=display, on_trial=writer.save, stop=stop
            )

    from harborbench.result import RunResult

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(main())
    assert isinstance(result, RunResult)
    folder = writer.save(result)
    if not no_html:
        from harborbench.report.html import write_run_html

        write_run_html(result, folder)
    if as_json:
        typer.echo((folder / "result.json").read_text(encoding="utf-8"), nl=False)
    elif not quiet:
        render_summary(result, stdout, folder=str(folder), html=not no_html)
    if result.interrupted:
        raise Interrupted(f"Interrupted; the partial result is in {folder}/.")
    failed = [g.name for g in result.gates if g.verdict == "fail"]
    if failed:
        raise GateFailed(f"gate(s) failed: {', '.join(failed)} (see {folder}/result.json).")
    unsure = [g.name for g in result.gates if g.verdict == "inconclusive"]
    if unsure:
        raise InconclusiveError(
            f"gate(s) inconclusive: {', '.join(unsure)}.",
            hint="Run longer (--set duration=...) to gather enough samples.",
        )


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event-loop factory for ``--loop`` (None: asyncio's default loop).

    Raises:
        UserInputError: an unknown loop, or uvloop asked for but not installed (exit 2).
    """
    if name == "asyncio":
        return None
    if name != "uvloop":
        raise UserInputError(f"--loop {name!r}: unknown event loop; use asyncio or uvloop.")
    try:
        import uvloop
    except ImportError:
        raise UserInputError(
            "--loop uvloop: uvloop is not installed; "
            "install it with: pip install 'harborbench[uvloop]' (or drop --loop)."
        ) from None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
