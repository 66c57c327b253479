"""Atomic writes of result files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from harborbench.report.files import write_atomic


def test_write_atomic_writes_an_ordinary_readable_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "result.json"
    write_atomic(target, "{}\n")
    assert target.read_text() == "{}\n"
    mode = stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]  # no temp file left
