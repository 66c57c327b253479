"""Running the mock server: bind, count connections, print the URL, stop on a signal.

:func:`start_server` runs an application on an asyncio server whose protocol factory counts
every accepted TCP connection (asyncio calls the factory exactly once per accepted socket).
:func:`run_server` is the foreground loop of ``harborbench serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from aiohttp import web

from harborbench.mockserver.app import STATE_KEY, build_app
from harborbench.mockserver.settings import MockSettings

__all__ = ["RunningServer", "format_url", "run_server", "start_server"]


def format_url(host: str, port: int) -> str:
    """Return ``http://host:port`` (IPv6 hosts in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@dataclass(slots=True)
class RunningServer:
    """A started server; :meth:`close` stops it.

    Attributes:
        app: the aiohttp application being served.
        url: the root URL bound, e.g. ``http://127.0.0.1:40123``.
        port: the TCP port bound (the real one when 0 was asked for).
    """

    app: web.Application
    url: str
    port: int
    _runner: web.AppRunner
    _server: asyncio.Server

    async def close(self) -> None:
        """Stop accepting, end the open connections (handlers get 1 s), and clean up."""
        self._server.close()
        await self._runner.cleanup()
        await self._server.wait_closed()


async def start_server(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    reuse_port: bool = False,
    backlog: int = 2048,
) -> RunningServer:
    """Serve ``app`` on ``host:port`` in the running event loop.

    Args:
        app: the application (normally from :func:`harborbench.mockserver.app.build_app`);
            if it carries a :class:`~harborbench.mockserver.app.MockState`, its
            ``connections_accepted`` counter is driven by the protocol factory.
        host: interface to bind; ``127.0.0.1`` unless told otherwise.
        port: TCP port; 0 picks a free one.
        reuse_port: set ``SO_REUSEPORT`` (several processes sharing one port).
        backlog: listen backlog (connections waiting to be accepted).

    Returns:
        The :class:`RunningServer`, with the bound URL.

    Raises:
        OSError: the address cannot be bound.
    """
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        handler_cancellation=True,  # a client that gives up ends its handler (hang faults)
        shutdown_timeout=1.0,
    )
    await runner.setup()
    protocol_factory = runner.server
    assert protocol_factory is not None
    state = app.get(STATE_KEY)

    if state is not None:
        stats = state.stats

        def counting_factory() -> web.RequestHandler:
            stats.connections_accepted += 1
            return protocol_factory()

        state.connections_open = lambda: len(protocol_factory.connections)
        factory: Callable[[], asyncio.Protocol] = counting_factory
    else:
        factory = protocol_factory

    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            factory, host, port, reuse_port=reuse_port or None, backlog=backlog
        )
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = int(server.sockets[0].getsockname()[1])
    return RunningServer(app, format_url(host, bound_port), bound_port, runner, server)


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Block on stdin in a daemon thread; at end of file (the parent died) set ``stop``."""

    def reader() -> None:
        # os.read on the raw descriptor: a daemon thread blocked inside the buffered
        # sys.stdin would hold its lock and abort the interpreter at exit.
        try:
            while os.read(fd, 4096):
                pass
        except OSError:
            pass
        with contextlib.suppress(RuntimeError):  # the loop may already be closed
            loop.call_soon_threadsafe(stop.set)

    fd = sys.stdin.fileno()

    threading.Thread(target=reader, name="harborbench-parent-watch", daemon=True).start()


def run_server(
    settings: MockSettings,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    out: TextIO | None = None,
    watch_stdin: bool = False,
) -> int | None:
    """Run the mock server in the foreground until SIGINT or SIGTERM (or stdin EOF).

    Args:
        settings: the server's behaviour.
        host: interface to bind.
        port: TCP port, 0 for a free one.
        out: where the bound URL is printed as the first line and flushed (default stdout).
        watch_stdin: also stop when standard input reaches end of file; a parent that holds
            the other end of a pipe thus never leaves this process orphaned, even if killed.

    Returns:
        The number of the signal that stopped the server (``signal.SIGINT`` for Ctrl-C,
        ``signal.SIGTERM``), or ``None`` when it stopped at the end of standard input.

    Raises:
        OSError: the address cannot be bound.
    """
    stream = out if out is not None else sys.stdout
    received: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def on_signal(signum: int) -> None:
            received.append(signum)
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        if watch_stdin:
            _watch_stdin(loop, stop)
        running = await start_server(build_app(settings), host, port)
        try:
            stream.write(running.url + "\n")
            stream.flush()
            await stop.wait()
        finally:
            await running.close()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    asyncio.run(main())
    return received[0] if received else None
