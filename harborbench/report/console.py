"""The Rich consoles harborbench prints through (stdout for results, stderr for messages)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    """Print a one-line error message in red on standard error (no traceback)."""
    stderr.print(f"[bold red]Error:[/] {escape(message)}")


def print_warning(message: str) -> None:
    """Print a one-line warning in yellow on standard error."""
    stderr.print(f"[yellow]Warning:[/] {escape(message)}")
