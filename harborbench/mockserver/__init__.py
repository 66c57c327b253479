"""The built-in OpenAI-compatible target server (SPEC section 4).

- :class:`MockSettings` (``settings``): the one schema of its behaviour, shared by
  ``harborbench serve`` and the ``target.mock`` section of a profile.
- :func:`build_app` (``app``): the aiohttp application.
- :func:`start_server` / :func:`run_server` (``server``): serving it in this process.
- :class:`MockServer` (``process``): running it in a separate process, as a context manager.
- ``python -m harborbench.mockserver`` (``__main__``): the child process :class:`MockServer`
  starts, without the command-line interface's imports.

The names are imported on first use (PEP 562), so that reading a profile's ``target.mock``
section does not import aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harborbench.mockserver.app import build_app
    from harborbench.mockserver.process import MockServer
    from harborbench.mockserver.server import run_server, start_server
    from harborbench.mockserver.settings import MockSettings

__all__ = ["MockServer", "MockSettings", "build_app", "run_server", "start_server"]

_WHERE = {
    "MockServer": "process",
    "MockSettings": "settings",
    "build_app": "app",
    "run_server": "server",
    "start_server": "server",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
