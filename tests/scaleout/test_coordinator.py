"""The coordinator's failure policy with a scripted backend and a fake clock (no sleeps)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from harborbench import __version__
from harborbench.errors import AllRequestsFailedError, UserInputError
from harborbench.profile.schema import Profile
from harborbench.result import Topology
from harborbench.scaleout.backend import Event, Lost
from harborbench.scaleout.coordinator import SILENT_LOST_S, arun_sharded, check_split
from harborbench.scaleout.shard import ShardInfo, ShardSpec, ShardTrial, Tick
from tests.scaleout.synthetic import synthetic_shard


@pytest.fixture
def listening() -> Iterator[str]:
    """Something accepting connections on 127.0.0.1 (the coordinator checks the target)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def profile(base_url: str, duration: str = "2s", **load: object) -> Profile:
    return Profile.model_validate(
        {
            "name": "fake",
            "target": {"base_url": base_url},
            "load": load or {"concurrency": 4},
            "duration": duration,
        }
    )


class ScriptedBackend:
    """Backend whose shards say what ``script`` says; its clock moves only when collecting."""

    name = "multiprocessing"

    def __init__(self, n: int, script: list[list[Event]], version: str = __version__) -> None:
        self.n, self.script, self.version = n, script, version
        self.clock = 10**12
        self.calls: list[str] = []

    def topology(self, workers: int) -> Topology:
        return Topology(backend="multiprocessing", workers=workers)

    def prepare(self, specs: list[ShardSpec], deadline_s: float) -> list[ShardInfo]:
        self.calls.append("prepare")
        return [ShardInfo(s.index, self.version, "h", 100 + s.index, "boot") for s in specs]

    def now(self) -> int:
        return self.clock

    def clock_offsets(self, infos: list[ShardInfo]) -> list[tuple[float, float]]:
        return [(0.0, 0.0)] * len(infos)

    def start(self, trial: int, t0_ns: list[int]) -> None:
        self.calls.append(f"start {trial}")

    def stop(self) -> None:
        self.calls.append("stop")

    def collect(self, timeout_s: float) -> list[Event]:
        self.clock += round(timeout_s * 1e9)
        return self.script.pop(0) if self.script else []

    def close(self) -> None:
        self.calls.append("close")


def done(i: int) -> ShardTrial:
    return ShardTrial(i, synthetic_shard([[1_000_000] * 10, [2_000_000] * 10]), 0.0)


def tick(i: int) -> Tick:
    return Tick(i, 0, "measure", [], 0, 0, 0)


async def test_all_shards_answer_gives_one_complete_merged_result(listening: str) -> None:
    backend = ScriptedBackend(2, [[tick(0), tick(1)], [done(0)], [done(1)]])
    result = await arun_sharded(profile(listening), backend, 2)
    assert result.status == "complete" and not result.interrupted
    assert result.total is not None and result.total.successes == 40
    assert [s.status for s in result.shards] == ["ok", "ok"]
    assert [len(s.trials) for s in result.shards] == [1, 1]
    assert result.topology is not None and result.topology.workers == 2
    assert backend.calls == ["prepare", "start 0", "close"]


async def test_a_lost_shard_makes_the_run_incomplete_with_survivors_labelled(
    listening: str,
) -> None:
    backend = ScriptedBackend(3, [[Lost(1, "process 7 was killed by SIGKILL")], [done(0), done(2)]])
    result = await arun_sharded(profile(listening, concurrency=6), backend, 3)
    assert result.status == "incomplete" and result.gates == []
    assert [s.status for s in result.shards] == ["interrupted", "lost", "interrupted"]
    assert result.shards[1].reason == "process 7 was killed by SIGKILL"
    assert result.total is not None and result.total.successes == 40  # survivors only...
    first = result.total.health.warnings[0]
    assert first.startswith("INCOMPLETE: 1 of 3 shards lost (shard 1: process 7 was killed")
    assert "2 surviving shard(s) only" in first
    assert result.total.health.configured_level == 6.0  # ...against the whole configured load
    assert backend.calls == ["prepare", "start 0", "stop", "close"]


async def test_a_silent_shard_is_lost_after_the_silence_limit(listening: str) -> None:
    # Shard 0 ticks every collect (0.25 s of fake time); shard 1 never speaks. Silence counts
    # from t0 (1 s after the go) while the window runs.
    steps = round((1.0 + SILENT_LOST_S) / 0.25) + 1
    backend = ScriptedBackend(2, [[tick(0)]] * steps + [[done(0)]])
    result = await arun_sharded(profile(listening, "10s"), backend, 2)
    assert result.status == "incomplete"
    assert result.shards[1].status == "lost"
    assert result.shards[1].reason == f"silent for more than {SILENT_LOST_S:.0f} s"
    assert result.shards[0].status == "interrupted"


async def test_a_shard_of_another_version_is_refused(listening: str) -> None:
    backend = ScriptedBackend(2, [], version="0.0.1")
    with pytest.raises(UserInputError, match="another harborbench version"):
        await arun_sharded(profile(listening), backend, 2)
    assert backend.calls == ["prepare", "close"]


def test_more_shards_than_a_closed_loop_level_is_refused(listening: str) -> None:
    check_split(profile(listening, concurrency=3), 3)
    with pytest.raises(UserInputError, match="concurrency drops to 3, below the number of shards"):
        check_split(profile(listening, concurrency=3), 4)


async def test_after_a_stop_a_shard_finishing_its_result_is_not_called_silent(
    listening: str,
) -> None:
    """Once stopped, a shard sends no ticks while it assembles its result: only the grace
    period applies, not the silence limit."""
    quiet = [[]] * round((SILENT_LOST_S + 2.0) / 0.25)
    backend = ScriptedBackend(2, [[Lost(1, "killed")], *quiet, [done(0)]])
    result = await arun_sharded(profile(listening, "20s"), backend, 2)
    assert [s.status for s in result.shards] == ["interrupted", "lost"]
    assert result.total is not None and result.total.successes == 20


async def test_not_one_success_over_all_shards_is_a_failed_run(listening: str) -> None:
    empty = [[ShardTrial(i, synthetic_shard([[]]), 0.0) for i in range(2)]]
    with pytest.raises(AllRequestsFailedError, match=r"every measured request failed \(http_500"):
        await arun_sharded(profile(listening), ScriptedBackend(2, empty), 2)
