"""Shared fixtures for the whole test suite."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from harborbench.cli import main


@pytest.fixture(autouse=True)
def _no_implicit_event_loop(request: pytest.FixtureRequest) -> None:
    """In a synchronous test, mark "no current event loop" explicitly.

    The looptime plugin asks the policy for the current loop before every test; in a
    synchronous test with none set, Python 3.11's policy then creates one and sets it, and the
    next ``asyncio.run`` replaces it without closing it: an "unclosed event loop" warning that
    fails a random later test (warnings are errors here). With the loop explicitly unset, the
    policy raises instead, which looptime ignores.
    """
    if not inspect.iscoroutinefunction(getattr(request, "function", None)):
        asyncio.set_event_loop(None)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``harborbench ARGS...`` in-process; returns ``(exit_code, stdout, stderr)``."""

    def invoke(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc_info:
            main(list(args))
        out, err = capsys.readouterr()
        code = exc_info.value.code
        return (code if isinstance(code, int) else 1), out, err

    return invoke


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line naming the install command when the browser tests were skipped."""
    from tests.chromium import CHROMIUM_INSTALL, SKIP_REASON

    skipped = [
        r for r in terminalreporter.stats.get("skipped", []) if SKIP_REASON in str(r.longrepr)
    ]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} browser test(s) skipped: Chromium is not installed; "
            f"install it with: {CHROMIUM_INSTALL}",
            yellow=True,
        )
