"""AF406 thread-lock-across-await: a ``threading.Lock`` held across an ``await`` blocks the
event loop and can deadlock it."""

from __future__ import annotations

import ast

from asyncfix.analysis.classes import self_name
from asyncfix.analysis.races import THREAD_LOCKS, attribute_of
from asyncfix.codemods.base import Rule
from asyncfix.codemods.race_fix import brief
from asyncfix.model import Safety, Severity


class ThreadLockAcrossAwait(Rule):
    code = "AF406"
    name = "thread-lock-across-await"
    summary = "a `threading.Lock` held across an `await`: blocks the event loop, deadlocks"
    why = (
        "A threading lock is held by the thread, not the task. While the holder is suspended "
        "at the `await`, any other task on the loop that takes the same lock blocks the loop's "
        "thread — and the holder can never resume to release it: the whole program hangs."
    )
    example_before = """\
import threading


class Cache:
    def __init__(self, fetch):
        self._lock = threading.Lock()
        self._fetch = fetch
        self.data = {}

    async def refresh(self, key):
        with self._lock:
            self.data[key] = await self._fetch(key)
"""
    example_after = """\
import asyncio


class Cache:
    def __init__(self, fetch):
        self._lock = asyncio.Lock()
        self._fetch = fetch
        self.data = {}

    async def refresh(self, key):
        async with self._lock:
            self.data[key] = await self._fetch(key)
"""
    fix_safety = Safety.NONE
    fix_safety_note = (
        "None: when the lock is only used from async code, `asyncio.Lock` with `async with` "
        "is the repair; when threads share it, the awaited work must move out of the region."
    )
    severity = Severity.HIGH
    kind = "Deadlock"
    needles = ("with", ("Lock", "RLock"), "await")

    def on_With(self, node: ast.With) -> None:
        if not self.walk.in_async_body(node):
            return
        for item in node.items:
            expr = item.context_expr
            kind = self._thread_lock(expr)
            if kind is None:
                continue
            awaits = self.model.races.awaits(node.body)
            if not awaits:
                continue
            spelled = self.model.source.segment(expr)
            if kind == "threading.RLock":
                harm = (
                    "other tasks on this thread re-enter it freely (it excludes nothing "
                    "between tasks) while other threads wait for the whole suspension"
                )
            else:
                harm = (
                    "another task taking it meanwhile blocks the event loop, and this one "
                    "never resumes to release it"
                )
            self.report(
                expr,
                f"`with {spelled}:` holds a `{kind}` across `{brief(self, awaits[0])}`: {harm}",
                None,
                [
                    f"`{spelled}` is a `{kind}`",
                    f"the task suspends at line {awaits[0].lineno} while holding it",
                ],
            )

    def _thread_lock(self, expr: ast.expr) -> str | None:
        """``threading.Lock``/``threading.RLock`` when that is what ``expr`` always holds: a
        ``self`` attribute every assignment in the class makes one, or a name bound only to
        one."""
        model = self.model
        cls = self.walk.enclosing_class(expr)
        function = self.walk.place(expr).function
        if cls is not None and function is not None:
            receiver = self_name(function)
            if receiver is not None and isinstance(expr, ast.Attribute):
                attribute = attribute_of(expr, receiver)
                if attribute is not None and expr.attr == attribute:
                    facts = model.races.facts_of(cls)
                    kind = facts.lock_kind(attribute) if facts is not None else None
                    return kind if kind in THREAD_LOCKS else None
        if isinstance(expr, ast.Name):
            found = model.scopes.resolve(expr)
            if found is None:
                return None
            kinds = set()
            for binding in found[1]:
                value = binding.value
                if binding.kind != "assign" or not isinstance(value, ast.Call):
                    return None
                kinds.add(model.scopes.qualified_name(value.func))
            if len(kinds) == 1:
                (kind,) = kinds
                return kind if kind in THREAD_LOCKS else None
        return None
