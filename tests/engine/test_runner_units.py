"""The runner's pure parts, without a target: the plan and client config from a profile, the
backlog bound, the result's assembly and redaction, and the error when nothing succeeded."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace
from typing import Any

import pytest

from harborbench import __version__
from harborbench.engine import runner
from harborbench.engine.clock import Clock, LoopClock
from harborbench.engine.recorder import Recorder
from harborbench.engine.redaction import REDACTED
from harborbench.engine.runner import (
    DEFAULT_CLIENT_LIMIT,
    MOCK_API_KEY,
    as_sentences,
    build_result,
    check_target_reachable,
    client_config,
    max_outstanding,
    plan_from_profile,
    redacted_profile,
    request_factory,
    resolve_headers,
)
from harborbench.engine.schedule import Step, build_plan
from harborbench.errors import (
    AllRequestsFailedError,
    ProfileError,
    TargetUnreachableError,
)
from harborbench.harborai.config import DISABLE_ENV_VAR
from harborbench.metrics.resources import ResourceSample
from harborbench.result import (
    METRIC_DEFINITIONS,
    PLAN_BASELINE_OPS,
    PLAN_TARGET_OPS,
    SCHEMA_VERSION,
)
from tests.compare.test_compare import make_trial
from tests.engine.virtual import profile


def test_plan_of_a_closed_loop_profile() -> None:
    plan = plan_from_profile(profile({"concurrency": 8}, warmup="2s", duration="5s", seed=3))
    assert (plan.kind, plan.warmup_s, plan.seed) == ("closed", 2.0, 3)
    assert plan.steps == (Step(0.0, 2.0, concurrency=8), Step(2.0, 5.0, concurrency=8))


def test_plan_of_an_open_loop_profile() -> None:
    plan = plan_from_profile(profile({"rate": 50, "arrival": "poisson"}, duration="4s"))
    assert (plan.kind, plan.arrival) == ("open", "poisson")
    assert plan.steps == (Step(0.0, 4.0, rate_ops=50.0),)


def test_plan_of_staged_profiles() -> None:
    open_ = plan_from_profile(profile(
        {"stages": [{"duration": "2s", "rate": 10}, {"duration": "3s", "rate": 30}]}, duration="5s"
    ))  # fmt: skip
    assert open_.kind == "open"
    assert open_.steps == (Step(0.0, 2.0, rate_ops=10.0), Step(2.0, 3.0, rate_ops=30.0))
    closed = plan_from_profile(profile(
        {"stages": [{"duration": "1s", "concurrency": 2}, {"duration": "1s", "concurrency": 6}]},
        duration="2s",
    ))  # fmt: skip
    assert closed.kind == "closed"
    assert closed.steps == (Step(0.0, 1.0, concurrency=2), Step(1.0, 1.0, concurrency=6))


def test_max_outstanding_is_the_profiles_or_four_times_the_client_limit() -> None:
    assert max_outstanding(profile({"rate": 10, "max_outstanding": 7}), {}) == 7
    prof = profile({"rate": 10})
    assert max_outstanding(prof, {"max_concurrent_requests": 25}) == 100
    assert max_outstanding(prof, {"max_concurrent_requests": 1}) == 4
    for bad in (0, -3, "25", None):
        assert max_outstanding(prof, {"max_concurrent_requests": bad}) == 4 * DEFAULT_CLIENT_LIMIT
    assert max_outstanding(prof, {}) == 400


def test_client_config_adds_the_target_timeout_and_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HB_UNIT_TOKEN", "value-from-env")
    prof = profile(
        {"concurrency": 1},
        client={"max_concurrent_requests": 9},
        request={"prompt_tokens": 4, "max_tokens": 4, "timeout": "7s",
                 "headers": {"X-Lit": "lit", "X-Env": {"env": "HB_UNIT_TOKEN"}}},
    )  # fmt: skip
    config = client_config(prof, "http://127.0.0.1:1/v1", "key").model_dump(exclude_unset=True)
    assert config == {
        "max_concurrent_requests": 9, "base_url": "http://127.0.0.1:1/v1", "api_key": "key",
        "timeout_s": 7.0, "default_headers": {"X-Lit": "lit", "X-Env": "value-from-env"},
    }  # fmt: skip
    # the profile's own config is not changed
    assert prof.client.model_dump(exclude_unset=True) == {"max_concurrent_requests": 9}
    bare = client_config(profile({"concurrency": 1}), "http://h/v1", None)  # request.timeout 10s
    assert bare.model_dump(exclude_unset=True) == {"timeout_s": 10.0, "base_url": "http://h/v1"}


def test_a_header_from_an_unset_variable_is_a_profile_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HB_UNIT_MISSING", raising=False)
    prof = profile({"concurrency": 1}, request={
        "prompt_tokens": 4, "max_tokens": 4, "headers": {"X-Token": {"env": "HB_UNIT_MISSING"}},
    })  # fmt: skip
    with pytest.raises(ProfileError) as err:
        resolve_headers(prof)
    assert err.value.message == (
        "request.headers.X-Token reads the environment variable 'HB_UNIT_MISSING', which "
        "is not set."
    )
    assert err.value.hint == "Export HB_UNIT_MISSING=<value> and run again."
    monkeypatch.setenv("HB_UNIT_MISSING", "")
    with pytest.raises(ProfileError):
        resolve_headers(prof)


def test_redacted_profile_keeps_variable_names_and_hides_literal_values() -> None:
    prof = profile({"concurrency": 1}, request={
        "prompt_tokens": 4, "max_tokens": 4,
        "headers": {"X-Lit": "secret-literal", "X-Env": {"env": "HB_NAME"}},
    })  # fmt: skip
    data = redacted_profile(prof)
    assert data["request"]["headers"] == {"X-Lit": REDACTED, "X-Env": {"env": "HB_NAME"}}
    assert REDACTED == "<redacted>"
    assert data["name"] == "virtual" and data["load"]["concurrency"] == 1
    assert redacted_profile(profile({"concurrency": 1}))["request"]["headers"] == {}
    mock = redacted_profile(profile({"concurrency": 1}, target={"mock": {}}))
    assert mock["target"]["mock"]["models"] == ["harbor-mock"]  # JSON data: lists, not tuples


def test_build_result_merges_the_trials_and_judges_the_gates() -> None:
    prof = profile({"concurrency": 1}, gates={"throughput_min": 15})
    a, b = make_trial(0, [10, 10]), make_trial(1, [20, 20], seed=1)
    result = build_result(prof, "run-name", [a, b], {"os": "x"}, interrupted=True)
    assert (result.name, result.environment, result.interrupted) == ("run-name", {"os": "x"}, True)
    assert result.schema_version == SCHEMA_VERSION
    assert result.trials == [a, b]
    assert result.total is not None and result.total.successes == 60
    assert result.total.throughput_ops == 15.0
    assert [(g.name, g.verdict) for g in result.gates] == [("throughput", "pass")]
    assert result.profile == redacted_profile(prof)
    assert result.reference == {
        "plan_baseline_ops": PLAN_BASELINE_OPS, "plan_target_ops": PLAN_TARGET_OPS,
    }  # fmt: skip
    assert result.metric_definitions == METRIC_DEFINITIONS
    assert result.harborbench_version == __version__
    assert result.created_at.endswith("+00:00")
    empty = build_result(prof, "none", [], {}, interrupted=False)
    assert (empty.total, empty.gates, empty.interrupted) == (None, [], False)
    # an interrupted run did not measure all it planned: never "complete"
    assert (result.status, empty.status) == ("incomplete", "complete")
    assert result.lost_shards == []


def test_build_result_merges_the_trials_memory() -> None:
    prof = profile({"concurrency": 1})
    a = make_trial(0, [10], growth_pct=5.0)
    b = make_trial(1, [10], growth_pct=9.0)
    b = b.model_copy(update={"memory": b.memory.model_copy(update={
        "rss_start_bytes": 100_000_000, "rss_end_bytes": 109_000_000})})  # fmt: skip
    total = build_result(prof, "x", [a, b], {}, interrupted=False).total
    assert total is not None
    start = a.memory.rss_start_bytes
    grown = a.memory.rss_end_bytes - start + 9_000_000
    assert total.memory.growth_pct == pytest.approx(100 * grown / start)
    assert total.memory.reason.startswith("over 2 trials RSS grew")


def test_sentences_get_a_capital_and_one_full_stop() -> None:
    assert as_sentences(["one clause", "done.", "really?", "wow!", "", "x"]) == (
        "One clause. Done. Really? Wow! X."
    )
    assert as_sentences([]) == ""


def silent(failures: dict[str, int], *, in_flight: int = 0, window: int = 2) -> Any:
    trial = make_trial(0, [0] * window)
    n = sum(failures.values())
    return trial.model_copy(update={
        "failures": n, "failures_by_kind": failures, "in_flight_at_end": in_flight,
        "failure_examples": {k: f"example of {k}" for k in failures},
    })  # fmt: skip


def test_failures_of_connection_or_timeout_only_mean_an_unreachable_target() -> None:
    err = runner._nothing_succeeded(silent({"connection": 3, "timeout": 1}), "http://h:1/v1")
    assert isinstance(err, TargetUnreachableError)
    assert err.message == (
        "every measured request failed (connection x3, timeout x1); first error: example of "
        "connection"
    )
    assert err.hint == "Is the target at http://h:1/v1 up?"
    only_timeouts = runner._nothing_succeeded(silent({"timeout": 2}), "http://h:1/v1")
    assert isinstance(only_timeouts, TargetUnreachableError)


def test_other_failures_are_all_requests_failed() -> None:
    err = runner._nothing_succeeded(silent({"http_500": 2, "connection": 1}), "http://h/v1")
    assert type(err) is AllRequestsFailedError
    assert err.message == (
        "every measured request failed (http_500 x2, connection x1); first error: example of "
        "http_500"
    )
    assert err.hint is None


def test_404s_from_a_base_url_without_v1_name_the_fix() -> None:
    err = runner._nothing_succeeded(silent({"http_404": 4}), "http://h:8/api/")
    assert type(err) is AllRequestsFailedError
    assert err.message == (
        "every measured request failed (http_404 x4); first error: example of http_404."
    )
    assert err.hint == (
        "The target answered 404 Not Found, and an OpenAI-compatible API is served under /v1: "
        "set target.base_url to http://h:8/api/v1."
    )
    with_v1 = runner._nothing_succeeded(silent({"http_404": 4}), "http://h:8/v1/")
    assert type(with_v1) is AllRequestsFailedError and with_v1.hint is None


def test_nothing_completed_says_how_many_were_in_flight() -> None:
    err = runner._nothing_succeeded(silent({}, in_flight=3, window=5), "http://h/v1")
    assert type(err) is AllRequestsFailedError
    assert err.message == (
        "no request completed inside the 5.0 s window (3 sent in it were still in flight at "
        "its end)."
    )
    assert err.hint == "Lower the load or lengthen the duration; check the target's latency."
    nothing_sent = runner._nothing_succeeded(silent({}, in_flight=0), "http://h/v1")
    assert nothing_sent.message.startswith("no request was sent inside the 2.0 s window: ")
    assert nothing_sent.message.endswith("so nothing was measured.")


def test_an_unreachable_target_is_refused_before_measuring() -> None:
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TargetUnreachableError) as err:
        check_target_reachable(f"http://127.0.0.1:{port}/v1", timeout_s=1.0)
    assert err.value.message == (
        f"cannot connect to the target 127.0.0.1:{port} (Connection refused)."
    )
    assert err.value.hint == "Start the server, or fix target.base_url in the profile."
    for bad in ("ftp://h/v1", "127.0.0.1:8000/v1", "http:///v1"):
        with pytest.raises(ProfileError) as perr:
            check_target_reachable(bad)
        assert perr.value.message == f"target.base_url {bad!r} is not an http(s) URL."
        assert perr.value.hint == "Write it like https://api.example.com/v1."


def test_a_listening_target_is_reachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        check_target_reachable(f"http://127.0.0.1:{port}/v1", timeout_s=1.0)
        check_target_reachable(f"https://127.0.0.1:{port}/v1", timeout_s=1.0)


def test_the_default_ports_are_80_and_443(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, float]] = []

    class Conn:
        def __enter__(self) -> Conn:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    def connect(address: Any, timeout: float) -> Conn:
        seen.append((address, timeout))
        return Conn()

    monkeypatch.setattr(socket, "create_connection", connect)  # the module runner uses
    check_target_reachable("http://example.invalid/v1")
    check_target_reachable("https://example.invalid/v1", timeout_s=2.0)
    assert seen == [(("example.invalid", 80), 3.0), (("example.invalid", 443), 2.0)]


def test_request_factory_takes_the_stripe() -> None:
    prof = profile({"concurrency": 1})
    assert request_factory(prof).next_params() == request_factory(prof, (0, 1)).next_params()
    f = request_factory(prof, (1, 3))
    first = f.next_params()["messages"][0]["content"]
    g = request_factory(prof)
    g.next_params()
    assert g.next_params()["messages"][0]["content"] == first


def test_first_error_unwraps_nested_groups() -> None:
    inner = ValueError("the bug")
    group = BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [inner]), KeyError("k")])
    assert runner._first_error(group) is inner
    flat = BaseExceptionGroup("g", [KeyError("first"), inner])
    assert isinstance(runner._first_error(flat), KeyError)


async def test_cancel_all_cancels_and_waits() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    pending = {asyncio.create_task(forever()), asyncio.create_task(forever())}
    await started.wait()
    await runner._cancel_all(pending)
    assert all(t.cancelled() for t in pending)
    await runner._cancel_all(set())


def test_the_mock_key_is_not_a_secret() -> None:
    assert MOCK_API_KEY == "harborbench-mock-key"


def test_plan_of_a_trace_profile_and_of_one_stage(tmp_path: Any) -> None:
    import json

    trace = tmp_path / "t.jsonl"
    rows = [{"timestamp": ms, "input_length": 1, "output_length": 1} for ms in (0, 400, 1500)]
    trace.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    prof = profile({"trace": str(trace)}, warmup="1s", duration="2s", request={"max_tokens": 4})
    plan = plan_from_profile(prof)
    assert (plan.kind, plan.warmup_s, plan.window_s) == ("open", 1.0, 2.0)
    assert plan.offsets_ns is not None
    assert plan.offsets_ns.tolist() == [0, 400_000_000, 1_500_000_000]
    params = request_factory(prof).next_params()
    assert params["max_tokens"] == 1  # the trace's output length, not request.max_tokens
    one = plan_from_profile(profile({"stages": [{"duration": "2s", "rate": 10}]}, duration="2s"))
    assert one.kind == "open" and one.steps == (Step(0.0, 2.0, rate_ops=10.0),)


@pytest.mark.looptime
async def test_the_window_waits_for_a_slow_clock() -> None:
    """A clock running at half the loop's speed: the wait wakes early and goes on waiting."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    clock = Clock(lambda: round((loop.time() - t0) * 1e9 / 2))
    assert await runner._wait_window(100_000_000, None, clock) is False
    assert clock.now_ns() >= 100_000_000
    stop = asyncio.Event()
    assert await runner._wait_window(200_000_000, stop, clock) is False
    assert clock.now_ns() >= 200_000_000


def test_the_failure_message_in_full() -> None:
    no_example = silent({"http_500": 2}).model_copy(update={"failure_examples": {}})
    err = runner._nothing_succeeded(no_example, "http://h/v1")
    assert err.message == "every measured request failed (http_500 x2); first error: "
    dotted = silent({"http_404": 1}).model_copy(update={"failure_examples": {"http_404": "gone."}})
    err404 = runner._nothing_succeeded(dotted, "http://h/PREFIX/")
    assert err404.message == "every measured request failed (http_404 x1); first error: gone."
    assert err404.hint is not None and err404.hint.endswith(
        "set target.base_url to http://h/PREFIX/v1."
    )
    warm = runner._nothing_succeeded(silent({}, in_flight=0, window=3), "http://h/v1")
    assert warm.message == (
        "no request was sent inside the 3.0 s window: the requests sent during warmup were still "
        "pending and held every worker (or every slot of the client), so nothing was measured."
    )


def test_a_404_example_ending_in_x_keeps_its_letters() -> None:
    # only the full stops of the example are stripped before the one that ends the sentence
    ends_x = silent({"http_404": 1}).model_copy(
        update={"failure_examples": {"http_404": "Not Found: /v2/MAX"}}
    )
    err = runner._nothing_succeeded(ends_x, "http://h/api")
    assert err.message == (
        "every measured request failed (http_404 x1); first error: Not Found: /v2/MAX."
    )


class ScriptedClock(Clock):
    """Reads the given values in turn, then ``then`` for ever."""

    def __init__(self, readings: list[int], then: int) -> None:
        super().__init__()
        self.readings, self.then = readings, then

    def now_ns(self) -> int:
        return self.readings.pop(0) if self.readings else self.then


@pytest.mark.looptime
@pytest.mark.parametrize("with_stop", [False, True])
async def test_the_window_waits_out_its_last_nanosecond(with_stop: bool) -> None:
    end = 1_000_000_000
    stop = asyncio.Event() if with_stop else None
    # 1 ns before the end: it waits, and returns only once the clock reads the end
    clock = ScriptedClock([end - 1, end - 1], then=end)
    assert await runner._wait_window(end, stop, clock) is False
    assert clock.readings == [] and clock.now_ns() == end
    # at the end exactly: it returns at once, reading the clock once
    at_end = ScriptedClock([end, end - 5], then=end)
    assert await runner._wait_window(end, stop, at_end) is False
    assert at_end.readings == [end - 5]


@pytest.mark.looptime
async def test_the_loop_lag_is_reset_once_at_the_start_of_the_window() -> None:
    """The ticker resets the lag histogram at the window's first tick only (warmup stalls do not
    count; later ones do)."""
    clock = LoopClock()
    start = clock.now_ns()
    resets: list[int] = []
    lag: Any = SimpleNamespace(
        histogram=SimpleNamespace(reset=lambda: resets.append(clock.now_ns() - start))
    )

    def sample(t_s: float) -> ResourceSample:
        return ResourceSample(t_s=t_s, rss_bytes=1, cpu_user_s=0.0, cpu_system_s=0.0,
                              cpu_percent=0.0)  # fmt: skip

    sampler: Any = SimpleNamespace(sample=sample)
    plan = build_plan(warmup_s=2.0, levels=[(2.0, 1)], kind="closed")
    rec = Recorder(start, 2.0, 2.0, open_loop=False)
    samples: list[ResourceSample] = []
    sender: Any = None  # read only for progress, which is not given
    await runner._tick(rec, sampler, samples, [], plan, clock, None, sender, 0, 1, lag)
    assert [s.t_s for s in samples] == [-1.0, 0.0, 1.0]  # ticks at 1, 2 and 3 s
    assert resets == [2_000_000_000]


async def test_an_invalid_client_config_is_a_profile_error_with_its_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The client is built from the profile when none is given; its ConfigError (here the
    # environment switch of the client, which the profile cannot check) is a ProfileError.
    monkeypatch.setenv(DISABLE_ENV_VAR, "maybe")
    prof = profile({"concurrency": 1})
    with pytest.raises(ProfileError) as err:
        await runner.run_trial(prof, plan_from_profile(prof), "http://127.0.0.1:9/v1", None,
                               index=0)  # fmt: skip
    assert err.value.message == (
        f"client: environment variable {DISABLE_ENV_VAR}='maybe' is not a boolean; use true or "
        "false"
    )
    assert err.value.hint == "Fix the client section of the profile."
