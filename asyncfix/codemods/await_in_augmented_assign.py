"""AF403 await-in-augmented-assign: ``self.x += await f()`` reads ``self.x`` before the
``await`` and writes it after."""

from __future__ import annotations

import ast

from asyncfix.analysis.classes import self_name
from asyncfix.analysis.model import alone_on_its_line, identifiers, in_order
from asyncfix.analysis.races import MUTABLE, write_target
from asyncfix.codemods.base import Fix, Locate, PendingFix, Rule, fresh_name
from asyncfix.codemods.race_fix import brief
from asyncfix.lazy import libcst as cst
from asyncfix.model import Safety, Severity


class AwaitInAugmentedAssign(Rule):
    code = "AF403"
    name = "await-in-augmented-assign"
    summary = "`self.x += await f()`: the old value is read before the `await`"
    why = (
        "Python reads `self.total` before it evaluates `await f()`. While the task is "
        "suspended another task updates `self.total`; the addition then uses the old value "
        "and the other update is lost."
    )
    example_before = """\
class Meter:
    def __init__(self, source):
        self.source = source
        self.total = 0

    async def sample(self):
        self.total += await self.source.read()
"""
    example_after = """\
class Meter:
    def __init__(self, source):
        self.source = source
        self.total = 0

    async def sample(self):
        result = await self.source.read()
        self.total += result
"""
    fix_safety = Safety.SAFE
    fix_safety_note = (
        "Safe: the awaited value is computed first into a fresh local, then the update reads "
        "and writes the attribute with no suspension in between. Offered when the `await` is "
        "the whole right-hand side or an operand of arithmetic whose other operands make no "
        "calls (so nothing else changes order), and the statement stands on its own line."
    )
    severity = Severity.HIGH
    kind = "Race on shared state"
    needles = ("await",)

    def on_AugAssign(self, node: ast.AugAssign) -> None:
        self._check(node, node.target, node.value, augmented=True)

    def on_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) == 1:
            self._check(node, node.targets[0], node.value, augmented=False)

    def _check(
        self, node: ast.AugAssign | ast.Assign, target: ast.expr, value: ast.expr, augmented: bool
    ) -> None:
        place = self.walk.place(node)
        if place.kind != "async" or place.function is None:
            return
        awaits = self.model.races.awaits(value)
        if not awaits:
            return
        shared = self._shared(node, target, place.function)
        if shared is None or self._in_place(node, target, place.function):
            return
        if not augmented and not self._reads_before(value, target, awaits[0]):
            return
        message = (
            f"`{shared}` is read before the `await` and written after it: an update another "
            "task makes while this one is suspended is lost"
        )
        fix = self._fix(node, value, awaits, place.function) if len(awaits) == 1 else None
        self.report(
            node,
            message if fix else message + " (no fix: more than one `await` or a reordering call)",
            fix,
            [f"`{shared}` is shared: another task can update it"],
        )

    def _in_place(
        self,
        node: ast.AugAssign | ast.Assign,
        target: ast.expr,
        function: ast.FunctionDef | ast.AsyncFunctionDef,
    ) -> bool:
        """``self.seen |= await f()`` on a set, ``self.items += await f()`` on a list: the
        object is updated in place, so nothing another task added to it is lost."""
        if isinstance(node, ast.AugAssign) and isinstance(
            node.op, (ast.BitOr, ast.BitAnd, ast.BitXor)
        ):
            return True
        cls = self.walk.enclosing_class(node)
        if cls is None or not isinstance(target, ast.Attribute):
            return False
        receiver = self_name(function)
        attribute = write_target(target, receiver) if receiver else None
        if attribute is None:
            return False
        facts = self.model.races.facts_of(cls)
        kinds = facts.constructors.get(attribute, set()) if facts is not None else set()
        return bool(kinds) and kinds <= MUTABLE

    def _shared(
        self, node: ast.AST, target: ast.expr, function: ast.FunctionDef | ast.AsyncFunctionDef
    ) -> str | None:
        """How a shared target is spelled: ``self.x``/``self.x[k]``, a ``global`` or
        ``nonlocal`` name; None for locals."""
        receiver = self_name(function) if self.walk.enclosing_class(node) is not None else None
        if receiver is not None and write_target(target, receiver) is not None:
            return self.model.source.segment(target)
        if isinstance(target, ast.Name):
            scope = self.model.scopes.opened.get(id(function))
            if scope is not None and target.id in scope.declared_global | scope.declared_nonlocal:
                return target.id
        return None

    def _reads_before(self, value: ast.expr, target: ast.expr, first_await: ast.AST) -> bool:
        """``value`` reads the target (``self.x = self.x + await f()``) before its first
        await."""
        segment = self.model.source.segment
        spelled = segment(target)
        for node in in_order(value):
            if node is first_await:
                return False
            if (
                isinstance(node, (ast.Name, ast.Attribute, ast.Subscript))
                and segment(node) == spelled
            ):
                return True
        return False

    def _fix(
        self,
        node: ast.AugAssign | ast.Assign,
        value: ast.expr,
        awaits: list[ast.Await],
        function: ast.FunctionDef | ast.AsyncFunctionDef,
    ) -> tuple[Safety, list[str], PendingFix] | None:
        (awaited,) = awaits
        if not _hoistable(value, awaited) or not alone_on_its_line(self.model, node):
            return None
        name = fresh_name("result", set(identifiers(function)))
        changes = [f"Moved `{brief(self, awaited)}` into `{name}` on the line before the update"]
        awaited_span = self.span(awaited)

        def build(statement: cst.CSTNode, locate: Locate) -> Fix:
            line = locate.parent(statement)
            assert isinstance(line, cst.SimpleStatementLine)
            await_node = locate.find(awaited_span, cst.Await)
            assert isinstance(await_node, cst.Await)
            first = cst.SimpleStatementLine(
                [
                    cst.Assign(
                        targets=[cst.AssignTarget(cst.Name(name))],
                        value=await_node.with_changes(lpar=[], rpar=[]),
                    )
                ],
                leading_lines=line.leading_lines,
            )
            updated = line.with_changes(
                body=[statement.deep_replace(await_node, cst.Name(name))], leading_lines=[]
            )
            return Fix(Safety.SAFE, list(changes), {line: cst.FlattenSentinel([first, updated])})

        kind = cst.AugAssign if isinstance(node, ast.AugAssign) else cst.Assign
        return Safety.SAFE, changes, PendingFix(node, kind, build)


def _hoistable(value: ast.expr, awaited: ast.Await) -> bool:
    """The await is ``value`` itself or reached through arithmetic only, and nothing else in
    ``value`` calls a function (which would now run after the await instead of before)."""

    def reaches(node: ast.expr) -> bool:
        if node is awaited:
            return True
        return isinstance(node, ast.BinOp) and (reaches(node.left) or reaches(node.right))

    if not reaches(value):
        return False
    inside = {id(n) for n in in_order(awaited)}
    return not any(
        isinstance(node, ast.Call) and id(node) not in inside for node in in_order(value)
    )
