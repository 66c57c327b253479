"""Load models: *when* to send (SPEC section 5).

Three models, all pure functions of the profile and the seed, so a schedule is exact and
repeatable:

- **closed loop** (``concurrency``): N workers, each sending its next request when its last one
  ended. There is no schedule; the level may change by stage.
- **open loop** (``rate``): requests arrive at an arrival rate in ops/s, either evenly spaced
  (``constant``) or as a Poisson process (exponential gaps, seeded). Send times are computed on an
  *absolute* schedule from the start time, ``t_i = start + offset_i``, never as "sleep 1/rate after
  each send", so lateness of one send never delays the schedule (no drift), and a late send is
  visible as send lag.
- **stages**: a list of steps, each with its own rate or concurrency, for ramps and bursts.

The warmup runs at the level of the first step; the measurement window follows it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from harborbench.units import NS_PER_S


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a load plan.

    Attributes:
        start_s: offset of the step from the start of the run (warmup included), seconds.
        duration_s: length of the step, seconds.
        rate_ops: open-loop arrival rate in ops/s, or ``None`` for a closed-loop step.
        concurrency: closed-loop worker count, or ``None`` for an open-loop step.
    """

    start_s: float
    duration_s: float
    rate_ops: float | None = None
    concurrency: int | None = None

    @property
    def end_s(self) -> float:
        """Offset of the end of the step from the start of the run, seconds."""
        return self.start_s + self.duration_s


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """The whole run as steps: warmup first, then the measurement window.

    Attributes:
        kind: ``"closed"`` (concurrency) or ``"open"`` (arrival rate); stages of either kind
            become steps of that kind.
        arrival: ``"constant"`` or ``"poisson"`` (open loop only).
        warmup_s: warmup length, seconds; requests sent before it ends are excluded from every
            figure.
        steps: consecutive steps covering ``[0, warmup_s + window_s)``.
        seed: seed of the Poisson arrivals.
        stripe: ``(i, n)``: this process is shard *i* of *n* and runs only the global arrivals
            (open loop) or global workers (closed loop) whose index k has ``k mod n == i``
            (k6's striping); the steps always describe the whole, global workload.
            ``(0, 1)`` is a one-process run.
        offsets_ns: trace replay: the arrival offsets from the start, ns (int64 array, shape
            (n,), non-decreasing), used instead of the steps' rates; ``None`` otherwise.
    """

    kind: Literal["closed", "open"]
    arrival: Literal["constant", "poisson"]
    warmup_s: float
    steps: tuple[Step, ...]
    seed: int = 0
    stripe: tuple[int, int] = (0, 1)
    offsets_ns: np.ndarray[Any, np.dtype[np.int64]] | None = field(default=None, compare=False)

    @property
    def total_s(self) -> float:
        """Warmup plus measurement window, seconds."""
        return self.steps[-1].end_s if self.steps else self.warmup_s

    @property
    def window_s(self) -> float:
        """Length of the measurement window, seconds."""
        return self.total_s - self.warmup_s

    @property
    def max_concurrency(self) -> int:
        """The largest closed-loop worker count over all steps (0 for open loop)."""
        return max((s.concurrency or 0) for s in self.steps)

    def step_at(self, offset_s: float) -> Step:
        """The step in force at ``offset_s`` seconds from the start (the last one past the end)."""
        for step in self.steps:
            if offset_s < step.end_s:
                return step
        return self.steps[-1]

    def configured_level(self, offset_s: float) -> float:
        """Configured rate (ops/s) or concurrency of this stripe at ``offset_s``."""
        step = self.step_at(offset_s)
        return self.share(float((step.rate_ops if self.kind == "open" else step.concurrency) or 0))

    def share(self, level: float) -> float:
        """This stripe's part of a global level.

        Open loop: ``level / n`` (every n-th arrival). Closed loop: the number of global workers
        j < level with ``j mod n == i``, which is ``ceil((level - i) / n)``; the shares of the n
        stripes sum to ``level`` and never decrease as ``level`` grows.
        """
        i, n = self.stripe
        if n == 1:
            return level
        if self.kind == "open":
            return level / n
        return float(max(math.ceil((level - i) / n), 0))


def build_plan(
    *,
    warmup_s: float,
    levels: list[tuple[float, float]],
    kind: Literal["closed", "open"],
    arrival: Literal["constant", "poisson"] = "constant",
    seed: int = 0,
) -> LoadPlan:
    """Build a :class:`LoadPlan` from measurement-window steps.

    Args:
        warmup_s: warmup length in seconds (>= 0); it runs at the first step's level.
        levels: ``[(duration_s, level), ...]`` for the measurement window, where level is a rate
            in ops/s (open loop) or a worker count (closed loop).
        kind: ``"open"`` or ``"closed"``.
        arrival: arrival process for open loop.
        seed: seed for Poisson arrivals.

    Returns:
        The plan, with a warmup step first when ``warmup_s > 0``.

    Raises:
        ValueError: no steps, or a non-positive duration or level.
    """
    if not levels:
        raise ValueError("a load plan needs at least one step")
    steps: list[Step] = []
    t = 0.0
    for duration_s, level in [(warmup_s, levels[0][1]), *levels]:
        if duration_s < 0 or level <= 0:
            raise ValueError(
                f"step durations must be >= 0 and levels > 0, got {duration_s}, {level}"
            )
        if duration_s == 0:
            continue
        if kind == "open":
            steps.append(Step(t, duration_s, rate_ops=float(level)))
        else:
            steps.append(Step(t, duration_s, concurrency=int(level)))
        t += duration_s
    return LoadPlan(kind=kind, arrival=arrival, warmup_s=warmup_s, steps=tuple(steps), seed=seed)


def trace_plan(
    *, warmup_s: float, window_s: float, offsets_ns: np.ndarray[Any, np.dtype[np.int64]]
) -> LoadPlan:
    """An open-loop plan that sends at given offsets (trace replay).

    The steps carry the mean arrival rate of their span (arrivals in it / its length), for the
    achieved-versus-configured check; arrivals at or after ``warmup_s + window_s`` are not sent.

    Args:
        warmup_s: warmup length, seconds (>= 0).
        window_s: measurement window length, seconds (> 0).
        offsets_ns: arrival offsets from the start, ns, non-decreasing.

    Returns:
        The plan.
    """
    bounds = [(0.0, warmup_s), (warmup_s, warmup_s + window_s)]
    steps = []
    for start_s, end_s in bounds:
        if end_s <= start_s:
            continue
        lo = np.searchsorted(offsets_ns, round(start_s * NS_PER_S), side="left")
        hi = np.searchsorted(offsets_ns, round(end_s * NS_PER_S), side="left")
        steps.append(Step(start_s, end_s - start_s, rate_ops=float(hi - lo) / (end_s - start_s)))
    return LoadPlan(
        kind="open", arrival="constant", warmup_s=warmup_s, steps=tuple(steps),
        offsets_ns=offsets_ns,
    )  # fmt: skip


def arrival_offsets_ns(plan: LoadPlan) -> Iterator[int]:
    """Intended send times of an open-loop plan, as offsets from the start in nanoseconds.

    One by one, the offsets of :func:`arrival_blocks_ns` (see there for the schedule).

    Yields:
        Non-decreasing offsets in ns, all below ``plan.total_s``: with ``plan.stripe = (i, n)``
        only the global arrivals k with ``k mod n == i``, at their global intended times.

    Raises:
        ValueError: the plan is closed-loop.
    """
    for block in arrival_blocks_ns(plan):
        yield from block.tolist()


#: Arrivals per block of :func:`arrival_blocks_ns` (Poisson gaps are drawn 1024 at a time).
BLOCK = 1024

IntArray = npt.NDArray[np.int64]


def arrival_blocks_ns(plan: LoadPlan) -> Iterator[IntArray]:
    """Intended send times of an open-loop plan, offsets from the start in ns, in blocks.

    Constant arrivals within a step are at ``step.start + k / rate`` for k = 0, 1, ...; Poisson
    arrivals have independent exponential gaps of mean ``1 / rate`` drawn from
    ``numpy.random.default_rng(seed)``, restarting at each step boundary (the memoryless property
    makes this exact); a trace plan replays its ``offsets_ns``. Offsets are computed from the step
    start, so rounding never accumulates. Blocks let the driver count many overdue arrivals at
    once (dropped, or late after a stall) instead of one Python step each.

    Args:
        plan: an open-loop plan.

    Yields:
        int64 arrays, shape (k,) with k >= 1, of non-decreasing offsets in ns, all below
        ``plan.total_s``; concatenated they are the whole schedule. With ``plan.stripe = (i, n)``
        only the global arrivals k with ``k mod n == i``, at their global intended times.

    Raises:
        ValueError: the plan is closed-loop.
    """
    if plan.kind != "open":
        raise ValueError("arrival offsets exist only for open-loop plans")
    i, n = plan.stripe
    if n == 1:
        yield from _global_blocks_ns(plan)
        return
    base = 0  # global index of the block's first arrival
    for block in _global_blocks_ns(plan):
        mine = block[(np.arange(base, base + len(block)) % n) == i]
        base += len(block)
        if len(mine):
            yield mine


def _global_blocks_ns(plan: LoadPlan) -> Iterator[IntArray]:
    if plan.offsets_ns is not None:
        end_ns = round(plan.total_s * NS_PER_S)
        offsets = plan.offsets_ns
        for k in range(0, len(offsets), 4096):  # in blocks: no million-element list at once
            block = offsets[k : k + 4096]
            keep = int(np.searchsorted(block, end_ns, side="left"))
            if keep:
                yield block[:keep].astype(np.int64, copy=False)
            if keep < len(block):
                return
        return
    rng = np.random.default_rng(plan.seed)
    for step in plan.steps:
        assert step.rate_ops is not None
        start_ns = round(step.start_s * NS_PER_S)
        end_ns = round(step.end_s * NS_PER_S)
        if plan.arrival == "constant":
            k = 0
            while True:
                ks = np.arange(k, k + BLOCK, dtype=np.int64)
                offsets = start_ns + np.rint(ks * NS_PER_S / step.rate_ops).astype(np.int64)
                keep = int(np.searchsorted(offsets, end_ns, side="left"))
                if keep:
                    yield offsets[:keep]
                if keep < BLOCK:
                    break
                k += BLOCK
        else:
            t_s = 0.0
            while True:
                # Gaps are drawn 1024 at a time; the running sum starts from the last arrival, in
                # the same order of additions as one by one, so offsets are exactly reproducible.
                gaps = rng.exponential(1.0 / step.rate_ops, size=BLOCK)
                times_s = np.cumsum(np.concatenate(([t_s], gaps)))[1:]
                offsets = start_ns + np.rint(times_s * NS_PER_S).astype(np.int64)
                keep = int(np.searchsorted(offsets, end_ns, side="left"))
                if keep:
                    yield offsets[:keep]
                if keep < BLOCK:
                    break
                t_s = float(times_s[-1])
