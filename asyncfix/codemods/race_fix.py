"""What AF401 lost-update and AF402 check-then-act share: how a race is reported, and the lock
fix -- planned on the stdlib tree when the race is found (it says what it will change, or why
there is no fix), built on LibCST only when it is applied.

The analysis is ``analysis/races.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

from asyncfix.analysis.classes import self_name
from asyncfix.analysis.model import in_order
from asyncfix.analysis.races import (
    NAME_KEY,
    ClassFacts,
    Race,
    Where,
    attribute_of,
    awaited_self_method,
    class_attributes,
    first_node,
    first_parameter,
    is_classmethod,
    spelled,
)
from asyncfix.codemods.base import Fix, ImportItem, Locate, PendingFix, Rule, fresh_name
from asyncfix.index import ast_dotted_name
from asyncfix.lazy import libcst as cst
from asyncfix.model import Safety, Severity, Span

LOCK_FIX_NOTE = (
    "Unsafe: the statements from the read (or test) to the write are wrapped in "
    "`async with self._<name>_lock:`, and the lock is created at the start of `__init__`. "
    "When the test is of a local the state was read into (`token = self._token` ... `if "
    "token is None:`), the region begins at that read: a lock from the test on would leave "
    "every waiter with the stale value it read first. A cache the region uses by one key "
    "only (`self._pages.get(url)`, `self._pages[url] = ...`, `url in self._pages`) gets a "
    "lock per key, `self._pages_locks = collections.defaultdict(asyncio.Lock)` and `async "
    "with self._pages_locks[url]:`, so callers for other keys do not wait (a lock is kept "
    "for every key used); "
    "an `__init__(self)` is added to a class that has none and no base classes, unless it "
    "is made to be subclassed (a mixin, a base) or the project subclasses it (a subclass "
    "with its own `__init__` would never create the lock). A lock "
    "that already guards the attribute elsewhere in the class is reused. Module state "
    "(`global` names, module dicts) gets a module-level `_<name>_lock`. A new lock is "
    "offered only for Python 3.10+ targets (`target-version`, else the project's "
    "`requires-python`): before 3.10 an `asyncio.Lock()` binds to the event loop current "
    "when it is made, at import or in `__init__` (a per-key lock is made on first use, "
    "in a coroutine, so it is offered for any target). Callers of the region now wait for "
    "each other: that is the point. An in-progress flag (`if self._busy: return None`, "
    "set, an `await`, reset) is fixed by the same lock from the test through the reset: a "
    "concurrent caller now waits for the call in progress and then tests the flag again "
    "(so it runs the work itself, and a caller that called the method again from inside "
    "the work would wait for itself: no fix when the region awaits a method that calls it "
    "again). A cache entry published empty and filled after an `await` gets it from the "
    "test through the last fill: a concurrent caller for that key waits until the entry is "
    "whole (code that reads the cache without the method still sees it half-built). "
    "Updates of one value through async accessors (`get_x`/`set_x` on a shared receiver) "
    "share one lock, named after the receiver, taken around each function's read and "
    "write back; no fix for any of them when one of the regions cannot take it, and none "
    "when some of them already hold another lock (take that one). No fix "
    "when the region "
    "awaits a method that takes the same lock (it would deadlock), when a new lock would be "
    "taken in several methods (one task holding it while it awaits another's work would "
    "deadlock), when the region awaits a future another task completes, when the method "
    "races on another attribute too (the locks would nest), in a module that uses anyio or "
    "trio and not asyncio (an `asyncio.Lock` does not work on trio), when the read and the "
    "write are not in one block, when the class cannot get an `__init__`, or for class "
    "state through `cls` and `nonlocal` names (the lock belongs elsewhere)."
)

#: the race rules whose fix is a lock
LOCKED = frozenset({"AF401", "AF402"})

#: the LibCST statement each stdlib compound statement is (simple ones are on lines)
_CST_STATEMENT: dict[str, str] = {
    "FunctionDef": "FunctionDef",
    "AsyncFunctionDef": "FunctionDef",
    "ClassDef": "ClassDef",
    "If": "If",
    "For": "For",
    "AsyncFor": "For",
    "While": "While",
    "With": "With",
    "AsyncWith": "With",
    "Try": "Try",
    "TryStar": "TryStar",
    "Match": "Match",
}


def _cst_statement(line: Where) -> type[cst.CSTNode]:
    """The type of ``line``'s LibCST twin."""
    name = _CST_STATEMENT.get(type(line).__name__, "SimpleStatementLine")
    found: type[cst.CSTNode] = getattr(cst, name)
    return found


def shown(race: Race) -> str:
    """The racing location as the method spells it (``self.x``, ``cls.x``, ``CACHE``)."""
    receiver = self_name(race.method) or first_parameter(race.method)
    return spelled(race.attribute, receiver)


def brief(rule: Rule, node: ast.AST) -> str:
    text = " ".join(rule.model.source.segment(node).split())
    return text if len(text) <= 60 else text[:57] + "..."


class RaceRule(Rule):
    """AF401/AF402: each reports the module's races of its code, with the lock fix."""

    kind = "Race on shared state"
    severity = Severity.HIGH
    fix_safety = Safety.UNSAFE
    fix_safety_note = LOCK_FIX_NOTE
    #: a race needs an `async def` that suspends: `await`, `async for` or `async with`
    needles = ("async", ("await", "async for", "async with"))
    #: a new `__init__` is not added to a class the project subclasses
    needs_index = True

    def on_Module(self, node: ast.Module) -> None:
        for race in self.model.races.found:
            if race.code == self.code:
                self.report_race(race, LockFix(self, race).plan())

    def report_race(self, race: Race, fix: tuple[list[str], PendingFix] | str) -> None:
        raise NotImplementedError

    def evidence(self, race: Race, first: str) -> list[str]:
        """What the finding rests on: where the state is read or tested, where the task
        suspends, the method that writes it (``first`` names the read or the test)."""
        evidence = [first.format(line=race.first.node.lineno)]
        if race.suspension is not None:
            line = race.suspension.lineno
            evidence.append(f"the task suspends at line {line} (`{brief(self, race.suspension)}`)")
        if race.via:
            evidence.append(f"`self.{race.via}()` writes `{shown(race)}` after suspending")
        return evidence

    def report_with(
        self,
        race: Race,
        message: str,
        fix: tuple[list[str], PendingFix] | str,
        evidence: list[str],
    ) -> None:
        if isinstance(fix, str):
            self.report(race.write, f"{message} (no fix: {fix})", None, evidence)
        else:
            changes, pending = fix
            self.report(race.write, message, (Safety.UNSAFE, changes, pending), evidence)


@dataclass
class _Region:
    """The lines of one block from the read or test to the write."""

    statements: list[ast.stmt]
    lines: list[Where]


class LockFix:
    """The lock fix of one race, planned on the stdlib tree."""

    def __init__(self, rule: Rule, race: Race) -> None:
        self.rule = rule
        self.race = race
        self.model = rule.model
        self.races = rule.model.races

    def plan(self) -> tuple[list[str], PendingFix] | str:
        """Wrap the statements from the read or test to the write in ``async with
        self.<lock>:``, creating the lock in ``__init__`` unless one already guards the
        attribute; or say why that is not offered."""
        race = self.race
        if race.unfixable is not None:
            return race.unfixable
        other_loop = self.rule.other_event_loop()
        if other_loop is not None:
            return (
                f"the module uses {other_loop}, which may run on trio: an `asyncio.Lock` does "
                f"not work there (`{other_loop}.Lock`, made where the event loop runs, does)"
            )
        others = sorted(
            {
                shown(r)
                for r in self.races.of_method(race.method)
                if r.attribute != race.attribute and r.code in LOCKED
            }
        )
        if others:
            return (
                f"`{race.method.name}()` races on {', '.join(f'`{o}`' for o in others)} too: "
                "a lock for each would nest; decide which one lock guards them"
            )
        if race.attribute.startswith(NAME_KEY):
            return self._module_lock()
        if is_classmethod(race.method):
            return "class-level state: create a class-level lock where the event loop runs"
        facts = self.races.class_of(race.method)
        if facts is None:
            return "the method's class is not known"
        receiver = self_name(race.method)
        assert receiver is not None
        region = self._region()
        if isinstance(region, str):
            return region
        lock, create = _choose_lock(facts, race.attribute)
        if lock is None:
            assert isinstance(create, str)
            return create
        # a cache keyed by one name in the region: a lock per key, so that unrelated keys
        # do not wait for each other
        key = (
            _region_key(region.statements, receiver, race.attribute)
            if create and race.accessor is None
            else None
        )
        if key is not None and not self._names_the_module("collections", facts):
            key = None  # `collections` means something else here: one lock for all keys
        if key is not None:
            taken = set(facts.taken)
            lock = fresh_name(f"_{race.attribute.lstrip('_')}_locks", taken)
        reason = self._deadlock(facts, region, receiver, lock, create)
        if reason is not None:
            return reason
        init = facts.methods.get("__init__")
        asyncio_name = self.model.module_name_for("asyncio", leading_only=True)
        collections_name = self.model.module_name_for("collections", leading_only=True)
        target = self.rule.context.target
        # a per-key lock is made on first use of its key, in a coroutine: where the loop runs
        if create and key is None and target < (3, 10):
            return (
                f"before Python 3.10 an `asyncio.Lock()` made in `__init__` binds to the event "
                f"loop of the thread that builds the object (and raises in a thread with "
                f"none); the project supports Python {target[0]}.{target[1]}, so create the "
                "lock where the loop runs"
            )
        held = f"self.{lock}[{key}]" if key is not None else f"self.{lock}"
        made = "collections.defaultdict(asyncio.Lock)" if key is not None else "asyncio.Lock()"
        changes = [
            f"Wrapped the {len(region.lines)} statement(s) from the "
            f"{'read' if race.code == 'AF401' else 'test'} to the write in "
            f"`async with {held}:`"
        ]
        if key is not None:
            changes.append(
                f"One lock per `{key}`: callers for other keys do not wait (a lock is kept for "
                "every key used)"
            )
        init_self = "self"
        if create:
            if init is None:
                reason = self._cannot_add_init(facts.node)
                if reason:
                    return reason
                changes.append(f"Added `__init__` creating `self.{lock} = {made}`")
            else:
                init_self = self_name(init.node) or "self"
                changes.append(f"Added `{init_self}.{lock} = {made}` to `__init__`")
        rule = self.rule
        cls_span = rule.span(facts.node)
        init_span = rule.span(init.node) if init is not None else None
        wrap = self._wrapper(region)

        def build(head: cst.CSTNode, locate: Locate) -> Fix:
            fix = Fix(Safety.UNSAFE, list(changes))
            if create:
                statement = _lock_statement(
                    init_self, lock, asyncio_name, collections_name if key else None, bool(key)
                )
                if init_span is None:
                    cls = locate.find(cls_span, cst.ClassDef)
                    assert isinstance(cls, cst.ClassDef)
                    fix.class_init.append((cls, statement))
                else:
                    function = locate.find(init_span, cst.FunctionDef)
                    assert isinstance(function, cst.FunctionDef)
                    fix.function_prelude.append((function, statement))
                if asyncio_name is None:
                    fix.add_imports.append(ImportItem("asyncio"))
                if key is not None and collections_name is None:
                    fix.add_imports.append(ImportItem("collections"))
            held_lock: cst.BaseExpression = cst.Attribute(
                value=cst.Name(receiver), attr=cst.Name(lock)
            )
            if key is not None:
                held_lock = cst.Subscript(
                    value=held_lock, slice=[cst.SubscriptElement(cst.Index(cst.Name(key)))]
                )
            wrap(fix, locate, held_lock)
            return fix

        return changes, self._pending(region, build)

    def _names_the_module(self, module: str, facts: ClassFacts) -> bool:
        """``module`` spelled in the class's ``__init__`` (where a fix makes the lock)
        means the module: no module-level binding of it but ``import module``, and no
        binding in ``__init__``."""
        scopes = self.model.scopes
        for binding in scopes.module.bindings.get(module, []):
            if binding.kind != "import" or binding.qualified != module:
                return False
        init = facts.methods.get("__init__")
        scope = scopes.opened.get(id(init.node)) if init is not None else None
        return scope is None or module not in scope.bindings

    def _deadlock(
        self, facts: ClassFacts, region: _Region, receiver: str, lock: str, create: str | bool
    ) -> str | None:
        """Why a lock around the region could deadlock, if it could: never offer that."""
        race = self.race
        for statement in region.statements:
            for node in in_order(statement):
                if isinstance(node, ast.AsyncWith) and any(
                    attribute_of(i.context_expr, receiver) == lock for i in node.items
                ):
                    return f"the region already acquires `self.{lock}`"
                callee = awaited_self_method(node, receiver)
                if callee is None:
                    continue
                chain = facts.acquires_transitively(callee, lock)
                if chain is None:
                    chain = self._racing_chain(facts, callee)
                if chain is not None:
                    path = " -> ".join(f"{name}()" for name in chain)
                    return (
                        f"the region awaits {path}, which takes `self.{lock}` too: a lock here "
                        "would deadlock"
                    )
        if not create:
            callers = self.races.locked_callers(facts, race.method.name, lock)
            if callers is not None:
                path = " -> ".join(f"{name}()" for name in callers)
                return (
                    f"{path}: `{callers[0]}()` awaits it holding `self.{lock}`, so a lock "
                    "here would wait for itself"
                )
        if create and race.accessor is None:  # an accessor's lock is shared by its group
            takers = self.races.takers(race.attribute, facts)
            if len(takers) > 1:
                return (
                    f"the lock would be taken in {_listed(takers)}: one task "
                    "holding it while it awaits work another of them does would deadlock; "
                    "decide where the lock belongs"
                )
        for statement in region.statements:
            for node in in_order(statement):
                if (
                    isinstance(node, ast.Await)
                    and attribute_of(node.value, receiver) is not None
                    and not isinstance(node.value, ast.Call)
                ):
                    return (
                        f"the region awaits `{self.model.source.segment(node.value)}`, which "
                        "another task completes: holding a lock while waiting for it may "
                        "deadlock"
                    )
        return None

    def _racing_chain(self, facts: ClassFacts, method: str) -> list[str] | None:
        """The awaited self methods from ``method`` to one that has its own race on the
        attribute (its fix would take the same lock)."""
        racing = self._racing()
        return facts.chain(method, lambda name: name in racing)

    def _racing(self) -> set[str]:
        """The functions whose fix takes the same lock (an accessor's group shares one), and
        the method itself: one awaited in the region would wait for the lock held."""
        race = self.race
        if race.accessor is not None:
            return set(race.accessor.group)
        racing = {r.method.name for r in self.races.found if r.attribute == race.attribute}
        racing.add(race.method.name)
        return racing

    def _module_lock(self) -> tuple[list[str], PendingFix] | str:
        """The lock fix for a module name: a module-level ``asyncio.Lock``."""
        race = self.race
        model = self.model
        scopes = model.scopes
        name = race.attribute[len(NAME_KEY) :]
        local = scopes.opened.get(id(race.method))
        if local is not None and name in local.declared_nonlocal:
            return (
                f"`{name}` is a `nonlocal` of the enclosing function: the lock belongs there, "
                "next to it"
            )
        if self.rule.context.target < (3, 10):
            return (
                "before Python 3.10 an `asyncio.Lock()` made at import time binds to the event "
                "loop running then; create it where the loop runs"
            )
        region = self._region()
        if isinstance(region, str):
            return region
        lock = f"_{name.lower().lstrip('_')}_lock"
        module_bindings = scopes.module.bindings
        existing = module_bindings.get(lock)
        create = True
        if existing:
            values = [b.value for b in existing]
            if all(
                isinstance(v, ast.Call) and scopes.qualified_name(v.func) == "asyncio.Lock"
                for v in values
            ):
                create = False
            else:
                lock = fresh_name(lock, set(module_bindings))
        racing = self._racing()
        for statement in region.statements:
            for node in in_order(statement):
                if isinstance(node, ast.AsyncWith) and any(
                    ast_dotted_name(i.context_expr) == lock for i in node.items
                ):
                    return f"the region already acquires `{lock}`"
                if isinstance(node, ast.Await) and isinstance(node.value, ast.Call):
                    callee = ast_dotted_name(node.value.func)
                    if callee in racing:
                        return (
                            f"the region awaits `{callee}()`, which needs `{lock}` too: a lock "
                            "here would deadlock"
                        )
        asyncio_name = model.module_name_for("asyncio", leading_only=True)
        changes = [
            f"Wrapped the {len(region.lines)} statement(s) from the "
            f"{'read' if race.code == 'AF401' else 'test'} to the write in `async with {lock}:`"
        ]
        if create:
            changes.append(f"Added `{lock} = asyncio.Lock()` at module level")
        wrap = self._wrapper(region)

        def build(head: cst.CSTNode, locate: Locate) -> Fix:
            fix = Fix(Safety.UNSAFE, list(changes))
            if create:
                value = cst.Call(
                    func=cst.Attribute(
                        value=cst.Name(asyncio_name or "asyncio"), attr=cst.Name("Lock")
                    )
                )
                fix.prelude[lock] = cst.SimpleStatementLine(
                    [cst.Assign([cst.AssignTarget(cst.Name(lock))], value)]
                )
                if asyncio_name is None:
                    fix.add_imports.append(ImportItem("asyncio"))
            wrap(fix, locate, cst.Name(lock))
            return fix

        return changes, self._pending(region, build)

    # -- the region ----------------------------------------------------------------------

    def _region(self) -> _Region | str:
        """The statements of one block from the read or test to the write, or why there
        are none a lock can go around."""
        race = self.race
        blocks = self.races.blocks
        # a test of a local read from the state begins where it is read: a lock from the
        # test on would leave every waiter holding the stale value it read before
        start = race.first.origin or race.first.node
        found = blocks.region(race.method, start, first_node(race.write))
        if found is None:
            return "the read and the write are not in one block"
        body, first, last = found
        statements = body[first : last + 1]
        if any(isinstance(n, (ast.Yield, ast.YieldFrom)) for s in statements for n in in_order(s)):
            return "the region yields: a lock held across `yield` stays held by the consumer"
        return _Region(statements, blocks.lines(body, first, last + 1))

    def _located(self, region: _Region) -> list[tuple[Span, type[cst.CSTNode]]]:
        """Where each line of the region is, and the LibCST statement it is."""
        return [(self.rule.span(line), _cst_statement(line)) for line in region.lines]

    def _wrapper(self, region: _Region) -> Callable[[Fix, Locate, cst.BaseExpression], None]:
        located = self._located(region)

        def wrap(fix: Fix, locate: Locate, lock: cst.BaseExpression) -> None:
            statements = [locate.find(span, kind) for span, kind in located]
            head = statements[0]
            assert isinstance(head, (cst.SimpleStatementLine, cst.BaseCompoundStatement))
            wrapped = cst.With(
                items=[cst.WithItem(lock)],
                asynchronous=cst.Asynchronous(),
                body=cst.IndentedBlock(
                    body=[head.with_changes(leading_lines=[]), *statements[1:]]  # type: ignore[list-item]
                ),
                leading_lines=head.leading_lines,
            )
            fix.replace[head] = wrapped
            for statement in statements[1:]:
                fix.replace[statement] = cst.RemovalSentinel.REMOVE

        return wrap

    def _pending(self, region: _Region, build: Callable[[cst.CSTNode, Locate], Fix]) -> PendingFix:
        # the LibCST statement holding the first line's first statement is its whole line
        _, kind = self._located(region)[0]
        return PendingFix(first_node(region.lines[0]), kind, build)

    # -- what the module and the class allow ------------------------------------------------

    def _cannot_add_init(self, cls: ast.ClassDef) -> str | None:
        name = cls.name
        if name.endswith("Mixin") or name.startswith(("Base", "Abstract")) or name.endswith("Base"):
            return (
                f"`{name}` is made to be subclassed: a new `__init__` would not run for "
                "subclasses that define their own without `super().__init__()`"
            )
        project = self.rule.context.project
        fact = project.index.class_(f"{project.module.name}.{name}") if project else None
        if fact is not None and project is not None and project.index.has_subclasses(fact):
            return (
                f"`{name}` has subclasses: a new `__init__` would not run for those that "
                "define their own without `super().__init__()`"
            )
        bases = [ast_dotted_name(base) for base in cls.bases]
        if any(base not in ("object",) for base in bases) or cls.keywords:
            return (
                f"`{name}` has no `__init__` and has base classes: where to create the lock "
                "needs their constructor"
            )
        if cls.decorator_list:
            return f"`{name}` is decorated (a dataclass?): add the lock where it is built"
        if "__slots__" in class_attributes(cls):
            return f"`{name}` declares `__slots__`"
        return None


def _listed(methods: list[str], most: int = 10) -> str:
    """``a(), b(), c()``; a list of more than ``most`` cut (``... and 2994 more``)."""
    if len(methods) <= most:
        return ", ".join(f"{name}()" for name in methods)
    return ", ".join(f"{name}()" for name in methods[: most - 2]) + (
        f" and {len(methods) - most + 2} more"
    )


def _choose_lock(facts: ClassFacts, attribute: str) -> tuple[str | None, str | bool]:
    """(the lock attribute, whether to create it) or (None, why no lock can be chosen)."""
    guards = sorted(
        lock
        for lock in facts.guarded_by.get(attribute, set())
        if facts.lock_kind(lock) == "asyncio.Lock"
    )
    if len(guards) > 1:
        return None, f"`self.{attribute}` is written under several locks ({', '.join(guards)})"
    name = f"_{attribute.lstrip('_')}_lock"
    if not guards and facts.lock_kind(name) == "asyncio.Lock":
        guards = [name]
    if guards and guards[0] in facts.nullable:
        return None, (
            f"`self.{guards[0]}` is made lazily (it is `None` until then): take it where it is "
            "made, not here"
        )
    if guards:
        return guards[0], False
    taken = set(facts.taken)
    return fresh_name(name, taken), True


def _region_key(statements: list[ast.stmt], receiver: str, attribute: str) -> str | None:
    """The one name the region uses ``self.<attribute>`` by (``self.cache.get(key)``,
    ``self.cache[key] = ...``, ``key in self.cache``, ``self.cache.pop(key)``), when that
    is every use of it there and the region never rebinds the name; else None."""
    keys: set[str] = set()
    parents: dict[int, ast.AST] = {}
    for statement in statements:
        for node in ast.walk(statement):
            for child in ast.iter_child_nodes(node):
                parents[id(child)] = node
    for statement in statements:
        for node in ast.walk(statement):
            if not (
                isinstance(node, ast.Attribute)
                and node.attr == attribute
                and isinstance(node.value, ast.Name)
                and node.value.id == receiver
            ):
                continue
            parent = parents.get(id(node))
            key: ast.expr | None = None
            if isinstance(parent, ast.Subscript) and parent.value is node:
                key = parent.slice
            elif isinstance(parent, ast.Attribute) and parent.attr in _KEYED_METHODS:
                call = parents.get(id(parent))
                if isinstance(call, ast.Call) and call.func is parent and call.args:
                    key = call.args[0]
            elif (
                isinstance(parent, ast.Compare)
                and len(parent.ops) == 1
                and isinstance(parent.ops[0], (ast.In, ast.NotIn))
                and parent.comparators[0] is node
            ):
                key = parent.left
            if not isinstance(key, ast.Name):
                return None
            keys.add(key.id)
    if len(keys) != 1:
        return None
    (name,) = keys
    for statement in statements:
        for node in ast.walk(statement):
            if (
                isinstance(node, ast.Name)
                and node.id == name
                and not isinstance(node.ctx, ast.Load)
            ):
                return None  # rebound in the region: which key is locked would change
    return name


#: methods of a mapping whose first argument is the key
_KEYED_METHODS = frozenset({"get", "pop", "setdefault"})


def _lock_statement(
    receiver: str,
    lock: str,
    asyncio_name: str | None,
    collections_name: str | None = None,
    per_key: bool = False,
) -> cst.SimpleStatementLine:
    value: cst.BaseExpression = cst.Call(
        func=cst.Attribute(value=cst.Name(asyncio_name or "asyncio"), attr=cst.Name("Lock"))
    )
    if per_key:
        factory = cst.Attribute(value=cst.Name(asyncio_name or "asyncio"), attr=cst.Name("Lock"))
        value = cst.Call(
            func=cst.Attribute(
                value=cst.Name(collections_name or "collections"), attr=cst.Name("defaultdict")
            ),
            args=[cst.Arg(factory)],
        )
    target = cst.Attribute(value=cst.Name(receiver), attr=cst.Name(lock))
    return cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(target)], value)])
