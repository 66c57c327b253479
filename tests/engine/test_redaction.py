"""Known secrets (the API key, header values) never reach a recorded failure text."""

from __future__ import annotations

import base64

import pytest

from harborbench.engine.recorder import Recorder
from harborbench.engine.redaction import (
    REDACTED,
    encoded_forms,
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
    # "xyz" is too short to be a credential; the 9-character value adds its base64 forms
    assert secrets == ("YWJjZC1lZmdo", "FiY2QtZWZna", "hYmNkLWVmZ2", "abcd-efgh", "abcd")
    assert redact("key abcd-efgh then abcd", secrets) == f"key {REDACTED} then {REDACTED}"


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
    ],
)
def test_a_key_echoed_in_other_common_forms_is_masked(echoed: str) -> None:
    masked = redact(f"401 bad key '{echoed}'", secret_values(TESTER_KEY, []))
    assert masked == f"401 bad key '{REDACTED}'"


def test_only_long_values_mask_their_prefixes_and_only_long_ones() -> None:
    forms = encoded_forms(TESTER_KEY)  # 28 characters: prefixes and suffixes of 14 to 27
    assert TESTER_KEY[:14] in forms and TESTER_KEY[-14:] in forms
    assert TESTER_KEY[:13] not in forms and TESTER_KEY[-13:] not in forms
    nineteen = "application/json-v1"  # a 19-character header value: no partial forms
    assert not any(nineteen.startswith(f) or nineteen.endswith(f) for f in encoded_forms(nineteen))
    twenty = "abcdefghijklmnopqrst"
    assert {twenty[:12], twenty[-12:], twenty[:19]} <= encoded_forms(twenty)
    assert twenty[:11] not in encoded_forms(twenty)


def test_short_values_get_no_base64_form() -> None:
    assert encoded_forms("abcd") == set()  # 4 bytes: at most 5 characters of its own
    # one form an offset (its base64 has no '+' or '/', so the URL-safe form is the same)
    assert encoded_forms("abcdefghij") == {"YWJjZGVmZ2hpa", "FiY2RlZmdoaW", "hYmNkZWZnaGlq"}


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
