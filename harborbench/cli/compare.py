"""``harborbench compare A B``: two runs side by side, with the noise taken into account."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from harborbench.cli.app import app
from harborbench.errors import GateFailed, InconclusiveError, ResultFileError, UserInputError

if TYPE_CHECKING:
    from harborbench.compare import Comparison
    from harborbench.result import RunResult

COMPARE_HELP = """Compare run B with baseline run A: changes, confidence intervals, verdicts.

A and B are run names (reports/<name>/result.json) or paths to result files. Every metric
gets B/A, a bootstrap confidence interval of that ratio (from the per-second intervals and
the trials of each run, warmup excluded), the smallest change the data could detect, and a
verdict: better, worse, no significant difference, or inconclusive. Writes
reports/compare-<A>-<B>/comparison.csv, comparison.json and report.html (charts, offline;
--no-html to skip).

--fail-on METRIC:CHANGE fails (exit 1) only when the whole interval lies beyond the threshold,
and is inconclusive (exit 3) when the interval straddles it. Metrics: throughput, attempted,
error_rate, p50, p95, p99, p999, cpu_efficiency, ttft_p50, ttft_p95, itl_p50, itl_p95.

--run A.yaml B.yaml --rounds N measures instead of reading files: one trial of A, then one of
B, N times, against one target with the same seed, so that machine drift cancels out; the two
runs are saved under their profile names (reports/<name>/: result.json, the CSV files and
report.html), then compared.

Examples:

  harborbench compare baseline optimized

  harborbench compare baseline optimized --fail-on throughput:-5% --fail-on p99:+10%

  harborbench compare reports/old/result.json reports/new/result.json --strict --json

  harborbench compare --run profiles/baseline.yaml profiles/optimized.yaml --rounds 3

Exit codes: 0 done (all gates pass), 1 a --fail-on gate failed, 2 bad input (missing or
too new result, bad option), 3 a gate inconclusive, or --strict with runs that are not
comparable, 4 a --run measurement failed, 130 interrupted.
"""


def resolve_result(arg: str, reports: Path) -> RunResult:
    """Load a result given as a run name (``reports/<name>/result.json``) or a file path.

    Args:
        arg: a run name or a path to a ``result.json``.
        reports: the reports folder.

    Returns:
        The result.

    Raises:
        ResultFileError: no such run or file, unreadable, a newer schema, the result of a
            tune sweep (``"kind": "tune"``), a comparison or a rollback-check report instead of
            a run.
    """
    from harborbench.result import load_result

    return load_result(resolve_result_path(arg, reports), command="compare")


def resolve_result_path(arg: str, reports: Path) -> Path:
    """The result file that a run name or a file path names, checked to be a run's.

    Args:
        arg: a run name or a path to a ``result.json``.
        reports: the reports folder.

    Returns:
        The path of the result file (for a path argument, not checked for existence:
        :func:`harborbench.result.load_result` reports a missing file).

    Raises:
        ResultFileError: no such run, not a valid run name, or a comparison folder (the kind of
            a file is checked when it is loaded).
    """
    from harborbench.cli.inputs import refuse_comparison_folder
    from harborbench.report.files import run_dir

    path = Path(arg)
    if path.is_file() or arg.endswith(".json") or "/" in arg:
        refuse_comparison_folder(path / "result.json" if path.is_dir() else path, "compare")
        return path
    try:
        folder = run_dir(reports, arg)
    except ValueError as exc:
        raise ResultFileError(f"{arg!r} is neither a result file nor a run name: {exc}.") from None
    refuse_comparison_folder(folder / "result.json", "compare")
    if not (folder / "result.json").exists():
        raise ResultFileError(
            f"no run named {arg!r}: {folder / 'result.json'} does not exist.",
            hint="Run `harborbench run PROFILE` first (or give the path to a result.json).",
        )
    return folder / "result.json"


def write_comparison(comparison: Comparison, reports: Path) -> Path:
    """Write ``comparison.json`` and ``comparison.csv`` atomically under ``reports/``.

    Args:
        comparison: the comparison.
        reports: the reports folder.

    Returns:
        The folder ``reports/compare-<A>-<B>/``.
    """
    from harborbench.compare import tidy_rows
    from harborbench.report.files import csv_text, run_dir, write_atomic

    folder = run_dir(reports, f"compare-{comparison.a.name}-{comparison.b.name}")
    write_atomic(folder / "comparison.json", comparison.model_dump_json(indent=2) + "\n")
    write_atomic(folder / "comparison.csv", csv_text(tidy_rows(comparison)))
    return folder


def measure_interleaved(
    profile_paths: tuple[Path, Path], rounds: int, reports: Path
) -> tuple[RunResult, RunResult]:
    """Run two profiles interleaved (A B A B ...) against one target and save both runs.

    Args:
        profile_paths: the two profile files.
        rounds: number of rounds; each runs one trial of A then one of B.
        reports: the reports folder (runs saved under the profiles' names).

    Returns:
        The two results, each with ``rounds`` trials.

    Raises:
        UserInputError: the profiles name different targets or the same run name.
    """
    import asyncio

    from harborbench.engine.runner import build_result, open_target, plan_from_profile, run_trial
    from harborbench.environment import collect_environment
    from harborbench.profile import load_profile
    from harborbench.report.console import print_warning, stderr
    from harborbench.report.files import ResultWriter
    from harborbench.result import TrialResult

    pa, pb = (load_profile(p) for p in profile_paths)
    if pa.target != pb.target:
        raise UserInputError(
            f"--run: {profile_paths[0]} and {profile_paths[1]} name different targets; "
            "--run measures both against one target.",
            hint="Make their target sections identical, or run them separately and compare.",
        )
    if pa.name == pb.name:
        raise UserInputError(
            f"--run: both profiles are named {pa.name!r}; their runs would overwrite each other.",
            hint="Give one of them another name.",
        )
    if pa.seed != pb.seed:
        print_warning(f"--run: using seed {pa.seed} of {profile_paths[0]} for both profiles.")
        pb = pb.model_copy(update={"seed": pa.seed})
    plans = (plan_from_profile(pa), plan_from_profile(pb))
    writers = (ResultWriter(reports, pa.name), ResultWriter(reports, pb.name))
    environment = collect_environment()
    trials: tuple[list[TrialResult], list[TrialResult]] = ([], [])

    async def main() -> None:
        with open_target(pa) as (base_url, api_key, server):
            for r in range(rounds):
                for side, profile in enumerate((pa, pb)):
                    stderr.print(f"round {r + 1}/{rounds}: {profile.name}")
                    trial = await run_trial(
                        profile, plans[side], base_url, api_key, index=r, server=server
                    )
                    trials[side].append(trial)
                    writers[side].save(
                        build_result(profile, profile.name, trials[side], environment,
                                     interrupted=False)
                    )  # fmt: skip

    asyncio.run(main())
    return (
        build_result(pa, pa.name, trials[0], environment, interrupted=False),
        build_result(pb, pb.name, trials[1], environment, interrupted=False),
    )


@app.command("compare", help=COMPARE_HELP)
def compare_command(
    a: str | None = typer.Argument(None, metavar="A", help="Baseline: run name or result file."),
    b: str | None = typer.Argument(None, metavar="B", help="Candidate: run name or result file."),
    strict: bool = typer.Option(False, "--strict", help="Exit 3 when A and B are not comparable."),
    fail_on: list[str] = typer.Option(
        [], "--fail-on", metavar="METRIC:CHANGE", help="Gate, e.g. throughput:-5% or p99:+10%."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print comparison.json on stdout."),
    reports: Path = typer.Option(Path("reports"), "--reports-dir", help="Where reports are."),
    run_profiles: tuple[Path, Path] | None = typer.Option(
        None, "--run", metavar="A.yaml B.yaml", help="Measure the two profiles interleaved."
    ),
    rounds: int = typer.Option(3, "--rounds", min=1, help="Rounds of --run (A then B each)."),
    confidence: float = typer.Option(
        0.95, "--confidence", min=0.5, max=0.999, help="Level of the intervals."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    no_html: bool = typer.Option(False, "--no-html", help="Do not write report.html."),
) -> None:
    from harborbench.compare import compare_results, parse_fail_on
    from harborbench.report.compare_table import render_comparison
    from harborbench.report.console import print_warning, stdout
    from harborbench.report.files import check_writable_dir

    gates = [parse_fail_on(text) for text in fail_on]
    # The comparison is written under --reports-dir: check it before any work (exit 2).
    if run_profiles is not None:
        if a is not None:
            raise UserInputError("give either A B or --run A.yaml B.yaml, not both.")
        check_writable_dir(reports)
        result_a, result_b = measure_interleaved(run_profiles, rounds, reports)
        if not no_html:
            from harborbench.report.files import run_dir
            from harborbench.report.html import write_run_html

            for result in (result_a, result_b):
                write_run_html(result, run_dir(reports, result.name))
    else:
        if a is None or b is None:
            raise UserInputError(
                "compare needs two runs: harborbench compare A B.",
                hint="A and B are run names under reports/ or paths to result.json files.",
            )
        check_writable_dir(reports)
        from harborbench.result import load_result

        path_a = resolve_result_path(a, reports)
        result_a = load_result(path_a, command="compare")
        path_b = resolve_result_path(b, reports)
        result_b = load_result(path_b, command="compare")
        if path_a.resolve() == path_b.resolve():
            print_warning(
                f"A and B are the same result file ({path_a}): the comparison can only show "
                "no difference."
            )
    comparison = compare_results(
        result_a, result_b, confidence=confidence, seed=seed, fail_on=gates
    )
    folder = write_comparison(comparison, reports)
    if not no_html:
        from harborbench.report.compare_html import write_compare_html

        write_compare_html(comparison, result_a, result_b, folder)
    if as_json:
        for w in comparison.comparability.warnings:
            print_warning(w)
        typer.echo(json.dumps(comparison.model_dump(mode="json"), indent=2))
    else:
        render_comparison(comparison, stdout)
        html = "" if no_html else ", report.html"
        stdout.print(f"[dim]Wrote {folder}/comparison.csv, comparison.json{html}[/]")
    comp = comparison.comparability
    if strict and not comp.comparable:
        keys = ", ".join(d.key for d in [*comp.environment, *comp.workload])
        raise InconclusiveError(
            f"A and B are not comparable ({keys}) and --strict is set.",
            hint="Measure both on the same machine with the same workload (see --run).",
        )
    failed = [g.gate for g in comparison.gates if g.verdict == "fail"]
    if failed:
        raise GateFailed(f"--fail-on gate(s) failed: {', '.join(failed)}.")
    unsure = [g.gate for g in comparison.gates if g.verdict == "inconclusive"]
    if unsure:
        raise InconclusiveError(
            f"--fail-on gate(s) inconclusive: {', '.join(unsure)} (the interval straddles the "
            "threshold, or there is no interval).",
            hint="Gather more data: run longer, or with repeat > 1, or use --run with more rounds.",
        )
