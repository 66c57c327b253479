"""Outputs of ``harborbench rollback-check``: a Rich table, JUnit XML and JSON.

The table has one row per rollback path or gate: the expected and observed values, the verdict,
and for a row that did not pass one line saying what broke. The JUnit file has one test case per
row (suite ``rollback-paths`` or ``rollback-gates``): a failed row is a ``<failure>``, an
inconclusive row a ``<skipped>`` with the reason (JUnit has no "inconclusive"; the exit code 3
still says it), so that CI systems that display test results show each path by name. Each path
case's ``time`` is its own smoke check; the gates are all judged on one shared measurement, so
each gate case has time 0 and the ``rollback-gates`` suite carries the measurement's time.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harborbench.report.files import write_atomic
from harborbench.rollback.matrix import ROLLBACK_PATHS, CheckRow, RollbackReport

__all__ = ["junit_xml", "render_rollback", "report_json", "write_junit", "write_report_json"]

_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}


def render_rollback(report: RollbackReport, console: Console) -> None:
    """Print the report as one Rich table (paths, then gates) and a one-line verdict.

    The verdict line of an interrupted check starts ``INTERRUPTED`` (never ``PASS``: what was
    not run was not checked) and names what was left out.

    Args:
        report: the check's report.
        console: where to print.
    """
    table = Table(title="harborbench rollback-check", show_lines=False, expand=False)
    table.add_column("check", overflow="fold")
    table.add_column("expected", overflow="fold")
    table.add_column("observed", overflow="fold")
    table.add_column("verdict", no_wrap=True)
    last_kind = None
    for row in report.rows:
        if last_kind is not None and row.kind != last_kind:
            table.add_section()
        last_kind = row.kind
        verdict = f"[{_STYLE[row.verdict]}]{row.verdict}[/]"
        table.add_row(escape(row.name), escape(row.expected), escape(row.observed), verdict)
        if row.problem:
            colour = _STYLE[row.verdict]
            table.add_row("", f"[{colour}]↳ {escape(row.problem)}[/]", "", "")
    console.print(table)
    counts = {v: sum(r.verdict == v for r in report.rows) for v in ("pass", "fail", "inconclusive")}
    colour = _STYLE[report.verdict]
    headline = f"[{colour}]{report.verdict.upper()}[/]"
    not_run = ""
    if report.interrupted:  # the verdict judges only the rows checked before the stop
        headline = "[bold yellow]INTERRUPTED[/]"
        not_run = "".join(f"; {part}" for part in _not_run(report))
    console.print(
        f"{headline}: {counts['pass']} passed, {counts['fail']} failed, "
        f"{counts['inconclusive']} inconclusive{not_run} in {report.wall_s:.1f} s"
        + (" (--quick)" if report.quick else "")
        + (" (gates skipped)" if report.skip_gates else "")
    )


def _not_run(report: RollbackReport) -> list[str]:
    """What an interrupted check left out: ``"N of 9 paths not run"``, ``"gates not run"``."""
    paths = sum(r.kind == "path" for r in report.rows)
    parts = []
    if paths < len(ROLLBACK_PATHS):
        parts.append(f"{len(ROLLBACK_PATHS) - paths} of {len(ROLLBACK_PATHS)} paths not run")
    if not report.skip_gates and not any(r.kind == "gate" for r in report.rows):
        parts.append("gates not run")
    return parts


def junit_xml(report: RollbackReport) -> str:
    """The report as JUnit XML: one ``<testcase>`` per row, grouped in two ``<testsuite>``.

    Times, seconds: a case's is its row's ``elapsed_s`` (0 for a gate); the paths suite's is the
    sum of its cases, the gates suite's the shared measurement (``gates_elapsed_s``), the root's
    the whole check (``wall_s``, which also counts starting the mock server).

    Args:
        report: the check's report.

    Returns:
        The XML document as text (UTF-8 declaration included).
    """
    root = ET.Element("testsuites", name="harborbench rollback-check")
    groups: dict[str, list[CheckRow]] = {"path": [], "gate": []}
    for row in report.rows:
        groups[row.kind].append(row)
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for kind, rows in groups.items():
        if not rows:
            continue
        failures = sum(r.verdict == "fail" for r in rows)
        skipped = sum(r.verdict == "inconclusive" for r in rows)
        suite_s = sum(r.elapsed_s for r in rows)
        if kind == "gate" and report.gates_elapsed_s is not None:
            suite_s = report.gates_elapsed_s  # one measurement shared by every gate
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"rollback-{kind}s",
            tests=str(len(rows)),
            failures=str(failures),
            errors="0",
            skipped=str(skipped),
            time=f"{suite_s:.3f}",
            timestamp=report.created_at,
        )
        for row in rows:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"harborbench.rollback.{kind}s",
                name=f"{row.key}: {row.name}",
                time=f"{row.elapsed_s:.3f}",
            )
            message = row.problem or ""
            if row.verdict == "fail":
                failure = ET.SubElement(case, "failure", message=message, type="fail")
                failure.text = f"expected: {row.expected}\nobserved: {row.observed}\n{message}"
            elif row.verdict == "inconclusive":
                ET.SubElement(case, "skipped", message=f"inconclusive: {message}")
            out = ET.SubElement(case, "system-out")
            out.text = f"expected: {row.expected}\nobserved: {row.observed}"
        totals["tests"] += len(rows)
        totals["failures"] += failures
        totals["skipped"] += skipped
    errors = 0
    if report.interrupted:  # one error case, so that CI shows the check did not finish
        errors = 1
        suite = ET.SubElement(
            root, "testsuite", name="rollback-interrupted", tests="1", failures="0",
            errors="1", skipped="0", time="0.000", timestamp=report.created_at,
        )  # fmt: skip
        case = ET.SubElement(
            suite, "testcase", classname="harborbench.rollback", name="interrupted", time="0.000"
        )
        ET.SubElement(
            case,
            "error",
            message="interrupted (Ctrl-C or SIGTERM): the rows are what was checked before",
            type="interrupted",
        )
        totals["tests"] += 1
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("errors", str(errors))
    root.set("time", f"{report.wall_s:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def report_json(report: RollbackReport) -> str:
    """The report as indented JSON text (the :class:`RollbackReport` schema)."""
    return report.model_dump_json(indent=2) + "\n"


def write_junit(report: RollbackReport, path: Path) -> None:
    """Write :func:`junit_xml` to ``path`` atomically."""
    write_atomic(path, junit_xml(report))


def write_report_json(report: RollbackReport, path: Path) -> None:
    """Write :func:`report_json` to ``path`` atomically."""
    write_atomic(path, report_json(report))
