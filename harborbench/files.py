"""The one rule for reading a file a user names: a regular file, never more than a limit.

Every input file (profiles, mock settings, gates files, datasets, traces, result files) is
opened by :func:`open_regular` and read within a byte limit, so that no path can hang the
reader or fill the memory:

- a folder, a device (``/dev/zero`` never ends), a FIFO (whose open blocks until a writer comes)
  or a socket is refused: the path is checked with ``stat`` before it is opened (opening some
  devices has effects of its own), opened without blocking, and checked again on the open
  descriptor (the path may have been replaced in between);
- a file whose size is above the limit is refused before anything is read, and the reader never
  takes more than the limit plus one byte, so a file that grows while it is read is refused
  too (:func:`read_bounded`, :func:`bounded_lines`, :func:`count_lines`).

The errors are :class:`InputFileError`, whose message does not name the file: each caller
names it, adds what to do and raises its own error class.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import BinaryIO, Literal

__all__ = [
    "InputFileError",
    "bounded_lines",
    "count_lines",
    "open_regular",
    "read_bounded",
    "size_text",
    "too_large",
]

Reason = Literal["missing", "not-regular", "too-large", "unreadable"]


class InputFileError(ValueError):
    """A file that is not read (or not read to its end).

    Attributes:
        reason: ``"missing"``, ``"not-regular"`` (a folder, device, FIFO or socket),
            ``"too-large"`` or ``"unreadable"`` (permissions, I/O error).
    """

    def __init__(self, message: str, reason: Reason) -> None:
        super().__init__(message)
        self.reason: Reason = reason


def size_text(n_bytes: int) -> str:
    """A byte limit as text: ``"1 MiB"``, ``"256 MiB"``, ``"1 GiB"``, ``"1,536 KiB"``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n_bytes >= 1 << shift and n_bytes % (1 << shift) == 0:
            return f"{n_bytes >> shift:,} {unit}"
    return f"{n_bytes:,} bytes"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _check(st: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = _kind(st.st_mode)
        text = kind if kind == "not a regular file" else f"is {kind}, not a regular file"
        raise InputFileError(text, "not-regular")
    if st.st_size > max_bytes:
        raise InputFileError(too_large(max_bytes), "too-large")


def too_large(max_bytes: int) -> str:
    """The message of a file above ``max_bytes``: ``"is larger than 1 MiB"``."""
    return f"is larger than {size_text(max_bytes)}"


def _unreadable(exc: OSError) -> InputFileError:
    if isinstance(exc, FileNotFoundError):
        return InputFileError("does not exist", "missing")
    return InputFileError(f"cannot be read: {exc.strerror or exc}", "unreadable")


def open_regular(path: str | os.PathLike[str], max_bytes: int) -> BinaryIO:
    """Open a regular file of at most ``max_bytes`` for reading, in binary mode.

    Args:
        path: the file.
        max_bytes: the largest size accepted, bytes (checked against ``st_size``; the caller
            still reads at most ``max_bytes + 1`` bytes, see :func:`read_bounded`).

    Returns:
        The open file (the caller closes it).

    Raises:
        InputFileError: missing, not a regular file, larger than ``max_bytes``, or unreadable.
    """
    try:
        _check(os.stat(path), max_bytes)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise _unreadable(exc) from None
    try:
        _check(os.fstat(fd), max_bytes)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (reads at most ``max_bytes + 1``).

    Raises:
        InputFileError: missing, not a regular file, larger than ``max_bytes`` (before or while
            reading), or unreadable.
    """
    with open_regular(path, max_bytes) as fh:
        try:
            raw = fh.read(max_bytes + 1)
        except OSError as exc:
            raise _unreadable(exc) from None
    if len(raw) > max_bytes:
        raise InputFileError(too_large(max_bytes), "too-large")
    return raw


def bounded_lines(path: str | os.PathLike[str], max_bytes: int) -> Iterator[bytes]:
    """The lines of a regular file of at most ``max_bytes``, each with its ``\\n``, streamed.

    No more than ``max_bytes + 1`` bytes are read in all, whatever the length of a line.

    Raises:
        InputFileError: as :func:`read_bounded` (``too-large`` once the limit is passed, after
            the lines before it were yielded).
    """
    with open_regular(path, max_bytes) as fh:
        left = max_bytes + 1
        while True:
            try:
                line = fh.readline(left)
            except OSError as exc:
                raise _unreadable(exc) from None
            if not line:
                return
            left -= len(line)
            if left <= 0:
                raise InputFileError(too_large(max_bytes), "too-large")
            yield line


def count_lines(path: str | os.PathLike[str], max_bytes: int) -> int:
    """The lines of a regular file of at most ``max_bytes``, counted on its bytes (not decoded).

    A last line without its ``\\n`` counts; blank lines count. Reads 1 MiB at a time, so the
    count of a 256 MiB file takes a fraction of a second and no more than 1 MiB of memory.

    Raises:
        InputFileError: as :func:`read_bounded`.
    """
    count = 0
    last = b"\n"
    with open_regular(path, max_bytes) as fh:
        left = max_bytes + 1
        while left > 0:
            try:
                chunk = fh.read(min(left, 1 << 20))
            except OSError as exc:
                raise _unreadable(exc) from None
            if not chunk:
                break
            left -= len(chunk)
            count += chunk.count(b"\n")
            last = chunk[-1:]
    if left <= 0:
        raise InputFileError(too_large(max_bytes), "too-large")
    return count + (last != b"\n")
