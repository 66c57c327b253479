"""Streaming at the ceiling: streams/s and CPU per chunk, the client's modes against a bare loop.

Against the built-in mock (its own process) with no delays, so that a closed loop of N workers
finds the ceiling, three contenders are measured in interleaved rounds (A B C, A B C, ...) so
that machine drift cancels out:

* ``bare``: a bare aiohttp streaming loop: post, read the body line by line, ``json.loads``
  each ``data:`` line until ``[DONE]``. The least a Python client can do.
* ``optimized``: ``harborbench`` running the same load through the optimized client.
* ``traditional``: the same through the traditional client (blocking HTTP from threads).

Figures per contender: streams/s completed in the window, content chunks/s, and CPU time of
the measuring process per content chunk (µs; the mock's process is not counted). The engine's
figures come from its result (window only: CPU seconds / content chunks received); the bare
loop measures the same window after the same warmup. Prints medians with min-max over the
rounds, the ratios to the bare loop from the same rounds, each loop's event-loop lag p99 (a 50 ms
timer's delay, as the engine measures it) and the load average (the machine is
shared: a busy machine lowers every ceiling).

Usage::

    .venv/bin/python benchmarks/streaming.py [--seconds 5] [--rounds 3] [--workers 32]
        [--tokens 64] [--tokens-per-chunk 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from harborbench.engine.runner import arun
from harborbench.mockserver.process import MockServer
from harborbench.mockserver.settings import MockSettings
from harborbench.profile import load_profile_dict

MESSAGES = [{"role": "user", "content": "hi"}]


async def bare_loop(url: str, workers: int, warmup_s: float, seconds: float) -> dict[str, float]:
    """A bare aiohttp streaming closed loop; counts what ends inside the window."""
    body = {
        "model": "gpt-4o-mini",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    streams = chunks = 0
    measuring = False
    start = time.perf_counter()
    window_start = start + warmup_s
    end = window_start + seconds
    headers = {"Authorization": "Bearer x", "Accept": "text/event-stream"}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=workers), headers=headers
    ) as session:

        async def worker() -> None:
            nonlocal streams, chunks
            while time.perf_counter() < end:
                got = 0
                async with session.post(url + "/chat/completions", json=body) as resp:
                    async for line in resp.content:
                        if not line.startswith(b"data:"):
                            continue
                        payload = line[5:].strip()
                        if payload == b"[DONE]":
                            break
                        chunk = json.loads(payload)
                        choices = chunk.get("choices")
                        if choices and choices[0].get("delta", {}).get("content"):
                            got += 1
                if measuring and time.perf_counter() < end:
                    streams += 1
                    chunks += got

        lags: list[float] = []

        async def lag_monitor() -> None:  # the engine's loop-lag rule: a 50 ms timer's delay
            while True:
                before = time.perf_counter()
                await asyncio.sleep(0.05)
                lags.append(time.perf_counter() - before - 0.05)

        tasks = [asyncio.create_task(worker()) for _ in range(workers)]
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        measuring = True
        monitor = asyncio.create_task(lag_monitor())
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        cpu1, t1 = time.process_time(), time.perf_counter()
        monitor.cancel()
        await asyncio.gather(*tasks)
    window = t1 - t0
    lags.sort()
    return {
        "loop_lag_p99_ms": lags[max(0, int(len(lags) * 0.99) - 1)] * 1e3 if lags else 0.0,
        "streams_s": streams / window,
        "chunks_s": chunks / window,
        "cpu_us_per_chunk": (cpu1 - cpu0) / chunks * 1e6 if chunks else float("nan"),
    }


async def engine(
    url: str, mode: str, workers: int, warmup_s: float, seconds: float, tokens: int
) -> dict[str, float]:
    """harborbench with the optimized or traditional client, closed loop of streams."""
    client: dict[str, Any] = {"performance_mode": "optimized", "max_concurrent_requests": 100}
    if mode == "traditional":
        client["concurrency_optimization"] = {"enabled": False}
    profile = load_profile_dict(
        {
            "name": f"stream-{mode}",
            "target": {"base_url": url},
            "request": {"messages": MESSAGES, "max_tokens": tokens, "stream": True},
            "client": client,
            "load": {"concurrency": workers},
            "warmup": f"{warmup_s}s",
            "duration": f"{seconds}s",
        }
    )
    result = await arun(profile)
    t = result.total
    assert t is not None and t.stream is not None
    chunks = t.stream.output_chunks
    return {
        "streams_s": t.throughput_ops,
        "chunks_s": chunks / t.window_s,
        "cpu_us_per_chunk": t.cpu.cpu_seconds / chunks * 1e6 if chunks else float("nan"),
        "loop_lag_p99_ms": (t.health.loop_lag_p99_s or 0.0) * 1e3,
    }


def _spread(values: list[float], fmt: Callable[[float], str]) -> str:
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--tokens-per-chunk", type=int, default=1)
    args = parser.parse_args()
    settings = MockSettings.model_validate(
        {
            "latency": "0ms",
            "output_tokens": args.tokens,
            "stream": {
                "ttft": "0ms",
                "inter_token": "0ms",
                "tokens_per_chunk": args.tokens_per_chunk,
            },
        }
    )
    names = ("bare", "optimized", "traditional")
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    load_before = os.getloadavg()
    with MockServer(settings) as server:
        url = server.base_url
        for r in range(args.rounds):
            for name in names:
                if name == "bare":
                    fig = await bare_loop(url, args.workers, args.warmup, args.seconds)
                else:
                    fig = await engine(
                        url, name, args.workers, args.warmup, args.seconds, args.tokens
                    )
                runs[name].append(fig)
                print(
                    f"round {r + 1} {name:12s} {fig['streams_s']:8,.0f} streams/s "
                    f"{fig['chunks_s']:9,.0f} chunks/s {fig['cpu_us_per_chunk']:7.1f} µs CPU/chunk"
                )
    load_after = os.getloadavg()
    print()
    print(
        f"closed loop, {args.workers} workers, {args.tokens} tokens in chunks of "
        f"{args.tokens_per_chunk}, {args.seconds:g} s window x {args.rounds} rounds; "
        "median (min-max)"
    )
    for name in names:
        figs = runs[name]
        print(
            f"  {name:12s} streams/s {_spread([f['streams_s'] for f in figs], '{:,.0f}'.format)}"
            f"   CPU/chunk {_spread([f['cpu_us_per_chunk'] for f in figs], '{:.1f}'.format)} µs"
        )
    for name in names[1:]:
        ceil = [
            a["streams_s"] / b["streams_s"] for a, b in zip(runs[name], runs["bare"], strict=True)
        ]
        cpu = [
            a["cpu_us_per_chunk"] / b["cpu_us_per_chunk"]
            for a, b in zip(runs[name], runs["bare"], strict=True)
        ]
        print(
            f"  {name}/bare (same rounds): ceiling {_spread(ceil, '{:.2f}'.format)}, "
            f"CPU per chunk {_spread(cpu, '{:.2f}'.format)}"
        )
    for name in names:
        lags = [f["loop_lag_p99_ms"] for f in runs[name]]
        print(f"  {name}: event-loop lag p99 {_spread(lags, '{:.1f}'.format)} ms")
    print(
        f"load average (1, 5, 15 min): before {load_before[0]:.2f} {load_before[1]:.2f} "
        f"{load_before[2]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f} "
        f"{load_after[2]:.2f}; {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    asyncio.run(main())
