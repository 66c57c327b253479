"""``--set key.path=value`` overrides of workload profiles (used by :mod:`harborbench.profile`).

The value is read as strict YAML and may not be empty; the key path must exist in the schema
(anything is allowed under ``client``, whose own validation names unknown keys, and any key of
a mapping such as ``request.headers`` or ``request.extra_body``). Setting one
of a group of exclusive keys removes the others of that group (and nothing else), and a new
``duration`` rescales stages (see ``apply_overrides``).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from harborbench.errors import ProfileError
from harborbench.profile.diagnostics import Where, mapping_values, models_in, shown_option
from harborbench.profile.strict_yaml import KeyPath, StrictYamlError, dotted, load_strict
from harborbench.units import format_duration, parse_duration


def duration_text(seconds: float) -> str:
    """Format seconds with units so that :func:`parse_duration` gives back the same float.

    Args:
        seconds: a duration >= 0.

    This is the text a profile or a result file stores; for display use
    :func:`harborbench.units.format_duration` (``"2.67s"``).

    Returns:
        The form of :func:`harborbench.units.format_duration` (``"1m30s"``) when it reads back
        exactly, else the exact decimal seconds (``"0.30000000000000004s"``).
    """
    text = format_duration(seconds)
    if parse_duration(text) == seconds:
        return text
    return f"{Decimal(repr(seconds)):f}s"  # exact, no exponent (the grammar has none)


#: Keys of which at most one may be set; an override of one removes the others.
_EXCLUSIVE: dict[KeyPath, tuple[str, ...]] = {
    ("load",): ("concurrency", "rate", "stages", "trace"),
    ("target",): ("mock", "base_url"),
    ("request",): ("messages", "prompt_tokens", "dataset"),
}


def _parse_value(text: str, option: str, where: Where) -> Any:
    try:
        value, _ = load_strict(text)
    except StrictYamlError as exc:
        message = exc.problems[0].message
        raise ProfileError(f"{where.source}: --set {option}: {message}") from None
    return value


def _check_path(
    root: type[BaseModel], parts: KeyPath, data: Any, option: str, where: Where
) -> None:
    """Raise unless ``parts`` names a field of the schema (anything is allowed under client)."""
    models: list[type[BaseModel]] = [root]
    node: Any = data
    values_of: Any = None  # the value type when the previous key is a mapping of free keys
    for depth, part in enumerate(parts):
        if values_of is not None:  # a key of request.headers or extra_body: any name
            if values_of is Any:
                return  # free-form values (extra_body): the profile's validation checks them
            models, values_of = models_in(values_of), mapping_values(values_of)
            node = node.get(part) if isinstance(node, dict) else None
            continue
        if isinstance(part, int):
            if not isinstance(node, list) or not -len(node) <= part < len(node):
                raise ProfileError(
                    f"{where.source}: --set {option}: {dotted(parts[: depth + 1])} is not an "
                    "existing list item"
                )
            node = node[part]
            continue
        owners = [m for m in models if part in m.model_fields]
        if not owners:
            known = sorted({n for m in models for n in m.model_fields})
            close = difflib.get_close_matches(part, known, n=1, cutoff=0.6)
            fix = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            raise ProfileError(
                f"{where.source}: --set {option}: unknown key path {dotted(parts)} "
                f"({part!r} is not a key of {dotted(parts[:depth]) if depth else 'a profile'}"
                f"); {fix}"
            )
        if depth == 0 and part == "client":
            return  # the client model (ClientConfig) names unknown client keys on validation
        annotation = owners[0].model_fields[part].annotation
        models = models_in(annotation)
        values_of = mapping_values(annotation)
        node = node.get(part) if isinstance(node, dict) else None
        if values_of is not None:
            continue
        if not models and depth < len(parts) - 1 and not isinstance(node, list):
            raise ProfileError(
                f"{where.source}: --set {option}: {dotted(parts[: depth + 1])} is a single "
                f"value, so {dotted(parts)} does not exist"
            )


def apply(
    root: type[BaseModel], data: dict[str, Any], overrides: Sequence[str], where: Where
) -> dict[str, Any]:
    """Apply ``--set`` overrides to a copy of ``data``, checking each path against ``root``.

    See :func:`harborbench.profile.apply_overrides` for the rules; ``where`` is updated so that
    errors in overridden values name the option instead of a line.
    """
    result = copy.deepcopy(data)
    for option in overrides:
        key, sep, raw = option.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ProfileError(
                f"{where.source}: --set {option!r} needs the form key.path=value, "
                "for example --set load.rate=800"
            )
        parts: KeyPath = tuple(int(p) if p.isdigit() else p for p in key.split("."))
        if any(p == "" for p in parts):
            raise ProfileError(f"{where.source}: --set {option}: empty key in the path {key!r}")
        _check_path(root, parts, result, option, where)
        if not raw.strip():  # YAML reads nothing as null, which would quietly mean "default"
            raise ProfileError(
                f"{where.source}: --set {option}: the value is empty; write one (for example "
                f"--set {key}=VALUE), or remove this --set to keep the profile's value (the "
                "default when the profile does not set it)"
            )
        value = _parse_value(raw, option, where)
        parent: Any = result
        for depth, part in enumerate(parts[:-1]):
            child = parent[part] if isinstance(part, int) else parent.get(part)
            if child is None:
                child = {}
                parent[part] = child
            elif not isinstance(child, dict | list):
                raise ProfileError(
                    f"{where.source}: --set {option}: {dotted(parts[: depth + 1])} is a "
                    "single value, not a section"
                )
            parent = child
        last = parts[-1]
        group = _EXCLUSIVE.get(parts[:-1], ())
        if isinstance(parent, dict) and last in group:  # only the key named, and its rivals
            for other in group:
                if other != last:
                    parent.pop(other, None)
        if parts == ("duration",) and isinstance(value, str):
            _rescale_stages(result, value, option, where)
        parent[last] = value
        for path in [p for p in where.origin if p[: len(parts)] == parts]:
            del where.origin[path]
        where.origin[parts] = shown_option(key, raw)
    return result


def _rescale_stages(data: dict[str, Any], text: str, option: str, where: Where) -> None:
    """With stages, stretch or shrink every stage so that they add up to the new duration."""
    load = data.get("load")
    stages = load.get("stages") if isinstance(load, dict) else None
    if not isinstance(stages, list) or not stages:
        return
    try:
        new_total = parse_duration(text)
        olds = [parse_duration(s["duration"]) for s in stages]
    except (ValueError, TypeError, KeyError):
        return  # validation reports the bad value itself
    old_total = sum(olds)
    if old_total <= 0:
        return
    for index, (stage, old) in enumerate(zip(stages, olds, strict=True)):
        stage["duration"] = duration_text(old * new_total / old_total)
        where.origin[("load", "stages", index, "duration")] = f"--set {option} (scaled)"
