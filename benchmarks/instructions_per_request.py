"""CPU instructions a request: a bare aiohttp loop, the optimized client, client plus engine.

CPU time per request on a shared machine moves by 10-40% from run to run (other processes share
the cores and their caches), so a change of a few percent cannot be seen in
``harness_overhead.py``. The number of instructions the process executes barely moves (two runs
of the bare loop: 502.0k and 500.9k a request), so this script counts them: each contender sends
a fixed number of requests to the built-in mock (zero latency, its own process, not counted) from
32 workers, under ``valgrind --tool=cachegrind --cache-sim=no``, once with ``--small`` and once
with ``--large`` requests; the difference of the two totals divided by the difference of the
requests is the cost of one request, start-up and imports cancelled out.

Contenders:

* ``bare``: ``aiohttp`` posting the body with ``json=`` and reading ``resp.json()`` (as in
  ``harness_overhead.py``);
* ``client``: ``FastHarborAI`` in optimized mode, ``await acreate(...)``;
* ``engine``: the same client driven by the engine's ``RequestSender`` and ``Recorder`` (what
  ``harborbench run`` does a request; its once-a-second work is not included).

Usage (valgrind must be installed; about a minute a contender)::

    PYTHONPATH=. .venv/bin/python benchmarks/instructions_per_request.py [--only bare,client,engine]
        [--small 400] [--large 1600]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from typing import Any

BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 16,
}
WORKERS = 32


async def bare(url: str, n: int) -> None:
    """Send ``n`` requests with a bare aiohttp loop."""
    import aiohttp

    left = n
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=WORKERS), headers={"Authorization": "Bearer x"}
    ) as session:

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                async with session.post(url + "/chat/completions", json=BODY) as resp:
                    data = await resp.json()
                    assert data["choices"][0]["message"]["content"]

        await asyncio.gather(*(worker() for _ in range(WORKERS)))


async def client(url: str, n: int, *, engine: bool) -> None:
    """Send ``n`` requests through the optimized client, with the engine's sender if asked."""
    from harborbench.engine.clock import Clock
    from harborbench.engine.recorder import Recorder
    from harborbench.engine.request import RequestSender
    from harborbench.harborai import create_fast_client

    fast = create_fast_client(
        base_url=url, api_key="x", performance_mode="optimized", max_concurrent_requests=100
    )
    create = fast.chat.completions.acreate
    clock = Clock()
    rec = Recorder(clock.now_ns(), 0.0, 3600.0, open_loop=False)
    # a fresh dict a request, as the engine's RequestFactory.next_params gives
    sender = RequestSender(create, lambda: {**BODY, "stream": False}, rec, clock.reader)
    left = n
    now = clock.reader  # as harborbench run's closed-loop workers read it

    def next_ns() -> int | None:
        """The closed-loop worker's rule (drivers.drive_closed_loop), with a count for a window."""
        nonlocal left
        if left <= 0:
            return None
        left -= 1
        return now()

    async def worker() -> None:
        nonlocal left
        if engine:  # as a closed-loop worker of harborbench run: send goes on while next_ns allows
            while (now_ns := next_ns()) is not None:
                await sender.send(now_ns, next_ns)
            return
        while left > 0:
            left -= 1
            response = await create(**BODY)
            assert response.choices[0].message.content

    await asyncio.gather(*(worker() for _ in range(WORKERS)))
    assert not engine or rec.successes == n, rec.failures_by_kind
    await fast.aclose()


def send(kind: str, n: int) -> None:
    """Start the mock and send ``n`` requests as ``kind`` (run under valgrind by :func:`count`)."""
    from harborbench.mockserver.process import MockServer
    from harborbench.mockserver.settings import MockSettings

    with MockServer(MockSettings()) as server:
        if kind == "bare":
            asyncio.run(bare(server.base_url, n))
        else:
            asyncio.run(client(server.base_url, n, engine=kind == "engine"))


def count(kind: str, n: int) -> int:
    """Instructions this interpreter executes to send ``n`` requests as ``kind`` (the mock, a
    child process, is not traced)."""
    command = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--trace-children=no",
        f"--cachegrind-out-file={os.devnull}",
        sys.executable, __file__, "--send", kind, str(n),
    ]  # fmt: skip
    # One OpenBLAS thread: numpy's worker threads (started by its import, which the client and
    # engine contenders load) spin for a while, and their instructions varied by millions from
    # run to run; no request makes a BLAS call, so no request's cost is left out.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stderr
    found = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main(args: argparse.Namespace) -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    per_request: dict[str, float] = {}
    for kind in args.only:
        small, large = count(kind, args.small), count(kind, args.large)
        per_request[kind] = (large - small) / (args.large - args.small)
        print(f"{kind:8} {per_request[kind] / 1e3:8.1f}k instructions a request", flush=True)
    if "bare" in per_request:
        for kind, value in per_request.items():
            if kind != "bare":
                print(f"{kind:8} {value / per_request['bare']:.3f}x the bare loop")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", default="bare,client,engine")
    parser.add_argument("--small", type=int, default=400)
    parser.add_argument("--large", type=int, default=1600)
    parser.add_argument("--send", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.send:
        send(ns.send[0], int(ns.send[1]))
    else:
        ns.only = ns.only.split(",")
        main(ns)
