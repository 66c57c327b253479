"""SSEDecoder against the WHATWG framing rules, fed whole, byte by byte and in random splits."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable

import pytest

from harborbench.harborai.core.sse import SSEDecoder, SSEEvent

E = SSEEvent

# (id, stream bytes, expected events in standard mode)
CASES: list[tuple[str, bytes, list[SSEEvent]]] = [
    ("lf", b"data: hello\n\n", [E(data="hello")]),
    ("crlf", b"data: hello\r\n\r\n", [E(data="hello")]),
    ("cr", b"data: hello\r\r", [E(data="hello")]),
    (
        "mixed-line-ends",
        b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\n\n",
        [E(data="a\nb\nc"), E(data="d")],
    ),
    ("no-space-after-colon", b"data:x\n\n", [E(data="x")]),
    ("only-one-space-removed", b"data:  two spaces\n\n", [E(data=" two spaces")]),
    ("tab-is-kept", b"data:\tx\n\n", [E(data="\tx")]),
    ("colon-in-value", b'data: {"a":1}\n\n', [E(data='{"a":1}')]),
    (
        "multi-line-data",
        b"data: one\ndata: two\ndata:\ndata: four\n\n",
        [E(data="one\ntwo\n\nfour")],
    ),
    (
        "comments-ignored",
        b": keep-alive\ndata: x\n:another\n\n: ping\n\n",
        [E(data="x")],
    ),
    ("empty-data-field-dispatches-empty-string", b"data:\n\n", [E(data="")]),
    ("field-without-colon-is-empty-value", b"data\n\n", [E(data="")]),
    ("no-data-no-dispatch", b"event: x\nid: 1\n\n", []),
    (
        "event-type-reset-after-dispatch-and-after-empty-block",
        b"event: a\ndata: 1\n\nevent: b\n\ndata: 2\n\n",
        [E(event="a", data="1", id=None), E(data="2")],
    ),
    (
        "id-persists-and-can-be-reset",
        b"id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
        [E(data="a", id="7"), E(data="b", id="7"), E(data="c", id="")],
    ),
    (
        "id-with-null-ignored",
        b"id: 1\ndata: a\n\nid: x\x00y\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b", id="1")],
    ),
    (
        "retry-only-ascii-digits",
        "retry: 1500\ndata: a\n\nretry: 15x\ndata: b\n\nretry: \u0661\u0662\ndata: c\n\n"
        "retry:\ndata: d\n\n".encode(),
        [E(data="a", retry_ms=1500), E(data="b"), E(data="c"), E(data="d")],
    ),
    ("unknown-fields-ignored", b"foo: bar\ndata: x\nDATA: y\ndata : z\n\n", [E(data="x")]),
    (
        "multi-byte-utf8",
        "data: héllo — 日本語 🎉\n\n".encode(),
        [E(data="héllo — 日本語 🎉")],
    ),
    ("leading-bom-dropped", b"\xef\xbb\xbfdata: a\n\n", [E(data="a")]),
    (
        "second-bom-is-text",  # only the stream's first BOM is dropped
        b"\xef\xbb\xbfdata: a\n\n\xef\xbb\xbfdata: b\n\n",
        [E(data="a")],
    ),
    ("invalid-utf8-replaced", b"data: a\xffb\xc3\n\n", [E(data="a\ufffdb\ufffd")]),
    ("incomplete-event-discarded", b"data: a\n\ndata: b\n", [E(data="a")]),
    ("unterminated-last-line-discarded", b"data: a\n\ndata: b", [E(data="a")]),
    ("done-is-plain-data", b"data: [DONE]\n\n", [E(data="[DONE]")]),
]


def _openai_stream_with_error_event() -> tuple[bytes, list[SSEEvent]]:
    chunks = [{"choices": [{"delta": {"content": text}}]} for text in ("Hel", "lo ", "wörld")]
    raw = "".join(f"data: {json.dumps(c, ensure_ascii=False)}\r\n\r\n" for c in chunks[:2])
    raw += 'event: error\r\ndata: {"error": {"message": "overloaded", "code": 503}}\r\n\r\n'
    raw += f"data: {json.dumps(chunks[2], ensure_ascii=False)}\r\n\r\n: done soon\r\n"
    raw += "data: [DONE]\r\n\r\n"
    expected = [
        E(data=json.dumps(chunks[0], ensure_ascii=False)),
        E(data=json.dumps(chunks[1], ensure_ascii=False)),
        E(event="error", data='{"error": {"message": "overloaded", "code": 503}}'),
        E(data=json.dumps(chunks[2], ensure_ascii=False)),
        E(data="[DONE]"),
    ]
    return raw.encode(), expected


CASES.append(("openai-stream-with-error-event-mid-stream", *_openai_stream_with_error_event()))
CASE_IDS = [case[0] for case in CASES]


def whole(raw: bytes) -> list[bytes]:
    return [raw]


def byte_by_byte(raw: bytes) -> list[bytes]:
    return [raw[i : i + 1] for i in range(len(raw))]


def random_splits(seed: int) -> Callable[[bytes], list[bytes]]:
    def split(raw: bytes) -> list[bytes]:
        rng = random.Random(seed)
        cuts = sorted(rng.sample(range(len(raw) + 1), k=min(len(raw) + 1, rng.randint(1, 12))))
        bounds = [0, *cuts, len(raw)]
        return [raw[a:b] for a, b in itertools.pairwise(bounds)]  # empty pieces included

    return split


SPLITTERS = [whole, byte_by_byte, *(random_splits(seed) for seed in range(40))]
SPLITTER_IDS = ["whole", "bytes", *(f"seed{seed}" for seed in range(40))]


def decode(pieces: list[bytes], **options: bool) -> list[SSEEvent]:
    decoder = SSEDecoder(**options)
    events: list[SSEEvent] = []
    for piece in pieces:
        events += decoder.feed(piece)
    events += decoder.close()
    return events


@pytest.mark.parametrize(("name", "raw", "expected"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("split", SPLITTERS, ids=SPLITTER_IDS)
def test_framing_case_gives_the_same_events_however_split(
    name: str, raw: bytes, expected: list[SSEEvent], split: Callable[[bytes], list[bytes]]
) -> None:
    pieces = split(raw)
    assert b"".join(pieces) == raw
    assert decode(pieces) == expected


def test_cr_at_chunk_end_and_lf_at_next_chunk_start_is_one_line_end() -> None:
    # Counted as two line ends, the LF would be a blank line and dispatch "a" on its own.
    assert decode([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [E(data="a\nb")]
    assert decode([b"data: a\r", b"\n", b"data: b\r", b"\r"]) == [E(data="a\nb")]
    # A CR that ends a chunk, followed by a chunk of no text at all, still pairs with the LF.
    assert decode([b"data: a\r", b"", b"\ndata: \xc3", b"\xa9\n\n"]) == [E(data="a\né")]


def test_two_crs_are_two_line_ends() -> None:
    assert decode([b"data: a\r", b"\rdata: b\n\n"]) == [E(data="a"), E(data="b")]


def test_multi_byte_character_split_inside_its_bytes() -> None:
    raw = "data: 🎉\n\n".encode()
    start = raw.index(b"\xf0")
    for cut in range(start + 1, start + 4):
        assert decode([raw[:cut], raw[cut:]]) == [E(data="🎉")]


def test_events_are_returned_by_the_chunk_that_completes_them() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.has_pending is True
    assert decoder.feed(b"\ndata: b\n\ndata: c") == [E(data="a"), E(data="b")]
    assert decoder.has_pending is True
    assert decoder.feed(b"\n\n") == [E(data="c")]
    assert decoder.has_pending is False
    assert decoder.close() == []


def test_dispatch_incomplete_option_flushes_the_last_event_at_close() -> None:
    assert decode([b"data: a\n\ndata: b"], dispatch_incomplete=True) == [E(data="a"), E(data="b")]
    assert decode([b"event: e\ndata: b\n"], dispatch_incomplete=True) == [E(event="e", data="b")]
    truncated = "data: é".encode()[:-1]
    assert decode([truncated], dispatch_incomplete=True) == [E(data="\ufffd")]
    assert decode([b"data: a\n\n: comment"], dispatch_incomplete=True) == [E(data="a")]


def test_decoder_state_attributes() -> None:
    decoder = SSEDecoder()
    assert (decoder.last_event_id, decoder.retry_ms) == (None, None)
    decoder.feed(b"id: 42\nretry: 3000\n\nretry: nope\n\n")
    assert (decoder.last_event_id, decoder.retry_ms) == ("42", 3000)


def test_close_is_idempotent_and_feed_after_close_raises() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\n") == [E(data="a")]
    assert decoder.close() == []
    assert decoder.close() == []
    with pytest.raises(ValueError, match=r"feed\(\) called after close\(\)"):
        decoder.feed(b"data: b\n\n")


def test_long_stream_in_random_chunks_matches_whole() -> None:
    rng = random.Random(2024)
    lines: list[str] = []
    expected: list[SSEEvent] = []
    for n in range(500):
        text = "".join(rng.choice("ab é日🎉:\x00") for _ in range(rng.randint(0, 30)))
        eol = rng.choice(["\n", "\r", "\r\n"])
        lines.append(f"id: {n}{eol}data: {text}{eol}{eol}")
        expected.append(E(data=text, id=str(n)))
    raw = "".join(lines).encode()
    pieces: list[bytes] = []
    at = 0
    while at < len(raw):
        step = rng.randint(1, 64)
        pieces.append(raw[at : at + step])
        at += step
    assert decode(pieces) == expected
