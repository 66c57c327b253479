"""What does each client mode do against a target that leaves some answers hanging?

Issue 12's scenario: the built-in mock (its own process) answers after a lognormal latency
(median 20 ms) and leaves ``--hang-rate`` (10%) of requests without an answer; the client's
``timeout_s`` is 2 s; a closed loop of ``--workers`` (20) workers. Before the fix the optimized
client retried timeouts with a fresh timeout each time (single calls took over 7 s) and its
adaptive (AIMD) limit fell to about 10, for 10 ops/s against the traditional mode's 91.

The modes run interleaved, ``--rounds`` times, and per round the script prints completed ops/s,
timeouts, the client's retries, and for the optimized mode its adaptive limit (final value and
decreases) and the timeouts it classed as hangs. Medians with min-max, and the load average.

Usage::

    .venv/bin/python benchmarks/hangs.py [--seconds 10] [--rounds 3] [--workers 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
from typing import Any

from harborbench.engine.runner import arun
from harborbench.mockserver.process import MockServer
from harborbench.mockserver.settings import MockSettings
from harborbench.profile import load_profile_dict

CLIENTS = {
    "optimized": {"performance_mode": "optimized", "max_concurrent_requests": 100},
    "traditional": {"performance_mode": "basic", "max_concurrent_requests": 100},
}


def profile(base_url: str, client: str, args: argparse.Namespace) -> Any:
    return load_profile_dict(
        {
            "name": "hangs",
            "target": {"base_url": base_url},
            "request": {
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 16,
                "timeout": "2s",
            },
            "client": CLIENTS[client],
            "load": {"concurrency": args.workers},
            "warmup": "2s",
            "duration": f"{args.seconds}s",
        }
    )


def summary(values: list[float], fmt: str) -> str:
    med = statistics.median(values)
    return f"{format(med, fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


async def main(args: argparse.Namespace) -> None:
    settings = MockSettings.model_validate(
        {
            "latency": {"distribution": "lognormal", "median": "20ms", "p99": "60ms"},
            "faults": {"hang_rate": args.hang_rate},
            "seed": 1,
        }
    )
    rows: dict[str, dict[str, list[float]]] = {n: {} for n in CLIENTS}
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with MockServer(settings) as server:
        for r in range(args.rounds):
            order = list(CLIENTS) if r % 2 == 0 else list(reversed(CLIENTS))
            for name in order:
                res = await arun(profile(server.base_url, name, args))
                total = res.total
                assert total is not None
                stats = res.trials[-1].client_statistics
                manager = stats.get("concurrency_manager", {})
                proc = stats.get("request_processor", {})
                row = {
                    "ops/s": total.throughput_ops,
                    "timeouts": float(total.failures_by_kind.get("timeout", 0)),
                    "retries": float(proc.get("retries", 0)),
                    "limit": float(manager.get("limit", 100)),
                    "limit decreases": float(manager.get("limit_decreases", 0)),
                    "timeouts as hangs": float(manager.get("timeouts_as_hangs", 0)),
                    "p99 s": total.service_time.p99_s or 0.0,
                    "max s": total.service_time.max_s or 0.0,
                }
                for k, v in row.items():
                    rows[name].setdefault(k, []).append(v)
                print(
                    f"round {r + 1} {name:11}: "
                    + ", ".join(f"{k} {v:,.3g}" for k, v in row.items()),
                    flush=True,
                )
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"\n{args.workers} workers, {args.hang_rate:.0%} of answers hang, timeout 2 s, "
        f"{args.seconds:g} s window x {args.rounds} rounds; median (min-max):"
    )
    for name, cols in rows.items():
        print(f"  {name}")
        for k, values in cols.items():
            print(f"    {k:18} {summary(values, ',.3g')}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--hang-rate", type=float, default=0.1)
    asyncio.run(main(parser.parse_args()))
