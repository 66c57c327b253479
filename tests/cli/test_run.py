"""`harborbench run` end to end on the built-in mock: files, history, exit codes, Ctrl-C."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harborbench.result import load_result

ROOT = Path(__file__).resolve().parents[2]
SHORT = ["--set", "duration=2s", "--set", "warmup=500ms", "--set", "gates.throughput_min=null"]


def test_run_writes_result_summary_and_timeseries(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reports = tmp_path / "reports"
    code, out, err = cli(
        "run", str(ROOT / "profiles/steady.yaml"), *SHORT, "--set", "load.rate=200",
        "--reports-dir", str(reports),
    )  # fmt: skip
    assert code == 0, err
    assert "throughput" in out and "505.6" in out
    folder = reports / "steady"
    result = load_result(folder / "result.json")
    assert (result.kind, result.schema_version) == ("run", 3)
    assert result.total is not None and result.total.successes > 300
    assert result.profile["load"]["rate"] == 200
    assert result.environment["python"]
    assert "throughput_ops" in result.metric_definitions
    with (folder / "summary.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and float(rows[0]["throughput_ops"]) == pytest.approx(
        result.total.throughput_ops, rel=1e-3
    )
    with (folder / "timeseries.csv").open() as fh:
        ts = list(csv.DictReader(fh))
    assert [r["phase"] for r in ts].count("measure") == 2
    assert "throughput_ops" in ts[0] and "service_p95_ms" in ts[0]

    # A second run of the same name moves the first to history/, never overwrites it.
    first = (folder / "result.json").read_text()
    code, _, _ = cli(
        "run", str(ROOT / "profiles/steady.yaml"), *SHORT, "--set", "load.rate=150",
        "--reports-dir", str(reports), "--quiet",
    )  # fmt: skip
    assert code == 0
    history = list((folder / "history").iterdir())
    assert len(history) == 1
    assert (history[0] / "result.json").read_text() == first


def test_json_prints_the_result_on_stdout(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli(
        "run", str(ROOT / "profiles/optimized.yaml"), *SHORT, "--set", "load.concurrency=4",
        "--reports-dir", str(tmp_path), "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["name"] == "optimized" and data["trials"][0]["successes"] > 0
    assert data["total"] is None  # one trial: the whole run is trials[0], stored once


def test_a_failing_gate_exits_1(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(
        "run", str(ROOT / "profiles/steady.yaml"), *SHORT, "--set", "load.rate=50",
        "--set", "gates.throughput_min=100000", "--reports-dir", str(tmp_path), "--quiet",
    )  # fmt: skip
    if code == 3:  # a busy machine stalled the generator's loop: the gate is undecided, by design
        assert "the load generator's event loop stalled" in " ".join(err.split())
        return
    assert code == 1
    assert "throughput" in err and "Traceback" not in err
    assert (tmp_path / "steady" / "result.json").exists()  # measured data is kept
    # What a failed gate means, for a newcomer whose machine is slower than the plan's.
    flat = " ".join(err.split())
    assert "A failed gate is a finding about the client on this machine, not an error" in flat
    assert flat.endswith(
        "Throughput depends on this machine's speed (the shipped profiles hold the plan's "
        "gates); on a slower machine, relax it with --set gates.throughput_min=VALUE."
    )


def test_bad_profile_exits_2_naming_file_and_key(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nload: {concurency: 4}\nduration: 1s\n")
    code, _, err = cli("run", str(bad), "--reports-dir", str(tmp_path))
    assert code == 2
    assert "bad.yaml" in err and "concurency" in err and "Traceback" not in err


def test_unknown_set_path_exits_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("run", str(ROOT / "profiles/steady.yaml"), "--set", "lod.rate=5")
    assert code == 2 and "lod" in err


def _wait_until_measuring(proc: subprocess.Popen[bytes], after_s: float = 1.5) -> None:
    """Wait until the run sends requests (it holds a TCP connection to its mock), then
    ``after_s``: a fixed sleep from the start would signal a run still starting on a busy
    machine."""
    import psutil

    run = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        c.status == psutil.CONN_ESTABLISHED for c in run.net_connections(kind="tcp")
    ):
        time.sleep(0.1)
    time.sleep(after_s)


def test_ctrl_c_stops_within_a_second_writes_partial_result_and_exits_130(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harborbench", "run", str(ROOT / "profiles/steady.yaml"),
         "--set", "duration=60s", "--set", "warmup=0s", "--set", "load.rate=100",
         "--reports-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        _wait_until_measuring(proc)  # then a couple of seconds of measurement
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        stopped_after_s = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert stopped_after_s < 5  # about a second plus the mock's shutdown, on a noisy machine
    result = load_result(tmp_path / "steady" / "result.json")
    assert result.interrupted and result.status == "incomplete"
    assert result.total is not None and result.total.successes > 0
    assert result.total.window_s < 30
    # a stopped run does not spend seconds plotting; it says how to write the report
    assert not (tmp_path / "steady" / "report.html").exists()
    assert "harborbench report" in err.decode()


def test_an_unwritable_reports_dir_is_refused_before_measuring(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a_file = tmp_path / "afile"
    a_file.write_text("")
    code, _, err = cli(
        "run", str(ROOT / "profiles/steady.yaml"), "--reports-dir", str(a_file), "--quiet"
    )
    assert code == 2
    assert "--reports-dir" in err and "is a file" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["", ".", "a/b"])
def test_a_bad_run_name_is_refused(cli, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(
        "run", str(ROOT / "profiles/steady.yaml"), "--name", name, "--reports-dir", str(tmp_path)
    )
    assert code == 2 and "--name" in err


def test_sigterm_keeps_the_partial_result_like_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harborbench", "run", str(ROOT / "profiles/steady.yaml"),
         "--set", "duration=60s", "--set", "warmup=0s", "--set", "load.rate=50",
         "--reports-dir", str(tmp_path), "--quiet", "--no-html"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait_until_measuring(proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    assert load_result(tmp_path / "steady" / "result.json").interrupted


def test_a_run_stopped_in_its_warmup_judges_no_gate_and_is_incomplete(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harborbench", "run", str(ROOT / "profiles/steady.yaml"),
         "--set", "duration=10s", "--set", "warmup=60s", "--set", "load.rate=50",
         "--reports-dir", str(tmp_path), "--no-html"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    try:
        _wait_until_measuring(proc, after_s=0.5)  # sending, in the warmup
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()
    result = load_result(tmp_path / "steady" / "result.json")
    assert result.interrupted and result.status == "incomplete"
    assert result.total is not None and result.total.window_s == 0.0
    # 0 ops/s would fail the throughput gate and a flat RSS pass the memory gate: neither judged
    assert [(g.name, g.verdict) for g in result.gates] == [
        ("throughput", "inconclusive"), ("p95 latency", "inconclusive"),
        ("error rate", "inconclusive"), ("memory growth", "inconclusive"),
    ]  # fmt: skip
    assert "not measured: the run was interrupted before its window" in out.decode()
    assert " pass " not in out.decode() and " fail " not in out.decode()


def test_retries_and_server_errors_are_shown(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli(
        "run", str(ROOT / "profiles/steady.yaml"), *SHORT, "--set", "load.rate=100",
        "--set", "target.mock.faults={error_rate: 0.2, error_status: 503}",
        "--set", "gates={}", "--reports-dir", str(tmp_path), "--no-html",
    )  # fmt: skip
    assert code == 0, err
    assert "the client retried" in out and "the server answered" in out


def test_a_target_echoing_the_key_and_a_header_shows_and_writes_neither(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from tests.bad_server import bad_server

    monkeypatch.setenv("HB_SECRET", "sk-SECRET-123")
    monkeypatch.setenv("X_TOK", "sk-SECRET-TOKEN-456")
    with bad_server("echo401") as base_url:
        profile = tmp_path / "echo.yaml"
        profile.write_text(
            f"name: echo\ntarget: {{base_url: '{base_url}', api_key_env: HB_SECRET}}\n"
            "request: {model: m, headers: {X-Api-Token: {env: X_TOK}}}\n"
            "load: {concurrency: 2}\nwarmup: 0s\nduration: 1s\n"
        )
        code, out, err = cli("run", str(profile), "--reports-dir", str(tmp_path), "--no-html")
    assert code == 4, err
    shown = " ".join(err.split())  # Rich wraps long lines
    assert (
        "first error: APIStatusError: HTTP 401: Incorrect API key provided: Bearer <redacted> "
        "hdr=<redacted>" in shown
    )
    written = (tmp_path / "echo" / "result.json").read_text()
    assert '"http_401"' in written
    assert "sk-SECRET" not in out + err + written
    # every request failed (exit 4): the summary and the written file come before the error
    assert "0 ok, " in out and f"files: {tmp_path / 'echo'}/result.json" in " ".join(out.split())
    assert f"(result written: {tmp_path / 'echo' / 'result.json'})" in shown


def test_an_open_loop_against_a_hanging_target_prints_json_and_blames_the_target(
    cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from tests.bad_server import bad_server

    with bad_server("hang") as base_url:
        profile = tmp_path / "hang.yaml"
        profile.write_text(
            f"name: hang\ntarget: {{base_url: '{base_url}'}}\n"
            "request: {model: m, timeout: 1s}\nclient: {max_concurrent_requests: 5}\n"
            "load: {rate: 40}\nwarmup: 0s\nduration: 2s\n"
        )
        code, out, err = cli("run", str(profile), "--reports-dir", str(tmp_path), "--json")
    assert code == 4, err
    result = json.loads(out)  # --json: the written result on stdout even when the run failed
    assert result["name"] == "hang" and result["trials"][0]["successes"] == 0
    (warning,) = [w for w in result["trials"][0]["health"]["warnings"] if "dropped" in w]
    assert "waited on the target, not on a client setting" in warning
    assert "raise client" not in warning


def test_credentials_in_the_base_url_are_refused_before_any_request(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = "http://user:sk-SECRET-URL@127.0.0.1:9/v1?api-key=sk-SECRET-QS"
    code, out, err = cli(
        "run", str(ROOT / "profiles/steady.yaml"), "--set", "target.mock=null",
        "--set", f"target.base_url={url}", "--reports-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 2
    assert "target.base_url" in err and "target.api_key_env" in err
    assert "sk-SECRET" not in out + err
    assert not (tmp_path / "steady").exists()
