"""Workload profiles: the schema (SPEC section 5) and strict loading from YAML.

A profile says what to send (``request``), where (``target``: the built-in mock or a
``base_url``), with which client configuration (``client``, exactly as ``create_fast_client``
takes it), how hard (``load``: closed loop, open loop or stages), for how long (``warmup``, then
``duration``, ``repeat`` times) and what must hold (``gates``). Example::

    name: steady
    target: {mock: {latency: {distribution: lognormal, median: 20ms, p99: 120ms}}}
    request: {model: gpt-4o-mini, prompt_tokens: 200, max_tokens: 64}
    client: {concurrency_optimization: {enabled: true}}
    load: {rate: 500, arrival: poisson}
    warmup: 3s
    duration: 20s
    gates: {throughput_min: 450, p95_max: 200ms, error_rate_max: 1%}

Durations are strings with units (:func:`harborbench.units.parse_duration`), held as float
seconds; ``model_dump()`` (either mode) writes them back with units, exactly, so the dump of
a profile loads again with :func:`load_profile_dict` and gives an equal profile. Rates are
ops/s. Fractions accept ``0.01`` or ``"1%"``.

Every problem is reported at once in one :class:`harborbench.errors.ProfileError`, one line per
problem, each naming the file, the line (or the ``--set`` option it came from), the key path and
the fix. Reading is strict (:mod:`harborbench.profile.strict_yaml`): unknown keys (with a
did-you-mean), duplicate keys, YAML 1.1 booleans (``yes``/``no``/``on``/``off``/``y``/``n``),
base-60 numbers (``1:30``) and wrong types (``"10"`` for a number) are errors, not guesses. An API
key is never written in a profile: ``target.api_key_env`` names the environment variable that
holds it.

The parts: :mod:`~harborbench.profile.schema` (the models), :mod:`~harborbench.profile.loader`
(reading files and plain data), :mod:`~harborbench.profile.strict_yaml` (the YAML reader),
:mod:`~harborbench.profile.diagnostics` (turning validation errors into those lines) and
:mod:`~harborbench.profile.overrides` (``--set``). This module re-exports their public names.
"""

from __future__ import annotations

from harborbench.profile.loader import apply_overrides, load_profile, load_profile_dict
from harborbench.profile.schema import (
    CHARS_PER_TOKEN,
    DEFAULT_MESSAGES,
    EnvRef,
    Gates,
    LoadSpec,
    Message,
    Profile,
    RequestSpec,
    SloSpec,
    Stage,
    TargetSpec,
)

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_MESSAGES",
    "EnvRef",
    "Gates",
    "LoadSpec",
    "Message",
    "Profile",
    "RequestSpec",
    "SloSpec",
    "Stage",
    "TargetSpec",
    "apply_overrides",
    "load_profile",
    "load_profile_dict",
]
