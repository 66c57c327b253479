"""`harborbench run --loop`: asyncio (default) or uvloop (the optional extra)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harborbench.result import load_result

ROOT = Path(__file__).resolve().parents[2]
SHORT = [
    "--set", "duration=1s", "--set", "warmup=200ms", "--set", "gates.throughput_min=null",
    "--set", "gates.p95_max=null", "--set", "gates.memory_growth_max_pct=null",
]  # fmt: skip


def test_uvloop_runs_the_measurement_and_is_recorded(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("uvloop", reason="the test extra installs uvloop")
    reports = tmp_path / "reports"
    code, _, err = cli(
        "run", str(ROOT / "profiles/steady.yaml"), *SHORT, "--set", "load.rate=100",
        "--reports-dir", str(reports), "--quiet", "--no-html", "--loop", "uvloop",
    )  # fmt: skip
    assert code == 0, err
    result = load_result(reports / "steady" / "result.json")
    assert result.environment["event_loop"] == "uvloop"
    assert result.total is not None and result.total.successes > 0


def test_default_loop_is_recorded_as_asyncio(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reports = tmp_path / "reports"
    code, _, err = cli(
        "run", str(ROOT / "profiles/steady.yaml"), *SHORT, "--set", "load.rate=100",
        "--reports-dir", str(reports), "--quiet", "--no-html",
    )  # fmt: skip
    assert code == 0, err
    assert load_result(reports / "steady" / "result.json").environment["event_loop"] == "asyncio"


def test_uvloop_missing_is_one_clear_line_and_exit_2(
    cli,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    code, _, err = cli(
        "run", str(ROOT / "profiles/steady.yaml"), "--loop", "uvloop",
        "--reports-dir", str(tmp_path / "reports"),
    )  # fmt: skip
    assert code == 2
    assert "--loop uvloop" in err and "pip install 'harborbench[uvloop]'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "reports").exists()  # refused before measuring


def test_unknown_loop_exits_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(
        "run", str(ROOT / "profiles/steady.yaml"), "--loop", "trio",
        "--reports-dir", str(tmp_path / "reports"),
    )  # fmt: skip
    assert code == 2
    assert "--loop 'trio'" in err and "asyncio or uvloop" in err


def test_help_names_the_extra_intact(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("run", "--help")
    assert code == 0
    assert "harborbench[uvloop]" in " ".join(out.split())  # not eaten as console markup
