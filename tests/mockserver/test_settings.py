"""MockSettings: the one schema of the mock server, strict, with durations in units."""

from __future__ import annotations

import math

import pytest
import yaml
from pydantic import ValidationError

from harborbench.mockserver.settings import (
    FixedLatency,
    LognormalLatency,
    MockSettings,
    UniformLatency,
    format_seconds,
)

FULL_YAML = """
latency: {distribution: lognormal, median: 20ms, p99: 200ms}
stream:
  ttft: {distribution: uniform, low: 50ms, high: 150ms}
  inter_token: 5ms
  tokens_per_chunk: 2
output_tokens: {min: 8, max: 12}
faults:
  error_rate: 0.01
  error_status: 429
  retry_after: 1500ms
  hang_rate: 0.02
  reset_rate: 0.03
  stream_break_rate: 0.04
  stream_error_rate: 0.05
  stalls: [{at: 10s, duration: 2s}]
seed: 7
"""


def test_defaults_answer_at_once_without_faults() -> None:
    s = MockSettings()
    assert isinstance(s.latency, FixedLatency)
    assert s.latency.value == 0.0
    assert (s.output_tokens.min, s.output_tokens.max) == (16, 64)
    assert s.faults.error_rate == 0.0
    assert s.faults.stalls == ()
    assert s.seed == 0


def test_full_yaml_parses_to_seconds() -> None:
    s = MockSettings.model_validate(yaml.safe_load(FULL_YAML))
    assert isinstance(s.latency, LognormalLatency)
    assert (s.latency.median, s.latency.p99) == (0.02, 0.2)
    assert isinstance(s.stream.ttft, UniformLatency)
    assert (s.stream.ttft.low, s.stream.ttft.high) == (0.05, 0.15)
    assert isinstance(s.stream.inter_token, FixedLatency)
    assert s.stream.inter_token.value == 0.005
    assert s.stream.tokens_per_chunk == 2
    assert s.faults.retry_after == 1.5
    assert s.faults.stalls[0].at == 10.0
    assert s.faults.stalls[0].duration == 2.0
    assert s.seed == 7


def test_json_round_trip_keeps_every_value() -> None:
    s = MockSettings.model_validate(yaml.safe_load(FULL_YAML))
    text = s.model_dump_json()
    assert '"median":"0.02s"' in text
    assert MockSettings.model_validate_json(text) == s


@pytest.mark.parametrize("seconds", [0.0, 1e-9, 0.005, 0.25, 1.5, 3600.0, 1e-5])
def test_format_seconds_reads_back(seconds: float) -> None:
    from harborbench.units import parse_duration

    assert parse_duration(format_seconds(seconds)) == pytest.approx(seconds, abs=1e-9)


def test_fixed_int_output_tokens() -> None:
    s = MockSettings.model_validate({"output_tokens": 32})
    assert (s.output_tokens.min, s.output_tokens.max) == (32, 32)


def test_lognormal_parameters() -> None:
    spec = LognormalLatency(distribution="lognormal", median="20ms", p99="200ms")  # type: ignore[arg-type]
    assert spec.mu == pytest.approx(math.log(0.02))
    assert spec.sigma == pytest.approx(math.log(10) / 2.3263478740408408)


@pytest.mark.parametrize(
    ("data", "where", "what"),
    [
        ({"latency": {"distribution": "fixed", "value": 10}}, "latency", "string with units"),
        ({"latency": "10"}, "latency", "duration with units"),
        ({"latency": "-5ms"}, "latency", "cannot be negative"),
        ({"latency": {"distribution": "gamma", "value": "1ms"}}, "latency", "gamma"),
        ({"latency": {"distribution": "uniform", "low": "2ms", "high": "1ms"}}, "latency", "low"),
        ({"latency": {"distribution": "lognormal", "median": "0s", "p99": "1s"}}, "latency", ">"),
        ({"faults": {"error_rate": 1.5}}, "error_rate", "less than or equal to 1"),
        ({"faults": {"hang_rate": -0.1}}, "hang_rate", "greater than or equal to 0"),
        ({"faults": {"error_rate": 0.6, "reset_rate": 0.6}}, "faults", "sum to 1.2"),
        ({"faults": {"error_status": 200}}, "error_status", "greater than or equal to 400"),
        ({"faults": {"stalls": [{"at": "1s"}]}}, "duration", "Field required"),
        ({"output_tokens": {"min": 9, "max": 3}}, "output_tokens", "min <= max"),
        ({"stream": {"tokens_per_chunk": 0}}, "tokens_per_chunk", "greater than or equal to 1"),
        ({"latncy": "1ms"}, "latncy", "Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_name_the_key(data: dict[str, object], where: str, what: str) -> None:
    with pytest.raises(ValidationError) as info:
        MockSettings.model_validate(data)
    text = str(info.value)
    assert where in text
    assert what in text


def test_frozen() -> None:
    s = MockSettings()
    with pytest.raises(ValidationError):
        s.seed = 3  # type: ignore[misc]
