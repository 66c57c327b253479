"""The measurement session on virtual time with a fake client: what it passes to each trial,
what it caches, and the results it builds. No server, no sleeps (the mock is in
``test_session_mock.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import traceback
from collections.abc import Iterator
from types import SimpleNamespace
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
    with pytest.raises(
        RuntimeError, match=r"^a MeasurementSession is entered once; make a new one$"
    ):
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


async def test_memory_between_interleaved_trials_is_not_counted() -> None:
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
    total = s.result(prof, trials, interrupted=False).total
    assert total is not None
    assert total.memory.growth_pct == 0.0
    assert total.memory.rss_end_bytes == 150_000_000


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


# What the session hands on: the target it opened, the trial's hooks, and the exit arguments. The
# target is a stand-in context manager (no process) that records how it was closed.


class RecordingTarget:
    """A stand-in for ``runner.open_target``: what it was opened for and how it was closed."""

    URL = "http://opened.invalid/v1"
    KEY = "sk-recorded"

    def __init__(self) -> None:
        self.server = object()  # stands for the mock's MockServer: passed on, never used
        self.opened: list[Any] = []
        self.closed_by: list[BaseException | None] = []

    @contextlib.contextmanager
    def __call__(self, prof: Any) -> Iterator[tuple[str, str, Any]]:
        self.opened.append(prof)
        try:
            yield self.URL, self.KEY, self.server
        except BaseException as exc:
            self.closed_by.append(exc)
            raise
        self.closed_by.append(None)


def raise_in_body(error: BaseException) -> None:
    raise error


async def test_entering_opens_the_profiles_target_and_leaving_closes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opener = RecordingTarget()
    monkeypatch.setattr(session_module, "open_target", opener)
    prof = profile({"rate": 10})
    s = MeasurementSession(prof, environment=ENVIRONMENT)
    async with s:
        assert s.target == Target(opener.URL, opener.KEY, opener.server)  # type: ignore[arg-type]
        assert opener.closed_by == []
    assert opener.opened == [prof]
    assert opener.closed_by == [None]  # closed once, with no error


async def test_an_error_in_the_body_reaches_the_target_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opener = RecordingTarget()
    monkeypatch.setattr(session_module, "open_target", opener)
    error = ValueError("in the body")
    with pytest.raises(ValueError) as caught:
        async with MeasurementSession(profile({"rate": 10}), environment=ENVIRONMENT):
            raise_in_body(error)
    assert caught.value is error
    assert len(opener.closed_by) == 1 and opener.closed_by[0] is error  # the same exception
    # Its traceback still ends where it was raised (the exit arguments were passed whole).
    assert traceback.extract_tb(error.__traceback__)[-1].name == "raise_in_body"


async def test_entering_preloads_scipy_in_a_daemon_thread_and_waits_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    imported: list[tuple[str, str, bool, bool]] = []

    def import_module(name: str) -> None:
        thread = threading.current_thread()
        time.sleep(0.05)  # a slow import: entering must wait for it
        imported.append((name, thread.name, thread.daemon, thread is threading.main_thread()))

    monkeypatch.setattr(session_module, "importlib", SimpleNamespace(import_module=import_module))
    async with session(profile({"rate": 10}), FakeClient(after(0.01))):
        assert imported == [("scipy.stats", "preload", True, False)]


@pytest.mark.looptime(False)  # a real thread blocks: let the loop wait for it in real time
async def test_a_cancel_while_entering_closes_the_opened_target_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opener = RecordingTarget()
    monkeypatch.setattr(session_module, "open_target", opener)
    release = threading.Event()
    monkeypatch.setattr(
        session_module, "importlib", SimpleNamespace(import_module=lambda name: release.wait(10))
    )
    raised: list[BaseException] = []

    async def enter() -> None:
        try:
            async with MeasurementSession(profile({"rate": 10}), environment=ENVIRONMENT):
                pytest.fail("entered")
        except asyncio.CancelledError as exc:  # Ctrl-C while the import is still running
            raised.append(exc)
            raise

    task = asyncio.create_task(enter())
    while not opener.opened:
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.01)  # now waiting for the import
    task.cancel()
    try:
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        release.set()
    assert len(raised) == 1 and len(opener.closed_by) == 1
    assert opener.closed_by[0] is raised[0]  # closed at once, with the cancellation itself
    # Its traceback still ends in the wait it interrupted (the exit arguments were passed whole).
    assert traceback.extract_tb(raised[0].__traceback__)[-1].name == "to_thread"


async def test_a_trial_gets_the_target_the_plan_the_hooks_the_clock_and_the_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opener = RecordingTarget()
    monkeypatch.setattr(session_module, "open_target", opener)
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    sentinel = object()

    async def run_trial(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return sentinel

    monkeypatch.setattr(session_module, "run_trial", run_trial)
    prof = profile({"rate": 10})
    other = profile({"rate": 20}, name="other")
    client, clock, stop = FakeClient(after(0.01)), LoopClock(), asyncio.Event()

    def progress(p: Progress) -> None: ...

    def on_rows(rows: list[IntervalRow]) -> None: ...

    s = MeasurementSession(prof, environment=ENVIRONMENT, client=client, clock=clock)
    async with s:
        got = await s.trial(other, index=3, stop=stop, progress=progress, on_rows=on_rows)
        await s.trial(prof, index=0)
    assert got is sentinel
    (args, kwargs), (_, defaults) = calls
    assert args == (other, s.plan(other), opener.URL, opener.KEY)
    assert s.plan(other) == plan_from_profile(other) != plan_from_profile(prof)
    assert kwargs == {
        "index": 3,
        "server": opener.server,
        "progress": progress,
        "stop": stop,
        "clock": clock,
        "client": client,
        "on_rows": on_rows,
    }
    assert defaults == {
        "index": 0,
        "server": opener.server,
        "progress": None,
        "stop": None,
        "clock": clock,
        "client": client,
        "on_rows": None,
    }
