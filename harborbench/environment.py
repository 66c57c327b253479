"""Where a result was measured: versions, machine and git commit (SPEC section 6).

Two results are comparable only when these match; ``compare`` lists the differences.
"""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from harborbench import __version__


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def _event_loop() -> str | None:
    """The running event loop's package ("asyncio" or "uvloop"), None outside a loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return type(loop).__module__.split(".")[0]


def collect_environment() -> dict[str, Any]:
    """Describe this machine and software.

    Returns:
        A JSON-ready dict: harborbench, python, aiohttp and numpy versions, git commit (or
        ``None``), OS, CPU model, logical CPU count, usable CPU count, hostname, total memory,
        and the event loop it runs in (``event_loop``: "asyncio", "uvloop", or None).
    """
    import psutil

    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "harborbench": __version__,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "aiohttp": _package_version("aiohttp"),
        "numpy": _package_version("numpy"),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": len(affinity) if affinity is not None else os.cpu_count(),
        "memory_total_bytes": psutil.virtual_memory().total,
        "hostname": socket.gethostname(),
        "event_loop": _event_loop(),
    }


#: Keys that must be equal for two results to be measured on the same kind of machine.
COMPARABLE_KEYS = ("cpu_model", "cpu_count", "python", "aiohttp", "harborbench")
