"""Reusable pytest fixture: the built-in mock server in a separate process.

Use it from the root conftest (``pytest_plugins = ["tests.fixtures_mock"]``) or import the
fixture into a conftest (``from tests.fixtures_mock import mock_server``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harborbench.mockserver import MockServer


@pytest.fixture(scope="module")
def mock_server() -> Iterator[MockServer]:
    """A :class:`MockServer` with default settings (instant answers) for the whole module.

    The counters are shared by the module's tests: call ``mock_server.reset_stats()`` first in
    a test that asserts on them.
    """
    with MockServer() as server:
        yield server
