"""Profile keys of issue 17: lengths as distributions, dataset and trace files (relative to the
profile), slo and goodput_min, and the --set rules around them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harborbench.counts import FixedCount, LognormalCount
from harborbench.errors import ProfileError
from harborbench.profile import load_profile, load_profile_dict

TRACE = [{"timestamp": t, "input_length": 5, "output_length": 2} for t in (0, 500, 2500)]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def trace_profile(folder: Path, extra: str = "") -> Path:
    sub = folder / "sub"
    sub.mkdir(exist_ok=True)
    write(sub, "t.jsonl", "".join(json.dumps(r) + "\n" for r in TRACE))
    return write(sub, "p.yaml", f"name: t\nload: {{trace: t.jsonl}}\n{extra}")


def test_files_are_read_from_the_profile_folder_and_duration_follows_the_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not the profile's folder
    profile = load_profile(trace_profile(tmp_path, "warmup: 500ms\n"))
    assert profile.load.trace == str(tmp_path / "sub" / "t.jsonl")
    assert profile.duration == pytest.approx(2.5 + 1.0 - 0.5)  # last arrival + 1 s - warmup
    faster = load_profile(trace_profile(tmp_path), ["load.time_scale=0.5"])
    assert faster.load.trace is not None and faster.duration == pytest.approx(1.25 + 1.0)
    first = load_profile(trace_profile(tmp_path), ["load.limit=2"])
    assert first.duration == pytest.approx(0.5 + 1.0)
    # the stored (absolute) path loads again, as tune and compare --run reload a profile
    assert load_profile_dict(profile.model_dump(mode="json")) == profile


def test_lengths_take_a_number_or_a_distribution(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.yaml",
        "name: t\nload: {rate: 5}\nduration: 1s\nrequest:\n"
        "  prompt_tokens: {distribution: lognormal, median: 200, p99: 2000}\n  max_tokens: 32\n",
    )
    profile = load_profile(path)
    assert profile.request.prompt_tokens == LognormalCount(
        distribution="lognormal", median=200, p99=2000
    )
    assert profile.request.max_tokens == FixedCount(value=32)
    assert profile.model_dump(mode="json")["request"]["max_tokens"] == 32  # written as given


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("request: {stream: false}\nslo: {ttft_max: 100ms}\n",
         "slo.ttft_max: ttft_max needs streamed requests"),
        ("gates: {goodput_min: 10}\n", "gates.goodput_min: goodput_min needs the objectives"),
        ("slo: {}\n", "slo: give at least one of ttft_max"),
        ("request: {prompt_tokens: {distribution: uniform, low: 9, high: 3}}\n",
         "low <= high"),
        ("request: {prompt_tokens: '64'}\n", "expected an integer (a number of tokens)"),
        ("request: {messages: [{role: user, content: x}], prefix_tokens: 4}\n",
         "prefix_tokens applies to prompt_tokens"),
        ("request: {dataset_order: sequential}\n", "dataset_order applies only with dataset"),
        ("load: {rate: 5, time_scale: 0.5}\n", "time_scale applies only with trace"),
    ],
)  # fmt: skip
def test_workload_mistakes_name_the_key(tmp_path: Path, body: str, message: str) -> None:
    text = "name: t\nduration: 1s\n" + body
    if "load:" not in body:
        text += "load: {rate: 5}\n"
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, "p.yaml", text))
    assert message in str(info.value)


def test_a_trace_gives_the_prompt_lengths(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as info:
        load_profile(trace_profile(tmp_path, "request: {prompt_tokens: 100}\n"))
    assert "request.prompt_tokens: with load.trace the prompt lengths come from the trace" in str(
        info.value
    )


def test_a_bad_dataset_line_is_reported_with_the_profile_line(tmp_path: Path) -> None:
    write(tmp_path, "d.jsonl", '{"prompt": "ok"}\n{"prompt": 3}\n')
    path = write(tmp_path, "p.yaml", "name: t\nload: {rate: 5}\nduration: 1s\n"
                 "request: {dataset: d.jsonl}\n")  # fmt: skip
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert f"{path}:4: request.dataset: {tmp_path / 'd.jsonl'}:2: 'prompt' must be" in str(
        info.value
    )


def test_set_of_a_load_option_keeps_the_load_model(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "name: t\nload: {rate: 5}\nduration: 1s\n")
    profile = load_profile(path, ["load.arrival=poisson"])
    assert profile.load.rate == 5 and profile.load.arrival == "poisson"
    switched = load_profile(trace_profile(tmp_path), ["load.rate=9", "duration=2s"])
    assert switched.load.trace is None and switched.load.rate == 9


def test_the_cli_exits_2_on_a_bad_trace_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sub = tmp_path / "sub"
    sub.mkdir()
    write(sub, "t.jsonl", '{"timestamp": 0, "input_length": 1, "output_length": 1}\n{"x": 1}\n')
    path = write(sub, "p.yaml", "name: t\nload: {trace: t.jsonl}\nduration: 1s\n")
    code, _, err = cli("run", str(path), "--reports-dir", str(tmp_path / "r"), "--quiet")
    assert code == 2
    assert f"{sub / 't.jsonl'}:2: 'timestamp' must be a number" in " ".join(err.split())
    assert "Traceback" not in err
