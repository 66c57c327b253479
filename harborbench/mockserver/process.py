"""Start the mock server in a separate process and stop it again: :class:`MockServer`.

The measuring process and the server never share an interpreter lock: the server runs as
``python -m harborbench.mockserver --port 0 ...`` in a child process (the server's own entry
point, which does not import the command-line interface). The child prints its URL as the
first line of stdout; the parent then checks ``GET /health``. The child also reads its stdin,
a pipe held by the parent, and stops at end of file, so it ends even if the parent is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from types import TracebackType
from typing import IO, Any

from harborbench.errors import TargetUnreachableError
from harborbench.mockserver.settings import MockSettings

__all__ = ["MockServer"]

_STDERR_TAIL_BYTES = 4000


class MockServer:
    """The built-in mock server running in a child process, as a context manager.

    Usage::

        with MockServer(MockSettings(latency="10ms")) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="test")
            ...
            print(server.stats()["requests_total"])

    ``async with`` works too (start and stop run in a worker thread).

    Args:
        settings: the server's behaviour; ``None`` for the defaults (instant answers).
        host: interface to bind.
        port: TCP port; 0 picks a free one.
        startup_timeout_s: seconds to wait for the URL line and ``/health``.

    Attributes:
        url: root URL, e.g. ``http://127.0.0.1:40123`` (set once started).
        base_url: ``url + "/v1"``, the OpenAI base URL.
        pid: the child's process id.
    """

    def __init__(
        self,
        settings: MockSettings | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout_s: float = 30.0,
    ) -> None:
        self.settings = settings if settings is not None else MockSettings()
        self.host = host
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Root URL of the running server, e.g. ``http://127.0.0.1:40123``."""
        if self._url is None:
            raise RuntimeError("the mock server is not running; use it as a context manager")
        return self._url

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL, ``url + "/v1"``."""
        return self.url + "/v1"

    @property
    def pid(self) -> int:
        """Process id of the server's child process."""
        if self._proc is None:
            raise RuntimeError("the mock server is not running; use it as a context manager")
        return self._proc.pid

    def start(self) -> MockServer:
        """Start the child process, read its URL and check ``/health``.

        Returns:
            ``self``.

        Raises:
            TargetUnreachableError: the child exited, printed no URL in time, or did not
                answer ``/health``; the message carries the tail of its stderr.
        """
        if self._proc is not None:
            raise RuntimeError("the mock server is already started")
        cmd = [
            sys.executable,
            "-m",
            "harborbench.mockserver",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--settings-json",
            self.settings.model_dump_json(),
            "--watch-stdin",
        ]
        # Kept open for the life of the child (closed in stop), so not a with-block.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # a Ctrl-C in the parent's terminal is the parent's job
        )
        try:
            self._url = self._read_url()
            with urllib.request.urlopen(self._url + "/health", timeout=5.0) as response:
                if response.status != 200:
                    raise TargetUnreachableError(f"/health answered {response.status}")
        except (TargetUnreachableError, OSError) as exc:
            tail = self._stderr_tail()
            self.stop()
            raise TargetUnreachableError(
                f"the mock server did not start: {exc}."
                + (f" Its stderr ends with: {tail}" if tail else "")
            ) from None
        return self

    def _read_url(self) -> str:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        stdout = proc.stdout
        lines: queue.Queue[bytes] = queue.Queue(maxsize=1)
        threading.Thread(
            target=lambda: lines.put(stdout.readline()), name="mockserver-url", daemon=True
        ).start()
        try:
            line = lines.get(timeout=self.startup_timeout_s)
        except queue.Empty:
            raise TargetUnreachableError(
                f"no URL on its stdout within {self.startup_timeout_s:g} s"
            ) from None
        url = line.decode("utf-8", "replace").strip()
        if not url.startswith("http://"):
            code = proc.poll()
            if not url and code is None:  # stdout closed: the child is exiting
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = proc.wait(timeout=5.0)
            raise TargetUnreachableError(
                f"it exited with code {code}" if code is not None else f"it printed {url!r}"
            )
        return url

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - _STDERR_TAIL_BYTES))
            return self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the child: close its stdin, SIGTERM, wait ``timeout_s`` seconds, then SIGKILL."""
        proc, self._proc = self._proc, None
        self._url = None
        if proc is not None:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _request(self, method: str, path: str) -> dict[str, Any]:
        req = urllib.request.Request(self.url + path, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10.0) as response:
                data: dict[str, Any] = json.loads(response.read())
        except (urllib.error.URLError, OSError) as exc:
            raise TargetUnreachableError(f"the mock server at {self.url} failed: {exc}") from None
        return data

    def stats(self) -> dict[str, Any]:
        """Return the server's counters (``GET /stats``; keys in :meth:`MockState.snapshot`).

        Raises:
            TargetUnreachableError: the server does not answer.
        """
        return self._request("GET", "/stats")

    def reset_stats(self) -> dict[str, Any]:
        """Zero the server's counters (``POST /stats/reset``) and return the fresh snapshot.

        Raises:
            TargetUnreachableError: the server does not answer.
        """
        return self._request("POST", "/stats/reset")

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> MockServer:
        import asyncio

        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        import asyncio

        await asyncio.to_thread(self.stop)
