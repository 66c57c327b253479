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
    """Format seconds as the shortest readable duration with units (``"1m30s"``, ``"250ms"``)."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:g}us"
    if seconds < 1:
        return f"{seconds * 1e3:g}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}m" + (f"{rest:g}s" if rest else "")
    hours, minutes = divmod(minutes, 60)
    return (
        f"{int(hours)}h" + (f"{int(minutes)}m" if minutes else "") + (f"{rest:g}s" if rest else "")
    )
