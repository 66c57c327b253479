"""The pieces of ``compare`` one at a time, on hand-made inputs with exact expected figures.

Fast (no comparison of whole runs): the bootstrap's building blocks with a given weights matrix,
Hesterberg's expanded quantile, the 90%-defined rule, the rounds estimate, the hints and notes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps

from harborbench.compare import bootstrap as cs
from harborbench.compare import compare_results
from harborbench.compare.fail_on import _more_data_hint, rounds_needed
from harborbench.metrics.histogram import LatencyHistogram, counts_matrix
from harborbench.result import RunResult


def _resampled(estimate: float, reps: list[float], units: float = 50.0) -> cs.Resampled:
    return cs.Resampled(estimate, np.asarray(reps, dtype=np.float64), len(reps), units, "m")


# --- expanded_z (Hesterberg 2015, section 5) ---------------------------------------------------


@pytest.mark.parametrize(("confidence", "units"), [(0.95, 10.0), (0.9, 30.0), (0.99, 3.0)])
def test_expanded_z_is_the_widened_t_quantile(confidence: float, units: float) -> None:
    expected = math.sqrt(units / (units - 1)) * sps.t.ppf(0.5 + confidence / 2, units - 1)
    assert cs.expanded_z(confidence, units) == pytest.approx(expected, rel=1e-12)


def test_expanded_z_takes_fewer_than_2_units_as_2() -> None:
    two = math.sqrt(2.0) * sps.t.ppf(0.975, 1.0)
    assert cs.expanded_z(0.95, 2.0) == pytest.approx(two, rel=1e-12)
    assert cs.expanded_z(0.95, 1.0) == pytest.approx(two, rel=1e-12)
    assert cs.expanded_z(0.95, 1.5) == pytest.approx(two, rel=1e-12)
    assert cs.expanded_z(0.95, 1e9) == pytest.approx(1.959964, abs=1e-5)  # the normal limit


# --- change_interval ---------------------------------------------------------------------------


def test_change_interval_of_a_ratio_reads_the_expanded_quantiles() -> None:
    ra = [1.0] * 100
    rb = [1.0 + 0.01 * i for i in range(100)]  # ratios 1.00 .. 1.99
    got = cs.change_interval(_resampled(1.0, ra, 5.0), _resampled(1.5, rb, 20.0), 0.95)
    assert got is not None and got.of == "ratio"
    z = cs.expanded_z(0.95, 5.0)  # the fewer units of A and B
    tail = 1.0 - sps.norm.cdf(z)
    low, high = np.quantile(np.asarray(rb), [tail, 1 - tail])
    assert (got.low, got.high) == pytest.approx((low, high), rel=1e-12)
    sd = float(np.std(np.log(rb), ddof=1))
    mdc = 100.0 * math.expm1((z + sps.norm.ppf(0.8)) * sd)
    assert got.min_detectable_pct == pytest.approx(mdc, rel=1e-9)


def test_change_interval_falls_back_to_a_difference_when_a_ratio_is_undefined() -> None:
    rb = [0.0, 1.0, 2.0, 3.0] * 25
    for a, b in [
        (_resampled(0.0, [1.0] * 100), _resampled(1.0, rb[:])),  # A's estimate is 0
        (_resampled(1.0, [0.0] + [1.0] * 99), _resampled(1.0, [1.0] * 100)),  # a replicate of A 0
        (_resampled(1.0, [1.0] * 100), _resampled(0.0, [1.0] * 100)),  # B's estimate is 0
        (_resampled(1.0, [1.0] * 100), _resampled(1.0, rb[:])),  # a replicate of B is 0
    ]:
        got = cs.change_interval(a, b, 0.95)
        assert got is not None and got.of == "difference" and got.min_detectable_pct is None
        tail = 1.0 - sps.norm.cdf(cs.expanded_z(0.95, 50.0))
        low, high = np.quantile(b.replicates - a.replicates, [tail, 1 - tail])
        assert (got.low, got.high) == pytest.approx((low, high))
    forced = cs.change_interval(_resampled(1.0, [2.0] * 100), _resampled(1.0, [3.0] * 100), 0.95,
                                difference=True)  # fmt: skip
    assert forced is not None and (forced.of, forced.low, forced.high) == ("difference", 1.0, 1.0)


def test_change_interval_needs_90_percent_of_the_replicates_defined() -> None:
    a = _resampled(1.0, [1.0] * 100)
    ten_nan = _resampled(1.0, [math.nan] * 10 + [1.1] * 90)  # exactly 90% defined
    eleven = _resampled(1.0, [math.nan] * 11 + [1.1] * 89)
    got = cs.change_interval(a, ten_nan, 0.95)
    assert got is not None and (got.low, got.high) == pytest.approx((1.1, 1.1))
    assert cs.change_interval(a, eleven, 0.95) is None
    assert cs.change_interval(eleven, a, 0.95) is None  # NaN on either side counts


# --- resampling with a given weights matrix ----------------------------------------------------


def test_resample_ratio_of_sums_is_exact_for_given_weights() -> None:
    w = cs.Weights(np.array([[1.0, 1.0, 1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 3.0]]), 3.0, 1.0, "w")
    num = np.array([10.0, 20.0, 0.0])
    den = np.array([1.0, 1.0, 0.0])  # the third interval is left out
    got = cs.resample_ratio_of_sums(num, den, w, "ops/s")
    assert got.estimate == 15.0
    assert got.replicates[:2].tolist() == [15.0, 10.0]
    assert math.isnan(got.replicates[2])  # a resample of only the empty interval
    assert (got.n, got.units, got.method) == (2, 3.0, "w (ops/s)")
    empty = cs.resample_ratio_of_sums(np.zeros(2), np.zeros(2), cs.Weights(np.ones((1, 2)), 1.0,
                                      1.0, "w"), "x")  # fmt: skip
    assert math.isnan(empty.estimate)


def test_resample_percentiles_merges_the_weighted_intervals_across_chunks() -> None:
    fast, slow = LatencyHistogram(), LatencyHistogram()
    fast.record_many_ns([1_000_000] * 10)
    slow.record_many_ns([9_000_000] * 10)
    index, counts = counts_matrix([fast, slow])
    rows = 2 * cs._CHUNK + 3  # three chunks, the last one partial
    matrix = np.zeros((rows, 2))
    matrix[:, 0] = 2.0  # every resample holds the fast interval twice ...
    matrix[1::2, 1] = 3.0  # ... and every second one the slow interval three times
    matrix[-1] = 0.0  # an empty resample
    w = cs.Weights(matrix, 2.0, 1.0, "w")
    got = cs.resample_percentiles(index, counts, w, [50.0, 99.0])
    p50, p99 = got[50.0], got[99.0]
    f50, s50 = fast.percentile_ns(50), slow.percentile_ns(50)
    assert p50.estimate == float(LatencyHistogram.percentile_ns(_merged(fast, slow), 50))
    assert p50.replicates[0] == f50 and p50.replicates[1] == s50  # 20 fast, or 20 fast + 30 slow
    assert p50.replicates[-2] == s50 and p99.replicates[-3] == f50
    assert math.isnan(p50.replicates[-1]) and math.isnan(p99.replicates[-1])
    assert np.count_nonzero(np.isnan(p50.replicates)) == 1
    assert (p50.n, p50.units, p50.method) == (2, 2.0, "w (merged interval histograms)")


def _merged(*hists: LatencyHistogram) -> LatencyHistogram:
    out = LatencyHistogram()
    for h in hists:
        out.merge(h)
    return out


# --- draws and weights -------------------------------------------------------------------------


def test_outer_draws() -> None:
    one = cs.outer_draws(1, 7, np.random.default_rng(0))
    assert one.shape == (7, 1) and one.dtype == np.int64 and np.all(one == 1)
    many = cs.outer_draws(4, 3000, np.random.default_rng(0))
    assert many.shape == (3000, 4) and np.all(many.sum(axis=1) == 4)
    assert many.mean(axis=0) == pytest.approx([1.0] * 4, abs=0.06)  # each trial equally likely
    assert many.max() >= 3  # with replacement


def test_resample_weights_single_trial_is_a_uniform_multinomial() -> None:
    w = cs.resample_weights([10], 4000, np.random.default_rng(1))
    assert w.matrix.shape == (4000, 10) and w.matrix.dtype == np.float64
    assert np.all(w.matrix.sum(axis=1) == 10.0)
    assert w.matrix.mean(axis=0) == pytest.approx([1.0] * 10, abs=0.05)
    assert w.matrix.var(axis=0) == pytest.approx([0.9] * 10, abs=0.08)  # n p (1 - p)
    assert (w.units, w.block_s) == (10.0, 1.0)
    assert w.method == "stationary block bootstrap of 10 1-s intervals (mean block 1 s)"


def test_resample_weights_blocks_keep_neighbours_together() -> None:
    w = cs.resample_weights([40], 400, np.random.default_rng(2), block_s=8.0)
    assert np.all(w.matrix.sum(axis=1) == 40.0)
    assert (w.units, w.block_s) == (5.0, 8.0)
    assert w.method == "stationary block bootstrap of 40 1-s intervals (mean block 8 s)"
    # neighbours are drawn together: their multiplicities are positively correlated
    corr = np.corrcoef(w.matrix[:, 10], w.matrix[:, 11])[0, 1]
    assert corr > 0.5
    iid = cs.resample_weights([40], 400, np.random.default_rng(2), block_s=1.0)
    assert np.corrcoef(iid.matrix[:, 10], iid.matrix[:, 11])[0, 1] < 0.1
    # a block longer than the trial is cut to its length, a block under 1 is taken as 1
    capped = cs.resample_weights([3], 50, np.random.default_rng(0), block_s=0.5)
    assert np.all(capped.matrix.sum(axis=1) == 3.0) and capped.units == 3.0


def test_resample_weights_follow_the_given_copies() -> None:
    copies = np.array([[2, 0], [0, 2], [1, 1]], dtype=np.int64)
    for block in (1.0, 2.0):
        w = cs.resample_weights([3, 4], 3, np.random.default_rng(0), block_s=block, copies=copies)
        sums = np.stack([w.matrix[:, :3].sum(axis=1), w.matrix[:, 3:].sum(axis=1)], axis=1)
        assert sums.tolist() == [[6.0, 0.0], [0.0, 8.0], [3.0, 4.0]]
        assert w.units == 2.0
        assert w.method == (
            f"two-stage bootstrap: 2 trials, then stationary blocks (mean {block:.2g} s) "
            "of 7 1-s intervals within them"
        )


# --- block_length ------------------------------------------------------------------------------


def test_block_length_without_enough_values_or_variation_is_1() -> None:
    assert cs.block_length([]) == 1.0
    assert cs.block_length([np.full(5, np.nan)]) == 1.0
    assert cs.block_length([np.arange(9.0)]) == 1.0  # fewer than MIN_INTERVALS
    assert cs.block_length([np.arange(10.0)]) == 4.0  # exactly MIN_INTERVALS: estimated
    assert cs.block_length([np.arange(5.0), np.arange(4.0)]) == 1.0
    assert cs.block_length([np.full(30, 7.0)]) == 1.0
    # each trial is centred: two flat trials at different levels hold no dependence
    assert cs.block_length([np.full(15, 1.0), np.full(15, 9.0)]) == 1.0


def test_block_length_of_a_dependent_series_and_its_cap() -> None:
    rng = np.random.default_rng(3)
    x = np.empty(400)
    x[0] = 0.0
    for i in range(1, 400):
        x[i] = 0.9 * x[i - 1] + rng.normal()
    long = cs.block_length([x])
    assert 5.0 < long <= 400.0
    with_nan = cs.block_length([np.concatenate([x, [np.nan] * 5])])
    assert with_nan == long  # NaN values are dropped
    capped = cs.block_length([x, x[:12]])
    assert capped == 12.0  # at most the shortest trial
    white = cs.block_length([rng.normal(size=400)])
    assert 1.0 <= white < 3.0


# --- verdicts on a difference, rounds, hints ---------------------------------------------------


@pytest.mark.parametrize(
    ("low", "high", "higher", "lower"),
    [
        (0.0, 1.0, "no significant difference", "no significant difference"),
        (1e-9, 1.0, "better", "worse"),
        (-1.0, 0.0, "no significant difference", "no significant difference"),
        (-1.0, -1e-9, "worse", "better"),
    ],
)
def test_change_verdict_on_a_difference_at_zero(low: float, high: float, higher: str,
                                                lower: str) -> None:  # fmt: skip
    interval = cs.ChangeInterval("difference", low, high, None)
    assert cs.change_verdict(interval, "higher") == higher
    assert cs.change_verdict(interval, "lower") == lower


def test_a_ratio_interval_is_judged_against_1() -> None:
    assert cs.change_verdict(cs.ChangeInterval("ratio", 1.01, 1.2, 3.0), "higher") == "better"
    assert cs.change_verdict(cs.ChangeInterval("ratio", 1.0, 1.2, 3.0), "higher") == (
        "no significant difference"
    )
    assert cs.change_verdict(cs.ChangeInterval("ratio", 0.8, 0.99, 3.0), "lower") == "better"
    s = cs.as_stats_interval(cs.ChangeInterval("ratio", 0.9, 1.3, None), 4, 5)
    assert (s.estimate, s.low, s.high, s.n_a, s.n_b) == (pytest.approx(1.1), 0.9, 1.3, 4, 5)
    assert s.method == "percentile bootstrap"


def test_rounds_needed_scales_the_trials_by_the_squared_ratio_of_width_to_distance() -> None:
    # half-width (ln 1.1 - ln 0.9) / 2 = 0.1003, distance |ln 1 - ln 0.95| = 0.0513: 3 x 3.83
    assert rounds_needed(0.9, 1.1, 1.0, 0.95, 3) == 12
    assert rounds_needed(0.9, 1.1, 1.0, 0.95, 1) == 4  # ceil(3.83)
    assert rounds_needed(0.98, 1.02, 1.0, 0.95, 3) == 4  # at least one more than now
    assert rounds_needed(0.98, 1.02, 1.0, 1.0, 3) is None  # the estimate on the threshold
    assert rounds_needed(1.0, 1.0, 1.0, 0.95, 3) is None  # no width
    for bad in [(0.0, 1.1, 1.0, 0.95), (0.9, 1.1, 0.0, 0.95), (0.9, 1.1, 1.0, 0.0)]:
        assert rounds_needed(*bad, 3) is None
    assert rounds_needed(0.5, 2.0, 1e-300, 0.95, 2) == 3  # tiny but positive: a number


def test_more_data_hint_texts() -> None:
    assert _more_data_hint(None, None, 2) == ""
    assert _more_data_hint(math.inf, None, 2) == (
        "The estimate lies on the threshold: more data alone may not decide it."
    )
    assert _more_data_hint(3.25, 7, 2) == (
        "The smallest change these data can detect is 3.2%; about 7 trials (rounds) a side "
        "would decide it (now 2)."
    )
    assert _more_data_hint(None, 7, 2) == "About 7 trials (rounds) a side would decide it (now 2)."
    assert _more_data_hint(4.0, None, 2) == (
        "The smallest change these data can detect is 4.0%; the estimate lies on the threshold: "
        "more data alone may not decide it."
    )


def test_the_reference_row_of_the_csv() -> None:
    from harborbench.compare import compare_results, tidy_rows
    from tests.compare.test_compare import make_run

    c = compare_results(make_run("a", [[600] * 12]), make_run("b", [[800] * 12]), n_resamples=100)
    ref = c.reference
    assert ref is not None
    row = tidy_rows(c)[-1]
    assert row == {
        "a_run": "plan_reference",
        "b_run": "b",
        "metric": "throughput_vs_plan_baseline",
        "unit": "ops/s",
        "better": "higher",
        "a": 505.6,
        "b": 800.0,
        "ratio": pytest.approx(800.0 / 505.6),
        "change_pct": pytest.approx(100.0 * (800.0 / 505.6 - 1.0)),
        "ci_low": None,
        "ci_high": None,
        "ci_of": "ratio",
        "confidence": 0.95,
        "method": ref.label,
        "p_value": None,
        "min_detectable_pct": None,
        "n_a": 0,
        "n_b": 12,
        "verdict": "target 1000 ops/s missed",
        "reason": ref.reason,
    }
    assert list(row) == list(tidy_rows(c)[0])  # the same columns in the same order


def test_rounds_needed_measures_the_distance_in_log_ratio() -> None:
    # estimate 1.02 against 0.95: distance ln(1.02 / 0.95) = 0.0711, half-width 0.1003
    assert rounds_needed(0.9, 1.1, 1.02, 0.95, 3) == math.ceil(
        3 * ((math.log(1.1) - math.log(0.9)) / 2 / math.log(1.02 / 0.95)) ** 2
    )
    # half-width 4x the distance: 16x the trials (not 8x)
    half = 4 * math.log(1.0 / 0.95)
    assert rounds_needed(math.exp(-half), math.exp(half), 1.0, 0.95, 2) == 32
    assert rounds_needed(0.9, 0.0, 1.0, 0.95, 3) is None  # a bound that is not positive


def test_parse_fail_on_messages_name_the_fix() -> None:
    from harborbench.compare import parse_fail_on
    from harborbench.compare.models import METRICS
    from harborbench.errors import UserInputError

    with pytest.raises(UserInputError) as caught:
        parse_fail_on("speed:-5%")
    gateable = ", ".join(k for k, m in METRICS.items() if m.gateable)
    assert str(caught.value).endswith(f"unknown metric 'speed'; use one of {gateable}.")
    assert "throughput, goodput, attempted, error_rate" in gateable
    with pytest.raises(UserInputError) as caught:
        parse_fail_on("throughput:+5%")
    assert caught.value.hint == "Write throughput:-5%."


def test_a_gate_is_judged_across_environments_only_when_allowed() -> None:
    from harborbench.compare import compare_results, evaluate_gate, parse_fail_on
    from tests.compare.test_compare import make_run

    gate = parse_fail_on("throughput:-5%")
    a = make_run("a", [[1000] * 12] * 2)
    b = make_run("b", [[700] * 12] * 2, environment={"cpu_count": 64})
    c = compare_results(a, b, n_resamples=100)
    assert evaluate_gate(c, gate).verdict == "inconclusive"  # the default refuses
    assert evaluate_gate(c, gate, allow_different_environment=True).verdict == "fail"


def test_one_trial_a_side_turns_a_failure_into_an_inconclusive_with_the_fix() -> None:
    from harborbench.compare import compare_results, evaluate_gate, parse_fail_on
    from tests.compare.test_compare import make_run

    c = compare_results(make_run("a", [[1000] * 12]), make_run("b", [[700] * 12]),
                        n_resamples=100)  # fmt: skip
    out = evaluate_gate(c, parse_fail_on("throughput:-5%"))
    assert out.verdict == "inconclusive"
    assert out.reason.endswith(
        ", but with one trial a side run-to-run noise is invisible and alone can produce this "
        "change"
    )
    assert out.hint == (
        "Measure at least 2 trials a side: repeat: 2 or more in the profiles, or "
        "compare --run A.yaml B.yaml --rounds 2 or more."
    )


def test_session_budget_limits_are_inclusive() -> None:
    from harborbench.compare.session import SessionBudget

    assert SessionBudget(rounds=3, max_rounds=3).max_rounds == 3
    assert SessionBudget(budget_s=0.5).budget_s == 0.5


def test_resample_percentiles_of_a_single_sample_and_of_three_intervals() -> None:
    hists = [LatencyHistogram() for _ in range(3)]
    hists[0].record_ns(2_000_000)
    hists[1].record_many_ns([4_000_000, 5_000_000])
    hists[2].record_many_ns([7_000_000] * 3)
    index, counts = counts_matrix(hists)
    assert counts.shape == (3, 4)
    w = cs.Weights(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]), 3.0, 1.0, "w")
    got = cs.resample_percentiles(index, counts, w, [50.0])[50.0]
    assert got.replicates[0] == hists[0].percentile_ns(50)  # a resample of one sample
    assert got.replicates[1] == hists[2].percentile_ns(50)
    assert got.estimate == _merged(*hists).percentile_ns(50) == got.replicates[2]


def test_mann_whitney_p_of_two_values_a_side() -> None:
    assert cs.mann_whitney_p([1.0, 2.0], [3.0, 4.0]) == pytest.approx(1 / 3)
    assert cs.mann_whitney_p([1.0, 2.0, math.nan], [3.0, 4.0]) == pytest.approx(1 / 3)


def test_failure_notes_need_a_latency_gate() -> None:
    from harborbench.compare import compare_results, parse_fail_on
    from harborbench.compare.fail_on import failure_notes
    from tests.compare.test_compare import make_run

    a = make_run("a", [[1000] * 12])
    b = make_run("b", [[1000] * 12], failures=[50] * 12)
    c = compare_results(a, b, n_resamples=100)
    assert failure_notes(c, [parse_fail_on("throughput:-5%")]) == []
    (note,) = failure_notes(c, [parse_fail_on("p99:+10%"), parse_fail_on("p50:+10%")])
    assert note.startswith("latency gates (p50, p99) judge successful ops only")
    assert "(error rate A 0.0%, B 4.8%)" in note


def test_per_interval_percentiles_skip_intervals_with_too_few_samples() -> None:
    from harborbench.compare.rows import _Ctx

    hists = [LatencyHistogram() for _ in range(3)]
    hists[0].record_many_ns([1_000_000] * 19)  # one short of the 20 p50 needs
    hists[1].record_many_ns([2_000_000] * 10 + [4_000_000] * 10)
    hists[2].record_many_ns([8_000_000] * 25)
    idx, counts = counts_matrix(hists)
    got = _Ctx._per_interval(idx, counts, 50.0)
    assert got.dtype == np.float64
    assert got.tolist() == [float(hists[1].percentile_ns(50)), float(hists[2].percentile_ns(50))]
    assert got[0] == pytest.approx(2_000_000, rel=1e-3)
    assert _Ctx._per_interval(idx, counts[:1], 50.0).tolist() == []


def test_block_length_of_a_side_is_the_larger_of_throughput_and_median_dependence() -> None:
    from harborbench.compare.rows import _Side
    from tests.compare.test_compare import make_run

    # A slow wave in throughput (strong dependence) and independent latencies.
    wave = [1000 + int(200 * math.sin(i / 4)) for i in range(40)]
    side = _Side(make_run("a", [wave, wave[::-1]]))
    ops = [np.array(wave, dtype=np.float64), np.array(wave[::-1], dtype=np.float64)]
    expected_ops = cs.block_length(ops)
    assert expected_ops > 2.0
    assert side.block_s() >= expected_ops
    steady = _Side(make_run("b", [[1000] * 40, [1000] * 40]))
    assert steady.block_s() < expected_ops


def test_rate_rows_name_their_statistic_and_take_cpu_efficiency_from_the_total() -> None:
    from harborbench.compare import compare_results
    from tests.compare.test_compare import _with_goodput, make_run

    a = _with_goodput(make_run("a", [[100] * 12] * 2), 0.9)
    b = _with_goodput(make_run("b", [[100] * 12] * 2, seed=5), 0.5)
    c = compare_results(a, b, n_resamples=100)
    methods = {r.metric: r.method for r in c.rows}
    assert methods["throughput"].endswith(" (successes / s)")
    assert methods["goodput"].endswith(" (successes meeting the slo / s)")
    assert methods["attempted"].endswith(" (completions / s)")
    assert methods["error_rate"].endswith(" (failures / completions)")
    assert methods["cpu_efficiency"].endswith(" (successes / CPU-s from per-second CPU samples)")
    cpu = c.row("cpu_efficiency")
    assert cpu is not None and a.total is not None and b.total is not None
    assert (cpu.a, cpu.b) == (a.total.cpu.ops_per_cpu_second, b.total.cpu.ops_per_cpu_second)
    throughput = c.row("throughput")
    assert throughput is not None and throughput.ci_low is not None
    assert throughput.reason == (
        f"B/A lies in [{throughput.ci_low:.4g}, {throughput.ci_high:.4g}] at 95%"
    )


def test_a_difference_row_says_b_minus_a() -> None:
    from harborbench.compare import compare_results
    from tests.compare.test_compare import make_run

    a = make_run("a", [[100] * 12] * 2)
    b = make_run("b", [[100] * 12] * 2, seed=5, failures=[5] * 12)
    row = compare_results(a, b, n_resamples=100).row("error_rate")
    assert row is not None and row.ci_of == "difference" and row.ci_low is not None
    assert row.reason == f"B - A lies in [{row.ci_low:.4g}, {row.ci_high:.4g}] at 95%"


def test_failure_notes_show_a_missing_error_rate_as_n_a() -> None:
    from harborbench.compare.fail_on import failure_notes
    from harborbench.compare.fail_on import parse_fail_on as parse
    from tests.compare.test_gate_rules import _comparison, _row

    notes = failure_notes(_comparison([_row("error_rate", a=0.02, b=None)]), [parse("p99:+10%")])
    assert notes == [
        "latency gates (p99) judge successful ops only and ignore the failures (error rate A "
        "2.0%, B n/a); add --fail-on error_rate:+50% (or another limit) to gate them"
    ]
    notes = failure_notes(_comparison([_row("error_rate", a=None, b=0.5)]), [parse("p99:+10%")])
    assert "(error rate A n/a, B 50.0%)" in notes[0]


def _memory(verdict: str, slope: float | None, low: float | None, high: float | None) -> Any:
    from harborbench.result import MemoryFigures

    return MemoryFigures(rss_start_bytes=1, rss_end_bytes=1, rss_max_bytes=1, growth_pct=0.0,
                         slope_mb_per_min=slope, slope_ci_low=low, slope_ci_high=high,
                         verdict=verdict, reason=f"{verdict} here")  # type: ignore[arg-type]  # fmt: skip


def _with_total_memory(run: Any, memory: Any) -> Any:
    return run.model_copy(update={"total": run.total.model_copy(update={"memory": memory})})


def test_memory_growth_over_three_trials_is_a_difference_of_means() -> None:
    from harborbench.compare import compare_results
    from tests.compare.test_compare import make_run

    a = make_run("a", [[100] * 12] * 3, growth_pct=1.0)
    b = make_run("b", [[100] * 12] * 3, growth_pct=5.0)
    row = compare_results(a, b, n_resamples=100).row("memory_growth")
    assert row is not None
    assert (row.ci_of, row.ci_low, row.ci_high, row.verdict) == ("difference", 4.0, 4.0, "worse")
    assert row.method == "percentile bootstrap over trials (A 3, B 3), difference of means"


@pytest.mark.parametrize(
    ("b_memory", "verdict"),
    [
        (("pass", 3.0, 2.5, 3.5), "worse"),  # B's interval wholly above A's
        (("pass", 0.5, 0.1, 1.0), "no significant difference"),  # overlapping
        (("pass", -2.0, -3.0, -1.5), "better"),
    ],
)
def test_memory_slopes_are_judged_by_disjoint_intervals(b_memory: Any, verdict: str) -> None:
    from harborbench.compare import compare_results
    from tests.compare.test_compare import make_run

    a = _with_total_memory(make_run("a", [[100] * 12]), _memory("pass", 0.0, -1.0, 1.0))
    b = _with_total_memory(make_run("b", [[100] * 12]), _memory(*b_memory))
    row = compare_results(a, b, n_resamples=100).row("memory_slope")
    assert row is not None
    assert (row.a, row.b, row.verdict) == (0.0, b_memory[1], verdict)
    assert row.method == (
        "each run's Theil-Sen slope with Sen's 95% interval; disjoint intervals decide"
    )
    assert row.reason == (f"A [-1, 1], B [{b_memory[2]:.3g}, {b_memory[3]:.3g}] MB/min")


def test_an_inconclusive_slope_on_either_side_decides_nothing_even_with_an_interval() -> None:
    from harborbench.compare import compare_results
    from tests.compare.test_compare import make_run

    a = _with_total_memory(make_run("a", [[100] * 12]), _memory("pass", 0.0, -1.0, 1.0))
    b = _with_total_memory(make_run("b", [[100] * 12]), _memory("inconclusive", 9.0, 8.0, 10.0))
    row = compare_results(a, b, n_resamples=100).row("memory_slope")
    assert row is not None
    assert (row.verdict, row.reason) == (
        "inconclusive",
        "no conclusive slope for both runs (A: pass here; B: inconclusive here)",
    )


def test_rows_whose_resamples_are_mostly_undefined_have_no_interval_and_say_so() -> None:
    from harborbench.compare import compare_results
    from tests.compare.test_compare import make_run

    # One interval in 12 holds every request: a resample misses it with probability
    # (11/12)**12 = 35%, so error rate and p50 are undefined in far more than 10% of them.
    lone = [100] + [0] * 11
    c = compare_results(make_run("a", [lone]), make_run("b", [lone], seed=3), n_resamples=200)
    err, p50 = c.row("error_rate"), c.row("p50")
    assert err is not None and p50 is not None
    assert (err.ci_low, err.reason) == (None, "the resampled statistic is undefined too often")
    assert (p50.ci_low, p50.reason) == (None, "the resampled percentile is undefined too often")
    a_total = make_run("a", [lone]).total
    assert a_total is not None and p50.a == a_total.service_time.p50_s


def test_an_inconclusive_slope_reason_leaves_out_a_side_with_nothing_to_say() -> None:
    from harborbench.compare import compare_results
    from tests.compare.test_compare import make_run

    quiet = _memory("inconclusive", None, None, None).model_copy(update={"reason": ""})
    a = _with_total_memory(make_run("a", [[100] * 12]), quiet)
    b = _with_total_memory(make_run("b", [[100] * 12]), _memory("inconclusive", 1.0, 0.5, 2.0))
    row = compare_results(a, b, n_resamples=100).row("memory_slope")
    assert row is not None
    assert row.reason == "no conclusive slope for both runs (B: inconclusive here)"


@pytest.mark.parametrize(("confidence", "ok"), [(0.0, False), (1e-9, True), (0.999, True),
                                                (1.0, False), (1.5, False)])  # fmt: skip
def test_confidence_must_lie_strictly_between_0_and_1(confidence: float, ok: bool) -> None:
    from harborbench.compare import compare_results
    from tests.compare.test_compare import make_run

    a, b = make_run("a", [[100] * 3]), make_run("b", [[100] * 3])
    if ok:
        assert (
            compare_results(a, b, confidence=confidence, n_resamples=100).confidence == confidence
        )
    else:
        with pytest.raises(ValueError, match="confidence"):
            compare_results(a, b, confidence=confidence, n_resamples=100)


def test_ratio_needs_two_finite_figures_and_a_nonzero_a() -> None:
    from harborbench.compare.rows import _ratio

    assert _ratio(None, 1.0) == (None, None)
    assert _ratio(1.0, None) == (None, None)
    assert _ratio(0.0, 1.0) == (None, None)
    assert _ratio(math.inf, 1.0) == (None, None)
    assert _ratio(1.0, math.nan) == (None, None)
    assert _ratio(2.0, 3.0) == (1.5, 50.0)


def test_rate_arrays_of_each_metric() -> None:
    from harborbench.compare.rows import _Ctx, _Side
    from tests.compare.test_compare import make_run

    side = _Side(make_run("a", [[100, 50, 80]], failures=[1, 0, 2]))
    assert side.cpu_s.tolist() == [0.5, 0.5, 0.5]
    cases = {
        "throughput": ([100, 50, 80], [1, 1, 1]),
        "attempted": ([101, 50, 82], [1, 1, 1]),
        "error_rate": ([1, 0, 2], [101, 50, 82]),
        "cpu_efficiency": ([100, 50, 80], [0.5, 0.5, 0.5]),
    }
    for metric, (num, den) in cases.items():
        got = _Ctx._rate_arrays(metric, side)
        assert (got[0].tolist(), got[1].tolist(), got[2].tolist()) == (num, den, [True] * 3)


def test_a_side_keeps_only_the_window_rows() -> None:
    from harborbench.compare.rows import _Side
    from tests.compare.test_compare import make_run

    run = make_run("a", [[100, 50, 80]])  # 2 warmup rows (t -2, -1), then t 0, 1, 2
    trial = run.trials[0]
    rows = trial.timeseries
    extra = [rows[-1].model_copy(update={"t_s": 3.0}),  # at the window's end: length 0
             rows[-1].model_copy(update={"t_s": 0.0, "warmup": True})]  # fmt: skip
    side = _Side(
        run.model_copy(
            update={"trials": [trial.model_copy(update={"timeseries": [*rows, *extra]})]}
        )
    )
    assert side.successes.tolist() == [100, 50, 80]
    assert side.length_s.tolist() == [1.0, 1.0, 1.0]


def test_resample_ratio_of_sums_with_denominators_below_one() -> None:
    weights = cs.Weights(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), 2, 1.0, "m")
    got = cs.resample_ratio_of_sums(np.array([1.0, 3.0]), np.array([0.25, 0.5]), weights, "x")
    assert got.replicates.tolist() == [4.0, 6.0, 4.0 / 0.75]


def test_block_length_of_a_side_reads_each_interval_median() -> None:
    from harborbench.compare.rows import _Side
    from harborbench.metrics.histogram import LatencyHistogram as H
    from tests.compare.test_compare import make_run

    wave = [1000 + int(200 * math.sin(i / 4)) for i in range(40)]
    run = make_run("a", [wave], latency_sigma=1.5)
    side = _Side(run)
    rows = [r for r in run.trials[0].timeseries if not r.warmup]
    p50 = np.array([H.decode(r.service_histogram).percentile_ns(50) for r in rows], dtype=float)
    ops = np.array(wave, dtype=float)
    assert side.block_s() == max(cs.block_length([ops]), cs.block_length([p50]))
    assert cs.block_length([p50]) != cs.block_length(
        [np.array([H.decode(r.service_histogram).percentile_ns(51) for r in rows], dtype=float)]
    )


def test_slope_rows_without_any_reason_or_total_say_not_measured() -> None:
    from harborbench.compare.rows import _Ctx, _Side
    from tests.compare.test_compare import make_run

    quiet = _memory("inconclusive", None, None, None).model_copy(update={"reason": ""})
    a = _with_total_memory(make_run("a", [[100] * 12]), quiet)
    b = _with_total_memory(make_run("b", [[100] * 12]), quiet)
    rows = _Ctx(_Side(a), _Side(b), 0.95, 0, 100).memory_rows()
    assert rows[-1].reason == "no conclusive slope for both runs (not measured)"
    no_total = make_run("a", [[100] * 12]).model_copy(update={"total": None})
    rows = _Ctx(_Side(no_total), _Side(b), 0.95, 0, 100).memory_rows()
    assert (rows[0].a, rows[-1].a, rows[-1].reason) == (
        None,
        None,
        "no conclusive slope for both runs (not measured)",
    )


def test_attempted_row_counts_completions_not_requests_left_in_flight() -> None:
    from harborbench.compare import compare_results
    from tests.compare.test_compare import make_run

    a = make_run("a", [[100] * 12], failures=[2] * 12)
    assert a.total is not None
    a = a.model_copy(update={"total": a.total.model_copy(update={"attempted_ops": 150.0})})
    row = compare_results(a, make_run("b", [[100] * 12]), n_resamples=100).row("attempted")
    assert row is not None and row.a == 102.0


def test_the_plan_reference_defaults_when_a_result_lacks_it() -> None:
    from harborbench.compare import compare_results
    from tests.compare.test_compare import make_run

    b = make_run("b", [[600] * 12]).model_copy(update={"reference": {}})
    ref = compare_results(make_run("a", [[600] * 12]), b, n_resamples=100).reference
    assert ref is not None
    assert (ref.plan_baseline_ops, ref.plan_target_ops) == (505.6, 1000.0)
    assert ref.ratio_to_plan_baseline == 600 / 505.6


def test_the_plan_reference_reads_the_figures_a_result_carries() -> None:
    from harborbench.compare import compare_results
    from tests.compare.test_compare import make_run

    plan = {"plan_baseline_ops": 100.0, "plan_target_ops": 400.0}
    b = make_run("b", [[600] * 12]).model_copy(update={"reference": plan})
    ref = compare_results(make_run("a", [[600] * 12]), b, n_resamples=100).reference
    assert ref is not None
    assert (ref.plan_baseline_ops, ref.plan_target_ops, ref.target) == (100.0, 400.0, "met")


def _with_mode(run: Any, mode: str, reason: str = "") -> Any:
    status = {"mode": mode, "mode_reason": reason}
    return run.model_copy(update={"total": run.total.model_copy(update={"client_status": status})})


def test_the_same_client_config_in_two_effective_modes_is_a_workload_difference() -> None:
    from harborbench.compare import comparability
    from tests.compare.test_compare import make_run

    env_reason = "HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION=1 in the environment"
    a = _with_mode(make_run("a", [[100] * 3]), "optimized")
    b = _with_mode(make_run("b", [[100] * 3]), "traditional", env_reason)
    c = comparability(a, b)
    assert [(d.key, d.a, d.b) for d in c.workload] == [
        ("client mode (effective)", "optimized", "traditional")
    ]
    assert c.warnings[0] == (
        "B (b) ran in traditional mode because HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION was "
        "set, whatever its profile says"
    )
    other_client = b.model_copy(update={"profile": {**b.profile, "client": {"x": 1}}})
    assert "client mode (effective)" not in [d.key for d in comparability(a, other_client).workload]


def test_a_key_left_out_equals_its_implied_default() -> None:
    from harborbench.compare import comparability
    from tests.compare.test_compare import make_run

    a = make_run("a", [[100] * 3])
    b = make_run("b", [[100] * 3], profile={"request": {**a.profile["request"],
                                                        "dataset_order": "random"}})  # fmt: skip
    assert comparability(a, b).workload == []
    assert comparability(b, a).workload == []
    sequential = {"request": {**a.profile["request"], "dataset_order": "sequential"}}
    c = make_run("c", [[100] * 3], profile=sequential)
    assert [d.key for d in comparability(a, c).workload] == ["request.dataset_order"]


@pytest.mark.parametrize(("warmup", "warned"), [(3.0, False), (3.5, True)])
def test_a_window_as_long_as_the_warmup_is_not_thin(warmup: float, warned: bool) -> None:
    from harborbench.compare.differences import thin_data_warnings
    from tests.compare.test_compare import make_run

    a = make_run("a", [[100] * 12] * 2)  # 2 trials of 12 s: enough intervals
    short = make_run("b", [[100] * 3] * 4, profile={"warmup": warmup})  # windows of 3 s
    warnings = thin_data_warnings(a, short)
    assert any("shorter than its warmup" in w for w in warnings) is warned


def test_latency_rows_without_per_interval_histograms_or_a_total() -> None:
    from harborbench.compare.rows import _Ctx, _Side
    from tests.compare.test_compare import make_run

    run = make_run("a", [[100] * 12])
    bare_rows = [r.model_copy(update={"service_histogram": ""}) for r in run.trials[0].timeseries]
    bare = run.model_copy(update={"trials": [run.trials[0].model_copy(
        update={"timeseries": bare_rows})]})  # fmt: skip
    rows = {r.metric: r for r in _Ctx(_Side(bare), _Side(run), 0.95, 0, 100).latency_rows()}
    assert rows["p50"].reason == "the runs keep no per-interval histograms"
    no_total = run.model_copy(update={"total": None})
    rows = {r.metric: r for r in _Ctx(_Side(no_total), _Side(run), 0.95, 0, 100).latency_rows()}
    assert (rows["p50"].a, rows["p50"].n_a) == (None, 0)
    assert rows["p50"].reason == "p50 needs at least 20 samples per run (A 0, B 1200)"


def test_a_slope_without_b_s_interval_decides_nothing() -> None:
    from harborbench.compare import compare_results
    from tests.compare.test_compare import make_run

    a = _with_total_memory(make_run("a", [[100] * 12]), _memory("pass", 0.0, -1.0, 1.0))
    b = _with_total_memory(make_run("b", [[100] * 12]), _memory("pass", 9.0, None, None))
    row = compare_results(a, b, n_resamples=100).row("memory_slope")
    assert row is not None and row.verdict == "inconclusive"
    assert row.reason.startswith("no conclusive slope for both runs")


def test_a_row_describes_a_s_resampling() -> None:
    from harborbench.compare import compare_results
    from tests.compare.test_compare import make_run

    c = compare_results(make_run("a", [[100] * 12]), make_run("b", [[100] * 20]), n_resamples=100)
    for metric in ("throughput", "p50"):
        row = c.row(metric)
        assert row is not None and " of 12 1-s intervals" in row.method


# --- mutants left by the fourth session's run (tests/MUTATION.md) ------------------------------


def test_block_length_between_1_and_2_is_kept_not_rounded_up() -> None:
    # Sixty white-noise values whose estimate falls between the floor (1) and 2.
    x = np.random.default_rng(2).normal(size=60)
    got = cs.block_length([x])
    assert 1.0 < got < 2.0
    assert got == pytest.approx(1.2541744, rel=1e-6)


def test_block_length_of_a_side_reads_throughput_as_successes_per_second_of_interval() -> None:
    from harborbench.compare.rows import _Side
    from tests.compare.test_compare import make_run

    side = _Side(make_run("a", [[100] * 40]))
    base = side.block_s()
    # Intervals of slowly varying length (in eighths of a second, so that the rates are exact),
    # each at 100 ops/s: the throughput series is flat (no dependence), so the block length is
    # the median's, as with full seconds.
    lengths = np.round((0.6 + 0.35 * np.sin(np.arange(40) / 4.0)) * 8) / 8
    side.length_s = lengths
    side.successes = 100.0 * lengths
    assert side.block_s() == base
    # The same lengths with 100 successes each: the rate follows the slow wave.
    side.successes = np.full(40, 100.0)
    assert side.block_s() > base + 2.0


def test_stream_rows_when_one_run_has_no_total() -> None:
    from harborbench.compare.rows import _Ctx, _Side
    from tests.compare.test_compare import make_run, streamed

    a = _Side(make_run("a", [[100] * 12]))
    a.total = None
    b = _Side(streamed(make_run("b", [[100] * 12])))
    rows = _Ctx(a, b, 0.95, 0, 50).stream_rows()
    assert [r.metric for r in rows][:2] == ["ttft_p50", "ttft_p95"]
    assert all(r.a is None and r.b is not None for r in rows)
    assert all(r.n_a == 0 and r.n_b > 0 for r in rows)
    assert {r.reason for r in rows} == {"only one run streamed"}
    assert _Ctx(b, a, 0.95, 0, 50).stream_rows()[0].b is None


# --- mutants left by the fifth session's run ----------------------------------------------------


def test_comparability_warnings_name_the_side_and_run() -> None:
    from harborbench.compare.differences import comparability
    from tests.compare.test_compare import STEADY, _with_mode, make_run

    env = "disabled by HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION"
    a = _with_mode(make_run("a", [STEADY]), "traditional", env)
    b = _with_mode(make_run("b", [STEADY]), "traditional", env)
    warnings = comparability(
        a.model_copy(update={"interrupted": True}), b.model_copy(update={"interrupted": True})
    ).warnings
    for side, name in (("A", "a"), ("B", "b")):
        assert (
            f"{side} ({name}) ran in traditional mode because "
            "HARBORAI_DISABLE_CONCURRENCY_OPTIMIZATION was set, whatever its profile says"
        ) in warnings
        assert f"{side} ({name}) was interrupted: its result is partial" in warnings


def test_exactly_min_intervals_a_side_get_an_interval() -> None:
    from tests.compare.test_compare import make_run

    n = cs.MIN_INTERVALS
    enough = compare_results(make_run("a", [[1000] * n]), make_run("b", [[1000] * n]),
                             n_resamples=200)  # fmt: skip
    row = enough.row("throughput")
    assert row is not None and row.ci_low is not None and row.n_a == row.n_b == n
    short = compare_results(make_run("a", [[1000] * n]), make_run("b", [[1000] * (n - 1)]),
                            n_resamples=200)  # fmt: skip
    row = short.row("throughput")
    assert row is not None and row.ci_low is None and row.reason.startswith("too few")


def test_the_plan_reference_at_exactly_min_intervals_and_a_target_met_exactly() -> None:
    from tests.compare.test_compare import make_run

    n = cs.MIN_INTERVALS
    b = make_run("b", [[1000] * n])  # every resample: exactly 1000 ops/s
    b = b.model_copy(update={"reference": {"plan_baseline_ops": 505.6, "plan_target_ops": 1000.0}})
    ref = compare_results(make_run("a", [[1000] * n]), b, n_resamples=200).reference
    assert ref is not None
    assert (ref.b_ci_low, ref.b_ci_high) == (1000.0, 1000.0)
    assert ref.target == "met"  # the whole interval at the target: met (>=)


def _with_slope(
    run: RunResult, low: float, high: float, verdict: str = "pass", reason: str = ""
) -> RunResult:
    assert run.total is not None
    memory = run.total.memory.model_copy(update={
        "slope_mb_per_min": (low + high) / 2, "slope_ci_low": low, "slope_ci_high": high,
        "trend_window_s": 600.0, "samples": 600, "verdict": verdict, "reason": reason,
    })  # fmt: skip
    return run.model_copy(update={"total": run.total.model_copy(update={"memory": memory})})


@pytest.mark.parametrize(
    ("b_low", "b_high", "verdict"),
    [
        (2.0, 3.0, "no significant difference"),  # touches A's [1, 2] from above
        (2.01, 3.0, "worse"),
        (0.0, 1.0, "no significant difference"),  # touches it from below
        (0.0, 0.99, "better"),
    ],
)
def test_memory_slopes_decide_only_when_their_intervals_are_disjoint(
    b_low: float, b_high: float, verdict: str
) -> None:
    from tests.compare.test_compare import STEADY, make_run

    a = _with_slope(make_run("a", [STEADY]), 1.0, 2.0)
    b = _with_slope(make_run("b", [STEADY]), b_low, b_high)
    row = compare_results(a, b, n_resamples=100).row("memory_slope")
    assert row is not None and row.verdict == verdict
    assert (row.a, row.b) == (1.5, (b_low + b_high) / 2)


def test_an_inconclusive_memory_slope_row_still_shows_both_slopes() -> None:
    from tests.compare.test_compare import STEADY, make_run

    a = _with_slope(make_run("a", [STEADY]), 1.0, 2.0, "inconclusive", "too short")
    b = _with_slope(make_run("b", [STEADY]), 3.0, 4.0)
    row = compare_results(a, b, n_resamples=100).row("memory_slope")
    assert row is not None and row.verdict == "inconclusive"
    assert (row.a, row.b) == (1.5, 3.5)
    assert row.reason == "no conclusive slope for both runs (A: too short)"


@pytest.mark.parametrize(("groups", "paired"), [((2, 2), True), ((1, 1), False), ((2, 3), False),
                                                ((3, 2), False)])  # fmt: skip
def test_rounds_are_paired_only_with_the_same_number_of_several_trials(
    groups: tuple[int, int], paired: bool
) -> None:
    from harborbench.compare.rows import _Ctx, _Side
    from tests.compare.test_compare import make_run

    sides = [_Side(make_run(n, [[100] * 12] * k)) for n, k in zip("ab", groups, strict=True)]
    assert _Ctx(sides[0], sides[1], 0.95, 0, 50, paired=True).paired is paired
    assert _Ctx(sides[0], sides[1], 0.95, 0, 50).paired is False


# --- sixth session: the survivors of the fifth session's compare run ---------------------------


def test_block_length_of_a_non_finite_estimate_is_1(monkeypatch: pytest.MonkeyPatch) -> None:
    import arch.bootstrap
    import pandas as pd

    def nan_estimate(x: Any) -> pd.DataFrame:
        return pd.DataFrame({"stationary": [math.nan], "circular": [math.nan]})

    monkeypatch.setattr(arch.bootstrap, "optimal_block_length", nan_estimate)
    assert cs.block_length([np.arange(20.0)]) == 1.0


def test_resample_ratio_of_sums_estimate_with_a_denominator_sum_below_one() -> None:
    weights = cs.Weights(np.array([[1.0, 1.0]]), 1, 1.0, "m")
    got = cs.resample_ratio_of_sums(np.array([1.0, 3.0]), np.array([0.25, 0.5]), weights, "x")
    assert got.estimate == 4.0 / 0.75
    zero = cs.resample_ratio_of_sums(np.array([1.0, 3.0]), np.zeros(2), weights, "x")
    assert math.isnan(zero.estimate)


def test_resample_weights_with_blocks_of_1_is_the_multinomial_draw() -> None:
    # a mean block of exactly 1 s is the ordinary bootstrap, drawn as one multinomial per
    # resample from the caller's generator (a single trial draws no outer copies)
    got = cs.resample_weights([10], 50, np.random.default_rng(7), block_s=1.0)
    expected = np.random.default_rng(7).multinomial(np.full(50, 10), np.full(10, 0.1))
    assert np.array_equal(got.matrix, expected.astype(np.float64))


@pytest.mark.parametrize("block_s", [1.5, 2.0])
def test_resample_weights_with_blocks_above_1_keeps_neighbours_together(block_s: float) -> None:
    w = cs.resample_weights([40], 600, np.random.default_rng(2), block_s=block_s)
    assert np.all(w.matrix.sum(axis=1) == 40.0)
    # the chance that interval i + 1 follows interval i in a block is 1 - 1/block_s (1/3, 1/2):
    # their multiplicities are positively correlated, where independent draws give about 0
    corr = np.mean([np.corrcoef(w.matrix[:, i], w.matrix[:, i + 1])[0, 1] for i in range(39)])
    assert corr > 0.15
    iid = cs.resample_weights([40], 600, np.random.default_rng(2), block_s=1.0)
    iid_corr = np.mean(
        [np.corrcoef(iid.matrix[:, i], iid.matrix[:, i + 1])[0, 1] for i in range(39)]
    )
    assert abs(iid_corr) < 0.05


def test_comparability_of_a_run_without_a_total() -> None:
    from harborbench.compare.differences import comparability
    from tests.compare.test_compare import make_run

    b = make_run("b", [[100] * 12])
    assert b.total is not None
    mode = b.total.client_status.get("mode")
    no_total = make_run("a", [[100] * 12]).model_copy(update={"total": None})
    comp = comparability(no_total, b)
    modes = [(d.a, d.b) for d in comp.workload if d.key == "client mode (effective)"]
    assert modes == ([(None, str(mode))] if mode is not None else [])
    assert not any("HARBORAI_DISABLE" in w for w in comp.warnings)
    back = comparability(b, no_total)
    assert [(d.a, d.b) for d in back.workload if d.key == "client mode (effective)"] == [
        (b_mode, a_mode) for a_mode, b_mode in modes
    ]


def test_memory_rows_of_a_b_without_a_total() -> None:
    from harborbench.compare.rows import _Ctx, _Side
    from tests.compare.test_compare import make_run

    a = make_run("a", [[100] * 12])
    no_total = make_run("b", [[100] * 12]).model_copy(update={"total": None})
    rows = _Ctx(_Side(a), _Side(no_total), 0.95, 0, 100).memory_rows()
    assert [r.b for r in rows] == [None] * len(rows)
    assert rows[-1].reason == "no conclusive slope for both runs (A: window shorter than 5 min)"


def test_thin_data_joins_both_problems_of_a_run_in_one_warning() -> None:
    from harborbench.compare.differences import thin_data_warnings
    from tests.compare.test_compare import make_run

    a = make_run("a", [[1000] * 6], profile={"warmup": 8.0})
    (line,) = thin_data_warnings(a, make_run("b", [[1000] * 30]))
    assert line == (
        "A (a) has only 6 1-s intervals (at least 10 are needed for an interval) and a "
        "measurement window of 6 s, shorter than its warmup of 8 s: raise duration, or measure "
        "more trials (repeat, or compare --run --rounds)"
    )


def test_the_plan_target_is_not_missed_when_b_s_interval_reaches_it_exactly() -> None:
    from harborbench.compare import compare_results
    from tests.compare.test_compare import make_run

    a = make_run("a", [[600] * 12])
    b = make_run("b", [[600, 640, 580, 610, 590, 620, 600, 630, 570, 605, 615, 595]])
    first = compare_results(a, b, n_resamples=200).reference
    assert first is not None and first.b_ci_low is not None and first.b_ci_high is not None
    assert first.b_ci_low < first.b_ci_high
    plan = {"plan_baseline_ops": 505.6}
    at_high = b.model_copy(update={"reference": {**plan, "plan_target_ops": first.b_ci_high}})
    ref = compare_results(a, at_high, n_resamples=200).reference
    assert ref is not None and ref.b_ci_high == first.b_ci_high
    assert ref.target == "inconclusive"  # the interval's top is the target: not missed
    above = b.model_copy(
        update={"reference": {**plan, "plan_target_ops": math.nextafter(first.b_ci_high, 1e9)}}
    )
    missed = compare_results(a, above, n_resamples=200).reference
    assert missed is not None and missed.target == "missed"
    at_low = b.model_copy(update={"reference": {**plan, "plan_target_ops": first.b_ci_low}})
    met = compare_results(a, at_low, n_resamples=200).reference
    assert met is not None and met.target == "met"


def test_block_length_of_a_side_uses_intervals_with_a_single_sample() -> None:
    from harborbench.compare.rows import _Side
    from harborbench.metrics.histogram import LatencyHistogram as H
    from tests.compare.test_compare import make_run

    run = make_run("a", [[1] * 12])
    trial = run.trials[0]
    rows = []
    k = 0
    for r in trial.timeseries:
        if r.warmup:
            rows.append(r)
            continue
        h = H()
        h.record_ns(1_000_000 * (1 + k))  # one sample an interval, rising: dependent
        k += 1
        rows.append(r.model_copy(update={"service_histogram": h.encode()}))
    one = run.model_copy(update={"trials": [trial.model_copy(update={"timeseries": rows})]})
    side = _Side(one)
    medians = [H.decode(r.service_histogram).percentile_ns(50) for r in rows if not r.warmup]
    assert len(medians) == 12
    assert cs.block_length([np.array(medians, dtype=float)]) > 1.0
    assert side.block_s() == cs.block_length([np.array(medians, dtype=float)])


def test_the_effective_mode_is_compared_only_for_the_same_client_config() -> None:
    from harborbench.compare.differences import comparability
    from tests.compare.test_compare import _with_mode, make_run

    client = {"performance_mode": "optimized", "max_concurrent_requests": 50}
    a = _with_mode(make_run("a", [[100] * 12], profile={"client": client}), "optimized", "")
    b = _with_mode(make_run("b", [[100] * 12], profile={"client": client}), "traditional", "")
    keys = [d.key for d in comparability(a, b).workload]
    assert keys == ["client mode (effective)"]
    other = {**client, "max_concurrent_requests": 60}
    c = _with_mode(make_run("c", [[100] * 12], profile={"client": other}), "traditional", "")
    keys = [d.key for d in comparability(a, c).workload]
    assert "client mode (effective)" not in keys  # other configs: the config row says it


def test_compare_results_draws_with_seed_0_by_default() -> None:
    from harborbench.compare import compare_results
    from tests.compare.test_compare import make_run

    a, b = make_run("a", [[100 + i % 7 for i in range(12)]]), make_run("b", [[100] * 12], seed=3)
    default = compare_results(a, b, n_resamples=100)
    assert default.rows == compare_results(a, b, n_resamples=100, seed=0).rows
    assert default.rows != compare_results(a, b, n_resamples=100, seed=1).rows
