"""AF404 sync-with-on-async-lock: ``with`` on an asyncio lock raises; it needs ``async with``."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

from asyncfix.codemods.base import Fix, Locate, ModelContext, PendingFix, Rule
from asyncfix.index import ast_dotted_name
from asyncfix.lazy import libcst as cst
from asyncfix.model import Safety, Severity

ASYNC_PRIMITIVES = frozenset(
    {"asyncio.Lock", "asyncio.Semaphore", "asyncio.BoundedSemaphore", "asyncio.Condition"}
)


@dataclass
class _Candidate:
    node: ast.With
    #: how each item's lock is spelled ("self._lock", "LOCK", "lock"); None: not a lock reference
    locks: list[str | None]
    awaited: list[bool]
    cls: ast.ClassDef | None
    function: ast.FunctionDef | ast.AsyncFunctionDef | None
    in_async: bool


class SyncWithOnAsyncLock(Rule):
    code = "AF404"
    name = "sync-with-on-async-lock"
    summary = "`with` on an `asyncio.Lock`/`Semaphore`/`Condition`; it needs `async with`"
    why = (
        "asyncio primitives are acquired with `async with`: acquiring may have to wait, and "
        "only a coroutine can wait without blocking the loop. Since Python 3.9 a plain `with "
        "lock:` raises `TypeError` ('Lock' object does not support the context manager "
        "protocol) and the old `with (await lock):` spelling raises `TypeError` too (a Lock "
        "can't be used in an 'await' expression): the critical section never runs."
    )
    example_before = """\
import asyncio

class Counter:
    def __init__(self):
        self._lock = asyncio.Lock()
        self.value = 0

    async def bump(self):
        with self._lock:
            self.value += 1
"""
    example_after = """\
import asyncio

class Counter:
    def __init__(self):
        self._lock = asyncio.Lock()
        self.value = 0

    async def bump(self):
        async with self._lock:
            self.value += 1
"""
    fix_safety = Safety.SAFE
    fix_safety_note = (
        "Safe: `async with` is the only working way to hold these primitives. The fix is offered "
        "in async functions only, when every item of the `with` is a known asyncio primitive "
        "(constructed in the same function, class or module and never reassigned to anything "
        "else); in a sync function the finding is reported without a fix."
    )
    severity = Severity.HIGH
    kind = "Lock misuse"
    needles = ("with", ("Lock", "Semaphore", "Condition"))

    def __init__(self, ctx: ModelContext) -> None:
        super().__init__(ctx)
        self.candidates: list[_Candidate] = []
        #: (scope, spelled name) -> constructors assigned to it; scope is a class, function or
        #: None for the module
        self.assigned: dict[tuple[int, str], set[str]] = {}
        #: where each of those was first assigned, for the report
        self.sites: dict[tuple[int, str], ast.expr] = {}

    # -- what each name is assigned --------------------------------------------------

    def _record(self, statement: ast.stmt, target: ast.expr, value: ast.expr | None) -> None:
        spelled = ast_dotted_name(target)
        if spelled is None:
            return
        constructor = "?"
        if isinstance(value, ast.Call):
            constructor = self.model.scopes.qualified_name(value.func) or "?"
        walk = self.walk
        scope_node: ast.AST | None
        if spelled.startswith(("self.", "cls.")):
            scope_node = walk.enclosing_class(statement)
            if scope_node is None:
                return
            spelled = "self." + spelled.split(".", 1)[1]
        else:
            place = walk.place(statement)
            scope_node = place.function or (place.owner if place.kind == "class" else None)
        key = (id(scope_node) if scope_node is not None else 0, spelled)
        self.assigned.setdefault(key, set()).add(constructor)
        self.sites.setdefault(key, target)

    def on_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._record(node, target, node.value)

    def on_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._record(node, node.target, node.value)

    def on_AugAssign(self, node: ast.AugAssign) -> None:
        self._record(node, node.target, None)

    # -- the with statements -----------------------------------------------------------

    def on_With(self, node: ast.With) -> None:
        locks: list[str | None] = []
        awaited: list[bool] = []
        for item in node.items:
            expr = item.context_expr
            is_await = isinstance(expr, ast.Await)
            if isinstance(expr, ast.Await):
                expr = expr.value
            locks.append(ast_dotted_name(expr))
            awaited.append(is_await)
        if not any(locks):
            return
        walk = self.walk
        self.candidates.append(
            _Candidate(
                node,
                locks,
                awaited,
                walk.enclosing_class(node),
                walk.place(node).function,
                walk.in_async_body(node),
            )
        )

    def finish(self) -> None:
        source = self.model.source
        for candidate in self.candidates:
            found = [self._primitive(candidate, lock) for lock in candidate.locks]
            kinds = [item[0] if item else None for item in found]
            if not any(kinds):
                continue
            index = next(i for i, kind in enumerate(kinds) if kind)
            spelled = candidate.locks[index]
            kind, site = found[index] or ("", None)
            message = f"`with {spelled}:` on an `{kind}`; use `async with {spelled}:`"
            if candidate.awaited[index]:
                message = (
                    f"`with (await {spelled}):` on an `{kind}` (the pre-3.7 idiom) raises "
                    f"TypeError since Python 3.9; use `async with {spelled}:`"
                )
            assert site is not None  # a constructor was recorded with its site
            evidence = [f"`{spelled}` is assigned `{kind}()` at line {site.lineno}"]
            # located at the lock, not the whole block (a suppression comment goes on that line)
            where = candidate.node.items[index].context_expr
            if not candidate.in_async:
                self.report(where, message + " (in a sync function: no fix)", None, evidence)
                continue
            if not all(kinds):
                self.report(
                    where,
                    message + " (other items of this `with` are not asyncio primitives: no fix)",
                    None,
                    evidence,
                )
                continue
            changes = [f"Replaced `with {source.segment(where)}:` with `async with`"]
            if any(candidate.awaited):
                changes.append("Dropped the `await` of the lock, which `async with` does itself")
            pending = PendingFix(candidate.node, cst.With, _async_with(changes))
            self.report(where, message, (Safety.SAFE, changes, pending), evidence)

    def _primitive(
        self, candidate: _Candidate, spelled: str | None
    ) -> tuple[str, ast.expr | None] | None:
        """The asyncio primitive ``spelled`` certainly names here and where it is assigned."""
        if spelled is None:
            return None
        scopes: list[tuple[int, str]] = []
        if spelled.startswith(("self.", "cls.")):
            if candidate.cls is None:
                return None
            attribute = "self." + spelled.split(".", 1)[1]
            scopes.append((id(candidate.cls), attribute))
            # a class attribute `_lock = asyncio.Lock()` read through self
            scopes.append((id(candidate.cls), spelled.split(".", 1)[1]))
        elif "." not in spelled:
            if candidate.function is not None and spelled in _parameters(candidate.function):
                return None
            if candidate.function is not None:
                local = (id(candidate.function), spelled)
                if local in self.assigned:
                    scopes.append(local)
            if not scopes:
                scopes.append((0, spelled))
        else:
            return None
        constructors: set[str] = set()
        for key in scopes:
            constructors |= self.assigned.get(key, set())
        if len(constructors) != 1:
            return None
        (constructor,) = constructors
        if constructor not in ASYNC_PRIMITIVES:
            return None
        site = next((self.sites[key] for key in scopes if key in self.sites), None)
        return constructor, site


def _async_with(changes: list[str]) -> Callable[[cst.CSTNode, Locate], Fix]:
    """The fix: ``with lock:`` (or ``with (await lock):``) becomes ``async with lock:``."""

    def build(node: cst.CSTNode, locate: Locate) -> Fix:
        assert isinstance(node, cst.With)
        awaited = any(isinstance(item.item, cst.Await) for item in node.items)
        items = [
            item.with_changes(item=item.item.expression)
            if isinstance(item.item, cst.Await)
            else item
            for item in node.items
        ]
        new = node.with_changes(asynchronous=cst.Asynchronous(), items=items)
        if awaited and len(items) == 1 and isinstance(new.lpar, cst.LeftParen):
            # `with (await lock):` -> `async with lock:`, not `async with (lock):`
            new = new.with_changes(lpar=cst.MaybeSentinel.DEFAULT, rpar=cst.MaybeSentinel.DEFAULT)
        return Fix(Safety.SAFE, changes, {node: new})

    return build


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    args = function.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    for star in (args.vararg, args.kwarg):
        if star is not None:
            every.append(star)
    return {arg.arg for arg in every}
