"""The fixit rule packs (``asyncfix.fixit``, ``asyncfix.fixit_unsafe``): every fixture run
through fixit's own test helpers, and fixit's command line on a small project."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

fixit = pytest.importorskip("fixit")
from fixit import Invalid, Valid  # noqa: E402
from fixit.testing import generate_lint_rule_test_cases  # noqa: E402

from asyncfix import fixit as safe_pack  # noqa: E402
from asyncfix import fixit_unsafe  # noqa: E402
from asyncfix._fixit import AsyncfixLintRule  # noqa: E402
from asyncfix.codemods import RULES  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"


def _rule_classes(pack: Any) -> dict[str, type[AsyncfixLintRule]]:
    return {
        name: value
        for name, value in vars(pack).items()
        if isinstance(value, type) and issubclass(value, AsyncfixLintRule)
    }


def _cases(code: str) -> tuple[list[Valid], list[Invalid]]:
    """A rule's fixtures as fixit test cases: look-alikes are valid, a pair is invalid with
    its fixed text, a ``.nofix`` file is invalid without one. Fixtures that ask for
    settings of their own (``# fixture: ...``) need asyncfix's harness and are left out."""
    valid: list[Valid] = []
    invalid: list[Invalid] = []
    for path in sorted((FIXTURES / code).glob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.startswith("# fixture:") or text.startswith("\n"):
            continue
        name = path.name
        if name.endswith(".before.py"):
            after = path.with_name(name.replace(".before.py", ".after.py"))
            invalid.append(Invalid(text, expected_replacement=after.read_text(encoding="utf-8")))
        elif name.endswith(".nofix.py"):
            invalid.append(Invalid(text))
        elif name.count(".") == 1:
            valid.append(Valid(text))
    return valid, invalid


def test_the_packs_name_every_rule() -> None:
    for pack in (safe_pack, fixit_unsafe):
        classes = _rule_classes(pack)
        assert sorted(cls.CODE for cls in classes.values()) == sorted(r.code for r in RULES)
    assert _rule_classes(safe_pack)["MissingAwait"].CODE == "AF101"
    assert not _rule_classes(safe_pack)["MissingAwait"].UNSAFE


def _fixture_tests() -> list[tuple[str, type[Any], str]]:
    """fixit's generated unittest cases for every rule (the unsafe pack: the fixtures'
    pairs are made with the unsafe fixes on), as (rule, test case class, method)."""
    rules = []
    for name, cls in _rule_classes(fixit_unsafe).items():
        valid, invalid = _cases(cls.CODE)
        rules.append(type(name, (cls,), {"VALID": valid, "INVALID": invalid})())
    found = []
    for case in generate_lint_rule_test_cases(rules):
        for method in sorted(m for m in vars(case) if m.startswith("test_")):
            found.append((case.__name__, case, method))
    return found


FIXTURE_TESTS = _fixture_tests()


def test_fixtures_are_there() -> None:
    assert len(FIXTURE_TESTS) > 150  # 176 of the 190 cases: the others ask for settings


@pytest.mark.parametrize(
    ("rule", "case", "method"), FIXTURE_TESTS, ids=[f"{r}-{m}" for r, _, m in FIXTURE_TESTS]
)
def test_fixture_with_fixits_test_helper(
    rule: str, case: type[Any], method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # fixit's helper names the file in the working directory
    case(method).debug()  # raises what the test case asserts


PROJECT = """\
import time


async def poll():
    time.sleep(1)  # lint-ignore: BlockingSleep
    time.sleep(2)


class Api:
    async def _get(self):
        return 1

    async def get(self):
        return self._get()

    async def go(self):
        self._get()
        self._get()  # asyncfix: ignore[AF101]
"""


def _fixit(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "fixit", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("pack", ["asyncfix.fixit", "asyncfix.fixit_unsafe"])
def test_fixit_command_line(tmp_path: Path, pack: str) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.fixit]\nroot = true\nenable = ["{pack}"]\ndisable = ["fixit.rules"]\n'
    )
    (tmp_path / "app.py").write_text(PROJECT)
    lint = _fixit(tmp_path, "lint", "app.py")
    assert lint.returncode == 1, lint.stderr
    lines = sorted(line for line in lint.stdout.splitlines() if line.startswith("app.py@"))
    # fixit's positions: 1-based lines, 0-based columns; the ignored findings are not there
    assert [line.split(" ", 2)[:2] for line in lines] == [
        ["app.py@14:15", "MissingAwait:"],
        ["app.py@17:8", "MissingAwait:"],
        ["app.py@6:4", "BlockingSleep:"],
    ]
    assert "(has autofix)" in lint.stdout
    fix = _fixit(tmp_path, "fix", "--automatic", "app.py")
    assert fix.returncode in (0, 1), fix.stderr
    fixed = (tmp_path / "app.py").read_text()
    expected = (
        PROJECT.replace("import time", "import asyncio\nimport time")
        .replace("    time.sleep(2)", "    await asyncio.sleep(2)")
        .replace(
            "        self._get()\n        self._get()  #",
            "        await self._get()\n        self._get()  #",
        )
    )
    if pack.endswith("unsafe"):
        expected = expected.replace("return self._get()", "return await self._get()")
    assert fixed == expected
    again = _fixit(tmp_path, "lint", "app.py")
    left = [line for line in again.stdout.splitlines() if line.startswith("app.py@")]
    assert len(left) == (0 if pack.endswith("unsafe") else 1)


OWN_FIXES = """\
import asyncio


class Api:
    async def _get(self):
        return 1

    async def go(self):
        # the comment above stays
        self._get()
        self._get()  # and this one
        loop = asyncio.get_event_loop()
        return loop
"""


def test_each_finding_carries_its_own_fix_when_it_rewrites_one_statement(
    tmp_path: Path,
) -> None:
    """Fixes that each rewrite one statement are offered one by one (fixit's interactive
    `fix` asks about each), and together they write what `asyncfix --write` writes."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.fixit]\nroot = true\nenable = ["asyncfix.fixit"]\ndisable = ["fixit.rules"]\n'
    )
    (tmp_path / "app.py").write_text(OWN_FIXES)
    (tmp_path / "twin.py").write_text(OWN_FIXES)
    lint = _fixit(tmp_path, "lint", "app.py")
    reported = [line for line in lint.stdout.splitlines() if line.startswith("app.py@")]
    assert len(reported) == 3
    assert all(line.endswith("(has autofix)") for line in reported)
    assert "other asyncfix finding" not in lint.stdout
    _fixit(tmp_path, "fix", "--automatic", "app.py")
    subprocess.run(
        [sys.executable, "-m", "asyncfix", "--write", "--no-cache", "twin.py"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    fixed = (tmp_path / "app.py").read_text()
    assert fixed == (tmp_path / "twin.py").read_text() != OWN_FIXES
    assert "# the comment above stays\n        await self._get()\n" in fixed


def test_fixit_reads_asyncfixs_own_settings(tmp_path: Path) -> None:
    """The fixit rules take the project's `[tool.asyncfix]` settings, as `asyncfix` does: a
    declared coroutine function is known to them."""
    (tmp_path / "pyproject.toml").write_text(
        '[tool.fixit]\nroot = true\nenable = ["asyncfix.fixit"]\ndisable = ["fixit.rules"]\n'
        '[tool.asyncfix]\ncoroutine-functions = ["vendor.**"]\n'
    )
    (tmp_path / "app.py").write_text(
        "from vendor.client import fetch\n\n\nasync def poll():\n    fetch()\n"
    )
    lint = _fixit(tmp_path, "lint", "app.py")
    reported = [line for line in lint.stdout.splitlines() if line.startswith("app.py@")]
    assert [line.split(" ", 2)[:2] for line in reported] == [["app.py@5:4", "MissingAwait:"]]
    (tmp_path / "pyproject.toml").write_text(
        '[tool.fixit]\nroot = true\nenable = ["asyncfix.fixit"]\ndisable = ["fixit.rules"]\n'
    )
    again = _fixit(tmp_path, "lint", "app.py")
    assert not [line for line in again.stdout.splitlines() if line.startswith("app.py@")]
