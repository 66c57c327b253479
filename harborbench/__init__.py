"""harborbench: honest benchmarking and tuning of an LLM API client's concurrency layer.

The command-line interface lives in :mod:`harborbench.cli`; everything it does is also
reachable from Python (see the README).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("harborbench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
