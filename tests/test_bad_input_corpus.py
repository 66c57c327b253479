"""A corpus of hostile and broken input: each case ends in one line, exit 2, no traceback.

Every class of issue 12 ("Hostile and broken input") is here, fed to every command that reads
a YAML file: ``run`` and ``profiles`` (a profile), ``serve --settings`` (mock settings) and
``rollback-check --gates`` (a gates file). None of them may measure anything, hang, print a
traceback or exit 1 (which means a failed gate).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from harborbench.profile.strict_yaml import MAX_FILE_BYTES

VALID = "name: t\nload: {concurrency: 1}\nduration: 1s\n"


def alias_bomb() -> str:
    """Nine aliases of nine aliases ... six levels: about 530,000 values once expanded."""
    lines = ['l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 6):
        items = ", ".join([f"*l{level - 1}"] * 9)
        lines.append(f"l{level}: &l{level} [{items}]")
    return "\n".join(lines) + "\n"


def deep_alias_chain() -> str:
    """Every anchor is shallow, but each nests the previous one: 40 levels once expanded."""
    lines = ["a0: &a0 [x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 40)]
    return "\n".join(lines) + "\n"


# (case id, file text or a maker of a special file, expected fragment of the one-line error)
Maker = Callable[[Path], Path]


def text_file(text: str | bytes) -> Maker:
    def make(folder: Path) -> Path:
        path = folder / "input.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return make


def fifo(folder: Path) -> Path:
    path = folder / "input.yaml"
    os.mkfifo(path)
    return path


def dev_zero(folder: Path) -> Path:
    return Path("/dev/zero")


def a_folder(folder: Path) -> Path:
    path = folder / "input.yaml"
    path.mkdir()
    return path


def huge(folder: Path) -> Path:
    path = folder / "input.yaml"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("# " + "x" * (MAX_FILE_BYTES + 10) + "\n")
    return path


FILE_CASES: list[tuple[str, Maker, str]] = [
    ("alias-bomb", text_file(alias_bomb()), "more than 100,000 values once its aliases"),
    ("deep-alias-chain", text_file(deep_alias_chain()), "nests deeper than 32 levels"),
    ("raw-control-char", text_file('seed: "a\x01b"\n'), ":1: control character U+0001"),
    ("escaped-control-in-key", text_file('"a\\x1bb": 1\n'), ":1: control character U+001B"),
    ("escaped-control-in-value", text_file('x: "\\e[31m"\n'), ":1: x: control character U+001B"),
    ("deep-flow-nesting", text_file("x: " + "[" * 5000 + "]" * 5000 + "\n"), "deeper than 32"),
    ("deep-block-nesting", text_file("x: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n"), "deeper"),
    ("not-utf8", text_file(b"seed: \xff\xfe\n"), "is not UTF-8 text (byte 6"),
    ("too-large", huge, "is larger than 1 MiB, the most a YAML file"),
    ("fifo", fifo, "is a FIFO (named pipe), not a regular file"),
    ("dev-zero", dev_zero, "is a device, not a regular file"),
    ("folder", a_folder, "is a folder, not a regular file"),
]

COMMANDS: dict[str, Callable[[Path], list[str]]] = {
    "run": lambda p: ["run", str(p), "--reports-dir", str(p.parent / "reports")],
    "profiles": lambda p: ["profiles", str(p)],
    "serve": lambda p: ["serve", "--settings", str(p)],
    "rollback-check": lambda p: ["rollback-check", "--gates", str(p)],
}


def assert_one_line_exit_2(code: int, err: str, expected: str) -> None:
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == 2, err
    assert any(expected in line for line in errors), err
    if len(errors) == 2:  # `profiles` adds its count of invalid profiles
        assert errors[1].endswith("invalid (see above).")
    else:
        assert len(errors) == 1


# `profiles DIR` lists the profiles of a folder: a folder is valid input there.
HOSTILE = [
    pytest.param(command, make, expected, id=f"{case}-{command}")
    for case, make, expected in FILE_CASES
    for command in sorted(COMMANDS)
    if (case, command) != ("folder", "profiles")
]


@pytest.mark.parametrize(("command", "make", "expected"), HOSTILE)
def test_hostile_files_give_one_line_and_exit_2(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, command: str, make: Maker, expected: str
) -> None:
    path = make(tmp_path)
    code, _out, err = cli(*COMMANDS[command](path))
    assert_one_line_exit_2(code, err, expected)
    assert not (tmp_path / "reports").exists()  # nothing measured, nothing written


PROFILE_CASES: list[tuple[str, str, list[str], str]] = [
    ("rate-too-high", VALID, ["--set", "load.rate=1e8"], "above the limit of 100,000 ops/s"),
    (
        "rate-too-high-in-file",
        "name: t\nload: {rate: 2e5}\nduration: 1s\n",
        [],
        ":2: load.rate: 200000 ops/s is above the limit of 100,000 ops/s",
    ),
    (
        "stage-rate-too-high",
        "name: t\nload:\n  stages: [{duration: 1s, rate: 1e9}]\n",
        [],
        ":3: load.stages[0].rate: 1e+09 ops/s is above the limit",
    ),
    (
        "concurrency-too-high",
        VALID,
        ["--set", "load.concurrency=1000000"],
        "1,000,000 workers is above the limit of 10,000",
    ),
    ("bad-set-value", VALID, ["--set", 'name="a\\x07"'], "control character U+0007"),
]


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [c[1:] for c in PROFILE_CASES],
    ids=[c[0] for c in PROFILE_CASES],
)
def test_out_of_bounds_profiles_give_one_line_and_exit_2(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, text: str, options: list[str], expected: str
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = cli("run", str(path), *options, "--reports-dir", str(tmp_path / "r"))
    assert_one_line_exit_2(code, err, expected)
    assert out == ""
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("rate", "ok"), [("100000", True), ("100000.5", False), ("1e-3", True), ("0", False)]
)
def test_the_rate_bound_has_two_sides(tmp_path: Path, rate: str, ok: bool) -> None:
    from harborbench.errors import ProfileError
    from harborbench.profile import load_profile

    path = tmp_path / "p.yaml"
    path.write_text(VALID, encoding="utf-8")
    if ok:
        assert load_profile(path, [f"load.rate={rate}"]).load.rate == float(rate)
    else:
        with pytest.raises(ProfileError):
            load_profile(path, [f"load.rate={rate}"])


@pytest.mark.parametrize(("workers", "ok"), [(10_000, True), (10_001, False)])
def test_the_concurrency_bound_has_two_sides(tmp_path: Path, workers: int, ok: bool) -> None:
    from harborbench.errors import ProfileError
    from harborbench.profile import load_profile

    path = tmp_path / "p.yaml"
    path.write_text(VALID, encoding="utf-8")
    if ok:
        assert load_profile(path, [f"load.concurrency={workers}"]).load.concurrency == workers
    else:
        with pytest.raises(ProfileError, match="above the limit of 10,000"):
            load_profile(path, [f"load.concurrency={workers}"])


# The files a profile names (request.dataset, load.trace) follow the same rule as the profile:
# /dev/zero grew `run` to 4.8 GB in 10 s, a FIFO hung it.
DATA_PROFILES = {
    "request.dataset": "name: t\nload: {concurrency: 1}\nduration: 1s\n",
    "load.trace": "name: t\n",
}


@pytest.mark.parametrize("key", sorted(DATA_PROFILES))
@pytest.mark.parametrize("case", ["fifo", "dev-zero", "folder", "regular"])
def test_data_files_named_by_a_profile_are_regular_files(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, key: str, case: str
) -> None:
    path = tmp_path / "input.yaml"
    path.write_text(DATA_PROFILES[key], encoding="utf-8")
    if case == "regular":  # the accepted side: a valid file is read
        from harborbench.profile import load_profile

        row = {"prompt": "hi"} if key == "request.dataset" else {"timestamp": 0}
        row |= {} if key == "request.dataset" else {"input_length": 5, "output_length": 5}
        data = tmp_path / "data.jsonl"
        data.write_text(json.dumps(row) + "\n", encoding="utf-8")
        profile = load_profile(path, [f"{key}={data}"])
        assert (profile.request.dataset or profile.load.trace) == str(data)
        return
    (tmp_path / "d").mkdir()
    data = {"fifo": fifo, "dev-zero": dev_zero, "folder": a_folder}[case](tmp_path / "d")
    expected = {
        "fifo": "is a FIFO (named pipe), not a regular file",
        "dev-zero": "is a device, not a regular file",
        "folder": "is a folder, not a regular file",
    }[case]
    code, _out, err = cli(
        "run", str(path), "--set", f"{key}={data}", "--reports-dir", str(tmp_path / "r")
    )
    assert_one_line_exit_2(code, err, f"{data}: {expected}; give the path of a JSON-lines file")
    assert not (tmp_path / "r").exists()
