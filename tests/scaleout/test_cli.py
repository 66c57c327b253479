"""Scale-out options: bad input is one line and exit 2, before any load; compare sees topology."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harborbench.compare.differences import comparability
from harborbench.result import Topology
from tests.compare.test_compare import STEADY, make_run

PROFILE = "name: p\nload: {concurrency: 2}\nduration: 1s\n"


@pytest.fixture
def profile(tmp_path: Path) -> str:
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "--workers '0' is not a shard count"),
        (["--workers", "two"], "--workers 'two' is not a shard count"),
        (["--workers", "3"], "concurrency drops to 2, below the number of shards"),
        (["--placement", "spread"], "--placement needs --ray"),
        (["--ray", "ray://head:10001", "--workers", "2"], "Ray Client (ray://) is not supported"),
        (["--ray", "not an address", "--workers", "2"], "is not local, auto or HOST:PORT"),
        (["--ray", "local", "--workers", "2", "--placement", "pack"], "not spread or strict"),
    ],
)
def test_bad_scaleout_options_exit_2_with_one_line(cli, profile: str, args, message) -> None:  # type: ignore[no-untyped-def]
    reports = Path(profile).parent / "reports"
    code, _, err = cli("run", profile, *args, "--reports-dir", str(reports))
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in err
    assert not reports.exists()  # refused before reports/p/ is made (it was left empty)


def test_missing_ray_exits_2_with_the_pip_hint(
    cli,
    profile: str,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code, _, err = cli("run", profile, "--ray", "local", "--workers", "2")
    assert code == 2
    assert "--ray needs Ray: pip install 'harborbench[ray]'" in " ".join(err.split())


@pytest.mark.parametrize("command", [["tune"], ["rollback-check"]])
def test_tune_and_rollback_check_refuse_workers(cli, profile: str, command) -> None:  # type: ignore[no-untyped-def]
    args = [*command, profile] if command == ["tune"] else command
    code, _, err = cli(*args, "--workers", "2")
    assert code == 2
    assert "measures one client in one process" in " ".join(err.split())


def test_workers_1_is_todays_one_process_path(profile: str) -> None:
    from harborbench.cli.run import scaleout_plan
    from harborbench.profile import load_profile

    p = load_profile(profile)
    assert scaleout_plan(p, None, None, None) is None
    assert scaleout_plan(p, "1", None, None) is None
    plan = scaleout_plan(p, "2", None, None)
    assert plan is not None and plan[1] == 2
    assert plan[0]().topology(2) == Topology(backend="multiprocessing", workers=2)


def test_compare_lists_a_different_topology_and_an_incomplete_run() -> None:
    a = make_run("a", [STEADY])
    b = make_run("b", [STEADY]).model_copy(
        update={"topology": Topology(backend="multiprocessing", workers=2)}
    )
    comp = comparability(a, b)
    assert not comp.comparable
    assert [(d.key, d.a, d.b) for d in comp.workload] == [
        ("topology", "one process", "2 shards via multiprocessing")
    ]
    assert comparability(b, b).comparable
    c = b.model_copy(update={"status": "incomplete"})
    keys = [(d.key, d.a, d.b) for d in comparability(b, c).workload]
    assert keys == [("status", "complete", "incomplete")]


def test_more_local_shards_than_usable_cores_is_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harborbench.scaleout.coordinator import resolve_workers

    usable = resolve_workers("auto")
    path = tmp_path / "wide.yaml"
    path.write_text("name: p\nload: {concurrency: 2000}\nduration: 1s\n", encoding="utf-8")
    code, _, err = cli("run", str(path), "--workers", str(usable + 1))
    assert code == 2
    assert f"this host has {usable} usable core(s)" in " ".join(err.split())
    code, _, err = cli("run", str(path), "--workers", "1025")
    assert code == 2
    assert "at most 1024 shards" in " ".join(err.split())
