"""Does completed throughput plateau, or collapse, as the offered open-loop rate passes capacity?

Issue 15's scenario: at 5000 ops/s offered (above what the client can do on its core) the
engine used to queue up to 50,000 tasks, RSS doubled, and completed throughput in the window fell
to 476-764 ops/s. With ``load.max_outstanding`` (default 4 x the client's
``max_concurrent_requests``) arrivals beyond the backlog are dropped and counted, and the client
keeps working at its capacity.

The built-in mock (its own process, 1 ms latency) is driven open loop at each offered rate in
``--rates`` by the optimized client, the rates interleaved (order reversed every other round),
``--rounds`` times. Per rate: completed ops/s, dropped arrivals, service p99, RSS growth, whether
the generator was flagged saturated, and the measuring process's CPU time per completed op (less
moved by neighbours than throughput; it shows work that grows with the offered rate): medians
with min-max, and the load average before and after. The completed ops/s must not fall as the
offered rate rises past capacity.

Usage::

    .venv/bin/python benchmarks/overload.py [--seconds 5] [--rounds 3] [--rates 1000,2000,...]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
from typing import Any

from harborbench.engine.runner import arun
from harborbench.mockserver.process import MockServer
from harborbench.mockserver.settings import MockSettings
from harborbench.profile import load_profile_dict


def profile(base_url: str, rate: float, args: argparse.Namespace) -> Any:
    load: dict[str, Any] = {"rate": rate}
    if args.max_outstanding:
        load["max_outstanding"] = args.max_outstanding
    return load_profile_dict(
        {
            "name": "overload",
            "target": {"base_url": base_url},
            "request": {
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 16,
                "timeout": "10s",
            },
            "client": {"performance_mode": "optimized", "max_concurrent_requests": 100},
            "load": load,
            "warmup": "1s",
            "duration": f"{args.seconds}s",
        }
    )


def summary(values: list[float], fmt: str) -> str:
    med = statistics.median(values)
    return f"{format(med, fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


async def main(args: argparse.Namespace) -> None:
    rates = [float(r) for r in args.rates.split(",")]
    settings = MockSettings.model_validate({"latency": "1ms", "seed": 1})
    rows: dict[float, dict[str, list[float]]] = {r: {} for r in rates}
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with MockServer(settings) as server:
        for k in range(args.rounds):
            order = rates if k % 2 == 0 else list(reversed(rates))
            for rate in order:
                total = (await arun(profile(server.base_url, rate, args))).total
                assert total is not None
                h = total.health
                row = {
                    "completed ops/s": total.throughput_ops,
                    # CPU of this process per completed op: less moved by neighbours than
                    # throughput, and it shows any work that grows with the offered rate
                    "CPU us/op": 1e6 / (total.cpu.ops_per_cpu_second or math.inf),
                    "dropped": float(h.unsent),
                    "service p99 ms": (total.service_time.p99_s or 0.0) * 1e3,
                    "RSS growth %": total.memory.growth_pct,
                    "saturated": float(h.generator_saturated),
                }
                for key, value in row.items():
                    rows[rate].setdefault(key, []).append(value)
                print(
                    f"round {k + 1} offered {rate:>7,.0f}: "
                    + ", ".join(f"{key} {value:,.4g}" for key, value in row.items()),
                    flush=True,
                )
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n{args.seconds:g} s window x {args.rounds} rounds; median (min-max):")
    print(
        f"  {'offered ops/s':>14}  {'completed ops/s':>24}  {'CPU us/op':>20}  {'dropped':>22}  "
        f"{'p99 ms':>20}"
    )
    for rate, cols in rows.items():
        print(
            f"  {rate:>14,.0f}  {summary(cols['completed ops/s'], ',.0f'):>24}  "
            f"{summary(cols['CPU us/op'], ',.0f'):>20}  {summary(cols['dropped'], ',.0f'):>22}  "
            f"{summary(cols['service p99 ms'], ',.1f'):>20}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rates", default="1000,2000,4000,6000,8000,10000")
    parser.add_argument("--max-outstanding", type=int, default=0, help="0: the default bound")
    asyncio.run(main(parser.parse_args()))
