"""``harborbench run PROFILE``: run a workload profile and write its reports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from harborbench.cli.app import app
from harborbench.cli.signals import stop_on_signals
from harborbench.errors import (
    GateFailed,
    InconclusiveError,
    Interrupted,
    RunFailedError,
    UserInputError,
)

if TYPE_CHECKING:
    from harborbench.profile import Profile
    from harborbench.scaleout.backend import Backend

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

  harborbench run profiles/steady.yaml --workers auto    # one shard process per core

  harborbench run profiles/steady.yaml --ray local --workers 2   # needs the ray extra

  harborbench run profiles/steady.yaml --loop uvloop   # needs the uvloop extra

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
    workers: str | None = typer.Option(
        None, "--workers", "-w", metavar="N|auto",
        help="Split the load into N shards (auto: one per usable core), merged into one result.",
    ),
    ray: str | None = typer.Option(
        None, "--ray", metavar="local|auto|HOST:PORT",
        help="Run the shards as Ray actors (pip install 'harborbench\\[ray]').",
    ),
    placement: str | None = typer.Option(
        None, "--placement", metavar="spread|strict-spread",
        help="With --ray: spread shards over nodes (strict-spread: one shard per node).",
    ),
    loop: str = typer.Option(
        "asyncio", "--loop", metavar="asyncio|uvloop",
        help="Event loop of a one-process run; uvloop needs pip install 'harborbench\\[uvloop]'.",
    ),
) -> None:  # fmt: skip
    from harborbench.engine.runner import arun
    from harborbench.profile import load_profile
    from harborbench.report.console import stderr, stdout
    from harborbench.report.files import ResultWriter
    from harborbench.report.progress import ProgressDisplay
    from harborbench.report.summary import render_summary
    from harborbench.result import RunResult

    loop_factory = _loop_factory(loop)
    profile = load_profile(profile_path, overrides)
    run_name = profile.name if name is None else name
    # Every option is checked before the writer makes reports/<name>/ (a refused --workers 0
    # left an empty folder behind).
    sharded = scaleout_plan(profile, workers, ray, placement)
    if sharded is not None and loop_factory is not None:
        raise UserInputError(
            f"--loop {loop}: applies to a one-process run; shards run asyncio's loop.",
            hint="Drop --loop, or --workers/--ray.",
        )
    try:
        writer = ResultWriter(reports, run_name)
    except ValueError as exc:
        raise UserInputError(f"--name: {exc}.") from None

    saved: list[RunResult] = []  # the last result written (shown if the run then fails)

    def save(result: RunResult) -> None:
        saved[:] = [result]
        writer.save(result)

    async def main() -> object:
        with (
            stop_on_signals("Stopping: finishing the current trial's bookkeeping…") as stop,
            ProgressDisplay(stderr, quiet=quiet or as_json) as display,
        ):
            if sharded is not None:
                from harborbench.scaleout.coordinator import arun_sharded

                backend, n = sharded
                return await arun_sharded(
                    profile, backend(), n, name=run_name, progress=display,
                    on_trial=save, stop=stop,
                )  # fmt: skip
            return await arun(profile, name=run_name, progress=display, on_trial=save, stop=stop)

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        try:
            result = runner.run(main())
        except RunFailedError as exc:  # nothing succeeded: show what was written, then why
            if not saved:
                raise
            if as_json:
                written = writer.folder / "result.json"
                typer.echo(written.read_text(encoding="utf-8"), nl=False)
            elif not quiet:
                render_summary(saved[-1], stdout, folder=str(writer.folder), html=False)
            raise type(exc)(
                f"{exc.message} (result written: {writer.folder / 'result.json'})", hint=exc.hint
            ) from None
    assert isinstance(result, RunResult)
    folder = writer.save(result)
    # A stopped run ends at once: its report.html (charts, seconds of plotting) is left to
    # `harborbench report NAME`.
    html = not no_html and not result.interrupted
    if html:
        from harborbench.report.html import write_run_html

        write_run_html(result, folder)
    if as_json:
        typer.echo((folder / "result.json").read_text(encoding="utf-8"), nl=False)
    elif not quiet:
        render_summary(result, stdout, folder=str(folder), html=html)
    if result.lost_shards:
        lost = "; ".join(f"shard {s.index}: {s.reason}" for s in result.lost_shards if s.reason)
        raise RunFailedError(
            f"incomplete run: {lost}. The survivors' figures, labelled as such, are in {folder}/."
        )
    if result.interrupted:
        raise Interrupted(
            f"Interrupted; the partial result is in {folder}/.",
            hint=None if no_html else f"Write its report.html with: harborbench report {folder}",
        )
    failed = [g.name for g in result.gates if g.verdict == "fail"]
    if failed:
        raise GateFailed(
            f"gate(s) failed: {', '.join(failed)} (see {folder}/result.json).",
            hint=gate_failure_hint(failed),
        )
    unsure = [g.name for g in result.gates if g.verdict == "inconclusive"]
    if unsure:
        from harborbench.gates import inconclusive_hint

        raise InconclusiveError(
            f"gate(s) inconclusive: {', '.join(unsure)}.",
            hint=inconclusive_hint(result.gates),
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


#: Gates whose figure depends on the speed of the machine that measures, not only on the client.
MACHINE_GATES = ("throughput", "p95 latency")


def gate_failure_hint(failed: list[str]) -> str:
    """What a failed gate means and how to read it, for the line after ``gate(s) failed``.

    Args:
        failed: the names of the failed gates (``GateResult.name``).

    Returns:
        One or two sentences: a failed gate is the finding, where to read it, and for the gates
        of :data:`MACHINE_GATES` the ``--set`` that relaxes them on a slower machine.
    """
    from harborbench.gates import GATE_KEYS

    text = (
        "A failed gate is a finding about the client on this machine, not an error of the "
        "run: the summary's gates table shows each threshold beside the figure measured."
    )
    machine = [g for g in failed if g in MACHINE_GATES]
    if machine:
        sets = " ".join(f"--set gates.{GATE_KEYS[g]}=VALUE" for g in machine)
        verb, them = ("depends", "it") if len(machine) == 1 else ("depend", "them")
        text += (
            f" {' and '.join(machine).capitalize()} {verb} on this machine's speed (the shipped "
            f"profiles hold the plan's gates); on a slower machine, relax {them} with {sets}."
        )
    if "dropped arrivals" in failed:
        text += (
            " Dropped arrivals: the client did not keep up with the offered rate; the "
            "measurement health names the setting that held it back."
        )
    return text


def scaleout_plan(
    profile: Profile, workers: str | None, ray: str | None, placement: str | None
) -> tuple[Callable[[], Backend], int] | None:
    """How to split the run from ``--workers``, ``--ray`` and ``--placement``; ``None`` for
    today's one-process path (no option, or ``--workers 1`` without ``--ray``).

    Raises:
        UserInputError: a bad combination or value, or Ray not installed (exit 2).
    """
    if workers is None and ray is None and placement is None:
        return None
    from harborbench.scaleout.coordinator import check_split, resolve_workers

    n = resolve_workers(workers) if workers is not None else None
    if ray is None:
        if placement is not None:
            raise UserInputError("--placement needs --ray.", hint="Add --ray local|auto|HOST:PORT.")
        if n is None or n == 1:
            return None
        check_split(profile, n)
        usable = resolve_workers("auto")
        if n > usable:
            raise UserInputError(
                f"--workers {n}: this host has {usable} usable core(s); a shard is one event "
                "loop on one core, so more shards than cores only compete for them.",
                hint=f"Use --workers auto ({usable}), or --ray to spread shards over hosts.",
            )
        from harborbench.scaleout.local import LocalBackend

        return LocalBackend, n
    from harborbench.scaleout.ray_backend import RayBackend, check_ray_options

    n = n if n is not None else resolve_workers("auto")
    check_split(profile, n)
    check_ray_options(ray, placement)
    return (lambda: RayBackend(ray, placement, n)), n


def refuse_scaleout(command: str, workers: str | None, ray: str | None) -> None:
    """``tune`` and ``rollback-check`` measure one client in one process: refuse shards.

    Raises:
        UserInputError: ``--workers`` or ``--ray`` was given (exit 2).
    """
    if workers is not None or ray is not None:
        option = "--workers" if workers is not None else "--ray"
        raise UserInputError(
            f"{option}: {command} measures one client in one process and does not split into "
            "shards.",
            hint="Drop the option, or use `harborbench run PROFILE --workers N`.",
        )
