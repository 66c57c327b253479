"""Calibration of ``compare --fail-on``: false-failure rate (A/A) and power (A/B), on the mock.

Run by hand, not in CI (it takes tens of minutes):

    .venv/bin/python benchmarks/gate_calibration.py                 # 20 A/A + 20 A/B sessions
    .venv/bin/python benchmarks/gate_calibration.py --pairs 6 --duration 3s   # a quick look

Each *session* is what ``harborbench compare --run A.yaml B.yaml --fail-on throughput:-5%`` does
with its defaults (3 rounds before the first look, at most 10 rounds, rounds of A and B
interleaved in alternating order, paired bootstrap): the library's own
:func:`harborbench.compare.session.run_session` and :func:`harborbench.compare.compare_results`,
against one built-in mock server, in one process.

* **A/A** sessions compare a profile with itself (closed loop of ``--concurrency`` workers, mock
  latency log-normal, median 20 ms). Any failure of the gate is a false failure; the target is at
  most 5% at 95% confidence.
* **A/B** sessions compare it with the same profile whose client allows one request fewer in
  flight (``max_concurrent_requests`` = concurrency - 1; with 10 workers on a latency-bound
  workload that costs 10% throughput; the measured effect is printed). A failure of the gate is a
  detection; the target is a power of at least 80%.

A/A and A/B sessions alternate, so that the machine's drift falls on both. The script also
reports, from the same data, the verdict after the first round alone (one trial a side: the rule
is that such a gate never fails), how often the A/A interval of the first look excludes 1
(nominal 5%), and the run-to-run noise: the standard deviation of the per-round log ratio B/A of
the A/A sessions. It prints medians with min-max and the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import time
from dataclasses import dataclass

from scipy import stats as sps

from harborbench.compare import Comparison, compare_results, parse_fail_on
from harborbench.compare.session import SessionBudget, run_session
from harborbench.engine.session import MeasurementSession
from harborbench.profile import Profile, load_profile_dict
from harborbench.result import TrialResult
from harborbench.units import parse_duration


def _profile(name: str, concurrency: int, limit: int, warmup: str, duration: str) -> Profile:
    return load_profile_dict(
        {
            "name": name,
            "target": {
                "mock": {
                    "latency": {"distribution": "lognormal", "median": "20ms", "p99": "60ms"},
                    "output_tokens": {"min": 16, "max": 64},
                    "seed": 1,
                }
            },
            "request": {"model": "gpt-4o-mini", "prompt_tokens": 200, "max_tokens": 64},
            "client": {"max_concurrent_requests": limit},
            "load": {"concurrency": concurrency},
            "warmup": warmup,
            "duration": duration,
            "seed": 1,
        },
        source="gate_calibration",
    )


@dataclass
class Session:
    kind: str  # "A/A" or "A/B"
    verdict: str
    rounds: int
    stop_reason: str
    elapsed_s: float
    ratio: float | None
    first_look_excludes_1: bool
    one_trial_verdict: str
    round_log_ratios: list[float]


def _ops(t: TrialResult) -> float:
    return t.throughput_ops


async def _session(
    kind: str,
    pa: Profile,
    pb: Profile,
    bench: MeasurementSession,
    budget: SessionBudget,
    gate_text: str,
    n_resamples: int,
) -> Session:
    gates = [parse_fail_on(gate_text)]
    profiles = (pa, pb)

    async def trial(side: int, index: int) -> TrialResult:
        return await bench.trial(profiles[side], index=index)

    def compare(ta: list[TrialResult], tb: list[TrialResult], paired: bool = True) -> Comparison:
        ra = bench.result(pa, ta, interrupted=False, interleaved=True)
        rb = bench.result(pb, tb, interrupted=False, interleaved=True)
        return compare_results(ra, rb, fail_on=gates, paired=paired, n_resamples=n_resamples)

    out = await run_session(trial, compare, budget, gates=gates)
    assert out.comparison is not None
    ta, tb = out.trials
    first = compare(ta[: budget.rounds], tb[: budget.rounds])
    row = first.row("throughput")
    one = compare(ta[:1], tb[:1], paired=False)
    final = out.comparison.row("throughput")
    return Session(
        kind=kind,
        verdict=out.comparison.gates[0].verdict,
        rounds=out.rounds,
        stop_reason=out.stop_reason,
        elapsed_s=out.elapsed_s,
        ratio=None if final is None else final.ratio,
        first_look_excludes_1=row is not None and row.verdict in ("better", "worse"),
        one_trial_verdict=one.gates[0].verdict,
        round_log_ratios=[math.log(_ops(b) / _ops(a)) for a, b in zip(ta, tb, strict=False)],
    )


def _rate(k: int, n: int) -> str:
    if n == 0:
        return "n/a"
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return f"{k}/{n} = {k / n:.0%} (95% CI {ci.low:.0%} to {ci.high:.0%})"


def _spread(values: list[float], fmt: str = "{:.0f}") -> str:
    if not values:
        return "n/a"
    med, low, high = (fmt.format(x) for x in (statistics.median(values), min(values), max(values)))
    return f"median {med} (min {low}, max {high})"


async def main(args: argparse.Namespace) -> None:
    load_before = os.getloadavg()
    concurrency = args.concurrency
    pa = _profile("cal-a", concurrency, concurrency, args.warmup, args.duration)
    pa2 = _profile("cal-a2", concurrency, concurrency, args.warmup, args.duration)
    pb = _profile("cal-b", concurrency, concurrency - 1, args.warmup, args.duration)
    budget = SessionBudget(rounds=args.rounds, max_rounds=args.max_rounds)
    print(
        f"settings: {args.pairs} A/A and {args.pairs} A/B sessions, alternating; gate "
        f"--fail-on {args.gate} at 95%; rounds {budget.rounds} before the first look, at most "
        f"{budget.max_rounds}; each trial {args.warmup} warmup + {args.duration} window; closed "
        f"loop of {concurrency} workers; mock latency log-normal median 20 ms, p99 60 ms; A/B: "
        f"max_concurrent_requests {concurrency} vs {concurrency - 1}; {args.resamples} "
        f"bootstrap resamples; {os.cpu_count()} CPUs; load average before "
        f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}",
        flush=True,
    )
    sessions: list[Session] = []
    start = time.monotonic()
    async with MeasurementSession(pa) as bench:
        for i in range(args.pairs):
            for kind, other in (
                (("A/A", pa2), ("A/B", pb))
                if i % 2 == 0
                else (
                    ("A/B", pb),
                    ("A/A", pa2),
                )
            ):
                s = await _session(kind, pa, other, bench, budget, args.gate, args.resamples)
                sessions.append(s)
                print(
                    f"  {kind} #{i + 1}: {s.verdict} after {s.rounds} rounds ({s.stop_reason}, "
                    f"{s.elapsed_s:.0f} s), B/A {s.ratio:.3f}; one trial a side: "
                    f"{s.one_trial_verdict}; load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
    load_after = os.getloadavg()
    aa = [s for s in sessions if s.kind == "A/A"]
    ab = [s for s in sessions if s.kind == "A/B"]
    noise = [x for s in aa for x in s.round_log_ratios]
    sd_run = statistics.stdev(noise) if len(noise) > 1 else math.nan
    print()
    print(f"A/A false failures (gate failed on identical profiles): "
          f"{_rate(sum(s.verdict == 'fail' for s in aa), len(aa))}")  # fmt: skip
    unsure = sum(s.verdict == "inconclusive" for s in aa)
    print(f"A/A inconclusive (exit 3): {_rate(unsure, len(aa))}")
    print(f"A/A interval excluding 1 at the first look (nominal 5%): "
          f"{_rate(sum(s.first_look_excludes_1 for s in aa), len(aa))}")  # fmt: skip
    print(f"A/B power (gate failed on the known effect): "
          f"{_rate(sum(s.verdict == 'fail' for s in ab), len(ab))}")  # fmt: skip
    print(f"A/B inconclusive: {_rate(sum(s.verdict == 'inconclusive' for s in ab), len(ab))}")
    effects = [100 * (s.ratio - 1) for s in ab if s.ratio is not None]
    print(f"A/B measured effect, percent: {_spread(effects, '{:+.1f}')}")
    print(f"one trial a side, A/A false failures: "
          f"{_rate(sum(s.one_trial_verdict == 'fail' for s in aa), len(aa))}; A/B detected: "
          f"{_rate(sum(s.one_trial_verdict == 'fail' for s in ab), len(ab))}")  # fmt: skip
    print(f"rounds taken, A/A: {_spread([s.rounds for s in aa])}; "
          f"A/B: {_spread([s.rounds for s in ab])}")  # fmt: skip
    print(f"session wall time, s: {_spread([s.elapsed_s for s in sessions])}")
    print(f"run-to-run noise (sd of per-round log B/A, A/A, {len(noise)} rounds): "
          f"{100 * sd_run:.2f}%")  # fmt: skip
    print(
        f"total {time.monotonic() - start:.0f} s; load average after {load_after[0]:.2f} "
        f"{load_after[1]:.2f} {load_after[2]:.2f}"
    )


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=20, help="A/A and A/B sessions each")
    parser.add_argument("--gate", default="throughput:-5%")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-rounds", type=int, default=10)
    parser.add_argument("--warmup", default="1s")
    parser.add_argument("--duration", default="4s")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    parse_duration(args.warmup)
    parse_duration(args.duration)
    return args


if __name__ == "__main__":
    asyncio.run(main(_args()))
