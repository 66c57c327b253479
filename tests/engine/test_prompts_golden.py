"""Generated prompts are a pure function of (seed, index): pinned here, so that a run of one
version sends the same bodies as a run of another (results stay comparable) and any change to
the generator is a deliberate one."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from harborbench.engine.prompts import (
    CHARS_PER_TOKEN,
    DEFAULT_MESSAGES,
    TAG_CHARS,
    RequestFactory,
    _Corpus,
    _mix64,
    _words,
    prompt_text,
)
from harborbench.engine.trace import load_trace
from harborbench.profile import RequestSpec


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_the_mix_is_splitmix64s_finalizer() -> None:
    assert _mix64(0) == 0
    assert _mix64(1) == 0x5692161D100B05E5
    assert _mix64(2**64 + 1) == _mix64(1)  # taken modulo 2**64
    assert _mix64(12345) == 0xF36CF1164265DD51


def test_words_are_seeded_and_cut_to_length() -> None:
    assert _words(random.Random(3), 30) == "nurmmt vnnklvl ombu ftymse lwb"
    assert len(_words(random.Random(4), 1000)) == 1000
    assert _words(random.Random(4), 0) == ""


def test_the_corpus_of_a_seed() -> None:
    c = _Corpus(1, 0)
    assert (c.size, len(c.text), c.prefix) == (65537, 131073, "")
    assert sha(c.text) == "732b817e134c2dc2"
    assert c.key == _mix64(1 * 0x9E3779B97F4A7C15 + 1)
    assert _Corpus(1, 3).prefix == "src ma poinn"
    assert _Corpus(2, 0).key == 0xBEEB8DA1658EEC67


def test_prompts_are_pinned() -> None:
    assert prompt_text(1, 0, 12) == "dce423fc82c0d5b8 lg rgnlg umrhcs modoecy fdf fur"
    assert (
        prompt_text(1, 5, 12, prefix_tokens=2) == "sr ema p 022190e6f079ef17 tmwhnc ddagyr swvbeh k"
    )
    assert prompt_text(7, 3, 5) == "74dbb2a73076b9bb  as"
    # too short for the tag: the tag and one character
    assert prompt_text(1, 2, 4) == "081a5c1377856b73 a"
    assert prompt_text(1, 2, 5) == "081a5c1377856b73  yi"
    # longer than the corpus: it repeats, cut to the length
    long = prompt_text(1, 2, 20_000)
    assert len(long) == 20_000 * CHARS_PER_TOKEN
    assert long.startswith("081a5c1377856b73  yicii sdvvhyd wyty mlh")
    assert sha(long) == "88510c08f233056e"
    assert len(prompt_text(1, 2, (65537 + TAG_CHARS + 1) // CHARS_PER_TOKEN)) == 65552


def test_default_requests_are_pinned() -> None:
    f = RequestFactory(RequestSpec(), 3)
    assert f.next_params() == {
        "model": "gpt-4o-mini", "stream": False, "max_tokens": 64,
        "messages": [{"role": "user",
                      "content": "7740eb31ebd3039a Reply with one short sentence about harbors."}],
    }  # fmt: skip
    assert f.next_params()["messages"][0]["content"] == (
        "ae6170280656bcc0 " + DEFAULT_MESSAGES[0][1]
    )
    assert f.issued == 2
    f.skip()
    assert f.issued == 3


def test_drawn_lengths_of_a_shard_are_pinned() -> None:
    request = RequestSpec(
        prompt_tokens={"distribution": "uniform", "low": 20, "high": 60},
        max_tokens={"distribution": "uniform", "low": 5, "high": 9},
    )  # type: ignore[arg-type]

    def lengths(stripe: tuple[int, int]) -> list[tuple[int, int]]:
        f = RequestFactory(request, 2, stripe=stripe)
        params = [f.next_params() for _ in range(4)]
        return [(len(p["messages"][0]["content"]) // CHARS_PER_TOKEN, p["max_tokens"])
                for p in params]  # fmt: skip

    assert lengths((1, 3)) == [(41, 8), (52, 7), (44, 6), (50, 7)]
    assert lengths((0, 1)) == [(45, 7), (42, 9), (52, 6), (44, 5)]


def test_generated_prompts_without_a_prefix_start_with_the_tag() -> None:
    f = RequestFactory(RequestSpec(prompt_tokens=8), 1)  # type: ignore[arg-type]
    content = f.next_params()["messages"][0]["content"]
    assert len(content) == 32
    assert content[:16] == prompt_text(1, 0, 8)[:16] and content[16] == " "
    assert content == prompt_text(1, 0, 8)


def test_fixed_messages_stream_options_and_the_end_of_a_trace(tmp_path: Path) -> None:
    fixed = RequestFactory(RequestSpec(messages=[{"role": "user", "content": "hi"}]), 1)  # type: ignore[list-item]
    assert fixed.next_params()["messages"] == [{"role": "user", "content": "hi"}]
    streamed = RequestFactory(RequestSpec(stream=True), 1).next_params()
    assert streamed["stream_options"] == {"include_usage": True}
    path = tmp_path / "t.jsonl"
    rows = [{"timestamp": t, "input_length": 6, "output_length": 3} for t in (0, 1)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    f = RequestFactory(RequestSpec(), 1, trace=load_trace(path))
    params = [f.next_params() for _ in range(3)]
    assert [p["max_tokens"] for p in params] == [3, 3, 64]  # past the trace: the defaults
    assert params[2]["messages"][0]["content"].endswith(DEFAULT_MESSAGES[0][1])
