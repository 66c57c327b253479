"""The one reader of the JSON files harborbench writes: :func:`load_document`.

Every JSON file harborbench writes carries ``kind`` and ``schema_version``:

- ``run``: ``reports/<name>/result.json`` (``RunResult``), by ``harborbench run``;
- ``tune``: ``reports/<name>-tune/result.json`` (``TuneResult``), by ``harborbench tune``;
- ``comparison``: ``reports/compare-A-B/comparison.json`` (``Comparison``), by
  ``harborbench compare``;
- ``rollback-check``: the ``--json``/``--output`` report (``RollbackReport``), by
  ``harborbench rollback-check``.

The reader refuses a file of another kind than asked for (naming what it is), a file of a newer
``schema_version`` (with the upgrade hint), and upgrades an older one step by step through
:data:`UPGRADES` before validating it. A file written before kinds existed (harborbench 0.1.0)
has no ``kind``; it is read as the kind asked for, at version 1. The CSV, HTML, JUnit and
``recommended_config.yaml`` files are renderings whose format belongs to their readers (a
spreadsheet, a browser, a CI page, ``create_fast_client``), and are not read back.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from harborbench.errors import ResultFileError
from harborbench.files import InputFileError, read_bounded

__all__ = ["KINDS", "UPGRADES", "Kind", "kind_mismatch", "load_document"]

Kind = Literal["run", "tune", "comparison", "rollback-check"]

#: kind -> (model as ``module:Class``, current schema version, what it is, how to make one).
KINDS: dict[str, tuple[str, str, str]] = {
    "run": ("harborbench.result:RunResult", "the result of `harborbench run`", "run PROFILE"),
    "tune": ("harborbench.tune.result:TuneResult", "the result of `harborbench tune`", "tune"),
    "comparison": (
        "harborbench.compare.models:Comparison",
        "a comparison written by `harborbench compare`",
        "compare A B",
    ),
    "rollback-check": (
        "harborbench.rollback.matrix:RollbackReport",
        "the report of `harborbench rollback-check`",
        "rollback-check --json",
    ),
}


def _run_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    from harborbench.result import _migrate_v1

    out = copy.deepcopy(data)
    _migrate_v1(out)
    return {**out, "schema_version": 2}


def _run_2_to_3(data: dict[str, Any]) -> dict[str, Any]:
    # Version 3 names its kind and stores `total` only for two trials or more (with one trial
    # earlier versions stored a byte-for-byte copy of it; the model reads it as trials[0]).
    out = {**data, "kind": "run", "schema_version": 3}
    if isinstance(out.get("trials"), list) and len(out["trials"]) == 1:
        out["total"] = None
    return out


def _add_kind(kind: str, to_version: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def upgrade(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "kind": kind, "schema_version": to_version}

    return upgrade


#: (kind, version) -> the function that turns a file of that version into the next version.
UPGRADES: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("run", 1): _run_1_to_2,
    ("run", 2): _run_2_to_3,
    ("tune", 1): lambda data: {**data, "schema_version": 2},  # see TUNE_SCHEMA_VERSION
    ("comparison", 1): _add_kind("comparison", 2),
    ("rollback-check", 1): lambda data: {**data, "schema_version": 2},
    ("rollback-check", 2): _add_kind("rollback-check", 3),
}


def model_of(kind: str) -> type[BaseModel]:
    """The pydantic model of a kind (imported on first use)."""
    module, _, name = KINDS[kind][0].partition(":")
    model: type[BaseModel] = getattr(importlib.import_module(module), name)
    return model


def current_version(kind: str) -> int:
    """The ``schema_version`` this harborbench writes for ``kind``."""
    default = model_of(kind).model_fields["schema_version"].default
    return int(default)


#: The largest JSON file read, bytes: 1 GiB. A result holds about 2 KB a second of each trial
#: (a row of ``timeseries`` with its two histograms: 1.8 KB at 600 ops/s of ``steady.yaml``),
#: so a day-long trial is about 150 MB, and the results of the test suite are about 100 KB; the
#: limit is checked before anything is read.
MAX_DOCUMENT_BYTES = 1 << 30
#: The deepest nesting of lists and objects read; harborbench writes about 6 levels.
MAX_DOCUMENT_DEPTH = 64
_TOO_DEEP = object()


def _nests_deeper(data: Any, limit: int) -> bool:
    """Whether ``data`` (parsed JSON) nests lists and objects more than ``limit`` levels deep.

    Iterative, so that any depth is measured without recursion (the free-form parts of a
    result, such as ``profile``, are later rendered by recursive code).
    """
    stack: list[tuple[Any, int]] = [(data, 1)] if isinstance(data, dict | list) else []
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def load_document(
    path: str | Path, expect: Kind | None = None, command: str | None = None
) -> BaseModel:
    """Read, upgrade and validate a JSON file written by harborbench.

    Args:
        path: the file.
        expect: the kind the caller needs; ``None`` accepts any kind (then the file must name
            its kind).
        command: the command reading it, named in the message of a file of another kind.

    Returns:
        The validated model of the file's kind (see the table above).

    Raises:
        ResultFileError: missing or unreadable file, not JSON, no or an unknown kind, another
            kind than ``expect``, a newer schema version than this harborbench writes (with the
            upgrade hint), or content that does not validate (the first problem, by key).
    """
    p = Path(path)
    try:
        data = json.loads(read_bounded(p, MAX_DOCUMENT_BYTES))
    except InputFileError as exc:
        if exc.reason == "missing":
            what = "result file" if expect in (None, "run") else f"{expect} file"
            raise ResultFileError(
                f"{p}: no such {what}.", hint="Run `harborbench run PROFILE` first."
            ) from None
        if exc.reason == "not-regular":
            raise ResultFileError(
                f"{p}: {exc}.", hint="Give a run name or the path of a result.json."
            ) from None
        if exc.reason == "too-large":
            raise ResultFileError(
                f"{p}: {exc}, more than harborbench writes (a day-long trial is about 150 MB); "
                "is it the right file?"
            ) from None
        raise ResultFileError(f"{p}: {exc}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultFileError(f"{p}: not readable as JSON ({exc}).") from None
    except RecursionError:
        data = _TOO_DEEP  # nested too deeply for the parser
    if data is _TOO_DEEP or _nests_deeper(data, MAX_DOCUMENT_DEPTH):
        raise ResultFileError(
            f"{p}: the JSON nests deeper than {MAX_DOCUMENT_DEPTH} levels, more than harborbench "
            "writes; is it the right file?"
        )
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ResultFileError(f"{p}: not a harborbench result file (no schema_version).")
    kind = data.get("kind", expect)
    if kind is None:
        raise ResultFileError(f"{p}: the file does not name its kind (written before 0.2?).")
    if kind not in KINDS:
        raise ResultFileError(
            f"{p}: unknown kind {kind!r}; harborbench writes {', '.join(map(repr, KINDS))}."
        )
    if expect is not None and kind != expect:
        raise kind_mismatch(p, kind, expect, command)
    version = data["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ResultFileError(
            f"{p}: schema_version must be an integer (1 or more), not {version!r}."
        )
    current = current_version(kind)
    if version > current:
        raise ResultFileError(
            f"{p}: written with {kind} schema version {version}, newer than this harborbench "
            f"understands ({current}).",
            hint="Upgrade harborbench (pip install -U harborbench) to read it.",
        )
    while version < current:
        data = UPGRADES[(kind, version)](data)
        version = data["schema_version"]
    model = model_of(kind)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        from harborbench.profile.diagnostics import Where, problems

        found = problems(model, exc, Where(str(p)))
        more = f" (and {len(found) - 1} more problems)" if len(found) > 1 else ""
        raise ResultFileError(f"invalid {kind} file {found[0]}{more}.") from None


def kind_mismatch(
    path: Path, kind: str, expect: str, command: str | None = None
) -> ResultFileError:
    """The error for a file of ``kind`` given where ``expect`` is needed.

    Args:
        path: the file (for a comparison, its folder is named).
        kind: what the file is; expect: what was asked for.
        command: the command that reads it (``"compare"``, ``"report"``), for the message.

    Returns:
        The error to raise (exit 2), naming what the file is and where its own page is.
    """
    takes = f": {command} takes {KINDS[expect][1].replace('the result', 'the results')}"
    takes = takes if command else ""
    give = (
        "Give a run name or the result.json of a run."
        if expect == "run"
        else f"Give {KINDS[expect][1]}, written by `harborbench {KINDS[expect][2]}`."
    )
    page = path.parent / "report.html"
    if kind == "comparison":
        folder = path.parent if path.name == "comparison.json" else path
        page = folder / "report.html"
        if command == "report" and page.is_file():
            give = f"`harborbench compare` already wrote its page: open {page}."
        elif command == "report":
            give = "Run `harborbench compare A B` again without --no-html to write its report.html."
        elif expect == "run":
            give = "Give the run names or result.json files of the two runs it compared."
        return ResultFileError(f"{folder} is {KINDS[kind][1]}, not a run{takes}.", hint=give)
    if kind == "rollback-check":
        give = (
            "Its verdicts are its rows (`harborbench rollback-check --junit FILE` writes them "
            "for a CI test page). " + give
        )
    elif kind == "tune" and command == "report" and page.is_file():
        give += f" The tune's own page is {page}."
    not_what = "not of a run" if kind == "tune" else "not the result of a run"
    if expect != "run":
        not_what = f"not {KINDS[expect][1]}"
    return ResultFileError(f"{path} is {KINDS[kind][1]}, {not_what}{takes}.", hint=give)
