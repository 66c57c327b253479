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


def timed_trace(folder: Path, last: object, unit_s: bool = False) -> Path:
    """A trace profile whose second arrival is at ``last`` (written into the JSON as is)."""
    rows = f'{{"timestamp": 0, "input_length": 5, "output_length": 2}}\n' \
           f'{{"timestamp": {last}, "input_length": 5, "output_length": 2}}\n'  # fmt: skip
    write(folder, "t.jsonl", rows)
    unit = "  timestamp_unit: s\n" if unit_s else ""
    return write(folder, "p.yaml", f"name: t\nload:\n  trace: t.jsonl\n{unit}")


@pytest.mark.parametrize(
    ("last", "shown"),
    [
        ("86399000", None),  # 23h59m59s + the 1 s tail: exactly 24h, accepted
        ("86399001", "86400.001s"),  # the window with the 1 s tail, as stored (exact)
        ("1e12", "277777h46m41s"),
        ("1e15", "277777777h46m41s"),  # wrapped past int64 ns: was an OverflowError, exit 1
        ("1e17", "27777777777h46m40.98s"),  # 1e23 ns is not exact in float64
    ],
)
def test_every_too_long_trace_gets_the_24h_refusal(
    tmp_path: Path, last: str, shown: str | None
) -> None:
    path = timed_trace(tmp_path, last)
    if shown is None:
        assert load_profile(path).duration == 86_400.0
        return
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    text = str(info.value)
    # Named by the trace and its span, not by a duration the profile does not contain.
    assert "p.yaml:3: load.trace: the trace t.jsonl has 2 arrivals over " in text, text
    assert f"needs a measurement window of {shown} (to 1 s after the last arrival, less " in text
    assert "above the limit of 24h; set duration: 24h to replay its first day" in text
    assert "problems" not in text  # one problem, not a second one beside it


@pytest.mark.parametrize("last", ["1e305", str(10**400), "1e308"])
def test_a_timestamp_too_far_to_hold_is_refused_on_its_line(tmp_path: Path, last: str) -> None:
    path = timed_trace(tmp_path, last)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    text = str(info.value)
    assert f"{tmp_path / 't.jsonl'}:2: 'timestamp' is too far from the first line's" in text
    assert "duration" not in text and "problems" not in text


def test_a_far_arrival_beyond_a_given_window_is_held_not_wrapped(tmp_path: Path) -> None:
    # With a duration the arrivals after the window are not sent; the far one must stay far
    # (it wrapped to a negative time before).
    path = timed_trace(tmp_path, "1e15")
    profile = load_profile(path, ["duration=2s"])
    offsets = profile.load.replayed_trace().offsets_ns.tolist()  # type: ignore[union-attr]
    assert offsets == [0, 2**62]
    assert profile.load.replayed_trace().last_offset_s == 1e15 / 1e3  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('{"timestamp": "x", "input_length": 5, "output_length": 2}', "'timestamp' must be"),
        ('{"timestamp": 9, "input_length": 0, "output_length": 2}', "'input_length' must be"),
        ("not json", "not valid JSON"),
    ],
)
def test_a_bad_trace_line_is_the_only_problem_reported(tmp_path: Path, line: str, key: str) -> None:
    write(tmp_path, "t.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 2}\n' + line)
    path = write(tmp_path, "p.yaml", "name: t\nload: {trace: t.jsonl}\n")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    text = str(info.value)
    assert f"{tmp_path / 't.jsonl'}:2: {key}" in text
    assert "duration" not in text and "problems" not in text, text


def test_a_bad_timestamp_unit_is_the_only_problem_reported(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as info:
        load_profile(trace_profile(tmp_path), ["load.timestamp_unit=h"])  # was a KeyError
    text = str(info.value)
    assert "load.timestamp_unit" in text and "Input should be 'ms' or 's'" in text
    assert "duration" not in text and "problems" not in text, text


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ("[{duration: xx, rate: 5}]", "load.stages[0].duration: 'xx' is not a duration"),
        ("[{rate: 5}]", "load.stages[0].duration: required key is missing"),
        ("[]", "load.stages: List should have at least 1 item"),
    ],
)
def test_a_bad_stage_is_the_only_problem_reported(
    tmp_path: Path, stages: str, message: str
) -> None:
    path = write(tmp_path, "p.yaml", f"name: t\nload:\n  stages: {stages}\n")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    text = str(info.value)
    assert f"{path}:3: {message}" in text
    assert "problems" not in text, text  # no "duration: required key is missing" beside it
    good = write(tmp_path, "g.yaml", "name: t\nload:\n  stages: [{duration: 2s, rate: 5}]\n")
    assert load_profile(good).duration == 2.0


def refusal(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(path, overrides or [])
    return " ".join(str(info.value).split())


def test_a_trace_ending_inside_the_warmup_is_refused_naming_it(tmp_path: Path) -> None:
    # Before: the run started, sent every arrival during warmup and failed with exit 4 ("the
    # requests sent during warmup were still pending and held every worker").
    path = timed_trace(tmp_path, 999)  # the last arrival 1 ms before the end of a 1 s warmup
    text = refusal(path, ["warmup=1s"])
    assert (
        "p.yaml: warmup (from --set warmup=1s): the trace t.jsonl has 2 arrivals over 999ms, "
        "all inside the 1s "
        "warmup: none is left for the measurement window; make the warmup end before the "
        "trace's last arrival (warmup: 0s measures them all), or replay a longer trace"
    ) in text, text
    # An arrival at the warmup's end is the window's first (as the engine counts them).
    at_the_end = load_profile(timed_trace(tmp_path, 1000), ["warmup=1s"])
    assert at_the_end.duration == 1.0
    burst = tmp_path / "burst.jsonl"
    burst.write_text('{"timestamp": 7, "input_length": 1, "output_length": 1}\n' * 3000)
    write(tmp_path, "b.yaml", "name: b\nload: {trace: burst.jsonl}\nwarmup: 1s\n")
    assert "the trace burst.jsonl has 3,000 arrivals at one time, all inside the 1s warmup" in (
        refusal(tmp_path / "b.yaml")
    )
    assert load_profile(tmp_path / "b.yaml", ["warmup=0s"]).duration == 1.0
    scaled = refusal(path, ["warmup=1s", "load.limit=1"])
    assert "has 1 arrivals at one time as replayed (load.limit, load.time_scale)" in scaled


def test_a_window_between_two_arrivals_of_a_trace_is_refused(tmp_path: Path) -> None:
    path = timed_trace(tmp_path, 10_000)  # arrivals at 0 and 10 s
    text = refusal(path, ["warmup=1s", "duration=9s"])  # the window [1 s, 10 s): none in it
    assert (
        "p.yaml: duration (from --set duration=9s): the trace t.jsonl has 2 arrivals over 10s, "
        "none of them in the "
        "measurement window (1s to 10s from the first): lengthen duration, or remove it (the "
        "window then ends 1 s after the last arrival)"
    ) in text, text
    assert load_profile(path, ["warmup=1s", "duration=9.001s"]).duration == 9.001


def test_a_trace_of_25_hours_is_named_with_its_span(tmp_path: Path) -> None:
    text = refusal(timed_trace(tmp_path, 90_000_000), ["warmup=1s"])
    assert (
        "p.yaml:3: load.trace: the trace t.jsonl has 2 arrivals over 25h: its replay needs a "
        "measurement window of 25h (to 1 s after the last arrival, less the 1s warmup), above "
        "the limit of 24h; set duration: 24h to replay its first day, or speed it up "
        "(load.time_scale: 0.5), or replay its first lines (load.limit)"
    ) in text, text
    assert "duration: 25h" not in text
    assert load_profile(timed_trace(tmp_path, 90_000_000), ["duration=24h"]).duration == 86_400


def test_the_cli_exits_2_on_a_trace_inside_the_warmup(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = timed_trace(tmp_path, 200)
    code, _, err = cli("run", str(path), "--set", "warmup=1s", "--reports-dir", str(tmp_path / "r"))
    assert code == 2, err
    assert "warmup (from --set warmup=1s): the trace t.jsonl has 2 arrivals over 200ms" in (
        " ".join(err.split())
    )
    assert "Traceback" not in err and not (tmp_path / "r").exists()
