"""Lookups per second: LockFreePluginManager against LockedPluginRegistry, 1 to 8 threads.

Run: ``.venv/bin/python benchmarks/plugin_manager.py [--repeats 9] [--lookups 200000]``.

Method. Both registries hold the same 8 plugins serving 32 models, all loaded before timing.
One trial = ``--lookups`` calls of ``get()`` split evenly over T threads, each thread cycling
over the 32 model names; the threads start together on a barrier and the trial's time is from
the earliest thread start to the latest thread end (``time.perf_counter_ns``). For every
repeat and every T the implementations run back to back, in an order reversed on every other
repeat (interleaved, so that drift of the machine hits all alike). Two references run beside
them: a bare ``dict`` behind a ``threading.Lock`` (the issue's "plain locked dict": no states,
no counters) and a bare ``dict`` with no lock at all (the ceiling of any registry in the same
loop). The table gives the median over repeats of each throughput and the median (min-max) of
the paired per-repeat ratios lock-free / locked registry and lock-free / locked dict. Wall
time is about 10 s with the defaults on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable

from harborbench.harborai.core.optimizations.lockfree_plugin_manager import (
    LockedPluginRegistry,
    LockFreePluginManager,
)

THREAD_COUNTS = (1, 2, 4, 8)
PLUGINS = 8
MODELS_PER_PLUGIN = 4


def build_lookups() -> dict[str, Callable[[str], object]]:
    """Return one ``get(model)`` callable per implementation, all loaded and ready."""
    lockfree: LockFreePluginManager[object] = LockFreePluginManager()
    locked: LockedPluginRegistry[object] = LockedPluginRegistry()
    plain: dict[str, object] = {}
    for p in range(PLUGINS):
        models = [f"model-{p}-{m}" for m in range(MODELS_PER_PLUGIN)]
        plugin = object()
        lockfree.register(f"plugin-{p}", models, lambda plugin=plugin: plugin)
        locked.register(f"plugin-{p}", models, lambda plugin=plugin: plugin)
        plain.update(dict.fromkeys(models, plugin))
    lockfree.load_all()
    locked.load_all()
    lock = threading.Lock()

    def locked_dict_get(model: str) -> object:
        with lock:
            return plain[model]

    return {
        "lockfree": lockfree.get,
        "locked": locked.get,
        "locked dict": locked_dict_get,
        "plain dict": plain.__getitem__,
    }


def one_trial(get: Callable[[str], object], n_threads: int, total_lookups: int) -> float:
    """Run one trial; returns lookups per second (all threads together)."""
    models = [f"model-{p}-{m}" for p in range(PLUGINS) for m in range(MODELS_PER_PLUGIN)]
    per_thread = total_lookups // n_threads
    sequence = (models * (per_thread // len(models) + 1))[:per_thread]
    barrier = threading.Barrier(n_threads)
    spans_ns: list[tuple[int, int]] = []

    def worker() -> None:
        barrier.wait()
        start_ns = time.perf_counter_ns()
        for model in sequence:
            get(model)
        spans_ns.append((start_ns, time.perf_counter_ns()))

    threads = [threading.Thread(target=worker) for _ in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed_ns = max(end for _, end in spans_ns) - min(start for start, _ in spans_ns)
    return per_thread * n_threads / (elapsed_ns / 1e9)


def ratio_text(numerators: list[float], denominators: list[float]) -> str:
    """Format the paired per-repeat ratios as ``median (min-max)``."""
    ratios = [n / d for n, d in zip(numerators, denominators, strict=True)]
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


def main() -> None:
    """Run the interleaved trials and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="repeats per cell (default 9)")
    parser.add_argument(
        "--lookups", type=int, default=200_000, help="lookups per trial (default 200000)"
    )
    args = parser.parse_args()

    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(
        f"Python {platform.python_version()} ({'GIL' if gil else 'free-threaded'}), "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"switch interval {sys.getswitchinterval() * 1e3:.1f} ms"
    )
    print(f"{args.repeats} interleaved repeats x {args.lookups} lookups per trial\n")

    gets = build_lookups()
    names = list(gets)
    results: dict[tuple[str, int], list[float]] = {(n, t): [] for n in names for t in THREAD_COUNTS}
    wall_start_s = time.perf_counter()
    for repeat in range(args.repeats):
        order = names if repeat % 2 == 0 else names[::-1]
        for n_threads in THREAD_COUNTS:
            for name in order:
                results[name, n_threads].append(one_trial(gets[name], n_threads, args.lookups))

    header = (
        f"{'threads':>7}  {'lock-free':>11}  {'locked registry':>15}  {'ratio':>18}  "
        f"{'locked dict':>11}  {'ratio':>18}  {'dict, no lock':>13}"
    )
    print(header)
    print("-" * len(header))
    for n_threads in THREAD_COUNTS:
        free = results["lockfree", n_threads]
        locked = results["locked", n_threads]
        locked_dict = results["locked dict", n_threads]
        print(
            f"{n_threads:>7}  {statistics.median(free):>11,.0f}  "
            f"{statistics.median(locked):>15,.0f}  {ratio_text(free, locked):>18}  "
            f"{statistics.median(locked_dict):>11,.0f}  {ratio_text(free, locked_dict):>18}  "
            f"{statistics.median(results['plain dict', n_threads]):>13,.0f}"
        )
    print("\nlookups per second, all threads together, median over repeats;")
    print("ratio = lock-free / the column to its left: median (min-max) of the per-repeat ratios")
    print(f"wall time {time.perf_counter() - wall_start_s:.1f} s")


if __name__ == "__main__":
    main()
