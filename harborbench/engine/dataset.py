"""Prompt datasets: ``request.dataset: file.jsonl``, one request a line.

Each non-blank line is one JSON object with either

- ``"prompt"``: a string, sent as one user message, or
- ``"messages"``: a list of chat messages (``{"role": ..., "content": ...}``; the content a
  string or a list of parts such as ``{"type": "text", "text": ...}``),

and optionally ``"output_tokens"``: the expected output length in tokens, sent as the request's
``max_tokens`` (so a server, or the built-in mock with ``output_tokens: max_tokens``, answers
that long). No other key is allowed (a misspelt ``output_token`` is an error, not ignored), nor
a key twice on a line.

A bad line is a :class:`DatasetError` naming the file and the line. A file is at most
:data:`MAX_DATASET_BYTES` and :data:`MAX_DATASET_LINES` lines, both checked before a line is
parsed. Loaded datasets are cached by path, size and modification time, so a profile validated
and then run reads its file once.

Memory: an entry holds its prompt as a string, or a ``messages`` line as the bytes read (parsed
again when a request is made), never the parsed objects of a line: a dataset takes about its
file size plus 120 bytes a line (a million one-word prompts: about 120 MB), whatever its lines
hold (a list of a million empty parts takes 3 bytes each in the file, 64 each parsed).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harborbench.files import InputFileError, bounded_lines, count_lines

__all__ = [
    "MAX_DATASET_BYTES",
    "MAX_DATASET_LINES",
    "Dataset",
    "DatasetEntry",
    "DatasetError",
    "jsonl_objects",
    "load_dataset",
]

#: Largest dataset or trace file read (bytes); a bigger one is refused rather than filling memory.
MAX_DATASET_BYTES = 256 * 1024 * 1024
#: Most lines of a dataset or trace file, counted on the bytes before any line is parsed: a
#: million lines are checked in about 10 s (7.5 s of CPU for one-word prompts), where the 16
#: million lines that fit in 256 MiB would take two minutes. A benchmark rarely needs more than
#: some hundred thousand prompts, and a day-long trace at 10 requests a second is 864,000 lines.
MAX_DATASET_LINES = 1_000_000
_ROLES = ("system", "user", "assistant", "tool", "developer")
_KEYS = frozenset(("prompt", "messages", "output_tokens"))


class DatasetError(ValueError):
    """A dataset or trace file that cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class DatasetEntry:
    """One request of a dataset.

    Attributes:
        body: the prompt (a ``"prompt"`` line), or the line as read, UTF-8 JSON (a
            ``"messages"`` line, checked when read and parsed again by :attr:`messages`).
        output_tokens: the expected output length in tokens, or ``None``.
    """

    body: str | bytes
    output_tokens: int | None

    @property
    def messages(self) -> tuple[dict[str, Any], ...]:
        """The chat messages, as sent (``({"role": ..., "content": ...}, ...)``), new each time."""
        if isinstance(self.body, str):
            return ({"role": "user", "content": self.body},)
        return tuple(json.loads(self.body)["messages"])

    @property
    def chars(self) -> int:
        """Characters of text in the messages (for the 4-characters-a-token estimate)."""
        return sum(text_chars(m.get("content")) for m in self.messages)


@dataclass(frozen=True, slots=True)
class Dataset:
    """The entries of a dataset file, in file order.

    Attributes:
        path: the file read (absolute).
        entries: one per non-blank line.
    """

    path: str
    entries: tuple[DatasetEntry, ...]


def text_chars(content: Any) -> int:
    """Characters of text in a message content: a string, or a list of text parts."""
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(
            len(part["text"])
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return 0


def _entry(obj: Any, where: str, line: bytes) -> DatasetEntry:
    """The entry of a line: ``obj`` parsed from ``line`` (its bytes), ``where`` = ``file:line``."""
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: a line must be a JSON object, not {type(obj).__name__}")
    if not obj.keys() <= _KEYS:
        unknown = sorted(set(obj) - _KEYS)
        raise DatasetError(
            f"{where}: unknown key {unknown[0]!r}; a line has 'prompt' or 'messages', "
            "and optionally 'output_tokens'"
        )
    if ("prompt" in obj) == ("messages" in obj):
        raise DatasetError(f"{where}: give exactly one of 'prompt' (a string) or 'messages'")
    body: str | bytes
    if "prompt" in obj:
        body = obj["prompt"]
        if not isinstance(body, str) or not body:
            raise DatasetError(f"{where}: 'prompt' must be a non-empty string")
    else:
        raw = obj["messages"]
        if not isinstance(raw, list) or not raw:
            raise DatasetError(f"{where}: 'messages' must be a non-empty list of messages")
        for i, m in enumerate(raw):
            if not isinstance(m, dict) or m.get("role") not in _ROLES:
                raise DatasetError(f"{where}: messages[{i}] needs a 'role' of {', '.join(_ROLES)}")
            content = m.get("content")
            if not isinstance(content, str | list):
                raise DatasetError(
                    f"{where}: messages[{i}].content must be a string or a list of parts"
                )
        body = line
    out = obj.get("output_tokens")
    if out is not None and (isinstance(out, bool) or not isinstance(out, int) or out < 1):
        raise DatasetError(f"{where}: 'output_tokens' must be a whole number >= 1")
    return DatasetEntry(body, out)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The ``object_pairs_hook`` of the JSON-lines reader: a key given twice is refused."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_object)


def jsonl_objects(
    path: Path,
    sample: str = "take a sample of it",
    max_bytes: int = MAX_DATASET_BYTES,
    max_lines: int = MAX_DATASET_LINES,
) -> Iterator[tuple[int, bytes, Any]]:
    """Read a JSON-lines file: ``(line number, the line's bytes, parsed value)`` for every
    non-blank line, streamed (one line parsed at a time; nothing is kept).

    The file is read by :func:`harborbench.files.bounded_lines` (the rule of every input file:
    a regular file, never more than ``max_bytes + 1`` bytes read). Its lines are counted on the
    bytes first (:func:`harborbench.files.count_lines`, a fraction of a second for 256 MiB), so
    that a file of too many lines is refused before any is parsed.

    Args:
        path: the file.
        sample: what to do with a file too large or of too many lines, for the message.
        max_bytes: the largest file read; max_lines: the most lines (blank ones included).

    Raises:
        DatasetError: missing or unreadable file, not a regular file (a device, FIFO, folder),
            larger than ``max_bytes`` or of more than ``max_lines`` lines, invalid UTF-8 or JSON
            or nested too deeply or an object with a key twice (naming the line), or no
            non-blank line.
    """
    number = 0
    found = False
    try:
        count = count_lines(path, max_bytes)
        if count > max_lines:
            raise DatasetError(
                f"{path}: {count:,} lines, more than the limit of {max_lines:,}; {sample}"
            )
        for number, raw in enumerate(bounded_lines(path, max_bytes), start=1):
            if number > max_lines:  # the file grew after its count
                raise DatasetError(f"{path}: more than {max_lines:,} lines; {sample}")
            line = raw.decode("utf-8")
            if not line.strip():
                continue
            try:
                obj = _DECODER.decode(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(
                    f"{path}:{number}: not valid JSON ({exc.msg}, column {exc.colno})"
                ) from None
            except RecursionError:
                raise DatasetError(
                    f"{path}:{number}: the JSON nests too deeply to be read; "
                    "a line is one flat object"
                ) from None
            except _DuplicateKey as exc:
                raise DatasetError(
                    f"{path}:{number}: the key {exc.key!r} is given twice in an object; keep one"
                ) from None
            found = True
            yield number, raw, obj
    except UnicodeDecodeError:
        raise DatasetError(f"{path}:{number}: not UTF-8 text") from None
    except InputFileError as exc:
        if exc.reason == "missing":
            raise DatasetError(f"{path}: no such file") from None
        fix = {
            "not-regular": "; give the path of a JSON-lines file",
            "too-large": f", the most read; {sample}",
        }.get(exc.reason, "")
        raise DatasetError(f"{path}: {exc}{fix}") from None
    if not found:
        raise DatasetError(f"{path}: the file has no lines; write one JSON object a line")


@functools.lru_cache(maxsize=8)
def _load(path: str, _size: int, _mtime_ns: int) -> Dataset:
    p = Path(path)
    sample = f"take a sample of it: shuf -n 100000 {p.name} > sample.jsonl"
    entries = tuple(_entry(obj, f"{p}:{n}", raw) for n, raw, obj in jsonl_objects(p, sample))
    return Dataset(path, entries)


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read and check a dataset file (cached by path, size and modification time).

    Args:
        path: the JSON-lines file.

    Returns:
        The dataset, its entries in file order.

    Raises:
        DatasetError: the file is missing, unreadable, too large, of too many lines or empty, or
            a line is not a valid entry; the message names the file and the line.
    """
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError:
        st = None
    if st is None:
        list(jsonl_objects(p))  # raises the "no such file" / "cannot be read" message
        raise AssertionError("unreachable")  # pragma: no cover
    return _load(str(p), st.st_size, st.st_mtime_ns)
