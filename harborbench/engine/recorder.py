"""Collects the outcome of every request into counters and histograms (SPEC section 6).

The recorder applies the measurement window. An arrival belongs to the window by its *intended*
send time (in a closed loop, the actual one): one intended before the end of warmup is a warmup
request and is excluded from every figure (it still shows in the time series, marked as warmup).
Every arrival of the window is accounted for exactly once: it completed in the window (a success
or a failure by kind), was still in flight when the window closed (``in_flight_at_end``; a
``timeout`` failure if it had waited longer than the request timeout, see
:meth:`RequestSender.close_window <harborbench.engine.request.RequestSender.close_window>`), was
dropped because the backlog was full (``unsent``), or was reached by the generator only after the
window closed (``sent_late``). Times are absolute readings of the trial's clock, ns.

Memory is bounded whatever the run length: latencies go into HDR histograms, and each
one-second interval is closed (its histograms encoded to a compact string) once it can no longer
receive completions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from harborbench.engine.clock import NS_PER_S
from harborbench.metrics.histogram import LatencyHistogram


@dataclass(slots=True)
class Interval:
    """The figures of one one-second interval, by completion time.

    Attributes:
        index: start of the interval in whole seconds from the start of the measurement window
            (negative during warmup).
        warmup: the interval lies inside the warmup.
        successes, failures: requests completed in this interval. Warmup requests count here
            (so the time series shows the warmup, marked as such) but in no total.
        service_ns: service times of the successes (from the actual send), ns.
        response_ns: response times of the successes from the intended send time (open loop).

    The raw values of one second are kept (a few thousand ints at most) and binned into one
    reused histogram when the interval closes: a fresh 264 KiB histogram per second would
    fragment the C heap and inflate the RSS that the memory slope measures.
    """

    index: int
    warmup: bool
    successes: int = 0
    failures: int = 0
    service_ns: list[int] = field(default_factory=list)
    response_ns: list[int] = field(default_factory=list)


@dataclass(slots=True)
class StreamStats:
    """Streaming figures of the successful measured requests.

    Attributes:
        ttft: time to first token (first chunk carrying generated text) from the send, ns.
        itl: inter-token latency: gaps between consecutive content chunks, ns.
        tpot: time per output token after the first, per request, ns.
        output_tokens: total output tokens (the server's usage where given, else chunks counted).
    """

    ttft: LatencyHistogram = field(default_factory=LatencyHistogram)
    itl: LatencyHistogram = field(default_factory=LatencyHistogram)
    tpot: LatencyHistogram = field(default_factory=LatencyHistogram)
    output_tokens: int = 0


class Recorder:
    """Aggregates request outcomes for one trial.

    Args:
        start_ns: perf_counter_ns at the start of the run (warmup included).
        warmup_s: warmup length, seconds.
        window_s: measurement window length, seconds.
        open_loop: whether response times from the intended send time are recorded.
    """

    def __init__(self, start_ns: int, warmup_s: float, window_s: float, *, open_loop: bool) -> None:
        self.start_ns = start_ns
        self.warmup_end_ns = start_ns + round(warmup_s * NS_PER_S)
        self.window_end_ns = self.warmup_end_ns + round(window_s * NS_PER_S)
        self.open_loop = open_loop
        self.successes = 0
        self.failures = 0
        self.failures_by_kind: Counter[str] = Counter()
        self.failure_examples: dict[str, str] = {}
        self.warmup_requests = 0
        self.late_completions = 0
        self.unsent = 0  # arrivals of the window dropped: the backlog was full
        self.sent_late = 0  # arrivals of the window the generator reached after it closed
        self.closed = False  # set when the window is closed: later outcomes are late
        self.service = LatencyHistogram()
        self.response = LatencyHistogram()
        self.send_lag = LatencyHistogram()
        self.stream = StreamStats()
        self.intervals: dict[int, Interval] = {}

    def in_window(self, sent_ns: int) -> bool:
        """Whether a request sent at ``sent_ns`` is measured (sent after warmup, before the end)."""
        return self.warmup_end_ns <= sent_ns < self.window_end_ns

    def overlap_ns(self, begin_ns: int, end_ns: int) -> int:
        """Length of ``[begin_ns, end_ns)`` inside the window, ns (0 when disjoint)."""
        return max(min(end_ns, self.window_end_ns) - max(begin_ns, self.warmup_end_ns), 0)

    def _interval(self, end_ns: int) -> Interval:
        # An outcome decided at the very end of the window (a timeout) is in its last second.
        index = (min(end_ns, self.window_end_ns - 1) - self.warmup_end_ns) // NS_PER_S
        iv = self.intervals.get(index)
        if iv is None:
            iv = self.intervals[index] = Interval(index, index < 0)
        return iv

    def pop_intervals_before(self, index: int) -> list[Interval]:
        """Remove and return the intervals with an index below ``index``, oldest first.

        Intervals are keyed by completion time, so once the clock has passed the end of an
        interval it can receive nothing more; popping it keeps memory bounded.
        """
        done = sorted(i for i in self.intervals if i < index)
        return [self.intervals.pop(i) for i in done]

    def _measured(self, intended_ns: int, end_ns: int) -> bool:
        """Whether an outcome counts in the figures; warmup and late ones are tallied apart."""
        if intended_ns < self.warmup_end_ns:
            self.warmup_requests += 1
            return False
        if self.closed or intended_ns >= self.window_end_ns or end_ns > self.window_end_ns:
            self.late_completions += 1
            return False
        return True

    def success(
        self,
        intended_ns: int,
        sent_ns: int,
        end_ns: int,
        *,
        first_token_ns: int | None = None,
        output_tokens: int | None = None,
        token_gaps_ns: list[int] | None = None,
    ) -> None:
        """Record a request that came back with a parsed, successful response.

        Args:
            intended_ns: the scheduled send time (open loop) or the actual send time (closed).
            sent_ns: when the request was handed to the client.
            end_ns: when the complete response had been received and parsed.
            first_token_ns: streams only: when the first chunk with generated text arrived.
            output_tokens: streams only: output tokens of the response.
            token_gaps_ns: streams only: the gaps between consecutive content chunks, ns
                (recorded only for a measured success, like every other figure).
        """
        service_ns = end_ns - sent_ns
        response_ns = end_ns - intended_ns
        if not self._measured(intended_ns, end_ns):
            if end_ns < self.warmup_end_ns:  # shown in a warmup row of the time series only
                iv = self._interval(end_ns)
                iv.successes += 1
                iv.service_ns.append(service_ns)
                if self.open_loop:
                    iv.response_ns.append(response_ns)
            return
        self.successes += 1
        iv = self._interval(end_ns)
        iv.successes += 1
        self.service.record_ns(service_ns)
        iv.service_ns.append(service_ns)
        if self.open_loop:
            self.response.record_ns(response_ns)
            iv.response_ns.append(response_ns)
        if first_token_ns is not None:
            self.stream.ttft.record_ns(first_token_ns - sent_ns)
            if output_tokens is not None and output_tokens > 1:
                self.stream.tpot.record_ns((end_ns - first_token_ns) // (output_tokens - 1))
        if output_tokens is not None:
            self.stream.output_tokens += output_tokens
        if token_gaps_ns:
            self.stream.itl.record_many_ns(token_gaps_ns)

    def sent(self, intended_ns: int, sent_ns: int) -> None:
        """Record the send lag of an open-loop arrival of the window (``sent - intended``)."""
        if self.open_loop and self.in_window(intended_ns):
            self.send_lag.record_ns(max(sent_ns - intended_ns, 0))

    def arrival_dropped(self, intended_ns: int) -> None:
        """Count an open-loop arrival the generator could not send (too many pending)."""
        if self.in_window(intended_ns):
            self.unsent += 1

    def arrivals_dropped(self, intended_ns: npt.NDArray[np.int64]) -> None:
        """Count open-loop arrivals dropped because the backlog was full (int64 array, ns)."""
        self.unsent += self._count_in_window(intended_ns)

    def arrivals_late(self, intended_ns: npt.NDArray[np.int64], now_ns: int) -> None:
        """Count open-loop arrivals of the window reached only after it closed (``sent_late``).

        Their send lag (``now_ns - intended``) goes into the send-lag histogram, so a stall near
        the end of the window shows there with its full length.

        Args:
            intended_ns: int64 array, shape (k,): their intended send times, ns.
            now_ns: when the generator reached them, ns.
        """
        inside = intended_ns[self._window_mask(intended_ns)]
        self.sent_late += len(inside)
        self.send_lag.record_many_ns((now_ns - inside).tolist())

    def _window_mask(self, intended_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        return (intended_ns >= self.warmup_end_ns) & (intended_ns < self.window_end_ns)

    def _count_in_window(self, intended_ns: npt.NDArray[np.int64]) -> int:
        return int(np.count_nonzero(self._window_mask(intended_ns)))

    def failure(self, intended_ns: int, sent_ns: int, end_ns: int, kind: str, detail: str) -> None:
        """Record a request that failed.

        Args:
            intended_ns, sent_ns, end_ns: as for :meth:`success`.
            kind: the failure kind, e.g. ``"http_503"``, ``"timeout"``, ``"connection"``,
                ``"stream"``, ``"client_error"``.
            detail: one example message for this kind (the first one is kept).
        """
        if not self._measured(intended_ns, end_ns):
            if end_ns < self.warmup_end_ns:
                self._interval(end_ns).failures += 1
            return
        self.failures += 1
        self.failures_by_kind[kind] += 1
        self.failure_examples.setdefault(kind, detail[:300])
        self._interval(end_ns).failures += 1
