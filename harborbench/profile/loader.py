"""Loading a workload profile: strict YAML, ``--set`` overrides, then the schema's validation.

Every problem is reported at once, in one :class:`harborbench.errors.ProfileError`, each line
naming the file, the line (or the ``--set`` option), the key path and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harborbench.errors import ProfileError
from harborbench.profile.diagnostics import (
    Where,
    problems,
    raise_problems,
)
from harborbench.profile.overrides import apply as apply_profile_overrides
from harborbench.profile.schema import Profile
from harborbench.profile.strict_yaml import (
    StrictYamlError,
    YamlFileError,
    load_strict,
    read_yaml_file,
)


def _validate(data: Any, where: Where, base_dir: Path | None = None) -> Profile:
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
        raise_problems(
            where.source,
            [
                f"{where.source}: the profile is {what}; it needs keys such as "
                "name, load and duration"
            ],
        )
    try:
        # Files named in the profile (request.dataset, load.trace) are relative to its folder.
        context = {"base_dir": str(base_dir)} if base_dir is not None else None
        return Profile.model_validate(data, context=context)
    except ValidationError as exc:
        raise_problems(where.source, problems(Profile, exc, where))


def load_profile_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> Profile:
    """Validate a profile given as plain data (for example a result file's resolved profile).

    Args:
        data: the profile as dicts, lists and scalars; durations as strings with units.
        source: the name used in error messages (a file name or ``"<dict>"``).

    Returns:
        The validated, immutable :class:`Profile`.

    Raises:
        ProfileError: every problem at once, one per line, each naming ``source`` and the key.
    """
    return _validate(dict(data) if isinstance(data, Mapping) else data, Where(source))


def load_profile(path: str | Path, overrides: Sequence[str] = ()) -> Profile:
    """Read, strictly validate and return the profile in a YAML file.

    Args:
        path: the YAML file.
        overrides: ``"key.path=value"`` strings applied after reading (see
            :func:`apply_overrides`), as given by ``--set``.

    Returns:
        The validated, immutable :class:`Profile`.

    Raises:
        ProfileError: a missing or unreadable file, one that is not a regular file or is
            larger than :data:`~harborbench.profile.strict_yaml.MAX_FILE_BYTES`, invalid
            YAML, a YAML 1.1 surprise, a duplicate or unknown key, a wrong type or value, or a
            bad override; every problem of the file at once, each with file, line and key path.
    """
    source = str(path)
    try:
        text = read_yaml_file(path)
    except YamlFileError as exc:
        if exc.missing:
            raise ProfileError(
                f"profile {source} does not exist; give the path of a YAML file, "
                "for example profiles/steady.yaml"
            ) from None
        raise ProfileError(f"profile {source} {exc}") from None
    try:
        data, lines = load_strict(text)
    except StrictYamlError as exc:
        raise_problems(source, exc.located(source))
    where = Where(source, lines)
    if overrides:
        if not isinstance(data, dict):
            _validate(data, where)  # raises: not a mapping
        data = apply_profile_overrides(Profile, data, overrides, where)
    return _validate(data, where, Path(path).resolve().parent)


def apply_overrides(
    data: Mapping[str, Any], overrides: Sequence[str], source: str = "<overrides>"
) -> dict[str, Any]:
    """Return a copy of profile data with ``--set key.path=value`` overrides applied.

    The value is read as strict YAML (``800``, ``10s``, ``false``, ``[a, b]``; ``yes``/``no``
    are refused, and so is an empty value: removing the option keeps the profile's value).
    Setting one load kind (``load.rate``) removes the others (``load.concurrency``,
    ``load.stages``); likewise ``target.mock``/``target.base_url`` and
    ``request.messages``/``request.prompt_tokens``. With stages, ``duration=...`` scales every
    stage so that they add up to the new duration (for shortened CI runs).

    Args:
        data: the profile data as read from YAML (not modified).
        overrides: strings such as ``"load.rate=800"`` or
            ``"client.concurrency_optimization.enabled=false"``; list items by index
            (``load.stages.1.rate=900``).
        source: the name used in error messages.

    Returns:
        A new dict with the overrides applied (not yet validated).

    Raises:
        ProfileError: an option without ``=``, a key path that is not in the schema (naming
            it, with a did-you-mean), an empty value, or a value that is not strict YAML.
    """
    return apply_profile_overrides(Profile, dict(data), overrides, Where(source))
