"""AF101 missing-await: a coroutine function is called and its coroutine never awaited."""

from __future__ import annotations

import ast

from asyncfix.codemods.base import Fix, Locate, PendingFix, Rule, await_expression
from asyncfix.lazy import libcst as cst
from asyncfix.model import Safety, Severity

#: builtins that use the value of their argument (a coroutine there is a bug)
VALUE_CONSUMERS = frozenset(
    {
        "print",
        "str",
        "repr",
        "len",
        "bool",
        "int",
        "float",
        "list",
        "tuple",
        "set",
        "dict",
        "sorted",
        "sum",
        "min",
        "max",
        "any",
        "all",
        "format",
    }
)
_CONSUMERS = frozenset(f"builtins.{name}" for name in VALUE_CONSUMERS)


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

    def on_Call(self, node: ast.Call) -> None:
        walk = self.walk
        if not walk.in_async_body(node):
            return
        context = self._dropped_context(node)
        if context is None:
            return
        found = self.model.coroutines.callee(node)
        if found is None:
            return
        message = f"`{found.spelled}()` is not awaited: the coroutine is {context}"
        if walk.place(node).genexp:
            self.report(
                node, message + " (no fix inside a generator expression)", None, [found.evidence]
            )
            return
        safety = Safety.UNSAFE if context == "returned" else Safety.SAFE
        changes = [f"Inserted `await` before `{self.model.source.segment(node.func)}(...)`"]

        def build(call: cst.CSTNode, locate: Locate) -> Fix:
            assert isinstance(call, cst.Call)
            awaited = await_expression(call, call, locate.parent(call))
            return Fix(safety=safety, changes=changes, replace={call: awaited})

        pending = PendingFix(node, cst.Call, build)
        self.report(node, message, (safety, changes, pending), [found.evidence])

    # -- is the coroutine used wrongly? ------------------------------------------------

    def _dropped_context(self, node: ast.expr) -> str | None:
        """How the coroutine is misused here, or None when this use may be legitimate."""
        parent = self.walk.parent(node)
        if isinstance(parent, ast.Expr):
            return "dropped"
        if isinstance(parent, (ast.If, ast.While, ast.IfExp)) and parent.test is node:
            return "used as a condition (always true)"
        if isinstance(parent, ast.comprehension) and any(test is node for test in parent.ifs):
            return "used as a condition (always true)"
        if isinstance(parent, ast.UnaryOp):
            return (
                "negated (always false)" if isinstance(parent.op, ast.Not) else "used as a number"
            )
        if isinstance(parent, ast.BoolOp):
            if parent.values[-1] is not node:
                return "used as a truth value (always true)"
            # the last operand is the result: misused only where the whole is misused
            return self._dropped_context(parent)
        if isinstance(parent, ast.Compare) and not self._awaited(parent):
            return "compared"
        if isinstance(parent, ast.BinOp) and not self._awaited(parent):
            return "used in arithmetic"
        if isinstance(parent, ast.Attribute) and parent.value is node:
            return "used as an object (attribute access)"
        if isinstance(parent, ast.Subscript) and parent.value is node:
            return "subscripted"
        call = parent
        if isinstance(parent, (ast.keyword, ast.Starred)):
            call = self.walk.parent(parent)
            if isinstance(parent, ast.Starred) and not (
                isinstance(call, ast.Call) and any(arg is parent for arg in call.args)
            ):
                return None
        if isinstance(call, ast.Call) and call.func is not node:
            if self.model.scopes.qualified_name(call.func) in _CONSUMERS:
                return f"passed to `{self.model.source.segment(call.func)}()` as a value"
            return None
        if isinstance(parent, ast.FormattedValue) and parent.value is node:
            return "formatted into a string"
        if isinstance(parent, ast.Return):
            return "returned"
        return None

    def _awaited(self, node: ast.AST) -> bool:
        return isinstance(self.walk.parent(node), ast.Await)
