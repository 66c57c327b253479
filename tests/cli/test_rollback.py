"""Tests of ``harborbench rollback-check``: exit codes, the path named on failure, JUnit, JSON."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import harborbench.cli.rollback as cli_rollback
import harborbench.rollback as rollback
from harborbench.harborai.client import FastHarborAI
from harborbench.harborai.config import DISABLE_ENV_VAR, resolve_config
from harborbench.rollback.gates import GateWorkload
from harborbench.rollback.smoke import SmokeSettings


@pytest.fixture(autouse=True)
def tiny_quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make --quick tinier still, so that each command runs in a few seconds."""
    monkeypatch.setattr(rollback, "QUICK_SMOKE", SmokeSettings(duration_s=0.2, extra_workers=2))
    monkeypatch.setattr(
        rollback, "QUICK_WORKLOAD", GateWorkload(rounds=1, warmup_s=0.0, window_s=1.0)
    )


def _env_ignoring_client(config: dict[str, Any]) -> FastHarborAI:
    """A broken double: the real client, built as if the environment variable were not set."""
    return FastHarborAI(resolve_config(config, environ={}))


def test_paths_pass_with_the_real_client(cli: Any, tmp_path: Path) -> None:
    out_file = tmp_path / "out" / "rollback.json"
    code, out, err = cli("rollback-check", "--quick", "--skip-gates", "--output", str(out_file))
    assert code == 0, err
    assert "PASS: 9 passed, 0 failed, 0 inconclusive" in out
    data = json.loads(out_file.read_text())
    assert [r["verdict"] for r in data["rows"]] == ["pass"] * 9
    assert (data["verdict"], data["exit_code"], data["quick"], data["skip_gates"]) == (
        "pass", 0, True, True,
    )  # fmt: skip
    assert data["settings"]["gates"] is None
    # Each path row carries the seconds of its own smoke check (no shared average).
    times = [r["elapsed_s"] for r in data["rows"]]
    assert all(t > 0 for t in times) and sum(times) <= data["wall_s"]
    assert data["gates_elapsed_s"] is None


def test_a_client_ignoring_the_env_var_fails_naming_the_path(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_rollback, "CLIENT_FACTORY", _env_ignoring_client)
    junit = tmp_path / "rollback.xml"
    code, out, err = cli(
        "rollback-check", "--quick", "--skip-gates", "--json", "--junit", str(junit)
    )
    assert code == 1
    assert f"path 3: {DISABLE_ENV_VAR}=true over the optimized config" in err
    assert "mode is 'optimized', expected 'traditional'" in err
    assert "1 check(s) failed" in err
    report = json.loads(out)
    failed = [r["key"] for r in report["rows"] if r["verdict"] == "fail"]
    assert failed == ["env-disable"]
    assert report["verdict"] == "fail"
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("9", "1", "0")
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 9
    # JUnit times are each path's own seconds, as in the JSON report, not total / rows.
    assert [c.get("time") for c in cases] == [f"{r['elapsed_s']:.3f}" for r in report["rows"]]
    broken = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name", "").split(":")[0] for c in broken] == ["env-disable"]
    message = broken[0].find("failure").get("message")  # type: ignore[union-attr]
    assert message is not None and message.startswith("mode is 'optimized', expected")
    assert DISABLE_ENV_VAR not in __import__("os").environ


def test_a_gate_beyond_reach_fails(cli: Any, tmp_path: Path) -> None:
    junit = tmp_path / "rollback.xml"
    code, _, err = cli(
        "rollback-check", "--quick", "--throughput-min", "1000000", "--junit", str(junit)
    )
    if code == 3:  # a busy machine stalled the generator's loop: the gate is undecided, by design
        assert "event loop stalled" in " ".join(err.split()) + junit.read_text(encoding="utf-8")
        return
    assert code == 1
    assert "throughput (optimized mode): throughput" in err
    assert "needs >= 1e+06 ops/s" in err
    root = ET.parse(junit).getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert suites["rollback-paths"].get("tests") == "9"
    assert suites["rollback-paths"].get("failures") == "0"
    gates = suites["rollback-gates"]
    assert gates.get("tests") == "7"  # 5 absolute gates + 2 relative gates
    names = {c.get("name"): c for c in gates.findall("testcase")}
    assert names["absolute.throughput: throughput (optimized mode)"].find("failure") is not None
    # One 1-second interval per mode is too few for an interval: inconclusive, not failed.
    for key in ("relative.throughput_ratio", "relative.cpu_efficiency_gain"):
        case = next(c for n, c in names.items() if n is not None and n.startswith(key))
        skipped = case.find("skipped")
        assert skipped is not None
        assert "too few 1-s intervals" in (skipped.get("message") or "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--p95-max", "200"], "--p95-max: '200' is not a duration with units"),
        (["--throughput-ratio-min", "0"], "--throughput-ratio-min must be > 0"),
        (["--gates", "missing.yaml"], "--gates missing.yaml: no such file"),
    ],
)
def test_bad_options_exit_2(cli: Any, args: list[str], message: str) -> None:
    code, _, err = cli("rollback-check", *args)
    assert code == 2
    assert message in err


def test_bad_gates_file_exits_2_naming_line_and_key(cli: Any, tmp_path: Path) -> None:
    f = tmp_path / "gates.yaml"
    f.write_text("throughput_min: 800\np95_mx: 200ms\n")
    code, _, err = cli("rollback-check", "--gates", str(f))
    assert code == 2
    assert f"{f}:2: p95_mx" in err


def test_help_states_the_time_budget_and_examples(cli: Any) -> None:
    code, out, _ = cli("rollback-check", "--help")
    assert code == 0
    assert "about 50 s by default" in out
    assert "harborbench rollback-check --quick --junit rollback.xml" in out


class _NoCheck:
    """Stands in for ``arollback_check``: records the options; the check never runs."""

    def __init__(self) -> None:
        self.options: list[Any] = []

    async def __call__(self, options: Any, **_: Any) -> Any:
        from harborbench.rollback.matrix import new_report

        self.options.append(options)
        return new_report([], quick=True, skip_gates=True, settings={}, wall_s=0.0)


@pytest.mark.parametrize(("text", "fraction"), [("5%", 0.05), ("0.05", 0.05), ("0", 0.0),
                                                ("100%", 1.0), (" 1.5% ", 0.015)])  # fmt: skip
def test_error_rate_max_accepts_a_percentage_or_a_fraction(
    cli: Any, monkeypatch: pytest.MonkeyPatch, text: str, fraction: float
) -> None:
    fake = _NoCheck()
    monkeypatch.setattr(rollback, "arollback_check", fake)
    code, _, err = cli("rollback-check", "--error-rate-max", text, "--json")
    assert code == 0, err
    (options,) = fake.options
    assert options.gates.absolute.error_rate_max == pytest.approx(fraction)


@pytest.mark.parametrize("text", ["abc", "5", "-1%", "150%", "nan", "5 %%", "%"])
def test_error_rate_max_refuses_anything_else_clearly(
    cli: Any, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    fake = _NoCheck()
    monkeypatch.setattr(rollback, "arollback_check", fake)
    code, _, err = cli("rollback-check", "--error-rate-max", text)
    assert code == 2 and fake.options == []
    flat = " ".join(err.split())
    assert f"--error-rate-max {text!r} is not a fraction between 0 and 1 or a percentage" in flat
    assert "Write for example --error-rate-max 0.05 or --error-rate-max 5%." in flat


@pytest.mark.parametrize(
    ("option", "where", "message"),
    [
        ("--output", "dir", "--output {dir} is a folder, not a file. Give a file path, for "
                            "example --output {dir}/rollback.json."),
        ("--junit", "dir", "--junit {dir} is a folder, not a file. Give a file path, for "
                           "example --junit {dir}/rollback.xml."),
        ("--output", "file/x.json", "--output {file}/x.json: {file} is a file, not a folder. "
                                    "Choose another path for --output."),
        ("--junit", "file/sub/x.xml", "--junit {file}/sub/x.xml: {file} is a file, not a "
                                      "folder. Choose another path for --junit."),
    ],
)  # fmt: skip
def test_bad_output_paths_exit_2_before_the_check_runs(
    cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, option: str, where: str,
    message: str,
) -> None:  # fmt: skip
    fake = _NoCheck()
    monkeypatch.setattr(rollback, "arollback_check", fake)
    (tmp_path / "file").write_text("x")
    target = str(tmp_path) + "/" + where if where != "dir" else str(tmp_path)
    code, out, err = cli("rollback-check", "--quick", option, target)
    assert code == 2 and fake.options == []  # nothing ran
    assert "Traceback" not in err and out == ""
    expected = message.format(dir=tmp_path, file=tmp_path / "file")
    assert " ".join(err.split()) == "Error: " + expected


def test_an_unwritable_output_folder_exits_2_before_the_check_runs(
    cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The tests may run as root, for whom every folder is writable: refuse the write instead.
    def refuse(*_: Any, **__: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    fake = _NoCheck()
    monkeypatch.setattr(rollback, "arollback_check", fake)
    monkeypatch.setattr(cli_rollback.tempfile, "NamedTemporaryFile", refuse)
    target = tmp_path / "ro" / "r.xml"
    code, _, err = cli("rollback-check", "--junit", str(target))
    assert code == 2 and fake.options == []
    assert " ".join(err.split()) == (
        f"Error: --junit {target}: cannot write in {target.parent} (Permission denied). "
        "Choose a folder you can write to."
    )
    # A missing folder is created, as writing the file would.
    monkeypatch.undo()
    monkeypatch.setattr(rollback, "arollback_check", fake)
    code, _, err = cli("rollback-check", "--json", "--junit", str(tmp_path / "new" / "r.xml"))
    assert code == 0, err
    assert (tmp_path / "new" / "r.xml").is_file()
