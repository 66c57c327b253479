"""The import-linter contracts of pyproject.toml name every module they must (issue 14).

The contracts list modules by name, so a module added later would escape them; these tests
fail until it is added. `lint-imports` itself runs in .ci/run.
"""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path
from typing import Any

import harborbench
import harborbench.engine

ROOT = Path(__file__).resolve().parents[1]


def _contract(starts: str) -> dict[str, Any]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    found: list[dict[str, Any]] = [c for c in contracts if c["name"].startswith(starts)]
    assert len(found) == 1, starts
    return found[0]


def _children(package: Any) -> set[str]:
    return {f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)}


def test_the_client_contract_forbids_every_other_module_of_harborbench() -> None:
    contract = _contract("The client under test")
    expected = _children(harborbench) - {"harborbench.harborai", "harborbench.__main__"}
    assert set(contract["forbidden_modules"]) == expected


def test_the_report_contract_forbids_every_engine_module_but_progress() -> None:
    contract = _contract("Reports do not import")
    expected = _children(harborbench.engine) - {"harborbench.engine.progress"}
    assert set(contract["forbidden_modules"]) == expected
