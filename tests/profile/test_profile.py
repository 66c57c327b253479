"""Workload profiles: the shipped ones load, every error names file, line and key, overrides."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harborbench.errors import ProfileError
from harborbench.profile import (
    CHARS_PER_TOKEN,
    DEFAULT_MESSAGES,
    Profile,
    load_profile,
    load_profile_dict,
)
from harborbench.units import parse_duration

PROFILES = Path(__file__).resolve().parents[2] / "profiles"
SHIPPED = sorted(PROFILES.glob("*.yaml"))

MINIMAL = """\
name: t
load:
  concurrency: 2
duration: 1s
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(path, overrides)
    return str(info.value)


# --- the shipped profiles -----------------------------------------------------------------


def test_the_six_profiles_are_shipped() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"baseline", "optimized", "burst", "steady", "soak", "stream"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_profile_loads_and_round_trips(path: Path) -> None:
    profile = load_profile(path)
    assert profile.name == path.stem
    assert profile.target.mock is not None  # all run against the built-in mock
    assert load_profile_dict(profile.model_dump(mode="json")) == profile
    assert load_profile_dict(profile.model_dump()) == profile


def test_baseline_and_optimized_differ_only_in_client_and_names() -> None:
    base = load_profile(PROFILES / "baseline.yaml").model_dump(mode="json")
    opt = load_profile(PROFILES / "optimized.yaml").model_dump(mode="json")
    for key in ("name", "description", "client"):
        base.pop(key)
        opt.pop(key)
    assert base == opt


def test_shipped_profile_shapes() -> None:
    base = load_profile(PROFILES / "baseline.yaml")
    assert base.client.concurrency_optimization.enabled is False
    opt = load_profile(PROFILES / "optimized.yaml")
    flags = opt.client.concurrency_optimization
    assert flags.model_fields_set == set(type(flags).model_fields)  # every flag written out
    assert flags.enabled and flags.use_lockfree_plugin_manager
    assert flags.use_optimized_connection_pool and flags.use_async_request_processor
    assert flags.force_traditional_mode is False
    burst = load_profile(PROFILES / "burst.yaml")
    assert burst.load.kind == "stages"
    rates = [s.rate for s in burst.load.stages or []]
    assert rates == [300, 1200, 300]
    assert burst.duration == 30.0
    assert burst.gates.success_rate_min == pytest.approx(0.9)
    steady = load_profile(PROFILES / "steady.yaml")
    assert (steady.load.kind, steady.load.arrival) == ("open", "constant")
    soak = load_profile(PROFILES / "soak.yaml")
    assert soak.duration >= 300.0
    assert soak.gates.memory_slope_max_mb_per_min == 5
    stream = load_profile(PROFILES / "stream.yaml")
    assert stream.request.stream is True
    assert stream.target.mock is not None and stream.target.mock.stream.inter_token.value == 0.002


# --- values -------------------------------------------------------------------------------


def test_defaults_and_units(tmp_path: Path) -> None:
    profile = load_profile(
        write(
            tmp_path,
            """\
            name: run-1.a_b
            load: {rate: 250.5, arrival: poisson}
            warmup: 1m30s
            duration: 500ms
            gates: {p95_max: 200ms, error_rate_max: 1%, success_rate_min: 0.95}
            """,
        )
    )
    assert profile.warmup == 90.0
    assert profile.duration == 0.5
    assert profile.load.kind == "open"
    assert profile.load.rate == 250.5
    assert profile.gates.p95_max == pytest.approx(0.2)
    assert profile.gates.error_rate_max == pytest.approx(0.01)
    assert profile.gates.success_rate_min == 0.95
    assert profile.gates.throughput_min is None
    assert profile.request.model == "gpt-4o-mini"
    assert profile.request.timeout == 30.0
    assert profile.repeat == 1 and profile.seed == 0
    assert profile.target.mock is not None and profile.target.base_url is None
    [message] = profile.request.build_messages()  # the default text after a unique tag
    assert message["role"] == DEFAULT_MESSAGES[0][0]
    tag, text = message["content"].split(" ", 1)
    assert text == DEFAULT_MESSAGES[0][1] and len(tag) == 16


def test_ints_are_accepted_for_floats(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, MINIMAL.replace("concurrency: 2", "rate: 100")))
    assert profile.load.rate == 100.0


def test_prompt_tokens_synthesizes_a_deterministic_prompt() -> None:
    spec = load_profile_dict(
        {
            "name": "x",
            "load": {"concurrency": 1},
            "duration": "1s",
            "request": {"prompt_tokens": 50},
        }
    ).request
    messages = spec.build_messages(seed=3)
    assert len(messages) == 1 and messages[0]["role"] == "user"
    assert len(messages[0]["content"]) == 50 * CHARS_PER_TOKEN
    assert spec.build_messages(seed=3) == messages
    assert spec.build_messages(seed=4) != messages


def test_stages_duration_is_their_sum_or_must_equal_it(tmp_path: Path) -> None:
    text = """\
        name: s
        load:
          stages:
            - {duration: 2s, rate: 10}
            - {duration: 500ms, rate: 40}
        """
    assert load_profile(write(tmp_path, text)).duration == 2.5
    assert load_profile(write(tmp_path, text + "duration: 2500ms\n")).duration == 2.5
    message = error_of(write(tmp_path, text + "duration: 3s\n"))
    assert "p.yaml:6: duration: with stages, duration must equal" in message


def test_messages_are_used_as_given(tmp_path: Path) -> None:
    profile = load_profile(
        write(
            tmp_path,
            MINIMAL
            + "request:\n  messages:\n    - {role: system, content: be brief}\n"
            + "    - {role: user, content: hi}\n",
        )
    )
    assert profile.request.build_messages() == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]


def test_base_url_target_with_env_var_name(tmp_path: Path) -> None:
    profile = load_profile(
        write(
            tmp_path,
            MINIMAL + "target: {base_url: 'https://api.example.com/v1', api_key_env: MY_KEY}\n",
        )
    )
    assert profile.target.mock is None
    assert profile.target.base_url == "https://api.example.com/v1"
    assert profile.target.api_key_env == "MY_KEY"


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://user:sk-SECRET-URL@127.0.0.1:18001/v1", "credentials in the URL"),
        ("http://sk-SECRET-URL@127.0.0.1:18001/v1", "credentials in the URL"),
        ("htp://u:sk-SECRET-URL@h/v1", "credentials in the URL"),  # before the pattern
        ("http://127.0.0.1:18001/v1?api-key=sk-SECRET-QS", "a query string or fragment"),
        ("http://127.0.0.1:18001/v1#sk-SECRET-QS", "a query string or fragment"),
    ],
)
def test_a_base_url_with_credentials_or_a_query_is_refused_without_echo(
    tmp_path: Path, url: str, refused: str
) -> None:
    in_file = write(tmp_path, MINIMAL + f"target: {{base_url: '{url}'}}\n")
    from_set = write(tmp_path, MINIMAL + "target: {base_url: 'http://h/v1'}\n", "q.yaml")
    for message, where in (
        (error_of(in_file), f"{in_file}:5: target.base_url: "),
        (error_of(from_set, (f"target.base_url={url}",)),
         f"{from_set}: target.base_url (from --set target.base_url=...): "),
    ):  # fmt: skip
        assert where + refused in message
        assert "target.api_key_env" in message and "request.headers" in message
        assert "SECRET" not in message


def test_a_plain_base_url_and_a_short_set_value_are_still_shown(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "target: {base_url: 'http://h:8000/v1'}\n")
    assert load_profile(path).target.base_url == "http://h:8000/v1"
    message = error_of(path, ("load.concurrency=many",))
    assert "(from --set load.concurrency=many)" in message


# --- every error class names file, line and key -----------------------------------------


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nload:\n  concurrency: 2\n  arival: poisson\nduration: 1s\n")
    message = error_of(path)
    assert f"{path}:4: load.arival: unknown key 'arival'; did you mean 'arrival'?" in message


def test_unknown_key_inside_mock_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL + "target:\n  mock:\n    latency: {distribution: fixed, valeu: 10ms}\n",
    )
    assert f"{path}:7: target.mock.latency.valeu: unknown key 'valeu'; did you mean 'value'?" in (
        error_of(path)
    )


def test_duplicate_key(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "duration: 2s\n")
    assert f"{path}:5: duration: duplicate key 'duration' (first on line 4)" in error_of(path)


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n", "Yes", "OFF", "oN"])
def test_yaml11_booleans_are_refused(tmp_path: Path, word: str) -> None:
    path = write(tmp_path, MINIMAL + f"request:\n  stream: {word}\n")
    message = error_of(path)
    assert f"{path}:6: request.stream: '{word}' is read as a boolean by YAML 1.1" in message
    assert "write true or false" in message


def test_yaml11_boolean_as_a_text_value_is_refused_too(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "description: no\n")
    assert f"{path}:5: description: 'no' is read as a boolean" in error_of(path)


def test_sexagesimal_number_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nload: {concurrency: 2}\nduration: 1:30\n")
    message = error_of(path)
    assert f"{path}:3: duration: '1:30' is read by YAML 1.1 as a base-60 number" in message
    assert "1m30s" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", "a duration needs units: write for example '30s' or '30ms'"),
        ("ten seconds", "'ten seconds' is not a duration with units"),
        ("-5s", "'-5s' is not a duration with units"),
    ],
)
def test_bad_duration(tmp_path: Path, value: str, expected: str) -> None:
    path = write(tmp_path, f"name: t\nload: {{concurrency: 2}}\nduration: {value}\n")
    message = error_of(path)
    assert f"{path}:3: duration: " in message
    assert expected in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("  concurrency: '2'", "load.concurrency: expected an integer, got the text '2'; write"),
        ("  concurrency: 2.5", "load.concurrency: expected an integer, got 2.5; write a whole"),
        ("  concurrency: true", "load.concurrency: expected an integer, got True"),
        ("  rate: '100'", "load.rate: expected a number, got the text '100'; write it without"),
    ],
)
def test_wrong_type_is_not_coerced(tmp_path: Path, line: str, expected: str) -> None:
    path = write(tmp_path, f"name: t\nload:\n{line}\nduration: 1s\n")
    assert f"{path}:3: {expected}" in error_of(path)


def test_number_for_text_says_quote_it(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "request: {model: 4}\n")
    assert f"{path}:5: request.model: expected text, got 4; put it in quotes" in error_of(path)


def test_two_load_kinds_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nload:\n  concurrency: 2\n  rate: 100\nduration: 1s\n")
    message = error_of(path)
    assert f"{path}:4: load.rate: give only one of concurrency / rate" in message


def test_no_load_kind(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nload: {arrival: poisson}\nduration: 1s\n")
    expected = f"{path}:2: load: give one of concurrency, rate (ops/s), stages or trace"
    assert expected in error_of(path)


def test_stage_kinds_mixed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: t
        load:
          stages:
            - {duration: 1s, rate: 10}
            - {duration: 1s, concurrency: 4}
        """,
    )
    assert f"{path}:5: load.stages[1]: stage 1 mixes kinds" in error_of(path)


def test_stage_with_both_levels(tmp_path: Path) -> None:
    path = write(
        tmp_path, "name: t\nload:\n  stages:\n    - {duration: 1s, rate: 1, concurrency: 2}\n"
    )
    assert f"{path}:4: load.stages[0]: a stage needs exactly one of rate" in error_of(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert f"profile {path} does not exist" in error_of(path)


def test_bad_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nload: {concurrency: 2\nduration: 1s\n")
    message = error_of(path)
    assert f"{path}:3: not valid YAML" in message


def test_empty_and_non_mapping_documents(tmp_path: Path) -> None:
    assert "the profile is empty" in error_of(write(tmp_path, ""))
    assert "the profile is a list, not a mapping" in error_of(write(tmp_path, "- 1\n"))


def test_missing_required_keys(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "description: x\n"))
    assert "3 problems" in message
    for key in ("name", "load", "duration"):
        assert f": {key}: required key is missing; add it" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: t
        request: {max_tokens: '64', stram: true}
        load: {concurrency: 0}
        warmup: 3
        duration: 1s
        repeat: 0
        """,
    )
    message = error_of(path)
    assert "5 problems" in message
    for expected in (
        f"{path}:2: request.max_tokens: expected an integer",
        f"{path}:2: request.stram: unknown key 'stram'; did you mean 'stream'?",
        f"{path}:3: load.concurrency: Input should be greater than or equal to 1, got 0",
        f"{path}:4: warmup: a duration needs units",
        f"{path}:6: repeat: Input should be greater than or equal to 1, got 0",
    ):
        assert expected in message


def test_unsafe_run_name(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("name: t", "name: ../escape"))
    assert f"{path}:1: name: a run name may use only letters" in error_of(path)


def test_client_config_errors_name_the_client_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL + "client:\n  concurrency_optimization:\n    enabeld: false\n",
    )
    message = error_of(path)
    assert (
        f"{path}:7: client.concurrency_optimization.enabeld: unknown key 'enabeld'; "
        "did you mean 'enabled'?"
    ) in message


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (
            "client:\n  connection_pool:\n    min_size: 0\n",
            ":7: client.connection_pool.min_size: Input should be greater than or equal to 1, "
            "got 0",
        ),
        (
            "client:\n  request_processor:\n    retry: {max_retry: 1}\n",
            ":7: client.request_processor.retry.max_retry: unknown key 'max_retry'; "
            "did you mean 'max_retries'?",
        ),
        (
            "client:\n  max_concurrent_requests: '8'\n",
            ":6: client.max_concurrent_requests: "
            "expected an integer, got the text '8'; write it without quotes",
        ),
        (
            "client:\n  base_url: http://h/v1\n",
            ":6: client.base_url: 'base_url' does not belong in client: the run sends every "
            "request to the profile's target; set target.base_url instead",
        ),
    ],
)
def test_client_errors_go_through_the_profile_formatter(
    tmp_path: Path, client: str, expected: str
) -> None:
    path = write(tmp_path, MINIMAL + client)
    message = error_of(path)
    assert f"{path}{expected}" in message
    assert message.count("\n") == 0  # one problem, one line


# Every client key that another section of the profile owns: (the line, the fix it names).
OWNED_ELSEWHERE = [
    ("base_url: http://h/v1", "set target.base_url instead"),
    ("api_key_env: MY_KEY", "set target.api_key_env instead"),
    ("default_headers: {X-A: b}", "set request.headers instead"),
    ("timeout_s: 2.5", "sets it from request.timeout, which also judges the requests still "
     "pending when the window ends; set request.timeout: 2.5s instead"),
    ("timeout_s: 1m", "set request.timeout instead"),  # a wrong type is refused the same way
    ("providers: {p: {base_url: 'http://h/v1', models: [m]}}",
     "every request to the profile's one target (results name it); set target.base_url or "
     "target.mock instead"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "fix"), OWNED_ELSEWHERE, ids=[o[0][:12] for o in OWNED_ELSEWHERE])
def test_client_keys_that_another_section_owns_are_refused(
    tmp_path: Path, line: str, fix: str
) -> None:
    key = line.split(":")[0]
    path = write(tmp_path, MINIMAL + f"client:\n  {line}\n")
    message = error_of(path)
    assert message.startswith(
        f"invalid profile {path}:6: client.{key}: {key!r} does not belong in client: "
    )
    assert message.endswith(fix) and "\n" not in message
    # the same from the command line names the --set; the accepted side is the owner's key
    message = error_of(write(tmp_path, MINIMAL), (f"client.{line.replace(': ', '=', 1)}",))
    assert f"client.{key} (from --set client.{key}=" in message and message.endswith(fix)


@pytest.mark.parametrize(
    ("option", "fix"),
    [
        ("client.timeout=5s",
         "did you mean 'timeout_s'? It does not belong in client: set request.timeout instead"),
        ("client.provider=1", "did you mean 'providers'? It does not belong in client: set "
         "target.base_url or target.mock instead"),
        ("client.max_concurent_requests=4", "did you mean 'max_concurrent_requests'?"),
    ],
)  # fmt: skip
def test_the_did_you_mean_of_client_keys_points_past_the_refused_ones(
    tmp_path: Path, option: str, fix: str
) -> None:
    key = option.partition("=")[0]
    message = error_of(write(tmp_path, MINIMAL), (option,))
    assert message.endswith(f": unknown key {key.split('.')[-1]!r}; {fix}")
    listing = error_of(write(tmp_path, MINIMAL), ("client.header=1",))
    assert "known keys: concurrency_manager, " in listing
    for refused in ("api_key", "base_url", "default_headers", "providers", "timeout_s"):
        assert refused not in listing


def test_the_request_timeout_is_the_clients_timeout(tmp_path: Path) -> None:
    from harborbench.engine.runner import client_config

    profile = load_profile(write(tmp_path, MINIMAL), ("request.timeout=2500ms",))
    assert client_config(profile, "http://h/v1", None).timeout_s == 2.5
    assert "timeout_s" not in profile.client.model_fields_set


MIN_80 = "  connection_pool:\n    min_size: 80\n"  # a client section; accepted alone


@pytest.mark.parametrize(
    ("client", "option", "expected"),
    [
        # the key of the --set is blamed, with the derived default explained and the fix
        (
            "  enable_lazy_loading: true\n",
            "client.connection_pool.min_size=500",
            ": client.connection_pool.min_size (from --set client.connection_pool.min_size=500):"
            " connection_pool.min_size (500) is above max_size (100): max_size is not set, so it"
            " is the larger of connection_pool_size (50 by default) and max_concurrent_requests"
            " (100 by default); lower min_size to at most 100, or set connection_pool.max_size"
            " (or max_concurrent_requests) to 500 or more",
        ),
        # min_size is in the file, the --set lowered the derived max_size: the --set is blamed
        (
            MIN_80,
            "client.max_concurrent_requests=20",
            ": client.max_concurrent_requests (from --set client.max_concurrent_requests=20): "
            "connection_pool.min_size (80) is above max_size (50): max_size is not set, so it is"
            " the larger of connection_pool_size (50 by default) and max_concurrent_requests"
            " (20); lower min_size to at most 50, or set connection_pool.max_size (or"
            " max_concurrent_requests) to 80 or more",
        ),
        (
            MIN_80,
            "client.connection_pool.max_size=60",
            ": client.connection_pool.max_size (from --set client.connection_pool.max_size=60): "
            "connection_pool.min_size (80) is above connection_pool.max_size (60); lower "
            "min_size to at most 60, or raise max_size to 80 or more",
        ),
        (
            MIN_80,
            "client.request_processor.retry.base_delay_s=20",
            ": client.request_processor.retry.base_delay_s (from --set "
            "client.request_processor.retry.base_delay_s=20): max_delay_s (10) is below "
            "base_delay_s (20); raise max_delay_s to at least 20 or lower base_delay_s to at "
            "most 10",
        ),
        (
            MIN_80,
            "client.connection_pool.bogus=1",
            ": client.connection_pool.bogus (from --set client.connection_pool.bogus=1): "
            "unknown key 'bogus'; known keys: adaptive, health_check_interval_s, max_size, "
            "min_size",
        ),
    ],
)
def test_a_cross_key_error_names_the_set_that_caused_it(
    tmp_path: Path, client: str, option: str, expected: str
) -> None:
    path = write(tmp_path, MINIMAL + "client:\n" + client)
    load_profile(path)  # the file alone is valid
    assert error_of(path, (option,)) == f"invalid profile {path}{expected}"


def test_a_cross_key_error_of_the_file_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "client:\n" + MIN_80)
    assert load_profile(path).client.limits().pool_min_size == 80  # accepted: max_size is 100
    # accepted with a --set that keeps the derived max_size at min_size or above
    profile = load_profile(path, ("client.max_concurrent_requests=80",))
    assert profile.client.limits().pool_max_size == 80
    bad = write(tmp_path, MINIMAL + "client:\n  max_concurrent_requests: 20\n" + MIN_80, "b.yaml")
    assert error_of(bad).startswith(f"invalid profile {bad}:8: client.connection_pool.min_size: ")


def test_mock_and_base_url_are_exclusive(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "target:\n  mock: {}\n  base_url: http://h/v1\n")
    assert f"{path}:7: target.base_url: give either mock or base_url" in error_of(path)


# --- secrets never reach a message ---------------------------------------------------------


SECRET = "sk-live-0123456789abcdef"


def test_a_key_pasted_as_the_env_var_name_is_not_echoed(tmp_path: Path) -> None:
    path = write(
        tmp_path, MINIMAL + f"target: {{base_url: 'http://h/v1', api_key_env: {SECRET}}}\n"
    )
    message = error_of(path)
    assert "target.api_key_env: must be the NAME of an environment variable" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (f"target: {{api_key: {SECRET}}}", "target.api_key: an API key is never written"),
        (f"client: {{api_key: {SECRET}}}", ":5: client.api_key: an API key is never"),
        (
            f"client: {{providers: {{p: {{base_url: 'http://h', api_key: {SECRET}}}}}}}",
            ":5: client.providers.p.api_key: an API key is never written",
        ),
    ],
)
def test_an_api_key_in_the_profile_is_refused_without_echo(
    tmp_path: Path, section: str, expected: str
) -> None:
    message = error_of(write(tmp_path, MINIMAL + section + "\n"))
    assert expected in message
    assert SECRET not in message


def test_load_profile_dict_names_its_source() -> None:
    with pytest.raises(ProfileError, match=r"result.json: load: required key is missing"):
        load_profile_dict({"name": "t", "duration": "1s"}, source="result.json")


def test_profile_is_frozen() -> None:
    profile = load_profile(PROFILES / "steady.yaml")
    with pytest.raises(ValueError, match="frozen"):
        profile.seed = 3  # type: ignore[misc]
    assert isinstance(profile, Profile)


@pytest.mark.parametrize(
    ("key", "ok", "too_long"), [("warmup", "1h", "3601s"), ("duration", "24h", "86401s")]
)
def test_warmup_and_duration_are_bounded(key: str, ok: str, too_long: str) -> None:
    # A warmup of 1000h could not be stopped and filled the memory (one row per second).
    base = {"name": "b", "load": {"rate": 10}, "duration": "1s"}
    assert getattr(load_profile_dict({**base, key: ok}), key) == parse_duration(ok)
    with pytest.raises(ProfileError, match="above the limit"):
        load_profile_dict({**base, key: too_long})


def test_repeat_is_bounded() -> None:
    # repeat: 1000000 was accepted: a run of 23 days of 2-s trials, kept in one result.
    base = {"name": "b", "load": {"rate": 10}, "warmup": "1s", "duration": "1s"}
    assert load_profile_dict({**base, "repeat": 1000}).repeat == 1000
    with pytest.raises(ProfileError) as err:
        load_profile_dict({**base, "repeat": 1_000_000})
    assert (
        "repeat: 1,000,000 trials is above the limit of 1,000: each trial is a whole warmup and "
        "measurement window, 1,000,000 x 2s = 555h33m20s; lower repeat"
    ) in str(err.value)
    with pytest.raises(ProfileError, match="repeat: 1,001 trials is above the limit of 1,000"):
        load_profile_dict({**base, "repeat": 1001})


# --- messages that echo what the user wrote (fifth session) --------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [  # the message after "KEY (from --set OVERRIDE): "
        # Echoed as written, not re-rendered from the float (was '100000000000000000000h44s').
        ("duration=99999999999999999999h", "99999999999999999999h is above the limit"),
        ("duration=24h0.001s", "24h0.001s is above the limit of 24h"),
        ("duration= 25h ", "25h is above the limit of 24h"),
        ("warmup=1h0m0.5s", "1h0m0.5s is above the limit of 1h"),
        # No quotes were written: say what is wrong with the number.
        ("load.rate=nan", "must be a finite number, got 'nan'"),
        ("load.rate=-inf", "must be a finite number, got '-inf'"),
        ("load.rate=abc", "expected a number, got the text 'abc'"),
        ("duration=0s", "the duration must be positive (more than 0s), got '0s'"),
        ("request.timeout=0s", "the duration must be positive (more than 0s), got '0s'"),
        ("load.rate=0", "must be positive (more than 0), got 0"),
    ],
)
def test_refusals_echo_the_value_as_written(tmp_path: Path, override: str, expected: str) -> None:
    path = write(tmp_path, MINIMAL.replace("concurrency: 2", "rate: 5"))
    message = error_of(path, (override,))
    key = override.partition("=")[0]
    assert f"{key} (from --set {override}): {expected}" in message, message
    assert "without quotes" not in message and "100000000000000000000h" not in message


@pytest.mark.parametrize(
    ("override", "window"), [("duration=24h", (86_400.0, 0.0)), ("warmup=1h", (1.0, 3600.0))]
)
def test_the_longest_window_and_warmup_are_accepted(
    tmp_path: Path, override: str, window: tuple[float, float]
) -> None:
    profile = load_profile(write(tmp_path, MINIMAL), (override,))
    assert (profile.duration, profile.warmup) == window


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("load: {rate: '5'}\n", "load.rate: expected a number, got the text '5'; write it "
         "without quotes"),
        ("load: {rate: 'nan'}\n", "load.rate: must be a finite number, got 'nan'"),
        ("seed: '7'\n", "seed: expected an integer, got the text '7'; write it without quotes"),
        ("seed: 'x7'\n", "seed: expected an integer, got the text 'x7'"),
    ],
)  # fmt: skip
def test_without_quotes_is_said_only_when_it_is_the_fix(
    tmp_path: Path, line: str, expected: str
) -> None:
    text = MINIMAL.replace("load:\n  concurrency: 2\n", "") + line
    if "load:" not in line:
        text += "load: {rate: 5}\n"
    message = error_of(write(tmp_path, text))
    assert expected in message, message
    if "'5'" not in expected and "'7'" not in expected:
        assert "without quotes" not in message


# --- --set under a mapping of free keys (sixth session) -----------------------------------


def test_set_refuses_an_authorization_header_as_the_profile_does(tmp_path: Path) -> None:
    # Before: "unknown key path ... known keys: env" (the keys of {env: NAME}), for any header.
    path = write(tmp_path, MINIMAL)
    message = error_of(path, ("request.headers.Authorization=Bearer sk-x",))
    assert message == (
        f"invalid profile {path}: request.headers.Authorization (from --set "
        "request.headers.Authorization=...): header 'Authorization' cannot be set here: the API "
        "key comes from target.api_key_env"
    )
    assert "sk-x" not in message
    in_file = write(tmp_path, MINIMAL + "request:\n  headers:\n    Authorization: x\n", "f.yaml")
    assert error_of(in_file) == (
        f"invalid profile {in_file}:7: request.headers.Authorization: header 'Authorization' "
        "cannot be set here: the API key comes from target.api_key_env"
    )


def test_set_adds_any_key_of_headers_and_extra_body(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    sets = ("request.headers.X-A=b", "request.headers.X-B.env=HOME",
            "request.extra_body.temperature=0.5", "request.extra_body.a.b=1")  # fmt: skip
    request = load_profile(path, sets).request
    assert request.headers["X-A"] == "b" and request.headers["X-B"].env == "HOME"  # type: ignore[union-attr]
    assert request.extra_body == {"temperature": 0.5, "a": {"b": 1}}
    assert "did you mean 'env'?" in error_of(path, ("request.headers.X-B.envv=HOME",))
    assert "not a valid HTTP header name" in error_of(path, ("request.headers.bad name='x'",))
