"""``harborbench compare A B`` on synthetic result files: exit codes, files, messages."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pytest

from harborbench.errors import EXIT_BAD_INPUT, EXIT_GATE_FAILED, EXIT_INCONCLUSIVE
from harborbench.result import RunResult
from tests.compare.test_compare import STEADY, make_run


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render the table 200 columns wide so that verdicts are not wrapped in the captured text."""
    from harborbench.report import console

    monkeypatch.setattr(console.stdout, "width", 200)


def _save(reports: Path, result: RunResult) -> Path:
    folder = reports / result.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "result.json"
    path.write_text(result.model_dump_json(), encoding="utf-8")
    return path


def test_identical_runs_exit_0_under_gates_and_write_files(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _save(tmp_path, make_run("base", [STEADY]))
    _save(tmp_path, make_run("cand", [STEADY]))
    code, out, err = cli(
        "compare", "base", "cand", "--reports-dir", str(tmp_path),
        "--fail-on", "throughput:-5%", "--fail-on", "p99:+10%",
    )  # fmt: skip
    assert code == 0, err
    assert "no significant difference" in out
    assert "plan reference" in out
    assert "505.6 (plan)" in out
    folder = tmp_path / "compare-base-cand"
    data = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))
    assert data["a"]["name"] == "base" and data["b"]["name"] == "cand"
    assert [g["verdict"] for g in data["gates"]] == ["pass", "pass"]
    with (folder / "comparison.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["metric"] == "throughput" and rows[0]["verdict"] == "no significant difference"
    assert rows[-1]["metric"] == "throughput_vs_plan_baseline"
    assert not list(folder.glob(".*.tmp"))  # atomic writes leave no temporary file


def test_clear_regression_exits_1(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    slow = [int(x * 0.8) for x in STEADY]
    _save(tmp_path, make_run("base", [STEADY, STEADY]))
    _save(tmp_path, make_run("slow", [slow, slow], seed=9))
    code, out, err = cli(
        "compare", "base", "slow", "--reports-dir", str(tmp_path), "--fail-on", "throughput:-5%"
    )
    assert code == EXIT_GATE_FAILED
    assert "worse" in out
    assert "throughput:-5%" in err and "failed" in err


def test_small_regression_in_noise_exits_3(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    noisy = [1000 + (400 if i % 2 else -400) for i in range(30)]
    _save(tmp_path, make_run("base", [noisy]))
    _save(tmp_path, make_run("cand", [[int(x * 0.97) for x in noisy]], seed=5))
    code, _, err = cli(
        "compare", "base", "cand", "--reports-dir", str(tmp_path), "--fail-on", "throughput:-5%"
    )
    assert code == EXIT_INCONCLUSIVE
    assert "inconclusive" in err


def test_differing_environments_warn_and_strict_exits_3(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _save(tmp_path, make_run("base", [STEADY]))
    _save(tmp_path, make_run("other", [STEADY], environment={"cpu_count": 64}))
    code, out, _ = cli("compare", "base", "other", "--reports-dir", str(tmp_path))
    assert code == 0
    assert "different machines or software (cpu_count)" in out
    code, _, err = cli("compare", "base", "other", "--reports-dir", str(tmp_path), "--strict")
    assert code == EXIT_INCONCLUSIVE
    assert "not comparable (cpu_count)" in err


def test_paths_and_json_output(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pa = _save(tmp_path / "x", make_run("base", [STEADY]))
    pb = _save(tmp_path / "y", make_run("cand", [STEADY]))
    code, out, _ = cli("compare", str(pa), str(pb), "--reports-dir", str(tmp_path), "--json")
    assert code == 0
    data = json.loads(out)
    assert (data["kind"], data["schema_version"]) == ("comparison", 2)
    assert {r["metric"] for r in data["rows"]} >= {"throughput", "p99", "cpu_efficiency"}
    assert (tmp_path / "compare-base-cand" / "comparison.json").is_file()


def test_newer_schema_is_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _save(tmp_path, make_run("base", [STEADY]))
    path = _save(tmp_path, make_run("future", [STEADY]))
    data = json.loads(path.read_text(encoding="utf-8"))
    data["schema_version"] = 99
    path.write_text(json.dumps(data), encoding="utf-8")
    code, _, err = cli("compare", "base", "future", "--reports-dir", str(tmp_path))
    assert code == EXIT_BAD_INPUT
    assert "schema version 99" in err and "Upgrade harborbench" in err
    assert "Traceback" not in err


def test_missing_run_exits_2_naming_it(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _save(tmp_path, make_run("base", [STEADY]))
    code, _, err = cli("compare", "base", "nosuchrun", "--reports-dir", str(tmp_path))
    assert code == EXIT_BAD_INPUT
    assert "no run named 'nosuchrun'" in err
    assert "harborbench run PROFILE" in err
    assert "Traceback" not in err


def test_bad_fail_on_exits_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("compare", "a", "b", "--reports-dir", str(tmp_path), "--fail-on", "speed")
    assert code == EXIT_BAD_INPUT
    assert "--fail-on 'speed'" in err


def test_one_run_is_not_enough(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("compare", "base", "--reports-dir", str(tmp_path))
    assert code == EXIT_BAD_INPUT
    assert "compare needs two runs" in err


def test_run_refuses_different_targets(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base = Path("profiles/baseline.yaml").read_text(encoding="utf-8")
    (tmp_path / "a.yaml").write_text(base, encoding="utf-8")
    other = base.replace("name: baseline", "name: other").replace("median: 20ms", "median: 5ms")
    (tmp_path / "b.yaml").write_text(other, encoding="utf-8")
    code, _, err = cli(
        "compare", "--run", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"),
        "--reports-dir", str(tmp_path),
    )  # fmt: skip
    assert code == EXIT_BAD_INPUT
    assert "different targets" in err


def test_help_has_examples(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("compare", "--help")
    assert code == 0
    assert "harborbench compare baseline optimized --fail-on throughput:-5%" in out


@pytest.mark.slow
def test_end_to_end_run_then_compare(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The issue's end-to-end check on the real engine and mock, shortened to 3 s per run."""
    short = ("--set", "duration=3s", "--set", "warmup=1s", "--reports-dir", str(tmp_path), "-q")
    for profile in ("profiles/baseline.yaml", "profiles/optimized.yaml"):
        code, _, err = cli("run", profile, *short)
        assert code in (0, 1, 3), err  # the plan's gates may fail or be inconclusive: not ours
    code, out, err = cli("compare", "baseline", "optimized", "--reports-dir", str(tmp_path))
    assert code == 0, err
    assert "B = optimized against baseline A = baseline" in out
    assert "plan reference" in out
    data = json.loads((tmp_path / "compare-baseline-optimized" / "comparison.json").read_text())
    throughput = next(r for r in data["rows"] if r["metric"] == "throughput")
    assert throughput["verdict"] == "inconclusive"  # 3 one-second intervals: too few for a CI
    assert "too few 1-s intervals" in throughput["reason"]
    assert data["comparability"]["comparable"] is True  # same machine, same workload
    code, _, err = cli(
        "compare", "baseline", "optimized", "--reports-dir", str(tmp_path),
        "--fail-on", "throughput:-5%",
    )  # fmt: skip
    assert code == EXIT_INCONCLUSIVE
    assert "throughput:-5%" in err


@pytest.mark.slow
def test_end_to_end_interleaved_rounds(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths = []
    for name in ("baseline", "optimized"):
        text = Path(f"profiles/{name}.yaml").read_text(encoding="utf-8")
        text = text.replace("warmup: 3s", "warmup: 1s").replace("duration: 20s", "duration: 2s")
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    code, _, err = cli("compare", "--run", *paths, "--rounds", "2", "--reports-dir", str(tmp_path))
    assert code == 0, err
    for name in ("baseline", "optimized"):
        result = json.loads((tmp_path / name / "result.json").read_text(encoding="utf-8"))
        assert [t["index"] for t in result["trials"]] == [0, 1]
    data = json.loads((tmp_path / "compare-baseline-optimized" / "comparison.json").read_text())
    assert data["a"]["trials"] == data["b"]["trials"] == 2


def _save_tune(reports: Path) -> Path:
    """The result.json of a tune sweep (the fake lab's), as `harborbench tune` writes it."""
    from tests.report.test_tune_files import fake_result

    path = reports / "fake-tune" / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(fake_result().model_dump_json(indent=2), encoding="utf-8")
    return path


def test_a_tune_result_is_refused_as_not_a_run(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _save(tmp_path, make_run("base", [STEADY]))
    tune = _save_tune(tmp_path)
    for arg in ("fake-tune", str(tune)):
        code, out, err = cli("compare", "base", arg, "--reports-dir", str(tmp_path))
        assert code == EXIT_BAD_INPUT and out == ""
        assert " ".join(err.split()) == (
            f"Error: {tune} is the result of `harborbench tune`, not of a run: compare takes "
            "the results of `harborbench run`. Give a run name or the result.json of a run."
        )
    assert not list(tmp_path.glob("compare-*"))


def test_a_bad_reports_dir_exits_2_before_comparing(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pa = _save(tmp_path / "x", make_run("base", [STEADY]))
    pb = _save(tmp_path / "y", make_run("cand", [STEADY]))
    a_file = tmp_path / "reports-file"
    a_file.write_text("not a folder")
    code, out, err = cli("compare", str(pa), str(pb), "--reports-dir", str(a_file))
    assert code == EXIT_BAD_INPUT and out == ""
    assert " ".join(err.split()) == (
        f"Error: --reports-dir {a_file}: is a file, not a folder. Give a folder path."
    )

    import harborbench.report.files as files

    def refuse(*_: object, **__: object) -> object:  # the tests may run as root
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.tempfile, "NamedTemporaryFile", refuse)
    code, out, err = cli("compare", str(pa), str(pb), "--reports-dir", str(tmp_path / "ro"))
    assert code == EXIT_BAD_INPUT and out == ""
    assert " ".join(err.split()) == (
        f"Error: --reports-dir {tmp_path / 'ro'}: cannot write there (Permission denied). "
        "Choose a folder you can write to."
    )


def test_help_mentions_report_html(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("compare", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "reports/compare-<A>-<B>/comparison.csv, comparison.json and report.html" in text
    assert "(reports/<name>/: result.json, the CSV files and report.html)" in text


def test_same_result_file_twice_warns_once(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = _save(tmp_path, make_run("base", [STEADY]))
    warning = f"Warning: A and B are the same result file ({path}): the comparison can only "
    for b in ("base", str(path)):
        code, _, err = cli("compare", "base", b, "--reports-dir", str(tmp_path), "--no-html")
        assert code == 0, err
        assert " ".join(err.split()).count("same result file") == 1
        assert warning in " ".join(err.split()), err
    _save(tmp_path, make_run("cand", [STEADY]))
    code, _, err = cli("compare", "base", "cand", "--reports-dir", str(tmp_path), "--no-html")
    assert code == 0 and "same result file" not in err


@pytest.mark.parametrize("no_html", [False, True])
def test_run_writes_each_runs_report_html(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_html: bool
) -> None:
    """--run (measurement replaced by two saved runs) writes reports/<A>/ and <B>/report.html."""
    import harborbench.cli.compare as compare_cli
    from harborbench.compare.session import SessionBudget, SessionOutcome
    from harborbench.report.html import REPORT_FILE

    runs = (make_run("base", [STEADY]), make_run("cand", [STEADY]))

    def measured(
        _paths: object,
        budget: SessionBudget,
        reports: Path,
        compare: Any,
        gates: Any = (),
        overrides: Any = (),
    ) -> tuple[RunResult, RunResult, SessionOutcome]:
        assert overrides == []  # no --set given
        assert (budget.rounds, budget.max_rounds, budget.budget_s) == (3, 10, None)
        assert reports == tmp_path
        for run in runs:
            _save(reports, run)
        trials = (list(runs[0].trials), list(runs[1].trials))
        return (*runs, SessionOutcome(trials, compare(*runs), 1, "rounds done", 12.0))

    monkeypatch.setattr(compare_cli, "measure_interleaved", measured)
    flags = ["--no-html"] if no_html else []
    code, _, err = cli("compare", "--run", "a.yaml", "b.yaml", "--reports-dir", str(tmp_path),
                       *flags)  # fmt: skip
    assert code == 0, err
    for name in ("base", "cand", "compare-base-cand"):
        page = tmp_path / name / REPORT_FILE
        assert page.is_file() is not no_html, name
    if not no_html:
        assert "<h1>harborbench run: cand</h1>" in (tmp_path / "cand" / REPORT_FILE).read_text()


def test_a_rollback_report_or_a_comparison_is_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harborbench.report.rollback_table import report_json
    from tests.report.test_rollback_table import _report

    _save(tmp_path, make_run("base", [STEADY]))
    _save(tmp_path, make_run("cand", [STEADY]))
    code, _, err = cli("compare", "base", "cand", "--reports-dir", str(tmp_path), "--no-html")
    assert code == 0, err
    rollback = tmp_path / "rollback.json"
    rollback.write_text(report_json(_report()), encoding="utf-8")
    code, out, err = cli("compare", "base", str(rollback), "--reports-dir", str(tmp_path))
    assert code == EXIT_BAD_INPUT and out == ""
    assert f"{rollback} is the report of `harborbench rollback-check`" in " ".join(err.split())
    folder = tmp_path / "compare-base-cand"
    for arg in ("compare-base-cand", str(folder), str(folder / "comparison.json")):
        code, out, err = cli("compare", "base", arg, "--reports-dir", str(tmp_path))
        assert code == EXIT_BAD_INPUT and out == ""
        assert " ".join(err.split()) == (
            f"Error: {folder} is a comparison written by `harborbench compare`, not a run: "
            "compare takes the results of `harborbench run`. Give the run names or result.json "
            "files of the two runs it compared."
        ), arg


def test_a_gate_across_machines_exits_3_unless_allowed(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    slow = [int(x * 0.8) for x in STEADY]
    _save(tmp_path, make_run("base", [STEADY, STEADY]))
    _save(tmp_path, make_run("other", [slow, slow], environment={"os": "Linux 9.9.9"}))
    args = ("compare", "base", "other", "--reports-dir", str(tmp_path), "--no-html",
            "--fail-on", "throughput:-5%")  # fmt: skip
    code, _, err = cli(*args)
    assert code == EXIT_INCONCLUSIVE
    flat = " ".join(err.split())
    assert "different environments (os" in flat and "--allow-different-environment" in flat
    code, _, err = cli(*args, "--allow-different-environment")
    assert code == EXIT_GATE_FAILED, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["base", "base", "--max-rounds", "5"], "--max-rounds and --budget apply to --run"),
        (["base", "base", "--budget", "1m"], "--max-rounds and --budget apply to --run"),
        (["--run", "a.yaml", "b.yaml", "--budget", "soon"], "--budget:"),
        (["--run", "a.yaml", "b.yaml", "--rounds", "4", "--max-rounds", "3"],
         "--max-rounds 3 is below --rounds 4"),
    ],
)  # fmt: skip
def test_session_options_are_checked(cli, tmp_path: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    _save(tmp_path, make_run("base", [STEADY]))
    code, _, err = cli("compare", *args, "--reports-dir", str(tmp_path))
    assert code == EXIT_BAD_INPUT
    assert message in " ".join(err.split())


@pytest.mark.parametrize("b_ran", [True, False])
def test_an_interrupted_session_keeps_what_was_measured(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, b_ran: bool
) -> None:
    import harborbench.cli.compare as compare_cli
    from harborbench.compare.session import SessionOutcome

    runs = (make_run("base", [STEADY, STEADY]), make_run("cand", [STEADY]))

    def measured(
        _p: object, budget: Any, reports: Path, compare: Any, gates: Any = (), overrides: Any = ()
    ) -> Any:
        for run in runs:
            _save(reports, run.model_copy(update={"interrupted": True}))
        trials = (list(runs[0].trials), list(runs[1].trials) if b_ran else [])
        comparison = compare(runs[0], runs[1]) if b_ran else None
        outcome = SessionOutcome(trials, comparison, 1 if b_ran else 0, "interrupted", 9.0)
        return runs[0], runs[1] if b_ran else None, outcome

    monkeypatch.setattr(compare_cli, "measure_interleaved", measured)
    code, _, err = cli("compare", "--run", "a.yaml", "b.yaml", "--reports-dir", str(tmp_path),
                       "--no-html", "--fail-on", "throughput:-5%")  # fmt: skip
    assert code == 130
    folder = tmp_path / "compare-base-cand"
    if b_ran:
        data = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))
        assert data["interrupted"] is True
        assert data["session"]["rounds"] == 1 and data["session"]["stop_reason"] == "interrupted"
        assert "rounds measured so far" in err
    else:
        assert not folder.exists()
        assert "before a complete round" in " ".join(err.split())


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_device_or_fifo_as_a_result_is_refused_at_once(cli, tmp_path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    # /dev/zero grew the reader to 24 GB; a FIFO blocked it forever.
    if kind == "fifo":
        path = tmp_path / "pipe.json"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    code, _, err = cli("compare", str(path), str(path))
    assert code == 2
    assert "not a regular file" in err and "Traceback" not in err


def test_set_changes_both_profiles_of_run(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths = [str(Path(f"profiles/{n}.yaml")) for n in ("baseline", "optimized")]
    args = ("compare", "--run", *paths, "--reports-dir", str(tmp_path))
    # one name for both: the override reached both profiles (and nothing was measured)
    code, _, err = cli(*args, "--set", "name=same")
    assert code == EXIT_BAD_INPUT
    assert "both profiles are named 'same'" in " ".join(err.split())
    code, _, err = cli(*args, "--set", "duration=soon")
    assert code == EXIT_BAD_INPUT
    assert "--set duration=soon" in " ".join(err.split())
    assert not any(tmp_path.iterdir())


def test_set_without_run_is_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _save(tmp_path, make_run("base", [STEADY]))
    code, _, err = cli("compare", "base", "base", "--set", "duration=10s",
                       "--reports-dir", str(tmp_path))  # fmt: skip
    assert code == EXIT_BAD_INPUT
    flat = " ".join(err.split())
    assert "--set applies to --run A.yaml B.yaml only" in flat
    assert "Remove --set" in flat


def test_a_goodput_gate_on_runs_without_an_slo_is_bad_input(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Before: exit 3, "goodput was not measured in both runs" and "Gather more data": no amount
    # of data gives a run without an slo a goodput.
    from tests.compare.test_compare import _with_goodput

    _save(tmp_path, make_run("base", [STEADY]))
    _save(tmp_path, make_run("cand", [STEADY], seed=5))
    args = ("--reports-dir", str(tmp_path), "--fail-on", "goodput:-5%")
    code, _, err = cli("compare", "base", "cand", *args)
    assert code == EXIT_BAD_INPUT, err
    text = " ".join(err.split())
    assert (
        "--fail-on goodput:-5%: goodput counts the requests that met the objectives of the "
        "profile's slo section, and run 'base' and run 'cand' have none, so goodput is not "
        "measured."
    ) in text, text
    assert "Add an slo section (for example slo: {latency_max: 500ms}) to both profiles" in text
    assert "Gather more data" not in text and "Traceback" not in text
    assert not (tmp_path / "compare-base-cand" / "comparison.json").exists()
    _save(tmp_path, _with_goodput(make_run("cand", [STEADY], seed=5), 0.9))
    code, _, err = cli("compare", "base", "cand", *args)
    assert code == EXIT_BAD_INPUT and "and run 'base' has none" in " ".join(err.split())
    _save(tmp_path, _with_goodput(make_run("base", [STEADY]), 0.9))
    code, _, err = cli("compare", "base", "cand", *args)
    assert code != EXIT_BAD_INPUT, err  # both have an slo: the gate is judged


def test_compare_run_refuses_a_goodput_gate_before_measuring(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    profile = "load: {concurrency: 1}\nduration: 1s\ntarget: {base_url: 'http://127.0.0.1:9/v1'}\n"
    (tmp_path / "a.yaml").write_text(f"name: a\n{profile}slo: {{latency_max: 1s}}\n")
    (tmp_path / "b.yaml").write_text(f"name: b\n{profile}")
    code, _, err = cli(
        "compare", "--run", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"),
        "--reports-dir", str(tmp_path / "r"), "--fail-on", "goodput:-5%",
    )  # fmt: skip
    assert code == EXIT_BAD_INPUT, err
    assert f"and {tmp_path / 'b.yaml'} has none" in " ".join(err.split())
    assert not (tmp_path / "r" / "a").exists()  # nothing was measured


def _without_trials(run: RunResult, **update: Any) -> RunResult:
    return run.model_copy(update={"trials": [], "total": None, "gates": [], **update})


def test_a_result_with_no_trial_is_refused_by_compare_and_report(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Before: `"trials": []` was compared (exit 0) and reported (report.html, exit 0).
    _save(tmp_path, make_run("base", [STEADY]))
    empty = _save(tmp_path, _without_trials(make_run("cand", [STEADY])))
    for args in (("compare", "base", "cand"), ("report", "cand")):
        code, _, err = cli(*args, "--reports-dir", str(tmp_path))
        assert code == EXIT_BAD_INPUT, (args, err)
        assert (
            f'{empty}: invalid result file at trials: no trial ("trials": []), and a complete '
            "run always has one; is it the right file?"
        ) in " ".join(err.split()), err
        assert "Traceback" not in err
    assert not (empty.parent / "report.html").exists()
    # A split run stopped before its first trial ended writes one, marked interrupted.
    stopped = _without_trials(make_run("cand", [STEADY]), interrupted=True, status="incomplete")
    _save(tmp_path, stopped)
    code, _, err = cli("compare", "base", "cand", "--reports-dir", str(tmp_path))
    assert code == EXIT_BAD_INPUT
    text = " ".join(err.split())
    assert (
        f"{empty}: the run ended before its first trial did (it was interrupted, or its shards "
        "were lost), so it has no trial to read."
    ) in text, text
    assert "Run it again: harborbench run PROFILE." in text
    # One trial is enough to be read.
    _save(tmp_path, make_run("cand", [STEADY], seed=5))
    code, _, err = cli("compare", "base", "cand", "--reports-dir", str(tmp_path))
    assert code == 0, err
