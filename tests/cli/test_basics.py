"""The CLI's contract that does not depend on any command: version, help, exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harborbench import __version__, errors
from harborbench.units import format_duration, parse_duration


def test_version_flag(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("--version")
    assert code == 0
    assert out.strip() == f"harborbench {__version__}"


def test_python_dash_m_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harborbench", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("harborbench ")


def test_unknown_option_is_exit_2_without_traceback(cli) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("--no-such-option")
    assert code == errors.EXIT_BAD_INPUT
    assert "Traceback" not in err
    assert "--no-such-option" in err


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (errors.ProfileError, 2),
        (errors.ResultFileError, 2),
        (errors.GateFailed, 1),
        (errors.InconclusiveError, 3),
        (errors.TargetUnreachableError, 4),
        (errors.AllRequestsFailedError, 4),
        (errors.Interrupted, 130),
    ],
)
def test_error_tree_exit_codes(cls: type[errors.HarborbenchError], code: int) -> None:
    assert cls.exit_code == code
    assert issubclass(cls, errors.HarborbenchError)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30.0), ("2m", 120.0), ("1h30m", 5400.0), ("1.5s", 1.5), ("0s", 0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["30", "1:30", "ten seconds", "5 parsecs", ""])
def test_parse_duration_refuses_bare_or_bad(text: str) -> None:
    with pytest.raises(ValueError, match="duration with units"):
        parse_duration(text)


def test_format_duration_round_trips() -> None:
    for s in (0.25, 1.5, 90.0, 5400.0):
        assert parse_duration(format_duration(s)) == pytest.approx(s)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (8 / 3, "2.67s"),  # 8 s in three stages: no float noise
        (2.5, "2.5s"),
        (3.0, "3s"),
        (0.1 + 0.2, "300ms"),
        (0.000_123_456, "123.46us"),
        (0.999_999, "1s"),  # rounds up into the next unit, not "1000ms"
        (59.999, "1m"),  # not "60s"
        (90.333, "1m30.33s"),
        (3599.999, "1h"),  # not "59m60s"
        (5400.5, "1h30m0.5s"),
    ],
)
def test_format_duration_is_for_people(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds, abs=0.005)


SIGTERM_OUTSIDE_THE_LOOP = """
import os, signal, sys
import harborbench.profile

def load_profile(*args, **kwargs):  # SIGTERM while the command starts, before any event loop
    os.kill(os.getpid(), signal.SIGTERM)
    raise AssertionError("SIGTERM did not interrupt")

harborbench.profile.load_profile = load_profile
from harborbench.cli import main
main(["run", "profiles/steady.yaml", "--reports-dir", sys.argv[1]])
"""


def test_sigterm_outside_the_event_loop_exits_130_like_ctrl_c(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(
        [sys.executable, "-c", SIGTERM_OUTSIDE_THE_LOOP, str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_signal_handlers_are_put_back_after_the_loop() -> None:
    import asyncio
    import signal

    from harborbench.cli.signals import sigterm_as_ctrl_c, stop_on_signals

    async def inside() -> None:
        with stop_on_signals("stopping"):
            pass

    before = signal.getsignal(signal.SIGTERM)
    with sigterm_as_ctrl_c():
        handler = signal.getsignal(signal.SIGTERM)
        assert handler not in (signal.SIG_DFL, before)
        loop = asyncio.new_event_loop()  # not asyncio.run: it would replace (and leak) the
        try:  # event loop that pytest-asyncio left set for this thread
            loop.run_until_complete(inside())
        finally:
            loop.close()
        assert signal.getsignal(signal.SIGTERM) is handler  # asyncio would leave SIG_DFL
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize(
    "command", ["run", "compare", "rollback-check", "tune", "report", "serve", "profiles"]
)
def test_help_shows_flags_as_plain_flags(cli, command: str) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(command, "--help")
    assert code == 0
    assert "<bool>" not in out
    assert "--help" in out


def test_every_command_documents_its_exit_codes(cli) -> None:  # type: ignore[no-untyped-def]
    from harborbench.cli.app import app

    names = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    assert "serve" in names and len(names) >= 7
    for name in names:
        code, out, _ = cli(name, "--help")
        assert code == 0
        assert "Exit codes" in " ".join(out.split()), name
    code, out, _ = cli("serve", "--help")
    assert "2 bad settings or option" in " ".join(out.split())
