"""How far does ``run --workers N`` (and ``--ray local``) raise the ceiling of one host?

One built-in mock at zero latency, in its own process, started once and shared by every
contender (so the target is the same), and a closed loop of ``--concurrency`` workers (global:
split over the shards) for ``--seconds`` after 1 s of warmup. Contenders, measured side by side
in one run, interleaved (the order rotates every round so that drift cancels out):

* ``workers=1``: today's in-process engine (``harborbench run P``);
* ``workers=2``: two shard processes (``--workers 2``, multiprocessing spawn);
* ``workers=auto``: one shard per usable core (``--workers auto``; on a 2-core box it is 2);
* ``ray local``: two Ray actors on a private one-node Ray instance (``--ray local --workers 2``),
  started once before the rounds (its 10-20 s start-up is not in any figure); left out with
  ``--no-ray`` or when Ray is not installed.

Per contender and round: the merged throughput (successful ops/s over the common window, the
run's own ``total.throughput_ops``), its ratio to ``workers=1`` of the same round, the shards'
summed CPU (% of one core) and the mock's CPU (% of one core, from its process's CPU times
sampled at the first and last progress update of the measurement window).
Summaries are medians with min-max over the rounds; the load average is printed before and after.

Usage::

    .venv/bin/python benchmarks/scaleout.py [--seconds 6] [--rounds 3] [--concurrency 64]
        [--no-ray]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import psutil

from harborbench.engine.progress import Progress
from harborbench.engine.runner import arun
from harborbench.mockserver.process import MockServer
from harborbench.mockserver.settings import MockSettings
from harborbench.profile import Profile
from harborbench.result import RunResult
from harborbench.scaleout.coordinator import arun_sharded, resolve_workers
from harborbench.scaleout.local import LocalBackend

CLIENT = {"performance_mode": "optimized", "max_concurrent_requests": 1000}
Runner = Callable[[Profile, Callable[[Progress], None]], Awaitable[RunResult]]


def profile_for(base_url: str, concurrency: int, seconds: float) -> Profile:
    return Profile.model_validate(
        {
            "name": "scaleout-bench",
            "target": {"base_url": base_url},
            "request": {"max_tokens": 16, "prompt_tokens": 16},
            "client": CLIENT,
            "load": {"concurrency": concurrency},
            "warmup": "1s",
            "duration": f"{seconds}s",
        }
    )


def contenders(use_ray: bool) -> dict[str, Runner]:
    auto = resolve_workers("auto")
    out: dict[str, Runner] = {
        "workers=1": lambda p, cb: arun(p, progress=cb),
        "workers=2": lambda p, cb: arun_sharded(p, LocalBackend(), 2, progress=cb),
        f"workers=auto({auto})": lambda p, cb: arun_sharded(p, LocalBackend(), auto, progress=cb),
    }
    if use_ray:
        from harborbench.scaleout.ray_backend import RayBackend

        out["ray local x2"] = lambda p, cb: arun_sharded(
            p, RayBackend("local", None, 2), 2, progress=cb
        )
    return out


def start_ray() -> bool:
    """A private one-node Ray instance on loopback, reused by every Ray round."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        print("Ray is not installed: the ray contender is left out (pip install -e '.[ray]').")
        return False
    t = time.monotonic()
    ray.init(address="local", num_cpus=2, include_dashboard=False,
             _node_ip_address="127.0.0.1", log_to_driver=False)  # fmt: skip
    print(f"Ray {ray.__version__} started in {time.monotonic() - t:.1f} s (not in any figure)")
    return True


def mark(p: Progress, marks: list[tuple[float, float]], mock: psutil.Process) -> None:
    """Progress callback: note the time and the mock's CPU seconds while measuring."""
    if p.phase == "measure":
        cpu = mock.cpu_times()
        marks.append((time.monotonic(), cpu.user + cpu.system))


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} [{min(values):.2f}-{max(values):.2f}]"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}; usable cores {resolve_workers('auto')}")
    use_ray = not args.no_ray and start_ray()
    runners = contenders(use_ray)
    names = list(runners)
    figures: dict[str, dict[str, list[float]]] = {
        n: {"ops": [], "ratio": [], "cpu": [], "mock_cpu": []} for n in names
    }
    with MockServer(MockSettings()) as server:
        mock = psutil.Process(server.pid)
        profile = profile_for(server.base_url, args.concurrency, args.seconds)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            ops_this_round: dict[str, float] = {}
            for name in order:
                marks: list[tuple[float, float]] = []  # (time, mock CPU s) while measuring
                result = await runners[name](profile, lambda p, m=marks: mark(p, m, mock))
                assert result.total is not None and len(marks) >= 2
                t = result.total
                mock_cpu = 100 * (marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0])
                ops_this_round[name] = t.throughput_ops
                figures[name]["ops"].append(t.throughput_ops)
                figures[name]["cpu"].append(t.cpu.cpu_percent_mean)
                figures[name]["mock_cpu"].append(mock_cpu)
                print(f"round {r + 1} {name:16s} {t.throughput_ops:9.1f} ops/s  shards CPU "
                      f"{t.cpu.cpu_percent_mean:5.0f}%  mock CPU {mock_cpu:4.0f}%")  # fmt: skip
            for name in names:
                figures[name]["ratio"].append(ops_this_round[name] / ops_this_round["workers=1"])
    print()
    print(f"{'contender':18s} {'ops/s median [min-max]':>28s} {'x workers=1':>22s} "
          f"{'shards CPU %':>22s} {'mock CPU %':>26s}")  # fmt: skip
    for name in names:
        f = figures[name]
        print(f"{name:18s} {summary(f['ops']):>28s} {summary(f['ratio']):>22s} "
              f"{summary(f['cpu']):>22s} {summary(f['mock_cpu']):>26s}")  # fmt: skip
    print(f"\nload average after: {os.getloadavg()}")
    if use_ray:
        import ray

        ray.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
