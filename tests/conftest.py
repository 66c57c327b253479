"""Shared fixtures for the whole test suite."""

from __future__ import annotations

import pytest

from harborbench.cli import main


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
