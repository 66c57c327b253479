"""The plan's gates (harborbench.gates): every verdict boundary on each side, every alert level.

Trials are built directly (no server, no clock), so each test states exact figures.
"""

from __future__ import annotations

from typing import Any

import pytest

from harborbench.gates import (
    DEFAULT_DROPPED_MAX_PCT,
    NOT_MEASURED,
    PLAN_GATES,
    STALLED,
    dropped_pct,
    evaluate_gates,
    inconclusive_hint,
    success_rate,
)
from harborbench.metrics.histogram import LatencyHistogram
from harborbench.profile import Gates
from harborbench.result import GateResult, HealthFigures, LatencySummary, MemoryFigures, TrialResult


def _latency(
    p95_s: float | None, insufficient: tuple[str, ...] = (), samples_s: tuple[float, ...] = ()
) -> LatencySummary:
    h = LatencyHistogram()
    h.record_many_ns([round(x * 1e9) for x in samples_s])
    return LatencySummary.model_construct(
        p95_s=p95_s,
        insufficient=list(insufficient),
        count=len(samples_s),
        histogram=h.encode() if samples_s else "",
    )


def _memory(**kw: Any) -> MemoryFigures:
    fields: dict[str, Any] = {
        "growth_pct": 1.0,
        "slope_mb_per_min": 1.0,
        "slope_ci_low": 0.9,
        "slope_ci_high": 1.1,
        "trend_window_s": 300.0,
        "samples": 300,
        "verdict": "pass",
        "reason": "window of 5 min",
    }
    fields.update(kw)
    return MemoryFigures.model_construct(**fields)


def _health(
    unit: str = "concurrency", unsent: int = 0, sent_late: int = 0, lag_p99_s: float | None = None
) -> HealthFigures:
    return HealthFigures.model_construct(
        level_unit=unit, unsent=unsent, sent_late=sent_late, loop_lag_p99_s=lag_p99_s
    )


def _trial(**kw: Any) -> TrialResult:
    fields: dict[str, Any] = {
        "health": _health(),
        "in_flight_at_end": 0,
        "successes": 990,
        "failures": 10,
        "throughput_ops": 1000.0,
        "error_rate": 0.01,
        "service_time": _latency(0.1),
        "response_time": None,
        "memory": _memory(),
        "window_s": 300.0,
    }
    fields.update(kw)
    return TrialResult.model_construct(**fields)


def _gate(trial: TrialResult, name: str, **gates: Any) -> GateResult:
    found = [g for g in evaluate_gates(trial, Gates.model_validate(gates)) if g.name == name]
    assert len(found) == 1
    return found[0]


def test_the_plan_gates_are_the_spec_figures() -> None:
    assert PLAN_GATES.throughput_min == 1000.0
    assert PLAN_GATES.p95_max == 0.2
    assert PLAN_GATES.error_rate_max == 0.01
    assert PLAN_GATES.memory_growth_max_pct == 20.0
    assert PLAN_GATES.memory_slope_max_mb_per_min == 5.0
    assert PLAN_GATES.success_rate_min == 0.95
    assert PLAN_GATES.cpu_efficiency_gain_min_pct == 30.0


def test_only_enabled_gates_are_judged_in_a_fixed_order() -> None:
    assert evaluate_gates(_trial(), Gates()) == []
    names = [g.name for g in evaluate_gates(_trial(), PLAN_GATES)]
    assert names == [
        "throughput",
        "p95 latency",
        "error rate",
        "success rate",
        "memory growth",
        "memory slope",
    ]


# --- throughput: pass at the threshold (>=), alerts below 80% and 60% of it ----------------


@pytest.mark.parametrize(
    ("ops", "verdict", "alert"),
    [
        (1000.0, "pass", "ok"),
        (999.9, "fail", "ok"),
        (800.0, "fail", "ok"),
        (799.9, "fail", "warning"),
        (600.0, "fail", "warning"),
        (599.9, "fail", "critical"),
    ],
)
def test_throughput_gate_and_alerts(ops: float, verdict: str, alert: str) -> None:
    gate = _gate(_trial(throughput_ops=ops), "throughput", throughput_min=1000.0)
    assert (gate.verdict, gate.alert) == (verdict, alert)
    assert gate.threshold == ">= 1000 ops/s"
    assert gate.observed == f"{ops:.1f} ops/s"
    assert gate.detail == "successful ops per second of the window"


# --- p95: pass strictly below (<), judged on response time in open loop --------------------


@pytest.mark.parametrize(
    ("p95", "verdict", "alert", "observed"),
    [
        (0.1999, "pass", "ok", "199.9 ms"),
        (0.2, "fail", "ok", "200.0 ms"),
        (0.5, "fail", "ok", "500.0 ms"),
        (0.5001, "fail", "warning", "500.1 ms"),
    ],
)
def test_p95_gate_and_alert(p95: float, verdict: str, alert: str, observed: str) -> None:
    gate = _gate(_trial(service_time=_latency(p95)), "p95 latency", p95_max="200ms")
    assert (gate.verdict, gate.alert, gate.observed) == (verdict, alert, observed)
    assert gate.threshold == "< 200 ms"
    assert gate.detail == "service time"


def test_p95_gate_uses_the_response_time_in_open_loop() -> None:
    trial = _trial(service_time=_latency(0.01), response_time=_latency(0.3))
    gate = _gate(trial, "p95 latency", p95_max="200ms")
    assert (gate.verdict, gate.observed) == ("fail", "300.0 ms")
    assert gate.detail == "response time (from the intended send)"
    trial = _trial(service_time=_latency(0.3), response_time=_latency(0.01))
    assert _gate(trial, "p95 latency", p95_max="200ms").verdict == "pass"


@pytest.mark.parametrize(
    ("over", "verdict"),
    [(10, "fail"), (3, "fail"), (2, "inconclusive"), (0, "inconclusive")],
)
def test_too_few_samples_still_fail_a_p95_gate_when_enough_of_them_are_over(
    over: int, verdict: str
) -> None:
    """10 samples (p95 needs 200): 3 over 200 ms have a 1.2% chance if p95 were <= 200 ms."""
    samples = (0.5,) * over + (0.01,) * (10 - over)
    latency = _latency(0.5 if over else 0.01, ("p95",), samples)
    gate = _gate(_trial(service_time=latency), "p95 latency", p95_max="200ms")
    assert gate.verdict == verdict
    if verdict == "fail":
        assert gate.detail == (
            f"service time — too few samples for a p95, but {over} of 10 over the limit show "
            "it is over (exact binomial test, 5%)"
        )
    else:
        assert gate.detail == "service time — too few samples"


def test_samples_at_the_limit_are_not_counted_over_it() -> None:
    latency = _latency(0.2, ("p95",), (0.2,) * 10)  # every sample in the limit's own bucket
    gate = _gate(_trial(service_time=latency), "p95 latency", p95_max="200ms")
    assert gate.verdict == "inconclusive"
    over = _latency(0.2005, ("p95",), (0.2005,) * 10)  # 0.25% above: a bucket of its own
    assert _gate(_trial(service_time=over), "p95 latency", p95_max="200ms").verdict == "fail"


def test_p95_from_too_few_samples_is_inconclusive_never_a_pass() -> None:
    gate = _gate(_trial(service_time=_latency(0.01, ("p95",))), "p95 latency", p95_max="200ms")
    assert gate.verdict == "inconclusive"
    assert gate.detail == "service time — too few samples"
    # Insufficiency of another percentile does not matter.
    trial = _trial(service_time=_latency(0.01, ("p99", "p999")))
    assert _gate(trial, "p95 latency", p95_max="200ms").verdict == "pass"
    # In open loop the response time's own sufficiency counts.
    trial = _trial(service_time=_latency(0.01), response_time=_latency(0.01, ("p95",)))
    assert _gate(trial, "p95 latency", p95_max="200ms").verdict == "inconclusive"


def test_p95_without_any_success_is_inconclusive() -> None:
    gate = _gate(_trial(service_time=_latency(None)), "p95 latency", p95_max="200ms")
    assert (gate.verdict, gate.observed, gate.alert) == ("inconclusive", "n/a", "ok")


# --- error rate: pass strictly below (<), critical above 5% --------------------------------


@pytest.mark.parametrize(
    ("rate", "verdict", "alert"),
    [
        (0.0099, "pass", "ok"),
        (0.01, "fail", "ok"),
        (0.05, "fail", "ok"),
        (0.0501, "fail", "critical"),
    ],
)
def test_error_rate_gate_and_alert(rate: float, verdict: str, alert: str) -> None:
    gate = _gate(_trial(error_rate=rate), "error rate", error_rate_max="1%")
    assert (gate.verdict, gate.alert) == (verdict, alert)
    assert gate.threshold == "< 1.00%"
    assert gate.observed == f"{rate:.2%}"
    assert gate.detail == "10 failed of 1000 completed"


def test_error_rate_without_completed_requests_is_inconclusive() -> None:
    trial = _trial(successes=0, failures=0, error_rate=None)
    gate = _gate(trial, "error rate", error_rate_max="1%")
    assert (gate.verdict, gate.observed, gate.alert) == ("inconclusive", "n/a", "ok")


# --- success rate: pass at the threshold (>=) -----------------------------------------------


@pytest.mark.parametrize(
    ("successes", "failures", "verdict", "observed"),
    [(95, 5, "pass", "95.00%"), (94, 6, "fail", "94.00%"), (100, 0, "pass", "100.00%")],
)
def test_success_rate_gate(successes: int, failures: int, verdict: str, observed: str) -> None:
    trial = _trial(successes=successes, failures=failures)
    gate = _gate(trial, "success rate", success_rate_min="95%")
    assert (gate.verdict, gate.observed, gate.alert) == (verdict, observed, "ok")
    assert gate.threshold == ">= 95%"
    assert gate.detail == "successful / completed requests"


def test_success_rate_without_completed_requests_is_inconclusive() -> None:
    gate = _gate(_trial(successes=0, failures=0), "success rate", success_rate_min="95%")
    assert (gate.verdict, gate.observed) == ("inconclusive", "n/a")


# --- open loop: a dropped arrival is not a success; the dropped share is a gate --------------


def _open(successes: int, failures: int, unsent: int, in_flight: int = 0,
          sent_late: int = 0) -> TrialResult:  # fmt: skip
    return _trial(successes=successes, failures=failures, in_flight_at_end=in_flight,
                  health=_health("ops/s", unsent, sent_late))  # fmt: skip


@pytest.mark.parametrize(
    ("successes", "failures", "unsent", "verdict", "observed"),
    [(90, 5, 5, "pass", "90.00%"), (90, 5, 6, "fail", "89.11%"), (90, 10, 0, "pass", "90.00%"),
     (900, 0, 100, "pass", "90.00%"), (899, 0, 101, "fail", "89.90%")],
)  # fmt: skip
def test_dropped_arrivals_count_against_the_success_rate(
    successes: int, failures: int, unsent: int, verdict: str, observed: str
) -> None:
    # successful / (successful + failed + dropped); the 7 in flight have no outcome yet
    trial = _open(successes, failures, unsent, in_flight=7)
    gate = _gate(trial, "success rate", success_rate_min="90%")
    assert (gate.verdict, gate.observed) == (verdict, observed)


def test_the_success_rate_of_the_reported_burst() -> None:
    # harborbench run profiles/burst.yaml --set client.connection_pool.max_size=10 --set
    # duration=5s: 1,497 ok, 0 failed, 396 in flight, 1,107 arrivals dropped (3,000 planned)
    trial = _open(1497, 0, 1107, in_flight=396)
    assert success_rate(trial) == pytest.approx(1497 / 2604)
    assert dropped_pct(trial) == pytest.approx(100 * 1107 / 3000)
    gates = Gates.model_validate({"success_rate_min": "90%", "dropped_max_pct": 10})
    by_name = {g.name: g for g in evaluate_gates(trial, gates)}
    ok = by_name["success rate"]
    assert (ok.verdict, ok.observed) == ("fail", "57.49%")
    assert ok.detail == (
        "successful / (completed requests + dropped arrivals): 1497 of 2604, 1107 dropped"
    )
    drop = by_name["dropped arrivals"]
    assert (drop.verdict, drop.observed, drop.threshold) == ("fail", "36.90%", "<= 10%")
    assert drop.detail == (
        "1107 of the window's planned arrivals not sent: load.max_outstanding requests were pending"
    )


@pytest.mark.parametrize(
    ("unsent", "limit", "verdict", "observed"),
    [(10, None, "pass", "1.00%"), (11, None, "fail", "1.10%"), (0, 0.0, "pass", "0.00%"),
     (1, 0.0, "fail", "0.10%"), (100, 10.0, "pass", "10.00%"), (101, 10.0, "fail", "10.10%")],
)  # fmt: skip
def test_dropped_arrivals_gate_at_its_limit_and_the_open_loop_default(
    unsent: int, limit: float | None, verdict: str, observed: str
) -> None:
    # 1,000 planned: ok + failed + in flight + dropped + late
    trial = _open(980 - unsent, 10, unsent, in_flight=5, sent_late=5)
    gate = _gate(trial, "dropped arrivals", dropped_max_pct=limit)
    assert (gate.verdict, gate.observed, gate.alert) == (verdict, observed, "ok")
    default = " (open-loop default)" if limit is None else ""
    shown = DEFAULT_DROPPED_MAX_PCT if limit is None else limit
    assert gate.threshold == f"<= {shown:g}%{default}"


def test_a_closed_loop_has_no_dropped_gate_unless_asked_and_then_drops_nothing() -> None:
    assert evaluate_gates(_trial(), Gates()) == []
    assert dropped_pct(_trial()) is None
    gate = _gate(_trial(), "dropped arrivals", dropped_max_pct=0.0)
    assert (gate.verdict, gate.observed) == ("pass", "0 dropped")
    assert success_rate(_trial()) == 0.99  # successful / completed


def test_an_open_loop_with_nothing_planned_is_not_judged_on_drops() -> None:
    assert dropped_pct(_open(0, 0, 0)) is None
    assert evaluate_gates(_open(0, 0, 0), Gates()) == []


# --- memory growth and slope: pass strictly below (<) ----------------------------------------


@pytest.mark.parametrize(("growth", "verdict"), [(19.9, "pass"), (20.0, "fail"), (-3.0, "pass")])
def test_memory_growth_gate(growth: float, verdict: str) -> None:
    trial = _trial(memory=_memory(growth_pct=growth))
    gate = _gate(trial, "memory growth", memory_growth_max_pct=20.0)
    assert (gate.verdict, gate.alert) == (verdict, "ok")
    assert gate.threshold == "< 20%"
    assert gate.observed == f"{growth:+.1f}%"
    assert gate.detail == "RSS growth over the window (fitted Theil-Sen line)"


def test_a_trial_stopped_before_its_window_judges_no_gate() -> None:
    # interrupted in warmup: 0 ops/s would fail throughput (critical), a flat RSS pass memory
    empty = _trial(
        window_s=0.0, successes=0, failures=0, throughput_ops=0.0, error_rate=None,
        service_time=_latency(None, ("p95",)), memory=_memory(growth_pct=0.0, samples=1),
        health=_health("ops/s"),
    )  # fmt: skip
    gates = Gates.model_validate(
        {"throughput_min": 570, "p95_max": "200ms", "error_rate_max": "1%",
         "success_rate_min": "95%", "memory_growth_max_pct": 20, "goodput_min": 1}
    )  # fmt: skip
    results = evaluate_gates(empty, gates)
    assert len(results) == 6
    for r in results:
        assert (r.verdict, r.alert, r.detail) == ("inconclusive", "ok", NOT_MEASURED), r.name
    assert NOT_MEASURED == "not measured: the run was interrupted before its window"
    # the same figures over a measured window are judged: the throughput gate fails
    measured = _gate(empty.model_copy(update={"window_s": 0.5}), "throughput", throughput_min=570)
    assert (measured.verdict, measured.alert) == ("fail", "critical")


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [
        (4.0, 4.99, "pass"),  # the whole interval below the limit
        (4.0, 5.0, "inconclusive"),  # it reaches the limit: straddles
        (4.99, 6.0, "inconclusive"),
        (5.0, 6.0, "fail"),  # the whole interval at or above the limit
    ],
)
def test_memory_slope_gate_judges_the_whole_interval(low: float, high: float, verdict: str) -> None:
    trial = _trial(memory=_memory(slope_mb_per_min=(low + high) / 2, slope_ci_low=low,
                                  slope_ci_high=high))  # fmt: skip
    gate = _gate(trial, "memory slope", memory_slope_max_mb_per_min=5.0)
    assert gate.verdict == verdict
    assert gate.threshold == "< 5 MB/min"
    assert gate.observed == f"{(low + high) / 2:+.2f} MB/min"
    assert gate.detail == "window of 5 min"


@pytest.mark.parametrize(("slope", "alert"), [(10.0, "ok"), (10.01, "warning")])
def test_memory_slope_alert_above_10_mb_per_min(slope: float, alert: str) -> None:
    trial = _trial(memory=_memory(slope_mb_per_min=slope, slope_ci_low=slope - 0.1,
                                  slope_ci_high=slope + 0.1))  # fmt: skip
    gate = _gate(trial, "memory slope", memory_slope_max_mb_per_min=5.0)
    assert (gate.verdict, gate.alert) == ("fail", alert)


def test_memory_slope_from_a_short_window_is_inconclusive_never_a_pass() -> None:
    trial = _trial(memory=_memory(slope_mb_per_min=0.1, slope_ci_low=0.0, slope_ci_high=0.2,
                                  trend_window_s=299.0, reason="short"))  # fmt: skip
    gate = _gate(trial, "memory slope", memory_slope_max_mb_per_min=5.0)
    assert (gate.verdict, gate.detail) == ("inconclusive", "short")
    trial = _trial(memory=_memory(slope_mb_per_min=0.1, slope_ci_low=0.0, slope_ci_high=0.2,
                                  trend_window_s=300.0))  # fmt: skip
    assert _gate(trial, "memory slope", memory_slope_max_mb_per_min=5.0).verdict == "pass"
    trial = _trial(memory=_memory(slope_mb_per_min=None, slope_ci_low=None, slope_ci_high=None))
    gate = _gate(trial, "memory slope", memory_slope_max_mb_per_min=5.0)
    assert (gate.verdict, gate.observed, gate.alert) == ("inconclusive", "n/a", "ok")


# --- goodput: pass at the threshold (>=); inconclusive without an slo section ---------------


@pytest.mark.parametrize(
    ("good", "verdict", "observed"),
    [(500.0, "pass", "500.0 ops/s"), (499.9, "fail", "499.9 ops/s"), (0.0, "fail", "0.0 ops/s")],
)
def test_goodput_gate(good: float, verdict: str, observed: str) -> None:
    trial = _trial(goodput_ops=good, slo_met=900)
    gate = _gate(trial, "goodput", goodput_min=500.0)
    assert (gate.verdict, gate.observed, gate.alert) == (verdict, observed, "ok")
    assert gate.threshold == ">= 500 ops/s"
    assert gate.detail == "900 of 990 successes met every objective"


def test_goodput_without_an_slo_is_inconclusive_never_a_pass() -> None:
    gate = _gate(_trial(goodput_ops=None, slo_met=None), "goodput", goodput_min=0.0)
    assert (gate.verdict, gate.observed, gate.alert) == ("inconclusive", "n/a", "ok")
    assert gate.detail == "the run measured no goodput (no slo section)"


def test_goodput_gate_comes_after_success_rate_and_before_memory() -> None:
    gates = Gates.model_validate(
        {"success_rate_min": "95%", "goodput_min": 1.0, "memory_growth_max_pct": 20.0}
    )
    names = [g.name for g in evaluate_gates(_trial(goodput_ops=2.0, slo_met=2), gates)]
    assert names == ["success rate", "goodput", "memory growth"]
    open_loop = _trial(goodput_ops=2.0, slo_met=2, health=_health("ops/s"))
    names = [g.name for g in evaluate_gates(open_loop, gates)]
    assert names == ["success rate", "dropped arrivals", "goodput", "memory growth"]


# --- a stalled event loop: the gates its stalls can fail are undecided, not failed -------------

STALL_GATES = {
    "throughput_min": 2000.0,  # fails: 1000 ops/s
    "p95_max": "50ms",  # fails: 100 ms
    "goodput_min": 2000.0,  # fails
    "error_rate_max": "0.5%",  # fails: 1%
    "success_rate_min": "99.5%",  # fails: 99%
    "memory_growth_max_pct": 0.5,  # fails: 1%
}


@pytest.mark.parametrize(
    ("lag_s", "undecided"), [(None, False), (0.1, False), (0.1000001, True), (0.251, True)]
)
def test_a_stalled_loop_makes_throughput_latency_and_goodput_failures_inconclusive(
    lag_s: float | None, undecided: bool
) -> None:
    trial = _trial(health=_health(lag_p99_s=lag_s), goodput_ops=1000.0, slo_met=990)
    got = {g.name: g for g in evaluate_gates(trial, Gates.model_validate(STALL_GATES))}
    changed = {"throughput", "p95 latency", "goodput"}
    for name, gate in got.items():
        if undecided and name in changed:
            assert gate.verdict == "inconclusive", name
            assert gate.detail.endswith(
                f" — undecided: the load generator's event loop stalled ({lag_s * 1e3:.0f} ms "  # type: ignore[operator]
                "lag at p99), so its stalls are in this figure; run again with nothing else on "
                "the machine"
            )
        else:
            assert gate.verdict == "fail", name
            assert "stalled" not in gate.detail
    assert set(got) == changed | {"error rate", "success rate", "memory growth"}


def test_a_stalled_loop_leaves_passes_standing() -> None:
    trial = _trial(health=_health(lag_p99_s=0.3))
    gates = Gates.model_validate({"throughput_min": 500.0, "p95_max": "200ms"})
    assert [(g.verdict, g.detail) for g in evaluate_gates(trial, gates)] == [
        ("pass", "successful ops per second of the window"),
        ("pass", "service time"),
    ]


def test_the_hint_for_inconclusive_gates_names_the_stall_or_asks_for_a_longer_run() -> None:
    gates = Gates.model_validate({"throughput_min": 2000.0, "p95_max": "200ms"})
    stalled = evaluate_gates(_trial(health=_health(lag_p99_s=0.3)), gates)
    assert inconclusive_hint(stalled) == (
        "Run again with nothing else on this machine: the load generator's event loop stalled, "
        "so its own delays are in the figures (see the gates' details)."
    )
    assert inconclusive_hint(stalled, otherwise="x").startswith("Run again with nothing else")
    calm = evaluate_gates(_trial(health=_health(lag_p99_s=0.01)), gates)
    assert [g.verdict for g in calm] == ["fail", "pass"]
    assert inconclusive_hint(calm) == "Run longer (--set duration=...) to gather enough samples."
    assert inconclusive_hint(calm, otherwise="Give a larger --budget.") == "Give a larger --budget."
    # the stall's words in a gate that passed (or failed) do not make the hint
    passed = [g.model_copy(update={"detail": g.detail + STALLED}) for g in calm]
    assert inconclusive_hint(passed, otherwise="y") == "y"


def test_the_stall_note_quotes_the_lag_in_milliseconds() -> None:
    trial = _trial(health=_health(lag_p99_s=0.7))
    (gate,) = evaluate_gates(trial, Gates.model_validate({"throughput_min": 2000.0}))
    assert "(700 ms lag at p99)" in gate.detail


def test_a_closed_loop_asked_for_a_dropped_gate_says_why_it_drops_nothing() -> None:
    gate = _gate(_trial(), "dropped arrivals", dropped_max_pct=1.0)
    assert gate.detail == "a closed loop drops no arrival (each worker sends when its last ends)"


@pytest.mark.parametrize(("over", "verdict"), [(3, "inconclusive"), (4, "fail")])
def test_the_few_samples_test_is_at_the_95th_percentile(over: int, verdict: str) -> None:
    """20 samples: 3 over have a 7.5% chance if p95 <= the limit (4.4% at p96), 4 over 1.6%."""
    samples = (0.5,) * over + (0.01,) * (20 - over)
    latency = _latency(0.5, ("p95",), samples)
    gate = _gate(_trial(service_time=latency), "p95 latency", p95_max="200ms")
    assert gate.verdict == verdict
