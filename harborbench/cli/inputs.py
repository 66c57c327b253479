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
