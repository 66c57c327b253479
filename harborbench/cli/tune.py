"""``harborbench tune PROFILE``: sweep client settings and load, recommend a client config."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from harborbench.cli.app import app
from harborbench.cli.signals import stop_on_signals
from harborbench.errors import GateFailed, InconclusiveError, Interrupted, UserInputError

if TYPE_CHECKING:
    from harborbench.tune.result import TuneResult

TUNE_HELP = """Sweep the client's settings for a profile's workload; recommend a config.

Within the time budget: closed-loop concurrency N = 1, 2, 4, ...
(max_concurrent_requests = N) until throughput stops rising or a latency
or error gate breaks; then connection_pool_size, and the request
processor's workers and batching, around the best point. Each point is a
short trial with warmup against one target.

Fits the Universal Scalability Law to the load curve, chooses the highest
throughput (or with --objective goodput the highest goodput: requests per
second meeting the profile's slo) that meets every gate of the profile
(ties within 2% go to the smaller settings), confirms it with a longer trial, and writes
reports/<name>/: recommended_config.yaml (client keys only: load it
with create_fast_client(config, base_url=URL)), sweep.csv, result.json
and report.html (chart, offline; --no-html to skip).

Examples:

  harborbench tune profiles/optimized.yaml --budget 1m

  harborbench tune profiles/baseline.yaml --budget 2m --name base-tuned

  harborbench tune profiles/steady.yaml --set gates.p95_max=100ms --json

  harborbench tune profiles/goodput.yaml --objective goodput --budget 1m

Exit codes: 0 recommended and confirmed, 1 no point meets the gates (the
closest is shown) or the confirmation misses one, 2 bad profile or
option, 3 confirmation inconclusive, 4 the run failed, 130 interrupted.
"""


@app.command("tune", help=TUNE_HELP)
def tune_command(
    profile_path: Path = typer.Argument(..., metavar="PROFILE", help="Profile YAML file."),
    budget: str = typer.Option(
        "2m", "--budget", "-b", help="Wall-clock time for the whole sweep, e.g. 90s, 2m."
    ),
    name: str | None = typer.Option(
        None, "--name", "-n", help="Run name (default: <profile name>-tune)."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", "-s", metavar="KEY=VALUE", help="Override a profile field, e.g. seed=2."
    ),
    reports: Path = typer.Option(Path("reports"), "--reports-dir", help="Where reports go."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress and no table."),
    as_json: bool = typer.Option(False, "--json", help="Print the sweep's result.json."),
    no_html: bool = typer.Option(False, "--no-html", help="Do not write report.html."),
    workers: str | None = typer.Option(None, "--workers", hidden=True),
    ray: str | None = typer.Option(None, "--ray", hidden=True),
    objective: str = typer.Option(
        "throughput",
        "--objective",
        help="What to maximize: throughput, or goodput (needs an slo section in the profile).",
    ),
) -> None:
    from harborbench.cli.run import refuse_scaleout

    refuse_scaleout("tune", workers, ray)
    from harborbench.profile import load_profile
    from harborbench.report.console import stderr, stdout
    from harborbench.report.tune_files import TuneWriter
    from harborbench.report.tune_table import render_tune
    from harborbench.tune import atune
    from harborbench.tune.result import SweepPoint
    from harborbench.tune.sweep import check_budget
    from harborbench.units import parse_duration

    try:
        budget_s = parse_duration(budget)
    except ValueError as exc:
        raise UserInputError(
            f"--budget {budget!r}: {exc}.", hint="For example --budget 2m."
        ) from None
    check_budget(budget_s, shown=budget)
    if objective not in ("throughput", "goodput"):
        raise UserInputError(
            f"--objective {objective!r} is not known.", hint="Use throughput or goodput."
        )
    profile = load_profile(profile_path, overrides)
    run_name = name or f"{profile.name}-tune"
    try:
        writer = TuneWriter(reports, run_name, source=str(profile_path))
    except ValueError as exc:
        raise UserInputError(f"--name: {exc}.") from None

    def on_point(point: SweepPoint, so_far: TuneResult) -> None:
        writer.save(so_far)
        if not (quiet or as_json):
            p95 = point.service_time.p95_s
            gates = "pass" if point.meets_gates else point.gates_text()
            good = "" if point.goodput_ops is None else f" (goodput {point.goodput_ops:,.1f})"
            stderr.print(
                f"[dim]point {point.index:>2} {point.phase:<11}[/] {point.knobs().label():<40} "
                f"{point.throughput_ops:>9,.1f} ops/s{good}  p95 "
                f"{'–' if p95 is None else f'{p95 * 1e3:.1f} ms':>9}  {gates}",
                markup=True,
                highlight=False,
            )

    async def main() -> TuneResult:
        with stop_on_signals("Stopping: ending the current point and saving the sweep…") as stop:
            if not (quiet or as_json):
                stderr.print(f"[bold]Tuning {profile.name}[/] within {budget}…")
            return await atune(
                profile, budget_s=budget_s, name=run_name, on_point=on_point, stop=stop,
                objective="goodput" if objective == "goodput" else "throughput",
            )  # fmt: skip

    result = asyncio.run(main())
    folder = writer.save(result)
    if not no_html:
        from harborbench.report.tune_html import write_tune_html

        write_tune_html(result, folder)
    if as_json:
        typer.echo((folder / "result.json").read_text(encoding="utf-8"), nl=False)
    elif not quiet:
        render_tune(result, stdout, folder=str(folder), html=not no_html)
    _exit(result, folder)


def _exit(result: object, folder: Path) -> None:
    """Raise the error that carries the documented exit code of a finished sweep."""
    from harborbench.tune.result import TuneResult

    assert isinstance(result, TuneResult)
    if result.interrupted:
        raise Interrupted(f"Interrupted; the partial sweep is in {folder}/.")
    if result.only_saturated_met():
        raise InconclusiveError(
            "nothing recommended: every point of the sweep that met the gates was measured "
            f"with the load generator saturated (see {folder}/sweep.csv).",
            hint="Run tune again with nothing else on this machine, or on a larger one: a "
            "saturated generator measures the harness's limits, not the client's.",
        )
    if result.chosen is None:
        closest = "" if result.closest is None else f"; closest: point {result.closest}"
        raise GateFailed(
            f"no point of the sweep met every gate of the profile{closest} "
            f"(see {folder}/sweep.csv).",
            hint=no_point_hint(result),
        )
    from harborbench.gates import inconclusive_hint

    conf = result.confirmation
    if conf is None:
        return
    failed = conf.point.missed_gates
    if failed:
        raise GateFailed(
            f"the confirmation run at the recommended settings failed: {', '.join(failed)} "
            f"(see {folder}/)."
        )
    if conf.point.unsure_gates:
        raise InconclusiveError(
            f"the confirmation run is inconclusive for: {', '.join(conf.point.unsure_gates)}.",
            hint=inconclusive_hint(
                conf.point.gates, otherwise="Give a larger --budget for a longer confirmation."
            ),
        )


def no_point_hint(result: TuneResult) -> str:
    """What to do when no point met the gates: the gates the closest point missed (with the
    ``--set`` that relaxes each) and the budget actually given and used."""
    from harborbench.gates import GATE_KEYS
    from harborbench.units import format_duration

    budget = (
        f"a larger --budget than the {format_duration(result.budget_s)} given ("
        f"{result.elapsed_s:.0f} s used, trials of {format_duration(result.trial_window_s)})"
    )
    point = None if result.closest is None else result.points[result.closest]
    if point is None or not (point.missed_gates or point.unsure_gates):
        return f"Relax a gate of the profile, or give {budget}."
    parts = []
    if point.missed_gates:
        keys = " or ".join(f"--set gates.{GATE_KEYS.get(g, g)}=..." for g in point.missed_gates)
        parts.append(f"it missed {', '.join(point.missed_gates)}: relax it ({keys})")
    if point.unsure_gates:
        parts.append(f"{', '.join(point.unsure_gates)} could not be judged on its short trial")
    return f"Closest point {point.index}: {'; '.join(parts)}; or give {budget}."
