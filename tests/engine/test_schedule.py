"""Load plans and open-loop schedules: exact, drift-free, reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from harborbench.engine.schedule import NS_PER_S, arrival_offsets_ns, build_plan


def test_constant_schedule_is_exact_and_does_not_drift() -> None:
    plan = build_plan(warmup_s=0, levels=[(10.0, 3.0)], kind="open")
    offsets = list(arrival_offsets_ns(plan))
    assert len(offsets) == 30
    # Offsets are computed from the start, never by adding gaps: k/3 s rounded once each.
    assert offsets == [round(k * NS_PER_S / 3) for k in range(30)]
    assert offsets[-1] == 9_666_666_667


def test_warmup_runs_at_first_level_and_window_follows() -> None:
    plan = build_plan(warmup_s=2, levels=[(3.0, 10.0), (1.0, 100.0)], kind="open")
    assert plan.window_s == pytest.approx(4.0)
    assert [(s.start_s, s.rate_ops) for s in plan.steps] == [(0, 10), (2, 10), (5, 100)]
    offsets = list(arrival_offsets_ns(plan))
    assert len(offsets) == 20 + 30 + 100
    assert plan.configured_level(5.5) == 100


def test_poisson_schedule_is_reproducible_by_seed_and_has_the_rate() -> None:
    plan = build_plan(warmup_s=0, levels=[(200.0, 50.0)], kind="open", arrival="poisson", seed=7)
    a = np.array(list(arrival_offsets_ns(plan)))
    b = np.array(list(arrival_offsets_ns(plan)))
    assert np.array_equal(a, b)
    other = build_plan(warmup_s=0, levels=[(200.0, 50.0)], kind="open", arrival="poisson", seed=8)
    assert not np.array_equal(a, np.array(list(arrival_offsets_ns(other)))[: len(a)])
    # 10,000 expected arrivals: the count is within 4 standard deviations (sqrt(10000) = 100).
    assert abs(len(a) - 10_000) < 400
    gaps_s = np.diff(a) / NS_PER_S
    assert gaps_s.mean() == pytest.approx(1 / 50, rel=0.05)
    assert np.all(np.diff(a) >= 0)
    assert a[-1] < 200 * NS_PER_S


def test_closed_plan_has_no_arrivals_and_knows_its_peak() -> None:
    plan = build_plan(warmup_s=1, levels=[(2.0, 4), (2.0, 16)], kind="closed")
    assert plan.max_concurrency == 16
    with pytest.raises(ValueError, match="open-loop"):
        list(arrival_offsets_ns(plan))


def test_bad_levels_are_refused() -> None:
    with pytest.raises(ValueError):
        build_plan(warmup_s=0, levels=[(1.0, 0.0)], kind="open")
    with pytest.raises(ValueError):
        build_plan(warmup_s=0, levels=[], kind="open")
