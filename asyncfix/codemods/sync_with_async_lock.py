"""AF404 sync-with-on-async-lock: ``with`` on an asyncio lock raises; it needs ``async with``."""

from __future__ import annotations

import ast
from dataclasses import dataclass

import libcst as cst

from asyncfix.codemods.base import Fix, Project, Rule, source_of
from asyncfix.codemods.names import dotted_name
from asyncfix.codemods.prefilters import may_hold_async_lock_in_with
from asyncfix.model import Safety, Severity

ASYNC_PRIMITIVES = frozenset(
    {"asyncio.Lock", "asyncio.Semaphore", "asyncio.BoundedSemaphore", "asyncio.Condition"}
)

_CONSTRUCTOR_NAMES = frozenset(name.rsplit(".", 1)[1] for name in ASYNC_PRIMITIVES)


@dataclass
class _Candidate:
    node: cst.With
    #: how each item's lock is spelled ("self._lock", "LOCK", "lock"); None: not a lock reference
    locks: list[str | None]
    awaited: list[bool]
    cls: cst.ClassDef | None
    function: cst.FunctionDef | None
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

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        return may_hold_async_lock_in_with(tree, _CONSTRUCTOR_NAMES)

    def __init__(self, ctx: object) -> None:
        super().__init__(ctx)  # type: ignore[arg-type]
        self.candidates: list[_Candidate] = []
        #: (scope, spelled name) -> constructors assigned to it; scope is a class, function or
        #: None for the module
        self.assigned: dict[tuple[int, str], set[str]] = {}
        #: where each of those was first assigned, for the report
        self.sites: dict[tuple[int, str], cst.CSTNode] = {}

    # -- what each name is assigned --------------------------------------------------

    def _record(self, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        spelled = dotted_name(target)
        if spelled is None:
            return
        constructor = "?"
        if isinstance(value, cst.Call):
            constructor = self.ctx.qualified_name(value.func) or "?"
        if spelled.startswith(("self.", "cls.")):
            scope_node: cst.CSTNode | None = self.ctx.enclosing_class()
            if scope_node is None:
                return
            spelled = "self." + spelled.split(".", 1)[1]
        else:
            scope_node = self.ctx.enclosing_function() or self._class_body()
        key = (id(scope_node) if scope_node is not None else 0, spelled)
        self.assigned.setdefault(key, set()).add(constructor)
        self.sites.setdefault(key, target)

    def _class_body(self) -> cst.ClassDef | None:
        frame = self.ctx.innermost_scope()
        if frame is not None and frame.kind == "class":
            assert isinstance(frame.node, cst.ClassDef)
            return frame.node
        return None

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._record(target.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._record(node.target, node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._record(node.target, None)

    # -- the with statements -----------------------------------------------------------

    def visit_With(self, node: cst.With) -> None:
        if node.asynchronous is not None:
            return
        locks: list[str | None] = []
        awaited: list[bool] = []
        for item in node.items:
            expr = item.item
            is_await = isinstance(expr, cst.Await)
            if isinstance(expr, cst.Await):
                expr = expr.expression
            locks.append(dotted_name(expr))
            awaited.append(is_await)
        if not any(locks):
            return
        self.candidates.append(
            _Candidate(
                node,
                locks,
                awaited,
                self.ctx.enclosing_class(),
                self.ctx.enclosing_function(),
                self.ctx.in_async_body(),
            )
        )

    def finish(self) -> None:
        for candidate in self.candidates:
            found = [self._primitive(candidate, lock) for lock in candidate.locks]
            kinds = [item[0] if item else None for item in found]
            if not any(kinds):
                continue
            index = next(i for i, kind in enumerate(kinds) if kind)
            spelled = candidate.locks[index]
            kind, site = found[index] or ("", None)
            message = f"`with {spelled}:` on an `{kind}`; use `async with {spelled}:`"
            evidence = [(f"`{spelled}` is assigned `{kind}()` at line {{line}}", site)]
            # located at the lock, not the whole block (a suppression comment goes on that line)
            where = candidate.node.items[index].item
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
            items = [
                item.with_changes(item=item.item.expression)
                if isinstance(item.item, cst.Await)
                else item
                for item in candidate.node.items
            ]
            new = candidate.node.with_changes(asynchronous=cst.Asynchronous(), items=items)
            if any(candidate.awaited) and len(items) == 1 and isinstance(new.lpar, cst.LeftParen):
                # `with (await lock):` -> `async with lock:`, not `async with (lock):`
                new = new.with_changes(
                    lpar=cst.MaybeSentinel.DEFAULT, rpar=cst.MaybeSentinel.DEFAULT
                )
            changes = [f"Replaced `with {source_of(where)}:` with `async with`"]
            if any(candidate.awaited):
                changes.append("Dropped the `await` of the lock, which `async with` does itself")
            fix = Fix(Safety.SAFE, changes, {candidate.node: new})
            self.report(where, message, fix, evidence)

    def _primitive(
        self, candidate: _Candidate, spelled: str | None
    ) -> tuple[str, cst.CSTNode | None] | None:
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


def _parameters(function: cst.FunctionDef) -> set[str]:
    params = function.params
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    for star in (params.star_arg, params.star_kwarg):
        if isinstance(star, cst.Param):
            every.append(star)
    return {param.name.value for param in every}
