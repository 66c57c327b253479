"""Generated prompts are a pure function of (seed, index): pinned here, so that a run of one
version sends the same bodies as a run of another (results stay comparable) and any change to
the generator is a deliberate one."""

from __future__ import annotations

import hashlib
import random

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
