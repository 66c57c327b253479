"""Error reporting of workload profiles: key paths, lines, did-you-mean, no echoed secrets.

Used by :mod:`harborbench.profile`; it turns pydantic's validation errors into lines of the form
``file:line: key.path: what is wrong; the fix`` (or ``file: key.path (from --set ...): ...``
for a value given on the command line). An input value is shown only when it is short and its
key does not look like a secret (``key``, ``secret``, ``password``, ``auth``, ...).
"""

from __future__ import annotations

import difflib
import math
import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from harborbench.errors import ProfileError
from harborbench.harborai.config import AtKey as AtKey  # one class for the client's and ours
from harborbench.profile.strict_yaml import KeyPath, dotted

SECRET_WORDS = re.compile(r"key|secret|password|passwd|auth|bearer|credential", re.I)


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic model classes inside a field annotation (through Optional, list, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(models_in(arg))
    return found


def fields_at(root: type[BaseModel], path: Sequence[str | int]) -> list[str]:
    """Field names of the model found at ``path`` from the ``root`` model (for did-you-mean)."""
    models: list[type[BaseModel]] = [root]
    for part in path:
        if isinstance(part, int):
            continue
        owners = [m for m in models if part in m.model_fields]
        if owners:
            models = [sub for m in owners for sub in models_in(m.model_fields[part].annotation)]
        else:  # a tag of a discriminated union, such as "lognormal": keep the matching model
            models = [m for m in models if part in literals(m)] or models
        if not models:
            return []
    return sorted({name for m in models for name in m.model_fields})


def mapping_values(annotation: Any) -> Any:
    """The value type of a field that is a ``dict`` of free keys (through Optional and
    Annotated): ``V`` of ``dict[str, V]``; ``None`` when the field is not a mapping."""
    if typing.get_origin(annotation) is dict:
        args = typing.get_args(annotation)
        return args[1] if len(args) == 2 else Any
    for arg in typing.get_args(annotation):
        found = mapping_values(arg)
        if found is not None:
            return found
    return None


def _is_mapping(annotation: Any) -> bool:
    """Whether a field annotation is a ``dict`` (through Optional and Annotated)."""
    return mapping_values(annotation) is not None


#: Names pydantic puts in a location for the member of a union that failed (``str | EnvRef``).
_MEMBER_NAMES = {"str", "int", "float", "bool", "list", "dict"}


def clean_loc(root: type[BaseModel], loc: Sequence[str | int]) -> KeyPath:
    """Keep only the real key path of a pydantic error location.

    Drops discriminator tags (``lognormal``), union member names (``str``, ``EnvRef``) and
    validator names (``function-before[...]``) that pydantic inserts, by following the schema
    from the ``root`` model; keeps the keys of a mapping field (``providers.NAME``).
    """
    models: list[type[BaseModel]] = [root]
    out: list[str | int] = []
    mapping_key_next = False
    for index, part in enumerate(loc):
        if not models or isinstance(part, int) or mapping_key_next:
            out.append(part)
            mapping_key_next = False
            continue
        owners = [m for m in models if part in m.model_fields]
        if owners:
            out.append(part)
            annotation = owners[0].model_fields[part].annotation
            models = [sub for m in owners for sub in models_in(m.model_fields[part].annotation)]
            mapping_key_next = _is_mapping(annotation)
        elif part in _MEMBER_NAMES or part in {m.__name__ for m in models}:
            continue
        elif index == len(loc) - 1 or "[" in part:
            if "[" not in part:
                out.append(part)  # an unknown key
        else:
            tagged = [m for m in models if part in literals(m)]
            models = tagged or models
    return tuple(out)


def literals(model: type[BaseModel]) -> set[Any]:
    """Values of the model's ``Literal`` fields (discriminator tags)."""
    return {
        value
        for f in model.model_fields.values()
        if typing.get_origin(f.annotation) is Literal
        for value in typing.get_args(f.annotation)
    }


class Where:
    """Where each key path came from: a line of the file, or a ``--set`` option."""

    def __init__(self, source: str, lines: Mapping[KeyPath, int] | None = None) -> None:
        self.source = source
        self.origin: dict[KeyPath, str] = {p: f"line {n}" for p, n in (lines or {}).items()}

    def origin_of(self, path: KeyPath) -> str | None:
        """Where ``path`` (or the nearest section above it) came from: ``"line N"``,
        ``"--set ..."``, or ``None`` (a default)."""
        for end in range(len(path), 0, -1):
            origin = self.origin.get(tuple(path[:end]))
            if origin is not None:
                return origin
        return None

    def blame(self, paths: Sequence[KeyPath]) -> KeyPath:
        """Of the keys of a rule that involves several, the first given by a ``--set`` option
        (the change the user just made), else the first."""
        for path in paths:
            if (self.origin_of(path) or "").startswith("--set "):
                return path
        return paths[0]

    def format(self, path: KeyPath, message: str) -> str:
        """``file:line: key.path: message`` (or ``file: key.path (from --set ...): message``)."""
        origin = self.origin_of(path)
        if origin is None:
            return f"{self.source}: {dotted(path)}: {message}"
        if origin.startswith("line "):
            return f"{self.source}:{origin[5:]}: {dotted(path)}: {message}"
        return f"{self.source}: {dotted(path)} (from {origin}): {message}"


_KIND_NAMES = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _show(path: KeyPath, value: Any) -> str:
    """A short rendering of an input value, or ``''`` where it might be a secret."""
    if any(isinstance(p, str) and SECRET_WORDS.search(p) for p in path) and isinstance(value, str):
        return ""
    if isinstance(value, bool | int | float) or value is None:
        return f", got {value!r}"
    if isinstance(value, str) and len(value) <= 40:
        return f", got the text {value!r}"
    if isinstance(value, dict):
        return ", got a mapping"
    if isinstance(value, list):
        return ", got a list"
    return ""


def shown_option(key: str, raw: str) -> str:
    """``--set KEY=VALUE`` as an error message names it: the value left out (``KEY=...``) when
    the key looks like a secret or the value is a URL (which may hold credentials)."""
    if SECRET_WORDS.search(key) or "://" in raw:
        return f"--set {key}=..."
    return f"--set {key}={raw}"


def _non_finite(text: str) -> bool:
    """Whether ``text`` is a non-finite number (``nan``, ``inf``, ``-Infinity``...)."""
    try:
        return not math.isfinite(float(text))
    except ValueError:
        return False


def _reads_as(text: str, kind: str) -> bool:
    """Whether the text, without its quotes, would be of the type ``kind`` asks for."""
    stripped = text.strip()
    if kind == "bool_type":
        return stripped in ("true", "false")
    try:
        number = float(stripped) if kind == "float_type" else int(stripped)
    except ValueError:
        return False
    return kind in ("int_type", "float_type") and math.isfinite(number)


def explain(root: type[BaseModel], error: Mapping[str, Any], path: KeyPath) -> tuple[KeyPath, str]:
    """The final key path and the message (with the fix) for one pydantic error.

    An unknown key's did-you-mean leaves out the keys that ``root`` refuses where they are and
    takes from another place (its ``KEYS_SET_ELSEWHERE``: key path -> where to set it), and
    names that place when the typo is closest to one of them.
    """
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        key = path[-1]
        if isinstance(key, str) and SECRET_WORDS.search(key) and "key" in key.lower():
            return path, (
                "an API key is never written in a profile; put it in an environment variable "
                "and name that variable in target.api_key_env"
            )
        parent = path[:-1]
        elsewhere: Mapping[KeyPath, str] = getattr(root, "KEYS_SET_ELSEWHERE", {})
        known = fields_at(root, parent)
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        if close and (*parent, close[0]) in elsewhere:  # a key the root model refuses here
            return path, (
                f"unknown key {key!r}; did you mean {close[0]!r}? It does not belong in "
                f"{dotted(parent)}: set {elsewhere[(*parent, close[0])]} instead"
            )
        known = [k for k in known if (*parent, k) not in elsewhere]
        fix = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
        return path, f"unknown key {key!r}; {fix}"
    if kind == "missing":
        return path, "required key is missing; add it"
    if kind in _KIND_NAMES:
        want = _KIND_NAMES[kind]
        fix = ""
        if isinstance(value, str) and kind == "float_type" and _non_finite(value):
            return path, f"must be a finite number, got {value.strip()!r}"
        if isinstance(value, str) and _reads_as(value, kind):
            fix = "; write it without quotes"
        elif isinstance(value, bool | int | float) and kind == "string_type":
            fix = "; put it in quotes"
        elif isinstance(value, float) and kind == "int_type":
            fix = "; write a whole number"
        return path, f"expected {want}{_show(path, value)}{fix}"
    if kind == "value_error":
        exc = error.get("ctx", {}).get("error")
        if isinstance(exc, AtKey):
            return (*path, *exc.key), str(exc)
        return path, str(exc) if exc is not None else str(error["msg"])
    if kind in ("finite_number",):
        return path, "expected a finite number (not .inf or .nan)"
    if kind == "greater_than" and error.get("ctx", {}).get("gt") == 0:
        if isinstance(value, str):  # a duration, the one kind of text with a lower bound
            return path, f"the duration must be positive (more than 0s), got {value.strip()!r}"
        return path, f"must be positive (more than 0){_show(path, value)}"
    return path, f"{error['msg']}{_show(path, value)}"


def problems(root: type[BaseModel], exc: ValidationError, where: Where) -> list[str]:
    """One ``file:line: key.path: message`` line per error of ``exc`` (see :class:`Where`)."""
    out: list[str] = []
    for error in exc.errors(include_url=False):
        at = clean_loc(root, error["loc"])
        path, message = explain(root, error, at)
        rule = error.get("ctx", {}).get("error")
        if isinstance(rule, AtKey) and rule.others:  # blame the key the user changed
            path = where.blame([path, *((*at, *key) for key in rule.others)])
        out.append(where.format(path, message))
    return out


def raise_problems(source: str, problems: list[str]) -> typing.NoReturn:
    """Raise one :class:`ProfileError` listing every problem, one per line."""
    if len(problems) == 1:
        raise ProfileError(f"invalid profile {problems[0]}")
    listing = "\n  ".join(problems)
    raise ProfileError(f"invalid profile {source}: {len(problems)} problems:\n  {listing}")
