"""AF305 swallowed-cancellation: an ``except`` in a coroutine that catches ``CancelledError``
(by name, as ``BaseException`` or with a bare ``except:``) and does not raise it again."""

from __future__ import annotations

import ast
from collections.abc import Callable

from asyncfix.analysis.model import identifiers, in_order
from asyncfix.codemods.base import Fix, ImportItem, Locate, PendingFix, Rule, fresh_name
from asyncfix.index import ast_dotted_name
from asyncfix.lazy import libcst as cst
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

    def on_Try(self, node: ast.Try) -> None:
        if not self.walk.in_async_body(node) or self._trio_code():
            return
        if not any(_suspends(n) for n in in_order(node.body)):
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

    def _handler(self, node: ast.Try, handler: ast.ExceptHandler, caught: str) -> None:
        if _reraises(handler) or self._raises_cancelled(handler):
            return
        by_name = caught in ("CancelledError", "named tuple")
        test_code = self.context.test_code
        if by_name and (test_code or self._cancels_own_task(node, handler)):
            return  # a test of what cancellation does, or waiting for a task it cancelled
        if self._hands_on(handler):
            return  # the waiting side (a future, a queue, a callback) raises it there
        spelled = self._spelled(handler)
        ending = self._ending(handler)
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
        self.report(handler, message, self._fix(handler))

    def _no_fix_reason(
        self,
        handler: ast.ExceptHandler,
        caught: str,
        by_name: bool,
        ending: str | None,
        goes_on: str | None,
    ) -> str | None:
        if self.context.test_code:
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
        if caught == "tuple" or _one_line(self.model.source.lines, handler):
            return "decide what cancellation should do"
        if not _trivial(handler) and any(
            isinstance(n, (ast.Return, ast.Break, ast.Continue)) or _suspends(n)
            for n in in_order(handler.body)
        ):
            return "the handler awaits or leaves early; decide what it should do when cancelled"
        return None

    def _trio_code(self) -> bool:
        imported = self.model.imported_packages
        return "trio" in imported and not imported & {"asyncio", "anyio"}

    def _goes_on(self, node: ast.Try) -> str | None:
        """What runs after the handler: "loop" (the try is in a loop that comes round again),
        "later" (code after it suspends), None (it ends without suspending again: it
        returns)."""
        function = self.walk.place(node).function
        parents = self.model.scopes.parents
        child: ast.AST = node
        later = False
        while True:
            parent = parents.get(id(child))
            if parent is None:
                break
            if isinstance(parent, (ast.For, ast.AsyncFor, ast.While)) and child in parent.body:
                return "loop"
            for field in ("body", "orelse", "finalbody"):
                siblings = getattr(parent, field, None)
                if isinstance(siblings, list) and child in siblings:
                    after = siblings[siblings.index(child) + 1 :]
                    later = later or any(_suspends_anywhere(s) for s in after)
            if isinstance(parent, ast.Try) and child in parent.body and parent.orelse:
                later = later or any(_suspends_anywhere(s) for s in parent.orelse)
            if parent is function:
                break
            child = parent
        return "later" if later else None

    def _catches(self, expr: ast.expr | None) -> str | None:
        """How an ``except`` clause can catch CancelledError: None (it cannot), "bare",
        "BaseException", "CancelledError", "tuple" (a tuple with BaseException), "named
        tuple" (one with CancelledError)."""
        if expr is None:
            return "bare"
        names = expr.elts if isinstance(expr, ast.Tuple) else None
        parts = names if names is not None else [expr]
        kinds = []
        for part in parts:
            qualified = self.model.scopes.qualified_name(part)
            if qualified == "builtins.BaseException":
                kinds.append("BaseException")
            elif qualified in CANCELLED:
                kinds.append("CancelledError")
        if not kinds:
            return None
        if names is None:
            return kinds[0]
        return "tuple" if "BaseException" in kinds else "named tuple"

    def _raises_cancelled(self, handler: ast.ExceptHandler) -> bool:
        for node in in_order(handler.body):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if self.model.scopes.qualified_name(exc) in CANCELLED:
                    return True
        return False

    def _cancels_own_task(self, node: ast.Try, handler: ast.ExceptHandler) -> bool:
        """``task.cancel()`` then ``await task`` in the try: the usual way to wait for the
        task to finish cancelling, where catching its CancelledError is the point."""
        function = self.walk.place(node).function
        if function is None:
            return False
        awaited = {
            ast_dotted_name(a.value)
            for a in in_order(node.body)
            if isinstance(a, ast.Await) and ast_dotted_name(a.value) is not None
        }
        for call in in_order(function.body):
            if call is handler:  # `task.cancel()` before the try or in its body
                return False
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "cancel"
                and ast_dotted_name(call.func.value) in awaited
            ):
                return True
        return False

    def _hands_on(self, handler: ast.ExceptHandler) -> bool:
        """The caught exception is handed on to whoever waits for the outcome: its name is
        used in the handler other than in a logging call or a ``raise``
        (``future.set_exception(exc)``, ``queue.put_nowait(exc)``, ``callback(exc)``,
        ``self._error = exc``, ``isinstance(exc, ...)``). The waiting side raises it there:
        the cancellation is not lost."""
        name = handler.name
        if name is None:
            return False
        parents = self.model.scopes.parents
        for node in in_order(handler.body):
            if not (isinstance(node, ast.Name) and node.id == name):
                continue
            up = parents.get(id(node))
            reported = False
            while up is not None and up is not handler:
                if _logging_call(up) or isinstance(up, ast.Raise):
                    reported = True
                    break
                up = parents.get(id(up))
            if not reported:
                return True
        return False

    def _spelled(self, handler: ast.ExceptHandler) -> str:
        if handler.type is None:
            return "except:"
        return f"except {self.model.source.segment(handler.type)}:"

    def _ending(self, handler: ast.ExceptHandler) -> str | None:
        """``return``/``break``/``continue``/``raise X`` when the handler's last statement is
        one."""
        last = handler.body[-1] if handler.body else None
        if isinstance(last, ast.Return):
            return "return"
        if isinstance(last, ast.Break):
            return "break"
        if isinstance(last, ast.Continue):
            return "continue"
        if isinstance(last, ast.Raise):
            return f"raise {self.model.source.segment(last.exc)}" if last.exc is not None else None
        return None

    def _fix(self, handler: ast.ExceptHandler) -> tuple[Safety, list[str], PendingFix]:
        """The handler that only logs stops catching cancellation; one that does more
        re-raises it at its end."""
        if _trivial(handler):
            changes = [
                f"Replaced `{self._spelled(handler)}` with `except Exception:` (the handler only "
                "logs): cancellation is no longer caught"
            ]
            return Safety.UNSAFE, changes, PendingFix(handler, cst.ExceptHandler, _narrow(changes))
        asyncio_name = self.model.module_name_for("asyncio")
        changes = []
        name = handler.name
        if name is None:
            function = self.walk.place(handler).function
            taken = set(identifiers(function)) if function is not None else set()
            name = fresh_name("exc", taken)
            changes.append(f"Named the caught exception `{name}`")
        changes.append(
            f"Added `if isinstance({name}, asyncio.CancelledError): raise` at the end of the "
            "handler: it still runs, then cancellation goes on"
        )
        build = _reraise(changes, name, handler.name is None, asyncio_name)
        return Safety.UNSAFE, changes, PendingFix(handler, cst.ExceptHandler, build)


def _narrow(changes: list[str]) -> Callable[[cst.CSTNode, Locate], Fix]:
    def build(handler: cst.CSTNode, locate: Locate) -> Fix:
        assert isinstance(handler, cst.ExceptHandler)
        new = handler.with_changes(
            type=cst.Name("Exception"), whitespace_after_except=cst.SimpleWhitespace(" ")
        )
        return Fix(Safety.UNSAFE, changes, {handler: new})

    return build


def _reraise(
    changes: list[str], name: str, unnamed: bool, asyncio_name: str | None
) -> Callable[[cst.CSTNode, Locate], Fix]:
    def build(handler: cst.CSTNode, locate: Locate) -> Fix:
        assert isinstance(handler, cst.ExceptHandler)
        body = handler.body
        assert isinstance(body, cst.IndentedBlock)
        new = handler
        if unnamed:
            new = handler.with_changes(
                type=handler.type or cst.Name("BaseException"),
                whitespace_after_except=cst.SimpleWhitespace(" "),
                name=cst.AsName(name=cst.Name(name)),
            )
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
        add = [] if asyncio_name else [ImportItem("asyncio")]
        return Fix(Safety.UNSAFE, changes, {handler: new}, add_imports=add)

    return build


def _one_line(lines: list[str], handler: ast.ExceptHandler) -> bool:
    """``except X: body`` on one line (no indented block to add to)."""
    return bool(handler.body) and handler.body[0].lineno == handler.lineno


def _suspends(node: ast.AST) -> bool:
    return isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith))


def _computed(caught: ast.expr | None) -> bool:
    """An ``except`` whose class is computed (``get_cancelled_exc_class()``, a subscript):
    what it catches is not known."""
    if caught is None:
        return False
    parts = caught.elts if isinstance(caught, ast.Tuple) else [caught]
    return any(not isinstance(part, (ast.Name, ast.Attribute)) for part in parts)


def _suspends_anywhere(node: ast.AST) -> bool:
    """An ``await``, ``async for``/``async with`` or ``yield`` in ``node`` (not in nested
    functions)."""
    return any(_suspends(n) or isinstance(n, (ast.Yield, ast.YieldFrom)) for n in in_order(node))


#: method names of a logger (``_LOGGER.exception``, ``self.logger.warning``, ``logging.info``)
LOGGING = frozenset(
    {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "log"}
)


def _logging_call(node: ast.AST) -> bool:
    """``logger.error(...)``, ``print(...)``, ``traceback.print_exc()``: it only reports."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr in LOGGING or func.attr.startswith("print_")
    return isinstance(func, ast.Name) and func.id == "print"


def _trivial(handler: ast.ExceptHandler) -> bool:
    """A handler body of ``pass``, ``...``, strings and logging calls only."""
    for statement in handler.body:
        if isinstance(statement, ast.Pass):
            continue
        if isinstance(statement, ast.Expr):
            value = statement.value
            if isinstance(value, ast.Constant) and (
                value.value is Ellipsis or isinstance(value.value, (str, bytes))
            ):
                continue
            if _logging_call(value):
                continue
        return False
    return True


def _reraises(handler: ast.ExceptHandler) -> bool:
    """A bare ``raise`` (or ``raise <the caught name>``) anywhere in the handler."""
    for node in in_order(handler.body):
        if isinstance(node, ast.Raise):
            if node.exc is None:
                return True
            if isinstance(node.exc, ast.Name) and node.exc.id == handler.name:
                return True
    return False
