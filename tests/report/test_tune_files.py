"""Files of `harborbench tune`: result.json, sweep.csv, recommended_config.yaml, history."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest
import yaml

from harborbench.errors import ProfileError
from harborbench.harborai import ConfigError, create_fast_client
from harborbench.profile import load_profile_dict
from harborbench.report.tune_files import TuneWriter, recommended_config_text, sweep_rows
from harborbench.tune import TrialTiming
from harborbench.tune.result import TuneResult
from harborbench.tune.sweep import _Sweep, _sweep
from tests.tune.test_tune import OPTIMIZED, FakeLab


def fake_result(p95_max_s: float = 10.0, p95_verdict: str | None = None) -> TuneResult:
    """A finished sweep measured by the fake lab of tests/tune/test_tune.py (no network);
    ``p95_verdict`` forces the verdict of every point's p95 gate."""
    lab = FakeLab(p95_max_s=p95_max_s, p95_verdict=p95_verdict)
    sweep = _Sweep(OPTIMIZED, "fake-tune", 1000.0, TrialTiming(0.5, 2.0, 4.0), lab.clock)
    reason = asyncio.run(_sweep(sweep, lab.measure, None))
    return sweep.result(reason, final=True)


def test_save_writes_the_three_files_and_archives_an_earlier_run(tmp_path: Path) -> None:
    result = fake_result()
    assert result.chosen is not None and result.recommended_config is not None
    folder = TuneWriter(tmp_path, "fake-tune", source="profiles/optimized.yaml").save(result)
    assert sorted(p.name for p in folder.iterdir()) == [
        "recommended_config.yaml", "result.json", "sweep.csv"
    ]  # fmt: skip
    assert TuneResult.model_validate_json((folder / "result.json").read_text()) == result
    text = (folder / "recommended_config.yaml").read_text()
    assert text.startswith("# Client configuration recommended by `harborbench tune`")
    assert "# profile: optimized (profiles/optimized.yaml)" in text
    assert yaml.safe_load(text) == result.recommended_config
    with (folder / "sweep.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(result.points)
    assert float(rows[0]["throughput_ops"]) == pytest.approx(result.points[0].throughput_ops)

    # A second tune of the same name moves all three files to history/<stamp>/.
    first = text
    TuneWriter(tmp_path, "fake-tune").save(result)
    (stamp,) = list((folder / "history").iterdir())
    assert sorted(p.name for p in stamp.iterdir()) == [
        "recommended_config.yaml", "result.json", "sweep.csv"
    ]  # fmt: skip
    assert (stamp / "recommended_config.yaml").read_text() == first


def test_the_recommended_config_is_used_as_its_comment_and_the_readme_say(tmp_path: Path) -> None:
    folder = TuneWriter(tmp_path, "fake-tune").save(fake_result())
    text = (folder / "recommended_config.yaml").read_text()
    assert (
        "# Client keys only, no target and no key. Load it with\n"
        "#   create_fast_client(yaml.safe_load(open(path)), base_url=URL)\n"
    ) in text
    assert "In a profile, put these\n# keys under client: without timeout_s" in text
    config = yaml.safe_load(text)
    with pytest.raises(ConfigError, match="no target configured"):
        create_fast_client(config)  # not "as is": it needs a target
    with create_fast_client(config, base_url="http://127.0.0.1:9/v1") as client:
        assert client.optimization_status()["mode"] == "optimized"
    # in a profile's client section: refused with timeout_s, accepted without it
    profile = {"name": "t", "load": {"concurrency": 1}, "duration": "1s", "client": config}
    with pytest.raises(ProfileError) as refused:
        load_profile_dict(profile)
    assert str(refused.value).endswith("set request.timeout: 10s instead")
    del config["timeout_s"]
    loaded = load_profile_dict({**profile, "request": {"timeout": "10s"}})
    assert loaded.client.model_dump(mode="json", exclude_unset=True) == config


def test_no_recommendation_writes_no_config(tmp_path: Path) -> None:
    result = fake_result(p95_max_s=0.001)  # every point misses the p95 gate
    assert result.chosen is None and result.closest == 0
    folder = TuneWriter(tmp_path, "none").save(result)
    assert not (folder / "recommended_config.yaml").exists()
    with pytest.raises(ValueError, match="no config"):
        recommended_config_text(result)
    assert [r["chosen"] for r in sweep_rows(result)] == [False]
    assert sweep_rows(result)[0]["missed_gates"] == "p95 latency"
    assert sweep_rows(result)[0]["unsure_gates"] == ""


def test_sweep_csv_separates_failed_and_inconclusive_gates(tmp_path: Path) -> None:
    result = fake_result(p95_verdict="inconclusive")  # p95 from too few samples everywhere
    assert result.chosen is None
    folder = TuneWriter(tmp_path, "unsure").save(result)
    with (folder / "sweep.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(result.points) == 7
    assert {(r["meets_gates"], r["missed_gates"], r["unsure_gates"]) for r in rows} == {
        ("False", "", "p95 latency")
    }


def test_sweep_rows_carry_the_usl_prediction_of_a_good_fit() -> None:
    result = fake_result()
    assert result.fit.good
    rows = sweep_rows(result)
    load = [r for r in rows if r["phase"] == "concurrency"]
    for row, point in zip(load, result.points, strict=False):
        # the fake lab measures the USL exactly, so the fit predicts the measurement
        assert row["usl_predicted_ops"] == pytest.approx(point.throughput_ops, rel=1e-3)
