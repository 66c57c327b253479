"""Finding Chromium for the browser tests: skip on a developer's machine, fail in CI.

On a fresh machine without Chromium, the README's test command passes: the browser tests are
skipped, and one line at the end of the run names the install command. Where Chromium is
expected (``CI`` set to ``true`` or ``1``, as GitHub Actions and most CI systems do, or
``HARBORBENCH_REQUIRE_CHROMIUM=1``, as ``.ci/run`` does) a missing Chromium fails the tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping

import pytest

CHROMIUM_INSTALL = "sudo apt-get install -y chromium"
#: The start of the skip reason; the terminal summary of ``tests/conftest.py`` looks for it.
SKIP_REASON = "Chromium not found on PATH"


def chromium_required(environ: Mapping[str, str]) -> bool:
    """Whether a missing Chromium is a failure (CI) rather than a skip."""
    flags = (environ.get("CI", ""), environ.get("HARBORBENCH_REQUIRE_CHROMIUM", ""))
    return any(flag.strip().lower() in ("1", "true", "yes") for flag in flags)


def find_chromium(environ: Mapping[str, str] | None = None) -> str:
    """The Chromium executable; skips the test without it, or fails it where it is required."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is not None:
        return exe
    if chromium_required(os.environ if environ is None else environ):
        pytest.fail(
            f"{SKIP_REASON}, and CI requires the browser tests; install it with: {CHROMIUM_INSTALL}"
        )
    pytest.skip(f"{SKIP_REASON}; install it with: {CHROMIUM_INSTALL}")
