"""The measurement session against the real mock server (its own process, port 0)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from harborbench.engine.session import MeasurementSession
from harborbench.errors import TargetUnreachableError
from harborbench.profile import load_profile_dict


def profile(name: str, concurrency: int) -> Any:
    return load_profile_dict(
        {
            "name": name,
            "target": {"mock": {"latency": "10ms"}},
            "request": {"prompt_tokens": 20, "max_tokens": 16, "timeout": "5s"},
            "load": {"concurrency": concurrency},
            "warmup": "0s",
            "duration": "1s",
            "seed": 3,
        }
    )


async def test_one_mock_serves_interleaved_trials_of_two_profiles_and_stops_after() -> None:
    a, b = profile("a", 2), profile("b", 4)
    session = MeasurementSession(a)
    async with session:
        target = session.target
        assert target.server is not None
        assert target.base_url.startswith("http://127.0.0.1:")
        assert target.base_url == target.server.base_url
        trials: dict[str, list[Any]] = {"a": [], "b": []}
        for index, p in enumerate((a, b, b, a)):
            trials[p.name].append(await session.trial(p, index=index // 2))
        pid = target.server.pid
    # Every trial reset the server's counters and read them: its own requests only.
    for side in trials.values():
        for t in side:
            assert t.failures == 0 and t.successes > 0
            assert t.server_stats is not None
            served = t.server_stats["requests_total"]
            assert t.successes <= served <= t.successes + t.in_flight_at_end
    result = session.result(b, trials["b"], interrupted=False)
    assert result.name == "b" and [t.index for t in result.trials] == [0, 1]
    assert result.environment["event_loop"] is not None  # collected in the running loop
    assert result.total is not None
    assert result.total.successes == sum(t.successes for t in trials["b"])
    # Leaving the session stopped the mock's process (and reaped it).
    with pytest.raises(RuntimeError, match="not running"):
        _ = target.server.url
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_a_session_whose_target_is_down_fails_before_any_trial() -> None:
    down = load_profile_dict(
        {
            "name": "down",
            "target": {"base_url": "http://127.0.0.1:9/v1"},
            "request": {"prompt_tokens": 4, "max_tokens": 4},
            "load": {"concurrency": 1},
            "duration": "1s",
        }
    )
    with pytest.raises(TargetUnreachableError, match=r"127\.0\.0\.1:9\b"):
        async with MeasurementSession(down, environment={}):
            pytest.fail("entered")
