"""Checks of the result paths that commands read, before they are loaded."""

from __future__ import annotations

from pathlib import Path

from harborbench.documents import kind_mismatch


def refuse_comparison_folder(path: Path, command: str) -> None:
    """Refuse a comparison folder where a command needs the result of a run.

    A folder written by ``harborbench compare`` holds ``comparison.json`` and no
    ``result.json``; the kind of a file that exists is checked by the loader
    (:func:`harborbench.documents.load_document`), from its ``kind``.

    Args:
        path: the ``result.json`` the command looked for.
        command: the command that reads it, for the message (``"compare"``, ``"report"``).

    Raises:
        ResultFileError: ``path`` is missing and a ``comparison.json`` is beside it (exit 2).
    """
    comparison = path.parent / "comparison.json"
    if not path.exists() and comparison.is_file():
        raise kind_mismatch(comparison, "comparison", "run", command)
