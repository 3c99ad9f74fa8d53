"""AF103 async-override-mismatch: a method overridden with the other kind of function
(``async def`` for a sync method, or the reverse), where a caller the override inherits
calls it the old way."""

from __future__ import annotations

import ast
from collections.abc import Callable

from asyncfix.analysis.catalogue import SYNC_CALLBACKS
from asyncfix.analysis.classes import is_coroutine_function
from asyncfix.analysis.source import shown
from asyncfix.codemods.base import Rule
from asyncfix.index import ClassFact, FunctionFact, ast_dotted_name
from asyncfix.model import Safety, Severity

#: decorators that leave a sync method a plain method
_PLAIN = frozenset({"abc.abstractmethod", "abstractmethod", "typing.override", "override"})
#: how many callers a message names
_SHOWN = 3


class AsyncOverrideMismatch(Rule):
    code = "AF103"
    name = "async-override-mismatch"
    summary = "a method overridden with `async def` where callers call it sync, or the reverse"
    why = (
        "A base class's code calls its own methods the way the base defines them. Override a "
        "sync method with an `async def` and every inherited call of it -- "
        "`self.update()` in the base's `refresh()`, asyncio calling a protocol's "
        "`data_received()`, a thread's `run()` -- only makes a coroutine and drops it: the "
        "override's body never runs, and nothing fails. Override a coroutine method with a "
        "sync `def` and the base's `await self.close()` raises TypeError, since None is not "
        "awaitable. Type checkers flag the signature; they do not say which calls break."
    )
    example_before = """\
class Device:
    def update(self) -> None:
        ...

    def refresh(self) -> None:
        self.update()


class Light(Device):
    async def update(self) -> None:
        ...
"""
    example_after = """\
class Device:
    def update(self) -> None:
        ...

    def refresh(self) -> None:
        self.update()


class Light(Device):
    def update(self) -> None:
        ...  # or make the base's callers async and await it
"""
    fix_safety = Safety.NONE
    fix_safety_note = (
        "Report only: the fix is a design decision -- make the override match the base, or "
        "make the base (and its callers) async. Reported only with a caller that breaks: a "
        "method of the class or of a project base, not overridden on the way, that calls "
        "`self.<name>()` as a statement (for an `async def` override of an undecorated sync "
        "method that returns None) or awaits it (for an undecorated sync override returning "
        "None of a coroutine method); or a "
        "library base that calls the method itself (asyncio protocols, `logging.Handler`, "
        "`threading.Thread.run`, `unittest.TestCase.setUp`: `data/sync_callbacks.toml`). "
        "Call sites in other modules, on a receiver typed with the base, are not searched."
    )
    severity = Severity.HIGH
    kind = "Coroutine never awaited"
    needles = ("class",)
    needs_index = True

    def on_ClassDef(self, node: ast.ClassDef) -> None:
        project = self.context.project
        cls = (
            project.index.class_(f"{project.module.name}.{node.name}")
            if project is not None and self.walk.place(node).kind == "module"
            else None
        )
        library = self._library_callbacks(node)
        if cls is None and not library:
            return
        for statement in node.body:
            if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if cls is not None and statement.name in cls.ambiguous:
                continue
            if isinstance(statement, ast.AsyncFunctionDef) and is_coroutine_function(statement):
                if statement.name in library:
                    self._library(node, statement, library[statement.name])
                elif cls is not None:
                    self._async_over_sync(cls, statement)
            elif isinstance(statement, ast.FunctionDef) and cls is not None:
                self._sync_over_async(cls, statement)

    def _library_callbacks(self, node: ast.ClassDef) -> dict[str, str]:
        """Method name -> the library base that calls it synchronously."""
        found: dict[str, str] = {}
        for base in node.bases:
            qualified = self.model.scopes.qualified_name(base)
            for method in SYNC_CALLBACKS.get(qualified or "", ()):
                found.setdefault(method, qualified or "")
        return found

    def _library(self, node: ast.ClassDef, method: ast.AsyncFunctionDef, base: str) -> None:
        library = base.split(".", 1)[0]
        message = (
            f"`{node.name}.{method.name}` is an `async def`, but `{base}` calls "
            f"`{method.name}()` without awaiting it: {library} drops the coroutine and the "
            "body never runs"
        )
        hint = "make it a sync method (schedule async work from it with `asyncio.create_task`)"
        evidence = [f"`{base}.{method.name}` is called synchronously by {library}"]
        self.report(method, f"{message}; {hint}", None, evidence)

    def _async_over_sync(self, cls: ClassFact, method: ast.AsyncFunctionDef) -> None:
        project = self.context.project
        assert project is not None
        base = project.index.inherited(cls, method.name)
        if not isinstance(base, FunctionFact) or base.hands_out != ("None",):
            return  # not a plain sync `def` that returns None (an `async def` with a
            # decorator asyncfix does not know, one that returns an awaitable, ...)
        callers = self._callers(cls, method.name, lambda f: f.drops_on_self)
        self._report(
            cls,
            method,
            base,
            callers,
            ("an `async def`", "the sync"),
            ("calls", "call", " without awaiting it: there the coroutine is dropped"),
        )

    def _sync_over_async(self, cls: ClassFact, method: ast.FunctionDef) -> None:
        if any(ast_dotted_name(d) not in _PLAIN for d in method.decorator_list):
            return
        own = cls.methods.get(method.name)
        if own is None or own.hands_out != ("None",):
            return  # it may return an awaitable
        project = self.context.project
        assert project is not None
        base = project.index.inherited(cls, method.name)
        if not isinstance(base, FunctionFact) or not base.is_coroutine:
            return
        callers = self._callers(cls, method.name, lambda f: f.awaits_on_self)
        self._report(
            cls,
            method,
            base,
            callers,
            ("a sync `def`", "the coroutine method"),
            ("awaits", "await", ": that raises TypeError (None is not awaitable)"),
        )

    def _report(
        self,
        cls: ClassFact,
        method: ast.FunctionDef | ast.AsyncFunctionDef,
        base: FunctionFact,
        callers: list[FunctionFact],
        kinds: tuple[str, str],
        calling: tuple[str, str, str],
    ) -> None:
        """The override's finding, naming the inherited callers that break (none: nothing
        to report). ``kinds``: what the override and the base are; ``calling``: how the
        callers call it (one, several) and what follows."""
        if not callers:
            return
        own, based = kinds
        one, several, outcome = calling
        verb = one if len(callers) == 1 else several
        message = (
            f"`{cls.qualified.rsplit('.', 1)[-1]}.{method.name}` is {own} overriding {based} "
            f"`{_short(base)}` ({shown(base.path)}:{base.line}), and {_listed(callers)} {verb} "
            f"`self.{method.name}()`{outcome}"
        )
        self.report(method, message, None, [_where(caller) for caller in callers])

    def _callers(
        self, cls: ClassFact, name: str, calls: Callable[[FunctionFact], tuple[str, ...]]
    ) -> list[FunctionFact]:
        """The methods an instance of ``cls`` runs (its own, or inherited and not
        overridden on the way) that call ``self.<name>()`` the way ``calls`` says."""
        project = self.context.project
        assert project is not None
        index = project.index
        found: list[FunctionFact] = []
        for holder in index.ancestry(cls):
            for method_name, fact in holder.methods.items():
                if name not in calls(fact) or method_name == name:
                    continue
                if index.method(cls, method_name) is fact:
                    found.append(fact)
        return found


def _short(method: FunctionFact) -> str:
    """``Device.update`` for ``pkg.devices.Device.update``."""
    return ".".join(method.qualified.rsplit(".", 2)[-2:])


def _listed(callers: list[FunctionFact]) -> str:
    names = [f"`{_short(caller)}`" for caller in callers[:_SHOWN]]
    more = len(callers) - _SHOWN
    if more > 0:
        names.append(f"{more} more")
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


def _where(caller: FunctionFact) -> str:
    return f"`{caller.qualified}` ({shown(caller.path)}:{caller.line})"
