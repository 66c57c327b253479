"""Known secrets (the API key, header values) never reach a recorded failure text."""

from __future__ import annotations

import base64
import json

import pytest

from harborbench.engine.recorder import Recorder
from harborbench.engine.redaction import (
    REDACTED,
    encoded_forms,
    piece_chars,
    redact,
    secret_values,
)
from harborbench.engine.runner import arun, trial_secrets
from harborbench.errors import AllRequestsFailedError
from harborbench.profile import Profile, load_profile_dict
from harborbench.result import RunResult
from tests.bad_server import bad_server

KEY = "sk-SECRET-123"
TOKEN = "sk-SECRET-TOKEN-456"
LITERAL = "lit-SECRET-789"


def test_every_known_value_is_masked_longest_first() -> None:
    secrets = secret_values("abcd", ["abcd-efgh", "xyz", ""])
    assert {"abcd-efgh", "abcd"} <= set(secrets) and "xyz" not in secrets  # too short
    assert [len(s) for s in secrets] == sorted((len(s) for s in secrets), reverse=True)
    masked = redact("key abcd-efgh then abcd, not xyz", secrets)
    assert masked == f"key {REDACTED} then {REDACTED}, not xyz"


def test_a_secret_echoed_percent_encoded_is_masked() -> None:
    key = "sk/a+b=c d&e"
    secrets = secret_values(key, [])
    assert {key, "sk%2Fa%2Bb%3Dc%20d%26e", "sk%2Fa%2Bb%3Dc+d%26e"} <= set(secrets)
    for echoed in ("sk%2Fa%2Bb%3Dc%20d%26e", "sk%2Fa%2Bb%3Dc+d%26e", key):
        assert redact(f"GET /v1?key={echoed} 401", secrets) == f"GET /v1?key={REDACTED} 401"


@pytest.mark.parametrize("prefix", ["", "u", "us", "user:", "Bearer "])
@pytest.mark.parametrize("urlsafe", [False, True])
def test_a_secret_inside_base64_text_is_masked_at_every_offset(prefix: str, urlsafe: bool) -> None:
    key = "sk-proj-Z9/x+Y8?w>V7~u"  # encodes to both '+' and '/' characters
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    echoed = encode((prefix + key + "!").encode()).decode()
    masked = redact(f"Basic {echoed} rejected", secret_values(None, [key]))
    assert masked.count(REDACTED) == 1
    left = masked.removeprefix("Basic ").removesuffix(" rejected").replace(REDACTED, "")
    # what is left around the mask encodes the prefix, the "!" and at most 2 of the key's
    # bytes on each side (the characters that mix the key's bits with its neighbours')
    assert len(left) <= (8 * len(prefix) + 5) // 6 + 2 * 2 + 4


TESTER_KEY = "sk-SeCrEt+key/with=chars 123"


@pytest.mark.parametrize(
    "echoed",
    [
        "sk-SeCrEt%2Bkey/with%3Dchars%20123",  # urllib's quote(): '/' left as it is
        "sk-SeCrEt%2bkey%2fwith%3dchars%20123",  # lower-case hex digits
        "sk-SeCrEt%2bkey/with%3dchars+123",  # a form body, lower-case
        "sk-SeCrEt+key\\/with=chars 123",  # JSON with '/' escaped, as PHP writes it
        "sk-SeCrEt+key/with=chars",  # the key cut short by 4 characters
        "SeCrEt+key/with=chars 123",  # ... or its first 3 left out
        "sk-SeCrEt%2Bkey/with%3Dchars%20",  # cut short, then percent-encoded
        "sk-SeCrEt%2Bkey/wi",  # its first 16 characters, percent-encoded
        "sk-SeCrEt%252Bkey%252Fwith%253Dchars%2520123",  # percent-encoded twice
        "sk-SeCrEt+key\\u002fwith=chars 123",  # JSON's \u002f for '/'
        "sk-SeCrEt+key&#x2F;with=chars 123",  # HTML's &#x2F; for '/'
        "736b2d5365437245742b6b65792f776974683d636861727320313233",  # hexadecimal
        "SK-SECRET+KEY/WITH=CHARS 123",  # upper case
        "sk-SeCrEt\\u002bkey\\u002fwith=chars 123",  # JSON escapes of several characters
        "sk-SeCrEt&#43;key&#x2F;with&#x3d;chars&#32;123",  # HTML references, mixed
        "sk%2DSeCrEt\\u002Bkey&#47;with%3Dchars%20123",  # three kinds of escape mixed
        "sk-SeCrEt%252Bkey\\/with%253Dchars 123",  # encoded twice, mixed
    ],
)
def test_a_key_echoed_in_other_common_forms_is_masked(echoed: str) -> None:
    masked = redact(f"401 bad key '{echoed}'", secret_values(TESTER_KEY, []))
    assert masked == f"401 bad key '{REDACTED}'"


@pytest.mark.parametrize(
    ("echoed", "prefix_chars"),
    [
        ("c2stU2VDckV0K2tleS93aXRoPWNoYXJzIA", 0),  # base64 of the key cut short
        ("dXNlcjpzay1TZUNyRXQra2V5L3dpdGg9Y2hhcnMgMQ", 7),  # of "user:" + the key cut short
    ],
)
def test_a_key_cut_short_inside_base64_is_masked(echoed: str, prefix_chars: int) -> None:
    masked = redact(f"Basic {echoed}", secret_values(TESTER_KEY, []))
    rest = masked.removeprefix("Basic ")
    assert rest.count(REDACTED) == 1
    # left: the prefix's characters and at most 3 on each side of the key that mix its bits
    # with its neighbours' (under 3 bytes of the key)
    assert len(rest.replace(REDACTED, "")) <= prefix_chars + 6


def test_escapes_that_are_not_a_secret_are_kept() -> None:
    text = "GET /v1?q=a%20b&amp;c \\u00e9 &#x2F; &#99999999; \u0130 %ZZ"
    assert redact(text, secret_values("sk-unrelated-key-123", [])) == text


def test_only_long_forms_are_masked_piece_by_piece() -> None:
    assert [piece_chars(n) for n in (4, 15, 16, 24, 25, 30)] == [4, 15, 12, 12, 13, 15]
    fifteen, sixteen = "abcdefghijklmno", "abcdefghijklmnop"
    assert redact(f"<{fifteen[:14]}>", [fifteen]) == f"<{fifteen[:14]}>"  # whole forms only
    assert redact(f"<{fifteen}>", [fifteen]) == f"<{REDACTED}>"
    assert redact(f"<{sixteen[:12]}>", [sixteen]) == f"<{REDACTED}>"
    assert redact(f"<{sixteen[:11]}>", [sixteen]) == f"<{sixteen[:11]}>"
    assert redact(f"<{sixteen[4:]}>", [sixteen]) == f"<{REDACTED}>"  # a suffix too
    assert redact("x" * 5, ["abcdefghijklmnopqrstuvwxyz"]) == "x" * 5  # text below a piece


def test_short_values_get_no_base64_form() -> None:
    assert not {"YWJjZA", "YWJjZ", "FiY2Q", "hYmNk"} & encoded_forms("abcd")  # 5 chars or less
    # one form an offset (its base64 has no '+' or '/', so the URL-safe form is the same)
    assert {"YWJjZGVmZ2hpa", "FiY2RlZmdoaW", "hYmNkZWZnaGlq"} <= encoded_forms("abcdefghij")


def test_text_without_a_secret_is_kept_as_is() -> None:
    secrets = secret_values("sk-1234", ["1"])  # a 1-character header value is not masked
    text = "APIStatusError: HTTP 401: bad key"
    assert redact(text, secrets) == text
    assert secret_values(None, []) == ()


def test_the_recorder_keeps_the_first_example_masked_then_cut() -> None:
    rec = Recorder(0, 0.0, 10.0, open_loop=False, secrets=(KEY,))
    rec.failure(1, 1, 2, "http_401", "x" * 295 + KEY)  # the cut would keep a prefix of the key
    rec.failure(1, 1, 2, "http_401", "second")
    assert rec.failure_examples == {"http_401": ("x" * 295 + REDACTED)[:300]}
    plain = Recorder(0, 0.0, 10.0, open_loop=False)
    plain.failure(1, 1, 2, "http_401", KEY)
    assert plain.failure_examples == {"http_401": KEY}  # nothing known, nothing masked


def _profile(base_url: str) -> Profile:
    return load_profile_dict(
        {
            "name": "echo",
            "target": {"base_url": base_url, "api_key_env": "HB_SECRET"},
            "request": {
                "model": "m",
                "timeout": "5s",
                "headers": {"X-Api-Token": {"env": "X_TOK"}, "X-Literal": LITERAL},
            },
            "load": {"concurrency": 2},
            "warmup": "0s",
            "duration": "1s",
        }
    )


def test_trial_secrets_are_the_key_and_every_header_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_TOK", TOKEN)
    prof = _profile("http://127.0.0.1:9/v1")
    expected = {KEY, TOKEN, LITERAL}
    assert set(trial_secrets(prof, KEY)) == expected.union(*map(encoded_forms, expected))
    monkeypatch.delenv("X_TOK")
    assert set(trial_secrets(prof, None)) == {LITERAL} | encoded_forms(LITERAL)


async def test_a_401_that_echoes_the_key_and_a_header_records_neither(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HB_SECRET", KEY)
    monkeypatch.setenv("X_TOK", TOKEN)
    saved: list[RunResult] = []
    with bad_server("echo401") as base_url, pytest.raises(AllRequestsFailedError) as info:
        await arun(_profile(base_url), on_trial=saved.append)
    message = str(info.value)
    assert f"Incorrect API key provided: Bearer {REDACTED} hdr={REDACTED}" in message
    written = saved[-1].model_dump_json()
    assert "http_401" in written and f"Bearer {REDACTED}" in written
    for secret in (KEY, TOKEN, LITERAL):
        assert secret not in message and secret not in written


def test_a_six_byte_value_has_an_eight_character_base64_form() -> None:
    assert "YWJjZGVm" in encoded_forms("abcdef")  # base64("abcdef"): exactly MIN_BASE64_CHARS
    assert not any(len(f) < 8 and f.isalnum() for f in encoded_forms("abcde"))


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_a_key_with_quotes_and_non_ascii_echoed_in_json_is_masked(ensure_ascii: bool) -> None:
    key = 'sk-\u00e9"Secret/key-0123456'
    echoed = json.dumps({"error": f"bad key {key}"}, ensure_ascii=ensure_ascii)
    masked = redact(echoed, secret_values(key, []))
    assert masked == f'{{"error": "bad key {REDACTED}"}}'
