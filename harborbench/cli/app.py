"""The Typer application object that every command module registers itself on."""

from __future__ import annotations

import typer


def _plain_flags() -> None:
    """Show a flag in ``--help`` as a plain flag: Typer (0.29) labels it ``<bool>``, as if it
    took a value (``--quiet <bool>``), in the type column of its Rich help. A flag takes none,
    so its type column stays empty; every other option keeps Typer's label."""
    from typer.core import TyperOption

    typer_label = TyperOption.display_type_rich

    def label(self: TyperOption, ctx: typer.Context) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return typer_label(self, ctx)

    setattr(TyperOption, "display_type_rich", label)  # noqa: B010 (mypy: no method assignment)


_plain_flags()

app = typer.Typer(
    name="harborbench",
    help=(
        "Benchmark and tune an LLM API client's concurrency layer, with honest numbers.\n\n"
        "Examples:\n\n"
        "  harborbench run profiles/burst.yaml\n\n"
        "  harborbench compare baseline optimized\n\n"
        "  harborbench rollback-check\n\n"
        "Exit codes: 0 success, 1 gate failed, 2 bad input, 3 inconclusive, "
        "4 run failed, 130 interrupted."
    ),
    no_args_is_help=True,
    add_completion=False,
    # Rich tracebacks with locals could print an API key; a bug keeps a plain traceback.
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        from harborbench import __version__

        typer.echo(f"harborbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Benchmark and tune an LLM API client's concurrency layer."""


def reflow(text: str) -> str:
    """Join the lines of each paragraph of a help text, so Rich wraps it to the terminal.

    Paragraphs are separated by blank lines; a line indented by two spaces (an example) stays a
    line of its own.
    """
    paragraphs = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        if any(line.startswith("  ") for line in lines):
            paragraphs.append(block)
        else:
            paragraphs.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(paragraphs)
