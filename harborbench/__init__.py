"""harborbench: honest benchmarking and tuning of an LLM API client's concurrency layer.

The command-line interface lives in :mod:`harborbench.cli`; everything it does is also
reachable from Python (see the README).

For notebooks, ``harborbench.load_result(path)`` reads a run's ``result.json`` (a
:class:`~harborbench.result.RunResult`, whose ``summary_frame()`` and ``timeseries_frame()``
are pandas DataFrames).

``__version__`` is read from the installed metadata on first use, and ``load_result`` is
imported on first use (PEP 562): importing ``importlib.metadata`` costs more than the rest of
``harborbench --help``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harborbench.result import load_result

__all__ = ["__version__", "load_result"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("harborbench")
        except PackageNotFoundError:  # running from a source tree that was not installed
            found = "0.0.0+unknown"
        globals()["__version__"] = found
        return found
    if name == "load_result":
        from harborbench.result import load_result

        return load_result
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
