"""Strict YAML reading for profiles: line numbers per key path, and no YAML 1.1 surprises.

PyYAML implements YAML 1.1, whose implicit typing turns some innocent-looking values into
something else: ``on``/``off``/``yes``/``no`` become booleans, ``1:30`` becomes the base-60
number 90, ``010`` becomes the octal number 8, while ``1e3`` stays a string. A workload profile
that silently means something else than it says is worse than one that is refused, so this
reader refuses them, with the line and the fix, and follows YAML 1.2 (core schema) where that
is unambiguous (``true``/``false`` are booleans, ``1e3`` is a number). It also refuses duplicate
keys (PyYAML keeps the last one silently) and merge keys (``<<``), and it keeps dates as text.

Hostile input is refused before it can cost time or memory: a file larger than
:data:`MAX_FILE_BYTES` or that is not a regular file (``/dev/zero``, a FIFO) is not read
(:func:`read_yaml_file`), nesting deeper than :data:`MAX_DEPTH` levels stops the composer, a
document whose aliases (``*name``) would expand to more than :data:`MAX_VALUES` values (a
"billion laughs" alias bomb) is refused before it is expanded, and control characters (raw, or
escaped in a double-quoted string such as ``"\\x1b"``) are refused in keys and values, so that
nothing read from a file can move the cursor or recolour a terminal when it is echoed.

The document is first composed into nodes (which carry their line numbers), then converted to
plain Python data by :func:`load_strict`, which records the line of every key and list item so
that errors found later by the schema can name the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from harborbench.files import InputFileError, read_bounded

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_VALUES",
    "MAX_WRITTEN_VALUES",
    "KeyPath",
    "StrictYamlError",
    "YamlFileError",
    "YamlProblem",
    "dotted",
    "load_strict",
    "read_yaml_file",
]

#: Largest YAML file read (profiles, mock settings, gates): 1 MiB, far above any real profile.
MAX_FILE_BYTES = 1 << 20
#: Deepest nesting of lists and mappings; a profile needs about 5 levels.
MAX_DEPTH = 32
#: Most values (scalars, lists and mappings) a document may hold once its aliases are expanded.
MAX_VALUES = 100_000
#: Most values a document may hold as written (keys, scalars, lists, mappings, alias uses); the
#: composer stops there, so that a long file is refused in about a second. The largest shipped
#: YAML file holds a few hundred.
MAX_WRITTEN_VALUES = 20_000

#: C0 control characters other than tab, line feed and carriage return; DEL; C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

KeyPath = tuple[str | int, ...]
"""Mapping keys and list indices from the document root, e.g. ``("load", "stages", 0)``."""

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_YAML11_BOOL = "tag:harborbench:yaml11-bool"
_SEXAGESIMAL = "tag:harborbench:yaml11-sexagesimal"
_OCTAL = "tag:harborbench:yaml11-octal"

_DIGITS = list("-+0123456789")
# (tag, pattern, first characters), inserted in front of PyYAML's own resolvers.
_EXTRA_RESOLVERS: list[tuple[str, re.Pattern[str], list[str]]] = [
    (_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    (_YAML11_BOOL, re.compile(r"^(?:[yY]|[nN]|(?i:yes|no|on|off))$"), list("yYnNoO")),
    (_SEXAGESIMAL, re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$"), _DIGITS),
    (_OCTAL, re.compile(r"^[-+]?0[0-7_]+$"), _DIGITS),
    (_FLOAT, re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), _DIGITS),
]


class _TooManyValues(yaml.YAMLError):
    """The composer met more than :data:`MAX_WRITTEN_VALUES` values; ``line``: where (1-based)."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.1 booleans, timestamps and base-60 numbers resolved to our tags,
    and a composer that stops at :data:`MAX_DEPTH` levels of nesting (PyYAML's composer is
    recursive: a few thousand ``[`` would otherwise end in a RecursionError)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._written = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._written += 1
        if self._written > MAX_WRITTEN_VALUES:
            raise _TooManyValues(int(self.peek_event().start_mark.line) + 1)  # type: ignore[no-untyped-call]
        if self._depth >= MAX_DEPTH:
            raise ComposerError(
                None,
                None,
                f"nesting deeper than {MAX_DEPTH} levels of lists and mappings; "
                "a profile needs only a few",
                self.peek_event().start_mark,  # type: ignore[no-untyped-call]
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _build_resolvers() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    table: dict[Any, list[tuple[str, re.Pattern[str]]]] = {
        first: [(tag, rx) for tag, rx in entries if tag not in (_BOOL, _TIMESTAMP)]
        for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    for tag, rx, firsts in reversed(_EXTRA_RESOLVERS):
        for first in firsts:
            table.setdefault(first, []).insert(0, (tag, rx))
    return table


_StrictLoader.yaml_implicit_resolvers = _build_resolvers()

_SURPRISE_FIX = {
    _YAML11_BOOL: (
        "{value!r} is read as a boolean by YAML 1.1 and as text by YAML 1.2; "
        "write true or false for a boolean, or quote it ('{value}') for text"
    ),
    _SEXAGESIMAL: (
        "{value!r} is read by YAML 1.1 as a base-60 number; quote it ('{value}') for text, "
        "or write a duration with units such as 1m30s"
    ),
    _OCTAL: (
        "{value!r} is read by YAML 1.1 as an octal number; write the number without the "
        "leading zero, or quote it ('{value}') for text"
    ),
}


@dataclass(frozen=True, slots=True)
class YamlProblem:
    """One problem found while reading a YAML document.

    Attributes:
        line: 1-based line number, or ``None`` when unknown.
        path: the key path where the problem is (empty for the document itself).
        message: what is wrong and how to fix it.
    """

    line: int | None
    path: KeyPath
    message: str


def dotted(path: KeyPath) -> str:
    """A key path as written by a user: ``load.stages[0].rate``; ``(top level)`` when empty."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


class StrictYamlError(ValueError):
    """The document cannot be read strictly; ``problems`` lists every problem found, in order."""

    def __init__(self, problems: list[YamlProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))

    def located(self, source: str) -> list[str]:
        """Each problem as ``source:line: key.path: message`` (line and path when known)."""
        return [
            f"{source}{f':{p.line}' if p.line is not None else ''}: "
            f"{f'{dotted(p.path)}: ' if p.path else ''}{p.message}"
            for p in self.problems
        ]


class YamlFileError(ValueError):
    """A YAML file that is not read at all: missing, not a regular file, too large, not UTF-8.

    Attributes:
        missing: true when the file does not exist (callers say how to name one).
    """

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def read_yaml_file(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """Read a YAML file as text, refusing what cannot be a small regular file.

    The file is opened and read by :func:`harborbench.files.read_bounded` (the one rule of
    every input file: a regular file, at most ``max_bytes + 1`` bytes read), so no input can
    hang the reader or fill the memory.

    Args:
        path: the file.
        max_bytes: the largest size accepted, bytes (default :data:`MAX_FILE_BYTES`).

    Returns:
        The text, decoded as UTF-8.

    Raises:
        YamlFileError: the file does not exist (``missing`` set), is a folder, a device, a FIFO
            or a socket, is larger than ``max_bytes``, cannot be read, or is not UTF-8 text.
            The message does not name the file; the caller does.
    """
    try:
        raw = read_bounded(path, max_bytes)
    except InputFileError as exc:
        if exc.reason == "not-regular":
            raise YamlFileError(f"{exc}; give the path of a YAML file") from None
        if exc.reason == "too-large":
            raise YamlFileError(
                f"{exc}, the most a YAML file of harborbench may hold; is it the right file?"
            ) from None
        raise YamlFileError(str(exc), missing=exc.reason == "missing") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlFileError(
            f"is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from None


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


#: Stands for a refused scalar (a control character); never part of the data returned.
_REFUSED: Any = object()


def _expanded_shape(root: Node) -> tuple[int, int]:
    """How many values ``root`` holds, and how deep it nests, once every alias is expanded.

    Aliases share node objects, so the composed document is a graph; both figures are memoized
    per node, which makes this linear in the number of distinct nodes and never expands
    anything (an anchor comes before its aliases, so the recursion is no deeper than the
    document as written). A cycle (a recursive alias) counts once here; the converter reports
    it. Sizes are capped at ``MAX_VALUES + 1``.

    Returns:
        ``(values, depth)``: a scalar is 1 value at depth 1.
    """
    shapes: dict[int, tuple[int, int]] = {}
    active: set[int] = set()

    def shape(node: Node) -> tuple[int, int]:
        key = id(node)
        if key in shapes:
            return shapes[key]
        if key in active:
            return 1, 1
        active.add(key)
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        size, depth = 1, 0
        for child in children:
            child_size, child_depth = shape(child)
            size, depth = min(size + child_size, MAX_VALUES + 1), max(depth, child_depth)
        active.discard(key)
        shapes[key] = size, depth + 1
        return shapes[key]

    return shape(root)


class _Converter:
    """Turns composed nodes into plain data, recording lines and collecting problems."""

    def __init__(self, loader: _StrictLoader) -> None:
        self.loader = loader
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[YamlProblem] = []
        self._active: set[int] = set()

    def convert(self, node: Node, path: KeyPath) -> Any:
        if id(node) in self._active:
            self.problems.append(
                YamlProblem(_line(node), path, "a recursive alias cannot be used in a profile")
            )
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode | SequenceNode) and node.tag not in (_MAP, _SEQ):
                self.problems.append(
                    YamlProblem(_line(node), path, f"the tag {node.tag!r} is not allowed here")
                )
                return None
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                items = []
                for index, item in enumerate(node.value):
                    self.lines[(*path, index)] = _line(item)
                    items.append(self.convert(item, (*path, index)))
                return items
            assert isinstance(node, ScalarNode)
            return self._scalar(node, path)
        finally:
            self._active.discard(id(node))

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            line = _line(key_node)
            if key_node.tag == _MERGE:
                self.problems.append(
                    YamlProblem(line, path, "merge keys (<<) are not supported; write the keys out")
                )
                continue
            if not isinstance(key_node, ScalarNode):
                self.problems.append(
                    YamlProblem(line, path, "a key must be a plain value, not a list or mapping")
                )
                continue
            key = self._scalar(key_node, path)
            if key is None or key is _REFUSED:
                continue
            if key in result:
                self.problems.append(
                    YamlProblem(
                        line,
                        (*path, key),
                        f"duplicate key {key!r} (first on line {first_line[key]}); "
                        "keep only one of them",
                    )
                )
                continue
            first_line[key] = line
            self.lines[(*path, key)] = line
            result[key] = self.convert(value_node, (*path, key))
        return result

    def _scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        control = _CONTROL.search(node.value)
        if control is not None:
            self.problems.append(
                YamlProblem(
                    _line(node),
                    path,
                    f"control character U+{ord(control.group()):04X} in a text; "
                    "write plain text (tabs and new lines are allowed in values)",
                )
            )
            return _REFUSED
        fix = _SURPRISE_FIX.get(node.tag)
        if fix is not None:
            self.problems.append(YamlProblem(_line(node), path, fix.format(value=node.value)))
            return node.value
        try:
            return self.loader.construct_object(node)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "cannot be read"
            self.problems.append(YamlProblem(_line(node), path, str(problem)))
            return None


def load_strict(text: str) -> tuple[Any, dict[KeyPath, int]]:
    """Read one YAML document strictly, keeping the line of every key and list item.

    Args:
        text: the YAML document.

    Returns:
        ``(data, lines)``: the plain Python data (dicts, lists, str, int, float, bool, None;
        ``None`` for an empty document) and, for every mapping key and list item, its 1-based
        line number keyed by its key path.

    Raises:
        StrictYamlError: the text is not valid YAML, holds more than one document, nests
            deeper than :data:`MAX_DEPTH`, expands to more than :data:`MAX_VALUES` values, or
            uses a duplicate key, a merge key, an explicit tag on a list or mapping (``!!set``,
            ``!!python/...``), a control character, or a YAML 1.1 boolean, base-60 or octal
            number. Every problem of the document is listed, not just the first.
    """
    try:
        loader = _StrictLoader(text)
    except yaml.reader.ReaderError as exc:
        at_line = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise StrictYamlError(
            [
                YamlProblem(
                    at_line,
                    (),
                    f"control character U+{char:04X} is not allowed in YAML text; remove it",
                )
            ]
        ) from None
    try:
        try:
            node = loader.get_single_node()
        except _TooManyValues as exc:
            message = (
                f"the document holds more than {MAX_WRITTEN_VALUES:,} values (keys, list items "
                "and scalars), far more than a profile needs; is it the right file?"
            )
            raise StrictYamlError([YamlProblem(exc.line, (), message)]) from None
        except yaml.MarkedYAMLError as exc:
            # Our own message, without PyYAML's snippet of the line (it could hold a secret).
            mark = exc.problem_mark or exc.context_mark
            line = int(mark.line) + 1 if mark is not None else None
            what = " ".join(s for s in (exc.context, exc.problem) if s) or "invalid YAML"
            raise StrictYamlError([YamlProblem(line, (), f"not valid YAML: {what}")]) from None
        except yaml.YAMLError as exc:
            raise StrictYamlError([YamlProblem(None, (), f"not valid YAML: {exc}")]) from None
        if node is None:
            return None, {}
        values, depth = _expanded_shape(node)
        if values > MAX_VALUES:
            raise StrictYamlError(
                [
                    YamlProblem(
                        None,
                        (),
                        f"the document holds more than {MAX_VALUES:,} values once its aliases "
                        "(*name) are expanded; write the values out, or use fewer aliases",
                    )
                ]
            )
        if depth > MAX_DEPTH:
            raise StrictYamlError(
                [
                    YamlProblem(
                        None,
                        (),
                        f"the document nests deeper than {MAX_DEPTH} levels once its aliases "
                        "(*name) are expanded; write the values out",
                    )
                ]
            )
        converter = _Converter(loader)
        data = converter.convert(node, ())
        if converter.problems:
            raise StrictYamlError(converter.problems)
        return data, converter.lines
    finally:
        loader.dispose()
