"""pandas for notebooks: a run's summary and time series as DataFrames; the CSV files written
from them (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

import harborbench
from harborbench.report.files import (
    ResultWriter,
    csv_text,
    frame_csv,
    summary_rows,
    timeseries_rows,
)
from harborbench.result import RunResult
from tests.compare.test_compare import STEADY, make_run


def _saved(tmp_path: Path, trials: int) -> tuple[RunResult, Path]:
    run = make_run("nb", [STEADY] * trials)
    folder = ResultWriter(tmp_path, "nb").save(run)
    return run, folder


def test_load_result_is_exported_from_the_package(tmp_path: Path) -> None:
    run, folder = _saved(tmp_path, 1)
    loaded = harborbench.load_result(folder / "result.json")
    assert isinstance(loaded, RunResult)
    assert loaded.total == run.total


def test_the_summary_frame_has_one_row_per_trial_plus_the_total(tmp_path: Path) -> None:
    run, folder = _saved(tmp_path, 2)
    frame = harborbench.load_result(folder / "result.json").summary_frame()
    assert list(frame["trial"]) == ["1", "2", "total"]
    assert frame["successes"].tolist() == [t.successes for t in run.trials] + [
        sum(t.successes for t in run.trials)
    ]
    assert pd.api.types.is_float_dtype(frame["throughput_ops"])
    assert pd.api.types.is_integer_dtype(frame["failures"])
    one = harborbench.load_result(_saved(tmp_path / "one", 1)[1] / "result.json")
    assert list(one.summary_frame()["trial"]) == ["1"]


def test_the_timeseries_frame_has_one_row_per_trial_and_second(tmp_path: Path) -> None:
    run, folder = _saved(tmp_path, 2)
    frame = harborbench.load_result(folder / "result.json").timeseries_frame()
    assert len(frame) == sum(len(t.timeseries) for t in run.trials)
    assert sorted(set(frame["trial"])) == [1, 2]
    first = run.trials[0].timeseries[0]
    assert frame.iloc[0]["t_s"] == first.t_s
    assert frame.iloc[0]["successes"] == first.successes
    assert set(frame["phase"]) <= {"warmup", "measure"}


def test_the_csv_files_are_the_frames_in_the_tidy_format(tmp_path: Path) -> None:
    run, folder = _saved(tmp_path, 2)
    summary = (folder / "summary.csv").read_text(encoding="utf-8")
    timeseries = (folder / "timeseries.csv").read_text(encoding="utf-8")
    assert summary == frame_csv(run.summary_frame())
    assert timeseries == frame_csv(run.timeseries_frame())
    # The same bytes as the plain csv module writes from the rows (the format did not change).
    assert summary == csv_text(summary_rows(run))
    assert timeseries == csv_text(timeseries_rows(run))
    assert pd.read_csv(folder / "summary.csv")["successes"].tolist()[:2] == [
        t.successes for t in run.trials
    ]


def test_a_run_without_trials_writes_empty_csv_files(tmp_path: Path) -> None:
    run = make_run("none", [STEADY])
    empty = RunResult.model_validate(
        json.loads(run.model_dump_json()) | {"trials": [], "total": None}
    )
    folder = ResultWriter(tmp_path, "none").save(empty)
    assert (folder / "summary.csv").read_text(encoding="utf-8") == ""
    assert (folder / "timeseries.csv").read_text(encoding="utf-8") == ""
    assert empty.summary_frame().empty
