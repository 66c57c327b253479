"""tune's rules at their boundaries, and a whole ``atune`` with a scripted target (no server).

Behaviour only: which point is chosen, with which settings, why the sweep stopped, which notes
and flags the result carries; not how the client configuration is spelled inside.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import harborbench.engine.session as session_module
import harborbench.tune as tune_module
from harborbench.errors import (
    AllRequestsFailedError,
    ProfileError,
    TargetUnreachableError,
    UserInputError,
)
from harborbench.profile import Gates
from harborbench.result import HealthFigures, LatencySummary, MemoryFigures, TrialResult
from harborbench.tune import (
    TIE_FRACTION,
    Knobs,
    PointScore,
    TrialTiming,
    closest_point,
    gate_shortfall,
    judge,
    saturation_note,
    select_point,
)
from harborbench.tune.result import TUNE_SCHEMA_VERSION, Phase, SweepPoint, TuneResult
from harborbench.tune.sweep import TRIAL_OVERHEAD_S, _Sweep, _sweep, check_budget
from tests.compare.test_compare import make_trial
from tests.tune.test_tune import OPTIMIZED, FakeLab, _gate


def _score(n: int, ops: float, ok: bool = True, pool: int = 8, workers: int | None = None,
           shortfall: float = 0.0) -> PointScore:  # fmt: skip
    return PointScore(Knobs(n, pool, workers, 1 if workers else None), ops, ok, shortfall)


# --- the choice -----------------------------------------------------------------------------


def test_a_point_exactly_at_the_tie_margin_is_tied() -> None:
    edge = (1.0 - TIE_FRACTION) * 1000.0
    assert select_point([_score(64, 1000.0), _score(32, edge)]) == 1
    below = edge * (1 - 1e-12)
    assert select_point([_score(64, 1000.0), _score(32, below)]) == 0


def test_the_tie_margin_is_a_parameter() -> None:
    scores = [_score(64, 1000.0), _score(32, 990.0)]
    assert select_point(scores) == 1
    assert select_point(scores, tie_fraction=0.0) == 0
    assert select_point(scores, tie_fraction=0.005) == 0


def test_equal_resources_go_to_the_higher_value_then_the_earlier_point() -> None:
    assert select_point([_score(8, 990.0), _score(8, 1000.0)]) == 1
    assert select_point([_score(8, 1000.0), _score(8, 1000.0)]) == 0
    # workers count as resources; no processor counts as 0 workers
    assert select_point([_score(8, 1000.0, workers=4), _score(8, 1000.0, workers=2)]) == 1
    assert select_point([_score(8, 1000.0, workers=2), _score(8, 1000.0)]) == 1


def _sat(n: int, ops: float, ok: bool = True) -> PointScore:
    return PointScore(Knobs(n, 8), ops, ok, 0.0, saturated=True)


def test_a_saturated_point_is_never_chosen_and_the_best_trusted_one_is() -> None:
    # without the check the saturated N=32 would win (it ties 990 with fewer resources than N=64)
    scores = [_score(64, 990.0), _sat(32, 1000.0), _score(8, 969.0)]
    assert select_point(scores) == 0
    note = saturation_note(scores)
    assert note is not None and note.startswith("point 1 (N=32 pool=8, 1,000.0 ops/s) met every")
    assert note.endswith("recommended instead: the best unsaturated point, point 0 "
                         "(N=64 pool=8, 990.0 ops/s)")  # fmt: skip
    # the tie margin is taken from the best trusted point (990), not the saturated 1000
    edge = (1.0 - TIE_FRACTION) * 990.0
    assert select_point([_score(64, 990.0), _sat(32, 1000.0), _score(8, edge)]) == 2
    below = edge * (1 - 1e-12)
    assert select_point([_score(64, 990.0), _sat(32, 1000.0), _score(8, below)]) == 0


def test_a_saturated_point_that_would_not_win_is_not_mentioned() -> None:
    # the saturated point is below the tie margin of the trusted best: same choice, no note
    scores = [_score(16, 1000.0), _sat(8, 979.9)]
    assert select_point(scores) == 0 and saturation_note(scores) is None
    # a saturated point that misses a gate is no candidate either way
    scores = [_score(16, 500.0), _sat(32, 2000.0, ok=False)]
    assert select_point(scores) == 0 and saturation_note(scores) is None


def test_only_saturated_points_meeting_the_gates_recommend_nothing() -> None:
    scores = [_score(4, 100.0, ok=False), _sat(8, 800.0), _sat(16, 810.0)]
    assert select_point(scores) is None
    note = saturation_note(scores)
    assert note is not None and "Every point that met the gates (1, 2) was saturated, so " \
        "nothing is recommended" in note  # fmt: skip
    assert note.startswith("point 1 (N=8 pool=8, 800.0 ops/s)")  # tied: fewer resources
    assert select_point([]) is None and saturation_note([]) is None


def test_the_closest_miss_prefers_the_smaller_shortfall_then_the_higher_value() -> None:
    scores = [_score(1, 10.0, False, shortfall=0.5), _score(2, 5.0, False, shortfall=0.4)]
    assert closest_point(scores) == 1
    tied = [_score(1, 10.0, False, shortfall=0.4), _score(2, 10.0, False, shortfall=0.4)]
    assert closest_point(tied) == 0


def _trial(**kw: Any) -> TrialResult:
    fields: dict[str, Any] = {
        "health": HealthFigures.model_construct(unsent=0, level_unit="concurrency"),
        "successes": 95, "failures": 5, "throughput_ops": 1000.0, "error_rate": 0.05,
        "service_time": LatencySummary.model_construct(p95_s=0.1),
        "memory": MemoryFigures.model_construct(growth_pct=0.0),
    }  # fmt: skip
    fields.update(kw)
    return TrialResult.model_construct(**fields)


@pytest.mark.parametrize(
    ("gates", "trial", "shortfall"),
    [
        ({"success_rate_min": "99%"}, {}, 0.04 / 0.99),  # 95% of 99%
        ({"success_rate_min": "95%"}, {}, 0.0),
        # unmeasured (1) and without a single success (1)
        ({"success_rate_min": "95%"}, {"successes": 0, "failures": 0}, 2.0),
        ({"memory_growth_max_pct": 20.0}, {"successes": 0}, 1.0),  # no success: 1 alone
        ({"throughput_min": 1000.0}, {"successes": 0, "throughput_ops": 0.0}, 2.0),  # 1 + 1
        ({"memory_growth_max_pct": 20.0}, {"successes": 1}, 0.0),
        ({"p95_max": "50ms"}, {}, 1.0),  # 100 ms against 50 ms
        ({"p95_max": "50ms"}, {"service_time": LatencySummary.model_construct(p95_s=None)}, 1.0),
        ({"error_rate_max": "0%"}, {}, 5.0),  # 0.05 divided by the floor 0.01
        ({"error_rate_max": "1%"}, {"error_rate": None}, 1.0),
        ({"memory_growth_max_pct": 0.0}, {"memory": MemoryFigures.model_construct(
            growth_pct=3.0)}, 3.0),  # divided by the floor of 1%
        ({"memory_growth_max_pct": 20.0}, {"memory": MemoryFigures.model_construct(
            growth_pct=30.0)}, 0.5),
        ({"throughput_min": 2000.0}, {}, 0.5),
        ({"throughput_min": 1000.0}, {}, 0.0),  # exactly at the limit: no miss
        ({"memory_slope_max_mb_per_min": 1.0}, {}, 0.0),  # the slope is never used
    ],
)  # fmt: skip
def test_gate_shortfall_per_gate(gates: dict[str, Any], trial: dict[str, Any],
                                 shortfall: float) -> None:  # fmt: skip
    assert gate_shortfall(_trial(**trial), Gates.model_validate(gates)) == pytest.approx(shortfall)


# --- timing -----------------------------------------------------------------------------------


def test_timing_clamps_at_its_ceilings_and_the_budget_floor_is_inclusive() -> None:
    big = TrialTiming.from_budget(1000.0)
    assert (big.warmup_s, big.window_s, big.confirm_window_s) == (5.0, 30.0, 60.0)
    floor = TrialTiming.from_budget(15.0)
    assert (floor.warmup_s, floor.window_s) == (0.5, 1.0)
    mid = TrialTiming.from_budget(130.0)  # unit 8 s: warmup 2, window 8 - 2 - 0.3
    assert (mid.warmup_s, mid.window_s, mid.confirm_window_s) == (2.0, 5.7, 11.4)
    check_budget(15.0)
    with pytest.raises(UserInputError) as caught:
        check_budget(14.9, " 14.9s ")
    assert str(caught.value) == (
        "--budget 14.9s is too short for a sweep; give at least 15s, for example --budget 1m."
    )


def test_knob_labels() -> None:
    assert Knobs(32, 16).label() == "N=32 pool=16"
    assert Knobs(32, 16, 8, 1, 0.0).label() == "N=32 pool=16 workers=8"
    assert Knobs(32, 16, 8, 4, 0.001).label() == "N=32 pool=16 workers=8 batch=4/1ms"
    assert Knobs(32, 16, 8, 2, None).label() == "N=32 pool=16 workers=8 batch=2/0ms"


# --- a whole sweep against a scripted target ----------------------------------------------------


class _Target:
    """Throughput 100 ops/s per worker up to 8 workers, then flat; every knob but N is free.
    The confirmation (the longer window) measures ``confirm_factor`` x the sweep's figure."""

    def __init__(self, confirm_factor: float = 1.0, first: TrialResult | None = None,
                 saturated: bool = False, saturated_from: int | None = None) -> None:  # fmt: skip
        self.confirm_factor = confirm_factor
        self.first = first
        self.saturated = saturated
        self.saturated_from = saturated_from  # N from which the generator saturates
        self.calls: list[tuple[int, float]] = []

    async def run_trial(self, variant: Any, plan: Any, base_url: str, api_key: Any,
                        **kwargs: Any) -> TrialResult:  # fmt: skip
        n = variant.load.concurrency
        self.calls.append((n, variant.duration))
        if self.first is not None and len(self.calls) == 1:
            return self.first
        level = 100 * min(n, 8)
        if variant.duration > 3.0:  # the confirmation's window is twice the sweep's
            level = int(level * self.confirm_factor)
        trial = make_trial(kwargs["index"], [level, level])
        if self.saturated or (self.saturated_from is not None and n >= self.saturated_from):
            health = trial.health.model_copy(update={"generator_saturated": True})
            trial = trial.model_copy(update={"health": health})
        return trial


def _atune(monkeypatch: pytest.MonkeyPatch, target: _Target, **kw: Any) -> Any:
    @contextlib.contextmanager
    def no_server(profile: Any) -> Iterator[tuple[str, None, None]]:
        yield "http://127.0.0.1:9/v1", None, None

    monkeypatch.setattr(session_module, "open_target", no_server)
    monkeypatch.setattr(session_module, "run_trial", target.run_trial)
    profile = OPTIMIZED.model_copy(update={"gates": Gates(error_rate_max=0.05)})
    return asyncio.run(tune_module.atune(profile, budget_s=60.0, **kw))


def test_atune_chooses_the_fewest_resources_at_the_best_throughput(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = _Target()
    result = _atune(monkeypatch, target)
    assert [n for n, _ in target.calls[:5]] == [1, 2, 4, 8, 16]
    assert result.stop_reason == "throughput stopped rising at N=16 (< +5%)"
    phases = [p.phase for p in result.points]
    assert phases == ["concurrency"] * 5 + ["pool"] * 2 + ["processor"] * 3
    best = result.points[result.chosen].knobs()
    assert best == Knobs(8, 4, 2, 4, 0.0)  # N=8 ties N=16; then the smallest pool and workers
    assert result.closest is None and not result.interrupted
    conf = result.confirmation
    assert conf is not None and conf.point.index == -1
    assert conf.ratio_to_sweep == pytest.approx(1.0) and conf.sweep_throughput_ops == 800.0
    assert target.calls[-1] == (8, 4.838)  # the confirmation: twice the sweep's window
    assert result.recommended_config is not None
    assert result.recommended_config["max_concurrent_requests"] == 8
    assert not any("confirmation measured" in n or "saturated" in n for n in result.notes)


@pytest.mark.parametrize(("factor", "noted"), [(0.7, True), (0.85, False), (1.3, True)])
def test_a_confirmation_far_from_the_sweep_gets_a_note(
    monkeypatch: pytest.MonkeyPatch, factor: float, noted: bool
) -> None:
    result = _atune(monkeypatch, _Target(confirm_factor=factor))
    assert result.confirmation.ratio_to_sweep == pytest.approx(factor, rel=1e-9)
    text = f"the confirmation measured x{factor:.2f} the sweep's throughput"
    assert any(n.startswith(text) for n in result.notes) is noted


def test_when_every_point_is_saturated_nothing_is_recommended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = _atune(monkeypatch, _Target(saturated=True))
    assert all(p.generator_saturated for p in result.points)
    assert [p.concurrency for p in result.points] == [1, 2, 4, 8, 16]
    assert all(p.meets_gates for p in result.points)  # met, but not trusted
    assert result.chosen is None and result.recommended_config is None
    assert result.confirmation is None and result.only_saturated_met()
    assert result.stop_reason == (
        "throughput stopped rising at N=16 (< +5%); no point met the gates with the load "
        "generator unsaturated, so no smaller settings were tried"
    )
    assert result.notes[-1] == (
        "point 3 (N=8 pool=50 workers=8, 800.0 ops/s) met every gate but its measurement is "
        "not trusted: the load generator was saturated (its CPU, event loop or send schedule "
        "was the bottleneck; see the point's warnings). Every point that met the gates "
        "(0, 1, 2, 3, 4) was saturated, so nothing is recommended: run tune again with nothing "
        "else on this machine, or on a larger one"
    )


def test_a_saturated_best_point_falls_back_to_the_best_unsaturated_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = _Target(saturated_from=8)  # 800 ops/s at N=8 and 16, but saturated there
    result = _atune(monkeypatch, target)
    assert [p.generator_saturated for p in result.points[:5]] == [False] * 3 + [True] * 2
    best = result.points[result.chosen]
    assert not best.generator_saturated and best.throughput_ops == 400.0
    assert best.knobs() == Knobs(4, 2, 1, 4, 0.0)  # N=4, then the fewest resources
    assert result.recommended_config is not None
    assert result.recommended_config["max_concurrent_requests"] == 4
    assert target.calls[-1] == (4, 4.838)  # the confirmation at N=4
    assert result.notes[-1] == (
        "point 3 (N=8 pool=50 workers=8, 800.0 ops/s) met every gate but its measurement is "
        "not trusted: the load generator was saturated (its CPU, event loop or send schedule "
        "was the bottleneck; see the point's warnings); recommended instead: the best "
        f"unsaturated point, point {result.chosen} ({best.knobs().label()}, 400.0 ops/s)"
    )
    assert not any("during the confirmation" in n for n in result.notes)


def test_no_point_meeting_the_gates_names_the_closest_and_recommends_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @contextlib.contextmanager
    def no_server(profile: Any) -> Iterator[tuple[str, None, None]]:
        yield "http://127.0.0.1:9/v1", None, None

    target = _Target()
    monkeypatch.setattr(session_module, "open_target", no_server)
    monkeypatch.setattr(session_module, "run_trial", target.run_trial)
    profile = OPTIMIZED.model_copy(update={"gates": Gates(throughput_min=10_000.0)})
    result = asyncio.run(tune_module.atune(profile, budget_s=60.0))
    assert result.chosen is None and result.confirmation is None
    assert result.recommended_config is None
    assert result.points[result.closest].concurrency == 8  # the smallest miss, earliest
    assert result.stop_reason.endswith("no point met the gates, so no smaller settings were tried")
    assert all(p.phase == "concurrency" for p in result.points)


def test_nothing_succeeding_at_the_first_point_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    down = make_trial(0, [0, 0], failures=[3, 2])
    refused = down.model_copy(update={"failures_by_kind": {"connection": 5}})
    with pytest.raises(TargetUnreachableError) as caught:
        _atune(monkeypatch, _Target(first=refused))
    assert "every request of the first sweep point failed (connection x5)" in str(caught.value)
    assert caught.value.hint == "Is the target at http://127.0.0.1:9/v1 up?"
    with pytest.raises(AllRequestsFailedError, match=r"\(http_500 x5\)"):
        _atune(monkeypatch, _Target(first=down))
    silent = make_trial(0, [0, 0])
    with pytest.raises(AllRequestsFailedError, match=r"\(none completed\); first error: no "
                       "request completed in the window"):  # fmt: skip
        _atune(monkeypatch, _Target(first=silent))


# --- settings of the later phases, and what a point records -------------------------------------


def test_resource_keys_count_a_missing_processor_as_nothing() -> None:
    assert Knobs(8, 4).resource_key() == (8, 4, 0, 0)
    assert Knobs(8, 4, 2, 3, 0.0).resource_key() == (8, 4, 2, 3)
    # no processor beats a processor with one worker at the same N and pool
    assert select_point([_score(8, 1000.0, workers=1), _score(8, 1000.0)]) == 1


def test_processor_candidates_at_small_n_and_from_a_batched_base() -> None:
    def knobs(base: Knobs) -> list[tuple[int | None, int | None, float | None]]:
        return [(k.workers, k.max_batch_size, k.batch_window_s) for k in
                tune_module.processor_candidates(base)]  # fmt: skip

    assert knobs(Knobs(1, 1, 1, 1, 0.0)) == [(1, 2, 0.0), (1, 4, 0.0), (1, 4, 0.001)]
    assert knobs(Knobs(4, 4, 4, 1, 0.005)) == [(2, 2, 0.0), (1, 4, 0.0), (1, 4, 0.001)]
    assert knobs(Knobs(8, 8, 4, 2, 0.0)) == [(2, 4, 0.0), (2, 4, 0.001)]  # the base itself left out


def test_pool_candidates_stay_whole_numbers_of_at_least_one() -> None:
    got = tune_module.pool_candidates(Knobs(4, 3, 4, 1, 0.0))
    assert [k.label() for k in got] == ["N=4 pool=2 workers=4", "N=4 pool=1 workers=4"]


def test_gates_text() -> None:
    from tests.tune.test_tune import FakeLab

    point = asyncio.run(FakeLab().measure(Knobs(1, 1), "concurrency", 1.0))
    assert point.gates_text() == "meets every gate"
    both = point.model_copy(update={"meets_gates": False, "missed_gates": ["a", "b"],
                                    "unsure_gates": ["c", "d"]})  # fmt: skip
    assert both.gates_text() == "misses a, b; inconclusive: c, d"


def test_a_point_records_the_trial_figures() -> None:
    from harborbench.tune.sweep import _Sweep

    trial = make_trial(0, [50, 50], failures=[1, 1]).model_copy(update={"goodput_ops": 12.5})
    sweep = _Sweep(OPTIMIZED, "t", 100.0, TrialTiming(0.5, 1.0, 2.0), lambda: 0.0)
    point = sweep.point(trial, Knobs(2, 2), "concurrency", 0)
    assert point.error_rate == pytest.approx(2 / 102)
    assert point.goodput_ops == 12.5 and point.value("goodput") == 12.5
    assert point.ops_per_cpu_second == trial.cpu.ops_per_cpu_second == pytest.approx(100.0)


def test_a_points_value_and_score_for_each_objective() -> None:
    from harborbench.tune.sweep import _Sweep

    trial = make_trial(0, [50, 50], failures=[1, 1]).model_copy(update={"goodput_ops": 12.5})
    gates = Gates.model_validate({"throughput_min": 100.0})
    sweep = _Sweep(OPTIMIZED.model_copy(update={"gates": gates}), "t", 100.0,
                   TrialTiming(0.5, 1.0, 2.0), lambda: 0.0)  # fmt: skip
    point = sweep.point(trial, Knobs(2, 2), "concurrency", 0)
    assert (point.meets_gates, point.shortfall) == (False, 0.5)  # 50 ops/s of 100
    assert point.score() == PointScore(Knobs(2, 2), 50.0, False, 0.5)
    assert point.score("goodput") == PointScore(Knobs(2, 2), 12.5, False, 0.5)
    assert point.model_copy(update={"goodput_ops": None}).value("goodput") == 0.0  # unmeasured
    assert point.model_copy(update={"goodput_ops": 0.0}).value("goodput") == 0.0


def test_gate_shortfall_adds_the_success_rate_to_the_other_misses() -> None:
    gates = Gates.model_validate({"throughput_min": 2000.0, "success_rate_min": "99%"})
    assert gate_shortfall(_trial(), gates) == pytest.approx(0.5 + 0.04 / 0.99)


def test_mixed_failures_at_the_first_point_are_not_called_unreachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    down = make_trial(0, [0, 0], failures=[3, 2])
    mixed = down.model_copy(update={"failures_by_kind": {"connection": 3, "http_500": 2}})
    with pytest.raises(AllRequestsFailedError, match=r"\(connection x3, http_500 x2\)"):
        _atune(monkeypatch, _Target(first=mixed))


class _Recording(_Target):
    """Also records what each trial was given, and can interrupt the confirmation."""

    def __init__(self, interrupt_confirmation: bool = False) -> None:
        super().__init__()
        self.given: list[tuple[Any, Any]] = []
        self.interrupt_confirmation = interrupt_confirmation

    async def run_trial(self, variant: Any, plan: Any, base_url: str, api_key: Any,
                        **kwargs: Any) -> TrialResult:  # fmt: skip
        self.given.append((api_key, kwargs["server"]))
        trial = await super().run_trial(variant, plan, base_url, api_key, **kwargs)
        if self.interrupt_confirmation and variant.duration > 3.0:
            trial = trial.model_copy(update={"interrupted": True})
        return trial


def _atune_with(monkeypatch: pytest.MonkeyPatch, target: _Target, profile: Any, **kw: Any) -> Any:
    @contextlib.contextmanager
    def server(p: Any) -> Iterator[tuple[str, str, str]]:
        yield "http://127.0.0.1:9/v1", "key-1", "server-1"

    monkeypatch.setattr(session_module, "open_target", server)
    monkeypatch.setattr(session_module, "run_trial", target.run_trial)
    return asyncio.run(tune_module.atune(profile, budget_s=60.0, **kw))


def test_atune_passes_the_target_to_every_trial_and_predicts_the_confirmation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION", raising=False)
    target = _Recording()
    profile = OPTIMIZED.model_copy(update={"gates": Gates(error_rate_max=0.05)})
    result = _atune_with(monkeypatch, target, profile)
    assert set(target.given) == {("key-1", "server-1")}
    assert result.notes == []  # closed loop, no environment override, a faithful confirmation
    best = result.points[result.chosen]
    predicted = result.fit.predict(best.concurrency)
    assert predicted is not None
    assert result.confirmation.usl_predicted_ops == pytest.approx(predicted)


def test_atune_notes_an_open_loop_profile_and_the_environment_switch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harborbench.profile import load_profile
    from tests.tune.test_tune import ROOT

    monkeypatch.setenv("HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION", "1")
    steady = load_profile(ROOT / "profiles/steady.yaml")
    profile = steady.model_copy(update={"gates": Gates(error_rate_max=0.05)})
    result = _atune_with(monkeypatch, _Recording(), profile)
    assert result.notes[:2] == [
        "the profile's open load is replaced by closed-loop concurrency for the sweep; p95 is "
        "judged on service time",
        "HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION is set in the environment",
    ]


def test_an_interrupted_confirmation_ends_the_tune_interrupted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile = OPTIMIZED.model_copy(update={"gates": Gates(error_rate_max=0.05)})
    result = _atune_with(monkeypatch, _Recording(interrupt_confirmation=True), profile)
    assert (result.stop_reason, result.interrupted) == ("interrupted", True)
    assert result.confirmation is None and result.recommended_config is None


def test_atune_by_goodput_chooses_by_goodput(monkeypatch: pytest.MonkeyPatch) -> None:
    from harborbench.profile import load_profile_dict

    data = OPTIMIZED.model_dump(mode="json")
    data["slo"] = {"latency_max": "200ms"}
    data["gates"] = {"error_rate_max": "5%"}
    result = _atune_with(monkeypatch, _Recording(), load_profile_dict(data), objective="goodput")
    # the scripted trials carry no goodput: it does not rise, so the load phase stops at N=2
    # (it used to double N up to 1024, as 0 < 1.05 x 0 never held), and the fewest resources win
    assert result.objective == "goodput"
    assert result.stop_reason == "goodput stopped rising at N=2 (< +5%)"
    assert result.points[result.chosen].concurrency == 1


def test_goodput_without_an_slo_says_how_to_add_one() -> None:
    with pytest.raises(UserInputError) as caught:
        asyncio.run(tune_module.atune(OPTIMIZED, budget_s=60.0, objective="goodput"))
    assert str(caught.value).startswith(
        "--objective goodput needs per-request objectives: the profile has no slo section."
    )
    assert caught.value.hint == (
        "Add for example slo: {latency_max: 200ms} (or --set 'slo={latency_max: 200ms}')."
    )


# --- what atune hands on, and its notes in full -------------------------------------------------

CONFIRM_NOTE = (
    "the confirmation measured x{ratio:.2f} the sweep's throughput at these settings: short "
    "trials on this machine are noisy, or the point sits near a cliff; a larger --budget gives "
    "longer trials"
)
SATURATED_NOTE = (
    "the load generator was saturated during the confirmation: its figures are the limit of "
    "this machine's harness as much as the client's, so it confirms the recommendation (from an "
    "unsaturated sweep point) only weakly; run it again with nothing else on this machine"
)


class _Shaped(_Target):
    """Each trial is ``shape(n, confirming)``: N's closed-loop level, and whether it is the
    confirmation (the longer window)."""

    def __init__(self, shape: Any) -> None:
        super().__init__()
        self.shape = shape

    async def run_trial(self, variant: Any, plan: Any, base_url: str, api_key: Any,
                        **kwargs: Any) -> TrialResult:  # fmt: skip
        n = variant.load.concurrency
        self.calls.append((n, variant.duration))
        trial: TrialResult = self.shape(n, variant.duration > 3.0)
        return trial.model_copy(update={"index": kwargs["index"]})


def _saturated(trial: TrialResult) -> TrialResult:
    health = trial.health.model_copy(update={"generator_saturated": True})
    return trial.model_copy(update={"health": health})


def test_the_notes_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    far = _atune(monkeypatch, _Target(confirm_factor=0.7))
    assert far.notes == [CONFIRM_NOTE.format(ratio=0.7)]

    def saturated_confirmation(n: int, confirming: bool) -> TrialResult:
        trial = make_trial(0, [100 * min(n, 8)] * 2)
        return _saturated(trial) if confirming else trial

    result = _atune(monkeypatch, _Shaped(saturated_confirmation))
    assert not result.points[result.chosen].generator_saturated
    assert result.confirmation.point.generator_saturated
    assert result.notes == [SATURATED_NOTE]


def test_a_confirmation_ratio_at_one_op_per_second_and_none_at_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow = _atune(monkeypatch, _Shaped(lambda n, confirming: make_trial(0, [1, 1])))
    assert slow.confirmation.sweep_throughput_ops == 1.0
    assert slow.confirmation.ratio_to_sweep == 1.0

    # With only a memory gate, a point where nothing succeeded passes every gate, yet it is no
    # setting to recommend: it misses "at least one successful request".
    def shape(n: int, confirming: bool) -> TrialResult:
        return make_trial(0, [100, 100], growth_pct=50.0) if n == 1 else make_trial(0, [0, 0])

    profile = OPTIMIZED.model_copy(update={"gates": Gates(memory_growth_max_pct=10.0)})
    result = _atune_with(monkeypatch, _Shaped(shape), profile)
    assert result.chosen is None
    empty = result.points[1]
    assert (empty.successes, empty.meets_gates) == (0, False)
    assert empty.missed_gates == ["at least one successful request"]
    assert [g.verdict for g in empty.gates] == ["pass"]


def test_the_environment_is_collected_once_for_the_sweep_and_its_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import harborbench.tune.sweep as sweep_module

    calls: list[str] = []

    def collect(where: str) -> Any:
        def collected() -> dict[str, str]:
            calls.append(where)
            return {"collected": where}

        return collected

    monkeypatch.setattr(sweep_module, "collect_environment", collect("sweep"))
    monkeypatch.setattr(session_module, "collect_environment", collect("session"))
    result = _atune(monkeypatch, _Target())
    assert calls == ["sweep"]
    assert result.environment == {"collected": "sweep"}


def test_the_confirmation_measures_the_point_chosen_by_goodput(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harborbench.profile import load_profile_dict

    data = OPTIMIZED.model_dump(mode="json")
    data["slo"] = {"latency_max": "200ms"}
    data["gates"] = {"error_rate_max": "5%"}

    def shape(n: int, confirming: bool) -> TrialResult:
        # throughput rises with N up to 8 while goodput falls: 400 ops/s at N=1, 50 at N=8
        trial = make_trial(0, [100 * min(n, 8)] * 2)
        return trial.model_copy(update={"goodput_ops": 400.0 / min(n, 8)})

    result = _atune_with(monkeypatch, _Shaped(shape), load_profile_dict(data), objective="goodput")
    best = result.points[result.chosen]
    assert best.concurrency == 1
    assert result.confirmation.point.knobs() == best.knobs()
    # the pool and processor phases tried smaller settings around that point (N=1), too
    assert {p.concurrency for p in result.points if p.phase != "concurrency"} == {1}
    assert result.confirmation.sweep_throughput_ops == 100.0


def test_budget_text_and_labels_at_their_edges() -> None:
    with pytest.raises(UserInputError, match=r"^--budget 500ms is too short"):
        check_budget(0.5)
    with pytest.raises(UserInputError, match=r"^--budget 0s is too short"):
        check_budget(0.0)
    assert Knobs(32, 16, 8).label() == "N=32 pool=16 workers=8"  # no batch size: no batching


def test_an_invalid_point_names_itself() -> None:
    with pytest.raises(ProfileError, match=r"^invalid profile tune point N=0 pool=1: "):
        tune_module.trial_profile(OPTIMIZED, Knobs(0, 1), 1.0, 2.0)


# --- the phases on a scripted curve (a fake measurement and clock, no trial) ---------------------


class _CurveLab:
    """FakeLab's points with a scripted figure: ``ops(N)`` is their throughput and goodput;
    from N = ``broken_from`` on, the p95 and error-rate gates both fail; a point of phase
    ``interrupt_in`` is interrupted (no point)."""

    def __init__(self, ops: Callable[[int], float], broken_from: int | None = None,
                 interrupt_in: Phase | None = None) -> None:  # fmt: skip
        self.lab = FakeLab(p95_max_s=1e9)  # its own p95 gate never breaks
        self.clock, self.measured = self.lab.clock, self.lab.measured
        self.ops = ops
        self.broken_from = broken_from
        self.interrupt_in = interrupt_in

    async def measure(self, knobs: Knobs, phase: Phase, window_s: float) -> SweepPoint | None:
        point = await self.lab.measure(knobs, phase, window_s)
        if phase == self.interrupt_in:
            return None
        value = self.ops(knobs.concurrency)
        update: dict[str, Any] = {"throughput_ops": value, "goodput_ops": value}
        if self.broken_from is not None and knobs.concurrency >= self.broken_from:
            gates = [_gate("p95 latency", "fail"), _gate("error rate", "fail")]
            meets, missed, unsure = judge(gates)
            update.update(gates=gates, meets_gates=meets, missed_gates=missed,
                          unsure_gates=unsure, shortfall=1.0)  # fmt: skip
        return point.model_copy(update=update)


def _sweep_of(lab: _CurveLab, budget_s: float = 1000.0) -> tuple[Any, str, list[Any]]:
    timing = TrialTiming(warmup_s=0.5, window_s=2.0, confirm_window_s=4.0)
    sweep = _Sweep(OPTIMIZED, "t", budget_s, timing, lab.clock)
    seen: list[Any] = []

    def on_point(point: SweepPoint, so_far: TuneResult) -> None:
        seen.append((point.index, so_far.stop_reason, len(so_far.points)))

    reason = asyncio.run(_sweep(sweep, lab.measure, on_point))
    return sweep, reason, seen


def _load(lab: _CurveLab) -> list[int]:
    return [k.concurrency for phase, k in lab.measured if phase == "concurrency"]


def test_the_load_phase_doubles_up_to_its_maximum_and_reports_every_point() -> None:
    lab = _CurveLab(lambda n: 100.0 * n)  # never stops rising
    sweep, reason, seen = _sweep_of(lab)
    assert _load(lab) == [2**k for k in range(11)]  # 1 ... 1024, the maximum included
    assert reason == "concurrency reached the sweep's maximum (1024)"
    # on_point: after every point, with the result so far marked "running"
    assert seen == [(i, "running", i + 1) for i in range(len(sweep.points))]


@pytest.mark.parametrize(
    ("ops", "load", "stopped_at"),
    [
        ({1: 100.0, 2: 105.0, 4: 120.0}, [1, 2, 4, 8], 8),  # +5% exactly (1.05 x 100 == 105) rises
        ({1: 100.0, 2: 104.0}, [1, 2], 2),  # +4% does not
        ({1: 0.5, 2: 0.6}, [1, 2, 4], 4),  # a rise from under 1 op/s counts (the best starts at 0)
    ],
)
def test_the_load_phase_keeps_doubling_on_a_rise_of_at_least_5_percent(
    ops: dict[int, float], load: list[int], stopped_at: int
) -> None:
    last = ops[max(ops)]
    lab = _CurveLab(lambda n: ops.get(n, last))  # flat after the last entry
    _, reason, _ = _sweep_of(lab)
    assert _load(lab) == load
    assert reason == f"throughput stopped rising at N={stopped_at} (< +5%)"


def test_two_load_gates_breaking_at_once_are_both_named() -> None:
    lab = _CurveLab(lambda n: 100.0 * n, broken_from=4)
    _, reason, _ = _sweep_of(lab)
    assert _load(lab) == [1, 2, 4]
    assert reason == "p95 latency, error rate gate broke at N=4"


@pytest.mark.parametrize("phase", ["pool", "processor"])
def test_a_stop_in_a_later_phase_ends_the_sweep_interrupted(phase: Phase) -> None:
    lab = _CurveLab(lambda n: min(n, 8) * 100.0, interrupt_in=phase)
    sweep, reason, _ = _sweep_of(lab)
    assert reason == "interrupted"
    assert lab.measured[-1][0] == phase and sweep.points[-1].phase != phase


def test_a_point_is_affordable_while_its_cost_and_the_confirmation_still_fit() -> None:
    # Before the first point its cost is estimated as warmup + window + 2 x overhead; the
    # confirmation takes warmup + its window + overhead. Exactly that much left is enough.
    first = 0.5 + 2.0 + 2 * TRIAL_OVERHEAD_S
    confirm = 0.5 + 4.0 + TRIAL_OVERHEAD_S
    needed = first + confirm
    now = [0.0]
    sweep = _Sweep(OPTIMIZED, "t", 2 * needed, TrialTiming(0.5, 2.0, 4.0), lambda: now[0])
    for elapsed, affordable in [(needed, True), (needed + 0.01, False), (needed - 0.01, True)]:
        now[0] = elapsed  # 2 x needed - elapsed left
        assert sweep.affordable() is affordable, elapsed


def test_the_result_is_stamped_in_utc_with_its_elapsed_time_to_the_millisecond() -> None:
    now = [100.0]
    sweep = _Sweep(OPTIMIZED, "t", 60.0, TrialTiming(0.5, 2.0, 4.0), lambda: now[0])
    now[0] = 112.34567
    result = sweep.result("done")
    assert result.elapsed_s == 12.346
    assert result.created_at.endswith("+00:00")
    assert result.schema_version == TUNE_SCHEMA_VERSION


# --- the saturation rule's note, at its edges ----------------------------------------------------


def test_no_saturation_note_when_an_unsaturated_point_would_win_anyway() -> None:
    # Trusting the saturated N=64 raises the tie margin to 980: the unsaturated N=32 would win;
    # without it the margin is 970.2 and N=8 wins. A different choice, but not a saturated one.
    scores = [_sat(64, 1000.0), _score(32, 990.0), _score(8, 975.0)]
    assert select_point(scores) == 2
    assert saturation_note(scores) is None


def test_the_saturation_note_uses_the_given_tie_margin() -> None:
    scores = [_score(16, 1000.0), _sat(8, 985.0)]
    assert saturation_note(scores) is not None  # tied at 2%: the saturated N=8 would win
    assert saturation_note(scores, tie_fraction=0.01) is None  # not tied at 1%
    # at 1% the best unsaturated point is N=16 (N=8's 985 is not tied; at 2% it would be)
    scores = [_score(16, 1000.0), _score(8, 985.0), _sat(4, 1000.0)]
    note = saturation_note(scores, tie_fraction=0.01)
    assert note is not None and note.startswith("point 2 (N=4 pool=8, 1,000.0 ops/s)")
    assert note.endswith("recommended instead: the best unsaturated point, point 0 "
                         "(N=16 pool=8, 1,000.0 ops/s)")  # fmt: skip


def test_the_saturated_points_named_are_those_that_met_the_gates() -> None:
    scores = [_sat(4, 100.0, ok=False), _sat(8, 800.0), _sat(16, 810.0)]
    note = saturation_note(scores)
    assert note is not None and "Every point that met the gates (1, 2) was saturated" in note


def test_only_saturated_met_needs_no_choice_and_a_saturated_point_meeting_the_gates() -> None:
    def result(chosen: int | None, *points: tuple[bool, bool]) -> TuneResult:
        return TuneResult.model_construct(chosen=chosen, points=[
            SweepPoint.model_construct(meets_gates=m, generator_saturated=s) for m, s in points
        ])  # fmt: skip

    assert result(None, (False, False), (True, True)).only_saturated_met()
    assert not result(0, (True, False), (True, True)).only_saturated_met()  # one was chosen
    assert not result(None, (False, True), (False, False)).only_saturated_met()  # none met
    assert not result(None).only_saturated_met()
