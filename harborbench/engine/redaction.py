"""Secrets out of recorded text: the one place where known secret values are masked.

A run knows its secrets: the API key read from ``target.api_key_env`` and the values of
``request.headers`` (written in the profile or read from ``{env: NAME}``). A target may echo
them back in an error body (``401 Incorrect API key provided: Bearer sk-...``); every failure
text recorded in a result, and from there printed (the "first error" line), written
(``result.json``'s ``failure_examples``, the HTML report) or logged, goes through
:func:`redact` first (:meth:`harborbench.engine.recorder.Recorder.failure` does it).
"""

from __future__ import annotations

from collections.abc import Iterable

#: What replaces a secret value (a header value, an API key) in anything written or printed.
REDACTED = "<redacted>"

#: Values shorter than this are not masked: a header such as ``X-Debug: 1`` is no credential,
#: and replacing every ``1`` would garble the message (``HTTP 40<redacted>``).
MIN_SECRET_CHARS = 4


def secret_values(api_key: str | None, headers: Iterable[str]) -> tuple[str, ...]:
    """The values to mask in recorded text, longest first.

    Args:
        api_key: the key the client sends, or None.
        headers: the request header values sent with every request (resolved from the
            environment where the profile says ``{env: NAME}``).

    Returns:
        The distinct values of at least :data:`MIN_SECRET_CHARS` characters, longest first
        (so that a secret containing a shorter one is masked whole).
    """
    found = {v for v in (api_key, *headers) if v and len(v) >= MIN_SECRET_CHARS}
    return tuple(sorted(found, key=lambda v: (-len(v), v)))


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by :data:`REDACTED`.

    Args:
        text: a failure message (an exception's text, which may quote the server's answer).
        secrets: the values to mask, longest first (:func:`secret_values`).

    Returns:
        The masked text (``text`` itself when no secret occurs in it).
    """
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text
