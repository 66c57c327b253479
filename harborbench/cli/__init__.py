"""Command-line interface: one module per command, one error boundary (:func:`main`).

The commands parse options, call the library and render; they measure nothing themselves.
"""

from __future__ import annotations

import sys

import typer

from harborbench.cli.app import app
from harborbench.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, HarborbenchError

# Each command module registers itself on ``app`` when imported.
# (keep this list sorted; one line per command module)
from harborbench.cli import compare as compare  # isort: skip
from harborbench.cli import profiles as profiles  # isort: skip
from harborbench.cli import report as report  # isort: skip
from harborbench.cli import rollback as rollback  # isort: skip
from harborbench.cli import run as run  # isort: skip
from harborbench.cli import serve as serve  # isort: skip
from harborbench.cli import tune as tune  # isort: skip

from harborbench.cli.app import reflow  # isort: skip

for _command in app.registered_commands:
    if _command.help:
        _command.help = reflow(_command.help)

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with the documented code (SPEC section 2).

    Args:
        argv: the arguments without the program name; ``None`` reads ``sys.argv``.

    Raises:
        SystemExit: always, carrying the exit code.
    """
    from harborbench.cli.signals import sigterm_as_ctrl_c
    from harborbench.report.console import print_error

    try:
        # With standalone_mode=False, a typer.Exit(n) comes back as the return value.
        with sigterm_as_ctrl_c():
            code = app(args=argv, prog_name="harborbench", standalone_mode=False)
    except HarborbenchError as exc:
        print_error(str(exc))
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # unknown option, missing argument, bad value
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print_error(exc.format_message())
        sys.exit(EXIT_BAD_INPUT if exc.exit_code in (1, 2) else exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print_error("Interrupted.")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)
