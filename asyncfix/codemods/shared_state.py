"""AF401 lost-update, AF402 check-then-act, AF403 await-in-augmented-assign, AF405
lock-reentry, AF406 thread-lock-across-await: shared state across an ``await``.

The analysis is in ``races.py``; these rules report what it finds, each for its shape.
"""

from __future__ import annotations

import ast

import libcst as cst

from asyncfix.codemods.base import Context, Fix, ImportItem, Project, Rule, fresh_name, source_of
from asyncfix.codemods.names import dotted_name
from asyncfix.codemods.prefilters import (
    may_hold_thread_lock_across_await,
    may_reenter_lock,
    race_shapes,
)
from asyncfix.codemods.races import (
    MUTABLE,
    NAME_KEY,
    SERIALIZED_BASES,
    THREAD_LOCKS,
    ClassFacts,
    Race,
    attribute_of,
    awaited_self_method,
    in_order,
    module_races,
    parent_map,
    self_name,
    spelled,
    suspensions,
    write_target,
)
from asyncfix.model import Safety, Severity

LOCK_FIX_NOTE = (
    "Unsafe: the statements from the read (or test) to the write are wrapped in "
    "`async with self._<name>_lock:`, and the lock is created at the start of `__init__`; "
    "an `__init__(self)` is added to a class that has none and no base classes, unless it "
    "is made to be subclassed (a mixin, a base) or the project subclasses it (a subclass "
    "with its own `__init__` would never create the lock). A lock "
    "that already guards the attribute elsewhere in the class is reused. Module state "
    "(`global` names, module dicts) gets a module-level `_<name>_lock`. A new lock is "
    "offered only for Python 3.10+ targets (`target-version`, else the project's "
    "`requires-python`): before 3.10 an `asyncio.Lock()` binds to the event loop current "
    "when it is made, at import or in `__init__`. Callers of the "
    "region now wait for each other: that is the point, but one lock for a cache keyed by "
    "request serialises every miss, where a lock per key would not. No fix when the region "
    "awaits a method that takes the same lock (it would deadlock), when a new lock would be "
    "taken in several methods (one task holding it while it awaits another's work would "
    "deadlock), when the region awaits a future another task completes, when the method "
    "races on another attribute too (the locks would nest), in a module that uses anyio or "
    "trio and not asyncio (an `asyncio.Lock` does not work on trio), when the read and the "
    "write are not in one block, when the class cannot get an `__init__`, or for class "
    "state through `cls` and `nonlocal` names (the lock belongs elsewhere)."
)


def _analysis(ctx: Context) -> tuple[list[Race], dict[int, ClassFacts]]:
    found = ctx.shared.get("races")
    if found is None:
        classes = [facts.node for facts in ctx.classes.values()]
        found = module_races(
            ctx.module,
            classes,
            lambda node: ctx.names.qualified_name(node, [ctx.module]),
            lambda function: _shared_names(ctx, function),
        )
        ctx.shared["races"] = found
    races, facts = found
    return races, facts


def _shown(race: Race) -> str:
    method = race.method
    receiver = self_name(method)
    params = [*method.params.posonly_params, *method.params.params]
    if receiver is None and params:
        receiver = params[0].name.value  # `cls` of a classmethod
    return spelled(race.attribute, receiver)


def _shared_names(ctx: Context, function: cst.FunctionDef) -> frozenset[str]:
    """Module-level names ``function`` shares with other tasks: those it declares ``global``,
    and module variables it uses without binding them locally (``CACHE[key] = ...``)."""
    local = ctx.names.bindings(function)
    module = ctx.names.bindings(ctx.module)
    names = set(local.declared_global) | set(local.declared_nonlocal)
    for name, bindings in module.bound.items():
        if name in local.bound or name in local.declared_nonlocal:
            continue
        if all(binding.kind == "assign" for binding in bindings):
            names.add(name)  # a module variable, not an import, function or class
    return frozenset(names)


def _brief(node: cst.CSTNode) -> str:
    text = " ".join(source_of(node).split())
    return text if len(text) <= 60 else text[:57] + "..."


class _RaceRule(Rule):
    kind = "Race on shared state"
    severity = Severity.HIGH
    fix_safety = Safety.UNSAFE
    needles = ("async", "await")
    #: a new `__init__` is not added to a class the project subclasses
    needs_index = True

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        return race_shapes(tree, SERIALIZED_BASES).race

    def finish(self) -> None:
        races, facts_by_class = _analysis(self.ctx)
        for race in races:
            if race.code == self.code:
                self._report(race, lock_fix(self.ctx, race, races, facts_by_class))

    def _report(self, race: Race, fix: Fix | str) -> None:
        raise NotImplementedError

    def _evidence(self, race: Race, first: str) -> list[tuple[str, cst.CSTNode | None]]:
        evidence: list[tuple[str, cst.CSTNode | None]] = [(first, race.first.node)]
        if race.suspension is not None:
            evidence.append(
                (
                    f"the task suspends at line {{line}} (`{_brief(race.suspension)}`)",
                    race.suspension,
                )
            )
        if race.via:
            evidence.append((f"`self.{race.via}()` writes `{_shown(race)}` after suspending", None))
        return evidence


class LostUpdate(_RaceRule):
    code = "AF401"
    name = "lost-update"
    summary = "shared state read into a local, then an `await`, then written back from that local"
    why = (
        "asyncio runs another task whenever a coroutine suspends. Between the read and the "
        "write, another task can update the same attribute; the write then puts back a value "
        "computed from the old one, and that update is lost: counters undercount, balances "
        "drift, lists drop entries."
    )
    example_before = """\
import asyncio


class Counter:
    def __init__(self):
        self.value = 0

    async def bump(self):
        current = self.value
        await asyncio.sleep(0)
        self.value = current + 1
"""
    example_after = """\
import asyncio


class Counter:
    def __init__(self):
        self._value_lock = asyncio.Lock()
        self.value = 0

    async def bump(self):
        async with self._value_lock:
            current = self.value
            await asyncio.sleep(0)
            self.value = current + 1
"""
    fix_safety_note = LOCK_FIX_NOTE

    def _report(self, race: Race, fix: Fix | str) -> None:
        shown = _shown(race)
        message = (
            f"lost update: `{shown}` is read before an `await` and written back from "
            "that value after it; an update another task makes in between is lost"
        )
        evidence = self._evidence(race, f"`{shown}` is read at line {{line}}")
        evidence.append((f"`{shown}` is written at line {{line}}", race.write))
        _report_with(self, race, message, fix, evidence)


class CheckThenAct(_RaceRule):
    code = "AF402"
    name = "check-then-act"
    summary = "shared state tested, then an `await`, then written: two tasks both pass the test"
    why = (
        "A test of shared state (`if self.client is None`, `if not self.connected`, a cache "
        "miss, an expiry check) only holds until the task suspends. When the code awaits "
        "before acting on the test, a second task can pass the same test meanwhile: both "
        "create the client, both refresh the token, both fetch the missing entry."
    )
    example_before = """\
class Api:
    def __init__(self, connect):
        self._connect = connect
        self._client = None

    async def client(self):
        if self._client is None:
            self._client = await self._connect()
        return self._client
"""
    example_after = """\
import asyncio


class Api:
    def __init__(self, connect):
        self._client_lock = asyncio.Lock()
        self._connect = connect
        self._client = None

    async def client(self):
        async with self._client_lock:
            if self._client is None:
                self._client = await self._connect()
        return self._client
"""
    fix_safety_note = LOCK_FIX_NOTE

    def _report(self, race: Race, fix: Fix | str) -> None:
        shown = _shown(race)
        where = f"inside `self.{race.via}()`" if race.via else "after it"
        message = (
            f"check-then-act: `{shown}` is tested, the task suspends, then "
            f"`{shown}` is written {where}; another task can pass the same test "
            "meanwhile"
        )
        evidence = self._evidence(race, f"`{shown}` is tested at line {{line}}")
        if not race.via:
            evidence.append((f"`{shown}` is written at line {{line}}", race.write))
        _report_with(self, race, message, fix, evidence)


def _report_with(
    rule: Rule,
    race: Race,
    message: str,
    fix: Fix | str,
    evidence: list[tuple[str, cst.CSTNode | None]],
) -> None:
    if isinstance(fix, str):
        rule.report(race.write, f"{message} (no fix: {fix})", None, evidence)
    else:
        rule.report(race.write, message, fix, evidence)


def lock_fix(
    ctx: Context, race: Race, races: list[Race], facts_by_class: dict[int, ClassFacts]
) -> Fix | str:
    """Wrap the statements from the read or test to the write in ``async with self.<lock>:``,
    creating the lock in ``__init__`` unless one already guards the attribute; or say why
    that is not offered."""
    other_loop = _other_event_loop(ctx)
    if other_loop is not None:
        return (
            f"the module uses {other_loop}, which may run on trio: an `asyncio.Lock` does not "
            f"work there (`{other_loop}.Lock`, made where the event loop runs, does)"
        )
    others = sorted(
        {
            _shown(r)
            for r in races
            if r.method is race.method and r.attribute != race.attribute and r.code in LOCKED
        }
    )
    if others:
        return (
            f"`{race.method.name.value}()` races on {', '.join(f'`{o}`' for o in others)} too: "
            "a lock for each would nest; decide which one lock guards them"
        )
    if race.attribute.startswith(NAME_KEY):
        return _module_lock_fix(ctx, race, races)
    if any(dotted_name(d.decorator) == "classmethod" for d in race.method.decorators):
        return "class-level state: create a class-level lock where the event loop runs"
    cls = _class_of(race.method, facts_by_class)
    if cls is None:
        return "the method's class is not known"
    facts = facts_by_class[id(cls)]
    receiver = self_name(race.method)
    assert receiver is not None
    statements = _region_statements(race)
    if isinstance(statements, str):
        return statements
    lock, create = _choose_lock(facts, race.attribute)
    if lock is None:
        assert isinstance(create, str)
        return create
    # never offer a lock that deadlocks
    for statement in statements:
        for node in in_order(statement):
            if (
                isinstance(node, cst.With)
                and node.asynchronous is not None
                and any(attribute_of(i.item, receiver) == lock for i in node.items)
            ):
                return f"the region already acquires `self.{lock}`"
            callee = awaited_self_method(node, receiver)
            if callee is None:
                continue
            chain = facts.acquires_transitively(callee, lock)
            if chain is None:
                chain = _racing_chain(facts, callee, race.attribute, races)
            if chain is not None:
                path = " -> ".join(f"{name}()" for name in chain)
                return (
                    f"the region awaits {path}, which takes `self.{lock}` too: a lock here "
                    "would deadlock"
                )
    if create:
        takers = sorted(
            {
                r.method.name.value
                for r in races
                if r.attribute == race.attribute and _class_of(r.method, facts_by_class) is cls
            }
        )
        if len(takers) > 1:
            return (
                f"the lock would be taken in {', '.join(f'{m}()' for m in takers)}: one task "
                "holding it while it awaits work another of them does would deadlock; decide "
                "where the lock belongs"
            )
    for statement in statements:
        for node in in_order(statement):
            if (
                isinstance(node, cst.Await)
                and attribute_of(node.expression, receiver) is not None
                and not isinstance(node.expression, cst.Call)
            ):
                return (
                    f"the region awaits `{source_of(node.expression)}`, which another task "
                    "completes: holding a lock while waiting for it may deadlock"
                )
    init = facts.methods.get("__init__")
    fix = Fix(Safety.UNSAFE, [])
    asyncio_name = ctx.module_name_for("asyncio", leading_only=True)
    if create and ctx.target < (3, 10):
        return (
            f"before Python 3.10 an `asyncio.Lock()` made in `__init__` binds to the event "
            f"loop of the thread that builds the object (and raises in a thread with none); "
            f"the project supports Python {ctx.target[0]}.{ctx.target[1]}, so create the lock "
            "where the loop runs"
        )
    if create:
        if init is None:
            reason = _cannot_add_init(ctx, cls)
            if reason:
                return reason
            made = _lock_statement("self", lock, asyncio_name)
            fix.class_init.append((cls, made))
            fix.changes.append(f"Added `__init__` creating `self.{lock} = asyncio.Lock()`")
        else:
            init_self = self_name(init.node) or "self"
            fix.function_prelude.append((init.node, _lock_statement(init_self, lock, asyncio_name)))
            fix.changes.append(f"Added `{init_self}.{lock} = asyncio.Lock()` to `__init__`")
        if asyncio_name is None:
            fix.add_imports.append(ImportItem("asyncio"))
    _wrap(fix, statements, cst.Attribute(value=cst.Name(receiver), attr=cst.Name(lock)))
    fix.changes.insert(
        0,
        f"Wrapped the {len(statements)} statement(s) from the "
        f"{'read' if race.code == 'AF401' else 'test'} to the write in "
        f"`async with self.{lock}:`",
    )
    return fix


#: the race rules whose fix is a lock
LOCKED = frozenset({"AF401", "AF402"})


def _other_event_loop(ctx: Context) -> str | None:
    """ "anyio" or "trio" when the module imports one of them and not asyncio: its code may
    run on trio, where an `asyncio.Lock` does not work."""
    imported = ctx.imported_packages()
    if "asyncio" in imported:
        return None
    return next((name for name in ("anyio", "trio") if name in imported), None)


def _module_lock_fix(ctx: Context, race: Race, races: list[Race]) -> Fix | str:
    """The lock fix for a module name: a module-level ``asyncio.Lock``."""
    name = race.attribute[len(NAME_KEY) :]
    if name in ctx.names.bindings(race.method).declared_nonlocal:
        return (
            f"`{name}` is a `nonlocal` of the enclosing function: the lock belongs there, "
            "next to it"
        )
    if ctx.target < (3, 10):
        return (
            "before Python 3.10 an `asyncio.Lock()` made at import time binds to the event "
            "loop running then; create it where the loop runs"
        )
    statements = _region_statements(race)
    if isinstance(statements, str):
        return statements
    lock = f"_{name.lower().lstrip('_')}_lock"
    module_bindings = ctx.names.bindings(ctx.module).bound
    existing = module_bindings.get(lock)
    create = True
    if existing:
        values = [b.value for b in existing]
        if all(
            isinstance(v, cst.Call)
            and ctx.names.qualified_name(v.func, [ctx.module]) == "asyncio.Lock"
            for v in values
        ):
            create = False
        else:
            lock = fresh_name(lock, set(module_bindings))
    racing = {r.method.name.value for r in races if r.attribute == race.attribute}
    for statement in statements:
        for node in in_order(statement):
            if (
                isinstance(node, cst.With)
                and node.asynchronous is not None
                and any(dotted_name(i.item) == lock for i in node.items)
            ):
                return f"the region already acquires `{lock}`"
            if isinstance(node, cst.Await) and isinstance(node.expression, cst.Call):
                callee = dotted_name(node.expression.func)
                if callee in racing and callee != race.method.name.value:
                    return (
                        f"the region awaits `{callee}()`, which needs `{lock}` too: a lock "
                        "here would deadlock"
                    )
    fix = Fix(Safety.UNSAFE, [])
    asyncio_name = ctx.module_name_for("asyncio", leading_only=True)
    if create:
        value = cst.Call(
            func=cst.Attribute(value=cst.Name(asyncio_name or "asyncio"), attr=cst.Name("Lock"))
        )
        fix.prelude[lock] = cst.SimpleStatementLine(
            [cst.Assign([cst.AssignTarget(cst.Name(lock))], value)]
        )
        fix.changes.append(f"Added `{lock} = asyncio.Lock()` at module level")
        if asyncio_name is None:
            fix.add_imports.append(ImportItem("asyncio"))
    _wrap(fix, statements, cst.Name(lock))
    fix.changes.insert(
        0,
        f"Wrapped the {len(statements)} statement(s) from the "
        f"{'read' if race.code == 'AF401' else 'test'} to the write in `async with {lock}:`",
    )
    return fix


def _region_statements(race: Race) -> list[cst.BaseStatement] | str:
    """The statements of one block from the read or test to the write, or why there are none
    a lock can go around."""
    region = _region(race.method, race.first.node, race.write)
    if region is None:
        return "the read and the write are not in one block"
    block, first, last = region
    statements = list(block.body[first : last + 1])
    if any(isinstance(n, cst.Yield) for s in statements for n in in_order(s)):
        return "the region yields: a lock held across `yield` stays held by the consumer"
    return statements


def _wrap(fix: Fix, statements: list[cst.BaseStatement], lock: cst.BaseExpression) -> None:
    head = statements[0]
    assert isinstance(head, (cst.SimpleStatementLine, cst.BaseCompoundStatement))
    wrapped = cst.With(
        items=[cst.WithItem(lock)],
        asynchronous=cst.Asynchronous(),
        body=cst.IndentedBlock(body=[head.with_changes(leading_lines=[]), *statements[1:]]),
        leading_lines=head.leading_lines,
    )
    fix.replace[head] = wrapped
    for statement in statements[1:]:
        fix.replace[statement] = cst.RemovalSentinel.REMOVE


def _class_of(
    method: cst.FunctionDef, facts_by_class: dict[int, ClassFacts]
) -> cst.ClassDef | None:
    for facts in facts_by_class.values():
        if any(m.node is method for m in facts.methods.values()):
            return facts.node
    return None


def _region(
    method: cst.FunctionDef, first: cst.CSTNode, write: cst.CSTNode
) -> tuple[cst.IndentedBlock, int, int] | None:
    """The block holding both nodes, and the indices of the statements holding each."""
    parents = parent_map(method.body)

    def chain(node: cst.CSTNode) -> list[cst.CSTNode]:
        out = [node]
        while id(out[-1]) in parents:
            out.append(parents[id(out[-1])])
        return out

    first_chain, write_chain = chain(first), chain(write)
    for index, ancestor in enumerate(first_chain):
        if not isinstance(ancestor, cst.IndentedBlock) or index == 0:
            continue
        if not any(a is ancestor for a in write_chain):
            continue
        first_statement = first_chain[index - 1]
        write_statement = write_chain[
            next(i for i, a in enumerate(write_chain) if a is ancestor) - 1
        ]
        body = list(ancestor.body)
        i = next((k for k, s in enumerate(body) if s is first_statement), None)
        j = next((k for k, s in enumerate(body) if s is write_statement), None)
        if i is None or j is None or i > j:
            return None
        return ancestor, i, j
    return None


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
    taken = set(facts.constructors) | set(facts.methods) | _class_attributes(facts.node)
    return fresh_name(name, taken), True


def _class_attributes(cls: cst.ClassDef) -> set[str]:
    names: set[str] = set()
    body = cls.body.body if isinstance(cls.body, cst.IndentedBlock) else ()
    for statement in body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                targets = (
                    [t.target for t in small.targets]
                    if isinstance(small, cst.Assign)
                    else [small.target]
                    if isinstance(small, cst.AnnAssign)
                    else []
                )
                names.update(t.value for t in targets if isinstance(t, cst.Name))
    return names


def _cannot_add_init(ctx: Context, cls: cst.ClassDef) -> str | None:
    name = cls.name.value
    if name.endswith("Mixin") or name.startswith(("Base", "Abstract")) or name.endswith("Base"):
        return (
            f"`{name}` is made to be subclassed: a new `__init__` would not run for subclasses "
            "that define their own without `super().__init__()`"
        )
    project = ctx.project
    fact = project.index.class_(f"{project.module.name}.{name}") if project else None
    if fact is not None and project is not None and project.index.has_subclasses(fact):
        return (
            f"`{name}` has subclasses: a new `__init__` would not run for those that define "
            "their own without `super().__init__()`"
        )
    bases = [dotted_name(arg.value) for arg in cls.bases]
    if any(base not in ("object",) for base in bases) or cls.keywords:
        return (
            f"`{cls.name.value}` has no `__init__` and has base classes: where to create the "
            "lock needs their constructor"
        )
    if cls.decorators:
        return f"`{cls.name.value}` is decorated (a dataclass?): add the lock where it is built"
    if "__slots__" in _class_attributes(cls):
        return f"`{cls.name.value}` declares `__slots__`"
    return None


def _lock_statement(receiver: str, lock: str, asyncio_name: str | None) -> cst.SimpleStatementLine:
    value = cst.Call(
        func=cst.Attribute(value=cst.Name(asyncio_name or "asyncio"), attr=cst.Name("Lock"))
    )
    target = cst.Attribute(value=cst.Name(receiver), attr=cst.Name(lock))
    return cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(target)], value)])


def _racing_chain(
    facts: ClassFacts, method: str, attribute: str, races: list[Race]
) -> list[str] | None:
    """The awaited self methods from ``method`` to one that has its own race on
    ``attribute`` (its fix would take the same lock)."""
    racing = {r.method.name.value for r in races if r.attribute == attribute}
    seen: set[str] = set()

    def search(name: str) -> list[str] | None:
        if name in seen or name not in facts.methods:
            return None
        seen.add(name)
        if name in racing:
            return [name]
        for callee in sorted(facts.methods[name].awaits):
            found = search(callee)
            if found is not None:
                return [name, *found]
        return None

    return search(method)


class AwaitInAugmentedAssign(Rule):
    code = "AF403"
    name = "await-in-augmented-assign"
    summary = "`self.x += await f()`: the old value is read before the `await`"
    why = (
        "Python reads `self.total` before it evaluates `await f()`. While the task is "
        "suspended another task updates `self.total`; the addition then uses the old value "
        "and the other update is lost."
    )
    example_before = """\
class Meter:
    def __init__(self, source):
        self.source = source
        self.total = 0

    async def sample(self):
        self.total += await self.source.read()
"""
    example_after = """\
class Meter:
    def __init__(self, source):
        self.source = source
        self.total = 0

    async def sample(self):
        result = await self.source.read()
        self.total += result
"""
    fix_safety = Safety.SAFE
    fix_safety_note = (
        "Safe: the awaited value is computed first into a fresh local, then the update reads "
        "and writes the attribute with no suspension in between. Offered when the `await` is "
        "the whole right-hand side or an operand of arithmetic whose other operands make no "
        "calls (so nothing else changes order), and the statement stands on its own line."
    )
    severity = Severity.HIGH
    kind = "Race on shared state"
    needles = ("await",)

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        return race_shapes(tree, SERIALIZED_BASES).augmented

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._check(node, node.target, node.value, augmented=True)

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1:
            self._check(node, node.targets[0].target, node.value, augmented=False)

    def _check(
        self,
        node: cst.AugAssign | cst.Assign,
        target: cst.BaseExpression,
        value: cst.BaseExpression,
        augmented: bool,
    ) -> None:
        ctx = self.ctx
        if not ctx.in_async_body():
            return
        awaits = suspensions(value)
        if not awaits:
            return
        shared = self._shared(target)
        if shared is None or self._in_place(node, target):
            return
        if not augmented and not _reads_before(value, target, awaits[0]):
            return
        message = (
            f"`{shared}` is read before the `await` and written after it: an update another "
            "task makes while this one is suspended is lost"
        )
        fix = self._fix(node, value, awaits) if len(awaits) == 1 else None
        self.report(
            node,
            message if fix else message + " (no fix: more than one `await` or a reordering call)",
            fix,
            [(f"`{shared}` is shared: another task can update it", None)],
        )

    def _in_place(self, node: cst.AugAssign | cst.Assign, target: cst.BaseExpression) -> bool:
        """``self.seen |= await f()`` on a set, ``self.items += await f()`` on a list: the
        object is updated in place, so nothing another task added to it is lost."""
        if isinstance(node, cst.AugAssign) and isinstance(
            node.operator, (cst.BitOrAssign, cst.BitAndAssign, cst.BitXorAssign)
        ):
            return True
        cls = self.ctx.enclosing_class()
        function = self.ctx.enclosing_function()
        if cls is None or function is None or not isinstance(target, cst.Attribute):
            return False
        receiver = self_name(function)
        attribute = write_target(target, receiver) if receiver else None
        if attribute is None:
            return False
        _, facts_by_class = _analysis(self.ctx)
        facts = facts_by_class.get(id(cls))
        kinds = facts.constructors.get(attribute, set()) if facts is not None else set()
        return bool(kinds) and kinds <= MUTABLE

    def _shared(self, target: cst.BaseExpression) -> str | None:
        """How a shared target is spelled: ``self.x``/``self.x[k]``, a ``global`` or
        ``nonlocal`` name; None for locals."""
        function = self.ctx.enclosing_function()
        if function is None:
            return None
        receiver = self_name(function) if self.ctx.enclosing_class() is not None else None
        if receiver is not None and write_target(target, receiver) is not None:
            return source_of(target)
        if isinstance(target, cst.Name):
            bindings = self.ctx.names.bindings(function)
            if target.value in bindings.declared_global | bindings.declared_nonlocal:
                return target.value
        return None

    def _fix(
        self, node: cst.AugAssign | cst.Assign, value: cst.BaseExpression, awaits: list[cst.CSTNode]
    ) -> Fix | None:
        ctx = self.ctx
        (awaited,) = awaits
        if not _hoistable(value, awaited):
            return None
        line = ctx.parent()
        if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
            return None
        if not isinstance(ctx.parent(line), cst.IndentedBlock):
            return None
        function = ctx.enclosing_function()
        assert function is not None
        name = fresh_name("result", set(ctx.names.occurrences(function)))
        assert isinstance(awaited, cst.Await)
        first = cst.SimpleStatementLine(
            [
                cst.Assign(
                    targets=[cst.AssignTarget(cst.Name(name))],
                    value=awaited.with_changes(lpar=[], rpar=[]),
                )
            ],
            leading_lines=line.leading_lines,
        )
        updated = line.with_changes(
            body=[node.deep_replace(awaited, cst.Name(name))], leading_lines=[]
        )
        assert isinstance(updated, cst.SimpleStatementLine)
        return Fix(
            Safety.SAFE,
            [f"Moved `{_brief(awaited)}` into `{name}` on the line before the update"],
            {line: cst.FlattenSentinel([first, updated])},
        )


def _reads_before(
    value: cst.BaseExpression, target: cst.BaseExpression, first_await: cst.CSTNode
) -> bool:
    """``value`` reads the target (``self.x = self.x + await f()``) before its first await."""
    spelled = source_of(target)
    for node in in_order(value):
        if node is first_await:
            return False
        if (
            isinstance(node, (cst.Name, cst.Attribute, cst.Subscript))
            and source_of(node) == spelled
        ):
            return True
    return False


def _hoistable(value: cst.BaseExpression, awaited: cst.CSTNode) -> bool:
    """The await is ``value`` itself or reached through arithmetic only, and nothing else in
    ``value`` calls a function (which would now run after the await instead of before)."""
    path: list[cst.CSTNode] = []

    def find(node: cst.CSTNode) -> bool:
        if node is awaited:
            return True
        if isinstance(node, cst.BinaryOperation):
            for side in (node.left, node.right):
                path.append(node)
                if find(side):
                    return True
                path.pop()
        return False

    if not find(value):
        return False
    for node in in_order(value):
        if node is awaited:
            continue
        if isinstance(node, cst.Call) and not _inside(node, awaited):
            return False
    return True


def _inside(node: cst.CSTNode, container: cst.CSTNode) -> bool:
    return any(child is node for child in in_order(container))


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

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        return may_reenter_lock(tree)

    def finish(self) -> None:
        _, facts_by_class = _analysis(self.ctx)
        for facts in facts_by_class.values():
            for method in facts.methods.values():
                receiver = self_name(method.node)
                if receiver is not None:
                    self._method(facts, method.node, receiver)

    def _method(self, facts: ClassFacts, method: cst.FunctionDef, receiver: str) -> None:
        for node in in_order(method.body):
            if not isinstance(node, cst.With) or node.asynchronous is None:
                continue
            for item in node.items:
                lock = attribute_of(item.item, receiver)
                if lock is None or facts.lock_kind(lock) != "asyncio.Lock":
                    continue
                for inner in in_order(node.body):
                    if isinstance(inner, cst.With) and inner.asynchronous is not None:
                        if any(attribute_of(i.item, receiver) == lock for i in inner.items):
                            self.report(
                                inner,
                                f"`async with self.{lock}` while already holding it: "
                                "`asyncio.Lock` is not re-entrant, this waits forever",
                                None,
                                [(f"`self.{lock}` first acquired at line {{line}}", node)],
                            )
                        continue
                    callee = awaited_self_method(inner, receiver)
                    if callee is None:
                        continue
                    chain = facts.acquires_transitively(callee, lock)
                    if chain is None:
                        continue
                    path = " -> ".join(f"{name}()" for name in [method.name.value, *chain])
                    self.report(
                        inner,
                        f"deadlock: `{_brief(inner)}` runs while `self.{lock}` is held and "
                        f"acquires it again ({path} -> async with self.{lock}); "
                        "`asyncio.Lock` is not re-entrant",
                        None,
                        [(f"`self.{lock}` acquired at line {{line}}", node)],
                    )


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

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        return may_hold_thread_lock_across_await(tree)

    def visit_With(self, node: cst.With) -> None:
        ctx = self.ctx
        if node.asynchronous is not None or not ctx.in_async_body():
            return
        for item in node.items:
            kind = self._thread_lock(item.item)
            if kind is None:
                continue
            awaits = suspensions(node.body)
            if not awaits:
                continue
            spelled = source_of(item.item)
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
                item.item,
                f"`with {spelled}:` holds a `{kind}` across `{_brief(awaits[0])}`: {harm}",
                None,
                [
                    (f"`{spelled}` is a `{kind}`", None),
                    ("the task suspends at line {line} while holding it", awaits[0]),
                ],
            )

    def _thread_lock(self, expr: cst.BaseExpression) -> str | None:
        ctx = self.ctx
        cls = ctx.enclosing_class()
        function = ctx.enclosing_function()
        if cls is not None and function is not None:
            receiver = self_name(function)
            if receiver is not None and isinstance(expr, cst.Attribute):
                attribute = attribute_of(expr, receiver)
                if attribute is not None and expr.attr.value == attribute:
                    _, facts_by_class = _analysis(ctx)
                    facts = facts_by_class.get(id(cls))
                    kind = facts.lock_kind(attribute) if facts is not None else None
                    return kind if kind in THREAD_LOCKS else None
        if isinstance(expr, cst.Name):
            found = ctx.lookup(expr.value)
            if found is None:
                return None
            kinds = set()
            for binding in found[1]:
                value = binding.value
                if binding.kind != "assign" or not isinstance(value, cst.Call):
                    return None
                kinds.add(ctx.qualified_name(value.func))
            if len(kinds) == 1:
                (kind,) = kinds
                return kind if kind in THREAD_LOCKS else None
        return None
