"""The one reader of harborbench's JSON files: kinds, versions, upgrades (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harborbench.documents import KINDS, UPGRADES, current_version, load_document, model_of
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
