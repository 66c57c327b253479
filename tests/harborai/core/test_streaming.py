"""ChunkDecoder: chat-completions meaning of SSE events ([DONE], errors, chunks before them)."""

from __future__ import annotations

import json

import pytest

from harborbench.harborai.core.streaming import ChunkDecoder
from harborbench.harborai.errors import StreamError


def _event(content: str) -> bytes:
    obj = {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": content}}]}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _texts(chunks: list) -> list[str | None]:  # type: ignore[type-arg]
    return [c.choices[0].delta.content for c in chunks]


def test_chunks_split_anywhere_and_done() -> None:
    raw = _event("héllo") + _event(" wörld") + b"data: [DONE]\n\n" + _event("ignored")
    for size in (1, 2, 3, 7, len(raw)):
        decoder = ChunkDecoder(str)
        chunks = []
        for i in range(0, len(raw), size):
            chunks += decoder.feed(raw[i : i + size])
        chunks += decoder.close()
        assert _texts(chunks) == ["héllo", " wörld"]
        assert decoder.done


def test_end_without_done_is_a_stream_error() -> None:
    decoder = ChunkDecoder(str)
    assert _texts(decoder.feed(_event("a"))) == ["a"]
    with pytest.raises(StreamError, match=r"before 'data: \[DONE\]'"):
        decoder.close()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"event: error\ndata: overloaded\n\n", "error event in stream: overloaded"),
        (b'data: {"error": {"message": "quota"}}\n\n', 'error in stream: {"message": "quota"}'),
        (b"data: {not json\n\n", "stream event is not JSON"),
        (b'data: {"id": "x"}\n\n', "malformed stream chunk"),
    ],
)
def test_error_comes_after_the_chunks_before_it(bad: bytes, message: str) -> None:
    decoder = ChunkDecoder(str)
    chunks = decoder.feed(_event("first") + bad + _event("never"))
    assert _texts(chunks) == ["first"]
    assert decoder.error is not None and message in str(decoder.error)
    with pytest.raises(StreamError) as again:
        decoder.feed(b"")
    assert again.value is decoder.error
    with pytest.raises(StreamError):
        decoder.close()
