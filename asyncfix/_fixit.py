"""The bridge between asyncfix and fixit: a fixit ``LintRule`` for each asyncfix rule
(``asyncfix.fixit``, and ``asyncfix.fixit_unsafe`` with the unsafe fixes too).

fixit runs its rules over one LibCST module at a time, each rule a visitor. asyncfix analyses
a whole file at once, on the stdlib tree: the first asyncfix rule to leave the module runs
asyncfix once for every asyncfix rule fixit enabled on it (they all visited the module
first), with the file's asyncfix configuration (found from its path), fixes it to asyncfix's
verified fixpoint, and each rule reports its own findings at their positions.

fixit applies a fix by replacing the node a violation names. When each fix asyncfix made in
a file rewrites one statement (``await`` added, a call changed), each finding carries its
own: that statement's replacement, checked to give together exactly asyncfix's verified
fix. Otherwise (a fix also adds an import at the top, or a lock in ``__init__``) the fixed
module replaces the whole module, once: the first finding in the file that asyncfix fixed
carries it (its message says how many findings the fix covers), the others carry none.
Either way ``fixit fix`` writes what ``asyncfix --write`` would.
Findings asyncfix reports without a fix (or whose fix is unsafe, in the safe pack) are
reported without one. Suppressions: fixit's own ``# lint-ignore: MissingAwait`` and
asyncfix's ``# asyncfix: ignore[AF101]`` / ``# noqa: AF101`` both work.

The project index holds the file alone (fixit checks a file at a time): the rules that ask
about other modules of the project (AF103, AF205, and the cross-module parts of the others)
find what the file itself shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import libcst as cst
from fixit import LintRule
from libcst.metadata import (
    CodePosition,
    CodeRange,
    FilePathProvider,
    PositionProvider,
)

from asyncfix.analysis.source import python_lines
from asyncfix.codemods import RULES
from asyncfix.config import ConfigError, apply_requires_python, find_config, load
from asyncfix.engine.process import process_alone
from asyncfix.engine.task import Task
from asyncfix.files import is_test_path, relative
from asyncfix.model import FileResult, Finding, Safety


@dataclass
class _Module:
    """asyncfix's results for one module fixit is linting, shared by its asyncfix rules."""

    module: cst.Module
    rules: list[AsyncfixLintRule] = field(default_factory=list)
    left: int = 0
    result: FileResult | None = None
    #: the finding that carries the whole fixed module, and how many findings it fixes
    carrier: Finding | None = None
    fixed_count: int = 0
    #: the statement each finding is on (what fixit's ``# lint-ignore`` comments attach
    #: to), by the finding's id; findings fixit's comments silence are not in it
    statements: dict[int, cst.CSTNode] = field(default_factory=dict)
    #: each fixed finding's own replacement (the statement its fix rewrites, and what it
    #: becomes), when every fixed finding has one and together they give asyncfix's fix
    own: dict[int, tuple[cst.CSTNode, Any]] = field(default_factory=dict)


#: the modules being linted, by id (LibCST nodes hash by identity and take no weak
#: reference); an entry goes when its last asyncfix rule has left the module
_MODULES: dict[int, _Module] = {}


class AsyncfixLintRule(LintRule):
    """One asyncfix rule as a fixit rule (``CODE``); ``UNSAFE``: offer its unsafe fixes."""

    METADATA_DEPENDENCIES = (PositionProvider, FilePathProvider)
    CODE: ClassVar[str] = ""
    UNSAFE: ClassVar[bool] = False

    def visit_Module(self, node: cst.Module) -> None:
        shared = _MODULES.setdefault(id(node), _Module(node))
        shared.rules.append(self)

    def leave_Module(self, original_node: cst.Module) -> None:
        shared = _MODULES[id(original_node)]
        try:
            if shared.result is None:
                self._analyse(shared, original_node)
            assert shared.result is not None
            for finding in shared.result.findings:
                if finding.code == self.CODE and id(finding) in shared.statements:
                    self._report(shared, original_node, finding)
        finally:
            shared.left += 1
            if shared.left == len(shared.rules):
                del _MODULES[id(original_node)]

    def _analyse(self, shared: _Module, module: cst.Module) -> None:
        """asyncfix on the module, for every asyncfix rule enabled on it. A finding that a
        fixit comment silences (``# lint-ignore: MissingAwait``) is left out, its fix too
        (asyncfix fixes the file again without it)."""
        found = self.get_metadata(FilePathProvider, module, None)
        path = Path(found) if found is not None else None
        task = _task(path, frozenset(rule.CODE for rule in shared.rules), self.UNSAFE)
        owners = {rule.CODE: rule for rule in shared.rules}
        lines = self._statement_lines(module)
        result = process_alone(module.code, task)
        silenced: set[str] = set()
        for finding in result.findings:
            statement = _innermost(lines, finding.span.line)
            if owners[finding.code].ignore_lint(statement):
                silenced.add(finding.fix_id or f"no fix {id(finding)}")
        if any(f.fixed and f.fix_id in silenced for f in result.findings):
            result = process_alone(module.code, replace(task, excluded=frozenset(silenced)))
        shared.result = result
        for finding in result.findings:
            statement = _innermost(lines, finding.span.line)
            if not owners[finding.code].ignore_lint(statement):
                shared.statements[id(finding)] = statement
        if result.internal_error or not result.changed:
            for finding in result.findings:
                finding.fixed = False
            return
        fixed = [f for f in result.findings if f.fixed and id(f) in shared.statements]
        if not fixed:
            return
        own = _own_replacements(module, fixed, lines)
        if own is not None and _replaced(module, own.values()) == result.fixed:
            shared.own = own
            return
        shared.carrier, shared.fixed_count = fixed[0], len(fixed)

    def _statement_lines(self, module: cst.Module) -> list[tuple[int, int, cst.CSTNode]]:
        """Every statement of the module with its first and last line."""
        out: list[tuple[int, int, cst.CSTNode]] = []
        stack: list[cst.CSTNode] = [module]
        while stack:
            node = stack.pop()
            if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
                where = self.get_metadata(PositionProvider, node)
                out.append((where.start.line, where.end.line, node))
            stack.extend(node.children)
        return out

    def _report(self, shared: _Module, module: cst.Module, finding: Finding) -> None:
        span = finding.span
        position = CodeRange(
            CodePosition(span.line, span.col - 1), CodePosition(span.end_line, span.end_col - 1)
        )
        message = f"{finding.code} {finding.message}"
        if finding is shared.carrier and shared.result is not None:
            assert shared.result.fixed is not None
            others = shared.fixed_count - 1
            if others:
                plural = "s" if others > 1 else ""
                message += f" (its fix also fixes {others} other asyncfix finding{plural} here)"
            fixed = cst.parse_module(shared.result.fixed)
            self.report(module, message, position=position, replacement=fixed)
            return
        if id(finding) in shared.own:
            statement, replacement = shared.own[id(finding)]
            self.report(statement, message, position=position, replacement=replacement)
            return
        if not finding.fixed and finding.fix_safety is Safety.UNSAFE and not self.UNSAFE:
            message += " (an unsafe fix: asyncfix.fixit_unsafe, or asyncfix --unsafe-fixes)"
        self.report(shared.statements[id(finding)], message, position=position)


def _own_replacements(
    module: cst.Module, fixed: list[Finding], lines: list[tuple[int, int, cst.CSTNode]]
) -> dict[int, tuple[cst.CSTNode, Any]] | None:
    """Each fixed finding's fix as the replacement of the one statement it rewrites: its
    edits are one run of whole lines that is exactly a statement (not a decorated one),
    and no two fixes touch the same or nested statements. None when one of them is not so
    (a fix that also adds an import, or puts a lock in ``__init__``)."""
    own: dict[int, tuple[cst.CSTNode, Any]] = {}
    taken: list[tuple[int, int]] = []
    source = python_lines(module.code, keepends=True)
    for finding in fixed:
        if len(finding.fix_edits) != 1:
            return None
        edit = finding.fix_edits[0]
        first, last = edit.line, edit.end_line - 1
        if last < first or any(not (last < a or b < first) for a, b in taken):
            return None
        exact = [node for start, end, node in lines if (start, end) == (first, last)]
        if not exact or getattr(exact[0], "decorators", None):
            return None
        statement = exact[0]  # the outermost: statements are listed from the module down
        replacement = _statements(edit.text, source[first - 1], statement)
        if replacement is None:
            return None
        own[id(finding)] = (statement, replacement)
        taken.append((first, last))
    return own


def _statements(text: str, first_line: str, statement: cst.CSTNode) -> Any:
    """``text`` (whole lines, indented as the statement's first line) as the statements
    that replace ``statement``, keeping the comments above it; None when it is not that."""
    indent = first_line[: len(first_line) - len(first_line.lstrip(" \t"))]
    dedented = []
    for line in python_lines(text, keepends=True):
        if line.strip() and not line.startswith(indent):
            return None
        dedented.append(line[len(indent) :] if line.strip() else line.lstrip(" \t"))
    try:
        body = list(cst.parse_module("".join(dedented)).body)
    except cst.ParserSyntaxError:
        return None
    if not body:
        return None
    leading = getattr(statement, "leading_lines", ())
    body[0] = body[0].with_changes(leading_lines=[*leading, *body[0].leading_lines])
    return body[0] if len(body) == 1 else cst.FlattenSentinel(body)


def _replaced(module: cst.Module, replacements: Any) -> str:
    """The module with the replacements made as fixit makes them."""
    by_node = dict(replacements)

    class _Replace(cst.CSTTransformer):
        def on_visit(self, node: cst.CSTNode) -> bool:
            return node not in by_node

        def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> Any:
            return by_node.get(original, updated)

    return module.visit(_Replace()).code


def _innermost(lines: list[tuple[int, int, cst.CSTNode]], line: int) -> cst.CSTNode:
    """The innermost statement on ``line`` (the module when there is none)."""
    best: tuple[int, int, cst.CSTNode] | None = None
    for start, end, node in lines:
        if start <= line <= end and (best is None or start > best[0] or end < best[1]):
            best = (start, end, node)
    if best is None:
        raise KeyError(line)
    return best[2]


def _task(path: Path | None, codes: frozenset[str], unsafe: bool) -> Task:
    """What asyncfix does with the file fixit lints: its configuration's target version and
    offloading helpers, whether it is test code (by its path in its project), these codes."""
    config = None
    if path is not None:
        try:
            config = load(find_config(path), [rule.code for rule in RULES])
            apply_requires_python(config, config.path or path)
        except ConfigError:
            config = None
    test_code = False
    if path is not None and config is not None:
        test_code = is_test_path(relative(path.absolute(), config.root) or path.name)
    elif path is not None:
        test_code = is_test_path(path.name)
    return Task(
        path=str(path) if path is not None else "<fixit>",
        display=str(path) if path is not None else "<fixit>",
        codes=codes,
        unsafe=unsafe,
        fix=True,
        preview=True,  # each fix alone: a finding whose fix rewrites one statement carries it
        target=config.target if config is not None else (3, 10),
        offload=tuple(config.offload_functions) if config is not None else (),
        coroutine_functions=tuple(config.coroutine_functions) if config is not None else (),
        test_code=test_code,
    )


def rule_classes(unsafe: bool) -> dict[str, type[AsyncfixLintRule]]:
    """A fixit rule class per asyncfix rule, named after it (``missing-await`` ->
    ``MissingAwait``), for a module's namespace."""
    classes: dict[str, type[AsyncfixLintRule]] = {}
    for rule in RULES:
        name = "".join(part.capitalize() for part in rule.name.split("-"))
        doc = f"{rule.code} {rule.name}: {rule.summary}. See `asyncfix rule {rule.code}`."
        classes[name] = type(
            name,
            (AsyncfixLintRule,),
            {
                "__doc__": doc,
                "__module__": "asyncfix.fixit_unsafe" if unsafe else "asyncfix.fixit",
                "CODE": rule.code,
                "UNSAFE": unsafe,
                "TAGS": {"asyncio", rule.code, rule.code[:3]},
                "VALID": [],
                "INVALID": [],
            },
        )
    return classes
