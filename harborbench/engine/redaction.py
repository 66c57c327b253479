"""Secrets out of recorded text: the one place where known secret values are masked.

A run knows its secrets: the API key read from ``target.api_key_env`` and the values of
``request.headers`` (written in the profile or read from ``{env: NAME}``). A target may echo
them back in an error body (``401 Incorrect API key provided: Bearer sk-...``); every failure
text recorded in a result, and from there printed (the "first error" line), written
(``result.json``'s ``failure_examples``, the HTML report) or logged, goes through
:func:`redact` first (:meth:`harborbench.engine.recorder.Recorder.failure` does it).

A server may also echo a secret encoded: percent-encoded in a URL or form body, or in base64
(an ``Authorization: Basic`` value is ``base64(user:password)``). :func:`secret_values` adds
those forms, so they are masked too.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

#: What replaces a secret value (a header value, an API key) in anything written or printed.
REDACTED = "<redacted>"

#: Values shorter than this are not masked: a header such as ``X-Debug: 1`` is no credential,
#: and replacing every ``1`` would garble the message (``HTTP 40<redacted>``).
MIN_SECRET_CHARS = 4

#: A base64 form is masked only when it has at least this many characters: a shorter run of
#: base64 characters could be ordinary text.
MIN_BASE64_CHARS = 8

_URL_SAFE = str.maketrans("+/", "-_")


def encoded_forms(value: str) -> set[str]:
    """The encodings of ``value`` that a server may echo, other than ``value`` itself.

    - percent-encoded, as in a URL path or query (``quote``) and a form body (``quote_plus``);
    - base64, standard and URL-safe alphabets (RFC 4648 sections 4 and 5). Inside longer
      base64 text (``base64("user:" + key)``) the value's bytes start at offset 0, 1 or 2 of
      a 3-byte group, and for each offset the characters that encode only the value's bits
      are the same whatever surrounds it: those characters are the form, one per offset.

    Args:
        value: a secret (API key, header value).

    Returns:
        The forms that differ from ``value`` (base64 forms of at least
        :data:`MIN_BASE64_CHARS` characters).
    """
    forms = {quote(value, safe=""), quote_plus(value)}
    raw = value.encode()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        # character i holds bits [6i, 6i + 6): keep those inside the value's bits
        # [8 * offset, 8 * (offset + len(raw)))
        inner = encoded[(8 * offset + 5) // 6 : 8 * (offset + len(raw)) // 6]
        if len(inner) >= MIN_BASE64_CHARS:
            forms.update((inner, inner.translate(_URL_SAFE)))
    forms.discard(value)
    return forms


def secret_values(api_key: str | None, headers: Iterable[str]) -> tuple[str, ...]:
    """The values to mask in recorded text, with their encoded forms, longest first.

    Args:
        api_key: the key the client sends, or None.
        headers: the request header values sent with every request (resolved from the
            environment where the profile says ``{env: NAME}``).

    Returns:
        The distinct values of at least :data:`MIN_SECRET_CHARS` characters and their
        :func:`encoded_forms`, longest first (so that a secret containing a shorter one is
        masked whole).
    """
    plain = {v for v in (api_key, *headers) if v and len(v) >= MIN_SECRET_CHARS}
    found = plain.union(*(encoded_forms(v) for v in plain))
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
