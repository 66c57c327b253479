"""Ray backend on one node, started once per test session and bound to 127.0.0.1 only.

These machines allow loopback traffic only. Without ``_node_ip_address="127.0.0.1"`` and
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` Ray binds its processes to the host's interface address;
without ``address="local"`` it would attach to any cluster already started on the host.
CI installs the ``ray`` extra (``.ci/run``), where a missing Ray is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from harborbench.errors import UserInputError
from harborbench.profile import load_profile
from harborbench.scaleout.coordinator import arun_sharded
from tests.scaleout.test_local_e2e import gone, write_profile

pytestmark = pytest.mark.slow


LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1"}  # the second: IPv4 loopback on an IPv6 socket


def ray_listeners() -> list[tuple[str, int, str]]:
    """Listening sockets of this process and its children (Ray's node processes): ``ss -tlnp``."""
    mine = {p.pid: p for p in psutil.Process().children(recursive=True)}
    mine[os.getpid()] = psutil.Process()
    return [
        (c.laddr.ip, c.laddr.port, mine[c.pid].name())
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in mine
    ]


def is_ray(p: psutil.Process) -> bool:
    """A process of the Ray node (GCS, raylet, workers, agents) started by this test process."""
    with contextlib.suppress(psutil.Error):
        return "ray" in " ".join(p.cmdline()) or p.name().startswith(("ray", "gcs_server"))
    return False


@pytest.fixture(scope="session")
def ray_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    patch = pytest.MonkeyPatch()
    patch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # read when Ray is imported
    patch.setenv("RAY_TMPDIR", str(tmp_path_factory.mktemp("ray")))
    if os.environ.get("CI"):
        import ray  # CI installs harborbench[ray]: a missing Ray fails there
    else:
        ray = pytest.importorskip("ray", reason="pip install -e '.[ray]' to run the Ray test")
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
        log_to_driver=False,
    )  # fmt: skip
    node = [p for p in psutil.Process().children(recursive=True) if is_ray(p)]
    try:
        listening = ray_listeners()
        assert len(listening) >= 2, "Ray's GCS and raylet should be listening"
        assert {ip for ip, _, _ in listening} <= LOOPBACK, listening  # loopback only
        yield ray
    finally:
        ray.shutdown()
        patch.undo()
    assert node, "no Ray node process found"
    _, alive = psutil.wait_procs(node, timeout=30)  # shutdown signals them; they exit soon after
    assert [p.pid for p in alive if not gone(p.pid)] == []  # no Ray process left behind


async def test_two_ray_actors_against_the_mock_merge_into_one_result(
    ray_node: Any, tmp_path: Path
) -> None:
    from harborbench.scaleout.ray_backend import RayBackend

    profile = load_profile(write_profile(tmp_path, "ray", "{rate: 100}", "2s"))
    result = await arun_sharded(profile, RayBackend("local", "spread", 2), 2)
    t = result.total
    assert t is not None, [(s.status, s.reason) for s in result.shards]
    assert result.status == "complete" and not result.interrupted
    assert not [w for w in t.health.warnings if "invariant" in w], t.health.warnings
    assert t.successes == sum(s.trials[0].successes for s in result.shards) > 50
    server = t.connections["server_requests_total"]
    completed = t.warmup_requests + t.successes + t.failures
    assert completed <= server <= completed + t.in_flight_at_end
    assert result.topology is not None and result.topology.backend == "ray"
    assert result.topology.ray_version == ray_node.__version__
    assert result.topology.placement == "spread"
    assert [s.clock_offset_s for s in result.shards] == [0.0, 0.0]  # one host, one clock
    pids = {s.pid for s in result.shards}
    assert len(pids) == 2 and os.getpid() not in pids
    assert ray_node.is_initialized()  # the session's node is reused, not shut down
    # No orphan actor: the shards' actor processes end once the run is over.
    procs = []
    for pid in pids:
        assert pid is not None
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(pid))
    psutil.wait_procs(procs, timeout=30)
    assert all(gone(pid) for pid in pids)


async def test_strict_spread_with_more_shards_than_nodes_is_refused(
    ray_node: Any, tmp_path: Path
) -> None:
    from harborbench.scaleout.ray_backend import RayBackend

    profile = load_profile(write_profile(tmp_path, "strict", "{rate: 10}", "1s"))
    with pytest.raises(UserInputError, match="has 1 node\\(s\\) for 2 shards"):
        await arun_sharded(profile, RayBackend("local", "strict-spread", 2), 2)
    assert ray_node.is_initialized()
