"""AF101 missing-await: a coroutine function is called and its coroutine never awaited."""

from __future__ import annotations

import ast

import libcst as cst

from asyncfix.codemods.base import Fix, Project, Rule, await_expression, source_of
from asyncfix.codemods.coroutines import VALUE_CONSUMERS, coroutine_callee, may_call_coroutine
from asyncfix.model import Safety, Severity

#: parents (stdlib ast) of a call that ``_dropped_context`` may flag; a superset on purpose
_AST_CONTEXTS = (
    ast.Expr,
    ast.If,
    ast.While,
    ast.IfExp,
    ast.comprehension,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.BinOp,
    ast.Attribute,
    ast.Subscript,
    ast.Call,  # an argument: `_consumer_ok` keeps only value-using builtins (`print(f())`)
    ast.keyword,
    ast.Starred,
    ast.FormattedValue,
    ast.Return,
)


class MissingAwait(Rule):
    code = "AF101"
    name = "missing-await"
    summary = "a coroutine function is called without `await`"
    why = (
        "Calling a coroutine function only creates a coroutine object; its body runs when the "
        "coroutine is awaited. Without `await` the work silently never happens (Python at best "
        "prints 'coroutine ... was never awaited' when it is garbage-collected), and where the "
        "result is used as a value — `if client.is_connected():`, `not f()`, `cb and cb(x)` — a "
        "coroutine object is always truthy, so the test is always true."
    )
    example_before = """\
class Agent:
    async def connect(self):
        ...

    async def start(self):
        self.connect()
"""
    example_after = """\
class Agent:
    async def connect(self):
        ...

    async def start(self):
        await self.connect()
"""
    fix_safety = Safety.SAFE
    fix_safety_note = (
        "Safe: the coroutine now runs where it was evidently meant to run. The callee must be "
        "known to be a coroutine function: a same-module `async def` (undecorated or with a "
        "decorator known to keep it a coroutine function), a method of the enclosing class or "
        "its same-module bases, or a well-known library coroutine; anything else is not "
        "reported. `return f()` from an `async def` gets an unsafe fix (a caller may await the "
        "returned coroutine itself). Inside a generator expression no fix is offered."
    )
    severity = Severity.HIGH
    kind = "Coroutine never awaited"
    needles = ("async",)

    needs_index = True

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        return may_call_coroutine(tree, project, in_async=True, contexts=_AST_CONTEXTS)

    def visit_Call(self, node: cst.Call) -> None:
        if not self.ctx.in_async_body():
            return
        context = self._dropped_context(node)
        if context is None:
            return
        found = coroutine_callee(self.ctx, node)
        if found is None:
            return
        callee, evidence = found
        message = f"`{callee}()` is not awaited: the coroutine is {context}"
        if self.ctx.in_generator_expression():
            self.report(node, message + " (no fix inside a generator expression)", None, evidence)
            return
        safety = Safety.UNSAFE if context == "returned" else Safety.SAFE
        fix = Fix(
            safety=safety,
            changes=[f"Inserted `await` before `{source_of(node.func)}(...)`"],
            replace={node: await_expression(node, node, self.ctx.parent())},
        )
        self.report(node, message, fix, evidence)

    # -- is the coroutine used wrongly? ------------------------------------------------

    def _dropped_context(self, node: cst.BaseExpression) -> str | None:
        """How the coroutine is misused here, or None when this use may be legitimate.

        A new context here needs its stdlib-ast parent in ``_AST_CONTEXTS`` too."""
        parent = self.ctx.parent(node)
        if isinstance(parent, cst.Expr):
            return "dropped"
        if isinstance(parent, (cst.If, cst.While)) and parent.test is node:
            return "used as a condition (always true)"
        if isinstance(parent, (cst.IfExp, cst.CompIf)) and parent.test is node:
            return "used as a condition (always true)"
        if isinstance(parent, cst.UnaryOperation):
            return (
                "negated (always false)"
                if isinstance(parent.operator, cst.Not)
                else "used as a number"
            )
        if isinstance(parent, cst.BooleanOperation):
            if parent.left is node:
                return "used as a truth value (always true)"
            # the right operand is the result: misused only where the whole is misused
            return self._dropped_context(parent)
        if isinstance(parent, cst.Comparison) and not self._awaited(parent):
            return "compared"
        if isinstance(parent, cst.ComparisonTarget):
            grand = self.ctx.parent(parent)
            return "compared" if grand is not None and not self._awaited(grand) else None
        if isinstance(parent, cst.BinaryOperation) and not self._awaited(parent):
            return "used in arithmetic"
        if isinstance(parent, cst.Attribute) and parent.value is node:
            return "used as an object (attribute access)"
        if isinstance(parent, cst.Subscript) and parent.value is node:
            return "subscripted"
        if isinstance(parent, cst.Arg):
            call = self.ctx.parent(parent)
            if isinstance(call, cst.Call) and self.ctx.qualified_name(call.func) in {
                f"builtins.{name}" for name in VALUE_CONSUMERS
            }:
                return f"passed to `{source_of(call.func)}()` as a value"
            return None
        if isinstance(parent, cst.FormattedStringExpression):
            return "formatted into a string"
        if isinstance(parent, cst.Return):
            return "returned"
        return None

    def _awaited(self, node: cst.CSTNode) -> bool:
        return isinstance(self.ctx.parent(node), cst.Await)

    # -- is the callee a coroutine function? -------------------------------------------
