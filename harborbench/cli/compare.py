"""``harborbench compare A B``: two runs side by side, with the noise taken into account."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from harborbench.cli.app import app
from harborbench.errors import (
    GateFailed,
    InconclusiveError,
    Interrupted,
    ResultFileError,
    RunFailedError,
    UserInputError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from harborbench.compare import Comparison, FailOn
    from harborbench.compare.session import SessionBudget, SessionOutcome
    from harborbench.result import RunResult, TrialResult

COMPARE_HELP = """Compare run B with baseline run A: changes, confidence intervals, verdicts.

A and B are run names (reports/<name>/result.json) or paths to result files. Every metric
gets B/A, a bootstrap confidence interval of that ratio (a stationary block bootstrap of the
per-second intervals, with the trials of each run as the outer unit; warmup excluded), the
smallest change the data could detect, and a verdict: better, worse, no significant
difference, or inconclusive. Writes reports/compare-<A>-<B>/comparison.csv, comparison.json
and report.html (charts, offline; --no-html to skip).

--fail-on METRIC:CHANGE fails (exit 1) only when the whole interval lies beyond the threshold,
and is inconclusive (exit 3) when the interval straddles it; the message says the smallest
change the data can detect and about how many trials (rounds) a side would decide it. A gate
never fails with one trial a side (run-to-run noise is invisible in one run), nor when A and B
come from different machines, kernels, Python or library versions (exit 3 naming the
difference; --allow-different-environment judges anyway). Metrics: throughput, goodput
(runs with an slo), attempted,
error_rate, p50, p95, p99, p999, cpu_efficiency, ttft_p50, ttft_p95, icl_p50, icl_p95,
itl_p50, itl_p95, tpot_p50, tpot_p95.

--run A.yaml B.yaml measures instead of reading files: rounds of one trial of A and one of B
(order alternating), against one target with the same seed, so that machine drift cancels
out. After --rounds rounds (default 3) the --fail-on gates are judged, and rounds are added
while one is inconclusive, up to --max-rounds (default 10) or --budget (e.g. 5m); the rounds
taken are printed. The two runs are saved under their profile names (reports/<name>/:
result.json, the CSV files and report.html), then compared. --set KEY=VALUE overrides a field
of both profiles, as in run. Ctrl-C or SIGTERM keeps the rounds measured, marked interrupted
(exit 130).

Examples:

  harborbench compare baseline optimized

  harborbench compare baseline optimized --fail-on throughput:-5% --fail-on p99:+10%

  harborbench compare reports/old/result.json reports/new/result.json --strict --json

  harborbench compare --run profiles/baseline.yaml profiles/optimized.yaml --rounds 3

  harborbench compare --run a.yaml b.yaml --fail-on throughput:-5% --budget 5m

  harborbench compare --run a.yaml b.yaml --set duration=10s --set warmup=2s

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
    from harborbench.report.files import csv_text, run_dir, write_atomic, write_failed

    folder = run_dir(reports, f"compare-{comparison.a.name}-{comparison.b.name}")
    text = comparison.model_dump_json(indent=2) + "\n"
    try:
        write_atomic(folder / "comparison.json", text)
        write_atomic(folder / "comparison.csv", csv_text(tidy_rows(comparison)))
    except OSError as exc:
        message = write_failed(f"the comparison in {folder}", exc, text, "compare")
        raise RunFailedError(message) from None
    return folder


def measure_interleaved(
    profile_paths: tuple[Path, Path],
    budget: SessionBudget,
    reports: Path,
    compare: Callable[[RunResult, RunResult], Comparison],
    *,
    gates: Sequence[FailOn] = (),
    overrides: Sequence[str] = (),
) -> tuple[RunResult, RunResult | None, SessionOutcome]:
    """Run two profiles in interleaved rounds against one target until the gates are decided.

    Rounds alternate their order (A B, B A, ...); after ``budget.rounds`` rounds the gates are
    judged, and rounds are added while one is inconclusive and more data could decide it, up to
    ``budget.max_rounds`` or ``budget.budget_s`` (:func:`harborbench.compare.session.next_step`).
    Both runs are saved after every trial. Ctrl-C or SIGTERM ends the current trial early and
    stops the session; what was measured is kept and marked interrupted.

    Args:
        profile_paths: the two profile files.
        budget: rounds before the first look, maximum rounds, wall budget.
        reports: the reports folder (runs saved under the profiles' names).
        compare: builds the comparison (with the gates) of two results.
        gates: the ``--fail-on`` gates (the session adds rounds only when there are some).
        overrides: ``--set KEY=VALUE`` items applied to both profiles.

    Returns:
        A's result, B's result (None when B never ran) and the session's outcome.

    Raises:
        UserInputError: the profiles name different targets or the same run name.
    """
    import asyncio
    import dataclasses

    from harborbench.cli.signals import stop_on_signals
    from harborbench.compare.fail_on import check_measurable
    from harborbench.compare.session import run_session
    from harborbench.engine.session import MeasurementSession
    from harborbench.profile import load_profile
    from harborbench.report.console import print_warning, stderr
    from harborbench.report.files import ResultWriter, check_run_folder, run_dir

    pa, pb = (load_profile(p, list(overrides)) for p in profile_paths)
    check_measurable(
        gates,
        [(str(path), p.slo is not None) for path, p in zip(profile_paths, (pa, pb), strict=True)],
    )
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
    profiles = (pa, pb)
    session = MeasurementSession(pa)  # pa's target, which is pb's
    writers = (ResultWriter(reports, pa.name), ResultWriter(reports, pb.name))
    check_run_folder(run_dir(reports, f"compare-{pa.name}-{pb.name}"), "the comparison folder")

    def result(side: int, trials: list[TrialResult], interrupted: bool) -> RunResult:
        return session.result(profiles[side], trials, interrupted=interrupted)

    def save(ta: list[TrialResult], tb: list[TrialResult]) -> None:
        for side, trials in enumerate((ta, tb)):
            if trials:
                writers[side].save(result(side, trials, trials[-1].interrupted))

    async def main() -> SessionOutcome:
        with stop_on_signals("Stopping: keeping the rounds measured so far…") as stop:

            async def trial(side: int, index: int) -> TrialResult:
                name = profiles[side].name
                stderr.print(
                    f"round {index + 1} (of {budget.rounds} to {budget.max_rounds}): {name}"
                )
                return await session.trial(profiles[side], index=index, stop=stop)

            def judge(ta: list[TrialResult], tb: list[TrialResult]) -> Comparison:
                return compare(result(0, ta, False), result(1, tb, False))

            async with session:
                return await run_session(
                    trial, judge, budget, gates=gates, stop=stop, on_round=save
                )

    outcome = asyncio.run(main())
    interrupted = outcome.stop_reason == "interrupted"
    ta, tb = outcome.trials
    if outcome.rounds and (interrupted or outcome.comparison is None):
        # Compare the complete rounds only: a trial cut short has no partner.
        whole = (result(0, ta[: outcome.rounds], False), result(1, tb[: outcome.rounds], False))
        outcome = dataclasses.replace(outcome, comparison=compare(*whole))
    result_a = result(0, ta, interrupted)
    result_b = result(1, tb, interrupted) if tb else None
    for side, r in enumerate((result_a, result_b)):
        if r is not None:
            writers[side].save(r)
    return result_a, result_b, outcome


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
    rounds: int = typer.Option(
        3, "--rounds", min=1, help="Rounds of --run (A and B each) before the gates are judged."
    ),
    max_rounds: int | None = typer.Option(
        None,
        "--max-rounds",
        min=1,
        help="Most rounds of --run while a --fail-on gate is inconclusive (default 10).",
    ),
    budget: str | None = typer.Option(
        None, "--budget", metavar="DURATION", help="Wall-time budget of --run, e.g. 5m."
    ),
    allow_different_environment: bool = typer.Option(
        False,
        "--allow-different-environment",
        help="Judge --fail-on gates even when A and B come from different machines or software.",
    ),
    confidence: float = typer.Option(
        0.95, "--confidence", min=0.5, max=0.999, help="Level of the intervals."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    overrides: list[str] = typer.Option(
        [],
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="With --run: override a field of both profiles, e.g. duration=10s.",
    ),
    no_html: bool = typer.Option(False, "--no-html", help="Do not write report.html."),
) -> None:
    from harborbench.compare import compare_results, parse_fail_on
    from harborbench.report.compare_table import render_comparison
    from harborbench.report.console import print_warning, stdout
    from harborbench.report.files import check_run_folder, check_writable_dir, run_dir

    gates = [parse_fail_on(text) for text in fail_on]

    def compare(ra: RunResult, rb: RunResult, paired: bool = False) -> Comparison:
        return compare_results(
            ra, rb, confidence=confidence, seed=seed, fail_on=gates, paired=paired,
            allow_different_environment=allow_different_environment,
        )  # fmt: skip

    interrupted = False
    # The comparison is written under --reports-dir: check it before any work (exit 2).
    if run_profiles is not None:
        if a is not None:
            raise UserInputError("give either A B or --run A.yaml B.yaml, not both.")
        check_writable_dir(reports)
        comparison, result_a, result_b = _run_session(
            run_profiles, reports, compare, gates, rounds, max_rounds, budget, no_html, overrides
        )
        interrupted = comparison.interrupted
    else:
        if a is None or b is None:
            raise UserInputError(
                "compare needs two runs: harborbench compare A B.",
                hint="A and B are run names under reports/ or paths to result.json files.",
            )
        if max_rounds is not None or budget is not None:
            raise UserInputError("--max-rounds and --budget apply to --run A.yaml B.yaml only.")
        if overrides:
            raise UserInputError(
                "--set applies to --run A.yaml B.yaml only: A and B are finished runs.",
                hint="Remove --set, or measure the profiles with --run.",
            )
        check_writable_dir(reports)
        from harborbench.result import load_result

        path_a = resolve_result_path(a, reports)
        result_a = load_result(path_a, command="compare")
        path_b = resolve_result_path(b, reports)
        result_b = load_result(path_b, command="compare")
        check_run_folder(
            run_dir(reports, f"compare-{result_a.name}-{result_b.name}"), "the comparison folder"
        )
        if path_a.resolve() == path_b.resolve():
            print_warning(
                f"A and B are the same result file ({path_a}): the comparison can only show "
                "no difference."
            )
        comparison = compare(result_a, result_b)
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
    if interrupted:
        raise Interrupted(
            f"Interrupted; the rounds measured so far are in {folder}/ (comparison marked "
            "interrupted) and in the two runs' folders."
        )
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
    unsure = [g for g in comparison.gates if g.verdict == "inconclusive"]
    if unsure:
        raise InconclusiveError(
            "--fail-on gate(s) inconclusive: "
            + "; ".join(f"{g.gate}: {g.reason}" for g in unsure)
            + ".",
            hint=" ".join(dict.fromkeys(g.hint for g in unsure if g.hint))
            or "Gather more data: run longer, or with repeat > 1, or use --run with more rounds.",
        )


def _run_session(
    profiles: tuple[Path, Path],
    reports: Path,
    compare: Callable[..., Comparison],
    gates: Sequence[FailOn],
    rounds: int,
    max_rounds: int | None,
    budget: str | None,
    no_html: bool,
    overrides: Sequence[str] = (),
) -> tuple[Comparison, RunResult, RunResult]:
    """``compare --run``: measure the session, save both runs, and compare complete rounds.

    Raises:
        UserInputError: a bad ``--budget`` or ``--max-rounds`` below ``--rounds``.
        Interrupted: stopped before one complete round of A and B (A's result is saved).
    """
    from harborbench.compare import SessionInfo
    from harborbench.compare.session import SessionBudget
    from harborbench.report.console import stderr
    from harborbench.report.files import run_dir
    from harborbench.units import parse_duration

    budget_s = None
    if budget is not None:
        try:
            budget_s = parse_duration(budget)
        except ValueError as exc:
            raise UserInputError(
                f"--budget: {exc}.", hint="Write for example --budget 5m."
            ) from None
        if budget_s <= 0:
            raise UserInputError(f"--budget must be positive, got {budget!r}.")
    most = max(10, rounds) if max_rounds is None else max_rounds
    if most < rounds:
        raise UserInputError(
            f"--max-rounds {most} is below --rounds {rounds}.",
            hint="Give --max-rounds at least --rounds.",
        )
    plan = SessionBudget(rounds=rounds, max_rounds=most, budget_s=budget_s)
    result_a, result_b, outcome = measure_interleaved(
        profiles,
        plan,
        reports,
        lambda ra, rb: compare(ra, rb, paired=True),
        gates=gates,
        overrides=overrides,
    )
    interrupted = outcome.stop_reason == "interrupted"
    stderr.print(
        f"compare --run: {outcome.rounds} round(s) in {outcome.elapsed_s:.0f} s "
        f"(stopped: {outcome.stop_reason})"
    )
    if not no_html:
        from harborbench.report.html import write_run_html

        for r in (result_a, result_b):
            if r is not None:
                write_run_html(r, run_dir(reports, r.name))
    if result_b is None or outcome.rounds == 0:
        raise Interrupted(
            f"Interrupted before a complete round of A and B; what was measured is in "
            f"{run_dir(reports, result_a.name)}/ (marked interrupted)."
        )
    comparison = outcome.comparison
    assert comparison is not None
    info = SessionInfo(
        rounds=outcome.rounds, first_look=plan.rounds, max_rounds=plan.max_rounds,
        budget_s=plan.budget_s, stop_reason=outcome.stop_reason, elapsed_s=outcome.elapsed_s,
    )  # fmt: skip
    comparison = comparison.model_copy(update={"session": info, "interrupted": interrupted})
    return comparison, result_a, result_b
