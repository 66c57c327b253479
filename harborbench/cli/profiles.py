"""``harborbench profiles``: list workload profiles in a table and validate every one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from harborbench.cli.app import app
from harborbench.errors import ProfileError
from harborbench.report.console import print_error, stdout
from harborbench.units import format_duration

if TYPE_CHECKING:
    from harborbench.profile import Profile

_SUFFIXES = (".yaml", ".yml")


def find_profile_files(paths: list[Path]) -> list[Path]:
    """The profile files named by ``paths``: files as given, folders expanded to ``*.yaml``.

    Args:
        paths: files and folders; an empty list means ``./profiles``.

    Returns:
        The files, folders' contents sorted by name, in the order given.

    Raises:
        ProfileError: a path that does not exist, or a folder with no ``.yaml``/``.yml`` file.
    """
    files: list[Path] = []
    for path in paths or [Path("profiles")]:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
            if not found:
                raise ProfileError(f"no profile (*.yaml, *.yml) in the folder {path}.")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise ProfileError(
                f"{path} does not exist.",
                hint="Give a profile file or a folder of profiles (default: ./profiles).",
            )
    return files


#: Most characters of a description shown in the table (its first line).
DESCRIPTION_CHARS = 120


def first_line(description: str, limit: int = DESCRIPTION_CHARS) -> str:
    """The first line of a description, cut to ``limit`` characters with an ellipsis.

    A profile's description can be as large as the file (1 MiB); the table shows a summary.
    """
    text = description.strip()
    line = text[: text.find("\n")] if "\n" in text[: limit + 1] else text[: limit + 1]
    line = line.strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def describe_load(profile: Profile) -> str:
    """One line for the load model and its level, e.g. ``open: 500 ops/s poisson``."""
    load = profile.load
    if load.concurrency is not None:
        return f"closed: {load.concurrency} workers"
    if load.rate is not None:
        return f"open: {load.rate:g} ops/s {load.arrival}"
    if load.trace is not None:
        trace = load.replayed_trace()
        n = 0 if trace is None else len(trace)
        scale = "" if load.time_scale == 1.0 else f", x{load.time_scale:g} time"
        return f"trace: {Path(load.trace).name} ({n} arrivals{scale})"
    stages = load.stages or []
    if load.stage_kind == "rate":
        levels = " → ".join(f"{s.rate:g}" for s in stages)
        return f"stages: {levels} ops/s {load.arrival}"
    return f"stages: {' → '.join(str(s.concurrency) for s in stages)} workers"


def describe_client(profile: Profile) -> str:
    """The client mode the profile's ``client`` section resolves to (ignoring the environment)."""
    from harborbench.harborai.config import decide_mode

    return decide_mode(profile.client, environ={})[0]


@app.command(
    "profiles",
    epilog=(
        "Examples:\n\n"
        "  harborbench profiles                       (every profile in ./profiles)\n\n"
        "  harborbench profiles profiles/burst.yaml   (one file)\n\n"
        "  harborbench profiles my_profiles/ a.yaml   (folders and files)\n\n"
        "Exit codes: 0 all valid, 2 a profile is invalid or a path is missing."
    ),
)
def profiles_command(
    paths: list[Path] = typer.Argument(
        None,
        help="Profile files or folders of *.yaml files (default: ./profiles).",
        show_default=False,
    ),
) -> None:
    """List workload profiles (load, duration, warmup, client mode) and validate each one.

    Every problem of every invalid profile is printed, with file, line and key.
    """
    from harborbench.profile import load_profile

    files = find_profile_files(list(paths or []))
    table = Table(title="Workload profiles", title_justify="left")
    for column in ("name", "load", "duration", "warmup", "client"):
        table.add_column(column, no_wrap=column != "load")
    table.add_column("description", ratio=1, overflow="fold")
    failures: list[ProfileError] = []
    for file in files:
        try:
            profile = load_profile(file)
        except ProfileError as exc:
            failures.append(exc)
            table.add_row(
                f"[red]{escape(file.name)}[/]", "", "", "", "", "[red]invalid[/]: see below"
            )
            continue
        table.add_row(
            escape(profile.name),
            escape(describe_load(profile)),
            format_duration(profile.duration),
            format_duration(profile.warmup),
            describe_client(profile),
            escape(first_line(profile.description)),
        )
    stdout.print(table)
    for failure in failures:
        print_error(str(failure))
    if failures:
        # Raised, not typer.Exit: the CLI's one error boundary maps it to exit code 2.
        raise ProfileError(f"{_count_invalid(len(failures), len(files))} (see above).")
    stdout.print("1 profile, valid." if len(files) == 1 else f"{len(files)} profiles, all valid.")


def _count_invalid(invalid: int, total: int) -> str:
    """``1 of 1 profile is invalid``, ``1 of 3 profiles is invalid``, ``2 of 3 profiles are
    invalid``."""
    noun = "profile" if total == 1 else "profiles"
    verb = "is" if invalid == 1 else "are"
    return f"{invalid} of {total} {noun} {verb} invalid"
