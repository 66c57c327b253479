"""The run summary's health lines: a generator-saturated run says so (README tells users to look
for a run flagged so; before, only result.json's health had it)."""

from __future__ import annotations

from rich.console import Console

from harborbench.report.summary import health_lines, render_summary
from harborbench.result import RunResult
from tests.report.test_html import make_result


def _with_health(saturated: bool, warnings: list[str]) -> RunResult:
    result = make_result(name="sat")
    trial = result.trials[0]
    health = trial.health.model_copy(
        update={"generator_saturated": saturated, "warnings": warnings}
    )
    trial = trial.model_copy(update={"health": health})
    return result.model_copy(update={"trials": [trial], "total": trial})


def _summary(result: RunResult) -> str:
    console = Console(record=True, width=400, color_system=None)
    render_summary(result, console)
    return console.export_text()


SATURATED = (
    "generator saturated: the load generator limited the measurement (CPU above 90% of a core, "
    "event-loop lag p99 above 100 ms, open-loop send lag p99 above 20 ms, or arrivals dropped "
    "or reached late); these figures measure this machine as much as the client"
)


def test_a_saturated_generator_is_the_first_health_line() -> None:
    result = _with_health(True, ["sends fell behind"])
    assert result.total is not None
    assert health_lines(result.total) == [SATURATED, "sends fell behind"]
    text = _summary(result)
    assert "Measurement health:" in text
    assert f"• {SATURATED}" in text
    assert text.index("generator saturated") < text.index("sends fell behind")


def test_saturation_alone_shows_the_health_block_and_a_healthy_run_shows_none() -> None:
    saturated = _with_health(True, [])
    assert "Measurement health:" in _summary(saturated) and SATURATED in _summary(saturated)
    healthy = _summary(_with_health(False, []))
    assert "Measurement health:" not in healthy and "generator saturated" not in healthy
    assert "generator saturated" not in _summary(_with_health(False, ["sends fell behind"]))
