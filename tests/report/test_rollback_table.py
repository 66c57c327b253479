"""Tests of the rollback-check outputs: the Rich table, JUnit XML and JSON."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console

from harborbench.report.rollback_table import (
    junit_xml,
    render_rollback,
    report_json,
    write_junit,
)
from harborbench.rollback import CheckRow, RollbackReport
from harborbench.rollback.matrix import new_report


def _report() -> RollbackReport:
    rows = [
        CheckRow(kind="path", key="optimized", name="path 1: reference", expected="optimized",
                 observed="optimized", verdict="pass", problem=None, details={}),
        CheckRow(kind="path", key="env-disable", name="path 3: env var", expected="traditional",
                 observed="optimized", verdict="fail", problem="mode is 'optimized' <&>",
                 details={}),
        CheckRow(kind="gate", key="relative.cpu_efficiency_gain", name="CPU gain",
                 expected=">= 1.300x", observed="1.25x [1.1, 1.4]", verdict="inconclusive",
                 problem="straddling the threshold", details={"ratio": 1.25}),
    ]  # fmt: skip
    return new_report(rows, quick=True, skip_gates=False, settings={}, wall_s=3.0)


def test_report_verdict_is_the_worst_row() -> None:
    report = _report()
    assert (report.verdict, report.exit_code) == ("fail", 1)


def test_junit_has_one_case_per_row_with_failures_and_skips() -> None:
    root = ET.fromstring(junit_xml(_report()))
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("tests", "failures", "skipped", "errors")} == {
        "tests": "3", "failures": "1", "skipped": "1", "errors": "0",
    }  # fmt: skip
    suites = root.findall("testsuite")
    assert [(s.get("name"), s.get("tests")) for s in suites] == [
        ("rollback-paths", "2"), ("rollback-gates", "1"),
    ]  # fmt: skip
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == [
        "optimized: path 1: reference",
        "env-disable: path 3: env var",
        "relative.cpu_efficiency_gain: CPU gain",
    ]
    assert cases[0].find("failure") is None and cases[0].find("skipped") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "mode is 'optimized' <&>"
    skipped = cases[2].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "inconclusive: straddling the threshold"


def test_write_junit_and_json_round_trip(tmp_path: Path) -> None:
    report = _report()
    path = tmp_path / "sub" / "r.xml"
    write_junit(report, path)
    assert ET.parse(path).getroot().get("tests") == "3"
    assert RollbackReport.model_validate_json(report_json(report)) == report


def test_table_shows_each_row_and_what_broke() -> None:
    console = Console(record=True, width=160)
    render_rollback(_report(), console)
    text = console.export_text()
    assert "path 3: env var" in text
    assert "↳ mode is 'optimized' <&>" in text
    assert "↳ straddling the threshold" in text
    assert "FAIL: 1 passed, 1 failed, 1 inconclusive in 3.0 s (--quick)" in text


def _headline(report: RollbackReport) -> str:
    console = Console(record=True, width=200)
    render_rollback(report, console)
    return console.export_text().splitlines()[-1]


def test_an_interrupted_check_never_heads_pass_and_says_what_was_not_run() -> None:
    paths = [r for r in _report().rows if r.kind == "path" and r.verdict == "pass"]
    nine = [paths[0].model_copy(update={"key": f"p{i}"}) for i in range(9)]
    stopped = new_report(nine, quick=True, skip_gates=False, settings={}, wall_s=10.5,
                         interrupted=True)  # fmt: skip
    assert stopped.verdict == "pass"  # the rows that ran passed; the headline says the rest
    assert _headline(stopped) == (
        "INTERRUPTED: 9 passed, 0 failed, 0 inconclusive; gates not run in 10.5 s (--quick)"
    )
    early = new_report(nine[:4], quick=False, skip_gates=True, settings={}, wall_s=2.0,
                       interrupted=True)  # fmt: skip
    assert _headline(early) == (
        "INTERRUPTED: 4 passed, 0 failed, 0 inconclusive; 5 of 9 paths not run in 2.0 s "
        "(gates skipped)"
    )
    # the same rows, not interrupted: the verdict heads the line, nothing "not run"
    done = new_report(nine, quick=True, skip_gates=True, settings={}, wall_s=10.5)
    assert (
        _headline(done) == "PASS: 9 passed, 0 failed, 0 inconclusive in 10.5 s (--quick) "
        "(gates skipped)"
    )


def test_junit_times_are_each_rows_own_seconds() -> None:
    timed = [r.model_copy(update={"elapsed_s": t}) for r, t in zip(_report().rows, (1.25, 0.5, 0.0),
                                                                     strict=True)]  # fmt: skip
    report = new_report(timed, quick=True, skip_gates=False, settings={}, wall_s=14.0,
                        gates_elapsed_s=12.0)  # fmt: skip
    root = ET.fromstring(junit_xml(report))
    assert root.get("time") == "14.000"
    suites = root.findall("testsuite")
    # Paths: the sum of their own times; gates: one shared measurement, each gate case 0 s.
    assert [(s.get("name"), s.get("time")) for s in suites] == [
        ("rollback-paths", "1.750"), ("rollback-gates", "12.000"),
    ]  # fmt: skip
    assert [c.get("time") for c in root.findall("./testsuite/testcase")] == [
        "1.250", "0.500", "0.000",
    ]  # fmt: skip
    assert RollbackReport.model_validate_json(report_json(report)) == report
