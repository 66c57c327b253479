"""rollback-check's gates follow the session rule of ``compare --run``, and keep what was measured
when interrupted. The engine's trial is replaced by synthetic trials: no server, no sleeps."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import pytest

import harborbench.engine.session as session_module
from harborbench.profile import Gates
from harborbench.report.rollback_table import junit_xml
from harborbench.rollback.gates import GateSettings, GateWorkload, measure_gates
from harborbench.rollback.matrix import new_report
from tests.compare.test_compare import make_trial

NO_ABSOLUTE = Gates()  # every gate off


class _FakeTrials:
    """Synthetic trials: optimized at ``ratio`` times traditional's throughput, 3% noise."""

    def __init__(self, ratio: float, stop_at: tuple[str, int] | None = None) -> None:
        self.ratio = ratio
        self.rng = np.random.default_rng(3)
        self.calls: list[tuple[str, int]] = []
        self.stop_at = stop_at

    async def __call__(self, profile: Any, plan: Any, *_: Any, index: int, **kw: Any) -> Any:
        side = profile.name.removeprefix("rollback-")
        self.calls.append((side, index))
        level = 1000.0 * (self.ratio if side == "optimized" else 1.0)
        series = [int(x) for x in level * (1 + 0.03 * self.rng.standard_normal(12))]
        trial = make_trial(index, series, seed=len(self.calls))
        if (side, index) == self.stop_at:
            kw["stop"].set()
            trial = trial.model_copy(update={"interrupted": True})
        return trial


def _measure(
    monkeypatch: pytest.MonkeyPatch, fake: _FakeTrials, settings: GateSettings, **workload: Any
) -> Any:
    monkeypatch.setattr(session_module, "run_trial", fake)  # the session's trial

    async def main() -> Any:
        return await measure_gates(
            "http://127.0.0.1:1/v1", "k", None, settings, GateWorkload(**workload),
            stop=asyncio.Event(),
        )  # fmt: skip

    return asyncio.run(main())


def test_a_clear_relative_gate_stops_at_the_first_look(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeTrials(ratio=1.0)
    settings = GateSettings(NO_ABSOLUTE, throughput_ratio_min=0.8, cpu_efficiency_gain_min_pct=None)
    out = _measure(monkeypatch, fake, settings, rounds=2, max_rounds=6)
    assert (out.rounds, out.stop_reason, out.interrupted) == (2, "every gate conclusive", False)
    (row,) = out.rows
    assert row.key == "relative.throughput_ratio" and row.verdict == "pass"
    assert row.details["rounds"] == 2


def test_an_undecided_relative_gate_adds_rounds_up_to_the_maximum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = _FakeTrials(ratio=1.0)  # exactly on the threshold 1.0: never decided
    settings = GateSettings(NO_ABSOLUTE, throughput_ratio_min=1.0, cpu_efficiency_gain_min_pct=None)
    out = _measure(monkeypatch, fake, settings, rounds=2)
    assert (out.rounds, out.stop_reason) == (4, "max rounds")  # default: twice the rounds
    assert len(fake.calls) == 8
    (row,) = out.rows
    assert row.verdict == "inconclusive"
    assert "smallest change these data can detect" in row.problem


def test_an_interrupt_keeps_the_rounds_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeTrials(ratio=1.0, stop_at=("traditional", 1))  # round 2 runs optimized first
    settings = GateSettings(throughput_ratio_min=0.8, cpu_efficiency_gain_min_pct=None)
    out = _measure(monkeypatch, fake, settings, rounds=3)
    assert out.interrupted and out.stop_reason == "interrupted" and out.rounds == 1
    assert fake.calls == [("traditional", 0), ("optimized", 0), ("optimized", 1),
                          ("traditional", 1)]  # fmt: skip
    keys = [r.key for r in out.rows]
    assert "absolute.throughput" in keys[0] and keys[-1] == "relative.throughput_ratio"
    # one complete round: the relative gate cannot fail on one trial a side
    assert out.rows[-1].verdict in ("pass", "inconclusive")


def test_an_interrupted_report_says_so_in_junit() -> None:
    report = new_report([], quick=True, skip_gates=False, settings={}, wall_s=1.0, interrupted=True)
    root = ET.fromstring(junit_xml(report))
    assert root.get("errors") == "1"
    (case,) = root.findall("./testsuite[@name='rollback-interrupted']/testcase")
    error = case.find("error")
    assert error is not None and "interrupted" in error.get("message", "")
    whole = new_report([], quick=True, skip_gates=False, settings={}, wall_s=1.0)
    assert ET.fromstring(junit_xml(whole)).get("errors") == "0"
