"""Load plans to the nanosecond: step boundaries, stripes, block edges, and the Poisson gaps'
distribution (a Kolmogorov-Smirnov test against the exponential)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from harborbench.engine.schedule import (
    BLOCK,
    LoadPlan,
    Step,
    arrival_blocks_ns,
    arrival_offsets_ns,
    build_plan,
    trace_plan,
)
from harborbench.units import NS_PER_S


def offsets(plan: LoadPlan) -> list[int]:
    return list(arrival_offsets_ns(plan))


def test_steps_and_plan_lengths() -> None:
    assert Step(2.0, 3.0).end_s == 5.0
    plan = build_plan(warmup_s=2, levels=[(3.0, 10), (4.0, 20)], kind="closed", seed=5)
    assert plan.steps == (
        Step(0.0, 2.0, concurrency=10), Step(2.0, 3.0, concurrency=10),
        Step(5.0, 4.0, concurrency=20),
    )  # fmt: skip
    assert (plan.total_s, plan.window_s, plan.warmup_s) == (9.0, 7.0, 2)
    assert (plan.kind, plan.arrival, plan.seed, plan.stripe) == ("closed", "constant", 5, (0, 1))
    assert plan.max_concurrency == 20
    assert isinstance(plan.steps[0].concurrency, int)
    empty = LoadPlan(kind="open", arrival="constant", warmup_s=3.0, steps=())
    assert (empty.total_s, empty.window_s) == (3.0, 0.0)


def test_open_plans_carry_float_rates_and_no_concurrency() -> None:
    plan = build_plan(warmup_s=0, levels=[(1.0, 3)], kind="open", arrival="poisson", seed=9)
    assert plan.steps == (Step(0.0, 1.0, rate_ops=3.0),)
    assert isinstance(plan.steps[0].rate_ops, float)
    assert (plan.arrival, plan.seed, plan.max_concurrency) == ("poisson", 9, 0)


def test_zero_length_steps_are_left_out_and_bad_ones_refused() -> None:
    plan = build_plan(warmup_s=0, levels=[(2.0, 5), (0.0, 7), (1.0, 9)], kind="closed")
    assert [(s.start_s, s.concurrency) for s in plan.steps] == [(0.0, 5), (2.0, 9)]
    build_plan(warmup_s=0, levels=[(1.0, 1e-9)], kind="open")  # any positive level
    with pytest.raises(ValueError, match=r"levels > 0, got 0.5, 0"):
        build_plan(warmup_s=0.5, levels=[(1.0, 0)], kind="open")
    with pytest.raises(ValueError, match=r"levels > 0, got 1.0, -2"):
        build_plan(warmup_s=0, levels=[(2.0, 3), (1.0, -2)], kind="open")
    with pytest.raises(ValueError, match=r"durations must be >= 0 and levels > 0, got -0.5, 2"):
        build_plan(warmup_s=0, levels=[(-0.5, 2)], kind="open")
    with pytest.raises(ValueError, match="got -1, 2"):
        build_plan(warmup_s=-1, levels=[(1.0, 2)], kind="open")
    with pytest.raises(ValueError, match="at least one step"):
        build_plan(warmup_s=1, levels=[], kind="closed")


def test_the_step_in_force_changes_exactly_at_a_step_end() -> None:
    plan = build_plan(warmup_s=1, levels=[(2.0, 10.0), (1.0, 30.0)], kind="open")
    assert plan.step_at(0.999).start_s == 0.0
    assert plan.step_at(1.0).start_s == 1.0
    assert plan.step_at(2.999).start_s == 1.0
    assert plan.step_at(3.0).start_s == 3.0
    assert plan.step_at(99.0).start_s == 3.0  # past the end: the last
    assert plan.configured_level(3.0) == 30.0
    closed = build_plan(warmup_s=0, levels=[(1.0, 4), (1.0, 8)], kind="closed")
    assert (closed.configured_level(0.5), closed.configured_level(1.5)) == (4.0, 8.0)


@pytest.mark.parametrize("level", [1, 2, 3, 7, 10, 11])
def test_closed_loop_shares_of_the_stripes_sum_to_the_level(level: int) -> None:
    plan = build_plan(warmup_s=0, levels=[(1.0, level)], kind="closed")
    shares = [dataclasses.replace(plan, stripe=(i, 3)).share(level) for i in range(3)]
    # stripe i runs the global workers j < level with j mod 3 == i
    assert shares == [float(sum(1 for j in range(level) if j % 3 == i)) for i in range(3)]
    assert sum(shares) == level
    assert dataclasses.replace(plan, stripe=(2, 3)).configured_level(0.5) == shares[2]


def test_open_loop_shares_split_the_rate() -> None:
    plan = build_plan(warmup_s=0, levels=[(1.0, 9.0)], kind="open")
    assert plan.share(9.0) == 9.0
    assert dataclasses.replace(plan, stripe=(1, 4)).share(9.0) == 2.25
    assert dataclasses.replace(plan, stripe=(1, 4)).configured_level(0.0) == 2.25


def test_constant_arrivals_restart_at_each_step_and_stop_before_the_end() -> None:
    plan = build_plan(warmup_s=1, levels=[(1.0, 4.0), (0.5, 2.0)], kind="open")
    assert offsets(plan) == [
        0, 250_000_000, 500_000_000, 750_000_000,  # warmup at the first level
        1_000_000_000, 1_250_000_000, 1_500_000_000, 1_750_000_000,
        2_000_000_000,  # the 2-ops/s step: its next arrival, 2.5 s, is the plan's end
    ]  # fmt: skip


def test_constant_arrivals_across_blocks_are_exact() -> None:
    plan = build_plan(warmup_s=0, levels=[(3.0, 1000.0)], kind="open")
    blocks = list(arrival_blocks_ns(plan))
    assert [len(b) for b in blocks] == [BLOCK, BLOCK, 3000 - 2 * BLOCK]
    assert all(b.dtype == np.int64 for b in blocks)
    assert np.concatenate(blocks).tolist() == [k * 1_000_000 for k in range(3000)]
    # exactly a whole number of blocks: no empty block at the end
    exact = build_plan(warmup_s=0, levels=[(BLOCK / 1000, 1000.0)], kind="open")
    assert [len(b) for b in arrival_blocks_ns(exact)] == [BLOCK]


def test_closed_plans_have_no_arrivals() -> None:
    plan = build_plan(warmup_s=0, levels=[(1.0, 2)], kind="closed")
    with pytest.raises(ValueError, match="only for open-loop plans"):
        list(arrival_blocks_ns(plan))


@pytest.mark.parametrize("arrival", ["constant", "poisson"])
def test_stripes_partition_the_global_arrivals(arrival: str) -> None:
    plan = build_plan(warmup_s=0.5, levels=[(2.5, 1000.0)], kind="open",
                      arrival=arrival, seed=3)  # type: ignore[arg-type]  # fmt: skip
    whole = offsets(plan)
    assert len(whole) > 2 * BLOCK
    for i in range(3):
        mine = offsets(dataclasses.replace(plan, stripe=(i, 3)))
        assert mine == whole[i::3]


def test_a_stripe_with_no_arrival_in_a_block_yields_no_empty_block() -> None:
    plan = build_plan(warmup_s=0, levels=[(1.0, 2.0)], kind="open")  # arrivals 0 and 0.5 s
    blocks = list(arrival_blocks_ns(dataclasses.replace(plan, stripe=(2, 3))))
    assert blocks == []
    assert [b.tolist() for b in arrival_blocks_ns(dataclasses.replace(plan, stripe=(1, 3)))] == [
        [500_000_000]
    ]


@pytest.mark.parametrize("arrival", ["constant", "poisson"])
def test_offsets_are_int64_blocks_and_python_ints(arrival: str) -> None:
    # the documented type: a float64 offset would lose whole nanoseconds past 2**53 ns
    plan = build_plan(warmup_s=1.0, levels=[(2.0, 700.0)], kind="open",
                      arrival=arrival, seed=5)  # type: ignore[arg-type]  # fmt: skip
    blocks = list(arrival_blocks_ns(plan))
    assert len(blocks) >= 3 and all(b.dtype == np.int64 for b in blocks)
    assert all(type(t) is int for t in offsets(plan))


def poisson_reference(rate: float, start_s: float, end_s: float, seed: int) -> list[int]:
    """The Poisson schedule one arrival at a time: t += gap, in the generator's draw order."""
    rng = np.random.default_rng(seed)
    out: list[int] = []
    t = 0.0
    while True:
        for gap in rng.exponential(1.0 / rate, size=BLOCK):
            t += float(gap)
            ns = round(start_s * NS_PER_S) + int(np.rint(t * NS_PER_S))
            if ns >= round(end_s * NS_PER_S):
                return out
            out.append(ns)


def test_poisson_offsets_equal_the_one_by_one_sums_across_blocks() -> None:
    plan = build_plan(warmup_s=0, levels=[(30.0, 100.0)], kind="open", arrival="poisson", seed=11)
    got = offsets(plan)
    assert len(got) > 2 * BLOCK
    assert got == poisson_reference(100.0, 0.0, 30.0, 11)


def test_poisson_gaps_restart_at_each_step_from_the_step_start() -> None:
    plan = build_plan(warmup_s=0, levels=[(2.0, 50.0), (2.0, 500.0)], kind="open",
                      arrival="poisson", seed=4)  # fmt: skip
    got = offsets(plan)
    first = [o for o in got if o < 2 * NS_PER_S]
    second = [o for o in got if o >= 2 * NS_PER_S]
    rng = np.random.default_rng(4)
    gaps = rng.exponential(1 / 50.0, size=BLOCK)
    times = np.cumsum(gaps)
    assert first == [int(x) for x in np.rint(times[times * NS_PER_S < 2 * NS_PER_S - 0.5] * 1e9)]
    assert second[0] > 2 * NS_PER_S
    assert second[-1] < 4 * NS_PER_S
    # the second step draws from the same generator, after the first step's block
    gaps2 = rng.exponential(1 / 500.0, size=BLOCK)
    assert second[0] == 2 * NS_PER_S + int(np.rint(gaps2[0] * NS_PER_S))


def test_poisson_gaps_are_exponential_with_the_rate() -> None:
    """Kolmogorov-Smirnov against the exponential of mean 1/rate: the gaps (and only those)
    pass; the same test rejects constant gaps and exponential gaps of the wrong mean."""
    rate = 200.0
    plan = build_plan(warmup_s=0, levels=[(60.0, rate)], kind="open", arrival="poisson", seed=1)
    gaps_s = np.diff(np.array(offsets(plan))) / NS_PER_S
    assert len(gaps_s) > 10_000
    assert stats.kstest(gaps_s, "expon", args=(0, 1 / rate)).pvalue > 0.01
    assert stats.kstest(gaps_s, "expon", args=(0, 1.2 / rate)).pvalue < 1e-6
    constant = build_plan(warmup_s=0, levels=[(60.0, rate)], kind="open")
    even = np.diff(np.array(offsets(constant))) / NS_PER_S
    assert stats.kstest(even, "expon", args=(0, 1 / rate)).pvalue < 1e-6
    # the arrival count of a Poisson process: within 4 standard deviations of rate x time
    n = len(gaps_s) + 1
    assert abs(n - rate * 60) < 4 * np.sqrt(rate * 60)


def test_trace_plans_rate_their_steps_and_cut_at_the_end() -> None:
    ms = 1_000_000
    trace = np.array([0, 500, 1000, 1000, 1999, 2000, 2500], dtype=np.int64) * ms
    plan = trace_plan(warmup_s=1.0, window_s=1.0, offsets_ns=trace)
    # an arrival exactly at 1 s is the window's; exactly at 2 s is past its end
    assert [(s.start_s, s.duration_s, s.rate_ops) for s in plan.steps] == [
        (0.0, 1.0, 2.0), (1.0, 1.0, 3.0),
    ]  # fmt: skip
    assert (plan.kind, plan.arrival, plan.warmup_s) == ("open", "constant", 1.0)
    assert offsets(plan) == [0, 500 * ms, 1000 * ms, 1000 * ms, 1999 * ms]
    quiet = trace_plan(warmup_s=1.0, window_s=1.0, offsets_ns=trace[trace >= 1000 * ms])
    assert quiet.steps[0].rate_ops == 0.0  # a span without arrivals: rate 0
    assert (quiet.configured_level(0.5), quiet.configured_level(1.5)) == (0.0, 3.0)
    no_warmup = trace_plan(warmup_s=0.0, window_s=4.0, offsets_ns=trace)
    assert [(s.start_s, s.rate_ops) for s in no_warmup.steps] == [(0.0, 7 / 4)]
    assert offsets(no_warmup) == trace.tolist()


def test_long_traces_are_replayed_in_blocks_to_the_end() -> None:
    trace = np.arange(10_000, dtype=np.int64) * 1_000_000  # one arrival a millisecond
    plan = trace_plan(warmup_s=0.0, window_s=9.0, offsets_ns=trace)
    blocks = list(arrival_blocks_ns(plan))
    assert [len(b) for b in blocks] == [4096, 4096, 9000 - 8192]
    assert all(b.dtype == np.int64 for b in blocks)
    assert np.concatenate(blocks).tolist() == trace[:9000].tolist()
    whole = trace_plan(warmup_s=0.0, window_s=20.0, offsets_ns=trace)
    assert len(offsets(whole)) == 10_000
    first_block_only = trace_plan(warmup_s=0.0, window_s=4.096, offsets_ns=trace)
    assert [len(b) for b in arrival_blocks_ns(first_block_only)] == [4096]


def test_two_stripes_split_the_arrivals_and_the_rate() -> None:
    plan = build_plan(warmup_s=0, levels=[(1.0, 4.0)], kind="open")
    assert dataclasses.replace(plan, stripe=(0, 2)).share(4.0) == 2.0
    assert offsets(dataclasses.replace(plan, stripe=(1, 2))) == [250_000_000, 750_000_000]
    with pytest.raises(ValueError, match=r"^a load plan needs at least one step$"):
        build_plan(warmup_s=0, levels=[], kind="open")
    closed = build_plan(warmup_s=0, levels=[(1.0, 2)], kind="closed")
    with pytest.raises(ValueError, match=r"^arrival offsets exist only for open-loop plans$"):
        list(arrival_blocks_ns(closed))


def test_a_window_span_without_arrivals_has_a_configured_level_of_zero() -> None:
    from harborbench.engine.assemble import configured_level

    trace = np.array([0, 100_000_000], dtype=np.int64)
    plan = trace_plan(warmup_s=1.0, window_s=1.0, offsets_ns=trace)
    assert configured_level(plan) == 0.0
