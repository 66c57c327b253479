"""Whole comparisons of small fixed runs against reviewed golden files.

Each scenario builds two runs from fixed seeds and compares them with a fixed bootstrap seed,
so every figure, interval, method, reason and verdict of ``comparison.json`` is determined. The
golden files under ``tests/compare/golden/`` were written by this code and read line by line
when they were made (the verdicts and reasons agree with the inputs: a 30% throughput drop is
"worse", a one-trial side keeps gates inconclusive, different CPU counts make runs not
comparable). Floats are compared to 9 significant digits.

A deliberate change to what compare computes or says changes these files: regenerate them with
``HARBORBENCH_REGEN_GOLDEN=1 pytest tests/compare/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harborbench.compare import compare_results, evaluate_gate, failure_notes, parse_fail_on
from harborbench.result import RunResult
from tests.compare.test_compare import _with_goodput, make_run
from tests.compare.test_compare import streamed as _streamed

GOLDEN = Path(__file__).parent / "golden"
WAVE = [100 + (i % 5) * 4 for i in range(12)]


def _regression() -> tuple[RunResult, RunResult, list[str]]:
    """Two trials a side; B 30% slower, slower latencies, failures, an slo, streaming."""
    a = _with_goodput(make_run("a", [WAVE, WAVE[::-1]], seed=1), 0.9)
    b = _with_goodput(
        make_run("b", [[round(x * 0.7) for x in WAVE]] * 2, seed=7, latency_median_s=0.03,
                 failures=[3] * 12),
        0.6,
    )  # fmt: skip
    gates = ["throughput:-5%", "p99:+10%", "error_rate:+50%", "goodput:-10%", "ttft_p95:+5%"]
    return _streamed(a), _streamed(b), gates


def _one_trial_environments() -> tuple[RunResult, RunResult, list[str]]:
    """One trial a side, measured on different machines, and a too-short B."""
    a = make_run("a", [WAVE], seed=2)
    b = make_run("b", [WAVE[:6]], seed=3, environment={"cpu_count": 8, "python": "3.12.1"},
                 profile={"load": {"concurrency": 64}})  # fmt: skip
    return a, b, ["throughput:-5%", "p50:+20%"]


def _same() -> tuple[RunResult, RunResult, list[str]]:
    """Three trials a side of the same workload with different seeds: no difference in speed;
    memory growth varies by trial (1, 2, 4% against 3, 5, 4%), and four of A's seconds have no
    CPU sample (left out of CPU efficiency). The totals are merged from the fixture's RSS
    figures (1 MB of 100 in each window, 3.0% over three), so the memory row's A and B read 3.0
    while its interval is over the trials' growth_pct figures."""

    def vary(run: RunResult, growth: list[float], no_cpu: int) -> RunResult:
        trials = []
        for t, g in zip(run.trials, growth, strict=True):
            rows = list(t.timeseries)
            if t.index == 0:
                for i in range(2, 2 + no_cpu):  # after the 2 warmup rows
                    rows[i] = rows[i].model_copy(update={"cpu_percent": None})
            memory = t.memory.model_copy(update={"growth_pct": g})
            trials.append(t.model_copy(update={"timeseries": rows, "memory": memory}))
        return run.model_copy(update={"trials": trials})

    a = vary(make_run("a", [WAVE] * 3, seed=4), [1.0, 2.0, 4.0], no_cpu=4)
    b = vary(make_run("b", [WAVE] * 3, seed=5), [3.0, 5.0, 4.0], no_cpu=0)
    return a, b, ["throughput:-5%", "p95:+10%", "cpu_efficiency:-10%"]


def _paired_rounds() -> tuple[RunResult, RunResult, list[str]]:
    """Three interleaved rounds (compare --run): the trials are paired round by round."""
    a = make_run("a", [WAVE, WAVE[::-1], WAVE], seed=6)
    b = make_run("b", [[x + 3 for x in WAVE]] * 3, seed=9, latency_median_s=0.021)
    return a, b, ["throughput:-5%", "p95:+10%"]


def _shards_partial() -> tuple[RunResult, RunResult, list[str]]:
    """A one-process A against a B of 4 shards that lost one, was interrupted, had its generator
    saturated and streamed alone (A did not stream), with its last row past the window."""
    from harborbench.result import Topology

    a = make_run("a", [WAVE], seed=8)
    b = _streamed(make_run("b", [WAVE], seed=10))
    assert b.total is not None
    health = b.total.health.model_copy(update={"generator_saturated": True})
    trial = b.trials[0]
    past_end = trial.timeseries[-1].model_copy(update={"t_s": trial.window_s})
    trial = trial.model_copy(update={"timeseries": [*trial.timeseries, past_end]})
    b = b.model_copy(
        update={
            "trials": [trial],
            "total": b.total.model_copy(update={"health": health}),
            "status": "incomplete",
            "topology": Topology(backend="multiprocessing", workers=4),
            "interrupted": True,
        }
    )
    return a, b, ["throughput:-5%", "itl_p95:+10%"]


SCENARIOS: dict[str, Callable[[], tuple[RunResult, RunResult, list[str]]]] = {
    "regression": _regression,
    "one_trial_environments": _one_trial_environments,
    "same": _same,
    "paired_rounds": _paired_rounds,
    "shards_partial": _shards_partial,
}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _snapshot(name: str) -> dict[str, Any]:
    a, b, texts = SCENARIOS[name]()
    gates = [parse_fail_on(t) for t in texts]
    paired = name == "paired_rounds"
    comparison = compare_results(a, b, n_resamples=200, seed=11, paired=paired)
    outcomes = [evaluate_gate(comparison, g) for g in gates]
    comparison = comparison.model_copy(update={"gates": outcomes})
    return _rounded(
        {
            "comparison": comparison.model_dump(mode="json"),
            "failure_notes": failure_notes(comparison, gates),
        }
    )


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_comparison_matches_its_golden_file(name: str) -> None:
    got = _snapshot(name)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("HARBORBENCH_REGEN_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(path.read_text())
    assert got == expected
