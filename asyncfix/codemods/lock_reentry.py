"""AF405 lock-reentry: under an ``asyncio.Lock``, acquiring it again -- directly or through an
awaited method -- waits forever."""

from __future__ import annotations

import ast

from asyncfix.analysis.classes import self_name
from asyncfix.analysis.model import in_order
from asyncfix.analysis.races import ClassFacts, attribute_of, awaited_self_method
from asyncfix.codemods.base import Rule
from asyncfix.codemods.race_fix import brief
from asyncfix.model import Safety, Severity


class LockReentry(Rule):
    code = "AF405"
    name = "lock-reentry"
    summary = "awaiting, under an `asyncio.Lock`, a method that acquires the same lock: deadlock"
    why = (
        "`asyncio.Lock` is not re-entrant. A coroutine that holds it and then awaits code that "
        "acquires it again waits for itself forever, and every other task that needs the lock "
        "waits too."
    )
    example_before = """\
import asyncio


class Store:
    def __init__(self):
        self._lock = asyncio.Lock()
        self.items = {}

    async def save(self):
        async with self._lock:
            ...

    async def put(self, key, value):
        async with self._lock:
            self.items[key] = value
            await self.save()
"""
    example_after = """\
import asyncio


class Store:
    def __init__(self):
        self._lock = asyncio.Lock()
        self.items = {}

    async def _save_locked(self):
        ...  # the caller holds self._lock

    async def save(self):
        async with self._lock:
            await self._save_locked()

    async def put(self, key, value):
        async with self._lock:
            self.items[key] = value
            await self._save_locked()
"""
    fix_safety = Safety.NONE
    fix_safety_note = "None: how to split the critical section is a design decision."
    severity = Severity.HIGH
    kind = "Deadlock"
    needles = ("async with", "Lock")

    def on_Module(self, node: ast.Module) -> None:
        for facts in self.model.races.facts.values():
            for method in facts.methods.values():
                receiver = self_name(method.node)
                if receiver is not None:
                    self._method(facts, method.node, receiver)

    def _method(
        self, facts: ClassFacts, method: ast.FunctionDef | ast.AsyncFunctionDef, receiver: str
    ) -> None:
        for node in in_order(method.body):
            if not isinstance(node, ast.AsyncWith):
                continue
            for item in node.items:
                lock = attribute_of(item.context_expr, receiver)
                if lock is None or facts.lock_kind(lock) != "asyncio.Lock":
                    continue
                for inner in in_order(node.body):
                    if isinstance(inner, ast.AsyncWith):
                        if any(attribute_of(i.context_expr, receiver) == lock for i in inner.items):
                            self.report(
                                inner,
                                f"`async with self.{lock}` while already holding it: "
                                "`asyncio.Lock` is not re-entrant, this waits forever",
                                None,
                                [f"`self.{lock}` first acquired at line {node.lineno}"],
                            )
                        continue
                    callee = awaited_self_method(inner, receiver)
                    if callee is None:
                        continue
                    chain = facts.acquires_transitively(callee, lock)
                    if chain is None:
                        continue
                    path = " -> ".join(f"{name}()" for name in [method.name, *chain])
                    self.report(
                        inner,
                        f"deadlock: `{brief(self, inner)}` runs while `self.{lock}` is held and "
                        f"acquires it again ({path} -> async with self.{lock}); "
                        "`asyncio.Lock` is not re-entrant",
                        None,
                        [f"`self.{lock}` acquired at line {node.lineno}"],
                    )
