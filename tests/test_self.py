"""Our own code meets our own bar: asyncfix finds nothing in it; ruff and mypy pass."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asyncfix.cli import main
from tests.helpers import cli_runner

ROOT = Path(__file__).resolve().parent.parent


def test_asyncfix_finds_nothing_in_its_own_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = cli_runner().invoke(main, ["asyncfix", "scripts", "tests"])
    assert result.exit_code == 0, result.output


def test_example_has_every_rule_and_a_clean_lookalike_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from asyncfix.codemods import RULES

    monkeypatch.chdir(ROOT)
    result = cli_runner().invoke(main, ["--output-format", "json", "examples"])
    assert result.exit_code == 1
    import json

    data = json.loads(result.output)
    assert set(data["summary"]["by_code"]) == {rule.code for rule in RULES}
    assert "examples/smarthome/healthy.py" not in {f["path"] for f in data["files"]}


def _tool(name: str) -> list[str]:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return [found]


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff check", "ruff format", "mypy"],
)
def test_linters_pass(command: list[str]) -> None:
    done = subprocess.run(
        [*_tool(command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
