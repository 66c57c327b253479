"""The run summary's load line: stage lengths and rates as people read them."""

from __future__ import annotations

from harborbench.profile import load_profile
from harborbench.report.summary import describe_load
from tests.profile.test_overrides import PROFILES


def test_stage_lengths_that_do_not_divide_evenly_are_shown_rounded() -> None:
    profile = load_profile(PROFILES / "burst.yaml", ["duration=8s"])
    data = profile.model_dump(mode="json")
    stored = [s["duration"] for s in data["load"]["stages"]]
    assert stored == ["2.6666666666666665s"] * 3  # the stored text stays exact
    assert describe_load(data["load"]) == (
        "stages: 2.67s @ 300 ops/s, 2.67s @ 1200 ops/s, 2.67s @ 300 ops/s"
    )


def test_even_stage_lengths_and_worker_stages() -> None:
    load = {"stages": [{"duration": "10s", "concurrency": 4}, {"duration": "1m30s", "rate": 2.5}]}
    assert describe_load(load) == "stages: 10s @ 4 workers, 1m30s @ 2.5 ops/s"
