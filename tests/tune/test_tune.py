"""The tune library without a network: timing, candidates, the selection rule and the sweep's
stop rules (driven by a fake measurement and a fake clock), and the recommended config."""

from __future__ import annotations

from pathlib import Path

import pytest

from harborbench.errors import UserInputError
from harborbench.harborai import create_fast_client
from harborbench.harborai.config import validate_config
from harborbench.metrics.usl import usl_throughput
from harborbench.profile import load_profile
from harborbench.result import GateResult, LatencySummary, MemoryFigures, TrialResult
from harborbench.tune import (
    PointScore,
    TrialTiming,
    base_knobs,
    closest_point,
    gate_shortfall,
    judge,
    pool_candidates,
    processor_candidates,
    recommended_config,
    select_point,
    trial_profile,
)
from harborbench.tune.result import Knobs, Phase, SweepPoint
from harborbench.tune.sweep import _Sweep, _sweep

ROOT = Path(__file__).resolve().parents[2]
OPTIMIZED = load_profile(ROOT / "profiles/optimized.yaml")
BASELINE = load_profile(ROOT / "profiles/baseline.yaml")


def score(
    n: int, ops: float, ok: bool = True, pool: int = 50, shortfall: float = 0.0
) -> PointScore:
    return PointScore(Knobs(n, pool, n, 1, 0.0), ops, ok, shortfall)


# --- selection ------------------------------------------------------------------------------


def test_selection_takes_the_highest_throughput_that_meets_the_gates() -> None:
    scores = [score(8, 500.0), score(16, 900.0), score(32, 1500.0, ok=False), score(64, 950.0)]
    assert select_point(scores) == 3  # 1500 misses a gate; 950 is the best that does not


def test_ties_within_two_percent_go_to_the_smaller_concurrency() -> None:
    scores = [score(64, 1000.0), score(32, 985.0), score(16, 975.0)]
    assert select_point(scores) == 1  # 985 is within 2% of 1000; 975 (2.5% below) is not tied


def test_ties_at_equal_concurrency_go_to_the_smaller_pool() -> None:
    scores = [score(32, 1000.0, pool=32), score(32, 995.0, pool=16), score(32, 1001.0, pool=64)]
    assert select_point(scores) == 1


def test_no_point_meeting_the_gates_selects_nothing_and_names_the_closest() -> None:
    scores = [score(1, 30.0, False, shortfall=0.97), score(2, 60.0, False, shortfall=0.4),
              score(4, 55.0, False, shortfall=0.4)]  # fmt: skip
    assert select_point(scores) is None
    assert closest_point(scores) == 1  # equal shortfall: the higher throughput
    assert closest_point([]) is None


def _gate(name: str, verdict: str) -> GateResult:
    return GateResult(name=name, threshold="", observed="", verdict=verdict, alert="ok",  # type: ignore[arg-type]
                      detail="")  # fmt: skip


def test_judge_lists_inconclusive_gates_apart_from_failed_ones() -> None:
    # The memory slope cannot be judged by a short trial: it never counts.
    assert judge([_gate("throughput", "pass"), _gate("memory slope", "inconclusive")]) == (
        True, [], []
    )  # fmt: skip
    # An inconclusive gate is not met, but it is not a failure either.
    gates = [_gate("p95 latency", "inconclusive"), _gate("error rate", "fail"),
             _gate("throughput", "pass")]  # fmt: skip
    assert judge(gates) == (False, ["error rate"], ["p95 latency"])
    assert judge([_gate("p95 latency", "inconclusive")]) == (False, [], ["p95 latency"])


def test_a_point_stores_failed_and_inconclusive_gates_apart() -> None:
    from tests.compare.test_compare import make_trial

    # 3 successes per second: throughput fails the 1000 ops/s gate, p95 of 6 samples is
    # inconclusive (too few samples), the error rate and memory growth pass.
    trial = make_trial(0, [3, 3])
    sweep = _Sweep(OPTIMIZED, "t", 100.0, TrialTiming(0.5, 1.0, 2.0), lambda: 0.0)
    point = sweep.point(trial, Knobs(1, 1), "concurrency", 0)
    assert not point.meets_gates
    assert point.missed_gates == ["throughput"]
    assert point.unsure_gates == ["p95 latency"]
    assert point.gates_text() == "misses throughput; inconclusive: p95 latency"
    assert point.score().meets_gates is False  # the selection rule is unchanged


def test_gate_shortfall_sums_relative_misses() -> None:
    from harborbench.profile import Gates

    trial = TrialResult.model_construct(
        successes=90, failures=10, throughput_ops=800.0, error_rate=0.1,
        service_time=LatencySummary.model_construct(p95_s=0.3),
        memory=MemoryFigures.model_construct(growth_pct=5.0),
    )  # fmt: skip
    gates = Gates.model_validate({"throughput_min": 1000, "p95_max": "200ms",
                                  "error_rate_max": "5%", "memory_growth_max_pct": 20})  # fmt: skip
    # throughput 20% short, p95 50% over, error rate 100% over, memory fine.
    assert gate_shortfall(trial, gates) == pytest.approx(0.2 + 0.5 + 1.0)
    assert gate_shortfall(trial, Gates(throughput_min=500)) == 0.0


# --- timing and candidates ------------------------------------------------------------------


def test_timing_from_budget() -> None:
    t = TrialTiming.from_budget(60.0)  # unit (60 - 2) / 16 = 3.625 s
    assert (t.warmup_s, t.window_s, t.confirm_window_s) == (0.906, 2.419, 4.838)
    t = TrialTiming.from_budget(20.0)  # unit 1.125 s: warmup and window at their floors
    assert (t.warmup_s, t.window_s, t.confirm_window_s) == (0.5, 1.0, 2.0)
    with pytest.raises(UserInputError, match="too short"):
        TrialTiming.from_budget(10.0)


def test_a_zero_budget_is_written_0s_not_0us() -> None:
    with pytest.raises(UserInputError) as caught:
        TrialTiming.from_budget(0.0)
    assert str(caught.value).startswith("--budget 0s is too short for a sweep")
    with pytest.raises(UserInputError, match=r"^--budget 10s is too short"):
        TrialTiming.from_budget(10.0)


def test_load_points_never_cap_concurrency_with_the_pool_or_workers() -> None:
    assert base_knobs(OPTIMIZED, 8) == Knobs(8, 50, 8, 1, 0.0)  # the profile's pool is 50
    assert base_knobs(OPTIMIZED, 128) == Knobs(128, 128, 128, 1, 0.0)
    # baseline.yaml is traditional mode (concurrency_optimization.enabled: false): no request
    # processor, so no worker or batching knobs.
    assert base_knobs(BASELINE, 16) == Knobs(16, 50)
    assert base_knobs(BASELINE, 64) == Knobs(64, 64)


def test_pool_and_processor_candidates() -> None:
    base = Knobs(64, 64, 64, 1, 0.0)
    assert [k.connection_pool_size for k in pool_candidates(base)] == [32, 16]
    assert [k.connection_pool_size for k in pool_candidates(Knobs(32, 50))] == [32, 16]
    assert pool_candidates(Knobs(1, 1)) == []
    got = [(k.workers, k.max_batch_size, k.batch_window_s) for k in processor_candidates(base)]
    assert got == [(32, 2, 0.0), (16, 4, 0.0), (16, 4, 0.001)]
    assert processor_candidates(Knobs(64, 64)) == []  # no processor (traditional mode)


def test_trial_profile_is_closed_loop_at_n_with_the_knobs() -> None:
    open_loop = load_profile(ROOT / "profiles/steady.yaml")
    p = trial_profile(open_loop, Knobs(16, 8, 4, 4, 0.001), warmup_s=0.5, window_s=2.0)
    assert p.load.concurrency == 16 and p.load.rate is None
    assert (p.warmup, p.duration, p.repeat) == (0.5, 2.0, 1)
    assert p.client.max_concurrent_requests == 16 and p.client.connection_pool_size == 8
    written = p.client.model_dump(exclude_unset=True)
    assert written["request_processor"] == {"workers": 4, "max_batch_size": 4,
                                            "batch_window_s": 0.001}  # fmt: skip
    # the sizes that follow from the knobs follow them (the pool's ceiling is max(pool, N))
    assert (p.client.limits().pool_max_size, p.client.limits().workers) == (16, 4)
    assert p.gates == open_loop.gates


def test_recommended_config_is_the_profile_client_with_the_knobs_and_timeout() -> None:
    # exactly the keys written in the profile, the knobs and the request timeout (no default)
    flags = dict.fromkeys(
        (
            "enabled",
            "use_lockfree_plugin_manager",
            "use_optimized_connection_pool",
            "use_async_request_processor",
        ),
        True,
    )
    assert recommended_config(OPTIMIZED, Knobs(64, 32, 16, 4, 0.001)) == {
        "enable_memory_optimization": True, "enable_lazy_loading": True,
        "performance_mode": "optimized", "max_concurrent_requests": 64,
        "connection_pool_size": 32,
        "concurrency_optimization": {**flags, "force_traditional_mode": False},
        "request_processor": {"workers": 16, "max_batch_size": 4, "batch_window_s": 0.001},
        "timeout_s": 10.0,
    }  # fmt: skip
    steady = load_profile(ROOT / "profiles/steady.yaml")  # client: {concurrency_optimization}
    assert recommended_config(steady, Knobs(8, 4)) == {
        "max_concurrent_requests": 8, "connection_pool_size": 4,
        "concurrency_optimization": {"enabled": True}, "timeout_s": 10.0,
    }  # fmt: skip
    # timeout_s is the request timeout the sweep ran with (a client section may not set it)
    req = steady.request.model_copy(update={"timeout": 3.0})
    assert (
        recommended_config(steady.model_copy(update={"request": req}), Knobs(8, 4))["timeout_s"]
        == 3.0
    )


async def test_recommended_config_is_accepted_by_create_fast_client() -> None:
    config = recommended_config(OPTIMIZED, Knobs(64, 32, 16, 4, 0.001))
    validate_config(config)
    assert "base_url" not in config and "api_key" not in config
    assert config["timeout_s"] == 10.0
    client = create_fast_client(config, base_url="http://127.0.0.1:9/v1")
    try:
        status = client.optimization_status()
        assert status["mode"] == "optimized"
    finally:
        await client.aclose()


# --- the sweep's rules, with a fake measurement ---------------------------------------------


class FakeLab:
    """Measures a USL curve (lambda 40, sigma 0.02, kappa 5e-4: peak near N = 44); a pool
    smaller than N costs 30% of throughput; p95 = 10 ms x N; each point costs 3 s of a fake
    clock."""

    def __init__(self, p95_max_s: float = 10.0, p95_verdict: str | None = None) -> None:
        self.now = 0.0
        self.p95_max_s = p95_max_s
        self.p95_verdict = p95_verdict  # forces the p95 gate's verdict when set
        self.measured: list[tuple[Phase, Knobs]] = []

    def clock(self) -> float:
        return self.now

    async def measure(self, knobs: Knobs, phase: Phase, window_s: float) -> SweepPoint:
        self.now += 3.0
        self.measured.append((phase, knobs))
        ops = float(usl_throughput(knobs.concurrency, 40.0, 0.02, 5e-4))
        if knobs.connection_pool_size < knobs.concurrency:
            ops *= 0.7
        p95 = 0.01 * knobs.concurrency
        verdict = self.p95_verdict or ("pass" if p95 < self.p95_max_s else "fail")
        gates = [_gate("p95 latency", verdict)]
        ok, missed, unsure = judge(gates)
        return SweepPoint(
            index=len(self.measured) - 1, phase=phase, concurrency=knobs.concurrency,
            max_concurrent_requests=knobs.concurrency,
            connection_pool_size=knobs.connection_pool_size, workers=knobs.workers,
            max_batch_size=knobs.max_batch_size, batch_window_s=knobs.batch_window_s,
            window_s=window_s, successes=int(ops * window_s), failures=0, in_flight_at_end=0,
            throughput_ops=ops, attempted_ops=ops, error_rate=0.0,
            service_time=LatencySummary(count=100, p50_s=p95 / 2, p90_s=p95, p95_s=p95,
                                        p99_s=p95, p999_s=p95, max_s=p95, mean_s=p95 / 2,
                                        insufficient=[], histogram=""),
            cpu_percent_mean=50.0, ops_per_cpu_second=None, generator_saturated=False,
            warnings=[], gates=gates, meets_gates=ok, missed_gates=missed, unsure_gates=unsure,
            shortfall=0.0 if ok else 1.0,
        )  # fmt: skip


def _run(lab: FakeLab, budget_s: float) -> tuple[_Sweep, str]:
    import asyncio

    timing = TrialTiming(warmup_s=0.5, window_s=2.0, confirm_window_s=4.0)
    sweep = _Sweep(OPTIMIZED, "t", budget_s, timing, lab.clock)
    seen: list[int] = []
    reason = asyncio.run(_sweep(sweep, lab.measure, lambda p, r: seen.append(p.index)))
    assert seen == list(range(len(sweep.points)))  # on_point after every point, in order
    return sweep, reason


def test_load_phase_doubles_until_throughput_stops_rising_then_tunes_pool_and_processor() -> None:
    lab = FakeLab()
    sweep, reason = _run(lab, budget_s=1000.0)
    load = [k.concurrency for phase, k in lab.measured if phase == "concurrency"]
    # X(32) = 604.9 ops/s, X(64) = 598.7: the curve stops rising at N = 64.
    assert load == [1, 2, 4, 8, 16, 32, 64]
    assert reason == "throughput stopped rising at N=64 (< +5%)"
    rest = [(phase, k.connection_pool_size, k.workers) for phase, k in lab.measured[7:]]
    # best so far: N=32 (X(64) is within 2% of it and uses more); pool 50 -> 32, 16
    assert rest[:2] == [("pool", 32, 32), ("pool", 16, 32)]
    # pool 32 ties pool 50 and is smaller (pool 16 < N loses 30%): the processor phase
    # starts from pool 32
    assert [r[0] for r in rest[2:]] == ["processor"] * 3
    assert {r[1] for r in rest[2:]} == {32}
    chosen = select_point([p.score() for p in sweep.points])
    assert chosen is not None
    best = sweep.points[chosen].knobs()
    assert (best.concurrency, best.connection_pool_size) == (32, 32)
    assert best.workers == 8  # the processor points tie (same fake throughput): fewest workers


def test_a_load_gate_that_breaks_stops_the_load_phase() -> None:
    lab = FakeLab(p95_max_s=0.05)  # p95 = 10 ms x N: fails from N = 8
    _, reason = _run(lab, budget_s=1000.0)
    assert [k.concurrency for phase, k in lab.measured if phase == "concurrency"] == [1, 2, 4, 8]
    assert reason == "p95 latency gate broke at N=8"


def test_the_budget_stops_the_sweep_and_keeps_room_for_the_confirmation() -> None:
    # The confirmation needs 0.5 + 4 + 0.3 = 4.8 s; a point is measured only while the cost of
    # the last one (3 s; before the first, 0.5 + 2 + 2 x 0.3 = 3.1 s) + 4.8 s remain: with
    # 20 s, points at t = 0, 3, 6, 9, 12 (8 s left); at 15 s, 5 s are left: stop.
    lab = FakeLab()
    sweep, reason = _run(lab, budget_s=20.0)
    assert len(sweep.points) == 5 and lab.now == 15.0
    assert reason == "the budget ran out before N=32"


async def test_a_stop_ends_the_sweep_interrupted_without_a_confirmation(tmp_path: Path) -> None:
    import asyncio

    from harborbench.profile import load_profile_dict
    from harborbench.tune import atune

    data = OPTIMIZED.model_dump(mode="json")
    data["target"] = {"mock": {"latency": {"distribution": "fixed", "value": "5ms"}}}
    stop = asyncio.Event()
    seen: list[int] = []

    def on_point(point: SweepPoint, so_far: object) -> None:
        seen.append(point.index)
        stop.set()  # as Ctrl-C would, after the first point

    result = await atune(load_profile_dict(data), budget_s=20.0, on_point=on_point, stop=stop)
    assert result.interrupted and result.stop_reason == "interrupted"
    assert seen == [0] and len(result.points) == 1
    assert result.confirmation is None and result.recommended_config is None


async def test_a_saturated_confirmation_carries_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    from typing import Any

    import harborbench.engine.session as session_module
    import harborbench.tune as tune_module
    from harborbench.engine.runner import arun

    short = OPTIMIZED.model_copy(update={"duration": 1.0, "warmup": 0.0})
    template = (await arun(short)).trials[0]
    saturated = template.model_copy(
        update={"health": template.health.model_copy(update={"generator_saturated": True})}
    )

    @contextlib.contextmanager
    def no_target(profile: Any) -> Any:
        yield "http://127.0.0.1:1/v1", None, None

    async def fake_trial(variant: Any, *args: Any, **kwargs: Any) -> TrialResult:
        # flat throughput: the load phase stops at the second point; only the confirmation
        # (twice the sweep's 2.4 s window) finds the generator saturated
        return saturated if variant.duration > 3.0 else template

    monkeypatch.setattr(session_module, "open_target", no_target)
    monkeypatch.setattr(session_module, "run_trial", fake_trial)
    result = await tune_module.atune(
        OPTIMIZED.model_copy(update={"gates": OPTIMIZED.gates.model_copy(update={
            "throughput_min": None, "p95_max": None})}),
        budget_s=60.0,
    )  # fmt: skip
    assert result.confirmation is not None and result.confirmation.point.generator_saturated
    assert not result.points[result.chosen].generator_saturated
    assert any(n.startswith("the load generator was saturated during the confirmation")
               for n in result.notes)  # fmt: skip


class GoodputLab(FakeLab):
    """The same curve; from N = 8 on, only 8/N of the requests meet the objectives."""

    async def measure(self, knobs: Knobs, phase: Phase, window_s: float) -> SweepPoint:
        point = await super().measure(knobs, phase, window_s)
        share = min(1.0, 8 / knobs.concurrency)
        return point.model_copy(update={"goodput_ops": point.throughput_ops * share})


def test_objective_goodput_stops_and_chooses_by_goodput() -> None:
    import asyncio

    lab = GoodputLab()
    timing = TrialTiming(warmup_s=0.5, window_s=2.0, confirm_window_s=4.0)
    sweep = _Sweep(OPTIMIZED, "t", 1000.0, timing, lab.clock, objective="goodput")
    reason = asyncio.run(_sweep(sweep, lab.measure, None))
    load = [k.concurrency for phase, k in lab.measured if phase == "concurrency"]
    assert load == [1, 2, 4, 8, 16]  # throughput still rises at 16, goodput does not
    assert reason == "goodput stopped rising at N=16 (< +5%)"
    chosen = select_point([p.score("goodput") for p in sweep.points])
    assert chosen is not None and sweep.points[chosen].concurrency == 8
    assert sweep.result("done").objective == "goodput"
    by_throughput = select_point([p.score() for p in sweep.points])
    assert by_throughput is not None and sweep.points[by_throughput].concurrency == 16


def test_objective_goodput_needs_an_slo() -> None:
    import asyncio

    from harborbench.tune import atune

    with pytest.raises(UserInputError, match="no slo section"):
        asyncio.run(atune(OPTIMIZED, budget_s=60.0, objective="goodput"))


def test_the_sweep_result_keeps_no_header_value() -> None:
    from harborbench.profile import load_profile_dict

    data = OPTIMIZED.model_dump(mode="json")
    data["request"]["headers"] = {"X-Secret": "literal-value", "X-Env": {"env": "SOME_VAR"}}
    profile = load_profile_dict(data)
    timing = TrialTiming(warmup_s=0.5, window_s=2.0, confirm_window_s=4.0)
    result = _Sweep(profile, "t", 100.0, timing, lambda: 0.0).result("done")
    assert "literal-value" not in result.model_dump_json()
    assert result.profile["request"]["headers"] == {
        "X-Secret": "<redacted>",
        "X-Env": {"env": "SOME_VAR"},
    }
