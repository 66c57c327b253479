"""The built-in OpenAI-compatible target server (SPEC section 4).

- :class:`MockSettings` (``settings``): the one schema of its behaviour, shared by
  ``harborbench serve`` and the ``target.mock`` section of a profile.
- :func:`build_app` (``app``): the aiohttp application.
- :func:`start_server` / :func:`run_server` (``server``): serving it in this process.
- :class:`MockServer` (``process``): running it in a separate process, as a context manager.
"""

from harborbench.mockserver.app import build_app
from harborbench.mockserver.process import MockServer
from harborbench.mockserver.server import run_server, start_server
from harborbench.mockserver.settings import MockSettings

__all__ = ["MockServer", "MockSettings", "build_app", "run_server", "start_server"]
