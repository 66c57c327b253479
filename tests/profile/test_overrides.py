"""``--set key.path=value`` overrides (harborbench.profile.overrides, via the public API)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harborbench.counts import FixedCount
from harborbench.errors import ProfileError
from harborbench.profile import apply_overrides, load_profile
from harborbench.profile.overrides import duration_text
from harborbench.units import parse_duration

PROFILES = Path(__file__).resolve().parents[2] / "profiles"
MINIMAL = "name: t\nload:\n  concurrency: 2\nduration: 1s\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path, overrides: tuple[str, ...]) -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(path, overrides)
    return str(info.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(20.0, "20s"), (0.5, "500ms"), (90.0, "1m30s"), (0.1 + 0.2, "0.30000000000000004s")],
)
def test_duration_text_reads_back_exactly(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text
    assert parse_duration(duration_text(seconds)) == seconds


def test_overrides_set_values(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "client:\n  concurrency_optimization: {enabled: true}\n")
    profile = load_profile(
        path,
        [
            "load.rate=800",
            "duration=10s",
            "client.concurrency_optimization.enabled=false",
            "gates.p95_max=150ms",
            "request.prompt_tokens=20",
        ],
    )
    assert profile.load.kind == "open" and profile.load.rate == 800.0  # concurrency removed
    assert profile.duration == 10.0
    assert profile.client.model_dump(exclude_unset=True) == {
        "concurrency_optimization": {"enabled": False}
    }
    assert profile.client.concurrency_optimization.enabled is False
    assert profile.gates.p95_max == pytest.approx(0.15)
    assert profile.request.prompt_tokens == FixedCount(value=20)


def test_duration_override_scales_stages(tmp_path: Path) -> None:
    profile = load_profile(PROFILES / "burst.yaml", ["duration=6s"])
    assert profile.duration == 6.0
    assert [s.duration for s in profile.load.stages or []] == pytest.approx([2.0, 2.0, 2.0])
    assert [s.rate for s in profile.load.stages or []] == [300, 1200, 300]


def test_override_of_a_list_item(tmp_path: Path) -> None:
    profile = load_profile(PROFILES / "burst.yaml", ["load.stages.1.rate=900"])
    assert [s.rate for s in profile.load.stages or []] == [300, 900, 300]


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("load.rat=5", "unknown key path load.rat ('rat' is not a key of load); did you mean"),
        ("durration=5s", "unknown key path durration"),
        ("load.concurrency.x=1", "load.concurrency is a single value, so load.concurrency.x"),
        ("load.stages.0.rate=1", "load.stages[0] is not an existing list item"),
        ("duration", "needs the form key.path=value"),
        ("request.stream=yes", "'yes' is read as a boolean by YAML 1.1"),
    ],
)
def test_bad_overrides(tmp_path: Path, option: str, expected: str) -> None:
    path = write(tmp_path, MINIMAL)
    message = error_of(path, (option,))
    assert f"{path}: --set " in message
    assert expected in message


@pytest.mark.parametrize(
    "option",
    ["client.max_concurrent_requests=", "client.max_concurrent_requests=  ", "load.rate=",
     "name=", "client.connection_pool.max_size="],
)  # fmt: skip
def test_an_empty_value_is_refused_not_read_as_the_default(tmp_path: Path, option: str) -> None:
    path = write(tmp_path, MINIMAL + "client:\n  max_concurrent_requests: 8\n")
    key = option.partition("=")[0]
    assert error_of(path, (option,)) == (
        f"{path}: --set {option}: the value is empty; write one (for example --set "
        f"{key}=VALUE), or remove this --set to keep the profile's value (the default when the "
        "profile does not set it)"
    )


def test_a_written_value_or_an_explicit_null_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "client:\n  max_concurrent_requests: 8\n")
    assert load_profile(path).client.max_concurrent_requests == 8
    raised = load_profile(path, ("client.max_concurrent_requests=12",)).client
    assert raised.max_concurrent_requests == 12
    reset = load_profile(path, ("client.max_concurrent_requests=null",)).client
    assert reset.limits().max_concurrent_requests == 100  # null, written, is the default
    assert load_profile(path, ('description=""',)).description == ""  # an empty text, quoted


def test_an_invalid_override_value_names_the_option(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    message = error_of(path, ("load.concurrency=many",))
    assert (
        f"{path}: load.concurrency (from --set load.concurrency=many): expected an integer"
        in message
    )


def test_apply_overrides_does_not_modify_its_input() -> None:
    data = {"name": "t", "load": {"concurrency": 2}, "duration": "1s"}
    out = apply_overrides(data, ["load.concurrency=4", "seed=7"])
    assert out == {"name": "t", "load": {"concurrency": 4}, "duration": "1s", "seed": 7}
    assert data == {"name": "t", "load": {"concurrency": 2}, "duration": "1s"}
    with pytest.raises(ProfileError, match=r"<overrides>: --set nme=x: unknown key path nme"):
        apply_overrides(data, ["nme=x"])


@pytest.mark.parametrize(
    ("text", "option", "check"),
    [
        (
            "name: t\nload: {rate: 50}\nduration: 1s\n",
            "load.arrival=poisson",
            lambda p: (p.load.rate, p.load.arrival) == (50.0, "poisson"),
        ),
        (
            "name: t\nload: {concurrency: 2}\nrequest: {prompt_tokens: 200}\nduration: 1s\n",
            "request.max_tokens=16",
            lambda p: (
                (p.request.prompt_tokens, p.request.max_tokens)
                == (FixedCount(value=200), FixedCount(value=16))
            ),
        ),
        (
            "name: t\nload: {concurrency: 2}\ntarget: {base_url: 'http://127.0.0.1:9/v1'}\n"
            "duration: 1s\n",
            "target.api_key_env=MY_KEY",
            lambda p: (
                (p.target.base_url, p.target.api_key_env) == ("http://127.0.0.1:9/v1", "MY_KEY")
            ),
        ),
    ],
    ids=["load.arrival", "request.max_tokens", "target.api_key_env"],
)
def test_set_changes_only_the_key_it_names(tmp_path: Path, text: str, option: str, check) -> None:  # type: ignore[no-untyped-def]
    profile = load_profile(write(tmp_path, text), [option])
    assert check(profile)


def test_set_of_one_exclusive_key_still_removes_its_rivals(tmp_path: Path) -> None:
    text = "name: t\nload: {concurrency: 2}\nrequest: {prompt_tokens: 200}\nduration: 1s\n"
    profile = load_profile(write(tmp_path, text), ["request.messages=[{role: user, content: hi}]"])
    assert profile.request.prompt_tokens is None
    assert profile.request.build_messages() == [{"role": "user", "content": "hi"}]
