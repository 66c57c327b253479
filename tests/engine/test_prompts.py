"""Per-request prompts and lengths (issue 17): unique bodies, the shared prefix, datasets and
traces, extra_body; all from the seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harborbench.engine.prompts import CHARS_PER_TOKEN, TAG_CHARS, RequestFactory
from harborbench.engine.trace import load_trace
from harborbench.profile import RequestSpec


def spec(**fields: Any) -> RequestSpec:
    return RequestSpec.model_validate(fields)


def shared(a: str, b: str) -> int:
    """Length of the longest common prefix of two strings."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def bodies(factory: RequestFactory, n: int) -> list[str]:
    return [json.dumps(factory.next_params(), sort_keys=True) for _ in range(n)]


def text(params: dict[str, Any]) -> str:
    content = params["messages"][-1]["content"]
    assert isinstance(content, str)
    return content


def test_no_two_bodies_are_identical_with_generated_prompts() -> None:
    for request in (
        spec(prompt_tokens=50),
        spec(prompt_tokens={"distribution": "lognormal", "median": 20, "p99": 400}),
        spec(),  # no prompt given: the default text after a unique tag
        spec(prompt_tokens=3),  # shorter than the tag: lengthened, still unique
    ):
        sent = bodies(RequestFactory(request, seed=1), 5000)
        assert len(set(sent)) == len(sent)


def test_fixed_messages_are_identical_on_purpose() -> None:
    factory = RequestFactory(spec(messages=[{"role": "user", "content": "hi"}]), seed=1)
    assert len(set(bodies(factory, 10))) == 1


def test_two_prompts_share_at_most_the_prefix_and_part_of_the_tag() -> None:
    factory = RequestFactory(spec(prompt_tokens=100, prefix_tokens=30), seed=3)
    prompts = [text(factory.next_params()) for _ in range(300)]
    prefix = prompts[0][: 30 * CHARS_PER_TOKEN]
    assert all(p.startswith(prefix + " ") for p in prompts)
    bound = 30 * CHARS_PER_TOKEN + 1 + TAG_CHARS - 1  # the prefix, its space, < a whole tag
    longest = max(shared(a, b) for i, a in enumerate(prompts) for b in prompts[i + 1 :])
    assert 30 * CHARS_PER_TOKEN + 1 <= longest <= bound
    without = RequestFactory(spec(prompt_tokens=100), seed=3)
    plain = [text(without.next_params()) for _ in range(300)]
    assert max(shared(a, b) for i, a in enumerate(plain) for b in plain[i + 1 :]) < TAG_CHARS


def test_lengths_follow_the_draws_and_the_seed() -> None:
    request = spec(
        prompt_tokens={"distribution": "uniform", "low": 20, "high": 60},
        max_tokens={"distribution": "uniform", "low": 5, "high": 9},
    )
    a = [RequestFactory(request, seed=7).next_params() for _ in range(1)]
    one, two = RequestFactory(request, seed=7), RequestFactory(request, seed=7)
    first = [one.next_params() for _ in range(200)]
    assert first == [two.next_params() for _ in range(200)]
    assert a[0] == first[0]
    other = [RequestFactory(request, seed=8).next_params() for _ in range(1)]
    assert other[0] != first[0]
    lengths = {len(text(p)) // CHARS_PER_TOKEN for p in first}
    assert lengths <= set(range(20, 61)) and len(lengths) > 20
    assert all(len(text(p)) % CHARS_PER_TOKEN == 0 for p in first)
    assert {p["max_tokens"] for p in first} == set(range(5, 10))


def test_extra_body_and_stream_options_are_merged() -> None:
    request = spec(
        stream=True, extra_body={"temperature": 0.5, "stream_options": {"continuous_usage": True}}
    )
    params = RequestFactory(request, seed=0).next_params()
    assert params["temperature"] == 0.5
    assert params["stream_options"] == {"include_usage": True, "continuous_usage": True}
    assert params["stream"] is True


def write_lines(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_dataset_in_order_with_expected_output_lengths(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "d.jsonl",
        [
            {"prompt": "one", "output_tokens": 11},
            {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "two"}]},
            {"prompt": "three", "output_tokens": 33},
        ],
    )
    factory = RequestFactory(
        spec(dataset=str(path), dataset_order="sequential", max_tokens=64), seed=0
    )
    got = [factory.next_params() for _ in range(4)]
    assert [text(p) for p in got] == ["one", "two", "three", "one"]
    assert [p["max_tokens"] for p in got] == [11, 64, 33, 11]


def test_dataset_random_order_is_seeded(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "d.jsonl", [{"prompt": f"p{i}"} for i in range(10)])
    request = spec(dataset=str(path))
    runs = [[text(RequestFactory(request, seed=s).next_params())] for s in (1, 1)]
    assert runs[0] == runs[1]
    factory = RequestFactory(request, seed=1)
    drawn = [text(factory.next_params()) for _ in range(200)]
    assert set(drawn) == {f"p{i}" for i in range(10)}  # sampled with replacement, all seen
    assert drawn[:10] != [f"p{i}" for i in range(10)]


def test_trace_lengths_go_to_their_request_even_when_one_is_skipped(tmp_path: Path) -> None:
    rows = [
        {"timestamp": 0, "input_length": 10, "output_length": 3},
        {"timestamp": 5, "input_length": 20, "output_length": 4, "hash_ids": [1, 2]},
        {"timestamp": 9, "input_length": 30, "output_length": 5},
    ]
    trace = load_trace(write_lines(tmp_path / "t.jsonl", rows))
    factory = RequestFactory(spec(), seed=0, trace=trace)
    first = factory.next_params()
    factory.skip()  # the second arrival was not sent
    third = factory.next_params()
    assert (len(text(first)), first["max_tokens"]) == (40, 3)
    assert (len(text(third)), third["max_tokens"]) == (120, 5)
    several = RequestFactory(spec(), seed=0, trace=trace)
    several.skip(2)  # the first two arrivals were dropped together
    assert several.next_params()["max_tokens"] == 5


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (['{"prompt": "a"}', "{not json"], ":2: not valid JSON"),
        ([{"prompt": "a"}, {"prompt": "b", "output_token": 3}], ":2: unknown key 'output_token'"),
        ([{"prompt": "a", "messages": []}], ":1: give exactly one of 'prompt'"),
        ([{"prompt": ""}], ":1: 'prompt' must be a non-empty string"),
        ([{"prompt": "a", "output_tokens": 0}], ":1: 'output_tokens' must be a whole number"),
        ([{"messages": [{"role": "robot", "content": "x"}]}], ":1: messages[0] needs a 'role'"),
        ([[1, 2]], ":1: a line must be a JSON object"),
        ([], "the file has no lines"),
    ],
)
def test_bad_dataset_lines_name_the_file_and_line(
    tmp_path: Path, rows: list[Any], message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows),
        encoding="utf-8",
    )
    with pytest.raises(ValueError) as info:
        spec(dataset=str(path))
    assert str(path) in str(info.value) and message in str(info.value)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [
                {"timestamp": 5, "input_length": 1, "output_length": 1},
                {"timestamp": 4, "input_length": 1, "output_length": 1},
            ],
            ":2: timestamp 4 is before the previous line's 5",
        ),
        ([{"timestamp": 0, "output_length": 1}], ":1: 'input_length' must be a whole number"),
        ([{"timestamp": "0", "input_length": 1, "output_length": 1}], ":1: 'timestamp' must be"),
        ([{"timestamp": 0, "input_length": 1, "output_length": 1.5}], ":1: 'output_length'"),
    ],
)
def test_bad_trace_lines_name_the_file_and_line(
    tmp_path: Path, rows: list[Any], message: str
) -> None:
    path = write_lines(tmp_path / "bad-trace.jsonl", rows)
    with pytest.raises(ValueError) as info:
        load_trace(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_trace_timestamps_in_seconds_scaled_and_limited(tmp_path: Path) -> None:
    rows = [{"timestamp": t, "input_length": 1, "output_length": 1} for t in (100.0, 100.5, 102)]
    trace = load_trace(write_lines(tmp_path / "t.jsonl", rows), "s")
    assert trace.offsets_ns.tolist() == [0, 500_000_000, 2_000_000_000]  # from the first line
    half = trace.scaled(0.5, limit=2)
    assert half.offsets_ns.tolist() == [0, 250_000_000]
    assert len(half) == 2


@pytest.mark.parametrize("n", [2, 3])
def test_shards_take_the_global_requests_of_their_stripe(tmp_path: Path, n: int) -> None:
    # Shard i of n sends global arrivals i, i + n, ...: its prompts and trace lengths are those
    # of the same global requests in a one-process run, so shards never repeat each other.
    rows = [{"timestamp": t, "input_length": 10 + t, "output_length": 1 + t} for t in range(12)]
    trace = load_trace(write_lines(tmp_path / "t.jsonl", rows))
    one = RequestFactory(spec(), seed=4, trace=trace)
    whole = [one.next_params() for _ in range(12)]
    for i in range(n):
        shard = RequestFactory(spec(), seed=4, trace=trace, stripe=(i, n))
        mine = [shard.next_params() for _ in range(len(range(i, 12, n)))]
        assert [(text(p), p["max_tokens"]) for p in mine] == [
            (text(whole[k]), whole[k]["max_tokens"]) for k in range(i, 12, n)
        ]
