"""Start-up cost: what importing the CLI and the mock server's child process loads (issue 14).

Times belong in benchmarks/startup.py; these tests check the cause instead: which modules a
fresh interpreter has loaded after the import, in a subprocess so that this test process's own
imports do not count.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Libraries that cost tens to hundreds of milliseconds to import and that `--help` never uses.
HEAVY = ("scipy", "numpy", "pandas", "matplotlib", "aiohttp", "pydantic", "yaml", "psutil")


def _loaded_after(statement: str, names: tuple[str, ...]) -> list[str]:
    code = (
        "import json, sys\n"
        f"{statement}\n"
        f"print(json.dumps([m for m in {list(names)!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    loaded: list[str] = json.loads(out.strip().splitlines()[-1])
    return loaded


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert _loaded_after("import harborbench.cli", HEAVY) == []


def test_the_check_sees_a_heavy_import() -> None:
    # The test above can fail: the same check after importing the statistics module.
    assert _loaded_after("import harborbench.cli, harborbench.metrics.stats", HEAVY) == ["numpy"]


def test_the_mock_child_does_not_import_the_cli_or_the_statistics() -> None:
    loaded = _loaded_after(
        "import harborbench.mockserver.__main__",
        ("harborbench.cli", "typer", "rich", "scipy", "numpy", "pandas", "matplotlib"),
    )
    assert loaded == []


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ('{"latency": "nope"}', "error: invalid mock settings in --settings-json: latency.value: "),
        ("[1", "error: --settings-json is not a JSON object: "),
    ],
)
def test_the_mock_child_refuses_bad_settings_in_one_line(settings: str, expected: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harborbench.mockserver", "--settings-json", settings],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith(expected)
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
