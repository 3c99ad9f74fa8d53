"""The engine's promises: a fix that does not verify is dropped and the file left alone."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import libcst as cst
import pytest

from asyncfix import engine
from asyncfix.codemods.base import Fix, Locate, PendingFix, Rule
from asyncfix.config import Config
from asyncfix.engine import process as process_module
from asyncfix.engine import runner as runner_module
from asyncfix.model import Safety, Severity
from tests.helpers import run_text

SOURCE = "async def f():\n    marker()\n"


class _TestRule(Rule):
    """Reports every ``marker()`` call with the fix ``replacement`` makes."""

    summary = why = example_before = example_after = fix_safety_note = kind = "test"
    fix_safety = Safety.SAFE
    severity = Severity.LOW
    needles = ("marker",)

    def replacement(self, call: cst.Call, locate: Locate) -> dict[cst.CSTNode, Any]:
        raise NotImplementedError

    def on_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id == "marker":

            def build(call: cst.CSTNode, locate: Locate) -> Fix:
                assert isinstance(call, cst.Call)
                return Fix(Safety.SAFE, ["test"], self.replacement(call, locate))

            self.report(node, "marker", (Safety.SAFE, ["test"], PendingFix(node, cst.Call, build)))


class _Broken(_TestRule):
    """Its fix yields code that parses but does not compile."""

    code = "AF999"
    name = "broken"

    def replacement(self, call: cst.Call, locate: Locate) -> dict[cst.CSTNode, Any]:
        # `return` with a value inside an async generator is a compile-time error
        statement = locate.parent(locate.parent(call))  # type: ignore[arg-type]
        assert statement is not None
        new = [cst.parse_statement("(yield)\n"), cst.parse_statement("return 1\n")]
        return {statement: cst.FlattenSentinel(new)}


class _NeverDone(_TestRule):
    """Its fix changes nothing, so the finding is always there again."""

    code = "AF998"
    name = "never-done"

    def replacement(self, call: cst.Call, locate: Locate) -> dict[cst.CSTNode, Any]:
        return {call: call.deep_clone()}


@pytest.fixture()
def with_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    from asyncfix import codemods

    table = {"AF999": _Broken, "AF998": _NeverDone}
    real = codemods.rule_by_code

    def fake(code: str) -> Any:
        return table.get(code) or real(code)

    monkeypatch.setattr(process_module, "rule_by_code", fake)


@pytest.mark.usefixtures("with_rules")
def test_fix_that_does_not_compile_is_dropped() -> None:
    result = run_text(SOURCE, {"AF999"})
    assert not result.changed
    assert [f.fixed for f in result.findings] == [False]
    assert len(result.dropped) == 1 and "does not compile" in result.dropped[0]


@pytest.mark.usefixtures("with_rules")
def test_fix_without_fixpoint_is_dropped() -> None:
    result = run_text(SOURCE, {"AF998"})
    assert not result.changed
    assert len(result.dropped) == 1 and "did not reach a fixpoint" in result.dropped[0]


@pytest.mark.usefixtures("with_rules")
def test_unverified_fix_is_not_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "m.py"
    path.write_text(SOURCE)
    monkeypatch.setattr(runner_module, "all_codes", lambda: ["AF999"])
    run = engine.run([path], Config(select=["AF999"]), "write")
    assert path.read_text() == SOURCE
    assert not run.files[0].written
    assert run.files[0].dropped and run.files[0].findings[0].fixed is False


BROKEN_AND_GOOD = """\
import time


async def f():
    marker()
    time.sleep(1)


async def g():
    time.sleep(2)
"""


@pytest.mark.usefixtures("with_rules")
def test_a_fix_that_does_not_verify_drops_that_fix_alone() -> None:
    """The file's other fixes are applied and verified again without it."""
    result = run_text(BROKEN_AND_GOOD, {"AF999", "AF201"})
    assert result.internal_error is None
    assert result.fixed is not None
    assert "marker()" in result.fixed and "return 1" not in result.fixed
    assert result.fixed.count("await asyncio.sleep(") == 2
    assert {f.code: f.fixed for f in result.findings} == {"AF999": False, "AF201": True}
    assert len(result.dropped) == 1 and result.dropped[0].startswith("the AF999 fix at line 5")
    assert result.validation is not None and result.validation.compile is True


def test_newer_syntax_is_not_rejected_by_the_compile_check() -> None:
    # PEP 695 (Python 3.12) parses with LibCST; this interpreter may not compile it
    text = "import time\n\ntype Seconds = float\n\n\nasync def f():\n    time.sleep(1)\n"
    result = run_text(text, {"AF201"})
    assert result.internal_error is None
    assert result.fixed is not None and "await asyncio.sleep(1)" in result.fixed
    assert result.validation is not None and result.validation.reparse is True


def test_file_without_findings_is_not_parsed_for_rules_it_cannot_match() -> None:
    result = run_text("def f():\n    return 1\n", {"AF201", "AF301"})
    assert result.findings == [] and result.fixed is None


def _nested(depth: int) -> str:
    return f"async def f(path):\n    x = {'[' * depth}{']' * depth}\n    open(path)\n"


def test_deep_nesting_python_accepts_is_checked_and_fixed() -> None:
    """199 nested brackets is legal Python; LibCST's recursive code writer needs the room."""
    result = run_text(_nested(199), {"AF203"})
    assert result.error is None and result.internal_error is None
    assert [f.code for f in result.findings] == ["AF203"]
    assert result.fixed is not None and "await asyncio.to_thread(open, path)" in result.fixed


def test_nesting_beyond_python_is_a_clear_error_not_a_crash(tmp_path: Path) -> None:
    """Deeper than CPython parses: LibCST's native parser is never tried (it can overflow the C
    stack and kill the process); the file gets an error and the run goes on."""
    deep = tmp_path / "deep.py"
    deep.write_text(_nested(3000))
    fine = tmp_path / "fine.py"
    fine.write_text("import time\n\nasync def f():\n    time.sleep(1)\n")
    result = engine.run([tmp_path], Config(root=tmp_path), "check", jobs=1)
    by_name = {Path(r.path).name: r for r in result.files}
    # Python's own words, and where
    assert (
        by_name["deep.py"].error
        == "syntax error at line 2, column 209: too many nested parentheses"
    )
    assert [f.code for f in by_name["fine.py"].findings] == ["AF201"]
