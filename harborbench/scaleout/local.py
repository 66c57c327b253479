"""Shards as processes on this host: stdlib ``multiprocessing`` with the spawn start method.

Spawn, not fork: the coordinator holds threads and an event loop, which a forked child would
inherit half-copied. Each shard gets two one-way pipes: commands from the coordinator (go,
stop, quit) and reports to it (ready, ticks, its trial results). A shard watches its command
pipe: when the coordinator dies the pipe reaches end-of-file and the shard stops its load and
exits, so no load outlives the run. The coordinator sees a shard die as end-of-file on its
report pipe or through the process sentinel.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue
import signal
import threading
import time
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from harborbench.errors import HarborbenchError, RunFailedError
from harborbench.result import Topology
from harborbench.scaleout.backend import Event, Lost
from harborbench.scaleout.shard import (
    ShardInfo,
    ShardSpec,
    ShardTrial,
    prepare_shard,
    run_shard_trial,
)


def _child_main(spec: ShardSpec, commands: Connection, reports: Connection) -> None:
    """Entry point of a shard process (spawned; importable at module level)."""
    # Ctrl-C reaches the whole process group: the coordinator alone decides, and relays a stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        reports.send(prepare_shard(spec))
    except HarborbenchError as exc:
        reports.send(Lost(spec.index, str(exc)))
        return
    inbox: queue.Queue[tuple[Any, ...]] = queue.Queue()
    stopping = threading.Event()
    current: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def set_stop() -> None:
        stopping.set()
        for loop, event in list(current):
            loop.call_soon_threadsafe(event.set)

    def read_commands() -> None:
        while True:
            try:
                msg = commands.recv()
            except (EOFError, OSError):  # the coordinator is gone: stop the load, then exit
                msg = ("quit",)
            if msg[0] in ("stop", "quit"):
                set_stop()
            inbox.put(msg)
            if msg[0] == "quit":
                return

    threading.Thread(target=read_commands, daemon=True).start()

    async def one_trial(trial: int, t0_ns: int) -> ShardTrial:
        stop = asyncio.Event()
        current.append((asyncio.get_running_loop(), stop))
        if stopping.is_set():
            stop.set()
        try:
            return await run_shard_trial(spec, trial, t0_ns, stop, reports.send)
        finally:
            current.clear()

    while True:
        msg = inbox.get()
        if msg[0] == "quit":
            break
        if msg[0] == "go":
            reports.send(asyncio.run(one_trial(msg[1], msg[2])))
    reports.close()


class LocalBackend:
    """N shard processes on this host (see the module docstring)."""

    name = "multiprocessing"

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: list[BaseProcess] = []
        self._commands: list[Connection] = []
        self._reports: list[Connection] = []
        self._lost: set[int] = set()

    def topology(self, workers: int) -> Topology:
        return Topology(backend="multiprocessing", workers=workers)

    def prepare(self, specs: list[ShardSpec], deadline_s: float) -> list[ShardInfo]:
        for spec in specs:
            cmd_read, cmd_write = self._ctx.Pipe(duplex=False)
            rep_read, rep_write = self._ctx.Pipe(duplex=False)
            proc = self._ctx.Process(
                target=_child_main,
                args=(spec, cmd_read, rep_write),
                name=f"harborbench-shard-{spec.index}",
                daemon=True,
            )
            proc.start()
            # Keep only our ends, so that a dead peer shows as end-of-file on either side.
            cmd_read.close()
            rep_write.close()
            self._procs.append(proc)
            self._commands.append(cmd_write)
            self._reports.append(rep_read)
        infos: dict[int, ShardInfo] = {}
        end = time.monotonic() + deadline_s
        while len(infos) < len(specs):
            remaining = end - time.monotonic()
            if remaining <= 0:
                missing = sorted(set(range(len(specs))) - set(infos))
                raise RunFailedError(
                    f"shard(s) {missing} were not ready within {deadline_s:.0f} s.",
                    hint="The machine may be overloaded; try fewer --workers.",
                )
            for event in self.collect(min(remaining, 0.5)):
                if isinstance(event, Lost):
                    raise RunFailedError(f"shard {event.index} failed to start: {event.reason}.")
                if isinstance(event, ShardInfo):
                    infos[event.index] = event
        return [infos[i] for i in range(len(specs))]

    def now(self) -> int:
        return time.perf_counter_ns()

    def clock_offsets(self, infos: list[ShardInfo]) -> list[tuple[float, float]]:
        return [(0.0, 0.0) for _ in infos]  # one host, one CLOCK_MONOTONIC

    def _send(self, i: int, msg: tuple[Any, ...]) -> None:
        if i in self._lost:
            return
        with contextlib.suppress(OSError):  # a dead shard is reported by collect()
            self._commands[i].send(msg)

    def start(self, trial: int, t0_ns: list[int]) -> None:
        for i in range(len(self._procs)):
            self._send(i, ("go", trial, t0_ns[i]))

    def stop(self) -> None:
        for i in range(len(self._procs)):
            self._send(i, ("stop",))

    def pids(self) -> list[int | None]:
        """The shard processes' ids (for tests and the record)."""
        return [p.pid for p in self._procs]

    def collect(self, timeout_s: float) -> list[Event]:
        live = {c: i for i, c in enumerate(self._reports) if i not in self._lost}
        if not live:
            time.sleep(timeout_s)
            return []
        events: list[Event] = []
        for conn in wait(list(live), timeout=timeout_s):
            assert isinstance(conn, Connection)
            i = live[conn]
            while True:
                try:
                    if not conn.poll():
                        break
                    events.append(conn.recv())
                except (EOFError, OSError):
                    proc = self._procs[i]
                    proc.join(timeout=1.0)
                    self._lost.add(i)
                    events.append(Lost(i, _exit_reason(proc)))
                    break
        return events

    def close(self) -> None:
        for i in range(len(self._procs)):
            self._send(i, ("quit",))
        end = time.monotonic() + 10.0
        for proc in self._procs:
            proc.join(timeout=max(end - time.monotonic(), 0.1))
        for proc in self._procs:
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5.0)
        for conn in [*self._commands, *self._reports]:
            conn.close()


def _exit_reason(proc: BaseProcess) -> str:
    code = proc.exitcode
    if code is None:
        return "its report pipe closed while the process was still running"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"process {proc.pid} was killed by {name}"
    return f"process {proc.pid} exited with code {code}"
