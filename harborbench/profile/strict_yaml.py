"""Strict YAML reading for profiles: line numbers per key path, and no YAML 1.1 surprises.

PyYAML implements YAML 1.1, whose implicit typing turns some innocent-looking values into
something else: ``on``/``off``/``yes``/``no`` become booleans, ``1:30`` becomes the base-60
number 90, ``010`` becomes the octal number 8, while ``1e3`` stays a string. A workload profile
that silently means something else than it says is worse than one that is refused, so this
reader refuses them, with the line and the fix, and follows YAML 1.2 (core schema) where that
is unambiguous (``true``/``false`` are booleans, ``1e3`` is a number). It also refuses duplicate
keys (PyYAML keeps the last one silently) and merge keys (``<<``), and it keeps dates as text.

The document is first composed into nodes (which carry their line numbers), then converted to
plain Python data by :func:`load_strict`, which records the line of every key and list item so
that errors found later by the schema can name the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["KeyPath", "StrictYamlError", "YamlProblem", "load_strict"]

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


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.1 booleans, timestamps and base-60 numbers resolved to our tags."""


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


class StrictYamlError(ValueError):
    """The document cannot be read strictly; ``problems`` lists every problem found, in order."""

    def __init__(self, problems: list[YamlProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


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
            if key is None:
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
        StrictYamlError: the text is not valid YAML, holds more than one document, or uses a
            duplicate key, a merge key, an explicit tag on a list or mapping (``!!set``,
            ``!!python/...``), or a YAML 1.1 boolean, base-60 or octal number. Every
            problem of the document is listed, not just the first.
    """
    loader = _StrictLoader(text)
    try:
        try:
            node = loader.get_single_node()
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
        converter = _Converter(loader)
        data = converter.convert(node, ())
        if converter.problems:
            raise StrictYamlError(converter.problems)
        return data, converter.lines
    finally:
        loader.dispose()
