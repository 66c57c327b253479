"""Durations written with units, as used in profiles and command-line flags.

Grammar: one or more ``<number><unit>`` groups, units ``ns``, ``us``, ``ms``, ``s``, ``m``,
``h`` (for example ``500ms``, ``30s``, ``2m``, ``1h30m``, ``1.5s``). A bare number is refused
on purpose, so that ``30`` can never mean seconds in one place and milliseconds in another.
"""

from __future__ import annotations

import re

#: Nanoseconds per second: every clock here reads integer nanoseconds (``perf_counter_ns``).
NS_PER_S = 1_000_000_000
#: Bytes per megabyte: 1 MB = 10**6 bytes (SI), the unit of every MB figure harborbench shows.
BYTES_PER_MB = 1_000_000

_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GROUP = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")


def parse_duration(text: str) -> float:
    """Parse a duration with units into seconds.

    Args:
        text: for example ``"500ms"``, ``"30s"``, ``"2m"``, ``"1h30m"``.

    Returns:
        The duration in seconds (float, >= 0).

    Raises:
        ValueError: the text is not a duration with units; the message shows valid examples.
    """
    s = text.strip().replace(" ", "")
    if not _WHOLE.match(s):
        raise ValueError(
            f"{text!r} is not a duration with units; write for example 500ms, 30s, 2m or 1h30m"
        )
    return sum(float(n) * _UNIT_S[u] for n, u in _GROUP.findall(s))


def format_duration(seconds: float) -> str:
    """Format seconds for people: the largest fitting unit, at most two decimals.

    Args:
        seconds: a duration >= 0.

    Returns:
        For example ``"1m30s"``, ``"250ms"``, ``"2.67s"`` (8 s in three stages); the text reads
        back with :func:`parse_duration` to within 0.005 of its last unit. For the exact text
        of a stored value use :func:`harborbench.profile.overrides.duration_text`.
    """
    if round(seconds * 1e6, 2) < 1000:
        return f"{_two_decimals(seconds * 1e6)}us"
    if round(seconds * 1e3, 2) < 1000:
        return f"{_two_decimals(seconds * 1e3)}ms"
    seconds = round(seconds, 2)  # so that 59.999 is 1m, not 60s
    if seconds < 60:
        return f"{_two_decimals(seconds)}s"
    minutes, rest = divmod(seconds, 60)
    rest_text = f"{_two_decimals(rest)}s" if rest >= 0.005 else ""
    if minutes < 60:
        return f"{int(minutes)}m{rest_text}"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}h" + (f"{int(minutes)}m" if minutes else "") + rest_text


def _two_decimals(value: float) -> str:
    """``2.6666`` -> ``"2.67"``, ``2.5`` -> ``"2.5"``, ``3.0`` -> ``"3"`` (no exponent)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
