"""Every shipped profile except the soak runs end to end in shortened form (issue 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harborbench.result import load_result

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.name for p in (ROOT / "profiles").glob("*.yaml") if p.name != "soak.yaml")


def test_the_shipped_set_is_complete() -> None:
    names = {p.stem for p in (ROOT / "profiles").glob("*.yaml")}
    assert {"baseline", "optimized", "burst", "steady", "soak", "stream"} <= names


@pytest.mark.parametrize("profile", SHIPPED)
def test_shipped_profile_runs_shortened(cli, tmp_path: Path, profile: str) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(
        "run", str(ROOT / "profiles" / profile), "--set", "duration=2s", "--set", "warmup=500ms",
        "--reports-dir", str(tmp_path), "--quiet", "--no-html",
    )  # fmt: skip
    # A 2-second run may miss a gate (1) or have too few samples for one (3); it must not be
    # bad input (2) or a failed run (4).
    assert code in (0, 1, 3), err
    result = load_result(next(tmp_path.glob("*/result.json")))
    assert result.total is not None
    assert result.total.successes > 0
    assert result.total.window_s == pytest.approx(2.0, abs=0.05)
