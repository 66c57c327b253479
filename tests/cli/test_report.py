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
