"""The README's commands stay true: each `harborbench` command it shows exists, with its options."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_commands() -> list[list[str]]:
    """Every line in a bash code block that runs harborbench, as argv after the program name."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            for part in line.split("&&"):
                words = shlex.split(part)
                if words and words[0].endswith("harborbench"):
                    out.append(words[1:])
    return out


def test_the_readme_shows_the_two_setup_commands() -> None:
    assert "pip install -e . && .venv/bin/harborbench run profiles/burst.yaml" in README
    assert "pip install -e '.[test]' && .venv/bin/python -m pytest -q" in README
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pytest -q" in ci


@pytest.mark.parametrize("argv", readme_commands(), ids=lambda a: " ".join(a))
def test_readme_command_and_its_options_exist(cli, argv: list[str]) -> None:  # type: ignore[no-untyped-def]
    command = argv[0]
    code, out, _ = cli(command, "--help")
    assert code == 0, f"`harborbench {command}` does not exist"
    for word in argv[1:]:
        if word.startswith("--"):
            assert word.split("=")[0] in out, f"`harborbench {command}` has no option {word}"
        elif word.endswith((".yaml", ".yml")):
            assert (ROOT / word).exists(), f"{word} is not in the repository"


def test_every_command_is_in_the_readme(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("--help")
    assert code == 0
    shown = {argv[0] for argv in readme_commands()}
    listed = set(re.findall(r"│ ([a-z][a-z-]+) {2,}", out))
    assert listed, out
    assert listed <= shown, f"commands missing from the README's examples: {listed - shown}"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_python_examples_run_against_the_mock(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from harborbench.mockserver.process import MockServer
    from harborbench.report.files import ResultWriter

    client_example, engine_example, notebook_example = python_blocks()
    with MockServer() as server:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # works with no variable set
        code = client_example.replace("http://127.0.0.1:8000/v1", server.base_url)
        exec(compile(code, "README.md", "exec"), {})
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}
    shortened = engine_example.replace('"duration=10s"', '"duration=1s", "warmup=0s"')
    assert shortened != engine_example
    exec(compile(shortened, "README.md", "exec"), namespace)
    result = namespace["result"]
    assert result.total.successes > 0  # type: ignore[attr-defined]
    ResultWriter(tmp_path / "reports", "steady").save(result)  # type: ignore[arg-type]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(notebook_example, "README.md", "exec"), namespace)
    loaded = namespace["result"]
    assert loaded.summary_frame()["successes"].tolist() == [result.total.successes]  # type: ignore[attr-defined]
