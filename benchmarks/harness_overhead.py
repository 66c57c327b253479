"""What does ``harborbench run`` cost per request, against a bare aiohttp loop?

Against the built-in mock at zero latency (in its own process), three contenders measured side
by side in one run, interleaved (the order rotates every round so that drift cancels out):

* ``bare``: a bare ``aiohttp`` loop that posts the same request and parses the JSON;
* ``optimized``: ``harborbench`` running the same load through the optimized client;
* ``traditional``: the same through the traditional (thread pool) client.

Two measurements per contender and round:

1. **ceiling**: a closed loop of N workers for T seconds after 1 s of warmup: completed ops/s, and
   **CPU per request** (user + system CPU seconds of this process over the window / requests
   completed in it; the mock's CPU is in another process and not counted). For harborbench the
   figures are the run's own (``total.throughput_ops`` and ``total.cpu.ops_per_cpu_second``), so
   they include the engine's bookkeeping: what a user of ``harborbench run`` pays.
2. **added latency at a fixed rate** (``--rate``, default 1000 ops/s): p50 service time of an open
   loop on the same absolute schedule.

Ratios are taken per round (contender / bare of the same round), then summarised as the median
with min-max over the rounds; the load average is printed before and after. Issue 15's goals:
optimized CPU per request <= the bare loop's (ratio <= 1.0), ceiling >= 0.95x the bare loop.

Usage::

    .venv/bin/python benchmarks/harness_overhead.py [--seconds 5] [--rounds 5] [--workers 32]
        [--loops asyncio,uvloop] [--only bare,optimized,traditional] [--skip-latency]

``--loops asyncio,uvloop`` measures every contender on both event loops, interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import numpy as np

from harborbench.engine.runner import arun
from harborbench.engine.schedule import NS_PER_S, arrival_offsets_ns, build_plan
from harborbench.mockserver.process import MockServer
from harborbench.mockserver.settings import MockSettings
from harborbench.profile import load_profile_dict

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
WARMUP_S = 1.0
CLIENTS = {
    "optimized": {"performance_mode": "optimized", "max_concurrent_requests": 100},
    "traditional": {"performance_mode": "basic", "max_concurrent_requests": 100},
}


async def bare_closed(url: str, workers: int, seconds: float) -> tuple[float, float]:
    """(ops/s, CPU µs per request) of a bare aiohttp closed loop over the window after warmup."""
    done = 0
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=workers), headers={"Authorization": "Bearer x"}
    ) as session:
        start = time.perf_counter()
        end = start + WARMUP_S + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < end:
                async with session.post(url + "/chat/completions", json=BODY) as resp:
                    data = await resp.json()
                    assert data["choices"][0]["message"]["content"]
                    done += 1

        tasks = [asyncio.create_task(worker()) for _ in range(workers)]
        await asyncio.sleep(WARMUP_S)
        done0, cpu0, t0 = done, time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        done1, cpu1, t1 = done, time.process_time(), time.perf_counter()
        await asyncio.gather(*tasks)
    n = done1 - done0
    return n / (t1 - t0), (cpu1 - cpu0) / n * 1e6


async def bare_open(url: str, rate: float, seconds: float) -> float:
    """p50 service time (s) of a bare aiohttp open loop on an absolute schedule."""
    plan = build_plan(warmup_s=0, levels=[(seconds, rate)], kind="open")
    lat: list[int] = []
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100), headers={"Authorization": "Bearer x"}
    ) as session:

        async def one() -> None:
            t0 = time.perf_counter_ns()
            async with session.post(url + "/chat/completions", json=BODY) as resp:
                await resp.json()
            lat.append(time.perf_counter_ns() - t0)

        start = time.perf_counter_ns()
        tasks = []
        for off in arrival_offsets_ns(plan):
            delay = start + off - time.perf_counter_ns()
            if delay > 0:
                await asyncio.sleep(delay / NS_PER_S)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return float(np.percentile(lat, 50)) / NS_PER_S


def profile(base_url: str, client: str, load: dict[str, object], seconds: float) -> Any:
    return load_profile_dict(
        {
            "name": "overhead",
            "target": {"base_url": base_url},
            "request": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 16},
            "client": CLIENTS[client],
            "load": load,
            "warmup": f"{WARMUP_S:g}s",
            "duration": f"{seconds}s",
        }
    )


async def engine_closed(url: str, client: str, workers: int, seconds: float) -> tuple[float, float]:
    """(ops/s, CPU µs per request) of ``harborbench run`` in a closed loop."""
    res = await arun(profile(url, client, {"concurrency": workers}, seconds))
    assert res.total is not None and res.total.cpu.ops_per_cpu_second
    return res.total.throughput_ops, 1e6 / res.total.cpu.ops_per_cpu_second


async def engine_open(url: str, client: str, rate: float, seconds: float) -> float:
    """p50 service time (s) of ``harborbench run`` in an open loop."""
    res = await arun(profile(url, client, {"rate": rate}, seconds))
    assert res.total is not None and res.total.service_time.p50_s is not None
    return res.total.service_time.p50_s


def summary(values: list[float], fmt: str) -> str:
    """``median (min-max)`` of a list."""
    return (
        f"{format(statistics.median(values), fmt)} "
        f"({format(min(values), fmt)}-{format(max(values), fmt)})"
    )


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def run_on(loop: str, coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` on a fresh event loop of the given kind (asyncio or uvloop)."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def main(args: argparse.Namespace) -> None:
    kinds = [n for n in ("bare", "optimized", "traditional") if n in args.only]
    names = [f"{k}/{lp}" if len(args.loops) > 1 else k for lp in args.loops for k in kinds]
    spec = {
        (f"{k}/{lp}" if len(args.loops) > 1 else k): (k, lp) for lp in args.loops for k in kinds
    }
    ops: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    p50: dict[str, list[float]] = {n: [] for n in names}
    print(f"load average before: {load_average()} ({os.cpu_count()} CPUs)")
    with MockServer(MockSettings()) as server:
        base = server.base_url
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                kind, loop = spec[name]
                closed: Callable[[], Coroutine[Any, Any, tuple[float, float]]] = (
                    (lambda: bare_closed(base, args.workers, args.seconds))
                    if kind == "bare"
                    else (lambda k=kind: engine_closed(base, k, args.workers, args.seconds))  # type: ignore[misc]
                )
                o, c = run_on(loop, closed())
                ops[name].append(o)
                cpu[name].append(c)
                if not args.skip_latency:
                    p50[name].append(
                        run_on(loop, bare_open(base, args.rate, args.seconds))
                        if kind == "bare"
                        else run_on(loop, engine_open(base, kind, args.rate, args.seconds))
                    )
            line = "; ".join(
                f"{n} {ops[n][-1]:,.0f} ops/s {cpu[n][-1]:.1f} µs/req"
                + (f" p50 {p50[n][-1] * 1e3:.3f} ms" if p50[n] else "")
                for n in names
            )
            print(f"round {r + 1} (from {order[0]}): {line}", flush=True)
    print(f"load average after: {load_average()}")
    print()
    print(
        f"ceiling, closed loop of {args.workers} workers, {args.seconds:g} s window "
        f"x {args.rounds} rounds; median (min-max):"
    )
    for n in names:
        print(f"  {n:20} {summary(ops[n], ',.0f'):>26} ops/s   {summary(cpu[n], '.1f'):>22} µs/req")
    print("ratios to the bare loop (same event loop) of the same round, median (min-max):")
    for n in names:
        kind, loop = spec[n]
        ref = next((m for m in names if spec[m] == ("bare", loop)), None)
        if kind == "bare" or ref is None:
            continue
        ceil = [a / b for a, b in zip(ops[n], ops[ref], strict=True)]
        cost = [a / b for a, b in zip(cpu[n], cpu[ref], strict=True)]
        print(
            f"  {n:20} ceiling {summary(ceil, '.2f')} (goal >= 0.95)"
            f"   CPU per request {summary(cost, '.2f')} (goal <= 1.00)"
        )
    if len(args.loops) > 1:
        print("uvloop against asyncio, same contender and round, CPU per request:")
        for k in kinds:
            a, u = f"{k}/asyncio", f"{k}/uvloop"
            if a in cpu and u in cpu:
                ratio = [x / y for x, y in zip(cpu[u], cpu[a], strict=True)]
                print(f"  {k:20} {summary(ratio, '.2f')}")
    if not args.skip_latency:
        print(f"open loop at {args.rate:g} ops/s, p50 service time, median (min-max):")
        for n in names:
            print(f"  {n:20} {summary([v * 1e3 for v in p50[n]], '.3f')} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument(
        "--loops", default="asyncio", help="asyncio, uvloop or asyncio,uvloop (side by side)"
    )
    parser.add_argument("--only", default="bare,optimized,traditional")
    parser.add_argument("--skip-latency", action="store_true")
    ns = parser.parse_args()
    ns.only = set(ns.only.split(","))
    ns.loops = ns.loops.split(",")
    main(ns)
