"""AF305 swallowed-cancellation: an ``except`` in a coroutine that catches ``CancelledError``
(by name, as ``BaseException`` or with a bare ``except:``) and does not raise it again."""

from __future__ import annotations

import ast

import libcst as cst

from asyncfix.codemods.base import Fix, ImportItem, Project, Rule, fresh_name, source_of
from asyncfix.codemods.names import dotted_name
from asyncfix.codemods.prefilters import may_swallow_cancellation
from asyncfix.codemods.races import in_order, parent_map, suspensions
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
import logging

_LOGGER = logging.getLogger(__name__)


async def pump(queue, sink):
    while True:
        try:
            item = await queue.get()
            await sink.send(item)
        except:
            _LOGGER.exception("send failed")
"""
    example_after = """\
import asyncio
import logging

_LOGGER = logging.getLogger(__name__)


async def pump(queue, sink):
    while True:
        try:
            item = await queue.get()
            await sink.send(item)
        except Exception:
            _LOGGER.exception("send failed")
"""
    fix_safety = Safety.UNSAFE
    fix_safety_note = (
        "Unsafe, and offered only where the coroutine goes on after swallowing the "
        "cancellation (a loop that continues, or more `await`s after the handler): a "
        "catch-all handler that only logs or passes becomes `except Exception:`; one that "
        "does more keeps doing it and then re-raises cancellation at its end (`if "
        "isinstance(exc, asyncio.CancelledError): raise`), so its cleanup still runs. Report "
        "only: a handler that names `CancelledError` (a decision someone made), one that ends "
        "the coroutine right away (it returns normally: only whoever cancelled it is not "
        "told), one that awaits or ends in `return`/`break`/`continue`/another exception, "
        "and every handler in tests and docs. Not reported: handlers that re-raise, that hand the "
        "exception on (`future.set_exception(exc)`, a queue, a callback, an attribute), try "
        "bodies that never suspend (cancellation arrives at an `await`), a task awaited "
        "right after the same function cancelled it, `CancelledError` caught by name in tests "
        "and docs (they check or show what cancellation does), and trio code."
    )
    severity = Severity.HIGH
    kind = "Swallowed cancellation"
    needles = ("async", "except")

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        return may_swallow_cancellation(tree)

    def visit_Try(self, node: cst.Try) -> None:
        if not self.ctx.in_async_body() or self._trio_code():
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
            if _computed(handler.type):
                # `except (Broken, get_cancelled_exc_class()): raise`: it may catch
                # cancellation (anyio's class for it), so a later handler may never see it
                return

    def _handler(self, node: cst.Try, handler: cst.ExceptHandler, caught: str) -> None:
        if _reraises(handler) or self._raises_cancelled(handler):
            return
        by_name = caught in ("CancelledError", "named tuple")
        if by_name and (self.ctx.test_code or self._cancels_own_task(node, handler)):
            return  # a test of what cancellation does, or waiting for a task it cancelled
        if _hands_on(handler):
            return  # the waiting side (a future, a queue, a callback) raises it there
        spelled = "except:" if handler.type is None else f"except {source_of(handler.type)}:"
        ending = _ending(handler)
        goes_on = self._goes_on(node)
        head = f"`{spelled}` in a coroutine catches `CancelledError`"
        if ending == "continue" or (ending is None and goes_on == "loop"):
            message = f"{head} and the loop goes on: the task cannot be cancelled"
        elif ending == "return" or (ending is None and goes_on is None):
            message = (
                f"{head} and the coroutine returns normally: whoever cancelled it (`cancel()`, "
                "`asyncio.timeout()`, a `TaskGroup`) is not told"
            )
        elif ending == "break":
            message = f"{head} and turns it into `break`: whoever cancelled it is not told"
        elif ending is not None:
            message = f"{head} and turns it into `{ending}`: the caller sees an error instead"
        else:
            message = f"{head} and carries on: the task goes on running after it was cancelled"
        reason = self._no_fix_reason(handler, caught, by_name, ending, goes_on)
        if reason is not None:
            self.report(handler, f"{message} (no fix: {reason})")
            return
        self.report(handler, message, self._fix(handler, caught))

    def _no_fix_reason(
        self,
        handler: cst.ExceptHandler,
        caught: str,
        by_name: bool,
        ending: str | None,
        goes_on: str | None,
    ) -> str | None:
        if self.ctx.test_code:
            return "tests and docs: the swallow may be what they are about"
        if by_name:
            return (
                "`CancelledError` is caught by name, so this may be deliberate; end the handler "
                "with `raise` if it is not"
            )
        if ending is not None:
            return "decide what cancellation should do"
        if goes_on is None:
            return (
                "the coroutine ends right after it; re-raise if callers must see the cancellation"
            )
        if caught == "tuple" or not isinstance(handler.body, cst.IndentedBlock):
            return "decide what cancellation should do"
        if not _trivial(handler) and any(
            isinstance(n, (cst.Return, cst.Break, cst.Continue)) or _suspends(n)
            for n in in_order(handler.body)
        ):
            return "the handler awaits or leaves early; decide what it should do when cancelled"
        return None

    def _trio_code(self) -> bool:
        """A module that imports trio and not asyncio (nor anyio): trio cancels differently."""
        imported = self.ctx.imported_packages()
        return "trio" in imported and not imported & {"asyncio", "anyio"}

    def _goes_on(self, node: cst.Try) -> str | None:
        """What the coroutine does after the handler swallowed the cancellation: "loop" (the
        try is in a loop that comes round again), "later" (code after it suspends), None (it
        ends without suspending again: it returns)."""
        function = self.ctx.enclosing_function()
        path = self.ctx.path
        at = len(path) - 1
        assert path[at] is node
        later = False
        while at > 0:
            child, parent = path[at], path[at - 1]
            if parent is function:
                break
            if isinstance(parent, (cst.For, cst.While)) and child is parent.body:
                return "loop"
            if isinstance(parent, (cst.IndentedBlock, cst.SimpleStatementSuite)):
                siblings = list(parent.body)
                if child in siblings:
                    after = siblings[siblings.index(child) + 1 :]
                    later = later or any(_suspends_anywhere(s) for s in after)
            if isinstance(parent, cst.Try) and child is parent.body and parent.orelse:
                later = later or _suspends_anywhere(parent.orelse)
            at -= 1
        return "later" if later else None

    def _catches(self, expr: cst.BaseExpression | None) -> str | None:
        """What catches cancellation: "bare", "BaseException", "CancelledError", "tuple" (one
        with BaseException), "named tuple" (one with CancelledError)."""
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
        if names is None:
            return kinds[0]
        return "tuple" if "BaseException" in kinds else "named tuple"

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
        """A catch-all handler in a coroutine that goes on: one that only logs or passes
        stops catching cancellation; one that does more re-raises it at its end."""
        body = handler.body
        assert isinstance(body, cst.IndentedBlock)
        exception = cst.Name("Exception")
        if _trivial(handler):
            new = handler.with_changes(
                type=exception, whitespace_after_except=cst.SimpleWhitespace(" ")
            )
            return Fix(
                Safety.UNSAFE,
                [
                    f"Replaced `{_spelled(handler)}` with `except Exception:` (the handler only "
                    "logs): cancellation is no longer caught"
                ],
                {handler: new},
            )
        asyncio_name = self.ctx.module_name_for("asyncio")
        add = [] if asyncio_name else [ImportItem("asyncio")]
        changes = []
        if handler.name is not None and isinstance(handler.name.name, cst.Name):
            name = handler.name.name.value
            new = handler
        else:
            function = self.ctx.enclosing_function()
            taken = set(self.ctx.names.occurrences(function)) if function is not None else set()
            name = fresh_name("exc", taken)
            new = handler.with_changes(
                type=handler.type or cst.Name("BaseException"),
                whitespace_after_except=cst.SimpleWhitespace(" "),
                name=cst.AsName(name=cst.Name(name)),
            )
            changes.append(f"Named the caught exception `{name}`")
        test = cst.Call(
            func=cst.Name("isinstance"),
            args=[
                cst.Arg(
                    cst.Name(name), comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
                ),
                cst.Arg(
                    cst.Attribute(
                        value=cst.Name(asyncio_name or "asyncio"), attr=cst.Name("CancelledError")
                    )
                ),
            ],
        )
        reraise = cst.If(
            test=test, body=cst.IndentedBlock(body=[cst.SimpleStatementLine([cst.Raise()])])
        )
        new = new.with_changes(body=body.with_changes(body=[*body.body, reraise]))
        changes.append(
            f"Added `if isinstance({name}, asyncio.CancelledError): raise` at the end of the "
            "handler: it still runs, then cancellation goes on"
        )
        return Fix(Safety.UNSAFE, changes, {handler: new}, add_imports=add)


def _suspends(node: cst.CSTNode) -> bool:
    if isinstance(node, cst.Await):
        return True
    return isinstance(node, (cst.For, cst.With)) and node.asynchronous is not None


def _computed(caught: cst.BaseExpression | None) -> bool:
    """An ``except`` whose class is computed (``get_cancelled_exc_class()``, a subscript):
    what it catches is not known."""
    if caught is None:
        return False
    parts = [e.value for e in caught.elements] if isinstance(caught, cst.Tuple) else [caught]
    return any(not isinstance(part, (cst.Name, cst.Attribute)) for part in parts)


def _suspends_anywhere(node: cst.CSTNode) -> bool:
    """An ``await``, ``async for``/``async with`` or ``yield`` in ``node`` (not in nested
    functions)."""
    return any(_suspends(n) or isinstance(n, cst.Yield) for n in in_order(node))


def _spelled(handler: cst.ExceptHandler) -> str:
    return "except:" if handler.type is None else f"except {source_of(handler.type)}:"


#: method names of a logger (``_LOGGER.exception``, ``self.logger.warning``, ``logging.info``)
LOGGING = frozenset(
    {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log"}
)


def _logging_call(node: cst.CSTNode) -> bool:
    """``logger.error(...)``, ``print(...)``, ``traceback.print_exc()``: it only reports."""
    if not isinstance(node, cst.Call):
        return False
    func = node.func
    if isinstance(func, cst.Attribute):
        return func.attr.value in LOGGING or func.attr.value.startswith("print_")
    return isinstance(func, cst.Name) and func.value == "print"


def _trivial(handler: cst.ExceptHandler) -> bool:
    """A handler body of ``pass``, ``...``, strings and logging calls only."""
    body = handler.body
    statements = body.body if isinstance(body, cst.IndentedBlock) else [body]
    for statement in statements:
        if not isinstance(statement, cst.SimpleStatementLine | cst.SimpleStatementSuite):
            return False
        for small in statement.body:
            if isinstance(small, cst.Pass):
                continue
            if isinstance(small, cst.Expr) and (
                isinstance(small.value, (cst.Ellipsis, cst.SimpleString, cst.ConcatenatedString))
                or _logging_call(small.value)
            ):
                continue
            return False
    return True


def _hands_on(handler: cst.ExceptHandler) -> bool:
    """The caught exception is handed on to whoever waits for the outcome: its name is used
    in the handler other than in a logging call or a ``raise`` (``future.set_exception(exc)``,
    ``queue.put_nowait(exc)``, ``callback(exc)``, ``self._error = exc``, ``isinstance(exc,
    ...)``). The waiting side raises it there: the cancellation is not lost."""
    if handler.name is None or not isinstance(handler.name.name, cst.Name):
        return False
    name = handler.name.name.value
    parents = parent_map(handler.body)
    for node in in_order(handler.body):
        if not (isinstance(node, cst.Name) and node.value == name):
            continue
        up: cst.CSTNode | None = parents.get(id(node))
        reported = False
        while up is not None and up is not handler.body:
            if _logging_call(up) or isinstance(up, cst.Raise):
                reported = True
                break
            up = parents.get(id(up))
        if not reported:
            return True
    return False


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
