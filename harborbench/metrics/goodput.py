"""Goodput: requests per second that succeeded and met every service-level objective.

Definition (DistServe, Zhong et al., "DistServe: Disaggregating Prefill and Decoding for
Goodput-optimized Large Language Model Serving", OSDI 2024; also vLLM's ``bench serve
--goodput``): a request counts toward goodput when it succeeded *and* each objective the profile
sets holds for it:

- ``ttft_max``: time to first token (first chunk carrying text) <= the limit;
- ``tpot_max``: time per output token after the first chunk (:func:`request_tpot_ns`) <= the limit;
  a response whose whole text came in its first chunk has no such time and meets it;
- ``latency_max``: the whole request <= the limit.

Goodput = those requests / window length (ops/s). In open loop the times are measured from the
*intended* send time of the schedule (coordinated omission: a request queued behind a stall
misses its objectives), in closed loop from the send. Limits are inclusive (a request exactly at
the limit meets it).
"""

from __future__ import annotations

from dataclasses import dataclass

from harborbench.units import NS_PER_S

__all__ = ["SloLimits", "meets_slo", "request_tpot_ns"]


def request_tpot_ns(
    end_ns: int, first_token_ns: int, output_tokens: float, first_chunk_tokens: float = 1.0
) -> int | None:
    """Time per output token of one streamed request, ns.

    ``(end - first token) / (output tokens - tokens in the first chunk)``: the decode time
    spread over the tokens that came after the first chunk (SPEC section 6; vLLM's
    ``benchmark_serving`` and GenAI-Perf use ``output tokens - 1``, which is the same when a
    chunk carries one token). The one definition used by the streaming statistics
    (:meth:`harborbench.engine.recorder.StreamStats.record`) and by goodput's ``tpot_max``.

    Args:
        end_ns: when the stream ended (perf_counter_ns).
        first_token_ns: when the first chunk carrying text arrived.
        output_tokens: output tokens of the response (the server's usage where given).
        first_chunk_tokens: tokens carried by the first chunk (an estimate may be fractional).

    Returns:
        The time per output token in ns (rounded), or ``None`` when no token came after the
        first chunk.
    """
    after = output_tokens - first_chunk_tokens
    if after <= 1e-9:
        return None
    return round((end_ns - first_token_ns) / after)


@dataclass(frozen=True, slots=True)
class SloLimits:
    """Per-request objectives in ns; ``None`` disables one.

    Attributes:
        ttft_max_ns: time to first token.
        tpot_max_ns: time per output token after the first chunk.
        latency_max_ns: the whole request.
    """

    ttft_max_ns: int | None = None
    tpot_max_ns: int | None = None
    latency_max_ns: int | None = None

    @classmethod
    def from_seconds(
        cls, ttft_max: float | None, tpot_max: float | None, latency_max: float | None
    ) -> SloLimits:
        """Limits given in seconds (as in a profile's ``slo`` section)."""

        def ns(x: float | None) -> int | None:
            return None if x is None else round(x * NS_PER_S)

        return cls(ns(ttft_max), ns(tpot_max), ns(latency_max))


def meets_slo(
    limits: SloLimits, latency_ns: int, ttft_ns: int | None = None, tpot_ns: int | None = None
) -> bool:
    """Whether one successful request met every objective of ``limits``.

    Args:
        limits: the objectives.
        latency_ns: the request's latency.
        ttft_ns: its time to first token (``None`` for a request without a stream: it then
            misses a ``ttft_max`` objective).
        tpot_ns: its time per output token (``None``: no token after the first chunk, which
            meets a ``tpot_max`` objective).

    Returns:
        True when each objective set in ``limits`` holds (limits inclusive).
    """
    if limits.latency_max_ns is not None and latency_ns > limits.latency_max_ns:
        return False
    if limits.ttft_max_ns is not None and (ttft_ns is None or ttft_ns > limits.ttft_max_ns):
        return False
    tpot_max = limits.tpot_max_ns
    return tpot_max is None or tpot_ns is None or tpot_ns <= tpot_max
