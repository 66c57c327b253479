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

from harborbench.engine.redaction import redact
from harborbench.metrics.goodput import SloLimits, meets_slo, request_tpot_ns
from harborbench.metrics.histogram import LatencyHistogram
from harborbench.units import NS_PER_S


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
        slo_met: successes that met every objective of the profile's ``slo`` (goodput).

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
    slo_met: int = 0


@dataclass(frozen=True, slots=True)
class StreamSample:
    """What one successful stream showed, as the request sender observed it.

    Attributes:
        first_token_ns: perf_counter_ns when the first chunk carrying text arrived.
        chunk_gaps_ns: gaps between consecutive content chunks (one fewer than
            ``content_chunks``), ns.
        content_chunks: chunks that carried text.
        usage_tokens: ``usage.completion_tokens`` of the last chunk with a usage, or None when
            the server sent no usage.
        chunk_tokens: tokens of each content chunk, in order, when every content chunk carried a
            cumulative usage (vLLM's ``continuous_usage_stats``); None otherwise.
        done_marker_missing: the stream ended after a finish_reason without ``data: [DONE]``.
    """

    first_token_ns: int
    chunk_gaps_ns: list[int]
    content_chunks: int
    usage_tokens: int | None = None
    chunk_tokens: list[int] | None = None
    done_marker_missing: bool = False


@dataclass(slots=True)
class StreamStats:
    """Streaming figures of the successful measured requests.

    Definitions follow vLLM's ``benchmark_serving`` and NVIDIA GenAI-Perf (time to first token,
    time per output token), corrected for chunks that carry several tokens, as in vLLM issue
    #27485 (an inter-chunk gap is not an inter-token latency):

    Attributes:
        ttft: time to first token (first chunk carrying generated text) from the send, ns.
        icl: inter-chunk latency: gaps between consecutive content chunks, ns.
        itl: inter-token latency, only from streams whose per-chunk token counts are known:
            a chunk of k tokens after a gap g gives k samples of g / k, ns.
        tpot: time per output token, per request: (end - first token) / (output tokens -
            tokens in the first chunk), ns. The first chunk's tokens are the server's count when
            known, else estimated as output tokens / content chunks (exact when every chunk
            carries as many tokens); no sample when the first chunk held every token.
        output_tokens: output tokens (the server's usage; a chunk count where it sent none).
        output_chunks: content chunks received.
        tokens_from_usage: requests whose token count is the server's ``usage``.
        tokens_from_chunk_count: requests without usage, whose chunks were counted as tokens.
        per_chunk_tokens_known: requests whose every content chunk carried a token count.
        done_marker_missing: streams that ended after a finish_reason without ``[DONE]``.
    """

    ttft: LatencyHistogram = field(default_factory=LatencyHistogram)
    icl: LatencyHistogram = field(default_factory=LatencyHistogram)
    itl: LatencyHistogram = field(default_factory=LatencyHistogram)
    tpot: LatencyHistogram = field(default_factory=LatencyHistogram)
    output_tokens: int = 0
    output_chunks: int = 0
    tokens_from_usage: int = 0
    tokens_from_chunk_count: int = 0
    per_chunk_tokens_known: int = 0
    done_marker_missing: int = 0

    def record(self, sent_ns: int, end_ns: int, sample: StreamSample) -> int | None:
        """Add one measured successful stream that was sent at ``sent_ns``, ended at ``end_ns``.

        Returns:
            Its time per output token in ns (:func:`harborbench.metrics.goodput.request_tpot_ns`),
            or ``None`` when the first chunk held every token; goodput's ``tpot_max`` uses it.
        """
        first_ns = sample.first_token_ns
        self.ttft.record_ns(first_ns - sent_ns)
        if sample.chunk_gaps_ns:
            self.icl.record_many_ns(sample.chunk_gaps_ns)
        chunks = sample.content_chunks
        self.output_chunks += chunks
        self.done_marker_missing += sample.done_marker_missing
        if sample.usage_tokens is not None:
            tokens = sample.usage_tokens
            self.tokens_from_usage += 1
        else:
            tokens = chunks
            self.tokens_from_chunk_count += 1
        self.output_tokens += tokens
        per_chunk = sample.chunk_tokens
        if per_chunk and len(per_chunk) == chunks:
            self.per_chunk_tokens_known += 1
            first_chunk_tokens: float = per_chunk[0]
            for gap, k in zip(sample.chunk_gaps_ns, per_chunk[1:], strict=True):
                if k > 0:
                    self.itl.record_many_ns([gap // k] * k)
        else:
            first_chunk_tokens = tokens / chunks if chunks else 0.0
        tpot_ns = request_tpot_ns(end_ns, first_ns, tokens, first_chunk_tokens)
        if tpot_ns is not None:
            self.tpot.record_ns(tpot_ns)
        return tpot_ns


@dataclass(slots=True)
class TokenCounts:
    """Tokens of the measured successes, from the server's ``usage``.

    Attributes:
        prompt_tokens, completion_tokens: sums of ``usage.prompt_tokens`` and
            ``usage.completion_tokens`` over the successes that reported usage.
        with_usage: successes whose answer carried usage; without_usage: those that did not.
        estimated_prompt_tokens: the client-side estimate (4 characters a token) of the prompts
            of the same successes that reported usage, to compare with ``prompt_tokens``.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    with_usage: int = 0
    without_usage: int = 0
    estimated_prompt_tokens: int = 0


@dataclass(slots=True)
class SendLog:
    """When the arrivals of the window were sent, against when they were scheduled (open loop).

    Attributes:
        lag: actual minus intended send time of every arrival sent in the window, ns (answered
            or not).
        first_intended_ns, last_intended_ns, first_sent_ns, last_sent_ns: the first and last
            intended and actual send times in the window (perf_counter_ns), or ``None``.
    """

    lag: LatencyHistogram = field(default_factory=LatencyHistogram)
    first_intended_ns: int | None = None
    last_intended_ns: int | None = None
    first_sent_ns: int | None = None
    last_sent_ns: int | None = None


class Recorder:
    """Aggregates request outcomes for one trial.

    Args:
        start_ns: perf_counter_ns at the start of the run (warmup included).
        warmup_s: warmup length, seconds.
        window_s: measurement window length, seconds.
        open_loop: whether response times from the intended send time are recorded.
        slo: the per-request objectives of goodput, or ``None`` (no goodput).
        secrets: values masked in the failure examples (the API key, the header values;
            :func:`harborbench.engine.redaction.secret_values`).
    """

    def __init__(
        self,
        start_ns: int,
        warmup_s: float,
        window_s: float,
        *,
        open_loop: bool,
        slo: SloLimits | None = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.start_ns = start_ns
        self.secrets = secrets
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
        # the interval of the last outcome and its span [start, end) in ns: most outcomes land
        # in the same second as the one before, and then no index or dict look-up is needed
        self._iv = Interval(0, False)
        self._iv_start_ns = self._iv_end_ns = 0
        self.slo = slo
        self.slo_met = 0  # measured successes that met every objective of ``slo``
        self.tokens = TokenCounts()
        self.sends = SendLog()
        # once a request: appended without a call, binned when the intervals are popped
        self._add_service = self.service.appender()
        self._add_response = self.response.appender()
        self._add_lag = self.sends.lag.appender()
        self._add_send_lag = self.send_lag.appender()

    def sent(self, intended_ns: int, sent_ns: int) -> None:
        """Log the send of an arrival (open loop): its lag behind the schedule, first and last."""
        if not self.warmup_end_ns <= intended_ns < self.window_end_ns:  # in_window, inlined
            return
        log = self.sends
        lag_ns = sent_ns - intended_ns if sent_ns > intended_ns else 0
        self._add_lag(lag_ns)
        if self.open_loop:  # the health figure: also the arrivals reached late (sent_late)
            self._add_send_lag(lag_ns)
        if log.first_intended_ns is None:
            log.first_intended_ns, log.first_sent_ns = intended_ns, sent_ns
        log.last_intended_ns, log.last_sent_ns = intended_ns, sent_ns

    def in_window(self, sent_ns: int) -> bool:
        """Whether a request sent at ``sent_ns`` is measured (sent after warmup, before the end)."""
        return self.warmup_end_ns <= sent_ns < self.window_end_ns

    def overlap_ns(self, begin_ns: int, end_ns: int) -> int:
        """Length of ``[begin_ns, end_ns)`` inside the window, ns (0 when disjoint)."""
        # conditionals, not min()/max(): this runs once a request, and the builtins cost more
        end = end_ns if end_ns < self.window_end_ns else self.window_end_ns
        begin = begin_ns if begin_ns > self.warmup_end_ns else self.warmup_end_ns
        return end - begin if end > begin else 0

    def _interval(self, end_ns: int) -> Interval:
        # An outcome decided at the very end of the window (a timeout) is in its last second.
        last_ns = self.window_end_ns - 1
        index = ((end_ns if end_ns < last_ns else last_ns) - self.warmup_end_ns) // NS_PER_S
        iv = self.intervals.get(index)
        if iv is None:
            iv = self.intervals[index] = Interval(index, index < 0)
        self._iv = iv
        self._iv_start_ns = self.warmup_end_ns + index * NS_PER_S
        self._iv_end_ns = min(self._iv_start_ns + NS_PER_S, last_ns)
        return iv

    def pop_intervals_before(self, index: int) -> list[Interval]:
        """Remove and return the intervals with an index below ``index``, oldest first.

        Intervals are keyed by completion time, so once the clock has passed the end of an
        interval it can receive nothing more; popping it keeps memory bounded. The latency
        histograms, whose values are appended to their write buffers without binning (see
        :meth:`LatencyHistogram.appender`), are binned here for the same reason.
        """
        done = sorted(i for i in self.intervals if i < index)
        self._iv_start_ns = self._iv_end_ns = 0  # the last interval may be among them
        for histogram in (self.service, self.response, self.sends.lag, self.send_lag):
            histogram.flush()  # keeps the write buffers at about a second's values
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
        stream: StreamSample | None = None,
        usage: tuple[int, int] | None = None,
        estimated_prompt_tokens: int = 0,
    ) -> None:
        """Record a request that came back with a parsed, successful response.

        Args:
            intended_ns: the scheduled send time (open loop) or the actual send time (closed).
            sent_ns: when the request was handed to the client.
            end_ns: when the complete response had been received and parsed.
            stream: streams only: what the stream showed (recorded only for a measured
                success, like every other figure).
            usage: ``(prompt_tokens, completion_tokens)`` from the server's usage, or ``None``.
            estimated_prompt_tokens: the client's estimate of the prompt's tokens.
        """
        window_end_ns = self.window_end_ns
        # the test of _measured, inlined for the common case (a call less a request)
        if (
            not (self.warmup_end_ns <= intended_ns < window_end_ns and end_ns <= window_end_ns)
            or self.closed
        ):
            self._measured(intended_ns, end_ns)  # False: tallies a warmup or a late outcome
            if end_ns < self.warmup_end_ns:  # shown in a warmup row of the time series only
                iv = self._interval(end_ns)
                iv.successes += 1
                iv.service_ns.append(end_ns - sent_ns)
                if self.open_loop:
                    iv.response_ns.append(end_ns - intended_ns)
            return
        service_ns = end_ns - sent_ns
        self.successes += 1
        iv = self._iv
        if not self._iv_start_ns <= end_ns < self._iv_end_ns:
            iv = self._interval(end_ns)
        iv.successes += 1
        self._add_service(service_ns)
        iv.service_ns.append(service_ns)
        if self.open_loop:
            response_ns = end_ns - intended_ns
            self._add_response(response_ns)
            iv.response_ns.append(response_ns)
        tpot_ns = None
        first_token_ns = None
        if stream is not None:
            tpot_ns = self.stream.record(sent_ns, end_ns, stream)
            first_token_ns = stream.first_token_ns
        if self.slo is not None:
            start_ns = intended_ns if self.open_loop else sent_ns
            ttft_ns = None if first_token_ns is None else first_token_ns - start_ns
            if meets_slo(self.slo, end_ns - start_ns, ttft_ns, tpot_ns):
                self.slo_met += 1
                iv.slo_met += 1
        tokens = self.tokens
        if usage is not None:
            tokens.with_usage += 1
            tokens.prompt_tokens += usage[0]
            tokens.completion_tokens += usage[1]
            tokens.estimated_prompt_tokens += estimated_prompt_tokens
        else:
            tokens.without_usage += 1

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
            detail: one example message for this kind (the first one is kept, with every
                value of ``secrets`` masked and cut to 300 characters).
        """
        if not self._measured(intended_ns, end_ns):
            if end_ns < self.warmup_end_ns:
                self._interval(end_ns).failures += 1
            return
        self.failures += 1
        self.failures_by_kind[kind] += 1
        if kind not in self.failure_examples:
            # only the start is kept: masking a long body whole would cost for nothing
            self.failure_examples[kind] = redact(detail[:4096], self.secrets)[:300]
        self._interval(end_ns).failures += 1
