"""Secrets out of recorded text: the one place where known secret values are masked.

A run knows its secrets: the API key read from ``target.api_key_env`` and the values of
``request.headers`` (written in the profile or read from ``{env: NAME}``). A target may echo
them back in an error body (``401 Incorrect API key provided: Bearer sk-...``); every failure
text recorded in a result, and from there printed (the "first error" line), written
(``result.json``'s ``failure_examples``, the HTML report) or logged, goes through
:func:`redact` first (:meth:`harborbench.engine.recorder.Recorder.failure` does it).

A server may also echo a secret encoded (percent-encoded in a URL or form body, escaped in
JSON or HTML, in base64: an ``Authorization: Basic`` value is ``base64(user:password)``), in
other case, or cut short. :func:`redact` decodes the common escapes, ignores case and masks
long enough pieces; :func:`secret_values` adds the forms it cannot decode
(:func:`encoded_forms`), so all of these are masked too.
"""

from __future__ import annotations

import base64
import json
import re
import sys
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

#: A form of at least this many characters is masked wherever a long enough piece of it occurs
#: (a key cut short, then maybe encoded); a shorter one only whole (a short header value's
#: piece could be ordinary text) ...
MIN_PARTIAL_SECRET_CHARS = 16
#: ... a piece being at least half the form and at least this many characters.
MIN_PARTIAL_CHARS = 12

_URL_SAFE = str.maketrans("+/", "-_")


def encoded_forms(value: str) -> set[str]:
    """The forms of ``value`` that a server may echo and :func:`redact` cannot decode itself.

    :func:`redact` reads text with its percent-encoding of ASCII, JSON ``\\uXXXX`` and ``\\/``,
    and HTML character references decoded, so those need no form here. The forms are:

    - percent-encoded with its non-ASCII bytes (``quote``), and as a form body (``quote_plus``,
      with ``/`` encoded or kept: a space is ``+``);
    - escaped in a JSON string (``\\"``, ``\\\\``, control characters, non-ASCII);
    - hexadecimal of its UTF-8 bytes;
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
    forms = {quote(value, safe=""), quote_plus(value), quote_plus(value, "/")}
    forms.add(value.encode().hex())
    forms.update((json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]))
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
        :func:`encoded_forms`, longest first.
    """
    plain = {v for v in (api_key, *headers) if v and len(v) >= MIN_SECRET_CHARS}
    found = plain.union(*(encoded_forms(v) for v in plain))
    return tuple(sorted(found, key=lambda v: (-len(v), v)))


def piece_chars(form_chars: int) -> int:
    """The shortest piece of a form of ``form_chars`` characters that is masked.

    The whole form below :data:`MIN_PARTIAL_SECRET_CHARS`; else half of it (rounded up), at
    least :data:`MIN_PARTIAL_CHARS`.
    """
    if form_chars < MIN_PARTIAL_SECRET_CHARS:
        return form_chars
    return max(MIN_PARTIAL_CHARS, (form_chars + 1) // 2)


#: Escapes that servers write inside text (URL percent-encoding of ASCII, JSON ``\\uXXXX`` and
#: ``\\/``, HTML character references): :func:`redact` also reads the text with them decoded.
_ESCAPE = re.compile(
    r"%[0-7][0-9A-Fa-f]|\\u[0-9A-Fa-f]{4}|\\/|&#[xX][0-9A-Fa-f]{1,6};|&#[0-9]{1,7};"
    r"|&(?:amp|lt|gt|quot|apos);"
)
_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&apos;": "'"}


def _lower(char: str) -> str:
    """``char`` in lower case, kept one character (``"İ".lower()`` is two)."""
    low = char.lower()
    return low if len(low) == 1 else char


def _unescape(token: str) -> str:
    if token[0] == "%":
        return chr(int(token[1:], 16))
    if token == "\\/":
        return "/"
    if token[0] == "\\":
        return chr(int(token[2:], 16))
    if token in _ENTITIES:
        return _ENTITIES[token]
    number = int(token[3:-1], 16) if token[2] in "xX" else int(token[2:-1])
    return chr(number) if number <= sys.maxunicode else "\ufffd"


def _decoded(
    chars: list[str], spans: list[tuple[int, int]]
) -> tuple[list[str], list[tuple[int, int]]]:
    """One pass of decoding :data:`_ESCAPE` over text given as characters and the span of the
    original text each comes from; returns the same for the decoded text."""
    text = "".join(chars)
    out_chars: list[str] = []
    out_spans: list[tuple[int, int]] = []
    pos = 0
    for m in _ESCAPE.finditer(text):
        out_chars.extend(chars[pos : m.start()])
        out_spans.extend(spans[pos : m.start()])
        out_chars.append(_unescape(m.group()))
        out_spans.append((spans[m.start()][0], spans[m.end() - 1][1]))
        pos = m.end()
    out_chars.extend(chars[pos:])
    out_spans.extend(spans[pos:])
    return out_chars, out_spans


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every piece of a secret replaced by :data:`REDACTED`.

    A run of characters is masked when it is covered by pieces of :func:`piece_chars`
    characters of one form (case ignored): a whole short form, or any long enough piece of a
    long one, so a key cut short (then maybe encoded) is masked as well as a whole one. The
    text is searched as written, and with its escapes decoded (percent-encoding of ASCII,
    JSON's ``\\uXXXX`` and ``\\/``, HTML character references; twice, for text encoded twice),
    so escapes mixed in any way still reveal nothing.

    Args:
        text: a failure message (an exception's text, which may quote the server's answer).
        secrets: the values to mask and their forms (:func:`secret_values`).

    Returns:
        The masked text (``text`` itself when no secret occurs in it).
    """
    forms = list(secrets)
    covered = bytearray(len(text))
    chars, spans = list(text), [(i, i + 1) for i in range(len(text))]
    views = [(chars, spans)]
    for _ in range(2):
        chars, spans = _decoded(chars, spans)
        if len(chars) == len(views[-1][0]):
            break  # nothing decoded: the same text again
        views.append((chars, spans))
    lowered_views = [("".join(map(_lower, chars)), spans) for chars, spans in views]
    for form in forms:  # each form's pieces built once, searched in every view
        width = piece_chars(len(form))
        folded = "".join(map(_lower, form))
        pieces = {folded[i : i + width] for i in range(len(folded) - width + 1)}
        for lowered, spans in lowered_views:
            if not 0 < width <= len(lowered):
                continue
            for i in range(len(lowered) - width + 1):
                if lowered[i : i + width] in pieces:
                    begin, end = spans[i][0], spans[i + width - 1][1]
                    covered[begin:end] = b"\1" * (end - begin)
    if not any(covered):
        return text
    out = []
    i = 0
    while i < len(text):
        if covered[i]:
            while i < len(text) and covered[i]:
                i += 1
            out.append(REDACTED)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
