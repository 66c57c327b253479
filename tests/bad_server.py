"""A misbehaving OpenAI-compatible server for tests: real aiohttp, loopback, port 0.

It runs in a thread with its own event loop, so that synchronous tests (the CLI, which calls
``asyncio.run``) can use it as well as async ones::

    with bad_server("echo401") as base_url:
        ...  # base_url is http://127.0.0.1:<port>/v1

Modes: ``echo401`` answers 401 quoting the request's ``Authorization`` and ``X-Api-Token``
headers (like a provider's "Incorrect API key provided: ..."); ``hang`` never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from aiohttp import web


async def _echo401(request: web.Request) -> web.StreamResponse:
    quoted = (
        request.headers.get("Authorization", "") + " hdr=" + request.headers.get("X-Api-Token", "")
    )
    return web.Response(status=401, text="Incorrect API key provided: " + quoted)


async def _hang(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(3600)
    return web.Response()  # pragma: no cover - cancelled when the server stops


HANDLERS = {"echo401": _echo401, "hang": _hang}


@contextlib.contextmanager
def bad_server(mode: str) -> Iterator[str]:
    """Serve ``mode`` on 127.0.0.1, port 0, in a thread; yield the base URL (``.../v1``)."""
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", HANDLERS[mode])
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def stop() -> None:
        await runner.cleanup()
        # a hanging handler outlives the shutdown timeout: end it before the loop closes
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    thread = threading.Thread(target=loop.run_forever, name="bad-server", daemon=True)
    thread.start()
    try:
        port = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
