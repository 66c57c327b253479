"""``harborbench report NAME`` and ``run --no-html``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harborbench.errors import EXIT_BAD_INPUT
from harborbench.report.html import REPORT_FILE
from tests.report.test_html import CHART_IDS, check, make_result

ROOT = Path(__file__).resolve().parents[2]


def _save(folder: Path, name: str = "r1") -> Path:
    path = folder / name / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(make_result(name=name).model_dump_json(indent=2), encoding="utf-8")
    return path


def test_report_by_run_name(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = _save(tmp_path)
    code, out, err = cli("report", "r1", "--reports-dir", str(tmp_path))
    assert code == 0, err
    written = result.parent / REPORT_FILE
    assert out.strip() == f"wrote {written}"
    page = written.read_text(encoding="utf-8")
    assert [a["id"] for t, a in check(page).tags if t == "svg"] == CHART_IDS


def test_report_by_result_path_and_folder(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = _save(tmp_path)
    for arg in (str(result), str(result.parent)):
        (result.parent / REPORT_FILE).unlink(missing_ok=True)
        code, _, err = cli("report", arg)
        assert code == 0, err
        assert (result.parent / REPORT_FILE).is_file()


def test_missing_run_is_exit_2_with_a_hint(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli("report", "nosuch", "--reports-dir", str(tmp_path))
    assert code == EXIT_BAD_INPUT
    assert "Traceback" not in err
    assert f"{tmp_path}/nosuch/result.json: no such result file" in " ".join(err.split())
    assert out == ""


def test_unsafe_name_is_exit_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("report", "../elsewhere", "--reports-dir", str(tmp_path))
    assert code == EXIT_BAD_INPUT
    assert "is not a result file, a run folder or a run name" in " ".join(err.split())


def test_not_a_result_file_is_exit_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bogus = tmp_path / "x.json"
    bogus.write_text('{"hello": 1}', encoding="utf-8")
    code, _, err = cli("report", str(bogus))
    assert code == EXIT_BAD_INPUT
    assert "not a harborbench result file" in err
    assert not (tmp_path / REPORT_FILE).exists()


def test_deeply_nested_json_is_exit_2_not_a_recursion_error(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    deep = tmp_path / "result.json"
    deep.write_text('{"a":' * 100_000 + "1" + "}" * 100_000, encoding="utf-8")
    for args in (["report", str(deep)], ["compare", str(deep), str(deep)]):
        code, _, err = cli(*args)
        assert code == EXIT_BAD_INPUT, err
        assert "Traceback" not in err and "Recursion" not in err
        assert f"{deep}: the JSON nests deeper than 64 levels" in " ".join(err.split())
    assert not (tmp_path / REPORT_FILE).exists()


@pytest.mark.slow
def test_run_no_html_then_report(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A real run (mock server, 1 s) with --no-html writes no report; `report` then writes it."""
    proc = subprocess.run(
        [sys.executable, "-m", "harborbench", "run", str(ROOT / "profiles" / "steady.yaml"),
         "--set", "duration=1s", "--set", "warmup=0s", "--name", "nohtml", "--quiet",
         "--no-html", "--reports-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=90, check=False, cwd=tmp_path,
    )  # fmt: skip
    folder = tmp_path / "nohtml"
    assert (folder / "result.json").is_file(), (proc.returncode, proc.stdout, proc.stderr)
    assert not (folder / REPORT_FILE).exists()
    code, _, err = cli("report", "nohtml", "--reports-dir", str(tmp_path))
    assert code == 0, err
    page = (folder / REPORT_FILE).read_text(encoding="utf-8")
    c = check(page)
    assert c.errors == []
    assert [a["id"] for t, a in c.tags if t == "svg"] == CHART_IDS
    assert "<h1>harborbench run: nohtml</h1>" in page


def test_a_tune_result_is_refused_naming_the_tune_page(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.cli.test_compare import _save_tune

    tune = _save_tune(tmp_path)
    code, out, err = cli("report", "fake-tune", "--reports-dir", str(tmp_path))
    assert code == EXIT_BAD_INPUT and out == ""
    message = (
        f"Error: {tune} is the result of `harborbench tune`, not of a run: report takes the "
        "results of `harborbench run`. Give a run name or the result.json of a run."
    )
    assert " ".join(err.split()) == message
    (tune.parent / REPORT_FILE).write_text("<!DOCTYPE html>", encoding="utf-8")  # tune's page
    code, _, err = cli("report", str(tune.parent))
    assert code == EXIT_BAD_INPUT
    assert " ".join(err.split()) == f"{message} The tune's own page is {tune.parent / REPORT_FILE}."


def test_a_rollback_report_is_named_not_called_too_new(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harborbench.report.rollback_table import report_json
    from tests.report.test_rollback_table import _report

    path = tmp_path / "rollback.json"
    path.write_text(report_json(_report()), encoding="utf-8")
    code, out, err = cli("report", str(path))
    assert code == EXIT_BAD_INPUT and out == ""
    assert " ".join(err.split()) == (
        f"Error: {path} is the report of `harborbench rollback-check`, not the result of a run: "
        "report takes the results of `harborbench run`. Its verdicts are its rows "
        "(`harborbench rollback-check --junit FILE` writes them for a CI test page). Give a run "
        "name or the result.json of a run."
    )
    assert not (tmp_path / REPORT_FILE).exists()


def _save_comparison(cli, reports: Path, *, page: bool) -> Path:  # type: ignore[no-untyped-def]
    """A comparison folder as `harborbench compare base cand` writes it (with or without page)."""
    from tests.cli.test_compare import _save
    from tests.compare.test_compare import STEADY, make_run

    _save(reports, make_run("base", [STEADY]))
    _save(reports, make_run("cand", [STEADY]))
    folder = reports / "compare-base-cand"
    args = ["compare", "base", "cand", "--reports-dir", str(reports), "--json"]
    code, _, err = cli(*args) if page else cli(*args, "--no-html")
    assert code == 0, err
    assert (folder / "comparison.json").is_file()
    assert (folder / REPORT_FILE).is_file() is page
    return folder


def test_a_comparison_folder_points_to_its_own_page(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _save_comparison(cli, tmp_path, page=True)
    page = folder / REPORT_FILE
    before = page.read_text(encoding="utf-8")
    message = (
        f"Error: {folder} is a comparison written by `harborbench compare`, not a run: report "
        "takes the results of `harborbench run`. `harborbench compare` already wrote its page: "
        f"open {page}."
    )
    for arg in ("compare-base-cand", str(folder), str(folder / "comparison.json")):
        code, out, err = cli("report", arg, "--reports-dir", str(tmp_path))
        assert code == EXIT_BAD_INPUT and out == ""
        assert " ".join(err.split()) == message, arg
    assert page.read_text(encoding="utf-8") == before
    assert not (folder / "result.json").exists()


def test_a_comparison_without_page_says_how_to_write_it(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _save_comparison(cli, tmp_path, page=False)
    code, out, err = cli("report", "compare-base-cand", "--reports-dir", str(tmp_path))
    assert code == EXIT_BAD_INPUT and out == ""
    assert " ".join(err.split()).endswith(
        "Run `harborbench compare A B` again without --no-html to write its report.html."
    )
    assert not (folder / REPORT_FILE).exists()
