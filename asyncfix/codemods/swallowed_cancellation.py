"""AF305 swallowed-cancellation: an ``except`` in a coroutine that catches ``CancelledError``
(by name, as ``BaseException`` or with a bare ``except:``) and does not raise it again."""

from __future__ import annotations

import ast

import libcst as cst

from asyncfix.codemods.base import Fix, ImportItem, Project, Rule, source_of
from asyncfix.codemods.names import dotted_name
from asyncfix.codemods.prefilters import may_swallow_cancellation
from asyncfix.codemods.races import in_order, suspensions
from asyncfix.model import Safety, Severity

CANCELLED = frozenset({"asyncio.CancelledError", "asyncio.exceptions.CancelledError"})


class SwallowedCancellation(Rule):
    code = "AF305"
    name = "swallowed-cancellation"
    summary = "an `except` in a coroutine catches `CancelledError` and does not re-raise it"
    why = (
        "`task.cancel()` works by raising `CancelledError` inside the task at its `await`. "
        "A handler that catches it (`except asyncio.CancelledError`, `except BaseException`, a "
        "bare `except:`) and carries on, returns or raises something else makes the task "
        "ignore the cancellation: shutdown hangs waiting for it, `asyncio.timeout()` and "
        "`TaskGroup` stop working around it, and the caller never learns it was cancelled."
    )
    example_before = """\
import asyncio


async def pump(queue, sink):
    while True:
        try:
            item = await queue.get()
            await sink.send(item)
        except:
            sink.log_failure()
"""
    example_after = """\
import asyncio


async def pump(queue, sink):
    while True:
        try:
            item = await queue.get()
            await sink.send(item)
        except Exception:
            sink.log_failure()
"""
    fix_safety = Safety.UNSAFE
    fix_safety_note = (
        "Unsafe: cancellation now propagates out of the handler, which is what `cancel()` "
        "asks for, but code after the handler no longer runs when the task is cancelled. A "
        "bare `except:` becomes `except Exception:`; `except asyncio.CancelledError:` gets a "
        "final `raise`; `CancelledError` is dropped from a tuple of exceptions; `except "
        "BaseException:` gets an `except asyncio.CancelledError: raise` handler before it, so "
        "its other errors are handled as before. No fix when the handler ends in `return`, "
        "`break`, `continue` or another `raise` (it turns the cancellation into something else: "
        "decide what it should do). Not reported: handlers that re-raise, try bodies that "
        "never suspend (cancellation arrives at an `await`), and a task awaited right after "
        "the same function cancelled it."
    )
    severity = Severity.HIGH
    kind = "Swallowed cancellation"
    needles = ("async", "except")

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        return may_swallow_cancellation(tree)

    def visit_Try(self, node: cst.Try) -> None:
        if not self.ctx.in_async_body():
            return
        if not any(
            isinstance(n, (cst.Await, cst.For, cst.With)) and _suspends(n)
            for n in in_order(node.body)
        ):
            return  # nothing in the try body suspends: no cancellation can arrive there
        for handler in node.handlers:
            caught = self._catches(handler.type)
            if caught is not None:
                # the first handler that can catch cancellation is the only one that sees it
                self._handler(node, handler, caught)
                return

    def _handler(self, node: cst.Try, handler: cst.ExceptHandler, caught: str) -> None:
        if _reraises(handler) or self._raises_cancelled(handler):
            return
        if caught == "CancelledError" and self._cancels_own_task(node, handler):
            return
        spelled = "except:" if handler.type is None else f"except {source_of(handler.type)}:"
        ending = _ending(handler)
        message = (
            f"`{spelled}` in a coroutine catches `CancelledError` and "
            + (f"turns it into `{ending}`" if ending else "does not re-raise it")
            + ": the task cannot be cancelled"
        )
        if ending:
            self.report(handler, f"{message} (no fix: decide what cancellation should do)")
            return
        self.report(handler, message, self._fix(handler, caught))

    def _catches(self, expr: cst.BaseExpression | None) -> str | None:
        """What catches cancellation: "bare", "BaseException", "CancelledError", "tuple"."""
        if expr is None:
            return "bare"
        names = expr.elements if isinstance(expr, cst.Tuple) else None
        parts = [e.value for e in names] if names is not None else [expr]
        kinds = []
        for part in parts:
            qualified = self.ctx.qualified_name(part)
            if qualified == "builtins.BaseException":
                kinds.append("BaseException")
            elif qualified in CANCELLED:
                kinds.append("CancelledError")
        if not kinds:
            return None
        return kinds[0] if names is None else "tuple"

    def _raises_cancelled(self, handler: cst.ExceptHandler) -> bool:
        """``raise asyncio.CancelledError("...") from None``: still a cancellation."""
        for node in in_order(handler.body):
            if isinstance(node, cst.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, cst.Call) else node.exc
                if self.ctx.qualified_name(exc) in CANCELLED:
                    return True
        return False

    def _cancels_own_task(self, node: cst.Try, handler: cst.ExceptHandler) -> bool:
        """``task.cancel()`` earlier in the function, then ``try: await task``: waiting for
        the task to finish cancelling, where catching its CancelledError is the point."""
        function = self.ctx.enclosing_function()
        if function is None:
            return False
        awaited = {
            dotted_name(a.expression)
            for a in suspensions(node.body)
            if isinstance(a, cst.Await) and dotted_name(a.expression) is not None
        }
        for call in in_order(function.body):
            if call is handler:  # `task.cancel()` before the try or in its body
                return False
            if (
                isinstance(call, cst.Call)
                and isinstance(call.func, cst.Attribute)
                and call.func.attr.value == "cancel"
                and dotted_name(call.func.value) in awaited
            ):
                return True
        return False

    def _fix(self, handler: cst.ExceptHandler, caught: str) -> Fix | None:
        asyncio_name = self.ctx.module_name_for("asyncio")
        add = [] if asyncio_name else [ImportItem("asyncio")]
        if caught == "bare":
            new = handler.with_changes(
                type=cst.Name("Exception"), whitespace_after_except=cst.SimpleWhitespace(" ")
            )
            return Fix(
                Safety.UNSAFE, ["Replaced `except:` with `except Exception:`"], {handler: new}
            )
        if caught == "CancelledError":
            body = handler.body
            if not isinstance(body, cst.IndentedBlock):
                return None
            raise_line = cst.SimpleStatementLine([cst.Raise()])
            new = handler.with_changes(body=body.with_changes(body=[*body.body, raise_line]))
            return Fix(Safety.UNSAFE, ["Added `raise` at the end of the handler"], {handler: new})
        if caught == "tuple" and isinstance(handler.type, cst.Tuple):
            kept = [
                element
                for element in handler.type.elements
                if self.ctx.qualified_name(element.value) not in CANCELLED
            ]
            if kept and all(
                self.ctx.qualified_name(e.value) != "builtins.BaseException" for e in kept
            ):
                # `except (asyncio.CancelledError, TimeoutError):` -> `except TimeoutError:`
                new_type: cst.BaseExpression = (
                    kept[0].value
                    if len(kept) == 1
                    else handler.type.with_changes(
                        elements=[
                            *kept[:-1],
                            kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT),
                        ]
                    )
                )
                return Fix(
                    Safety.UNSAFE,
                    ["Removed `CancelledError` from the caught exceptions"],
                    {handler: handler.with_changes(type=new_type)},
                )
        # BaseException (alone or in a tuple): let cancellation through first
        cancelled = cst.Attribute(
            value=cst.Name(asyncio_name or "asyncio"), attr=cst.Name("CancelledError")
        )
        first = cst.ExceptHandler(
            body=cst.IndentedBlock(body=[cst.SimpleStatementLine([cst.Raise()])]),
            type=cancelled,
            leading_lines=handler.leading_lines,
        )
        return Fix(
            Safety.UNSAFE,
            ["Added `except asyncio.CancelledError: raise` before the handler"],
            {handler: cst.FlattenSentinel([first, handler.with_changes(leading_lines=[])])},
            add_imports=add,
        )


def _suspends(node: cst.CSTNode) -> bool:
    if isinstance(node, cst.Await):
        return True
    return isinstance(node, (cst.For, cst.With)) and node.asynchronous is not None


def _reraises(handler: cst.ExceptHandler) -> bool:
    """A bare ``raise`` (or ``raise <the caught name>``) anywhere in the handler."""
    name = (
        handler.name.name.value
        if handler.name and isinstance(handler.name.name, cst.Name)
        else None
    )
    for node in in_order(handler.body):
        if isinstance(node, cst.Raise):
            if node.exc is None:
                return True
            if name is not None and isinstance(node.exc, cst.Name) and node.exc.value == name:
                return True
    return False


def _ending(handler: cst.ExceptHandler) -> str | None:
    """``return``/``break``/``continue``/``raise X`` when the handler's last statement is one."""
    body = handler.body
    statements = body.body if isinstance(body, cst.IndentedBlock) else [body]
    last = statements[-1] if statements else None
    if isinstance(last, cst.SimpleStatementLine | cst.SimpleStatementSuite) and last.body:
        small = last.body[-1]
        if isinstance(small, cst.Return):
            return "return"
        if isinstance(small, cst.Break):
            return "break"
        if isinstance(small, cst.Continue):
            return "continue"
        if isinstance(small, cst.Raise):
            return f"raise {source_of(small.exc)}" if small.exc is not None else None
    return None
