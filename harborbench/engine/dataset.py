"""Prompt datasets: ``request.dataset: file.jsonl``, one request a line.

Each non-blank line is one JSON object with either

- ``"prompt"``: a string, sent as one user message, or
- ``"messages"``: a list of chat messages (``{"role": ..., "content": ...}``; the content a
  string or a list of parts such as ``{"type": "text", "text": ...}``),

and optionally ``"output_tokens"``: the expected output length in tokens, sent as the request's
``max_tokens`` (so a server, or the built-in mock with ``output_tokens: max_tokens``, answers
that long). No other key is allowed (a misspelt ``output_token`` is an error, not ignored).

A bad line is a :class:`DatasetError` naming the file and the line. Loaded datasets are cached
by path, size and modification time, so a profile validated and then run reads its file once.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harborbench.files import InputFileError, bounded_lines

__all__ = ["MAX_DATASET_BYTES", "Dataset", "DatasetEntry", "DatasetError", "load_dataset"]

#: Largest dataset file read (bytes); a bigger one is refused rather than filling memory.
MAX_DATASET_BYTES = 256 * 1024 * 1024
_ROLES = ("system", "user", "assistant", "tool", "developer")
_KEYS = ("prompt", "messages", "output_tokens")


class DatasetError(ValueError):
    """A dataset or trace file that cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class DatasetEntry:
    """One request of a dataset.

    Attributes:
        messages: the chat messages, as sent (``[{"role": ..., "content": ...}, ...]``).
        output_tokens: the expected output length in tokens, or ``None``.
        chars: characters of text in the messages (for the 4-characters-a-token estimate).
    """

    messages: tuple[dict[str, Any], ...]
    output_tokens: int | None
    chars: int


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


def _entry(obj: Any, where: str) -> DatasetEntry:
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: a line must be a JSON object, not {type(obj).__name__}")
    unknown = sorted(set(obj) - set(_KEYS))
    if unknown:
        raise DatasetError(
            f"{where}: unknown key {unknown[0]!r}; a line has 'prompt' or 'messages', "
            "and optionally 'output_tokens'"
        )
    if ("prompt" in obj) == ("messages" in obj):
        raise DatasetError(f"{where}: give exactly one of 'prompt' (a string) or 'messages'")
    if "prompt" in obj:
        prompt = obj["prompt"]
        if not isinstance(prompt, str) or not prompt:
            raise DatasetError(f"{where}: 'prompt' must be a non-empty string")
        messages: tuple[dict[str, Any], ...] = ({"role": "user", "content": prompt},)
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
        messages = tuple(dict(m) for m in raw)
    out = obj.get("output_tokens")
    if out is not None and (isinstance(out, bool) or not isinstance(out, int) or out < 1):
        raise DatasetError(f"{where}: 'output_tokens' must be a whole number >= 1")
    chars = sum(text_chars(m.get("content")) for m in messages)
    return DatasetEntry(messages, out, chars)


def read_jsonl_objects(path: Path, max_bytes: int = MAX_DATASET_BYTES) -> list[tuple[int, Any]]:
    """Read a JSON-lines file: ``(line number, parsed value)`` for every non-blank line.

    The file is read by :func:`harborbench.files.bounded_lines` (the rule of every input file:
    a regular file, never more than ``max_bytes + 1`` bytes read), line by line.

    Raises:
        DatasetError: missing or unreadable file, not a regular file (a device, FIFO, folder),
            larger than ``max_bytes``, invalid UTF-8 or JSON or nested too deeply (naming the
            line), or no non-blank line.
    """
    out: list[tuple[int, Any]] = []
    number = 0
    try:
        for number, raw in enumerate(bounded_lines(path, max_bytes), start=1):
            line = raw.decode("utf-8")
            if not line.strip():
                continue
            try:
                out.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DatasetError(
                    f"{path}:{number}: not valid JSON ({exc.msg}, column {exc.colno})"
                ) from None
            except RecursionError:
                raise DatasetError(
                    f"{path}:{number}: the JSON nests too deeply to be read; "
                    "a line is one flat object"
                ) from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path}:{number}: not UTF-8 text") from None
    except InputFileError as exc:
        if exc.reason == "missing":
            raise DatasetError(f"{path}: no such file") from None
        fix = {
            "not-regular": "; give the path of a JSON-lines file",
            "too-large": ", the most read; take a sample of it",
        }.get(exc.reason, "")
        raise DatasetError(f"{path}: {exc}{fix}") from None
    if not out:
        raise DatasetError(f"{path}: the file has no lines; write one JSON object a line")
    return out


@functools.lru_cache(maxsize=8)
def _load(path: str, _size: int, _mtime_ns: int) -> Dataset:
    p = Path(path)
    entries = tuple(_entry(obj, f"{p}:{n}") for n, obj in read_jsonl_objects(p))
    return Dataset(path, entries)


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read and check a dataset file (cached by path, size and modification time).

    Args:
        path: the JSON-lines file.

    Returns:
        The dataset, its entries in file order.

    Raises:
        DatasetError: the file is missing, unreadable, too large or empty, or a line is not a
            valid entry; the message names the file and the line.
    """
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError:
        st = None
    if st is None:
        read_jsonl_objects(p)  # raises the "no such file" / "cannot be read" message
        raise AssertionError("unreachable")  # pragma: no cover
    return _load(str(p), st.st_size, st.st_mtime_ns)
