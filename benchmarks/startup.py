"""Start-up cost: ``harborbench --help`` and the mock server's child process, wall seconds.

Run: ``.venv/bin/python benchmarks/startup.py [--runs N] [--against DIR]``.

Each figure is one fresh process (``python -m harborbench --help``), or one
``MockServer().start()`` up to its answered ``/health`` (timed inside a fresh process, after
the import of ``MockServer``). ``--against DIR`` names another source tree of harborbench (for
example an older commit unpacked with ``git archive``); its runs use ``PYTHONPATH=DIR`` and are
interleaved with this tree's (A B A B ...), so that the ratio of each pair is taken under the
same machine load. Prints medians with min-max, the per-pair ratio, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

_MOCK_START = (
    "import time\n"
    "from harborbench.mockserver.process import MockServer\n"
    "t = time.perf_counter()\n"
    "s = MockServer().start()\n"
    "print(time.perf_counter() - t)\n"
    "s.stop()\n"
)


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    return env


def _help_s(tree: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "harborbench", "--help"],
        env=_env(tree),
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=tree,
    )
    return time.perf_counter() - start


def _mock_s(tree: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _MOCK_START],
        env=_env(tree),
        check=True,
        capture_output=True,
        text=True,
        cwd=tree,
    ).stdout
    return float(out.strip().splitlines()[-1])


def _show(label: str, values: list[float]) -> str:
    return (
        f"{label:<28} median {statistics.median(values):7.3f}  "
        f"(min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--against", type=Path, help="another harborbench source tree")
    args = parser.parse_args()
    trees = {"this tree": HERE}
    if args.against is not None:
        trees["--against"] = args.against.resolve()
    for what, measure in (("--help (s)", _help_s), ("mock start (s)", _mock_s)):
        measure(HERE)  # warm the file cache
        times: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.runs):
            for name, tree in trees.items():
                times[name].append(measure(tree))
        for name, values in times.items():
            print(_show(f"{what} {name}", values))
        if args.against is not None:
            ratios = [a / b for a, b in zip(times["this tree"], times["--against"], strict=True)]
            print(_show(f"{what} ratio this/against", ratios))
    print("load average (1, 5, 15 min):", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
