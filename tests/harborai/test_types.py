"""Response objects built from JSON, malformed bodies, and the bounded string pool."""

from __future__ import annotations

import dataclasses

import pytest

from harborbench.harborai.errors import InvalidResponseError, StreamError
from harborbench.harborai.types import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    Delta,
    Message,
    StringPool,
    Usage,
)


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
    # Built through slot setters (the hot path): equal to the dataclasses built normally, and
    # as immutable.
    assert reply == ChatCompletion(
        "c1", "m", 17, [Choice(0, Message("assistant", "hi"), "stop")], Usage(3, 1, 4)
    )
    with pytest.raises(AttributeError):
        reply.choices[0].message.content = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "without 'id'"),
        ({"id": None, "choices": []}, "without 'id'"),
        ({"id": "x", "model": "m"}, "without a 'choices' list"),
        ({"id": "x", "choices": {"0": {}}}, "without a 'choices' list"),
        ({"id": "x", "model": "m", "choices": [{"message": None}]}, "choice 0 without"),
        ({"id": "x", "choices": [{"message": {"content": "hi"}}]}, "'message.role'"),
        ({"id": "x", "choices": [{"message": {"role": 3}}]}, "'message.role'"),
        ({"id": "x", "choices": [{"index": "a", "message": {"role": "r"}}]}, "malformed"),
        ([], "not an object"),
    ],
)
def test_malformed_completion_raises_invalid_response(body: object, message: str) -> None:
    with pytest.raises(InvalidResponseError, match=message):
        ChatCompletion.from_json(body)


def test_completion_accepts_what_the_official_sdk_accepts() -> None:
    """Only id, choices and message.role are required; the openai SDK builds the rest lazily."""
    minimal = {"id": "x", "choices": [{"message": {"role": "assistant"}}]}
    reply = ChatCompletion.from_json(minimal)
    assert (reply.id, reply.model, reply.created, reply.usage) == ("x", "", 0, None)
    assert reply.choices[0].message == Message("assistant", None)
    assert reply.choices[0].finish_reason is None and reply.choices[0].index == 0
    assert ChatCompletion.from_json({"id": "x", "choices": []}).choices == []
    openai = pytest.importorskip("openai")
    for body in (minimal, {"id": "x", "choices": []}):  # the SDK builds both without an error
        sdk = openai.types.chat.ChatCompletion.construct(**body)
        assert sdk.id == "x"


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
    assert pool.intern(b) is a  # the bound method the client passes around: the same function
    assert pool("x" * 6) == "x" * 6 and len(pool) == 1  # too long: not cached
    pool("d")
    pool("e")  # the pool is full: passes through
    assert len(pool) == 2


def test_built_objects_are_the_public_frozen_dataclasses() -> None:
    """from_json builds mutable twins and swaps their class: the results are the real classes."""
    reply = ChatCompletion.from_json(
        {
            "id": 7,
            "model": "m",
            "created": "17",
            "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": 1}],
            "usage": {"prompt_tokens": "3", "completion_tokens": 1, "total_tokens": 4.0},
        }
    )
    assert reply == ChatCompletion(
        "7", "m", 17, [Choice(0, Message("assistant", "hi"), "1")], Usage(3, 1, 4)
    )
    assert type(reply.usage) is Usage and type(reply.usage.total_tokens) is int
    objects = (reply, reply.choices[0], reply.choices[0].message, reply.usage)
    assert [type(o) for o in objects] == [ChatCompletion, Choice, Message, Usage]
    assert all(dataclasses.is_dataclass(o) for o in objects)
    assert hash(reply.usage) == hash(Usage(3, 1, 4))
    assert repr(reply.choices[0].message) == "Message(role='assistant', content='hi')"
    for obj in objects:
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.__setattr__(dataclasses.fields(obj)[0].name, None)
    chunk = ChatCompletionChunk.from_json(
        {"id": "c", "model": "m", "choices": [{"delta": {"role": "assistant", "content": "a"}}]}
    )
    assert chunk == ChatCompletionChunk(
        "c", "m", [ChunkChoice(0, Delta("assistant", "a"), None)], None
    )
    assert [type(chunk), type(chunk.choices[0]), type(chunk.choices[0].delta)] == [
        ChatCompletionChunk,
        ChunkChoice,
        Delta,
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        chunk.choices[0].delta.content = "b"  # type: ignore[misc]
