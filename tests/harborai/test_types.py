"""Response objects built from JSON, malformed bodies, and the bounded string pool."""

from __future__ import annotations

import pytest

from harborbench.harborai.errors import APIError, StreamError
from harborbench.harborai.types import ChatCompletion, ChatCompletionChunk, StringPool, Usage


def test_chat_completion_from_json() -> None:
    body = {
        "id": "c1",
        "object": "chat.completion",
        "created": 17,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        "system_fingerprint": "ignored",
    }
    reply = ChatCompletion.from_json(body)
    assert (reply.id, reply.model, reply.created) == ("c1", "m", 17)
    assert reply.choices[0].message.content == "hi"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage == Usage(3, 1, 4)


@pytest.mark.parametrize(
    "body",
    [{}, {"id": "x", "model": "m"}, {"id": "x", "model": "m", "choices": [{"message": None}]}, []],
)
def test_malformed_completion_raises_api_error(body: object) -> None:
    with pytest.raises(APIError, match="malformed chat completion body"):
        ChatCompletion.from_json(body)


def test_chunk_from_json_with_usage_only() -> None:
    chunk = ChatCompletionChunk.from_json(
        {
            "id": "c",
            "model": "m",
            "choices": [],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
        }
    )
    assert chunk.choices == [] and chunk.usage == Usage(1, 2, 3)
    with pytest.raises(StreamError):
        ChatCompletionChunk.from_json({"id": "c", "model": "m", "choices": [{"delta": 5}]})


def test_string_pool_shares_and_stays_bounded() -> None:
    pool = StringPool(max_entries=2, max_length=5)
    a = "".join(["ab", "c"])
    b = "".join(["a", "bc"])
    assert a is not b
    assert pool(a) is a and pool(b) is a
    assert pool("x" * 6) == "x" * 6 and len(pool) == 1  # too long: not cached
    pool("d")
    pool("e")  # the pool is full: passes through
    assert len(pool) == 2
