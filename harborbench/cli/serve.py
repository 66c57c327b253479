"""``harborbench serve``: run the built-in OpenAI-compatible mock server in the foreground."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from harborbench.cli.app import app
from harborbench.errors import EXIT_INTERRUPTED, MockSettingsError, UserInputError

if TYPE_CHECKING:
    from harborbench.mockserver.settings import MockSettings

KeyPath = tuple[str | int, ...]

_LATENCY_HELP = (
    "Latency as DUR (fixed) or KIND:ARGS: fixed:10ms, uniform:5ms,20ms (low,high), "
    "normal:20ms,5ms (mean,stddev), lognormal:20ms,200ms (median,p99), exponential:10ms (mean)."
)
_LATENCY_ARGS = {
    "fixed": ("value",),
    "uniform": ("low", "high"),
    "normal": ("mean", "stddev"),
    "lognormal": ("median", "p99"),
    "exponential": ("mean",),
}


def parse_latency_flag(flag: str, text: str) -> dict[str, Any]:
    """Turn a latency flag (``10ms`` or ``lognormal:20ms,200ms``) into a settings mapping.

    Args:
        flag: the option's name, for the error message.
        text: the flag's value.

    Returns:
        A mapping such as ``{"distribution": "uniform", "low": "5ms", "high": "20ms"}``; the
        durations stay strings for :class:`~harborbench.mockserver.settings.MockSettings`.

    Raises:
        MockSettingsError: unknown distribution or wrong number of values.
    """
    kind, sep, rest = text.partition(":")
    if not sep:
        return {"distribution": "fixed", "value": text}
    names = _LATENCY_ARGS.get(kind.strip())
    values = [v.strip() for v in rest.split(",")]
    if names is None or len(values) != len(names):
        raise MockSettingsError(
            f"{flag} {text!r} is not a latency.",
            hint=_LATENCY_HELP,
        )
    return {"distribution": kind.strip(), **dict(zip(names, values, strict=True))}


def _parse_stall(text: str) -> dict[str, str]:
    at, sep, duration = text.partition("+")
    if not sep:
        raise MockSettingsError(
            f"--stall {text!r} is not a stall window.",
            hint="Write AT+DURATION, for example --stall 10s+2s (stop answering at 10 s for 2 s).",
        )
    return {"at": at.strip(), "duration": duration.strip()}


def _parse_output_tokens(text: str) -> dict[str, int]:
    low, _, high = text.partition("-")
    try:
        return {"min": int(low), "max": int(high or low)}
    except ValueError:
        raise MockSettingsError(
            f"--output-tokens {text!r} is not a token count.",
            hint="Write N or MIN-MAX, for example --output-tokens 32 or --output-tokens 16-64.",
        ) from None


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_settings_file(path: Path) -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """Read a settings file with the profile's strict YAML reader: ``(data, line of each key)``."""
    from harborbench.profile.strict_yaml import (
        StrictYamlError,
        YamlFileError,
        load_strict,
        read_yaml_file,
    )

    try:
        data, lines = load_strict(read_yaml_file(path))
    except YamlFileError as exc:
        raise MockSettingsError(
            f"cannot read --settings {path}: it {exc}.", hint="Check the --settings path."
        ) from None
    except StrictYamlError as exc:
        found = "; ".join(exc.located(str(path)))
        raise MockSettingsError(f"invalid mock settings in {found.rstrip('.')}.") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise MockSettingsError(
            f"{path} must hold a mapping of mock settings (latency, stream, faults, ...)."
        )
    return data, lines


#: The key path each flag of ``harborbench serve`` sets, for error messages.
_FLAG_PATHS: dict[str, KeyPath] = {
    "--latency": ("latency",),
    "--ttft": ("stream", "ttft"),
    "--inter-token": ("stream", "inter_token"),
    "--tokens-per-chunk": ("stream", "tokens_per_chunk"),
    "--output-tokens": ("output_tokens",),
    "--error-rate": ("faults", "error_rate"),
    "--error-status": ("faults", "error_status"),
    "--retry-after": ("faults", "retry_after"),
    "--hang-rate": ("faults", "hang_rate"),
    "--reset-rate": ("faults", "reset_rate"),
    "--stream-break-rate": ("faults", "stream_break_rate"),
    "--stream-error-rate": ("faults", "stream_error_rate"),
    "--stall": ("faults", "stalls"),
    "--seed": ("seed",),
}


def settings_from_options(
    settings_file: Path | None = None,
    settings_json: str | None = None,
    *,
    latency: str | None = None,
    ttft: str | None = None,
    inter_token: str | None = None,
    tokens_per_chunk: int | None = None,
    output_tokens: str | None = None,
    error_rate: float | None = None,
    error_status: int | None = None,
    retry_after: str | None = None,
    hang_rate: float | None = None,
    reset_rate: float | None = None,
    stream_break_rate: float | None = None,
    stream_error_rate: float | None = None,
    stall: list[str] | None = None,
    seed: int | None = None,
) -> MockSettings:
    """Build the server's settings from a YAML file, a JSON text and flags (flags win).

    Args:
        settings_file: YAML mapping in the ``target.mock`` schema, or ``None``.
        settings_json: the same as JSON text (how :class:`MockServer` passes settings).
        latency, ttft, inter_token: latency flags (see :func:`parse_latency_flag`).
        tokens_per_chunk, output_tokens, error_rate, error_status, retry_after, hang_rate,
        reset_rate, stream_break_rate, stream_error_rate, stall, seed: the other flags, as
            named in ``harborbench serve --help``; ``None`` leaves the file's value.

    Returns:
        The validated :class:`MockSettings`.

    Raises:
        MockSettingsError: unreadable file (missing, not a regular file, over 1 MiB), YAML
            that the profile's strict reader refuses (duplicate keys, YAML 1.1 booleans,
            base-60 numbers, aliases expanding too far...), malformed flag, or settings that do
            not validate; the message names the file and line (or the flag) and the key path
            of every problem, with a did-you-mean for unknown keys.
    """
    from pydantic import ValidationError

    from harborbench.mockserver.settings import MockSettings, settings_problems
    from harborbench.profile.diagnostics import Where

    data: dict[str, Any] = {}
    lines: dict[KeyPath, int] = {}
    if settings_file is not None:
        data, lines = _read_settings_file(settings_file)
    where = Where(str(settings_file) if settings_file else "the command-line flags", lines)
    if settings_json is not None:
        try:
            data = _merge(data, json.loads(settings_json))
        except (ValueError, TypeError) as exc:
            raise MockSettingsError(f"--settings-json is not a JSON object: {exc}.") from None
    flags: dict[str, Any] = {}
    stream: dict[str, Any] = {}
    faults: dict[str, Any] = {}
    if latency is not None:
        flags["latency"] = parse_latency_flag("--latency", latency)
    if ttft is not None:
        stream["ttft"] = parse_latency_flag("--ttft", ttft)
    if inter_token is not None:
        stream["inter_token"] = parse_latency_flag("--inter-token", inter_token)
    if tokens_per_chunk is not None:
        stream["tokens_per_chunk"] = tokens_per_chunk
    if output_tokens is not None:
        flags["output_tokens"] = _parse_output_tokens(output_tokens)
    for key, value in (
        ("error_rate", error_rate),
        ("error_status", error_status),
        ("retry_after", retry_after),
        ("hang_rate", hang_rate),
        ("reset_rate", reset_rate),
        ("stream_break_rate", stream_break_rate),
        ("stream_error_rate", stream_error_rate),
    ):
        if value is not None:
            faults[key] = value
    if stall:
        faults["stalls"] = [_parse_stall(s) for s in stall]
    if seed is not None:
        flags["seed"] = seed
    if stream:
        flags["stream"] = stream
    if faults:
        flags["faults"] = faults
    given: dict[str, object] = {"--latency": latency, "--ttft": ttft, "--inter-token": inter_token}
    given |= {"--tokens-per-chunk": tokens_per_chunk, "--output-tokens": output_tokens}
    given |= {"--error-rate": error_rate, "--error-status": error_status, "--seed": seed}
    given |= {"--retry-after": retry_after, "--hang-rate": hang_rate, "--stall": stall or None}
    given |= {"--reset-rate": reset_rate, "--stream-break-rate": stream_break_rate}
    given |= {"--stream-error-rate": stream_error_rate}
    for flag, flag_value in given.items():
        if flag_value is not None:
            path = _FLAG_PATHS[flag]
            for known in [k for k in where.origin if k[: len(path)] == path]:
                del where.origin[known]
            where.origin[path] = flag
    try:
        return MockSettings.model_validate(_merge(data, flags))
    except ValidationError as exc:
        raise MockSettingsError(
            settings_problems(exc, where),
            hint="See 'harborbench serve --help' for the forms of each value.",
        ) from None


@app.command(
    epilog=(
        "Examples:\n\n"
        "  harborbench serve                          # free port on 127.0.0.1, no latency\n\n"
        "  harborbench serve --port 8000 --latency lognormal:20ms,200ms\n\n"
        "  harborbench serve --ttft 100ms --inter-token 5ms --output-tokens 16-64\n\n"
        "  harborbench serve --error-rate 0.05 --error-status 429 --retry-after 2s\n\n"
        "  harborbench serve --stall 10s+2s --settings mock.yaml\n\n"
        "The first line of stdout is the bound URL (http://127.0.0.1:PORT); the OpenAI API is "
        "under URL/v1. Counters: GET URL/stats, reset with POST URL/stats/reset.\n\n"
        "Exit codes: 0 stopped by SIGTERM, 2 bad settings or option (or the port cannot be "
        "bound), 130 interrupted (Ctrl-C)."
    )
)
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(0, min=0, max=65535, help="TCP port; 0 picks a free one."),
    settings_file: Path | None = typer.Option(
        None,
        "--settings",
        help="YAML file of mock settings (the target.mock schema); flags override it.",
    ),
    latency: str | None = typer.Option(None, help=_LATENCY_HELP),
    ttft: str | None = typer.Option(None, help="Time to first token of streams (as --latency)."),
    inter_token: str | None = typer.Option(
        None, help="Delay between stream chunks (as --latency)."
    ),
    tokens_per_chunk: int | None = typer.Option(None, help="Tokens per stream chunk."),
    output_tokens: str | None = typer.Option(None, help="Output tokens: N or MIN-MAX."),
    error_rate: float | None = typer.Option(None, help="Fraction of requests answered in error."),
    error_status: int | None = typer.Option(
        None, help="HTTP status of injected errors (429 adds Retry-After)."
    ),
    retry_after: str | None = typer.Option(None, help="Retry-After of 429 errors, e.g. 1s."),
    hang_rate: float | None = typer.Option(
        None, help="Fraction of requests never answered (until the client gives up)."
    ),
    reset_rate: float | None = typer.Option(
        None, help="Fraction of connections reset (TCP RST) after the request is read."
    ),
    stream_break_rate: float | None = typer.Option(
        None, help="Fraction of streams cut off half-way."
    ),
    stream_error_rate: float | None = typer.Option(
        None, help="Fraction of streams ending half-way with an error event."
    ),
    stall: list[str] | None = typer.Option(
        None, help="Stall window AT+DURATION after start, e.g. 10s+2s (repeatable)."
    ),
    seed: int | None = typer.Option(None, help="Seed of the server's random draws."),
    settings_json: str | None = typer.Option(
        None, hidden=True, help="Settings as JSON (used by MockServer)."
    ),
    watch_stdin: bool = typer.Option(
        False, hidden=True, help="Stop at end of stdin (used by MockServer)."
    ),
) -> None:
    """Run the built-in OpenAI-compatible mock server until Ctrl-C (exit 130) or SIGTERM (0)."""
    from harborbench.mockserver.server import run_server

    settings = settings_from_options(
        settings_file,
        settings_json,
        latency=latency,
        ttft=ttft,
        inter_token=inter_token,
        tokens_per_chunk=tokens_per_chunk,
        output_tokens=output_tokens,
        error_rate=error_rate,
        error_status=error_status,
        retry_after=retry_after,
        hang_rate=hang_rate,
        reset_rate=reset_rate,
        stream_break_rate=stream_break_rate,
        stream_error_rate=stream_error_rate,
        stall=stall,
        seed=seed,
    )
    try:
        stopped_by = run_server(settings, host, port, watch_stdin=watch_stdin)
    except OSError as exc:
        raise UserInputError(
            f"cannot bind {host}:{port}: {exc.strerror or exc}.",
            hint="Choose another --port (0 picks a free one) or --host.",
        ) from None
    if stopped_by == signal.SIGINT:
        # Ctrl-C: the documented code of an interruption; SIGTERM is an ordinary stop (0).
        raise typer.Exit(EXIT_INTERRUPTED)
