"""The engine against the real mock server (its own process, port 0): figures a user can trust."""

from __future__ import annotations

from typing import Any

import pytest

from harborbench.engine.runner import arun
from harborbench.errors import AllRequestsFailedError
from harborbench.profile import load_profile_dict
from harborbench.result import RunResult


def profile(mock: dict[str, Any], load: dict[str, Any], **extra: Any) -> Any:
    data: dict[str, Any] = {
        "name": "it",
        "target": {"mock": mock},
        "request": {"prompt_tokens": 20, "max_tokens": 16, "timeout": "5s"},
        "client": {"max_concurrent_requests": 64, "connection_pool_size": 32},
        "load": load,
        "warmup": "0s",
        "duration": "3s",
        "seed": 3,
    }
    data.update(extra)
    return load_profile_dict(data)


async def test_fixed_latency_is_reported_within_tolerance_and_counts_reconcile() -> None:
    result: RunResult = await arun(profile({"latency": "20ms"}, {"rate": 200}, warmup="1s"))
    t = result.total
    assert t is not None
    assert t.failures == 0
    # 200 ops/s for 3 s: about 600 successes (those completing after the window are in flight).
    assert 560 <= t.successes <= 600
    assert t.throughput_ops == pytest.approx(t.successes / t.window_s)
    p50 = t.service_time.p50_s
    assert p50 is not None and 0.020 <= p50 < 0.030  # the server sleeps 20 ms; loopback adds little
    # Warmup requests are excluded from figures but the server saw them.
    assert t.warmup_requests > 150
    server = t.server_stats
    assert server is not None
    measured = t.successes + t.failures
    assert measured + t.warmup_requests <= server["requests_total"]
    assert server["requests_total"] <= measured + t.warmup_requests + t.in_flight_at_end
    # Keep-alive: far fewer connections than requests.
    assert server["connections_accepted"] < server["requests_total"] / 10


async def test_injected_error_rate_is_reported_by_kind() -> None:
    result = await arun(
        profile(
            {"latency": "2ms", "faults": {"error_rate": 0.2, "error_status": 500}, "seed": 5},
            {"concurrency": 8},
        )
    )
    t = result.total
    assert t is not None
    assert set(t.failures_by_kind) == {"http_500"}
    assert t.error_rate is not None and 0.15 < t.error_rate < 0.25
    assert t.failures == t.failures_by_kind["http_500"]
    assert t.server_stats is not None
    assert t.server_stats["requests_by_status"]["500"] >= t.failures


async def test_a_stall_shows_in_open_loop_response_times_and_the_time_series() -> None:
    # The server stops answering from 1.5 s to 3.5 s after it starts; the trial starts a few
    # hundred ms after the server, so at least one whole second of the window is stalled.
    mock = {"latency": "5ms", "faults": {"stalls": [{"at": "1500ms", "duration": "2s"}]}}
    result = await arun(profile(mock, {"rate": 100}, duration="5s"))
    t = result.total
    assert t is not None and t.response_time is not None
    # Requests scheduled during the stall waited up to ~1 s: the response time from the intended
    # send shows it, at the tail.
    assert t.response_time.max_s is not None and t.response_time.max_s > 1.5
    assert t.response_time.p99_s is not None and t.response_time.p99_s > 1.0
    # ... while the service time, measured from the actual send, hides nothing here either
    # (the open loop sends on schedule), but its median stays at the server's 5 ms.
    assert t.service_time.p50_s is not None and t.service_time.p50_s < 0.05
    rows = [r for r in t.timeseries if not r.warmup]
    assert len(rows) == 5
    # A whole second with no completion, and a later one that catches up the backlog.
    counts = [r.successes for r in rows]
    assert min(counts) <= 5
    assert max(counts) > 150
    # RSS and CPU were sampled during the stalled second too.
    assert all(r.rss_bytes is not None and r.cpu_percent is not None for r in rows)


async def test_closed_loop_never_exceeds_its_concurrency_at_the_server() -> None:
    result = await arun(profile({"latency": "10ms"}, {"concurrency": 6}, duration="2s"))
    t = result.total
    assert t is not None and t.server_stats is not None
    assert t.server_stats["max_in_flight"] <= 6
    assert t.health.level_unit == "concurrency"
    assert 4.5 < t.health.achieved_level <= 6.3  # Little's law estimate of the level


async def test_every_request_failing_is_an_error_exit_4() -> None:
    with pytest.raises(AllRequestsFailedError, match="http_503"):
        await arun(
            profile(
                {"faults": {"error_rate": 1.0, "error_status": 503}},
                {"concurrency": 2},
                duration="1s",
                client={"request_processor": {"retry": {"max_retries": 0}}},
            )
        )


async def test_streaming_figures() -> None:
    mock = {"latency": "1ms", "stream": {"ttft": "30ms", "inter_token": "2ms"},
            "output_tokens": 10}  # fmt: skip
    p = profile(mock, {"concurrency": 4}, duration="2s")
    data = p.model_dump(mode="json")
    data["request"]["stream"] = True
    result = await arun(load_profile_dict(data))
    t = result.total
    assert t is not None and t.stream is not None
    ttft = t.stream.ttft.p50_s
    assert ttft is not None and 0.028 < ttft < 0.045
    icl = t.stream.icl.p50_s
    assert icl is not None and 0.0015 < icl < 0.006
    assert t.stream.output_tokens == 10 * t.successes
    assert t.stream.token_source == "usage" and t.stream.tokens_from_usage == t.successes
    # One gap between each pair of the 10 content chunks, of measured successes only (the
    # streams still running at the end of the window add none).
    assert t.stream.icl.count == 9 * t.successes
    assert t.stream.itl.count == 0  # the mock sends no per-chunk token counts


async def test_streaming_with_several_tokens_per_chunk() -> None:
    """12 tokens in chunks of 4, 20 ms apart: the chunk gap is 20 ms, but a token takes 5 ms."""
    mock = {"latency": "1ms", "output_tokens": 12,
            "stream": {"ttft": "10ms", "inter_token": "20ms", "tokens_per_chunk": 4}}  # fmt: skip
    p = profile(mock, {"concurrency": 2}, duration="2s")
    data = p.model_dump(mode="json")
    data["request"]["stream"] = True
    result = await arun(load_profile_dict(data))
    t = result.total
    assert t is not None and t.stream is not None and t.successes > 0
    s = t.stream
    assert s.output_tokens == 12 * t.successes and s.output_chunks == 3 * t.successes
    assert s.icl.count == 2 * t.successes and s.itl.count == 0
    icl, tpot = s.icl.p50_s, s.tpot.p50_s
    assert icl is not None and 0.018 < icl < 0.03
    # (end - first token) / (12 - 4): about 40 ms / 8 = 5 ms; the old (12 - 1) gave 3.6 ms.
    assert tpot is not None and 0.0045 < tpot < 0.01


async def test_time_series_rows_add_up_to_the_totals_and_warmup_stays_out() -> None:
    # Slow answers: requests sent at the end of the warmup complete inside the window.
    result = await arun(profile({"latency": "300ms"}, {"concurrency": 10}, warmup="2s"))
    t = result.total
    assert t is not None
    measured = [r for r in t.timeseries if not r.warmup]
    assert sum(r.successes for r in measured) == t.successes
    assert sum(r.failures for r in measured) == t.failures
    assert t.warmup_requests >= 10  # the ones in flight at the end of warmup among them
    # Attempted counts what was sent in the window, answered or not.
    sent = t.successes + t.failures + t.in_flight_at_end
    assert t.attempted_ops == pytest.approx(sent / t.window_s)
    assert t.in_flight_at_end == 10


async def test_without_warmup_resources_are_sampled_from_the_first_instant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import harborbench.engine.runner as runner_module

    seen: list[float] = []
    original = runner_module.ResourceSampler.sample

    def spy(self: Any, t_s: float) -> Any:
        seen.append(t_s)
        return original(self, t_s)

    monkeypatch.setattr(runner_module.ResourceSampler, "sample", spy)
    await arun(profile({"latency": "5ms"}, {"concurrency": 2}, duration="2s"))
    assert seen[0] == 0.0  # the CPU and RSS baseline is the start of the window
    assert seen[-1] == pytest.approx(2.0, abs=0.05)
