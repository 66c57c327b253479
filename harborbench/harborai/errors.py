"""Exceptions raised by the HarborAI client (this subpackage imports nothing from harborbench).

::

    HarborAIError
    ├── ConfigError            invalid configuration; the message names the key (also a ValueError)
    ├── UnknownModelError      no provider serves the model; the message lists the known ones
    │                          (also a KeyError)
    ├── ClientClosedError      the client was used after close()/aclose()
    └── APIError               a request that did not come back as a successful response
        ├── APIStatusError     the server answered with a non-2xx status (``status_code``,
        │                      ``retry_after_s`` from a ``Retry-After`` header when present)
        ├── APITimeoutError    no complete answer within the request timeout
        ├── APIConnectionError the connection could not be made, or broke before an answer
        ├── InvalidResponseError a 2xx answer that is not what was asked for: a body that is not
        │                      JSON or not a chat completion, or a stream request answered
        │                      with a JSON body or another content type than an event stream
        └── StreamError        a stream broke off, was malformed, or carried an error event
"""

from __future__ import annotations


class HarborAIError(Exception):
    """Base of every error raised by the HarborAI client."""


class ConfigError(HarborAIError, ValueError):
    """An invalid client configuration; the message names the key and the fix."""


class UnknownModelError(HarborAIError, KeyError):
    """No registered provider serves the requested model.

    Attributes:
        model: the model that was asked for.
        known: the model names that are registered, sorted.
    """

    def __init__(self, model: str, known: list[str]) -> None:
        self.model = model
        self.known = sorted(known)
        super().__init__(
            f"unknown model {model!r}; known models: {', '.join(self.known) or '(none)'}"
        )

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0])


class ClientClosedError(HarborAIError):
    """The client was used after ``close()`` or ``aclose()``."""


class APIError(HarborAIError):
    """A request that did not end in a successful, parsed response."""


class APIStatusError(APIError):
    """The server answered with a non-2xx HTTP status.

    Attributes:
        status_code: the HTTP status, for example 429 or 503.
        retry_after_s: seconds from the ``Retry-After`` header, or ``None``.
        body: the start of the response body (at most 1 KiB), for diagnostics.
    """

    def __init__(
        self, status_code: int, *, retry_after_s: float | None = None, body: str = ""
    ) -> None:
        self.status_code = status_code
        self.retry_after_s = retry_after_s
        self.body = body[:1024]
        super().__init__(f"HTTP {status_code}" + (f": {self.body[:200]}" if self.body else ""))


class APITimeoutError(APIError):
    """No complete answer arrived within the request timeout."""


class APIConnectionError(APIError):
    """The connection could not be made or broke before a complete answer.

    Attributes:
        maybe_executed: bool, True when the connection broke after the request was written
            (reset, server disconnect, broken body): the server may have executed it. False
            when no connection was made (refused, DNS), so the server never saw the request.
    """

    def __init__(self, message: str, *, maybe_executed: bool = False) -> None:
        super().__init__(message)
        self.maybe_executed = maybe_executed


class InvalidResponseError(APIError):
    """A 2xx answer that is not a valid answer to the request.

    Raised for a body that is not JSON, a JSON body that is not a chat completion (no ``id``, no
    ``choices`` list, a choice without ``message.role``), and a stream request answered with a
    JSON body or a content type other than ``text/event-stream``. The message says which.
    """


class StreamError(APIError):
    """A streamed response broke off, was malformed, or carried an error event."""
