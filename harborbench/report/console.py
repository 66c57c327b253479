"""The Rich consoles harborbench prints through (stdout for results, stderr for messages)."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.markup import escape

#: Width when the output is not a terminal (a pipe or a CI log) and COLUMNS is not set: wide
#: enough that no table column is squeezed to nothing; Rich's own default there is 80.
PIPE_WIDTH = 140


def _width() -> int | None:
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return PIPE_WIDTH


stdout = Console(highlight=False, width=_width())
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    """Print a one-line error message in red on standard error (no traceback)."""
    stderr.print(f"[bold red]Error:[/] {escape(message)}")


def print_warning(message: str) -> None:
    """Print a one-line warning in yellow on standard error."""
    stderr.print(f"[yellow]Warning:[/] {escape(message)}")
