"""Throughput of the built-in mock server: can it ever be the bottleneck of a measurement?

Starts the server in its own process (``MockServer``, zero latency, non-streaming unless
``--stream``) and drives it from other processes:

1. an aiohttp client loop: ``--clients`` processes, each with ``--concurrency`` workers sending
   chat completions back to back over keep-alive connections for ``--duration``;
2. ``wrk`` (a C load generator) when it is on PATH, with a Lua script that POSTs the same body.

It prints requests/s of each and the server's own count from ``/stats``, which must agree with
the clients' count (the server counts every chat completion it answers).

    .venv/bin/python benchmarks/mockserver.py
    .venv/bin/python benchmarks/mockserver.py --duration 10s --clients 2 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import aiohttp
import psutil

from harborbench.mockserver import MockServer, MockSettings
from harborbench.units import parse_duration

BODY = json.dumps(
    {"model": "bench", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
)


async def _client_loop(url: str, concurrency: int, duration_s: float, stream: bool) -> int:
    body = BODY if not stream else BODY[:-1] + ', "stream": true}'
    headers = {"Content-Type": "application/json"}
    done = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + duration_s

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status == 200:
                        done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def _client_process(args: tuple[str, int, float, bool]) -> tuple[int, float]:
    start = time.perf_counter()
    done = asyncio.run(_client_loop(*args))
    return done, time.perf_counter() - start


def _cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def run_aiohttp(
    server: MockServer, clients: int, concurrency: int, duration_s: float, stream: bool
) -> None:
    server.reset_stats()
    cpu_before_s = _cpu_s(server.pid)
    url = server.base_url + "/chat/completions"
    with mp.get_context("spawn").Pool(clients) as pool:
        results = pool.map(_client_process, [(url, concurrency, duration_s, stream)] * clients)
    total = sum(done for done, _ in results)
    elapsed_s = max(elapsed for _, elapsed in results)
    server_cpu = (_cpu_s(server.pid) - cpu_before_s) / elapsed_s
    served = server.stats()
    print(
        f"aiohttp client: {clients} process(es) x {concurrency} workers, {elapsed_s:.1f} s: "
        f"{total} ok, {total / elapsed_s:,.0f} req/s "
        f"(server counted {served['requests_by_status'].get('200', 0)} x 200, "
        f"{served['connections_accepted']} connections, max in flight "
        f"{served['max_in_flight']}); server CPU {server_cpu:.0%} of one core"
    )


def run_wrk(server: MockServer, connections: int, duration_s: float, threads: int) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk: not on PATH (apt-get install -y wrk); skipped")
        return
    server.reset_stats()
    cpu_before_s = _cpu_s(server.pid)
    script = (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(BODY)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        path = handle.name
    try:
        proc = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(duration_s))}s",
                "-s",
                path,
                server.base_url + "/chat/completions",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(path)
    server_cpu = (_cpu_s(server.pid) - cpu_before_s) / max(1, round(duration_s))
    match = re.search(r"Requests/sec:\s+([\d.]+)", proc.stdout)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", proc.stdout)
    served = server.stats()
    rate = float(match.group(1)) if match else float("nan")
    print(
        f"wrk: {threads} thread(s) x {connections} connections: {rate:,.0f} req/s "
        f"(non-2xx {non2xx.group(1) if non2xx else 0}; server counted "
        f"{served['requests_by_status'].get('200', 0)} x 200); server CPU {server_cpu:.0%} "
        "of one core"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="5s", help="per measurement, e.g. 5s")
    parser.add_argument("--clients", type=int, default=1, help="aiohttp client processes")
    parser.add_argument("--concurrency", type=int, default=64, help="workers per client process")
    parser.add_argument("--wrk-connections", type=int, default=64)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--stream", action="store_true", help="aiohttp loop uses SSE streams")
    args = parser.parse_args()
    duration_s = parse_duration(args.duration)
    print(f"python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, {os.cpu_count()} CPUs")
    with MockServer(MockSettings()) as server:
        print(f"server {server.url} (pid {server.pid}), zero latency")
        run_aiohttp(server, args.clients, args.concurrency, duration_s, args.stream)
        run_wrk(server, args.wrk_connections, duration_s, args.wrk_threads)


if __name__ == "__main__":
    main()
