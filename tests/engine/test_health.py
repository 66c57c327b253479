"""The load generator's health verdict: when is the measurement itself invalid."""

from __future__ import annotations

import pytest

from harborbench.engine.assemble import client_limit, health_figures
from harborbench.engine.recorder import Recorder
from harborbench.engine.schedule import build_plan
from harborbench.metrics.looplag import LAG_SATURATED_S, LoopLagMonitor

S = 1_000_000_000


def judge(loop_lag_s: float) -> tuple[bool, list[str]]:
    plan = build_plan(warmup_s=0, levels=[(10.0, 4)], kind="closed")
    rec = Recorder(0, 0, 10, open_loop=False)
    lag = LoopLagMonitor()
    lag.histogram.record_many_ns([round(loop_lag_s * S)] * 200)
    h = health_figures(plan, rec, lag, False, 20.0, 10.0, sent=0, busy_ns=40 * S)
    return h.generator_saturated, h.warnings


def test_a_loop_lag_of_seconds_marks_the_generator_saturated_with_the_hint() -> None:
    saturated, warnings = judge(1.5)
    assert saturated
    assert any("does not measure the target" in w for w in warnings)


@pytest.mark.parametrize(
    ("lag_s", "saturated"), [(LAG_SATURATED_S * 0.99, False), (LAG_SATURATED_S * 1.01, True)]
)
def test_the_loop_lag_boundary(lag_s: float, saturated: bool) -> None:
    assert judge(lag_s)[0] is saturated


def test_the_smaller_client_setting_is_named_as_the_limit() -> None:
    status = {"mode": "optimized", "max_concurrent_requests": 200, "connection_pool_size": 50}
    assert client_limit(status) == ("client.connection_pool_size", 50)
    adaptive = {**status, "connection_pool_max_size": 80}  # grows on demand up to 80
    assert client_limit(adaptive) == ("client.connection_pool.max_size", 80)
    assert client_limit({**adaptive, "connection_pool_max_size": 250}) == (
        "client.max_concurrent_requests",
        200,
    )
    assert client_limit({**adaptive, "connection_pool_max_size": None}) == (
        "client.connection_pool_size",
        50,
    )
    traditional = {**status, "mode": "traditional"}
    assert client_limit(traditional) == ("client.max_concurrent_requests", 200)
    assert client_limit({}) is None


@pytest.mark.parametrize("clamped", [0, 3])
def test_latencies_outside_the_histogram_are_warned_about(clamped: int) -> None:
    plan = build_plan(warmup_s=0, levels=[(10.0, 4)], kind="closed")
    rec = Recorder(0, 0, 10, open_loop=False)
    h = health_figures(
        plan, rec, LoopLagMonitor(), False, 20.0, 10.0, sent=0, busy_ns=40 * S, clamped=clamped
    )
    assert h.clamped_latencies == clamped
    expected = (
        f"{clamped} latencies lay outside the histogram's range (1 us to 1 h) and were recorded "
        "at its edge"
    )
    assert (expected in h.warnings) is (clamped > 0)
