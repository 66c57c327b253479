"""Tests of the rollback matrix, the smoke check of one path, and the gate settings."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harborbench.errors import UserInputError
from harborbench.harborai import create_fast_client
from harborbench.harborai.config import DISABLE_ENV_VAR
from harborbench.mockserver.process import MockServer
from harborbench.rollback import (
    COMPONENTS,
    OPTIMIZED_CONFIG,
    ROLLBACK_PATHS,
    CheckRow,
    SmokeSettings,
    check_status,
    mock_settings,
    overall,
    path_environment,
    smoke_path,
)
from harborbench.rollback.gates import (
    DEFAULT_ABSOLUTE,
    gate_settings,
    load_gates_file,
)

UNREACHABLE = {"base_url": "http://127.0.0.1:1/v1", "api_key": "x"}


def _status(config: dict[str, Any], env: str | None) -> dict[str, Any]:
    with path_environment(env):
        client = create_fast_client({**config, **UNREACHABLE})
    try:
        return client.optimization_status()
    finally:
        client.close()


# --- the matrix ---------------------------------------------------------------------------


def test_matrix_lists_the_nine_paths_of_the_issue_in_order() -> None:
    assert [p.number for p in ROLLBACK_PATHS] == list(range(1, 10))
    assert len({p.key for p in ROLLBACK_PATHS}) == 9
    assert [p.expected.mode for p in ROLLBACK_PATHS] == [
        "optimized", "traditional", "traditional", "optimized", "optimized", "optimized",
        "traditional", "traditional", "optimized",
    ]  # fmt: skip
    assert [p.env for p in ROLLBACK_PATHS] == [None, None, "true"] + [None] * 6
    inactive = [set(COMPONENTS) - p.expected.active for p in ROLLBACK_PATHS]
    assert inactive[3] == {"lockfree_plugin_manager"}
    assert inactive[4] == {"optimized_connection_pool"}
    assert inactive[5] == {"async_request_processor"}
    assert ROLLBACK_PATHS[7].expected.max_concurrent_requests == 10
    assert ROLLBACK_PATHS[7].expected.connection_pool_size == 5
    assert ROLLBACK_PATHS[8].expected.memory_optimization is False


@pytest.mark.parametrize("path", ROLLBACK_PATHS, ids=[p.key for p in ROLLBACK_PATHS])
def test_real_client_status_matches_the_table(path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A variable set by the caller must not leak into paths that do not test it.
    monkeypatch.setenv(DISABLE_ENV_VAR, "true")
    status = _status(dict(path.config), path.env)
    assert check_status(status, path.expected) == []


def test_check_status_names_every_difference() -> None:
    status = _status(OPTIMIZED_CONFIG, None)
    problems = check_status(status, ROLLBACK_PATHS[2].expected)  # env path: traditional
    assert problems[0] == "mode is 'optimized', expected 'traditional'"
    assert problems[1] == (
        "mode_reason 'concurrency optimization enabled (default)' does not mention "
        f"'disabled by {DISABLE_ENV_VAR}'"
    )
    assert len(problems) == 2 + len(COMPONENTS)
    assert all("active=True, expected False" in p for p in problems[2:])


def test_check_status_refuses_a_status_with_missing_parts() -> None:
    problems = check_status({"mode": "optimized"}, ROLLBACK_PATHS[0].expected)
    assert "components lists [], expected" in problems[1]
    assert "lazy_loading.enabled is None, expected True" in problems
    assert "max_concurrent_requests is None, expected 100" in problems


def test_path_environment_sets_removes_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv(DISABLE_ENV_VAR, "false")
    with path_environment("true"):
        assert os.environ[DISABLE_ENV_VAR] == "true"
    assert os.environ[DISABLE_ENV_VAR] == "false"
    with path_environment(None):
        assert DISABLE_ENV_VAR not in os.environ
    assert os.environ[DISABLE_ENV_VAR] == "false"
    monkeypatch.delenv(DISABLE_ENV_VAR)
    with pytest.raises(RuntimeError), path_environment("true"):
        raise RuntimeError("boom")
    assert DISABLE_ENV_VAR not in os.environ


def _row(verdict: str) -> CheckRow:
    return CheckRow(kind="gate", key="k", name="n", expected="e", observed="o",
                    verdict=verdict, problem=None, details={})  # type: ignore[arg-type]  # fmt: skip


def test_overall_verdict_and_exit_code() -> None:
    assert overall([_row("pass"), _row("pass")]) == ("pass", 0)
    assert overall([_row("pass"), _row("inconclusive")]) == ("inconclusive", 3)
    assert overall([_row("inconclusive"), _row("fail")]) == ("fail", 1)


# --- gate settings --------------------------------------------------------------------------


def test_gate_settings_defaults_file_then_flags(tmp_path: Path) -> None:
    default = gate_settings()
    assert default.absolute == DEFAULT_ABSOLUTE
    assert default.absolute.memory_slope_max_mb_per_min is None
    assert (default.throughput_ratio_min, default.cpu_efficiency_gain_min_pct) == (0.8, 30.0)
    f = tmp_path / "gates.yaml"
    f.write_text("throughput_min: 800\np95_max: 250ms\ncpu_efficiency_gain_min_pct: 20\n"
                 "error_rate_max: null\n")  # fmt: skip
    settings = gate_settings(load_gates_file(f), throughput_min=900.0, p95_max=None)
    assert settings.absolute.throughput_min == 900.0
    assert settings.absolute.p95_max == 0.25
    assert settings.absolute.error_rate_max is None
    assert settings.absolute.success_rate_min == 0.95
    assert settings.cpu_efficiency_gain_min_pct == 20.0
    assert settings.throughput_ratio_min == 0.8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("throughput_mni: 800\n", "gates.yaml:1: throughput_mni"),
        ("p95_max: on\n", "gates.yaml:1"),
        ("- 1\n- 2\n", "it must be a mapping"),
        ("p95_max: 200\n", "gates.yaml:1: p95_max"),
    ],
)
def test_load_gates_file_errors_name_file_line_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    f = tmp_path / "gates.yaml"
    f.write_text(text)
    with pytest.raises(UserInputError) as info:
        load_gates_file(f)
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_load_gates_file_missing(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="no such file"):
        load_gates_file(tmp_path / "nope.yaml")


# --- the smoke check against a real mock server ---------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(mock_settings()) as s:
        yield s


FAST = SmokeSettings(duration_s=0.2, extra_workers=2)


async def _smoke(server: MockServer, number: int, factory: Any, **kw: Any) -> Any:
    return await smoke_path(
        ROLLBACK_PATHS[number - 1], base_url=server.base_url, api_key="k", server=server,
        settings=kw.pop("settings", FAST), reference=kw.pop("reference", None), factory=factory,
    )  # fmt: skip


async def test_smoke_real_client_basic_mode_passes_and_respects_its_limit(
    server: MockServer,
) -> None:
    outcome = await _smoke(server, 8, create_fast_client)
    row = outcome.row
    assert row.verdict == "pass", row.problem
    assert row.problem is None
    assert row.details["failures"] == 0
    assert row.details["offered_concurrency"] == 12
    assert row.details["server_max_in_flight"] <= 10
    assert row.details["server_requests_total"] == row.details["successes"] + 1  # + the stream
    assert outcome.reference is not None
    assert outcome.reference.completion_tokens == 32


class _Wrapper:
    """A client double around the real client, broken in one chosen way."""

    def __init__(self, inner: Any, *, content: str | None = None, leak: bool = False) -> None:
        self.inner = inner
        self.content = content
        self.chat = SimpleNamespace(completions=self)
        self.leaked: asyncio.Task[bool] | None = None
        self.leak = leak

    async def acreate(self, **kw: Any) -> Any:
        if self.leak and self.leaked is None:
            self.leaked = asyncio.create_task(asyncio.Event().wait(), name="leaky-double")
        response = await self.inner.chat.completions.acreate(**kw)
        if self.content is None or kw.get("stream"):
            return response
        message = SimpleNamespace(content=self.content)
        choice = SimpleNamespace(message=message, finish_reason=response.choices[0].finish_reason)
        return SimpleNamespace(model=response.model, choices=[choice], usage=response.usage)

    def optimization_status(self) -> dict[str, Any]:
        return self.inner.optimization_status()  # type: ignore[no-any-return]

    def get_statistics(self) -> dict[str, Any]:
        return self.inner.get_statistics()  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_smoke_detects_content_that_differs_from_the_reference(server: MockServer) -> None:
    ref = (await _smoke(server, 1, create_fast_client)).reference
    outcome = await _smoke(
        server, 9, lambda c: _Wrapper(create_fast_client(c), content="other"), reference=ref
    )
    assert outcome.row.verdict == "fail"
    assert outcome.row.details["mismatches"] == outcome.row.details["successes"] > 0
    assert "responses differ from the reference (response_type 'SimpleNamespace'" in (
        outcome.row.problem or ""
    )


async def test_smoke_detects_a_leaked_task(server: MockServer) -> None:
    doubles: list[_Wrapper] = []

    def factory(config: dict[str, Any]) -> _Wrapper:
        doubles.append(_Wrapper(create_fast_client(config), leak=True))
        return doubles[-1]

    outcome = await _smoke(server, 1, factory)
    leaked = doubles[0].leaked
    assert leaked is not None
    leaked.cancel()
    await asyncio.gather(leaked, return_exceptions=True)
    assert outcome.row.verdict == "fail"
    assert outcome.row.problem == "1 asyncio task(s) still running after aclose(): leaky-double"


async def test_smoke_detects_a_limit_not_enforced(server: MockServer) -> None:
    def factory(config: dict[str, Any]) -> _Wrapper:
        wrapper = _Wrapper(create_fast_client({**config, "max_concurrent_requests": 40}))
        real = wrapper.inner.optimization_status

        def status() -> dict[str, Any]:  # claims the configured limit, does not enforce it
            return {**real(), "max_concurrent_requests": 10}

        wrapper.optimization_status = status  # type: ignore[method-assign]
        return wrapper

    wide = SmokeSettings(duration_s=0.3, extra_workers=30)
    outcome = await _smoke(server, 8, factory, settings=wide)
    assert outcome.row.verdict == "fail"
    assert outcome.row.details["server_max_in_flight"] > 10
    assert "over max_concurrent_requests=10" in (outcome.row.problem or "")


async def test_smoke_reports_a_client_that_cannot_be_built(server: MockServer) -> None:
    def factory(config: dict[str, Any]) -> Any:
        raise ValueError("no such key")

    outcome = await _smoke(server, 2, factory)
    assert outcome.row.verdict == "fail"
    assert outcome.row.problem is not None
    assert outcome.row.problem.startswith(
        "the client could not be built: ValueError: no such key; no request succeeded"
    )
    assert outcome.row.observed.startswith("no status (client not built)")
