"""Checks of the result files that commands read, before they are loaded."""

from __future__ import annotations

import json
from pathlib import Path

from harborbench.errors import ResultFileError


def refuse_tune_result(path: Path, command: str) -> None:
    """Refuse the ``result.json`` of a tune sweep where a command needs the result of a run.

    Reads the file's ``kind`` only; a file that is missing, unreadable or not JSON passes
    through, so that :func:`harborbench.result.load_result` reports it in its own words.

    Args:
        path: the result file named by the user (or found from a run name).
        command: the command that reads it, for the message (``"compare"``, ``"report"``).

    Raises:
        ResultFileError: the file's ``kind`` is ``"tune"`` (exit 2).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return
    if not isinstance(data, dict) or data.get("kind") != "tune":
        return
    hint = "Give a run name or the result.json of a run."
    page = path.parent / "report.html"
    if command == "report" and page.is_file():
        hint += f" The tune's own page is {page}."
    raise ResultFileError(
        f"{path} is the result of `harborbench tune`, not of a run: {command} takes the "
        "results of `harborbench run`.",
        hint=hint,
    )


def refuse_other_outputs(path: Path, command: str) -> None:
    """Refuse a comparison or a rollback-check report where a command needs the result of a run.

    Recognised: a comparison folder (``comparison.json`` beside the missing ``result.json``),
    a ``comparison.json`` (keys ``a``, ``b`` and ``comparability``), and the JSON report of
    ``harborbench rollback-check`` (keys ``rows`` and ``wall_s``). Anything else passes through,
    so that :func:`harborbench.result.load_result` reports it in its own words.

    Args:
        path: the result file named by the user (or found from a run name or a folder).
        command: the command that reads it, for the message (``"compare"``, ``"report"``).

    Raises:
        ResultFileError: ``path`` is one of those outputs (exit 2); the message says what it is
            and where its own page is, or how to write one.
    """
    comparison = path.parent / "comparison.json"
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return
        if not isinstance(data, dict):
            return
        if {"rows", "wall_s"} <= data.keys():
            raise ResultFileError(
                f"{path} is the report of `harborbench rollback-check`, not the result of a run: "
                f"{command} takes the results of `harborbench run`.",
                hint="Its verdicts are its rows (`harborbench rollback-check --junit FILE` writes "
                "them for a CI test page). Give a run name or the result.json of a run.",
            )
        if not {"a", "b", "comparability"} <= data.keys():
            return
        comparison = path
    elif not comparison.is_file():
        return
    folder = comparison.parent
    page = folder / "report.html"
    if command == "report" and page.is_file():
        hint = f"`harborbench compare` already wrote its page: open {page}."
    elif command == "report":
        hint = "Run `harborbench compare A B` again without --no-html to write its report.html."
    else:
        hint = "Give the run names or result.json files of the two runs it compared."
    raise ResultFileError(
        f"{folder} is a comparison written by `harborbench compare`, not a run: {command} takes "
        "the results of `harborbench run`.",
        hint=hint,
    )
