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


class _Interned(dict[str, str]):
    """The strings of a :class:`StringPool`; a missing one is added while there is room."""

    __slots__ = ("max_entries", "max_length")

    def __init__(self, max_entries: int, max_length: int) -> None:
        super().__init__()
        self.max_entries = max_entries
        self.max_length = max_length

    def __missing__(self, value: str) -> str:
        if len(self) < self.max_entries and len(value) <= self.max_length:
            self[value] = value
        return value


class StringPool:
    """A bounded cache that returns one shared instance of repeated short strings.

    Used when ``enable_memory_optimization`` is on: fields that repeat across responses (model,
    role, finish reason) then share one string object instead of one copy per response.

    Args:
        max_entries: int, the most distinct strings kept; beyond it strings pass through uncached,
            so the cache never grows without bound.
        max_length: int, characters; longer strings are never cached.

    Attributes:
        intern: str -> str, returns the shared instance equal to its argument (the argument
            itself when not cached). Pass it where a function is called for every response: it
            is the cache's own ``dict.__getitem__`` (a built-in method; the cache adds a string
            in ``__missing__``), about half the cost of a Python method or of ``pool(value)``.
    """

    __slots__ = ("_cache", "intern")

    def __init__(self, max_entries: int = 256, max_length: int = 64) -> None:
        self._cache = _Interned(max_entries, max_length)
        self.intern: Callable[[str], str] = self._cache.__getitem__

    def __call__(self, value: str) -> str:
        """The shared instance equal to ``value``, as :attr:`intern`."""
        return self._cache[value]

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
        return _usage_from_json(data)


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
        # Once a response: every object is built as its mutable twin and sealed by a class
        # swap (see _twin); int()/str() only on values that are not already of that type (the
        # same results, fewer calls).
        try:
            choices = []
            i = 0
            for c in raw_choices:  # a counter, not enumerate(): 0.6k instructions less
                message: Any = c.get("message") if isinstance(c, dict) else None
                role = message.get("role") if isinstance(message, dict) else None
                if not isinstance(role, str):
                    raise InvalidResponseError(
                        f"chat completion choice {i} without 'message.role': {_start(data)}"
                    )
                msg = _MessageTwin()
                msg.role = intern(role)
                msg.content = message.get("content")
                msg.__class__ = Message
                index = c.get("index", i)
                finish = c.get("finish_reason")
                choice = _ChoiceTwin()
                choice.index = index if type(index) is int else int(index)
                choice.message = msg
                choice.finish_reason = (
                    None
                    if finish is None
                    else intern(finish if type(finish) is str else str(finish))
                )
                choice.__class__ = Choice
                choices.append(choice)
                i += 1  # noqa: SIM113
            usage_data = data.get("usage")
            model = data.get("model") or ""
            created = data.get("created") or 0
            obj = _ChatCompletionTwin()
            obj.id = completion_id if type(completion_id) is str else str(completion_id)
            obj.model = intern(model if type(model) is str else str(model))
            obj.created = created if type(created) is int else int(created)
            obj.choices = choices
            obj.usage = _usage_from_json(usage_data) if usage_data else None
            obj.__class__ = ChatCompletion
            result: ChatCompletion = obj
            return result
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
        try:  # objects built as in ChatCompletion.from_json
            choices = []
            raw_choices = data.get("choices")
            if raw_choices:
                i = 0
                for c in raw_choices:  # a counter, not enumerate(): 0.6k instructions less
                    delta_data = c.get("delta") or _NO_DELTA
                    role = delta_data.get("role")
                    finish = c.get("finish_reason")
                    index = c.get("index", i)
                    choice = _ChunkChoiceTwin()
                    choice.index = index if type(index) is int else int(index)
                    delta = _DeltaTwin()
                    delta.role = None if role is None else intern(str(role))
                    delta.content = delta_data.get("content")
                    delta.__class__ = Delta
                    choice.delta = delta
                    choice.finish_reason = None if finish is None else intern(str(finish))
                    choice.__class__ = ChunkChoice
                    choices.append(choice)
                    i += 1  # noqa: SIM113
            usage_data = data.get("usage")
            chunk_id = data.get("id")
            model = data.get("model")
            obj = _ChatCompletionChunkTwin()
            obj.id = chunk_id if type(chunk_id) is str else str(chunk_id or "")
            obj.model = intern(model if type(model) is str else str(model or ""))
            obj.choices = choices
            obj.usage = _usage_from_json(usage_data) if usage_data else None
            obj.__class__ = ChatCompletionChunk
            result: ChatCompletionChunk = obj
            return result
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StreamError(f"malformed stream chunk: {exc!r}") from exc


# The frozen response objects of the hot path (every response, every stream chunk) are built as
# mutable twins sealed by a class swap (_twin): about half the cost of setting their slots
# through the slot descriptors (object.__new__ and a descriptor call a field), which is itself
# about a third of a frozen dataclass's __init__ (object.__setattr__ a field).
_NO_DELTA: dict[str, Any] = {}


def _twin(cls: type) -> Any:
    """A mutable twin of the frozen slotted dataclass ``cls``: the same slots, no frozen
    ``__setattr__``.

    An object is built as the twin (each field set by a plain slot store, a few dozen
    instructions) and then becomes a ``cls`` by assigning its ``__class__``, which CPython
    allows between classes of the same layout (same slots, same base). About 1.4k instructions
    an object, against 1.0k for ``object.__new__`` plus 0.5k for each slot-descriptor call
    (valgrind counts); the result is an ordinary ``cls`` object, as immutable as one built by
    ``cls(...)``, and equal to it. (Measured on CPython 3.11 with the GIL; free-threaded builds
    may stop every thread to assign ``__class__``: measure there before relying on this.)

    Raises (at import, never on the request path):
        KeyError: ``cls`` defines no ``__slots__``.
        TypeError: the twin's layout is not ``cls``'s, so ``__class__`` cannot be assigned.
    """
    slots: tuple[str, ...] = vars(cls)["__slots__"]
    twin = type(f"_{cls.__name__}Twin", (), {"__slots__": slots})
    twin().__class__ = cls  # fails here, at import, if the layouts ever differ
    return twin


_UsageTwin, _MessageTwin, _ChoiceTwin = _twin(Usage), _twin(Message), _twin(Choice)
_ChatCompletionTwin, _DeltaTwin = _twin(ChatCompletion), _twin(Delta)
_ChunkChoiceTwin, _ChatCompletionChunkTwin = _twin(ChunkChoice), _twin(ChatCompletionChunk)


def _usage_from_json(data: Mapping[str, Any]) -> Usage:
    """:meth:`Usage.from_json`; ints are taken as they are, anything else goes through int()."""
    prompt, completion, total = (
        data["prompt_tokens"],
        data["completion_tokens"],
        data["total_tokens"],
    )
    usage = _UsageTwin()
    usage.prompt_tokens = prompt if type(prompt) is int else int(prompt)
    usage.completion_tokens = completion if type(completion) is int else int(completion)
    usage.total_tokens = total if type(total) is int else int(total)
    usage.__class__ = Usage
    result: Usage = usage
    return result


def _start(data: Any) -> str:
    """The start of a decoded body, for an error message."""
    return repr(data)[:200]
