"""How a run ends when things go wrong: clear errors, no leaked tasks, nothing measured lost."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

import harborbench.engine.runner as runner
from harborbench.engine.runner import arun
from harborbench.errors import AllRequestsFailedError, ResultFileError, TargetUnreachableError
from harborbench.profile import load_profile_dict
from harborbench.result import load_result


def profile(**extra: Any) -> Any:
    data: dict[str, Any] = {
        "name": "fail",
        "target": {"mock": {"latency": "1ms"}},
        "request": {"prompt_tokens": 10, "max_tokens": 8, "timeout": "5s"},
        "load": {"concurrency": 2},
        "warmup": "0s",
        "duration": "1s",
    }
    data.update(extra)
    return load_profile_dict(data)


async def test_nothing_completing_is_not_called_every_request_failed() -> None:
    slow = profile(target={"mock": {"latency": "3s"}})
    with pytest.raises(AllRequestsFailedError) as info:
        await arun(slow)
    message = str(info.value)
    assert "no request completed inside the 1.0 s window" in message
    assert "2 sent in it were still in flight" in message
    assert "failed" not in message.split(";")[0]


async def test_an_unreachable_base_url_fails_fast_without_measuring() -> None:
    dead = profile(target={"base_url": "http://127.0.0.1:9/v1"}, duration="30s")
    started = time.monotonic()
    with pytest.raises(TargetUnreachableError, match=r"127\.0\.0\.1:9\b"):
        await arun(dead)
    assert time.monotonic() - started < 10  # not the 30 s duration


async def test_a_bug_in_a_driver_stops_the_trial_and_leaks_no_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken_driver(*args: Any) -> None:
        await asyncio.sleep(0.2)
        raise RuntimeError("driver bug")

    monkeypatch.setattr(runner, "drive_closed_loop", broken_driver)
    before = set(asyncio.all_tasks())
    with pytest.raises(RuntimeError, match="driver bug"):
        await arun(profile(duration="20s"))
    await asyncio.sleep(0)
    assert set(asyncio.all_tasks()) - before == set()


def write(tmp: Path, data: dict[str, Any]) -> Path:
    path = tmp / "result.json"
    path.write_text(json.dumps(data))
    return path


async def test_load_result_names_a_damaged_histogram(tmp_path: Path) -> None:
    result = await arun(profile())
    data = json.loads(result.model_dump_json())
    assert len(data["trials"]) == 1 and data["total"] is None  # no copy of the only trial
    data["trials"][0]["service_time"]["histogram"] = "garbage"
    with pytest.raises(ResultFileError, match=r"trials\.0\.service_time\.histogram"):
        load_result(write(tmp_path, data))
    data["trials"][0]["service_time"]["histogram"] = result.trials[0].service_time.histogram
    assert load_result(write(tmp_path, data)).total == result.trials[0]
    data["schema_version"] = "1"
    with pytest.raises(ResultFileError, match="must be an integer"):
        load_result(write(tmp_path, data))
    data["schema_version"] = 1
    data["kind"] = "tune"
    with pytest.raises(ResultFileError, match="is the result of `harborbench tune`, not of a run"):
        load_result(write(tmp_path, data))


async def test_a_base_url_without_v1_that_gets_404s_names_the_fix() -> None:
    from harborbench.mockserver.process import MockServer

    with MockServer() as server:
        root = server.base_url.removesuffix("/v1")
        with pytest.raises(AllRequestsFailedError) as info:
            await arun(profile(target={"base_url": root}))
    message = str(info.value)
    assert "http_404" in message
    assert message.endswith(
        "The target answered 404 Not Found, and an OpenAI-compatible API is served under /v1: "
        f"set target.base_url to {root}/v1."
    )


def _silent_trial(in_flight: int, warnings: list[str]) -> Any:
    from tests.compare.test_compare import make_trial

    trial = make_trial(0, [0, 0])
    health = trial.health.model_copy(update={"warnings": warnings})
    return trial.model_copy(update={"in_flight_at_end": in_flight, "health": health})


def test_health_warnings_are_joined_as_sentences() -> None:
    lag = "event-loop lag p99 90.0 ms: the generator was busy"
    message = str(runner._nothing_succeeded(_silent_trial(3, [lag, "sends fell behind"]), "x"))
    assert message == (
        "no request completed inside the 2.0 s window (3 sent in it were still in flight at "
        "its end). Event-loop lag p99 90.0 ms: the generator was busy. Sends fell behind. "
        "Lower the load or lengthen the duration; check the target's latency."
    )


def test_nothing_sent_in_the_window_says_the_warmup_requests_held_the_workers() -> None:
    message = str(runner._nothing_succeeded(_silent_trial(0, []), "http://127.0.0.1:1/v1"))
    assert message.startswith(
        "no request was sent inside the 2.0 s window: the requests sent during warmup were "
        "still pending and held every worker (or every slot of the client), so nothing was "
        "measured. Lower the load"
    )
