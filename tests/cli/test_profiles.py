"""``harborbench profiles``: lists and validates profiles; exit 2 when one is invalid."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harborbench.errors import EXIT_BAD_INPUT

PROFILES = Path(__file__).resolve().parents[2] / "profiles"


def test_shipped_folder_is_valid(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli("profiles", str(PROFILES))
    assert code == 0, err
    for name in ("baseline", "optimized", "burst", "steady", "soak", "stream"):
        assert name in out
    assert "traditional" in out  # baseline's client mode
    assert "closed: 32" in out  # baseline's load (the table wraps the rest)
    assert f"{len(list(PROFILES.glob('*.yaml')))} profiles, all valid." in out
    assert err == ""


def test_default_folder_is_dot_profiles(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(PROFILES.parent)
    code, out, _ = cli("profiles")
    assert code == 0
    assert "all valid" in out


def test_a_broken_profile_gives_exit_2_and_its_errors(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shutil.copy(PROFILES / "steady.yaml", tmp_path / "steady.yaml")
    (tmp_path / "broken.yaml").write_text(
        "name: broken\nload: {concurrency: 2, rate: 5}\nduration: 1s\nwarmup: yes\n"
    )
    code, out, err = cli("profiles", str(tmp_path))
    assert code == EXIT_BAD_INPUT
    assert "steady" in out
    assert "broken.yaml" in out
    flat = " ".join(err.split())  # the console wraps long lines
    assert f"{tmp_path / 'broken.yaml'}:4: warmup: 'yes' is read as a boolean" in flat
    assert "1 of 2 profiles is invalid" in flat
    assert "Traceback" not in err


def test_every_problem_of_a_profile_is_printed(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "two.yaml"
    path.write_text("name: two\nload: {concurrency: 2, rate: 5}\nduration: 30\n")
    code, _, err = cli("profiles", str(path))
    assert code == EXIT_BAD_INPUT
    flat = " ".join(err.split())
    assert f"{path}:2: load.rate: give only one of concurrency / rate" in flat
    assert f"{path}:3: duration: a duration needs units" in flat


def test_missing_path_and_empty_folder(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("profiles", str(tmp_path / "nope"))
    assert code == EXIT_BAD_INPUT
    assert "does not exist" in " ".join(err.split())
    code, _, err = cli("profiles", str(tmp_path))
    assert code == EXIT_BAD_INPUT
    assert "no profile (*.yaml, *.yml) in the folder" in " ".join(err.split())


def test_help_has_examples(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("profiles", "--help")
    assert code == 0
    assert "harborbench profiles profiles/burst.yaml" in out


def test_a_path_that_does_not_exist_is_named_as_such(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for missing in (tmp_path / "nope", tmp_path / "nope" / "deeper.yaml"):
        code, out, err = cli("profiles", str(missing))
        assert code == EXIT_BAD_INPUT and out == ""
        assert " ".join(err.split()) == (
            f"Error: {missing} does not exist. Give a profile file or a folder of profiles "
            "(default: ./profiles)."
        )


def test_one_profile_is_counted_in_the_singular(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli("profiles", str(PROFILES / "burst.yaml"))
    assert code == 0, err
    assert out.rstrip().endswith("\n1 profile, valid.")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nduration: 10\n", encoding="utf-8")
    code, _, err = cli("profiles", str(broken))
    assert code == EXIT_BAD_INPUT
    assert "1 of 1 profile is invalid (see above)." in " ".join(err.split())
    code, _, err = cli("profiles", str(broken), str(broken), str(PROFILES / "burst.yaml"))
    assert "2 of 3 profiles are invalid (see above)." in " ".join(err.split())


@pytest.mark.parametrize(
    ("description", "shown"),
    [
        ("short\nsecond line", "short"),
        ("x" * 120, "x" * 120),
        ("x" * 121, "x" * 119 + "…"),
        ("word " * 150_000, ("word " * 24).strip() + "…"),
    ],
)
def test_the_table_shows_the_first_line_of_a_description_cut_short(
    description: str, shown: str
) -> None:
    from harborbench.cli.profiles import first_line

    assert first_line(description) == shown


def test_a_huge_description_prints_a_short_table(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "big.yaml"
    path.write_text(
        "name: big\nload: {rate: 1}\nduration: 1s\ndescription: " + "w" * 700_000 + "\n",
        encoding="utf-8",
    )
    code, out, err = cli("profiles", str(path))
    assert code == 0, err
    assert len(out.splitlines()) < 12
    assert "w" * 40 in out and "…" in out
