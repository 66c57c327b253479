"""Request traces for replay: ``load: {trace: file.jsonl}``.

One JSON object a line, in the style of the public Mooncake and Azure LLM inference traces::

    {"timestamp": 0, "input_length": 812, "output_length": 64}
    {"timestamp": 37, "input_length": 95, "output_length": 220}

- ``timestamp``: arrival time from the trace's start, in milliseconds by default
  (``load.timestamp_unit: s`` for seconds); lines must be in time order. The first line's
  timestamp is the trace's start (an absolute clock in the file is fine).
- ``input_length``: prompt tokens of the request (a prompt of about that length is generated);
- ``output_length``: output tokens, sent as ``max_tokens``.

Other keys (such as Mooncake's ``hash_ids``) are ignored. A bad line is a
:class:`~harborbench.engine.dataset.DatasetError` naming the file and the line.
"""

from __future__ import annotations

import array
import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from harborbench.counts import MAX_COUNT
from harborbench.engine.dataset import DatasetError, jsonl_objects
from harborbench.units import NS_PER_S

if TYPE_CHECKING:
    from harborbench.engine.recorder import SendLog
    from harborbench.engine.schedule import LoadPlan
    from harborbench.result import ReplayFigures

__all__ = ["Trace", "load_trace", "replay_figures"]

_NS = {"ms": NS_PER_S // 1000, "s": NS_PER_S}


#: The largest arrival offset held as int64 nanoseconds (2**62 ns, about 146 years); a later
#: arrival is held at this value, which is beyond any measurement window (at most 24 h), while
#: the exact time stays in :attr:`Trace.exact_ns` (so a too-long trace is refused by its true
#: length, never wrapped around to a negative time).
MAX_OFFSET_NS = 2**62


def _to_ns(exact_ns: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Offsets in ns rounded to int64, those past :data:`MAX_OFFSET_NS` held at it."""
    held: np.ndarray[Any, np.dtype[np.int64]] = np.rint(
        np.minimum(exact_ns, float(MAX_OFFSET_NS))
    ).astype(np.int64)
    return held


@dataclass(frozen=True, slots=True)
class Trace:
    """A parsed trace.

    Attributes:
        path: the file read (absolute).
        offsets_ns: arrival times from the first line, ns, int64 array, shape (n,),
            non-decreasing, starting at 0, at most :data:`MAX_OFFSET_NS`.
        input_tokens, output_tokens: int64 arrays, shape (n,).
        exact_ns: the same times as read (float64, shape (n,), not held at the maximum), or
            ``None`` when ``offsets_ns`` is exact.
    """

    path: str
    offsets_ns: np.ndarray[Any, np.dtype[np.int64]] = field(compare=False)
    input_tokens: np.ndarray[Any, np.dtype[np.int64]] = field(compare=False)
    output_tokens: np.ndarray[Any, np.dtype[np.int64]] = field(compare=False)
    exact_ns: np.ndarray[Any, np.dtype[np.float64]] | None = field(default=None, compare=False)

    def __len__(self) -> int:
        return len(self.offsets_ns)

    @property
    def last_offset_s(self) -> float:
        """The last arrival's time from the first, seconds, as read (0.0 for no arrival)."""
        if not len(self):
            return 0.0
        last = self.offsets_ns[-1] if self.exact_ns is None else self.exact_ns[-1]
        return float(last) / NS_PER_S

    def scaled(self, time_scale: float, limit: int | None) -> Trace:
        """The first ``limit`` arrivals (all if ``None``) with times multiplied by ``time_scale``.

        ``time_scale`` 0.5 replays twice as fast. Scaled times are rounded to the nanosecond
        (and held at :data:`MAX_OFFSET_NS`).
        """
        n = len(self) if limit is None else min(limit, len(self))
        offsets = self.offsets_ns[:n]
        exact = None if self.exact_ns is None else self.exact_ns[:n]
        if time_scale != 1.0:
            exact = (offsets.astype(np.float64) if exact is None else exact) * time_scale
            offsets = _to_ns(exact)
        return Trace(self.path, offsets, self.input_tokens[:n], self.output_tokens[:n], exact)


def _count(obj: dict[str, Any], key: str, where: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise DatasetError(f"{where}: {key!r} must be a whole number of tokens, 1 to {MAX_COUNT}")
    return value


def _too_far(where: str, unit: str) -> str:
    return (
        f"{where}: 'timestamp' is too far from the first line's to be held as a time ({unit} "
        "from the start); is load.timestamp_unit right?"
    )


@functools.lru_cache(maxsize=8)
def _load(path: str, unit: str, _size: int, _mtime_ns: int) -> Trace:
    p = Path(path)
    sample = f"replay a part of it: head -n 100000 {p.name} > part.jsonl"
    # Streamed into typed arrays (8 bytes a value), never a list of the parsed lines.
    times = array.array("d")
    inputs = array.array("q")
    outputs = array.array("q")
    previous = -math.inf
    for number, _, obj in jsonl_objects(p, sample):
        where = f"{p}:{number}"
        if not isinstance(obj, dict):
            raise DatasetError(f"{where}: a line must be a JSON object")
        ts = obj.get("timestamp")
        if isinstance(ts, bool) or not isinstance(ts, int | float):
            raise DatasetError(f"{where}: 'timestamp' must be a number ({unit} from the start)")
        try:
            ts = float(ts)  # a JSON integer may be too large for a float
        except OverflowError:
            raise DatasetError(_too_far(where, unit)) from None
        if not math.isfinite(ts):
            raise DatasetError(f"{where}: 'timestamp' must be a number ({unit} from the start)")
        # In Python floats, whose overflow to inf gives no warning (numpy's would).
        if times and not math.isfinite((ts - times[0]) * _NS[unit]):
            raise DatasetError(_too_far(where, unit))
        if ts < previous:
            raise DatasetError(
                f"{where}: timestamp {ts:g} is before the previous line's {previous:g}; "
                "sort the trace by timestamp"
            )
        previous = ts
        times.append(ts)
        inputs.append(_count(obj, "input_length", where))
        outputs.append(_count(obj, "output_length", where))
    exact = (np.frombuffer(times, dtype=np.float64) - times[0]) * _NS[unit]
    return Trace(
        path,
        _to_ns(exact),
        np.frombuffer(inputs, dtype=np.int64).copy(),
        np.frombuffer(outputs, dtype=np.int64).copy(),
        exact,
    )


def load_trace(path: str | os.PathLike[str], unit: Literal["ms", "s"] = "ms") -> Trace:
    """Read and check a trace file (cached by path, unit, size and modification time).

    Args:
        path: the JSON-lines file.
        unit: the unit of ``timestamp``: ``"ms"`` (default, as in the Mooncake trace) or ``"s"``.

    Returns:
        The trace, arrival offsets from its first line.

    Raises:
        DatasetError: the file is missing, unreadable, too large or empty, or a line is bad
            (naming the file and the line).
    """
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError:
        list(jsonl_objects(p))  # raises the message naming the file
        raise AssertionError("unreachable") from None  # pragma: no cover
    return _load(str(p), unit, st.st_size, st.st_mtime_ns)


def replay_figures(
    path: str, trace_lines: int, replayed: Trace, time_scale: float, plan: LoadPlan, sends: SendLog
) -> ReplayFigures:
    """Compare the achieved send times of a trial with the trace's arrival times.

    Args:
        path: the trace file; trace_lines: its number of lines.
        replayed: the trace as replayed (limit and time scale applied).
        time_scale: the factor applied to its times.
        plan: the trial's plan (warmup and window).
        sends: what the recorder logged of the window's sends.

    Returns:
        The figures: arrivals planned and sent in the window, the trace's and the achieved span
        of the sent ones, and the send lag (actual minus trace time) of every one.
    """
    from harborbench.engine.summaries import latency_summary
    from harborbench.result import ReplayFigures

    lo = int(np.searchsorted(replayed.offsets_ns, round(plan.warmup_s * NS_PER_S), side="left"))
    hi = int(np.searchsorted(replayed.offsets_ns, round(plan.total_s * NS_PER_S), side="left"))
    first, last = sends.first_intended_ns, sends.last_intended_ns
    first_sent, last_sent = sends.first_sent_ns, sends.last_sent_ns
    return ReplayFigures(
        trace=path,
        trace_lines=trace_lines,
        replayed_lines=len(replayed),
        time_scale=time_scale,
        planned_in_window=hi - lo,
        sent_in_window=sends.lag.count,
        trace_span_s=None if first is None or last is None else (last - first) / NS_PER_S,
        achieved_span_s=None
        if first_sent is None or last_sent is None
        else (last_sent - first_sent) / NS_PER_S,
        send_lag=latency_summary(sends.lag),
    )
