"""AF406 thread-lock-across-await: a ``threading.Lock`` held across an ``await`` blocks the
event loop and can deadlock it."""

from __future__ import annotations

import ast

from asyncfix.analysis.classes import Function, self_name
from asyncfix.analysis.races import THREAD_LOCKS, attribute_of
from asyncfix.codemods.base import Fix, ImportItem, Locate, PendingFix, Rule
from asyncfix.codemods.race_fix import brief
from asyncfix.lazy import libcst as cst
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
    fix_safety = Safety.UNSAFE
    fix_safety_note = (
        "Unsafe: a `self._x = threading.Lock()` made in `__init__` and otherwise used only "
        "as `with self._x:` (one item) in the class's coroutines becomes an `asyncio.Lock`, "
        "and every such `with` an `async with`: the lock then excludes tasks, and a task "
        "waiting for it lets the loop run. Not offered when anything else uses it (sync "
        "methods, `acquire()`, other objects, other modules: a thread may share it -- then "
        "the awaited work must move out of the region), for an `RLock` (an `asyncio.Lock` "
        "is not re-entrant), a lock that is not private (`_x`), a class the project "
        "subclasses, a module-level lock, or before Python 3.10 (an `asyncio.Lock()` made in "
        "`__init__` binds to the loop current then)."
    )
    severity = Severity.HIGH
    kind = "Deadlock"
    needles = ("with", ("Lock", "RLock"), "await")
    needs_index = True  # does the project subclass the class?

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
            message = (
                f"`with {spelled}:` holds a `{kind}` across `{brief(self, awaits[0])}`: {harm}"
            )
            evidence = [
                f"`{spelled}` is a `{kind}`",
                f"the task suspends at line {awaits[0].lineno} while holding it",
            ]
            plan = self._replacement(node, expr, kind)
            if isinstance(plan, str):
                self.report(expr, f"{message} (no fix: {plan})", None, evidence)
            else:
                self.report(expr, message, (Safety.UNSAFE, plan[0], plan[1]), evidence)

    def _replacement(
        self, node: ast.With, expr: ast.expr, kind: str
    ) -> tuple[list[str], PendingFix] | str:
        """The fix that makes a class's private thread lock an ``asyncio.Lock``, or why
        there is none."""
        if kind != "threading.Lock":
            return "an `asyncio.Lock` is not re-entrant, as an `RLock` is"
        cls = self.walk.enclosing_class(node)
        function = self.walk.place(node).function
        receiver = self_name(function) if function is not None else None
        if cls is None or receiver is None or not isinstance(expr, ast.Attribute):
            return "only a lock of the class's own (`self._lock`) is replaced"
        attribute = expr.attr
        if not attribute.startswith("_"):
            return f"`{attribute}` is public: code elsewhere may take it from a thread"
        other = self.other_event_loop()
        if other is not None:
            return f"the module may run on {other}, where an `asyncio.Lock` does not work"
        if self.context.target < (3, 10):
            return (
                "before Python 3.10 an `asyncio.Lock()` made in `__init__` binds to the event "
                "loop current then"
            )
        project = self.context.project
        fact = (
            project.index.class_(f"{project.module.name}.{cls.name}")
            if project is not None and self.walk.place(cls).kind == "module"
            else None
        )
        uses = self._uses(cls, attribute)
        if isinstance(uses, str):
            return uses
        creation, withs = uses
        if fact is None or project is None:
            return "the class is not one the project index knows"
        if project.index.has_subclasses(fact):
            return "a subclass may take the lock in sync code"
        asyncio_name = self.model.module_name_for("asyncio", leading_only=True)
        changes = [
            f"Made `self.{attribute}` an `asyncio.Lock` (line {creation.lineno})",
            f"Replaced `with self.{attribute}:` with `async with` ({len(withs)} place(s))",
        ]
        creation_span = self.span(creation)
        with_spans = [self.span(w) for w in withs if w is not node]

        def build(head: cst.CSTNode, locate: Locate) -> Fix:
            assert isinstance(head, cst.With)
            fix = Fix(Safety.UNSAFE, list(changes))
            call = locate.find(creation_span, cst.Call)
            assert isinstance(call, cst.Call)
            lock = cst.Attribute(value=cst.Name(asyncio_name or "asyncio"), attr=cst.Name("Lock"))
            fix.replace[call] = call.with_changes(func=lock)
            for statement in [head, *(locate.find(span, cst.With) for span in with_spans)]:
                assert isinstance(statement, cst.With)
                fix.replace[statement] = statement.with_changes(asynchronous=cst.Asynchronous())
            if asyncio_name is None:
                fix.add_imports.append(ImportItem("asyncio"))
            fix.remove_unused.append(ImportItem("threading"))
            return fix

        return changes, PendingFix(node, cst.With, build)

    def _uses(self, cls: ast.ClassDef, attribute: str) -> tuple[ast.Call, list[ast.With]] | str:
        """Where ``self.<attribute>`` is made (one ``threading.Lock()`` in ``__init__``) and
        the one-item ``with`` statements in coroutine methods that are its only other uses;
        or what else uses it."""
        parents = self.model.scopes.parents
        creation: ast.Call | None = None
        withs: list[ast.With] = []
        for method in cls.body:
            if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if any(isinstance(n, ast.Name) and n.id == attribute for n in ast.walk(method)):
                    return f"the class body binds `{attribute}` too"
                continue
            receiver = self_name(method)
            for found in ast.walk(method):
                if not isinstance(found, ast.Attribute) or found.attr != attribute:
                    continue
                if not (isinstance(found.value, ast.Name) and found.value.id == receiver):
                    return f"`.{attribute}` of another object is used (line {found.lineno})"
                parent = parents.get(id(found))
                if (
                    method.name == "__init__"
                    and isinstance(parent, ast.Assign)
                    and parent.targets == [found]
                    and isinstance(parent.value, ast.Call)
                    and creation is None
                    and _owner(found, parents) is method
                ):
                    creation = parent.value
                    continue
                holder = parents.get(id(parent)) if isinstance(parent, ast.withitem) else None
                if (
                    isinstance(holder, ast.With)
                    and len(holder.items) == 1
                    and isinstance(method, ast.AsyncFunctionDef)
                    and _owner(found, parents) is method
                ):
                    withs.append(holder)
                    continue
                return (
                    f"`self.{attribute}` is used other than by `with` in coroutines "
                    f"(line {found.lineno})"
                )
        if creation is None:
            return f"`self.{attribute}` is not made in `__init__`"
        for found in ast.walk(self.model.tree):
            if not isinstance(found, ast.Attribute) or found.attr != attribute:
                continue
            if cls.lineno <= found.lineno <= (cls.end_lineno or 0):
                continue
            owner = _owner(found, parents)
            in_method = owner is not None and isinstance(parents.get(id(owner)), ast.ClassDef)
            if (
                in_method
                and owner is not None
                and isinstance(found.value, ast.Name)
                and found.value.id == self_name(owner)
            ):
                continue  # another class's `self._lock`: its own
            return f"`.{attribute}` is used outside the class (line {found.lineno})"
        return creation, withs

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


def _owner(node: ast.AST, parents: dict[int, ast.AST]) -> Function | None:
    """The function whose own body holds ``node`` (not a nested function's, not a lambda's)."""
    current = parents.get(id(node))
    while current is not None:
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return current
        if isinstance(current, (ast.Lambda, ast.ClassDef)):
            return None
        current = parents.get(id(current))
    return None
