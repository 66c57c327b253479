"""ChunkDecoder: chat-completions meaning of SSE events ([DONE], errors, chunks before them)."""

from __future__ import annotations

import json

import pytest

from harborbench.harborai.core.streaming import (
    ChunkDecoder,
    is_event_stream,
    not_an_event_stream,
)
from harborbench.harborai.errors import InvalidResponseError, StreamError


def _event(content: str, finish: str | None = None) -> bytes:
    obj = {
        "id": "c1",
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
    }
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
    with pytest.raises(StreamError, match=r"before any finish_reason and without 'data: \[DONE\]'"):
        decoder.close()
    assert not decoder.done_marker_missing


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"event: error\ndata: overloaded\n\n", "error event in stream: overloaded"),
        (b'data: {"error": {"message": "quota"}}\n\n', 'error in stream: {"message": "quota"}'),
        (b"data: {not json\n\n", "stream event is not JSON"),
        (b'data: {"id": "x", "choices": [1]}\n\n', "malformed stream chunk"),
        (b"data: [1, 2]\n\n", "not a JSON object"),
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


@pytest.mark.parametrize(
    "done", [b"data: [DONE] \n\n", b"data: [DONE]\t\r\n\r\n", b"data:  [DONE]  \n\n"]
)
def test_done_with_surrounding_whitespace_ends_the_stream(done: bytes) -> None:
    decoder = ChunkDecoder(str)
    chunks = decoder.feed(_event("a") + done + _event("after"))
    chunks += decoder.close()  # no StreamError
    assert _texts(chunks) == ["a"]
    assert decoder.done and not decoder.done_marker_missing


def test_clean_end_after_a_finish_reason_without_done_is_complete_and_recorded() -> None:
    decoder = ChunkDecoder(str)
    chunks = decoder.feed(_event("a") + _event("", finish="stop"))
    chunks += decoder.close()
    assert _texts(chunks) == ["a", ""]
    assert decoder.done and decoder.finished and decoder.done_marker_missing


def test_end_in_the_middle_of_an_event_after_a_finish_reason_is_still_broken() -> None:
    decoder = ChunkDecoder(str)
    decoder.feed(_event("a", finish="stop") + b'data: {"id": "c1", "choi')
    with pytest.raises(StreamError, match="in the middle of an event"):
        decoder.close()


def test_error_member_that_is_null_is_not_an_error_as_in_the_sdk() -> None:
    decoder = ChunkDecoder(str)
    ok = b'data: {"id": "c1", "error": null, "choices": [{"delta": {"content": "x"}}]}\n\n'
    assert _texts(decoder.feed(ok)) == ["x"]
    assert decoder.error is None


def test_chunk_without_id_model_or_choices_is_accepted_as_in_the_sdk() -> None:
    decoder = ChunkDecoder(str)
    chunks = decoder.feed(b'data: {"usage": {"prompt_tokens": 1, "completion_tokens": 2, '
                          b'"total_tokens": 3}}\n\n')  # fmt: skip
    assert len(chunks) == 1 and chunks[0].choices == [] and chunks[0].id == ""
    assert chunks[0].usage is not None and chunks[0].usage.completion_tokens == 2


@pytest.mark.parametrize(
    ("content_type", "accepted"),
    [
        (None, True),
        ("text/event-stream", True),
        ("text/event-stream; charset=utf-8", True),
        ("Text/Event-Stream", True),
        ("application/json", False),
        ("text/plain", False),
    ],
)
def test_is_event_stream(content_type: str | None, accepted: bool) -> None:
    assert is_event_stream(content_type) is accepted


def test_not_an_event_stream_names_a_json_body_and_other_types() -> None:
    json_error = not_an_event_stream("application/json; charset=utf-8", b'{"id": "x"}')
    assert isinstance(json_error, InvalidResponseError)
    assert "answered with a JSON body (Content-Type application/json)" in str(json_error)
    assert '"stream": true' in str(json_error) and '{"id": "x"}' in str(json_error)
    other = not_an_event_stream("text/html", b"<html>")
    assert "answered with Content-Type 'text/html', not text/event-stream" in str(other)


@pytest.mark.parametrize(
    ("event", "ok"),
    [
        (b'data: {"choices": [{"delta": {"content": "x"}}]}  \n\n', True),
        (b'data: {"choices": []} {"more": 1}\n\n', False),
        (b'data: {"choices": [\n\n', False),
        (b"data: {\n\n", False),
    ],
)
def test_json_of_an_event_must_be_one_whole_value(event: bytes, ok: bool) -> None:
    decoder = ChunkDecoder(str)
    decoder.feed(event)
    assert (decoder.error is None) is ok
    if not ok:
        assert "stream event is not JSON" in str(decoder.error)
