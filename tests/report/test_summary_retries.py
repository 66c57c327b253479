"""The run summary's retries line: retries after a reset and after a timeout are shown apart."""

from __future__ import annotations

from harborbench.report.summary import describe_retries
from harborbench.result import RunResult
from tests.report.test_html import make_result


def _with_processor(stats: dict[str, int]) -> RunResult:
    result = make_result()
    trial = result.trials[0].model_copy(update={"client_statistics": {"request_processor": stats}})
    return result.model_copy(update={"trials": [trial]})


def test_retries_after_a_reset_and_a_timeout_are_named() -> None:
    result = _with_processor({"retries": 7, "retries_after_reset": 3, "retries_after_timeout": 1})
    text = describe_retries(result)
    assert text.startswith("the client retried 7 times (3 after a connection reset")
    assert "may have executed" in text and "1 after a timeout" in text


def test_plain_retries_keep_the_short_line() -> None:
    result = _with_processor({"retries": 2})
    text = describe_retries(result)
    assert text.startswith("the client retried 2 times")
    assert "reset" not in text
