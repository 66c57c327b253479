"""The data of ``harborbench tune``: settings of a sweep point and the sweep's result file.

``reports/<name>/result.json`` of a tune is a :class:`TuneResult` (pydantic, unknown keys refused,
with a ``schema_version``); the hot in-memory records are frozen slotted dataclasses. Figures carry
their units in their names (``_s`` seconds, ``_ops`` ops per second).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harborbench.harborai.config import ClientConfig
from harborbench.metrics.usl import UslFit
from harborbench.result import GateResult, LatencySummary

#: Version of the tune ``result.json`` (``schema_version``). History: 1: first version (0.1.0);
#: 2: ``missed_gates`` of a point lists only failed gates, ``unsure_gates`` the inconclusive ones
#: (in version 1 ``missed_gates`` held both).
TUNE_SCHEMA_VERSION = 2

Phase = Literal["concurrency", "pool", "processor"]


@dataclass(frozen=True, slots=True)
class Knobs:
    """The client settings of one sweep point.

    Attributes:
        concurrency: closed-loop workers, and the client's ``max_concurrent_requests``.
        connection_pool_size: the client's ``connection_pool_size`` (connections per origin).
        workers: ``request_processor.workers``; ``None`` when the processor is not active.
        max_batch_size: ``request_processor.max_batch_size`` (1: no batching); ``None`` likewise.
        batch_window_s: ``request_processor.batch_window_s``, seconds; ``None`` likewise.
    """

    concurrency: int
    connection_pool_size: int
    workers: int | None = None
    max_batch_size: int | None = None
    batch_window_s: float | None = None

    def resource_key(self) -> tuple[int, int, int, int]:
        """Sort key of resource use, smallest first: concurrency, pool, workers, batch size."""
        return (self.concurrency, self.connection_pool_size, self.workers or 0,
                self.max_batch_size or 0)  # fmt: skip

    def apply(self, client: ClientConfig) -> ClientConfig:
        """``client`` with these settings set (as if written in it); the rest unchanged, so
        that sizes that follow from these keys (pool bounds, workers) follow them.

        Not validated: a profile or a client built from the result validates it.
        """
        update: dict[str, Any] = {
            "max_concurrent_requests": self.concurrency,
            "connection_pool_size": self.connection_pool_size,
        }
        if self.workers is not None:
            update["request_processor"] = client.request_processor.model_copy(
                update={
                    "workers": self.workers,
                    "max_batch_size": self.max_batch_size,
                    "batch_window_s": self.batch_window_s,
                }
            )
        return client.model_copy(update=update)

    def label(self) -> str:
        """Short text such as ``N=32 pool=16 workers=8x4/1ms``."""
        text = f"N={self.concurrency} pool={self.connection_pool_size}"
        if self.workers is not None:
            text += f" workers={self.workers}"
            if (self.max_batch_size or 1) > 1:
                text += f" batch={self.max_batch_size}/{(self.batch_window_s or 0) * 1e3:g}ms"
        return text


@dataclass(frozen=True, slots=True)
class PointScore:
    """What the selection rule looks at: settings, the objective's value (throughput or
    goodput, ops/s), gate outcome, and whether the measurement was flagged as saturated (the
    load generator's CPU, event loop or schedule limited it: ``health.generator_saturated``),
    which makes it untrustworthy for a recommendation."""

    knobs: Knobs
    value_ops: float
    meets_gates: bool
    shortfall: float
    saturated: bool = False


#: What ``tune`` maximizes: successful ops/s, or goodput (ops/s meeting the profile's slo).
Objective = Literal["throughput", "goodput"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SweepPoint(_Model):
    """One measured point of the sweep (one short trial).

    ``meets_gates`` is true only when every judged gate passed; ``missed_gates`` names the gates
    that failed and ``unsure_gates`` those that were inconclusive (not met, not failed either;
    for example a p95 from too few samples). See :func:`harborbench.tune.selection.judge`.
    """

    index: int
    phase: Phase
    concurrency: int
    max_concurrent_requests: int
    connection_pool_size: int
    workers: int | None
    max_batch_size: int | None
    batch_window_s: float | None
    window_s: float
    successes: int
    failures: int
    in_flight_at_end: int
    throughput_ops: float
    attempted_ops: float
    error_rate: float | None
    service_time: LatencySummary
    goodput_ops: float | None = None  # with an slo in the profile
    cpu_percent_mean: float
    ops_per_cpu_second: float | None
    generator_saturated: bool
    warnings: list[str]
    gates: list[GateResult]
    meets_gates: bool
    missed_gates: list[str]
    unsure_gates: list[str] = Field(default_factory=list)
    shortfall: float

    def knobs(self) -> Knobs:
        """The settings of this point."""
        return Knobs(self.concurrency, self.connection_pool_size, self.workers,
                     self.max_batch_size, self.batch_window_s)  # fmt: skip

    def value(self, objective: Objective = "throughput") -> float:
        """The point's figure for ``objective``, ops/s (goodput 0 when not measured)."""
        if objective == "goodput":
            return self.goodput_ops or 0.0
        return self.throughput_ops

    def score(self, objective: Objective = "throughput") -> PointScore:
        """The figures the selection rule uses, for ``objective``."""
        return PointScore(self.knobs(), self.value(objective), self.meets_gates, self.shortfall,
                          self.generator_saturated)  # fmt: skip

    def gates_text(self) -> str:
        """The gates in words: ``meets every gate``, or for example ``misses throughput;
        inconclusive: p95 latency``."""
        if self.meets_gates:
            return "meets every gate"
        parts = []
        if self.missed_gates:
            parts.append(f"misses {', '.join(self.missed_gates)}")
        if self.unsure_gates:
            parts.append(f"inconclusive: {', '.join(self.unsure_gates)}")
        return "; ".join(parts)


class Confirmation(_Model):
    """The final trial at the recommended settings, measured against what was predicted."""

    point: SweepPoint
    sweep_throughput_ops: float
    usl_predicted_ops: float | None
    ratio_to_sweep: float | None


class TuneResult(_Model):
    """Everything one ``harborbench tune`` measured (``result.json`` of the sweep)."""

    schema_version: int = TUNE_SCHEMA_VERSION
    kind: Literal["tune"] = "tune"
    name: str
    created_at: str
    harborbench_version: str
    profile: dict[str, Any]
    environment: dict[str, Any]
    budget_s: float
    elapsed_s: float
    trial_warmup_s: float
    trial_window_s: float
    rise_min_fraction: float
    tie_fraction: float
    points: list[SweepPoint]
    fit: UslFit
    chosen: int | None
    closest: int | None
    stop_reason: str
    notes: list[str]
    confirmation: Confirmation | None
    recommended_config: dict[str, Any] | None
    interrupted: bool
    objective: Objective = "throughput"

    def only_saturated_met(self) -> bool:
        """Whether nothing was chosen although points met every gate: each of them was measured
        with the load generator saturated, so none is a trustworthy recommendation."""
        return self.chosen is None and any(
            p.meets_gates and p.generator_saturated for p in self.points
        )
