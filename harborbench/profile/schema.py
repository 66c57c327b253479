"""The schema of a workload profile (SPEC section 5): pydantic models, unknown keys refused.

:class:`Profile` and its sections (:class:`RequestSpec`, :class:`TargetSpec`,
:class:`LoadSpec` with its :class:`Stage` list, :class:`Gates`) are frozen and strict. Durations
are float seconds written with units (``Duration``), fractions accept ``"1%"`` (``Fraction``).
Loading from YAML or plain data is :mod:`harborbench.profile.loader`.
"""

from __future__ import annotations

import contextlib
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializationInfo,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from harborbench.counts import MAX_COUNT, CountSpec, FixedCount, OptionalCountSpec
from harborbench.engine.dataset import load_dataset
from harborbench.engine.prompts import CHARS_PER_TOKEN as CHARS_PER_TOKEN
from harborbench.engine.prompts import DEFAULT_MESSAGES as DEFAULT_MESSAGES
from harborbench.engine.trace import Trace, load_trace
from harborbench.harborai.config import MAX_LIMIT, ClientConfig
from harborbench.mockserver.settings import MockSettings
from harborbench.profile.diagnostics import AtKey
from harborbench.profile.overrides import duration_text
from harborbench.units import NS_PER_S, format_duration, parse_duration

#: Highest open-loop arrival rate a profile may ask for, ops/s. One harborbench process peaks
#: near 10,000 ops/s against the mock on 2 cores (benchmarks/harness_overhead.py); ten times that
#: leaves room for faster machines while refusing typos such as 1e8.
MAX_RATE_OPS = 100_000
#: Most closed-loop workers a profile may ask for; each holds a request (and a socket) open.
MAX_CONCURRENCY = MAX_LIMIT  # one bound: closed-loop workers and the client's own limits

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RUN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token


# --- field types --------------------------------------------------------------------------


def _duration_in(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value  # the float check then rejects it with the type in the message
    raise ValueError(
        f"a duration needs units: write for example '{value:g}s' or '{value:g}ms', "
        "not a bare number"
    )


#: Seconds, written with units (``"500ms"``); serialized with units (as MockSettings does).
Duration = Annotated[
    float,
    BeforeValidator(_duration_in),
    PlainSerializer(duration_text, return_type=str),
]


def _fraction_in(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not text.endswith("%"):
            raise ValueError("write a fraction such as 0.01 or a percentage such as '1%'")
        try:
            return float(text[:-1]) / 100.0
        except ValueError:
            raise ValueError("write a percentage such as '1%' or a fraction such as 0.01") from None
    return value


def _rate_bound(value: float) -> float:
    if value > MAX_RATE_OPS:
        raise ValueError(
            f"{value:g} ops/s is above the limit of {MAX_RATE_OPS:,} ops/s (one harborbench "
            "process peaks near 10,000 ops/s); lower the rate"
        )
    return value


def _concurrency_bound(value: int) -> int:
    if value > MAX_CONCURRENCY:
        raise ValueError(
            f"{value:,} workers is above the limit of {MAX_CONCURRENCY:,} (each holds a request "
            "and a connection open); lower the concurrency"
        )
    return value


#: The longest warmup and measurement window, seconds: the run keeps one row per second of
#: both, and a user who types 1000h means something else.
MAX_WARMUP_S = 3600.0
MAX_DURATION_S = 24 * 3600.0
#: The most trials of a run: each is a whole warmup and window, kept in full in result.json; a
#: comparison needs a few (``compare --run`` stops at 10 rounds by default), and a user who
#: types 1000000 means something else.
MAX_REPEAT = 1000


def _as_written(value: Any) -> tuple[float, str] | None:
    """A duration text's seconds and the text as written (stripped); ``None`` if not a text."""
    if not isinstance(value, str):
        return None
    try:
        return parse_duration(value), value.strip()
    except ValueError:
        return None  # the Duration type reports it


def _warmup_bound(value: Any) -> Any:
    """Before the Duration type: refuse a warmup above 1 h, echoing the text as written."""
    read = _as_written(value)
    if read is not None and read[0] > MAX_WARMUP_S:
        raise ValueError(
            f"{read[1]} is above the limit of 1h for a warmup (the run keeps one row per second "
            "of it); shorten it"
        )
    return value


def _duration_bound(value: Any) -> Any:
    """Before the Duration type: refuse a window above 24 h, echoing the text as written."""
    read = _as_written(value)
    if read is not None and read[0] > MAX_DURATION_S:
        raise ValueError(
            f"{read[1]} is above the limit of 24h for one measurement window (the run keeps one "
            "row per second of it); shorten it, or use repeat for several windows"
        )
    return value


#: An arrival rate, ops/s, in (0, MAX_RATE_OPS].
Rate = Annotated[float, Field(gt=0), AfterValidator(_rate_bound)]
#: A number of closed-loop workers, in [1, MAX_CONCURRENCY].
Concurrency = Annotated[int, Field(ge=1), AfterValidator(_concurrency_bound)]

#: A fraction in [0, 1]; also written as a percentage string (``"1%"`` is 0.01).
Fraction = Annotated[float, BeforeValidator(_fraction_in), Field(ge=0.0, le=1.0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


# --- the schema ---------------------------------------------------------------------------


class Message(_Model):
    """One chat message of the request: ``role`` and ``content`` (text)."""

    role: Literal["system", "user", "assistant"]
    content: str


class EnvRef(_Model):
    """A value read from an environment variable at run time: ``{env: NAME}``.

    Only the variable's name is stored (in the profile and in ``result.json``), never its value.
    """

    env: str

    @field_validator("env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError("must be the NAME of an environment variable (letters, digits, _)")
        return value


#: Body fields the engine sets itself; ``extra_body`` may not replace them.
_OWN_BODY_KEYS = {
    "model": "request.model",
    "messages": "request.messages, request.prompt_tokens or request.dataset",
    "stream": "request.stream",
    "max_tokens": "request.max_tokens",
    "request_priority": "(nothing: it is a client argument, not a body field)",
}
_RESERVED_HEADERS = {"authorization", "content-type", "accept", "content-length", "host"}

#: Client keys a profile may not set, because the run sets them from another section (so that
#: one setting has one place): (key, why, the key to set instead). The API key is refused apart,
#: wherever it is, without echoing it.
_CLIENT_KEYS_SET_BY_THE_RUN = (
    ("base_url", "the run sends every request to the profile's target", "target.base_url"),
    (
        "providers",
        "the run sends every request to the profile's one target (results name it)",
        "target.base_url or target.mock",
    ),
    ("api_key_env", "the run reads the target's key", "target.api_key_env"),
    ("default_headers", "the run sends the request's headers", "request.headers"),
    (
        "timeout_s",
        "the run sets it from request.timeout, which also judges the requests still pending "
        "when the window ends",
        "request.timeout",
    ),
)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _resolve_path(value: str, info: ValidationInfo) -> str:
    """A relative path is taken from the profile file's folder (from the CWD without one)."""
    base = (info.context or {}).get("base_dir") if info.context else None
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = Path(base or ".") / path
    return str(path.resolve())


class RequestSpec(_Model):
    """What the requests of the workload send.

    Attributes:
        model: the model name sent in the request.
        messages: the chat messages, the same for every request (every body identical); exclusive
            with ``prompt_tokens`` and ``dataset``.
        prompt_tokens: instead of ``messages``: a prompt of about this many tokens
            (``CHARS_PER_TOKEN`` characters each), a number or a seeded distribution
            (:mod:`harborbench.counts`); every request gets its own text, generated from the seed,
            so no two requests share more than ``prefix_tokens`` plus a 4-token request tag.
        prefix_tokens: with ``prompt_tokens`` or a trace: this many tokens at the start of every
            prompt are the same (for measuring prefix caching on purpose); counted in the length.
        dataset: a JSON-lines file of prompts (:mod:`harborbench.engine.dataset`); a relative
            path is taken from the profile's folder.
        dataset_order: ``random`` (seeded draws with replacement) or ``sequential`` (file order,
            starting over at the end).
        max_tokens: the request's ``max_tokens``: a number or a seeded distribution; a dataset
            line's ``output_tokens`` or a trace's ``output_length`` replaces it.
        stream: ask for a Server-Sent-Events stream.
        timeout: seconds a single request may take before it counts as a timeout.
        extra_body: fields merged into every request body (sampling parameters, a server's own
            options); they may not replace model, messages, stream or max_tokens.
        headers: extra HTTP headers of every request; a value is a string or ``{env: NAME}``
            (read from the environment at run time). Header values are never written to a
            report: ``result.json`` keeps only the names (and the variable names).
    """

    model: str = Field(default="gpt-4o-mini", min_length=1)
    messages: list[Message] | None = Field(default=None, min_length=1)
    prompt_tokens: OptionalCountSpec = None
    prefix_tokens: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    dataset: str | None = Field(default=None, min_length=1)
    dataset_order: Literal["random", "sequential"] = "random"
    max_tokens: CountSpec = Field(default_factory=lambda: FixedCount(value=64))
    stream: bool = False
    timeout: Annotated[Duration, Field(gt=0)] = 30.0  # Annotated: an error shows the text
    extra_body: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str | EnvRef] = Field(default_factory=dict)

    @field_validator("dataset")
    @classmethod
    def _dataset_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = _resolve_path(value, info)
        load_dataset(path)  # a bad line is reported here, naming the file and the line
        return path

    @field_validator("extra_body")
    @classmethod
    def _extra_body(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, instead in _OWN_BODY_KEYS.items():
            if key in value:
                raise ValueError(f"{key!r} is set by the profile itself; use {instead}")
        return value

    @model_validator(mode="after")
    def _headers(self) -> RequestSpec:
        # A model validator, so that the error names the header's own key (its line, or the
        # --set option that wrote it), not the headers section.
        for name in self.headers:
            if not _HEADER_NAME.match(name):
                raise AtKey(("headers", name), f"{name!r} is not a valid HTTP header name")
            if name.lower() in _RESERVED_HEADERS:
                hint = (
                    "the API key comes from target.api_key_env"
                    if name.lower() == "authorization"
                    else "the client sets it"
                )
                raise AtKey(("headers", name), f"header {name!r} cannot be set here: {hint}")
        return self

    @model_validator(mode="after")
    def _one_prompt(self) -> RequestSpec:
        given = [k for k in ("messages", "prompt_tokens", "dataset") if getattr(self, k)]
        if len(given) > 1:
            raise AtKey(given[1], f"give only one of {' / '.join(given)}; remove the others")
        if self.prefix_tokens is not None and self.messages is not None:
            raise AtKey("prefix_tokens", "prefix_tokens applies to prompt_tokens, not messages")
        if self.prefix_tokens is not None and self.dataset is not None:
            raise AtKey("prefix_tokens", "prefix_tokens applies to prompt_tokens, not a dataset")
        if self.dataset is None and self.dataset_order != "random":
            raise AtKey("dataset_order", "dataset_order applies only with dataset; remove it")
        return self

    def build_messages(self, seed: int = 0) -> list[dict[str, Any]]:
        """Return the chat messages of the first request, as plain dicts.

        Kept for callers that send one fixed request; a run gives every request its own prompt
        (:class:`harborbench.engine.prompts.RequestFactory`).

        Args:
            seed: the run's seed.

        Returns:
            ``messages`` as given, or the first request's generated or dataset messages, or
            ``DEFAULT_MESSAGES`` after the request's unique tag.
        """
        from harborbench.engine.prompts import RequestFactory

        return RequestFactory(self, seed).next_params()["messages"]  # type: ignore[no-any-return]


class TargetSpec(_Model):
    """Where requests go: the built-in mock (started in its own process) or a ``base_url``.

    Attributes:
        mock: settings of the built-in mock server; the default when no ``base_url`` is given.
        base_url: an OpenAI-compatible endpoint such as ``https://api.example.com/v1``, without
            credentials (``user:password@``) and without a query string or fragment (refused
            by :func:`_plain_url`).
        api_key_env: with ``base_url``: the NAME of the environment variable holding the key.
    """

    mock: MockSettings | None = None
    base_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    api_key_env: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_mock(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("mock") is None and data.get("base_url") is None:
            return {**data, "mock": {}}
        return data

    @field_validator("base_url", mode="before")
    @classmethod
    def _no_secret_in_url(cls, value: Any) -> Any:
        return _plain_url(value) if isinstance(value, str) else value

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        # Never echo the value: a key pasted here by mistake must not reach a log.
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(
                "must be the NAME of an environment variable (letters, digits, _), "
                "never the key itself"
            )
        return value

    @model_validator(mode="after")
    def _one_target(self) -> TargetSpec:
        if self.mock is not None and self.base_url is not None:
            raise AtKey("base_url", "give either mock or base_url, not both; remove one")
        if self.api_key_env is not None and self.base_url is None:
            raise AtKey("api_key_env", "api_key_env applies only with base_url; remove it")
        return self


def _plain_url(url: str) -> str:
    """``url`` itself, refused when it carries credentials, a query string or a fragment.

    Credentials in the URL would be written verbatim in ``result.json`` (``profile.target``)
    and clash with the client's own ``Authorization`` header (aiohttp refuses every request). A
    query string or fragment cannot work either: the client appends ``/chat/completions`` to
    the base URL, so the path would land inside the query; and it is where keys are put
    (``?api-key=...``). Checked before the URL pattern, so that no message quotes the URL.

    Raises:
        ValueError: what is wrong and the fix (never the URL itself, which holds a secret).
    """
    parts = urllib.parse.urlsplit(url)
    if "@" in parts.netloc:
        raise ValueError(
            "credentials in the URL (user:password@) are refused: they would be written in "
            "the report; remove them, put the key in an environment variable named by "
            "target.api_key_env, or send a header with request.headers: {NAME: {env: VAR}}"
        )
    if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")):
        raise ValueError(
            "a query string or fragment (?... or #...) is refused: requests go to "
            "<base_url>/chat/completions, and a key in the URL would be written in the report; "
            "remove it, and send a key with target.api_key_env or request.headers: "
            "{NAME: {env: VAR}}"
        )
    return url


class Stage(_Model):
    """One step of a staged load: ``duration`` seconds at ``rate`` ops/s or ``concurrency``."""

    duration: Annotated[Duration, Field(gt=0)]  # Annotated: an error shows the text
    rate: Rate | None = None
    concurrency: Concurrency | None = None

    @model_validator(mode="after")
    def _one_level(self) -> Stage:
        if (self.rate is None) == (self.concurrency is None):
            raise ValueError("a stage needs exactly one of rate (ops/s) or concurrency")
        return self


class LoadSpec(_Model):
    """How hard to drive the target.

    Exactly one of:
        concurrency: closed loop with this many workers (at most :data:`MAX_CONCURRENCY`),
            each sending its next request when its last one ends.
        rate: open loop at this many ops/s (at most :data:`MAX_RATE_OPS`), on an absolute
            schedule from the start time; ``arrival`` chooses constant spacing or a seeded
            Poisson process.
        stages: a list of (duration, rate or concurrency) steps, all of the same kind; rate
            stages use ``arrival`` too.
        trace: replay a trace file (:mod:`harborbench.engine.trace`) open loop: each line's
            arrival time and input and output lengths; a relative path is taken from the
            profile's folder. With it: ``timestamp_unit`` (``ms`` or ``s``), ``time_scale``
            (arrival times are multiplied by it: 0.5 replays twice as fast) and ``limit`` (replay
            only the first N lines).

    Open loop only:
        max_outstanding: the most requests pending at once; an arrival beyond it is not sent but
            counted as dropped (k6's ``dropped_iterations``) and the generator is flagged as
            saturated. Default: 4 x the client's ``max_concurrent_requests`` (the requests the
            client can have on the wire plus a bounded queue), so an overloaded client keeps
            working at its capacity instead of drowning in a backlog of tasks.
    """

    concurrency: Concurrency | None = None
    rate: Rate | None = None
    arrival: Literal["constant", "poisson"] = "constant"
    stages: list[Stage] | None = Field(default=None, min_length=1)
    max_outstanding: int | None = Field(default=None, ge=1)
    timestamp_unit: Literal["ms", "s"] = "ms"  # before trace: the trace's check reads it
    time_scale: float = Field(default=1.0, gt=0, le=1000)
    limit: int | None = Field(default=None, ge=1)
    trace: str | None = Field(default=None, min_length=1)

    @field_validator("trace")
    @classmethod
    def _trace_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = _resolve_path(value, info)
        load_trace(path, info.data.get("timestamp_unit", "ms"))  # bad lines reported here
        return path

    @model_validator(mode="after")
    def _one_kind(self) -> LoadSpec:
        models = ("concurrency", "rate", "stages", "trace")
        given = [k for k in models if getattr(self, k) is not None]
        if self.trace is None:
            defaults = {"timestamp_unit": "ms", "time_scale": 1.0, "limit": None}
            for key, default in defaults.items():
                if getattr(self, key) != default:
                    raise AtKey(key, f"{key} applies only with trace; remove it")
        elif self.arrival != "constant":
            raise AtKey("arrival", "a trace gives the arrival times; remove arrival")
        if len(given) != 1:
            if not given:
                raise ValueError("give one of concurrency, rate (ops/s), stages or trace")
            raise AtKey(
                given[1], f"give only one of {' / '.join(given)}; they are different load models"
            )
        if self.stages is not None:
            kinds = {"rate" if s.rate is not None else "concurrency" for s in self.stages}
            if len(kinds) > 1:
                first = self.stages[0].rate is not None
                odd = next(i for i, s in enumerate(self.stages) if (s.rate is not None) != first)
                raise AtKey(
                    ("stages", odd),
                    f"stage {odd} mixes kinds: all stages must use rate, or all concurrency",
                )
        if self.arrival == "poisson" and self.kind == "closed":
            raise AtKey("arrival", "arrival applies to open-loop rates; remove it or use rate")
        closed = self.kind == "closed" or self.stage_kind == "concurrency"
        if self.max_outstanding is not None and closed:
            raise AtKey(
                "max_outstanding",
                "max_outstanding bounds an open loop's backlog; a closed loop has concurrency "
                "requests at most: remove it or use rate",
            )
        return self

    @property
    def kind(self) -> Literal["closed", "open", "stages", "trace"]:
        """``closed`` (concurrency), ``open`` (rate), ``stages`` or ``trace``."""
        if self.concurrency is not None:
            return "closed"
        if self.rate is not None:
            return "open"
        if self.trace is not None:
            return "trace"
        return "stages"

    def replayed_trace(self) -> Trace | None:
        """The trace as replayed (``limit`` applied, times scaled), or ``None`` without one."""
        if self.trace is None:
            return None
        return load_trace(self.trace, self.timestamp_unit).scaled(self.time_scale, self.limit)

    @property
    def stage_kind(self) -> Literal["rate", "concurrency"] | None:
        """With stages: whether they set ``rate`` or ``concurrency``; otherwise ``None``."""
        if not self.stages:
            return None
        return "rate" if self.stages[0].rate is not None else "concurrency"


class Gates(_Model):
    """Pass/fail thresholds of a run (SPEC section 8); each is optional.

    Attributes:
        throughput_min: minimum successful ops/s.
        p95_max: maximum 95th percentile latency, seconds (written ``200ms``).
        error_rate_max: maximum failed / (successful + failed), a fraction (``1%`` = 0.01).
        memory_growth_max_pct: maximum RSS growth over the window, percent.
        memory_slope_max_mb_per_min: maximum RSS slope, MB per minute.
        success_rate_min: minimum successful / (successful + failed + dropped arrivals), a
            fraction; an open loop's dropped arrivals (``load.max_outstanding`` requests were
            pending) are not successes (closed loop: successful / completed).
        dropped_max_pct: open loop only: the most arrivals of the window that may be dropped,
            percent of the planned arrivals (passes at or below it; 0 = none). Unset, an open
            loop is judged against 1% (:data:`harborbench.gates.DEFAULT_DROPPED_MAX_PCT`).
        cpu_efficiency_gain_min_pct: minimum gain in ops per CPU second over a baseline run,
            percent; a relative gate used only by ``compare`` and ``rollback-check``.
        goodput_min: minimum goodput, ops/s: successful requests per second that met every
            objective of the profile's ``slo`` (needs ``slo``).
    """

    throughput_min: float | None = Field(default=None, ge=0)
    p95_max: Duration | None = Field(default=None, gt=0)
    error_rate_max: Fraction | None = None
    memory_growth_max_pct: float | None = Field(default=None, ge=0)
    memory_slope_max_mb_per_min: float | None = Field(default=None, ge=0)
    success_rate_min: Fraction | None = None
    cpu_efficiency_gain_min_pct: float | None = None
    goodput_min: float | None = Field(default=None, ge=0)
    dropped_max_pct: float | None = Field(default=None, ge=0, le=100)


class SloSpec(_Model):
    """Per-request service-level objectives, for goodput (each optional, at least one).

    A request meets the objectives when it succeeded and each given one holds (DistServe,
    Zhong et al., OSDI 2024; vLLM's ``bench serve --goodput``); see
    :mod:`harborbench.metrics.goodput`.

    Attributes:
        ttft_max: time to first token at most this, seconds (streams only).
        tpot_max: time per output token at most this, seconds (streams only).
        latency_max: the whole request at most this, seconds.
    """

    ttft_max: Duration | None = Field(default=None, gt=0)
    tpot_max: Duration | None = Field(default=None, gt=0)
    latency_max: Duration | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some(self) -> SloSpec:
        if self.ttft_max is None and self.tpot_max is None and self.latency_max is None:
            raise ValueError("give at least one of ttft_max, tpot_max or latency_max")
        return self


class Profile(_Model):
    """A complete workload profile (SPEC section 5).

    Attributes:
        name: the run name (``reports/<name>/``): letters, digits, ``_``, ``.``, ``-``.
        description: free text shown by ``harborbench profiles``.
        target, request, client, load, gates: the sections described in their classes;
            ``client`` is the client's own config model
            (:class:`harborbench.harborai.config.ClientConfig`, the keys ``create_fast_client``
            takes) without the target, key, headers and timeout, which come from ``target``
            and ``request`` (``_CLIENT_KEYS_SET_BY_THE_RUN``); it dumps as written (defaults
            left out).
        warmup: seconds of load before the measurement window (excluded from every figure).
        duration: seconds of the measurement window after warmup; with stages it may be left
            out and is then the sum of the stage durations (if given, it must equal that sum);
            with a trace it may be left out and is then the last replayed arrival + 1 s, minus
            the warmup.
        repeat: number of trials, at most :data:`MAX_REPEAT`.
        seed: seed of every random choice of the run (Poisson arrivals, prompts, lengths,
            dataset order).
        slo: per-request objectives for goodput (:class:`SloSpec`); optional.
    """

    #: Keys of the schema that a profile may not set (see ``_CLIENT_KEYS_SET_BY_THE_RUN``), and
    #: where to set them instead; read by the did-you-mean of unknown keys.
    KEYS_SET_ELSEWHERE: ClassVar[dict[tuple[str, ...], str]] = {
        ("client", key): fix
        for key, fix in [(k, f) for k, _, f in _CLIENT_KEYS_SET_BY_THE_RUN]
        + [("api_key", "target.api_key_env")]
    }

    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    target: TargetSpec = Field(default_factory=TargetSpec)
    request: RequestSpec = Field(default_factory=RequestSpec)
    client: ClientConfig = Field(default_factory=ClientConfig)
    load: LoadSpec
    warmup: Annotated[Duration, Field(default=0.0, ge=0), BeforeValidator(_warmup_bound)] = 0.0
    duration: Annotated[Duration, Field(gt=0), BeforeValidator(_duration_bound)]
    repeat: int = Field(default=1, ge=1)
    seed: int = Field(default=0, ge=0)
    gates: Gates = Field(default_factory=Gates)
    slo: SloSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _duration_from_stages(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or "duration" in data:
            return data
        load = data.get("load")
        if isinstance(load, dict) and isinstance(load.get("trace"), str):
            return _duration_from_trace(data, load, info)
        stages = load.get("stages") if isinstance(load, dict) else None
        if not isinstance(stages, list):
            return data
        total = 0.0
        for stage in stages:
            raw = stage.get("duration") if isinstance(stage, dict) else None
            # A bad stage duration is reported on the stage; do not add "duration missing".
            with contextlib.suppress(ValueError):
                total += _duration_in(raw) if isinstance(raw, str) else 0.0
        # No total: every stage is refused on its own key (a stage lasts more than 0 s); a
        # stand-in keeps "duration: required key is missing" from being reported beside it.
        return {**data, "duration": duration_text(total) if total > 0 else _STAND_IN_DURATION}

    @field_validator("repeat")
    @classmethod
    def _repeat_bound(cls, value: int, info: ValidationInfo) -> int:
        if value > MAX_REPEAT:
            trial = info.data.get("warmup", 0.0) + info.data.get("duration", 0.0)
            total = f", {value:,} x {format_duration(trial)} = {format_duration(value * trial)}"
            raise ValueError(
                f"{value:,} trials is above the limit of {MAX_REPEAT:,}: each trial is a whole "
                f"warmup and measurement window{total if trial else ''}; lower repeat"
            )
        return value

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _RUN_NAME.match(value) or value in (".", ".."):
            raise ValueError(
                "a run name may use only letters, digits, '_', '.' and '-' (it names the "
                "folder reports/<name>/); for example steady-500"
            )
        return value

    @field_validator("client", mode="before")
    @classmethod
    def _client_keys_of_the_profile(cls, value: Any) -> Any:
        """Refuse the client keys that other sections own (before the model's own checks)."""
        if not isinstance(value, Mapping):
            return value  # the model says what is expected
        secret = _find_key(value, "api_key")
        if secret is not None:
            raise AtKey(
                secret,
                "an API key is never written in a profile; put it in an environment variable "
                "and name that variable in target.api_key_env",
            )
        for key, why, fix in _CLIENT_KEYS_SET_BY_THE_RUN:
            if key in value:
                if key == "timeout_s" and _is_number(value[key]):
                    fix += f": {value[key]:g}s"  # the same setting, with its units
                raise AtKey(key, f"{key!r} does not belong in client: {why}; set {fix} instead")
        return value

    @field_serializer("client")
    def _client_as_written(self, value: ClientConfig, info: SerializationInfo) -> dict[str, Any]:
        return value.model_dump(mode=info.mode, exclude_unset=True)

    @model_validator(mode="after")
    def _workload_fits(self) -> Profile:
        req = self.request
        if self.load.trace is not None:
            for key in ("messages", "prompt_tokens", "dataset"):
                if getattr(req, key) is not None:
                    raise AtKey(
                        ("request", key),
                        f"with load.trace the prompt lengths come from the trace; remove {key}",
                    )
        slo = self.slo
        if slo is not None and not req.stream:
            for key in ("ttft_max", "tpot_max"):
                if getattr(slo, key) is not None:
                    raise AtKey(
                        ("slo", key),
                        f"{key} needs streamed requests (request.stream: true); without a "
                        "stream there is no first token",
                    )
        if self.gates.goodput_min is not None and slo is None:
            raise AtKey(
                ("gates", "goodput_min"),
                "goodput_min needs the objectives of an slo section (ttft_max, tpot_max, "
                "latency_max)",
            )
        return self

    @model_validator(mode="after")
    def _stages_sum(self) -> Profile:
        if self.load.stages is not None:
            total = sum(s.duration for s in self.load.stages)
            if abs(total - self.duration) > 1e-6 * max(1.0, total):
                raise AtKey(
                    "duration",
                    f"with stages, duration must equal the sum of the stage durations "
                    f"({format_duration(total)}); remove duration or fix it",
                )
        return self

    @model_validator(mode="after")
    def _trace_reaches_the_window(self) -> Profile:
        """A replayed trace must have an arrival in the measurement window (as the engine's
        :func:`~harborbench.engine.schedule.trace_plan` counts them), or nothing is measured."""
        trace = self.load.replayed_trace()
        if trace is None:
            return self
        offsets = trace.offsets_ns
        start_ns = round(self.warmup * NS_PER_S)
        lo = int(np.searchsorted(offsets, start_ns, side="left"))
        hi = int(np.searchsorted(offsets, round((self.warmup + self.duration) * NS_PER_S)))
        if hi > lo:
            return self
        about = _trace_text(self.load.trace or "", trace, self.load.limit, self.load.time_scale)
        if lo == len(offsets):
            raise AtKey(
                "warmup",
                f"{about}, all inside the {format_duration(self.warmup)} warmup: none is left "
                "for the measurement window; make the warmup end before the trace's last "
                "arrival (warmup: 0s measures them all), or replay a longer trace",
                others=(("load", "trace"),),
            )
        raise AtKey(
            "duration",
            f"{about}, none of them in the measurement window ({format_duration(self.warmup)} "
            f"to {format_duration(self.warmup + self.duration)} from the first): lengthen "
            f"duration, or remove it (the window then ends {TRACE_TAIL_S:g} s after the last "
            "arrival)",
            others=(("load", "trace"),),
        )


#: With a trace and no ``duration``: the window ends this long after the last arrival, so that
#: the last requests can complete.
TRACE_TAIL_S = 1.0
#: The ``duration`` put in place of one that cannot be derived (a bad trace or stage), so that
#: only the bad key is reported; the profile is refused by that key, so it is never used.
_STAND_IN_DURATION = "1s"


def _duration_from_trace(data: dict[str, Any], load: dict[str, Any], info: ValidationInfo) -> Any:
    """Default ``duration`` of a trace replay: its last (scaled) arrival + 1 s, minus warmup.

    When the trace or a value it needs is bad, that key is reported on its own, and a stand-in
    duration (:data:`TRACE_TAIL_S`) keeps "duration: required key is missing" from being
    reported beside it (the profile is refused anyway).
    """
    stand_in = {**data, "duration": _STAND_IN_DURATION}
    try:
        unit = load.get("timestamp_unit", "ms")
        if unit not in ("ms", "s"):
            return stand_in  # reported on load.timestamp_unit
        trace = load_trace(_resolve_path(load["trace"], info), unit)
        scale, limit = load.get("time_scale", 1.0), load.get("limit")
        trace = trace.scaled(float(scale), limit if isinstance(limit, int) else None)
        warmup = data.get("warmup", "0s")
        warmup_s = _duration_in(warmup) if isinstance(warmup, str) else 0.0
    except (ValueError, TypeError, OSError):
        return stand_in  # the bad trace or value is reported on its own key
    last_s = trace.last_offset_s  # as read: a trace of 1e15 ms is refused by its true length
    window_s = max(last_s + TRACE_TAIL_S - warmup_s, TRACE_TAIL_S)
    if window_s > MAX_DURATION_S:
        about = _trace_text(load["trace"], trace, limit, scale)
        raise AtKey(
            ("load", "trace"),
            f"{about}: its replay needs a measurement window of "
            f"{duration_text(round(window_s, 3))} "
            f"(to {TRACE_TAIL_S:g} s after the last arrival, less the "
            f"{format_duration(warmup_s)} warmup), above the limit of 24h; set duration: 24h "
            "to replay its first day, or speed it up (load.time_scale: 0.5), or replay its "
            "first lines (load.limit)",
        )
    return {**data, "duration": duration_text(round(window_s, 3))}


def _trace_text(path: str, trace: Trace, limit: Any, time_scale: Any) -> str:
    """``the trace t.jsonl has 3 arrivals over 200ms`` (as replayed: limit and time scale)."""
    span_s = trace.last_offset_s
    when = "at one time" if span_s == 0 else f"over {format_duration(span_s)}"
    replayed = (
        " as replayed (load.limit, load.time_scale)"
        if limit is not None or time_scale != 1.0
        else ""
    )
    return f"the trace {Path(path).name} has {len(trace):,} arrivals {when}{replayed}"


def _find_key(value: Any, key: str) -> tuple[str | int, ...] | None:
    """Key path (from ``value``) of the first mapping key named ``key`` inside ``value``."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if k == key:
                return (k,)
            found = _find_key(v, key)
            if found is not None:
                return (k, *found)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _find_key(v, key)
            if found is not None:
                return (i, *found)
    return None
