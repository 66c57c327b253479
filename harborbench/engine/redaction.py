"""Secrets out of recorded text: the one place where known secret values are masked.

A run knows its secrets: the API key read from ``target.api_key_env`` and the values of
``request.headers`` (written in the profile or read from ``{env: NAME}``). A target may echo
them back in an error body (``401 Incorrect API key provided: Bearer sk-...``); every failure
text recorded in a result, and from there printed (the "first error" line), written
(``result.json``'s ``failure_examples``, the HTML report) or logged, goes through
:func:`redact` first (:meth:`harborbench.engine.recorder.Recorder.failure` does it).

A server may also echo a secret encoded (percent-encoded in a URL or form body, escaped in
JSON, in base64: an ``Authorization: Basic`` value is ``base64(user:password)``) or cut short.
:func:`secret_values` adds those forms (:func:`encoded_forms`), so they are masked too.
"""

from __future__ import annotations

import base64
import json
import re
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

#: Prefixes and suffixes of a secret are masked for values of at least this many characters
#: (credentials are long; a short header value's prefix could be ordinary text) ...
MIN_PARTIAL_SECRET_CHARS = 20
#: ... and when they keep at least this many of its characters (and half of them).
MIN_PARTIAL_CHARS = 12

_URL_SAFE = str.maketrans("+/", "-_")
_PERCENT_HEX = re.compile("%[0-9A-F]{2}")


def encoded_forms(value: str) -> set[str]:
    """The forms of ``value`` that a server may echo, other than ``value`` itself.

    - percent-encoded, as in a URL path or query (``quote``, with ``/`` kept or encoded) and a
      form body (``quote_plus``), with upper- and lower-case hex digits (RFC 3986 section 2.1
      makes them equivalent);
    - escaped in a JSON string (``\\uXXXX`` for non-ASCII, and ``\\/`` for ``/`` as PHP's
      ``json_encode`` writes it);
    - base64, standard and URL-safe alphabets (RFC 4648 sections 4 and 5). Inside longer
      base64 text (``base64("user:" + key)``) the value's bytes start at offset 0, 1 or 2 of
      a 3-byte group, and for each offset the characters that encode only the value's bits
      are the same whatever surrounds it: those characters are the form, one per offset;
    - for a value of :data:`MIN_PARTIAL_SECRET_CHARS` or more, its prefixes and suffixes of at
      least half its length (and :data:`MIN_PARTIAL_CHARS`): a server that echoes a key cut
      short (``sk-proj-abc...``) still gives most of it away.

    Args:
        value: a secret (API key, header value).

    Returns:
        The forms that differ from ``value`` (base64 forms of at least
        :data:`MIN_BASE64_CHARS` characters).
    """
    percent = {quote(value, safe=""), quote(value), quote_plus(value), quote_plus(value, "/")}
    percent |= {_PERCENT_HEX.sub(lambda m: m.group().lower(), p) for p in percent}
    escaped = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    escaped |= {e.replace("/", "\\/") for e in escaped}
    forms = percent | escaped
    raw = value.encode()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        # character i holds bits [6i, 6i + 6): keep those inside the value's bits
        # [8 * offset, 8 * (offset + len(raw)))
        inner = encoded[(8 * offset + 5) // 6 : 8 * (offset + len(raw)) // 6]
        if len(inner) >= MIN_BASE64_CHARS:
            forms.update((inner, inner.translate(_URL_SAFE)))
    if len(value) >= MIN_PARTIAL_SECRET_CHARS:
        for n in range(max(MIN_PARTIAL_CHARS, (len(value) + 1) // 2), len(value)):
            forms.update((value[:n], value[-n:]))
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
