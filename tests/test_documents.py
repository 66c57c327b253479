"""The one reader of harborbench's JSON files: kinds, versions, upgrades (issue 14)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from harborbench import documents
from harborbench.documents import (
    KINDS,
    MAX_DOCUMENT_BYTES,
    MAX_DOCUMENT_DEPTH,
    UPGRADES,
    current_version,
    load_document,
    model_of,
)
from harborbench.errors import ResultFileError
from harborbench.result import SCHEMA_VERSION, RunResult, load_result
from tests.compare.test_compare import STEADY, make_run


def _write(tmp_path: Path, data: dict[str, Any], name: str = "result.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _run_data(trials: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(make_run("r", [STEADY] * trials).model_dump_json())
    return data


def test_every_kind_is_written_with_its_kind_and_version() -> None:
    for kind in KINDS:
        model = model_of(kind)
        assert model.model_fields["kind"].default == kind
        assert current_version(kind) >= 1
        # Every older version has an upgrade step to the next one.
        for version in range(1, current_version(kind)):
            assert (kind, version) in UPGRADES


def test_a_one_trial_run_stores_no_copy_of_its_trial_and_reads_it_as_total(
    tmp_path: Path,
) -> None:
    data = _run_data(1)
    assert (data["kind"], data["schema_version"]) == ("run", SCHEMA_VERSION)
    assert data["total"] is None
    result = load_result(_write(tmp_path, data))
    assert result.total == result.trials[0]


def test_a_run_of_two_trials_stores_the_merged_total(tmp_path: Path) -> None:
    data = _run_data(2)
    assert data["total"] is not None
    assert data["total"] != data["trials"][0]
    result = load_result(_write(tmp_path, data))
    assert result.total is not None
    assert result.total.successes == sum(t.successes for t in result.trials)


def test_a_version_1_run_is_upgraded(tmp_path: Path) -> None:
    data = _run_data(1)
    trial = data["trials"][0]
    old = {k: v for k, v in data.items() if k != "kind"} | {"schema_version": 1, "total": trial}
    result = load_result(_write(tmp_path, old))
    assert isinstance(result, RunResult)
    assert (result.kind, result.schema_version) == ("run", SCHEMA_VERSION)
    assert result.total == result.trials[0]
    assert json.loads(result.model_dump_json())["total"] is None


def test_a_newer_file_is_refused_with_the_upgrade_hint(tmp_path: Path) -> None:
    data = _run_data(1) | {"schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(ResultFileError) as caught:
        load_result(_write(tmp_path, data))
    assert f"run schema version {SCHEMA_VERSION + 1}, newer than" in str(caught.value)
    assert caught.value.hint is not None and "pip install -U harborbench" in caught.value.hint


def test_the_current_version_is_read_without_upgrade(tmp_path: Path) -> None:
    data = _run_data(1)
    assert load_document(_write(tmp_path, data)).model_dump(mode="json") == data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "nonsense"}, "unknown kind 'nonsense'"),
        ({"schema_version": 0}, "must be an integer (1 or more), not 0"),
        ({"schema_version": True}, "must be an integer (1 or more), not True"),
    ],
)
def test_bad_kinds_and_versions_are_named(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ResultFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_document(_write(tmp_path, _run_data(1) | change))


def test_a_file_without_kind_needs_an_expected_kind(tmp_path: Path) -> None:
    data = {k: v for k, v in _run_data(1).items() if k != "kind"} | {"schema_version": 1}
    path = _write(tmp_path, data)
    with pytest.raises(ResultFileError, match="does not name its kind"):
        load_document(path)
    assert isinstance(load_document(path, "run"), RunResult)


def test_another_kind_is_named_not_validated(tmp_path: Path) -> None:
    tune = _write(tmp_path, {"kind": "tune", "schema_version": 2}, "tune.json")
    with pytest.raises(ResultFileError) as caught:
        load_result(tune, command="compare")
    assert caught.value.message == (
        f"{tune} is the result of `harborbench tune`, not of a run: compare takes the results "
        "of `harborbench run`."
    )
    assert caught.value.hint == "Give a run name or the result.json of a run."


def _deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def test_deep_nesting_is_refused_at_any_depth(tmp_path: Path) -> None:
    # 100,000 levels overflowed the parser (a RecursionError traceback); 65 levels parse but
    # would reach recursive code later (the free-form profile and environment).
    for levels in (100_000, MAX_DOCUMENT_DEPTH + 1):
        path = tmp_path / f"deep{levels}.json"
        path.write_text(_deep(levels), encoding="utf-8")
        with pytest.raises(ResultFileError) as caught:
            load_document(path)
        assert caught.value.message == (
            f"{path}: the JSON nests deeper than 64 levels, more than harborbench writes; "
            "is it the right file?"
        )
    # A result nested as deep as the limit in its free-form part is read.
    data = _run_data(1)
    data["profile"]["x"] = json.loads(_deep(MAX_DOCUMENT_DEPTH - 2))  # root + profile + 62
    assert isinstance(load_document(_write(tmp_path, data)), RunResult)


def test_the_size_limit_is_checked_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, _run_data(1))
    size = path.stat().st_size
    monkeypatch.setattr(documents, "MAX_DOCUMENT_BYTES", size)
    assert isinstance(load_document(path), RunResult)
    monkeypatch.setattr(documents, "MAX_DOCUMENT_BYTES", size - 1)
    with pytest.raises(ResultFileError, match=rf"{path}: is larger than {size - 1:,} bytes, more"):
        load_document(path)
    assert MAX_DOCUMENT_BYTES == 1 << 30  # the limit the README states


@pytest.mark.parametrize("kind", ["device", "fifo", "folder"])
def test_a_file_that_is_not_regular_is_refused(tmp_path: Path, kind: str) -> None:
    path = {"device": Path("/dev/zero"), "fifo": tmp_path / "p.json", "folder": tmp_path}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    what = {"device": "a device", "fifo": "a FIFO (named pipe)", "folder": "a folder"}[kind]
    with pytest.raises(ResultFileError) as caught:
        load_document(path)
    assert caught.value.message == f"{path}: is {what}, not a regular file."
