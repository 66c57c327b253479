"""``harborbench serve``: flags and settings files, bad input (exit 2), URL line, clean stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from harborbench.cli.serve import parse_latency_flag, settings_from_options
from harborbench.errors import MockSettingsError
from harborbench.mockserver.settings import (
    ExponentialLatency,
    FixedLatency,
    LognormalLatency,
    NormalLatency,
    UniformLatency,
)


def test_help_has_examples(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("serve", "--help")
    assert code == 0
    assert "Examples" in out
    assert "--latency" in out
    assert "--settings-json" not in out  # internal option, hidden


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10ms", {"distribution": "fixed", "value": "10ms"}),
        ("fixed:10ms", {"distribution": "fixed", "value": "10ms"}),
        ("uniform:5ms,20ms", {"distribution": "uniform", "low": "5ms", "high": "20ms"}),
        ("normal:20ms, 5ms", {"distribution": "normal", "mean": "20ms", "stddev": "5ms"}),
        ("lognormal:20ms,200ms", {"distribution": "lognormal", "median": "20ms", "p99": "200ms"}),
        ("exponential:10ms", {"distribution": "exponential", "mean": "10ms"}),
    ],
)
def test_parse_latency_flag(text: str, expected: dict[str, str]) -> None:
    assert parse_latency_flag("--latency", text) == expected


@pytest.mark.parametrize("text", ["gamma:1ms", "uniform:5ms", "normal:1ms,2ms,3ms"])
def test_parse_latency_flag_refuses(text: str) -> None:
    with pytest.raises(MockSettingsError, match="is not a latency"):
        parse_latency_flag("--latency", text)


def test_flags_build_every_setting() -> None:
    s = settings_from_options(
        latency="uniform:1ms,2ms",
        ttft="normal:100ms,10ms",
        inter_token="exponential:5ms",
        tokens_per_chunk=3,
        output_tokens="16-64",
        error_rate=0.1,
        error_status=429,
        retry_after="2s",
        hang_rate=0.01,
        reset_rate=0.02,
        stream_break_rate=0.03,
        stream_error_rate=0.04,
        stall=["10s+2s", "1m+500ms"],
        seed=5,
    )
    assert isinstance(s.latency, UniformLatency)
    assert (s.latency.low, s.latency.high) == (0.001, 0.002)
    assert isinstance(s.stream.ttft, NormalLatency)
    assert isinstance(s.stream.inter_token, ExponentialLatency)
    assert s.stream.tokens_per_chunk == 3
    assert (s.output_tokens.min, s.output_tokens.max) == (16, 64)
    f = s.faults
    assert (f.error_rate, f.error_status, f.retry_after) == (0.1, 429, 2.0)
    assert (f.hang_rate, f.reset_rate, f.stream_break_rate, f.stream_error_rate) == (
        0.01,
        0.02,
        0.03,
        0.04,
    )
    assert [(w.at, w.duration) for w in f.stalls] == [(10.0, 2.0), (60.0, 0.5)]
    assert s.seed == 5


def test_flags_override_the_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "mock.yaml"
    path.write_text(
        "latency: {distribution: lognormal, median: 20ms, p99: 200ms}\n"
        "faults: {error_rate: 0.5, error_status: 503}\n"
        "seed: 1\n"
    )
    s = settings_from_options(path, error_rate=0.25, seed=2)
    assert isinstance(s.latency, LognormalLatency)
    assert s.faults.error_rate == 0.25
    assert s.faults.error_status == 503  # kept from the file
    assert s.seed == 2
    s = settings_from_options(path, json.dumps({"latency": "3ms"}))
    assert isinstance(s.latency, FixedLatency)
    assert s.latency.value == 0.003


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--error-rate", "1.5"],
            "faults.error_rate (from --error-rate): Input should be less than or equal to 1",
        ),
        (["--latency", "10"], "latency.value (from --latency): '10' is not a duration with units"),
        (["--latency", "-5ms"], "cannot be negative"),
        (["--latency", "gamma:5ms"], "is not a latency"),
        (["--stall", "10s"], "is not a stall window"),
        (["--output-tokens", "many"], "is not a token count"),
        (["--error-rate", "0.7", "--reset-rate", "0.7"], "sum to 1.4"),
    ],
)
def test_bad_settings_exit_2_with_a_clear_message(cli, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli("serve", *args)
    assert code == 2
    assert message in " ".join((out + err).split())
    assert "Traceback" not in err


def test_bad_settings_file_exit_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "mock.yaml"
    path.write_text("latency: 10ms\nfaults: {eror_rate: 0.1}\n")
    code, out, err = cli("serve", "--settings", str(path))
    assert code == 2
    assert f"{path}:2: faults.eror_rate: unknown key 'eror_rate'; did you mean 'error_rate'?" in (
        " ".join((out + err).split())
    )
    code, out, err = cli("serve", "--settings", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "cannot read --settings" in " ".join((out + err).split())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seed: 1\nseed: 2\n", ":2: seed: duplicate key 'seed' (first on line 1)"),
        ("faults: {error_rate: 0.1}\nseed: on\n", ":2: seed: 'on' is read as a boolean"),
        ("faults:\n  stalls: [{at: 1:30, duration: 2s}]\n", ":2: faults.stalls[0].at: '1:30'"),
        ("latency: {distribution: fixed, valeu: 5ms}\n", ":1: latency.valeu: unknown key"),
        ("faults: {error_rate: 1.5}\n", ":1: faults.error_rate: Input should be less than"),
    ],
)
def test_a_settings_file_is_read_as_strictly_as_a_profile(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "mock.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = cli("serve", "--settings", str(path))
    assert code == 2 and out == ""
    flat = " ".join(err.split())
    assert f"{path}{message}" in flat
    assert "Traceback" not in err


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_prints_url_first_and_stops_cleanly_on_signal(signum: int, code: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harborbench", "serve", "--port", "0", "--latency", "1ms"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/health", timeout=10) as response:
            assert response.status == 200
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code  # Ctrl-C is an interruption (130), SIGTERM a stop (0)
    assert out == ""
    assert err == ""


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--latency", "10"], "write for example 500ms, 30s, 2m or 1h30m."),
        (
            ["--error-rate", "1.5"],
            "faults.error_rate (from --error-rate): Input should be less than or equal to 1, "
            "got 1.5.",
        ),
    ],
)
def test_settings_errors_end_with_a_full_stop_before_the_hint(  # type: ignore[no-untyped-def]
    cli, args: list[str], sentence: str
) -> None:
    code, out, err = cli("serve", *args)
    assert code == 2 and out == ""
    flat = " ".join(err.split())
    assert flat.endswith(f"{sentence} See 'harborbench serve --help' for the forms of each value.")
    assert flat.startswith("Error: invalid mock settings in the command-line flags: ")


def test_a_bad_settings_json_message_ends_with_a_full_stop(cli) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("serve", "--settings-json", "[1")
    assert code == 2
    assert " ".join(err.split()) == (
        "Error: --settings-json is not a JSON object: Expecting ',' delimiter: line 1 column 3 "
        "(char 2)."
    )
