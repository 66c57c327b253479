"""The interface between the coordinator and the shards: five calls, whatever runs the shards.

:class:`Backend` is implemented by :class:`harborbench.scaleout.local.LocalBackend` (processes on
this host, stdlib ``multiprocessing`` with spawn) and
:class:`harborbench.scaleout.ray_backend.RayBackend` (one Ray actor per shard). The coordinator
(:mod:`harborbench.scaleout.coordinator`) calls ``prepare`` once, then per trial ``start`` and
``collect`` until every shard has answered or is lost, ``stop`` to end early, and always
``close``, which leaves no shard process or actor behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from harborbench.result import Topology
from harborbench.scaleout.shard import ShardInfo, ShardSpec, ShardTrial, Tick


@dataclass(frozen=True, slots=True)
class Lost:
    """A shard that died (process exit, actor error) or could not be reached."""

    index: int
    reason: str


Event = ShardInfo | Tick | ShardTrial | Lost


class Backend(Protocol):
    """Starts shards, relays the go and the stop, and hands their reports to the coordinator."""

    name: str

    def topology(self, workers: int) -> Topology:
        """How this backend runs ``workers`` shards, as recorded in the result."""
        ...

    def prepare(self, specs: list[ShardSpec], deadline_s: float) -> list[ShardInfo]:
        """Start every shard and wait until each is ready (imported, plan built).

        Raises:
            RunFailedError: a shard died or was not ready within ``deadline_s`` (exit 4).
        """
        ...

    def now(self) -> int:
        """The coordinator's clock, ns (``time.perf_counter_ns``)."""
        ...

    def clock_offsets(self, infos: list[ShardInfo]) -> list[tuple[float, float]]:
        """Per shard: (its clock minus ours, uncertainty), seconds."""
        ...

    def start(self, trial: int, t0_ns: list[int]) -> None:
        """Start trial ``trial`` on every shard at ``t0_ns[i]`` on shard i's own clock."""
        ...

    def stop(self) -> None:
        """Ask every shard to end its trial now (it still sends its partial result)."""
        ...

    def collect(self, timeout_s: float) -> list[Event]:
        """Reports that arrived within ``timeout_s`` (possibly none)."""
        ...

    def close(self) -> None:
        """End every shard; afterwards no shard process or actor is left."""
        ...
