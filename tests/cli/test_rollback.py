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
