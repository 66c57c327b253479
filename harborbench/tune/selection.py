"""The choice of ``harborbench tune``: which sweep point to recommend, and how far others miss.

:func:`select_point` takes the highest throughput among the points meeting every gate whose
measurement is trustworthy (the load generator was not saturated), with points within
:data:`TIE_FRACTION` of it counted as tied and the tie going to the fewest resources;
:func:`saturation_note` says when a saturated point was passed over (or when only saturated
points met the gates, so that nothing is recommended); :func:`closest_point` names the nearest
miss when no point meets the gates.
"""

from __future__ import annotations

from collections.abc import Sequence

from harborbench.gates import success_rate
from harborbench.profile.schema import Gates
from harborbench.result import GateResult, TrialResult
from harborbench.tune.result import PointScore

#: Throughputs within this fraction of the best count as tied (within run-to-run noise).
TIE_FRACTION = 0.02
#: Gates a short trial cannot judge (the slope needs >= 5 minutes): not used to choose.
UNJUDGED_GATES = ("memory slope",)
#: The requirement every recommended point meets besides the profile's gates, as listed among a
#: point's missed gates: a setting at which no request succeeded is no setting for the client.
NO_SUCCESS = "at least one successful request"


def select_point(scores: Sequence[PointScore], tie_fraction: float = TIE_FRACTION) -> int | None:
    """Index of the recommended point, or ``None`` if no trustworthy point meets the gates.

    Rule: among points meeting every gate and not saturated (a recommendation must come from a
    measurement of the client, not of the harness's limits), those whose objective (throughput,
    or goodput with ``tune --objective goodput``) is >= (1 - ``tie_fraction``) x the best are
    tied; the tie goes to the smallest :meth:`Knobs.resource_key` (then the higher value, then
    the earlier point). When every point meeting the gates is saturated, nothing is chosen:
    a saturated point's figures are capped or delayed by the generator, so neither its
    throughput nor its gate verdicts can be trusted (:func:`saturation_note` says so).

    Args:
        scores: the points, in sweep order.
        tie_fraction: relative throughput difference treated as noise (0.02 = 2%).

    Returns:
        The index into ``scores``, or ``None``.
    """
    return _pick(scores, tie_fraction, trust_saturated=False)


def _pick(
    scores: Sequence[PointScore], tie_fraction: float, *, trust_saturated: bool
) -> int | None:
    """:func:`select_point`'s rule; with ``trust_saturated``, saturated points may win too."""
    ok = [i for i, s in enumerate(scores) if s.meets_gates and (trust_saturated or not s.saturated)]
    if not ok:
        return None
    best = max(scores[i].value_ops for i in ok)
    tied = [i for i in ok if scores[i].value_ops >= (1.0 - tie_fraction) * best]
    return min(tied, key=lambda i: (scores[i].knobs.resource_key(), -scores[i].value_ops))


def saturation_note(scores: Sequence[PointScore], tie_fraction: float = TIE_FRACTION) -> str | None:
    """What the choice left out because its measurement was saturated, in one sentence.

    Args:
        scores: the points, in sweep order.
        tie_fraction: as for :func:`select_point`.

    Returns:
        ``None`` when the rule without the saturation check would choose the same point (or an
        unsaturated one); else names the saturated point it would have chosen and either the
        best unsaturated point recommended instead, or that nothing is recommended because
        every point meeting the gates was saturated.
    """
    chosen = select_point(scores, tie_fraction)
    would = _pick(scores, tie_fraction, trust_saturated=True)
    if would is None or would == chosen or not scores[would].saturated:
        return None
    w = scores[would]
    text = (
        f"point {would} ({w.knobs.label()}, {w.value_ops:,.1f} ops/s) met every gate but its "
        "measurement is not trusted: the load generator was saturated (its CPU, event loop or "
        "send schedule was the bottleneck; see the point's warnings)"
    )
    if chosen is None:
        flagged = [i for i, s in enumerate(scores) if s.meets_gates and s.saturated]
        return (
            f"{text}. Every point that met the gates ({', '.join(map(str, flagged))}) was "
            "saturated, so nothing is recommended: run tune again with nothing else on this "
            "machine, or on a larger one"
        )
    c = scores[chosen]
    return (
        f"{text}; recommended instead: the best unsaturated point, point {chosen} "
        f"({c.knobs.label()}, {c.value_ops:,.1f} ops/s)"
    )


def closest_point(scores: Sequence[PointScore]) -> int | None:
    """Index of the point with the smallest total gate shortfall (ties: higher objective).

    Args:
        scores: the points, with :func:`gate_shortfall` in ``shortfall``.

    Returns:
        The index into ``scores``, or ``None`` when there is no point.
    """
    if not scores:
        return None
    return min(range(len(scores)), key=lambda i: (scores[i].shortfall, -scores[i].value_ops))


def gate_shortfall(trial: TrialResult, gates: Gates) -> float:
    """Sum over gates of the relative amount by which ``trial`` misses each (0: meets all).

    Each term is ``max(gap, 0) / |limit|``: throughput 800 against a 1000 ops/s minimum adds
    0.2, p95 300 ms against 200 ms adds 0.5; error rates are divided by at least 0.01 and
    memory growth by at least 1%, so a zero limit stays finite. A figure that could not be
    measured counts 1, and so does a trial without a single success. Used to name the closest
    point when nothing meets the gates.

    Args:
        trial: the point's figures.
        gates: the profile's thresholds (the memory slope is not used).

    Returns:
        The shortfall, >= 0, dimensionless.
    """

    def miss(value: float | None, limit: float, above: bool, floor: float = 1e-9) -> float:
        if value is None:
            return 1.0
        gap = (value - limit) if above else (limit - value)
        return max(gap, 0.0) / max(abs(limit), floor)

    total = 0.0 if trial.successes else 1.0  # nothing succeeded: see NO_SUCCESS
    if gates.throughput_min is not None:
        total += miss(trial.throughput_ops, gates.throughput_min, above=False)
    if gates.p95_max is not None:
        total += miss(trial.service_time.p95_s, gates.p95_max, above=True)
    if gates.error_rate_max is not None:
        total += miss(trial.error_rate, gates.error_rate_max, above=True, floor=0.01)
    if gates.success_rate_min is not None:
        total += miss(success_rate(trial), gates.success_rate_min, above=False)
    if gates.memory_growth_max_pct is not None:
        total += miss(trial.memory.growth_pct, gates.memory_growth_max_pct, above=True, floor=1.0)
    return total


def judge(gates: list[GateResult]) -> tuple[bool, list[str], list[str]]:
    """Whether a sweep point meets its gates; the gates it fails and those it cannot judge.

    A gate is met only with a ``pass`` verdict: a ``fail`` is missed, and an ``inconclusive``
    one (for example a p95 from too few samples) is not met either but is listed apart, so
    that it is not shown as a failure. The gates of :data:`UNJUDGED_GATES`, which a short
    trial can never judge, are left out of all three.

    Args:
        gates: the point's gates (:func:`harborbench.gates.evaluate_gates`).

    Returns:
        ``(meets, missed gate names (verdict fail), unsure gate names (verdict inconclusive))``,
        the names in the order of ``gates``.
    """
    judged = [g for g in gates if g.name not in UNJUDGED_GATES]
    missed = [g.name for g in judged if g.verdict == "fail"]
    unsure = [g.name for g in judged if g.verdict == "inconclusive"]
    return not (missed or unsure), missed, unsure
