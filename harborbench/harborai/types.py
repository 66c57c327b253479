"""Response objects of the chat-completions API, built from the server's JSON.

The shapes follow the OpenAI chat-completions wire format (``object: "chat.completion"`` and
``"chat.completion.chunk"``). Only the fields a benchmark needs are kept; unknown fields are
ignored. Every class is a frozen slotted dataclass: cheap to build and immutable.

A malformed body raises :class:`~harborbench.harborai.errors.InvalidResponseError` (whole
responses) or
:class:`~harborbench.harborai.errors.StreamError` (stream chunks); a caller never receives a
half-built response.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidResponseError, StreamError

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "Choice",
    "ChunkChoice",
    "Delta",
    "Message",
    "StringPool",
    "Usage",
]


class StringPool:
    """A bounded cache that returns one shared instance of repeated short strings.

    Used when ``enable_memory_optimization`` is on: fields that repeat across responses (model,
    role, finish reason) then share one string object instead of one copy per response.

    Args:
        max_entries: int, the most distinct strings kept; beyond it strings pass through uncached,
            so the cache never grows without bound.
        max_length: int, characters; longer strings are never cached.
    """

    __slots__ = ("_cache", "_max_entries", "_max_length")

    def __init__(self, max_entries: int = 256, max_length: int = 64) -> None:
        self._cache: dict[str, str] = {}
        self._max_entries = max_entries
        self._max_length = max_length

    def intern(self, value: str) -> str:
        """Return the shared instance equal to ``value`` (``value`` itself when not cached).

        Pass the bound method ``pool.intern`` where a function is called for every response:
        calling it costs about half of calling the pool itself (``pool(value)``, the same
        function, goes through the type's ``__call__`` slot).
        """
        cached = self._cache.get(value)
        if cached is not None:
            return cached
        if len(self._cache) < self._max_entries and len(value) <= self._max_length:
            self._cache[value] = value
        return value

    __call__ = intern

    def __len__(self) -> int:
        return len(self._cache)


def _same(value: str) -> str:
    return value


Interner = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts reported by the server.

    Attributes:
        prompt_tokens: int, tokens of the request's messages.
        completion_tokens: int, tokens generated.
        total_tokens: int, their sum as reported by the server.
    """

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Usage:
        """Build from a JSON ``usage`` object; raises KeyError/TypeError/ValueError if malformed."""
        prompt, completion, total = (
            data["prompt_tokens"],
            data["completion_tokens"],
            data["total_tokens"],
        )
        return _usage(
            prompt if type(prompt) is int else int(prompt),
            completion if type(completion) is int else int(completion),
            total if type(total) is int else int(total),
        )


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a completion: ``role`` (for example ``"assistant"``) and ``content``."""

    role: str
    content: str | None


@dataclass(frozen=True, slots=True)
class Choice:
    """One choice of a completion: its ``index``, ``message`` and ``finish_reason``."""

    index: int
    message: Message
    finish_reason: str | None


@dataclass(frozen=True, slots=True)
class ChatCompletion:
    """A complete (non-streamed) chat completion.

    Attributes:
        id: str, the server's completion id.
        model: str, the model that answered.
        created: int, Unix time in seconds, as sent by the server (0 if absent).
        choices: list of :class:`Choice`.
        usage: :class:`Usage`, or ``None`` when the server sent none.
    """

    id: str
    model: str
    created: int
    choices: list[Choice]
    usage: Usage | None

    @classmethod
    def from_json(cls, data: Any, intern: Interner = _same) -> ChatCompletion:
        """Build from the decoded JSON body of a successful response.

        Args:
            data: the decoded JSON object.
            intern: str -> str, maps repeated strings to a shared instance (a StringPool).

        Returns:
            the ChatCompletion.

        Required, as the official ``openai`` SDK's ``ChatCompletion`` needs them to be usable:
        an ``id``, a ``choices`` list and a ``message.role`` in each choice. Everything else may
        be missing, as the SDK accepts: ``model`` (``""``), ``created`` (0), ``usage`` (None),
        ``object``, ``finish_reason``, ``index`` (the position), ``content`` (None).

        Raises:
            InvalidResponseError: the body is not a chat completion (missing or mistyped fields).
        """
        if not isinstance(data, dict):
            raise InvalidResponseError(f"response body is JSON but not an object: {_start(data)}")
        completion_id = data.get("id")
        if completion_id is None:
            raise InvalidResponseError(f"chat completion without 'id': {_start(data)}")
        raw_choices = data.get("choices")
        if not isinstance(raw_choices, list):
            raise InvalidResponseError(f"chat completion without a 'choices' list: {_start(data)}")
        # Once a response: objects built inline through their slot setters, and int()/str()
        # only on values that are not already of that type (the same results, fewer calls).
        try:
            choices = []
            for i, c in enumerate(raw_choices):
                message: Any = c.get("message") if isinstance(c, dict) else None
                role = message.get("role") if isinstance(message, dict) else None
                if not isinstance(role, str):
                    raise InvalidResponseError(
                        f"chat completion choice {i} without 'message.role': {_start(data)}"
                    )
                msg: Message = _new(Message)
                _set_message_role(msg, intern(role))
                _set_message_content(msg, message.get("content"))
                index = c.get("index", i)
                finish = c.get("finish_reason")
                if finish is not None:
                    finish = intern(finish if type(finish) is str else str(finish))
                choice: Choice = _new(Choice)
                _set_choice_index(choice, index if type(index) is int else int(index))
                _set_message(choice, msg)
                _set_choice_finish(choice, finish)
                choices.append(choice)
            usage_data = data.get("usage")
            model = data.get("model") or ""
            created = data.get("created") or 0
            obj: ChatCompletion = _new(ChatCompletion)
            _set_completion_id(
                obj, completion_id if type(completion_id) is str else str(completion_id)
            )
            _set_completion_model(obj, intern(model if type(model) is str else str(model)))
            _set_created(obj, created if type(created) is int else int(created))
            _set_completion_choices(obj, choices)
            _set_completion_usage(obj, Usage.from_json(usage_data) if usage_data else None)
            return obj
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidResponseError(f"malformed chat completion body: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class Delta:
    """The increment a stream chunk carries: ``role`` (first chunk) and ``content`` text."""

    role: str | None
    content: str | None


@dataclass(frozen=True, slots=True)
class ChunkChoice:
    """One choice of a stream chunk: its ``index``, ``delta`` and ``finish_reason``."""

    index: int
    delta: Delta
    finish_reason: str | None


@dataclass(frozen=True, slots=True)
class ChatCompletionChunk:
    """One Server-Sent Event of a streamed completion.

    Attributes:
        id: str, the completion id (the same for every chunk of a stream).
        model: str, the model that answers.
        choices: list of :class:`ChunkChoice` (empty in a final usage-only chunk).
        usage: :class:`Usage` in the final chunk when the request asked for it, else ``None``.
    """

    id: str
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None

    @classmethod
    def from_json(cls, data: Any, intern: Interner = _same) -> ChatCompletionChunk:
        """Build from the decoded JSON of one ``data:`` event.

        Args:
            data: the decoded JSON object.
            intern: str -> str, maps repeated strings to a shared instance (a StringPool).

        Like the official ``openai`` SDK, a chunk may lack ``id``, ``model`` (both ``""``) and
        ``choices`` (empty); it must be a JSON object, with well-formed choices and usage.

        Returns:
            the chunk.

        Raises:
            StreamError: the event is not a chat completion chunk.
        """
        try:
            choices = []
            raw_choices = data.get("choices")
            if raw_choices:
                for i, c in enumerate(raw_choices):
                    delta = c.get("delta") or _NO_DELTA
                    role = delta.get("role")
                    finish = c.get("finish_reason")
                    index = c.get("index", i)
                    choices.append(
                        _chunk_choice(
                            index if type(index) is int else int(index),
                            _delta(
                                None if role is None else intern(str(role)),
                                delta.get("content"),
                            ),
                            None if finish is None else intern(str(finish)),
                        )
                    )
            usage_data = data.get("usage")
            chunk_id = data.get("id")
            model = data.get("model")
            return _chunk(
                chunk_id if type(chunk_id) is str else str(chunk_id or ""),
                intern(model if type(model) is str else str(model or "")),
                choices,
                Usage.from_json(usage_data) if usage_data else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StreamError(f"malformed stream chunk: {exc!r}") from exc


# Builders of the frozen response objects for the hot path (every response, every stream chunk):
# they set the slots through their descriptors, about 3x cheaper than a frozen dataclass's
# __init__ (which goes through object.__setattr__ per field); the objects are the same, and as
# immutable. (The four __init__ calls of a plain response were half the cost of from_json.)
_NO_DELTA: dict[str, Any] = {}
_new = object.__new__


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    setter: Callable[[Any, Any], None] = getattr(cls, name).__set__
    return setter


_set_role, _set_content = _slot_setter(Delta, "role"), _slot_setter(Delta, "content")
_set_index = _slot_setter(ChunkChoice, "index")
_set_delta = _slot_setter(ChunkChoice, "delta")
_set_finish = _slot_setter(ChunkChoice, "finish_reason")
_set_id = _slot_setter(ChatCompletionChunk, "id")
_set_model = _slot_setter(ChatCompletionChunk, "model")
_set_choices = _slot_setter(ChatCompletionChunk, "choices")
_set_usage = _slot_setter(ChatCompletionChunk, "usage")
_set_prompt = _slot_setter(Usage, "prompt_tokens")
_set_completion = _slot_setter(Usage, "completion_tokens")
_set_total = _slot_setter(Usage, "total_tokens")
_set_message_role = _slot_setter(Message, "role")
_set_message_content = _slot_setter(Message, "content")
_set_choice_index = _slot_setter(Choice, "index")
_set_message = _slot_setter(Choice, "message")
_set_choice_finish = _slot_setter(Choice, "finish_reason")
_set_completion_id = _slot_setter(ChatCompletion, "id")
_set_completion_model = _slot_setter(ChatCompletion, "model")
_set_created = _slot_setter(ChatCompletion, "created")
_set_completion_choices = _slot_setter(ChatCompletion, "choices")
_set_completion_usage = _slot_setter(ChatCompletion, "usage")


def _usage(prompt_tokens: int, completion_tokens: int, total_tokens: int) -> Usage:
    obj: Usage = _new(Usage)
    _set_prompt(obj, prompt_tokens)
    _set_completion(obj, completion_tokens)
    _set_total(obj, total_tokens)
    return obj


def _delta(role: str | None, content: str | None) -> Delta:
    obj: Delta = _new(Delta)
    _set_role(obj, role)
    _set_content(obj, content)
    return obj


def _chunk_choice(index: int, delta: Delta, finish_reason: str | None) -> ChunkChoice:
    obj: ChunkChoice = _new(ChunkChoice)
    _set_index(obj, index)
    _set_delta(obj, delta)
    _set_finish(obj, finish_reason)
    return obj


def _chunk(
    chunk_id: str, model: str, choices: list[ChunkChoice], usage: Usage | None
) -> ChatCompletionChunk:
    obj: ChatCompletionChunk = _new(ChatCompletionChunk)
    _set_id(obj, chunk_id)
    _set_model(obj, model)
    _set_choices(obj, choices)
    _set_usage(obj, usage)
    return obj


def _start(data: Any) -> str:
    """The start of a decoded body, for an error message."""
    return repr(data)[:200]
