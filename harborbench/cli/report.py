"""``harborbench report NAME``: write the self-contained HTML report of a saved run."""

from __future__ import annotations

from pathlib import Path

import typer

from harborbench.cli.app import app
from harborbench.errors import UserInputError

REPORT_HELP = (
    "Write report.html for a saved run: charts and tables in one offline file.\n\n"
    "NAME is a run name under the reports folder (reports/NAME/result.json), a run folder, or "
    "the path of a result.json. The report is written beside the result file, replacing an "
    "earlier report.html. It has no script and loads nothing from the network.\n\n"
    "Examples:\n\n"
    "  harborbench report steady\n\n"
    "  harborbench report reports/burst/result.json\n\n"
    "  harborbench report baseline --reports-dir /tmp/reports\n\n"
    "A comparison (reports/compare-A-B/) has its own report.html, written by `harborbench "
    "compare`; a rollback-check report has none (its --junit file is the CI page).\n\n"
    "Exit codes: 0 written, 2 no such run or not a readable result file."
)


def resolve_result_path(name: str, reports: Path) -> Path:
    """The ``result.json`` a user names: a file, a run folder, or a run name under ``reports``.

    Args:
        name: a path to a result file, a folder holding ``result.json``, or a run name.
        reports: the reports folder in which run names are looked up.

    Returns:
        the path of the result file (not checked for existence when ``name`` is a run name:
        :func:`harborbench.result.load_result` reports a missing file).

    Raises:
        UserInputError: ``name`` is neither an existing path nor a valid run name.
    """
    from harborbench.report.files import run_dir

    given = Path(name)
    if given.is_file():
        return given
    if given.is_dir():
        return given / "result.json"
    try:
        return run_dir(reports, name) / "result.json"
    except ValueError:
        raise UserInputError(
            f"{name!r} is not a result file, a run folder or a run name under {reports}/.",
            hint="Give a run name (see the folders in reports/) or the path of a result.json.",
        ) from None


@app.command("report", help=REPORT_HELP)
def report_command(
    name: str = typer.Argument(..., metavar="NAME", help="Run name, run folder or result.json."),
    reports: Path = typer.Option(Path("reports"), "--reports-dir", help="Where runs are saved."),
) -> None:
    from rich.markup import escape

    from harborbench.cli.inputs import refuse_comparison_folder
    from harborbench.report.console import stdout
    from harborbench.report.html import write_run_html
    from harborbench.result import load_result

    path = resolve_result_path(name, reports)
    refuse_comparison_folder(path, "report")
    result = load_result(path, command="report")
    written = write_run_html(result, path.parent)
    stdout.print(f"wrote {escape(str(written))}")
