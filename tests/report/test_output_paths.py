"""Output paths are checked before anything is measured; a late write failure keeps the result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harborbench.errors import RunFailedError, UserInputError
from harborbench.report.files import ResultWriter, check_run_folder, save_fallback
from harborbench.report.tune_files import TuneWriter
from harborbench.result import load_result
from tests.compare.test_compare import STEADY, make_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda r: (r / "x").write_text(""), "--name x: {r}/x is a file, not a folder."),
        (
            lambda r: ((r / "x").mkdir(), (r / "x" / "history").write_text("")),
            "--name x: {r}/x/history is a file; an earlier run is moved there.",
        ),
        (lambda r: None, None),
    ],
    ids=["folder-is-a-file", "history-is-a-file", "fine"],
)
def test_the_run_folder_is_checked(tmp_path: Path, make, expected: str | None) -> None:  # type: ignore[no-untyped-def]
    reports = tmp_path / "reports"
    reports.mkdir()
    make(reports)
    for writer in (ResultWriter, TuneWriter):
        if expected is None:
            assert writer(reports, "x").folder.is_dir()
            continue
        with pytest.raises(UserInputError) as info:
            writer(reports, "x")
        assert info.value.message == expected.format(r=reports)


def test_a_failed_write_at_the_end_keeps_the_result_in_a_fallback_file(tmp_path: Path) -> None:
    writer = ResultWriter(tmp_path, "late")
    writer.folder.rmdir()
    writer.folder.write_text("a file appeared where the run folder was")  # after the check
    result = make_run("late", [STEADY])
    with pytest.raises(RunFailedError) as info:
        writer.save(result)
    message = info.value.message
    assert message.startswith(f"cannot write the result files in {writer.folder} (")
    fallback = Path(message.rsplit("the result is saved in ", 1)[1].rstrip("."))
    try:
        assert load_result(fallback).model_dump() == result.model_dump()
    finally:
        fallback.unlink()


def test_the_fallback_file_is_new_each_time(tmp_path: Path) -> None:
    first, second = save_fallback("{}", "x"), save_fallback("{}", "x")
    assert first is not None and second is not None
    try:
        assert first != second and json.loads(first.read_text()) == {}
    finally:
        first.unlink()
        second.unlink()


def test_check_run_folder_names_the_comparison_folder(tmp_path: Path) -> None:
    (tmp_path / "compare-a-b").write_text("")
    with pytest.raises(UserInputError, match=r"the comparison folder: .* is a file"):
        check_run_folder(tmp_path / "compare-a-b", "the comparison folder")


def test_run_refuses_a_run_folder_that_is_a_file_before_measuring(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "steady").write_text("")
    code, out, err = cli(
        "run", str(ROOT / "profiles/steady.yaml"), "--set", "duration=1s", "--set", "warmup=0s",
        "--reports-dir", str(tmp_path), "--quiet",
    )  # fmt: skip
    assert code == 2, err
    assert f"--name steady: {tmp_path / 'steady'} is a file, not a folder." in err
    assert out == ""


def test_compare_refuses_a_comparison_folder_that_is_a_file(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "result.json").write_text(make_run(name, [STEADY]).model_dump_json())
    (tmp_path / "compare-a-b").write_text("")
    code, _out, err = cli("compare", "a", "b", "--reports-dir", str(tmp_path))
    assert code == 2, err
    assert "the comparison folder: " in err and "is a file, not a folder" in err
    assert "Traceback" not in err
