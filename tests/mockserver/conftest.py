"""Fixtures of the mock-server tests: an in-process server on port 0 and the process one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from harborbench.mockserver.app import build_app
from harborbench.mockserver.server import RunningServer, start_server
from harborbench.mockserver.settings import MockSettings

# The process-based fixture, re-exported for the tests of this folder.
from tests.fixtures_mock import mock_server as mock_server

StartMock = Callable[..., Awaitable[RunningServer]]


@pytest.fixture
async def start_mock() -> AsyncIterator[StartMock]:
    """Start in-process servers on 127.0.0.1 port 0: ``await start_mock(**settings)``.

    Every server started is closed at the end of the test.
    """
    running: list[RunningServer] = []

    async def start(**settings: Any) -> RunningServer:
        server = await start_server(build_app(MockSettings.model_validate(settings)))
        running.append(server)
        return server

    yield start
    for server in running:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp client session, closed after the test."""
    async with aiohttp.ClientSession() as client:
        yield client
