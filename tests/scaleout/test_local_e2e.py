"""End to end on this host: shard processes against the built-in mock (SCALEOUT.md, "Tests")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harborbench.profile import load_profile
from harborbench.result import load_result
from harborbench.scaleout.coordinator import arun_sharded
from harborbench.scaleout.local import LocalBackend

pytestmark = pytest.mark.slow

PROFILE = """\
name: {name}
target:
  mock:
    latency: {{distribution: lognormal, median: 2ms, p99: 10ms}}
    output_tokens: {{min: 4, max: 8}}
request: {{max_tokens: 8, timeout: 5s}}
load: {load}
warmup: 1s
duration: {duration}
"""


def write_profile(tmp_path: Path, name: str, load: str, duration: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(PROFILE.format(name=name, load=load, duration=duration), encoding="utf-8")
    return path


def gone(pid: int | None) -> bool:
    """The process has ended (or is a zombie awaiting its parent, which is not running load)."""
    assert pid is not None
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("load", ["{concurrency: 4}", "{rate: 150}"])
async def test_two_shards_against_the_mock_add_up_with_the_servers_counter(
    tmp_path: Path, load: str
) -> None:
    profile = load_profile(write_profile(tmp_path, "two", load, "3s"))
    result = await arun_sharded(profile, LocalBackend(), 2)
    t = result.total
    assert t is not None, [(s.status, s.reason) for s in result.shards]
    assert result.status == "complete" and not result.interrupted
    assert not [w for w in t.health.warnings if "invariant" in w], t.health.warnings
    shards = [s.trials[0] for s in result.shards]
    assert t.successes > 50 and all(s.successes > 0 for s in shards)
    assert t.successes == sum(s.successes for s in shards)
    assert t.successes == sum(r.successes for r in t.timeseries if not r.warmup)
    assert t.service_time.count == t.successes
    # The server's own counter (reset before the trial) against what the shards sent.
    server = t.connections["server_requests_total"]
    completed = t.warmup_requests + t.successes + t.failures
    assert completed <= server <= completed + t.in_flight_at_end
    assert t.health.configured_level == (4.0 if "concurrency" in load else 150.0)
    pids = [s.pid for s in result.shards]
    assert len(set(pids)) == 2 and os.getpid() not in pids
    assert result.topology is not None and result.topology.backend == "multiprocessing"
    assert all(gone(pid) for pid in pids)  # no orphan shard


def start_cli(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harborbench", "run", *args, "--reports-dir",
         str(tmp_path / "reports"), "--no-html"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        start_new_session=True,  # its own process group, as a terminal gives a command
        env={**os.environ, "COLUMNS": "240"},  # summary lines unwrapped
    )  # fmt: skip


def finish(proc: subprocess.Popen[str]) -> None:
    """Kill the run if it is still going and close its pipes."""
    proc.kill()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    proc.wait()


def wait_for_shards_running(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    """Block until the first merged progress line (every shard is in its trial)."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if "shards 2/2" in line:
            break
    else:
        raise AssertionError("the run ended before its shards reported")
    children = psutil.Process(proc.pid).children()
    return [c for c in children if "spawn_main" in " ".join(c.cmdline())]


def test_sigkill_of_one_shard_gives_exit_4_and_an_incomplete_result(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "killed", "{concurrency: 4}", "20s")
    proc = start_cli(tmp_path, str(path), "--workers", "2")
    try:
        shards = wait_for_shards_running(proc)
        assert len(shards) == 2
        victim = shards[0]
        victim.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
    finally:
        finish(proc)
    assert proc.returncode == 4, err
    assert "incomplete run" in err and "SIGKILL" in err
    # The summary: the run marked incomplete, then one line per shard under the merged figures.
    summary = " ".join(out.split())
    assert "INCOMPLETE: a shard was lost; survivors only" in summary
    assert "2 shard(s) via multiprocessing" in summary and "lost: process" in summary
    result = load_result(tmp_path / "reports" / "killed" / "result.json")
    assert result.status == "incomplete" and result.gates == []
    lost = [s for s in result.shards if s.status == "lost"]
    assert [s.pid for s in lost] == [victim.pid], [(s.status, s.reason) for s in result.shards]
    assert result.total is not None
    assert result.total.health.warnings[0].startswith("INCOMPLETE: 1 of 2 shards lost")
    assert all(gone(s.pid) for s in result.shards)


def test_ctrl_c_stops_every_shard_and_keeps_the_partial_result(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "stopped", "{rate: 100}", "30s")
    proc = start_cli(tmp_path, str(path), "--workers", "2")
    try:
        shards = wait_for_shards_running(proc)
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group
        _, err = proc.communicate(timeout=60)
    finally:
        finish(proc)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 25  # stopped early, not at the end of the 30 s window
    result = load_result(tmp_path / "reports" / "stopped" / "result.json")
    # interrupted: it did not measure all it planned (incomplete), though no shard was lost
    assert result.interrupted and result.status == "incomplete" and result.lost_shards == []
    assert [s.status for s in result.shards] == ["interrupted", "interrupted"]
    assert result.total is not None and result.total.successes > 0
    assert result.total.window_s < 25
    assert all(gone(s.pid) for s in shards)


def test_shards_stop_their_load_when_the_coordinator_dies(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "orphan", "{concurrency: 4}", "60s")
    proc = start_cli(tmp_path, str(path), "--workers", "2")
    try:
        shards = wait_for_shards_running(proc)
        assert len(shards) == 2
        proc.send_signal(signal.SIGKILL)  # no clean-up at all in the coordinator
        proc.wait(timeout=10)
        # Each shard sees end-of-file on its command pipe, stops its trial and exits.
        _, alive = psutil.wait_procs(shards, timeout=60)
    finally:
        finish(proc)  # (the mock ends by itself: it stops at end of file on its stdin)
    assert alive == []
