"""The measurement session on virtual time with a fake client: what it passes to each trial,
what it caches, and the results it builds. No server, no sleeps (the mock is in
``test_session_mock.py``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import harborbench.engine.session as session_module
from harborbench.engine.clock import LoopClock
from harborbench.engine.progress import Progress
from harborbench.engine.runner import plan_from_profile
from harborbench.engine.session import MeasurementSession, Target
from harborbench.errors import ProfileError, TargetUnreachableError
from harborbench.harborai import errors as hx
from harborbench.result import IntervalRow, TrialResult
from tests.engine.virtual import FakeClient, after, profile

pytestmark = pytest.mark.looptime

STAND_IN = Target("http://stand-in.invalid/v1")  # never contacted: the client is a fake
ENVIRONMENT = {"machine": "test"}


def session(prof: Any, client: FakeClient, **kw: Any) -> MeasurementSession:
    kw.setdefault("environment", ENVIRONMENT)
    return MeasurementSession(prof, target=STAND_IN, client=client, clock=LoopClock(), **kw)


async def test_trials_run_the_injected_client_on_the_injected_clock() -> None:
    prof = profile({"concurrency": 4})
    client = FakeClient(after(0.3))
    async with session(prof, client) as s:
        trials = [await s.trial(prof, index=i) for i in range(2)]
    # Per trial: 4 workers x 33 rounds of 300 ms in the 10 s window, the 34th in flight.
    assert [(t.index, t.successes, t.failures, t.in_flight_at_end) for t in trials] == [
        (0, 132, 0, 4),
        (1, 132, 0, 4),
    ]
    assert client.calls == 2 * 4 * 34
    assert client.closed is False  # an injected client belongs to the caller
    result = s.result(prof, trials, interrupted=False)
    total = result.total
    assert total is not None
    assert (result.name, result.environment, result.interrupted) == ("virtual", ENVIRONMENT, False)
    assert [t.index for t in result.trials] == [0, 1]
    assert total.successes == 264
    assert total.window_s == pytest.approx(20.0)
    assert total.throughput_ops == pytest.approx(13.2)
    renamed = s.result(prof, trials[:1], interrupted=True, name="other")
    assert (renamed.name, renamed.interrupted, len(renamed.trials)) == ("other", True, 1)


async def test_stop_progress_and_rows_reach_the_trial() -> None:
    prof = profile({"rate": 10})
    seen: list[Progress] = []
    rows: list[list[IntervalRow]] = []
    stop = asyncio.Event()
    async with session(prof, FakeClient(after(0.01))) as s:
        whole = await s.trial(prof, index=0, progress=seen.append, on_rows=rows.append)
        asyncio.get_running_loop().call_later(3.0, stop.set)
        cut = await s.trial(prof, index=1, stop=stop)
    # One report per second of the 10 s window (the last second is closed by the trial itself).
    assert [p.elapsed_s for p in seen] == pytest.approx([float(j) for j in range(10)])
    assert len(rows) == 10
    assert (whole.interrupted, whole.successes) == (False, 100)
    assert cut.interrupted
    assert cut.window_s == pytest.approx(3.0)
    assert cut.successes == 30


async def test_the_plan_is_computed_once_per_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    real = plan_from_profile

    def counting(p: Any) -> Any:
        made.append(p.name)
        return real(p)

    monkeypatch.setattr(session_module, "plan_from_profile", counting)
    a = profile({"rate": 10}, duration="2s")
    b = profile({"rate": 20}, duration="2s", name="b")
    async with session(a, FakeClient(after(0.01))) as s:
        ta = [await s.trial(a, index=i) for i in range(3)]
        tb = await s.trial(b, index=0)
    assert made == ["virtual", "b"]
    with pytest.raises(RuntimeError, match="entered once"):
        async with s:
            pytest.fail("entered twice")
    assert s.plan(a) is s.plan(a)
    assert [t.successes for t in ta] == [20, 20, 20]
    assert tb.successes == 40  # b's own plan, not a's


async def test_the_environment_is_collected_once_when_entered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    def collect() -> dict[str, Any]:
        calls.append(1)
        return {"collected": len(calls)}

    monkeypatch.setattr(session_module, "collect_environment", collect)
    prof = profile({"rate": 10}, duration="1s")
    s = session(prof, FakeClient(after(0.01)), environment=None)
    with pytest.raises(RuntimeError, match="enter the MeasurementSession"):
        _ = s.environment
    async with s:
        trials = [await s.trial(prof, index=i) for i in range(2)]
        first = s.result(prof, trials[:1], interrupted=False)
    second = s.result(prof, trials, interrupted=False)
    assert calls == [1]
    assert first.environment == second.environment == {"collected": 1}


async def test_interleaved_judges_memory_growth_by_the_worst_single_trial() -> None:
    prof = profile({"rate": 10}, duration="1s")
    async with session(prof, FakeClient(after(0.01))) as s:
        raw = [await s.trial(prof, index=i) for i in range(2)]

    def flat_at(t: TrialResult, rss: int) -> TrialResult:
        memory = t.memory.model_copy(
            update={"rss_start_bytes": rss, "rss_end_bytes": rss, "growth_pct": 0.0}
        )
        return t.model_copy(update={"memory": memory})

    # Each trial flat, the second 50% above the first (another run's memory in between).
    trials = [flat_at(raw[0], 100_000_000), flat_at(raw[1], 150_000_000)]
    apart = s.result(prof, trials, interrupted=False).total
    together = s.result(prof, trials, interrupted=False, interleaved=True).total
    assert apart is not None and together is not None
    assert apart.memory.growth_pct == pytest.approx(50.0)
    assert together.memory.growth_pct == 0.0


async def test_a_run_with_no_success_is_refused_unless_interrupted() -> None:
    async def refused(i: int) -> Any:
        await asyncio.sleep(0.01)
        raise hx.APIConnectionError("connection refused")

    prof = profile({"rate": 10}, duration="2s")
    async with session(prof, FakeClient(refused)) as s:
        trial = await s.trial(prof, index=0)
    assert (trial.successes, trial.failures_by_kind) == (0, {"connection": 20})
    with pytest.raises(TargetUnreachableError) as caught:
        s.check_succeeded(s.result(prof, [trial], interrupted=False))
    assert caught.value.hint == "Is the target at http://stand-in.invalid/v1 up?"
    s.check_succeeded(s.result(prof, [trial], interrupted=True))  # a partial run is kept
    s.check_succeeded(s.result(prof, [], interrupted=False))  # no trial: nothing to judge


async def test_a_target_it_cannot_open_fails_on_entering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARBORBENCH_TEST_NO_SUCH_KEY", raising=False)
    prof = profile(
        {"rate": 10},
        target={"base_url": "http://127.0.0.1:9/v1", "api_key_env": "HARBORBENCH_TEST_NO_SUCH_KEY"},
    )
    s = MeasurementSession(prof, environment=ENVIRONMENT)
    with pytest.raises(ProfileError, match="HARBORBENCH_TEST_NO_SUCH_KEY"):
        async with s:
            pytest.fail("entered")
    with pytest.raises(RuntimeError, match="enter the MeasurementSession"):
        await s.trial(prof, index=0)
