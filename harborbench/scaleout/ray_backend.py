"""Shards as Ray actors (``harborbench run P --ray local|auto|HOST:PORT --workers N``).

Ray (https://docs.ray.io) owns placement, code shipping and liveness; harborbench adds no
protocol of its own. Ray is an optional extra (``pip install 'harborbench[ray]'``) and is
imported only in this module, only on the ``--ray`` path.

One actor per shard (``num_cpus=1``, ``max_restarts=0``: a restarted shard would silently change
the experiment), with three concurrency slots so that ``stop`` and ``drain`` can be called while
``run`` is running. Optional placement group: ``spread`` (SPREAD) or ``strict-spread``
(STRICT_SPREAD, one shard per node). Actors die with their owner, the coordinator.

Clocks: a shard on this host (same boot id) shares our CLOCK_MONOTONIC, offset 0. On another
host the offset is estimated by ping-pong (the round with the smallest round trip is kept; its
uncertainty is at most half that round trip); above :data:`CLOCK_REFUSE_S` the run is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import threading
import time
import urllib.parse
from typing import Any

from harborbench.errors import RunFailedError, UserInputError
from harborbench.result import Topology
from harborbench.scaleout.backend import Event, Lost
from harborbench.scaleout.shard import (
    ShardInfo,
    ShardSpec,
    ShardTrial,
    Tick,
    boot_id,
    prepare_shard,
    run_shard_trial,
)
from harborbench.units import NS_PER_S

CLOCK_WARN_S = 0.005
CLOCK_REFUSE_S = 0.050
PING_ROUNDS = 7
_ADDRESS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


def import_ray(address: str) -> Any:
    """Import Ray, or explain how to install it (exit 2).

    For ``--ray local`` this sets ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` first (unless set):
    Ray reads it when imported, and without it a local node listens on every interface (``::``
    and the host's address) even with ``_node_ip_address="127.0.0.1"``.
    """
    if address == "local":
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise UserInputError(
            "--ray needs Ray: pip install 'harborbench[ray]'.",
            hint="Or drop --ray and use --workers N for shard processes on this host.",
        ) from None
    return ray


def check_ray_options(address: str, placement: str | None) -> None:
    """Validate ``--ray`` and ``--placement`` before any load.

    Raises:
        UserInputError: Ray Client (``ray://``), a malformed address, an unknown placement, or
            Ray not installed (exit 2).
    """
    if address.startswith("ray://"):
        raise UserInputError(
            f"--ray {address}: Ray Client (ray://) is not supported.",
            hint="Submit the run to the cluster instead: ray job submit --working-dir . -- "
            "harborbench run PROFILE --ray auto --workers N.",
        )
    if address not in ("local", "auto") and not _ADDRESS.match(address):
        raise UserInputError(
            f"--ray {address!r} is not local, auto or HOST:PORT.",
            hint="For example --ray local, or --ray 10.0.0.5:6379 for a running cluster's head.",
        )
    if placement not in (None, "spread", "strict-spread"):
        raise UserInputError(
            f"--placement {placement!r} is not spread or strict-spread.",
            hint="spread: shards spread over nodes; strict-spread: one shard per node.",
        )
    import_ray(address)


class ShardActor:
    """One shard inside a Ray actor: ``run`` a trial, ``stop`` it, ``drain`` its ticks."""

    def __init__(self, spec: ShardSpec) -> None:
        # Ctrl-C reaches the whole process group: the coordinator alone decides, and relays
        # a stop (signal handlers can only be set from the main thread; Ray's may be another).
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.spec = spec
        self.lock = threading.Lock()
        self.ticks: list[Tick] = []
        self.current: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self.stopping = False

    def info(self) -> ShardInfo:
        return prepare_shard(self.spec)

    def now(self) -> int:
        return time.perf_counter_ns()

    def run(self, trial: int, t0_ns: int) -> ShardTrial:
        async def main() -> ShardTrial:
            stop = asyncio.Event()
            with self.lock:
                self.current = (asyncio.get_running_loop(), stop)
                if self.stopping:
                    stop.set()
            try:
                return await run_shard_trial(self.spec, trial, t0_ns, stop, self._tick)
            finally:
                with self.lock:
                    self.current = None

        return asyncio.run(main())

    def _tick(self, tick: Tick) -> None:
        with self.lock:
            self.ticks.append(tick)

    def drain(self) -> list[Tick]:
        with self.lock:
            ticks, self.ticks = self.ticks, []
        return ticks

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            if self.current is not None:
                loop, event = self.current
                loop.call_soon_threadsafe(event.set)


class RayBackend:
    """N Ray actors, one per shard (see the module docstring)."""

    name = "ray"

    def __init__(self, address: str, placement: str | None, n: int) -> None:
        self.address = address
        self.placement = placement
        self.n = n
        self._ray = import_ray(address)
        self._own_init = False
        self._actors: list[Any] = []
        self._runs: dict[int, Any] = {}
        self._lost: set[int] = set()
        self._pg: Any = None

    def topology(self, workers: int) -> Topology:
        return Topology(
            backend="ray", workers=workers, ray_version=str(self._ray.__version__),
            ray_address=self.address, placement=self.placement,
        )  # fmt: skip

    def prepare(self, specs: list[ShardSpec], deadline_s: float) -> list[ShardInfo]:
        ray = self._ray
        if not ray.is_initialized():
            if self.address == "local":  # loopback only (see import_ray)
                ray.init(
                    address="local", num_cpus=max(self.n, os.cpu_count() or 1),
                    include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
                )  # fmt: skip
            else:
                try:
                    ray.init(address=self.address, log_to_driver=False)
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    raise UserInputError(
                        f"--ray {self.address}: no Ray cluster to join ({exc}).",
                        hint="Start one with `ray start --head`, or use --ray local.",
                    ) from None
            self._own_init = True
        if self.placement == "strict-spread":
            nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
            if nodes < self.n:
                raise UserInputError(
                    f"--placement strict-spread puts one shard per node, but the Ray cluster "
                    f"has {nodes} node(s) for {self.n} shards.",
                    hint="Use --placement spread, fewer --workers, or add nodes.",
                )
        options: dict[str, Any] = {}
        if self.placement is not None:
            from ray.util.placement_group import placement_group
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            strategy = "STRICT_SPREAD" if self.placement == "strict-spread" else "SPREAD"
            self._pg = placement_group([{"CPU": 1}] * self.n, strategy=strategy)
            try:
                ray.get(self._pg.ready(), timeout=deadline_s)
            except Exception as exc:
                raise RunFailedError(
                    f"--placement {self.placement}: Ray could not place {self.n} shards "
                    f"({type(exc).__name__}).",
                    hint="strict-spread needs one node per shard; use spread or fewer --workers.",
                ) from None
            options = {"scheduling_strategy": PlacementGroupSchedulingStrategy(self._pg)}
        actor_class = ray.remote(num_cpus=1, max_restarts=0, max_concurrency=3)(ShardActor)
        self._actors = [actor_class.options(**options).remote(spec) for spec in specs]
        try:
            infos: list[ShardInfo] = ray.get(
                [a.info.remote() for a in self._actors], timeout=deadline_s
            )
        except Exception as exc:
            raise RunFailedError(
                f"the Ray shards did not start within {deadline_s:.0f} s ({type(exc).__name__}).",
                hint="Check `ray status`: are there enough free CPUs for --workers?",
            ) from None
        local_boot = boot_id()
        loopback = urllib.parse.urlsplit(specs[0].base_url).hostname in ("127.0.0.1", "localhost")
        remote = [i.index for i in infos if i.boot_id != local_boot]
        if loopback and remote:
            raise UserInputError(
                f"shard(s) {remote} run on other hosts but the target is on this host's loopback "
                f"({specs[0].base_url}), which they cannot reach.",
                hint="Give target.base_url an address every node can reach.",
            )
        return infos

    def now(self) -> int:
        return time.perf_counter_ns()

    def clock_offsets(self, infos: list[ShardInfo]) -> list[tuple[float, float]]:
        local_boot = boot_id()
        out = []
        for info, actor in zip(infos, self._actors, strict=True):
            if info.boot_id == local_boot:
                out.append((0.0, 0.0))
                continue
            best: tuple[int, float] | None = None
            for _ in range(PING_ROUNDS):
                t1 = time.perf_counter_ns()
                remote = self._ray.get(actor.now.remote())
                t2 = time.perf_counter_ns()
                if best is None or t2 - t1 < best[0]:
                    best = (t2 - t1, (remote - (t1 + t2) / 2) / NS_PER_S)
            assert best is not None
            uncertainty = best[0] / 2e9
            if uncertainty > CLOCK_REFUSE_S:
                raise RunFailedError(
                    f"shard {info.index} on {info.host}: clock offset uncertain by "
                    f"{uncertainty * 1e3:.1f} ms (> {CLOCK_REFUSE_S * 1e3:.0f} ms).",
                    hint="The network between the nodes is too slow for one common window.",
                )
            out.append((best[1], uncertainty))
        return out

    def start(self, trial: int, t0_ns: list[int]) -> None:
        self._runs = {
            i: a.run.remote(trial, t0_ns[i])
            for i, a in enumerate(self._actors)
            if i not in self._lost
        }

    def stop(self) -> None:
        for i, actor in enumerate(self._actors):
            if i not in self._lost:
                actor.stop.remote()

    def collect(self, timeout_s: float) -> list[Event]:
        ray = self._ray
        events: list[Event] = []
        refs = {ref: i for i, ref in self._runs.items()}
        done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
        for ref in done:
            i = refs[ref]
            del self._runs[i]
            try:
                events.append(ray.get(ref))
            except Exception as exc:  # RayActorError, or an error inside the shard
                self._lost.add(i)
                events.append(Lost(i, f"Ray actor failed: {type(exc).__name__}"))
        for i, actor in enumerate(self._actors):
            if i in self._lost:
                continue
            try:
                events.extend(ray.get(actor.drain.remote(), timeout=5.0))
            except Exception as exc:
                self._lost.add(i)
                self._runs.pop(i, None)
                events.append(Lost(i, f"Ray actor unreachable: {type(exc).__name__}"))
        return events

    def close(self) -> None:
        ray = self._ray
        for actor in self._actors:
            with contextlib.suppress(Exception):  # already dead
                ray.kill(actor, no_restart=True)
        if self._pg is not None:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(self._pg)
        if self._own_init:
            ray.shutdown()
