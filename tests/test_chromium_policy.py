"""The browser tests skip without Chromium on a developer's machine and fail in CI."""

from __future__ import annotations

import pytest

from tests.chromium import CHROMIUM_INSTALL, SKIP_REASON, chromium_required, find_chromium


@pytest.mark.parametrize(
    ("environ", "required"),
    [
        ({}, False),
        ({"CI": "false"}, False),
        ({"CI": ""}, False),
        ({"CI": "true"}, True),
        ({"CI": "1"}, True),
        ({"HARBORBENCH_REQUIRE_CHROMIUM": "1"}, True),
    ],
)
def test_chromium_is_required_only_in_ci(environ: dict[str, str], required: bool) -> None:
    assert chromium_required(environ) is required


def test_without_chromium_the_test_skips_naming_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: None)
    with pytest.raises(pytest.skip.Exception, match=CHROMIUM_INSTALL):
        find_chromium({})
    with pytest.raises(pytest.fail.Exception, match="CI requires the browser tests"):
        find_chromium({"CI": "true"})


def test_the_run_ends_with_one_line_naming_the_install_command() -> None:
    from types import SimpleNamespace

    from tests.conftest import pytest_terminal_summary

    lines: list[str] = []
    skipped = [SimpleNamespace(longrepr=("x.py", 1, f"Skipped: {SKIP_REASON}; install ..."))] * 2
    other = [SimpleNamespace(longrepr=("y.py", 2, "Skipped: something else"))]
    reporter = SimpleNamespace(
        stats={"skipped": skipped + other},
        write_line=lambda line, **_markup: lines.append(line),
    )
    pytest_terminal_summary(reporter)  # type: ignore[arg-type]
    assert lines == [
        f"2 browser test(s) skipped: Chromium is not installed; install it with: {CHROMIUM_INSTALL}"
    ]
