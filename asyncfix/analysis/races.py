"""Shared state across an ``await``: the analysis behind AF401, AF402, AF403, AF405, AF406.

asyncio switches tasks only where a coroutine suspends: ``await``, ``async for``, ``async
with``. A race needs a path on which shared state is read (AF401) or tested (AF402), then
the task suspends, then the same state is written from what was read or tested. Without a
suspension in between the code is atomic, however racy it looks.

Shared state here is an attribute of ``self`` (``self.x``, and ``self.x[key]`` as the same
location ``x``) in an ``async def`` method, and the module names a function shares with
other tasks (``global`` names, module dicts). The walk goes through a method's statements in
order, keeping an *epoch* that grows at every suspension:

- a local assigned from an expression that reads ``self.x`` remembers ``x`` and the epoch;
- an ``if`` whose test reads ``self.x`` makes ``x`` *known* in its body (and after it, when
  the body always leaves: ``if self.token: return self.token``), with the epoch;
- a write of ``self.x`` (``=``, ``+=``, ``self.x[k] = ...``; or an awaited ``self.m()`` that
  writes ``x`` after suspending itself) from a local that remembers an older epoch is a lost
  update; a write of a known ``x`` whose test is older than the write is check-then-act.

``async with <lock>:`` regions: a read or test and a write made under the same acquisition
of the same lock are protected. Branches are walked separately and merged (a finding needs
one path); a loop body is walked once; nested functions are not entered.

A method can also run one call at a time without a lock of its own (``held_by_callers``,
``_runs_alone``): every caller awaits it holding one lock (or a task made of it that the
caller awaits at once, or gathers with ``return_exceptions=True``: without that, ``gather``
leaves the other tasks running when one fails); a framework calls it under its own
lock or once (``data/serialized_classes.toml``: Home Assistant's flows, coordinator refreshes,
entity lifecycle hooks), or a method that only such a method awaits; one task runs it, started
once. Such a method races only with another method that sets the same state meanwhile (a
callback): reported naming it, without the lock fix. Lost updates through async getter/setter
pairs are ``analysis/accessors.py``.

Everything here reads the stdlib tree of the module's semantic model; the lock fix
(``codemods/race_fix.py``) plans on it too and is built on LibCST only when applied.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from asyncfix.analysis.catalogue import gathers_everything
from asyncfix.analysis.classes import self_name
from asyncfix.analysis.model import (
    COMPOUND,
    NESTED,
    TRY,
    holding_list,
    in_order,
    is_plain_assignment,
)
from asyncfix.analysis.scopes import Scope
from asyncfix.analysis.values import flatten_target, own_attribute
from asyncfix.index import ast_dotted_name, child_nodes

if TYPE_CHECKING:
    from asyncfix.analysis.accessors import Accessor
    from asyncfix.analysis.model import SemanticModel

Function = ast.FunctionDef | ast.AsyncFunctionDef

#: values that ``+=``/``|=`` update in place: no update of the object is lost across an await
MUTABLE = frozenset(
    {
        "builtins.list",
        "builtins.dict",
        "builtins.set",
        "collections.defaultdict",
        "collections.deque",
        "collections.OrderedDict",
        "collections.Counter",
    }
)
THREAD_LOCKS = frozenset({"threading.Lock", "threading.RLock"})

#: keys of shared module names (``global``/``nonlocal`` names, module dicts) start with this;
#: keys of ``self`` attributes are the attribute's name
NAME_KEY = "$"


class Line(ast.stmt):
    """Simple statements that share lines (``a = self.x; await f(); self.x = a``): one line
    of code, as LibCST's ``SimpleStatementLine`` -- where a finding is and what a fix wraps.
    Not part of the tree: it spans its statements."""

    _fields = ()

    def __init__(self, statements: tuple[ast.stmt, ...]) -> None:
        super().__init__(
            lineno=statements[0].lineno,
            col_offset=statements[0].col_offset,
            end_lineno=statements[-1].end_lineno,
            end_col_offset=statements[-1].end_col_offset,
        )
        self.statements = statements


#: where a write is: a statement, the line of statements it shares, or an awaited call
Where = ast.stmt | ast.expr


def first_node(where: Where) -> Where:
    return where.statements[0] if isinstance(where, Line) else where


@dataclass(frozen=True)
class Mark:
    """Where shared state was read or tested: the node, the epoch, the locks held."""

    node: ast.stmt
    epoch: int
    held: frozenset[int]
    #: for a test of a local assigned from the shared state (``token = self._token`` ...
    #: ``if token is None:``): that assignment, where a lock must begin to cover the read
    origin: ast.stmt | None = None
    #: the flags the method had claimed when the test was made (``State.exclusive``)
    exclusive: frozenset[str] = frozenset()


@dataclass
class State:
    epoch: int = 0
    #: local name -> (attribute, where it was read)
    locals: dict[str, tuple[str, Mark]] = field(default_factory=dict)
    #: attribute -> where it was tested
    known: dict[str, Mark] = field(default_factory=dict)
    #: acquisitions of locks held now: id -> the lock's spelling
    held: dict[int, str] = field(default_factory=dict)
    #: the path ends here (return/raise/break/continue)
    ended: bool = False
    #: tests (by node) whose work the method claimed before suspending: after them it tested
    #: an attribute and set it before any ``await`` (``if self._pending is None:
    #: self._pending = fut``, ``self._connecting = True``); other callers see the claim and
    #: do not repeat the work
    claims: set[int] = field(default_factory=set)
    #: flags the method claimed (tested, then set before suspending) and has not reset: while
    #: one is held, no other call of the method gets past its test, and what the method
    #: tests from then on no other call tests at the same time
    exclusive: frozenset[str] = frozenset()

    def copy(self) -> State:
        return State(
            self.epoch,
            dict(self.locals),
            dict(self.known),
            dict(self.held),
            self.ended,
            set(self.claims),
            self.exclusive,
        )

    def mark(self, node: ast.stmt, origin: ast.stmt | None = None) -> Mark:
        """A test or read at ``node``, now."""
        return Mark(node, self.epoch, frozenset(self.held), origin, self.exclusive)


@dataclass
class Race:
    """One finding: ``code`` is AF401 (lost update) or AF402 (check-then-act)."""

    code: str
    attribute: str
    method: Function
    #: the read or test
    first: Mark
    #: the write (statement, line or awaited call)
    write: Where
    #: the suspension in between, for the message
    suspension: Where | None
    #: the write happens inside this awaited method (``await self.refresh()``)
    via: str | None = None
    #: a lost update through an accessor pair (``analysis/accessors.py``)
    accessor: Accessor | None = None
    #: why a lock in this method alone would not fix it (the fix is not offered)
    unfixable: str | None = None
    #: the other methods that set the state meanwhile, when they are what it races with
    #: (the method itself runs one call at a time)
    rivals: tuple[str, ...] = ()


@dataclass
class MethodFacts:
    node: Function
    #: attributes the method writes after it may have suspended (an awaited method does this
    #: to its caller's state)
    writes_after_suspending: set[str]
    #: attributes written anywhere
    writes: set[str]
    #: lock attributes it acquires with ``async with self.<lock>``
    acquires: set[str]
    #: self methods it awaits
    awaits: set[str]
    #: attributes it sets to something (not ``None``/``False``/an empty value: a reset)
    sets: set[str] = field(default_factory=set)


@dataclass
class ClassFacts:
    node: ast.ClassDef
    methods: dict[str, MethodFacts]
    #: attribute -> constructors assigned to it anywhere in the class ("?" for other values)
    constructors: dict[str, set[str]]
    #: attribute -> lock attributes some method holds (``async with self.<lock>``) while
    #: writing it
    guarded_by: dict[str, set[str]] = field(default_factory=dict)
    #: attributes some method sets to ``None`` (a lock made lazily may not exist yet)
    nullable: set[str] = field(default_factory=set)

    @cached_property
    def attributes(self) -> frozenset[str]:
        """Names the class body assigns (``class_attributes``), made once per class."""
        return frozenset(class_attributes(self.node))

    @cached_property
    def taken(self) -> frozenset[str]:
        """Names a new attribute of the class must not take: attributes assigned anywhere,
        methods, class attributes."""
        return frozenset(self.constructors) | frozenset(self.methods) | self.attributes

    def lock_kind(self, attribute: str) -> str | None:
        """``asyncio.Lock`` etc. when every value ``self.<attribute>`` gets is that."""
        kinds = self.constructors.get(attribute, set())
        return next(iter(kinds)) if len(kinds) == 1 else None

    def acquires_transitively(self, method: str, lock: str) -> list[str] | None:
        """The chain of awaited self methods from ``method`` to one that acquires ``lock``."""
        return self.chain(method, lambda name: lock in self.methods[name].acquires)

    def chain(self, method: str, wanted: Callable[[str], bool]) -> list[str] | None:
        """The awaited self methods from ``method`` (itself included) to the first one
        ``wanted`` says yes to, depth first in name order."""
        seen: set[str] = set()

        def search(name: str) -> list[str] | None:
            if name in seen or name not in self.methods:
                return None
            seen.add(name)
            if wanted(name):
                return [name]
            for callee in sorted(self.methods[name].awaits):
                found = search(callee)
                if found is not None:
                    return [name, *found]
            return None

        return search(method)


# -- how shared state is spelled -------------------------------------------------------------


def is_classmethod(function: Function) -> bool:
    return any(ast_dotted_name(d) == "classmethod" for d in function.decorator_list)


def first_parameter(function: Function) -> str | None:
    params = [*function.args.posonlyargs, *function.args.args]
    return params[0].arg if params else None


def attribute_of(node: ast.AST, receiver: str) -> str | None:
    """``x`` for ``self.x`` / ``self.x[k]`` / ``self.x.y``."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == receiver
        ):
            return node.attr
        node = node.value
    return None


def spelled(key: str, receiver: str | None = "self") -> str:
    """How a shared location is written in the source: ``self.x`` or ``COUNTER``."""
    return key[1:] if key.startswith(NAME_KEY) else f"{receiver or 'self'}.{key}"


def _own_attribute(node: ast.AST, receiver: str | None) -> str | None:
    """``x`` for ``self.x`` exactly (``receiver`` is the name of ``self``, if there is one)."""
    return own_attribute(node, receiver) if receiver is not None else None


def write_target(
    node: ast.AST, receiver: str | None, shared: frozenset[str] = frozenset()
) -> str | None:
    """The key of what an assignment target stores into: ``x`` for ``self.x``/``self.x[k]``,
    ``$X`` for a shared name ``X`` (``global X; X = ...``) or ``X[k]``."""
    if isinstance(node, ast.Attribute):
        return _own_attribute(node, receiver)
    if isinstance(node, ast.Name):
        return NAME_KEY + node.id if node.id in shared else None
    if isinstance(node, ast.Subscript):
        value = node.value
        if isinstance(value, ast.Name) and value.id in shared:
            return NAME_KEY + value.id
        return _own_attribute(value, receiver)
    return None


_SCOPES = (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef)


def reads_of(node: ast.AST, receiver: str | None, shared: frozenset[str] = frozenset()) -> set[str]:
    """Keys of the shared state an expression reads (not methods it calls: ``self.m()``)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, _SCOPES):
            continue
        if isinstance(current, ast.Call) and isinstance(current.func, ast.Attribute):
            func = current.func
            if isinstance(func.value, ast.Name) and func.value.id == receiver:
                stack.extend(current.args)
                stack.extend(keyword.value for keyword in current.keywords)
                continue  # `self.m(...)`: a method call, not a read of state
        own = _own_attribute(current, receiver)
        if own is not None:
            found.add(own)
            continue
        if isinstance(current, ast.Name):
            if current.id in shared:
                found.add(NAME_KEY + current.id)
            continue
        if isinstance(current, ast.Attribute):
            stack.append(current.value)  # not the attribute's own name
            continue
        stack.extend(child_nodes(current))
    return found


def entered_lock(context: ast.expr, asynchronous: bool) -> ast.expr | None:
    """The lock a ``with`` item takes: ``x`` of ``async with x:``, and of the pre-3.7 idiom
    ``with (await x):`` / ``with (yield from x):`` (a TypeError since Python 3.9, which AF404
    fixes into ``async with x:``: the region it meant to guard is taken as guarded)."""
    if asynchronous:
        return context
    if isinstance(context, (ast.Await, ast.YieldFrom)):
        return context.value
    return None


def lock_spelling(taken: ast.expr) -> str | None:
    """How a lock taken is named: ``self._lock``; ``self._locks[key]`` for one of a dict of
    locks (``defaultdict(asyncio.Lock)``) taken by key."""
    if isinstance(taken, ast.Subscript):
        base = ast_dotted_name(taken.value)
        return f"{base}[{ast.unparse(taken.slice)}]" if base is not None else None
    return ast_dotted_name(taken)


def guard_tests(
    test: ast.expr, receiver: str | None, shared: frozenset[str] = frozenset()
) -> set[str]:
    """Keys a test decides on: ``self.x`` itself is tested (``if self.x``, ``not self.x``,
    ``self.x is None``, ``key in self.x``, ``self.x <= now``, ``self.x == path``), possibly
    inside ``and``/``or``; the same for a shared name. ``self.x.y``, ``self.x.get(k)``,
    ``len(self.x)`` are not: they ask about something else the object holds."""
    found: set[str] = set()

    def direct(node: ast.expr) -> str | None:
        own = _own_attribute(node, receiver)
        if own is not None:
            return own
        if isinstance(node, ast.Name) and node.id in shared:
            return NAME_KEY + node.id
        return None

    def visit(node: ast.expr) -> None:
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                visit(value)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            visit(node.operand)
        elif isinstance(node, ast.Compare):
            if _state_comparison(node, receiver):
                return  # `self.state == State.OPEN`: a state machine's step, not a guard
            for operand in [node.left, *node.comparators]:
                name = direct(operand)
                if name is not None:
                    found.add(name)
        else:
            name = direct(node)
            if name is not None:
                found.add(name)

    visit(test)
    return found


_EQUALITY = (ast.Eq, ast.NotEq, ast.Is, ast.IsNot, ast.In, ast.NotIn)


def _state_comparison(node: ast.Compare, receiver: str | None) -> bool:
    """``self.state == State.OPEN``, ``self.phase in ("idle", "done")``: the attribute
    compared for equality with named constants or strings. Such tests step a state machine
    (a protocol's connection state), whose object one task drives; they are not the guard
    of lazy initialisation or a cache that AF402 is about (``is None`` still is)."""
    if not all(isinstance(op, _EQUALITY) for op in node.ops):
        return False
    others = [
        operand
        for operand in [node.left, *node.comparators]
        if _own_attribute(operand, receiver) is None
    ]
    return bool(others) and all(state_constant(other) for other in others)


def state_constant(node: ast.expr) -> bool:
    """A string, a named constant (``State.OPEN``, ``CONNECTED``), or a collection of them."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (str, bytes))
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return bool(node.elts) and all(state_constant(e) for e in node.elts)
    if isinstance(node, ast.Attribute):
        dotted = ast_dotted_name(node)
        head = (dotted or "").split(".", 1)[0]
        return dotted is not None and head[:1].isupper()  # `State.OPEN`, `HTTPState.X`
    if isinstance(node, ast.Name):
        return node.id.isupper() and len(node.id) > 1  # `CONNECTED`
    return False


def names_read(node: ast.AST) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Name):
            found.add(current.id)
        elif isinstance(current, ast.Attribute):
            stack.append(current.value)
        elif isinstance(current, _SCOPES):
            continue
        else:
            stack.extend(child_nodes(current))
    return found


def suspensions(node: ast.AST | list[ast.stmt]) -> list[ast.Await]:
    """The ``await`` expressions in ``node`` (not in nested functions), in source order."""
    if isinstance(node, _SCOPES):
        return []
    return [child for child in in_order(node) if isinstance(child, ast.Await)]


def awaited_self_method(node: ast.AST, receiver: str) -> str | None:
    """``m`` for ``await self.m(...)``."""
    if isinstance(node, ast.Await) and isinstance(node.value, ast.Call):
        return own_attribute(node.value.func, receiver)
    return None


# -- blocks of statements --------------------------------------------------------------------


class Blocks:
    """Which statement lists are indented blocks (not ``if x: a; b`` on the header's line,
    not the ``elif`` LibCST keeps in its ``if``), and the lines their statements are on."""

    def __init__(self, model: SemanticModel) -> None:
        self.model = model
        self._lines: dict[int, Line] = {}
        self._grouped: set[int] = set()

    def parent(self, node: ast.AST) -> ast.AST | None:
        return self.model.scopes.parents.get(id(node))

    def is_elif(self, node: ast.AST) -> bool:
        """``node`` is the ``elif`` of the ``if`` that holds it."""
        parent = self.parent(node)
        if not isinstance(node, ast.If) or not isinstance(parent, ast.If):
            return False
        if len(parent.orelse) != 1 or parent.orelse[0] is not node:
            return False
        source = self.model.source
        text = source.lines[node.lineno - 1]
        return text[source.column(node.lineno, node.col_offset) :].startswith("elif")

    def is_block(self, parent: ast.AST, body: list[ast.stmt]) -> bool:
        """``body`` (a list of ``parent``) is an indented block of statements."""
        if not body or isinstance(parent, ast.Module):
            return False
        if body is getattr(parent, "orelse", None) and self.is_elif(body[0]):
            return False
        first = body[0]
        source = self.model.source
        text = source.lines[first.lineno - 1]
        return not text[: source.column(first.lineno, first.col_offset)].strip()

    def line_of(self, statement: ast.stmt, body: list[ast.stmt], indented: bool) -> Where:
        """The line ``statement`` (of ``body``) is on: itself, or the ``Line`` of the simple
        statements it shares lines with in an indented block."""
        if not indented or isinstance(statement, COMPOUND):
            return statement
        if id(body[0]) not in self._grouped:
            self._group(body)
        return self._lines.get(id(statement), statement)

    def _group(self, body: list[ast.stmt]) -> None:
        self._grouped.add(id(body[0]))
        run: list[ast.stmt] = []
        for statement in [*body, None]:
            joins = (
                statement is not None
                and run
                and not isinstance(statement, COMPOUND)
                and statement.lineno == run[-1].end_lineno
            )
            if joins:
                assert statement is not None
                run.append(statement)
                continue
            if len(run) > 1:
                line = Line(tuple(run))
                for member in run:
                    self._lines[id(member)] = line
            run = (
                [statement] if statement is not None and not isinstance(statement, COMPOUND) else []
            )

    def lines(self, body: list[ast.stmt], start: int, stop: int) -> list[Where]:
        """The lines of ``body[start:stop]``, each once."""
        out: list[Where] = []
        for statement in body[start:stop]:
            line = self.line_of(statement, body, True)
            if not out or out[-1] is not line:
                out.append(line)
        return out

    def line_bounds(self, body: list[ast.stmt], index: int) -> tuple[int, int]:
        """The indices in ``body`` of the first and last statement on ``body[index]``'s line."""
        line = self.line_of(body[index], body, True)
        if not isinstance(line, Line):
            return index, index
        first = next(i for i, s in enumerate(body) if s is line.statements[0])
        return first, first + len(line.statements) - 1

    def contains(self, statements: Sequence[ast.stmt], node: ast.AST, stop: ast.AST) -> bool:
        """``node`` is one of ``statements`` or inside one (looking up to ``stop``)."""
        wanted = {id(s) for s in statements}
        current: ast.AST | None = node
        while current is not None and current is not stop:
            if id(current) in wanted:
                return True
            current = self.parent(current)
        return False

    def region(
        self, method: Function, first: ast.AST, write: ast.AST
    ) -> tuple[list[ast.stmt], int, int] | None:
        """The indented block of ``method`` holding both nodes, and the indices of the
        first and last statement from the line holding ``first`` to the one holding
        ``write``."""
        write_chain = self._chain(write, method)
        child = first
        for ancestor in self._chain(first, method)[1:]:
            body = holding_list(ancestor, child)
            if body is not None and self.is_block(ancestor, body):
                holder = next((s for s in write_chain if any(s is b for b in body)), None)
                if holder is not None:
                    i = next(k for k, s in enumerate(body) if s is child)
                    j = next(k for k, s in enumerate(body) if s is holder)
                    if i > j:
                        return None
                    return body, self.line_bounds(body, i)[0], self.line_bounds(body, j)[1]
            child = ancestor
        return None

    def _chain(self, node: ast.AST, stop: ast.AST) -> list[ast.AST]:
        out = [node]
        while out[-1] is not stop:
            parent = self.parent(out[-1])
            if parent is None:
                break
            out.append(parent)
        return out


# -- facts about a class -------------------------------------------------------------------


#: the nodes ``class_facts`` looks at
_SUSPENDING = frozenset({ast.Await, ast.AsyncFor, ast.AsyncWith})
_ASSIGNING = frozenset(
    {ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor, ast.withitem}
)


def class_facts(node: ast.ClassDef, races: Races) -> ClassFacts:
    """What each method of ``node`` writes, acquires and awaits; what each attribute holds."""
    qualified = races.model.scopes.qualified_name
    awaits = races.awaits
    methods: dict[str, MethodFacts] = {}
    constructors: dict[str, set[str]] = {}
    guarded: dict[str, set[str]] = {}
    nullable: set[str] = set()
    for statement in node.body:
        if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        receiver = self_name(statement)
        if receiver is None:
            continue
        facts = MethodFacts(statement, set(), set(), set(), set())
        suspended = False
        for child in in_order(statement.body):
            kind = type(child)
            if kind in _SUSPENDING:
                suspended = True
                method = awaited_self_method(child, receiver)
                if method is not None:
                    facts.awaits.add(method)
            elif kind not in _ASSIGNING:
                continue
            if isinstance(child, (ast.AsyncWith, ast.With)):
                for item in child.items:
                    taken = entered_lock(item.context_expr, isinstance(child, ast.AsyncWith))
                    if isinstance(taken, ast.Subscript):
                        taken = taken.value  # `self._locks[key]`: one of the locks it holds
                    lock = attribute_of(taken, receiver) if taken is not None else None
                    if lock is not None and isinstance(taken, ast.Attribute):
                        facts.acquires.add(lock)
                        for inner in in_order(child.body):
                            for target, _ in assignments(inner):
                                written = write_target(target, receiver)
                                if written is not None:
                                    guarded.setdefault(written, set()).add(lock)
            for target, value in assignments(child):
                attribute = write_target(target, receiver)
                if attribute is None:
                    continue
                facts.writes.add(attribute)
                if not resets(value):
                    facts.sets.add(attribute)
                if (suspended or (value is not None and awaits(value))) and not resets(value):
                    facts.writes_after_suspending.add(attribute)
                if isinstance(target, ast.Attribute) and not isinstance(child, ast.AugAssign):
                    made = "?"
                    if isinstance(value, ast.Call):
                        made = qualified(value.func) or "?"
                    elif isinstance(value, (ast.List, ast.ListComp)):
                        made = "builtins.list"
                    elif isinstance(value, (ast.Dict, ast.DictComp)):
                        made = "builtins.dict"
                    elif isinstance(value, (ast.Set, ast.SetComp)):
                        made = "builtins.set"
                    elif isinstance(value, ast.Constant) and value.value is None:
                        nullable.add(attribute)
                        continue
                    constructors.setdefault(attribute, set()).add(made)
        methods[statement.name] = facts
    return ClassFacts(node, methods, constructors, guarded, nullable)


def assignments(node: ast.AST) -> Iterator[tuple[ast.expr, ast.expr | None]]:
    """The targets ``node`` stores into, each with the value it gets when that is known."""
    if isinstance(node, ast.Assign):
        for target in node.targets:
            for element in flatten_target(target):
                yield element, node.value if element is target else None
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        yield node.target, node.value
    elif isinstance(node, ast.AugAssign):
        yield node.target, None
    elif isinstance(node, (ast.For, ast.AsyncFor)):
        for element in flatten_target(node.target):
            yield element, None
    elif isinstance(node, ast.withitem) and node.optional_vars is not None:
        for element in flatten_target(node.optional_vars):
            yield element, None


def class_attributes(cls: ast.ClassDef) -> set[str]:
    """Names a class body assigns (``x = ...``, ``x: T = ...``, ``x: T``)."""
    names: set[str] = set()
    for statement in cls.body:
        if isinstance(statement, ast.Assign):
            names.update(t.id for t in statement.targets if isinstance(t, ast.Name))
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            names.add(statement.target.id)
    return names


# -- the walk over one method ----------------------------------------------------------------


class MethodWalk:
    """Finds AF401/AF402 races in one ``async def`` method of a class (or function)."""

    def __init__(
        self,
        races: Races,
        method: Function,
        receiver: str | None,
        facts: ClassFacts | None,
        follow: bool = True,
        shared: frozenset[str] = frozenset(),
        held: str | None = None,
    ) -> None:
        self.blocks = races.blocks
        #: a lock every caller of the method holds around the call (``self._lock``)
        self.held = held
        self.awaits = races.awaits
        self.method = method
        self.receiver = receiver
        #: module names this function shares with other tasks (see ``shared_names``)
        self.shared = shared
        self.facts = facts
        #: follow awaited ``self.m()`` into what ``m`` writes (off while those facts are made)
        self.follow = follow
        self.races: list[Race] = []
        #: attributes written, on some path, after the method may have suspended
        self.writes_after: set[str] = set()
        self._acquisitions = 0
        #: the suspension that last moved the epoch
        self._last_suspension: Where | None = None
        #: inside an ``except`` handler or ``finally`` block: a write there restores state or
        #: reacts to a failure; it is not the update or the act of a race
        self._in_handler = 0

    def run(self) -> list[Race]:
        state = State()
        if self.held is not None:
            state.held[0] = self.held  # taken before the method runs, released after it
        self._block(self.method, self.method.body, state)
        return self.races

    # statements

    def _block(self, parent: ast.AST, body: list[ast.stmt], state: State) -> State:
        indented = self.blocks.is_block(parent, body)
        for statement in body:
            if state.ended:
                break
            state = self._statement(
                statement, state, self.blocks.line_of(statement, body, indented)
            )
        return state

    def _statement(self, node: ast.stmt, state: State, line: Where) -> State:
        if isinstance(node, ast.If):
            return self._if(node, state)
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            if isinstance(node, ast.While):
                state = self._expression(node.test, state)
            else:
                state = self._expression(node.iter, state)
                if isinstance(node, ast.AsyncFor):
                    state = self._suspend(state, node)
            inner = self._block(node, node.body, state.copy())
            inner.ended = False
            merged = _merge(state, inner)
            if isinstance(node, ast.While):
                # the loop ends right after its test ran: what it tests is fresh
                # (`while self.value <= 0: await ...` then `self.value -= 1`)
                mark = merged.mark(node)
                for attribute in guard_tests(node.test, self.receiver, self.shared):
                    merged.known[attribute] = mark
            if node.orelse:
                merged = self._block(node, node.orelse, merged)
            return merged
        if isinstance(node, (ast.With, ast.AsyncWith)):
            return self._with(node, state)
        if isinstance(node, TRY):
            return self._try(cast(ast.Try, node), state)  # `TryStar` has the same fields
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return state
        if isinstance(node, ast.Match):
            state = self._expression(node.subject, state)
            outcomes = [self._block(case, case.body, state.copy()) for case in node.cases]
            merged = state
            for outcome in outcomes:
                outcome.ended = False
                merged = _merge(merged, outcome)
            return merged
        return self._simple(node, state, line)

    def _try(self, node: ast.Try, state: State) -> State:
        after = self._block(node, node.body, state.copy())
        outcomes = [after]
        for handler in node.handlers:
            caught = _merge(state, after)
            caught.ended = False
            self._in_handler += 1
            outcomes.append(self._block(handler, handler.body, caught))
            self._in_handler -= 1
        if node.orelse and not after.ended:
            outcomes[0] = self._block(node, node.orelse, after)
        # paths that left (return/raise) carry nothing to the code after the try
        going_on = [outcome for outcome in outcomes if not outcome.ended]
        merged = going_on[0] if going_on else outcomes[0]
        for other in going_on[1:]:
            merged = _merge(merged, other)
        merged.ended = not going_on
        if node.finalbody:
            ended = merged.ended
            merged.ended = False
            self._in_handler += 1  # `finally: self.x = saved` restores
            merged = self._block(node, node.finalbody, merged)
            self._in_handler -= 1
            merged.ended = merged.ended or ended
        return merged

    def _if(self, node: ast.If, state: State) -> State:
        state = self._expression(node.test, state)
        tested = guard_tests(node.test, self.receiver, self.shared)
        mark = state.mark(node)
        marks = dict.fromkeys(tested, mark)
        # names assigned from shared state and tested here count as tests of that state,
        # read where the name was assigned
        origins: dict[str, ast.stmt] = {}
        for name in names_read(node.test):
            if name in state.locals:
                attribute, read = state.locals[name]
                if attribute in tested:
                    continue  # tested itself too: the test is where it is read
                earlier = origins.get(attribute)
                if earlier is None or (read.node.lineno, read.node.col_offset) < (
                    earlier.lineno,
                    earlier.col_offset,
                ):
                    origins[attribute] = read.node  # the first of the reads that feed it
        for attribute, origin in origins.items():
            marks[attribute] = state.mark(node, origin)
        then = state.copy()
        for attribute, tested_mark in marks.items():
            then.known[attribute] = tested_mark
        then = self._block(node, node.body, then)
        otherwise = state.copy()
        for attribute, tested_mark in marks.items():
            otherwise.known[attribute] = tested_mark
        if node.orelse:
            otherwise = self._block(node, node.orelse, otherwise)
        if then.ended and otherwise.ended:
            merged = _merge(then, otherwise)
            merged.ended = True
            return merged
        if then.ended:
            checked = held_lock_check(node.test)
            if checked is not None and not node.orelse:
                # `if not self._lock.locked(): raise ...`: the method runs under a lock its
                # caller took (a lock the task holds serialises it as one taken here)
                self._acquisitions += 1
                otherwise.held[self._acquisitions] = checked
            return otherwise
        if otherwise.ended:
            return then
        merged = _merge(then, otherwise)
        if not node.orelse:
            # after `if test: <no exit>` nothing is known from the test
            for attribute, tested_mark in marks.items():
                if merged.known.get(attribute) is tested_mark:
                    del merged.known[attribute]
        return merged

    def _with(self, node: ast.With | ast.AsyncWith, state: State) -> State:
        acquired: list[int] = []
        for item in node.items:
            state = self._expression(item.context_expr, state)
        asynchronous = isinstance(node, ast.AsyncWith)
        if asynchronous:
            state = self._suspend(state, node)
        for item in node.items:
            taken = entered_lock(item.context_expr, asynchronous)
            lock = lock_spelling(taken) if taken is not None else None
            if lock is not None:
                self._acquisitions += 1
                acquired.append(self._acquisitions)
                state.held[self._acquisitions] = lock
        state = self._block(node, node.body, state)
        for acquisition in acquired:
            state.held.pop(acquisition, None)
        if asynchronous and not state.ended:
            state = self._suspend(state, node)
        return state

    def _simple(self, node: ast.stmt, state: State, line: Where) -> State:
        if isinstance(node, (ast.Return, ast.Raise)):
            value = node.value if isinstance(node, ast.Return) else node.exc
            if value is not None:
                state = self._expression(value, state)
            state.ended = True
            return state
        if isinstance(node, (ast.Break, ast.Continue)):
            state.ended = True
            return state
        if isinstance(node, ast.Expr):
            state = self._expression(node.value, state)
            self._helper_writes(node.value, state)
            return state
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            value = node.value
            before = state.epoch
            reads_before = (
                reads_of(value, self.receiver, self.shared) if value is not None else set()
            )
            if value is not None:
                state = self._expression(value, state)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                attribute = write_target(target, self.receiver, self.shared)
                if attribute is not None:
                    self._write(attribute, node, line, value, state)
                    continue
                for element in flatten_target(target):
                    if isinstance(element, ast.Name):
                        state.locals.pop(element.id, None)
                        shared = reads_before if value is not None else set()
                        # `device = await connect(self.device)` fetches a new value: not a
                        # read-modify-write of the old one
                        fetched = value is not None and bool(self.awaits(value))
                        if len(shared) == 1 and not fetched and not isinstance(node, ast.AugAssign):
                            (attribute,) = shared
                            state.locals[element.id] = (
                                attribute,
                                Mark(node, before, frozenset(state.held)),
                            )
            return state
        return state

    def _expression(self, node: ast.expr, state: State) -> State:
        released = lock_call(node, "release")
        if released is not None:
            for acquisition, lock in list(state.held.items()):
                if lock == released:
                    del state.held[acquisition]
        for suspension in self.awaits(node):
            state = self._suspend(state, suspension)
            acquired = lock_call(suspension, "acquire")
            if acquired is not None:
                # `await self._lock.acquire()`: held until `self._lock.release()`
                self._acquisitions += 1
                state.held[self._acquisitions] = acquired
            method = awaited_self_method(suspension, self.receiver) if self.receiver else None
            if method is not None and self.follow and self.facts is not None:
                callee = self.facts.methods.get(method)
                if callee is not None:
                    for attribute in sorted(callee.writes_after_suspending):
                        self._write(attribute, suspension, suspension, None, state, via=method)
        return state

    def _suspend(self, state: State, where: Where) -> State:
        state.epoch += 1
        self._last_suspension = where
        return state

    # writes

    def _write(
        self,
        attribute: str,
        node: ast.AST,
        line: Where,
        value: ast.expr | None,
        state: State,
        via: str | None = None,
    ) -> None:
        held = frozenset(state.held)
        if state.epoch > 0 and via is None and not resets(value):
            tested = state.known.get(attribute)
            # tested again under a lock still held (`async with self._lock: if self.x is
            # None: self.x = await load()`): a caller's own test of it is a fast path, and
            # the callers that pass it together load once
            if tested is None or not (tested.held & held):
                self.writes_after.add(attribute)
        fresh = state.known.get(attribute)
        if fresh is not None and fresh.epoch == state.epoch:
            # tested again since the last suspension (`if key not in self.cache:` right
            # before the write): the write acts on what is true now -- and when it sets
            # something, it claims the work for this task
            if not resets(value) or self._sets_what_was_tested_none(fresh, attribute, value):
                self._claim(attribute, state)
            else:
                state.exclusive -= {attribute}
            self._forget(attribute, state)
            return
        state.exclusive -= {attribute}  # a claimed flag set again (reset): others get in
        # `self.x |= new` combines what `self.x` holds when it is written: whatever another
        # task put there meanwhile stays (a value computed from an older read is not written
        # back over it)
        if value is not None and not self._in_handler and not isinstance(node, ast.AugAssign):
            for name in sorted(names_read(value)):
                source = state.locals.get(name)
                if source is None or source[0] != attribute:
                    continue
                read = source[1]
                if read.epoch < state.epoch and not (read.held & held) and not (held - read.held):
                    self._found("AF401", attribute, read, line, via)
                    break
        test = state.known.get(attribute)
        if (
            not self._in_handler  # an error path reacting to a failure is not the act
            and test is not None
            and test.epoch < state.epoch
            and not (test.held & held)  # tested and written in one acquisition of a lock
            and not (held - test.held)  # a lock taken since the test serialises the writers
            and not resets(value)
            and id(test.node) not in state.claims  # claimed before suspending: none repeats it
            and not (test.exclusive & state.exclusive)  # no other call is past the claim
            and self._acts_on_test(test, node, line, value)
        ):
            self._found("AF402", attribute, test, line, via)
        self._forget(attribute, state)

    def _acts_on_test(self, test: Mark, node: ast.AST, line: Where, value: ast.expr | None) -> bool:
        """The write is the act the test guards: it stores what the awaited work made
        (``self.token = await fetch()``, a value computed after it), updates the tested value
        (``self.balance -= amount``), or sets a flag in the block the test guards (``if not
        self.connected: await connect(); self.connected = True``) or after the early exit it
        guards (``if self.connected: return``, then the same). A flag set in another branch of
        the test (``if self.closed: return`` / ``elif ...: ...; self.closed = True``) steps a
        protocol object one task drives; not reported."""
        if isinstance(node, ast.AugAssign):
            return True
        if value is not None and not constant(value):
            return True
        guarded = test.node
        if not isinstance(guarded, (ast.If, ast.While)):
            return False
        blocks = self.blocks
        written = first_node(line)
        inside = list(guarded.body)
        if isinstance(guarded, ast.If) and guarded.orelse and not blocks.is_elif(guarded.orelse[0]):
            inside.extend(guarded.orelse)  # `if self.done: ... else: act; self.done = True`
        if blocks.contains(inside, written, self.method):
            return True
        parent = blocks.parent(guarded)
        if parent is None or blocks.is_elif(guarded):
            return False
        body = holding_list(parent, guarded)
        if body is None:
            return False
        at = next(i for i, statement in enumerate(body) if statement is guarded)
        return blocks.contains(body[at + 1 :], written, self.method)

    def _sets_what_was_tested_none(
        self, test: Mark, attribute: str, value: ast.expr | None
    ) -> bool:
        """``if self._partial is not None: raise ...`` then ``self._partial = []``: an empty
        value is not None, so the others' test now takes the other way -- a claim, though an
        empty value after a truth test would not be one."""
        if value is None or (isinstance(value, ast.Constant) and value.value is None):
            return False
        condition = getattr(test.node, "test", None)
        if condition is None or self.receiver is None:
            return False
        for node in ast.walk(condition):
            if (
                isinstance(node, ast.Compare)
                and len(node.ops) == 1
                and isinstance(node.ops[0], (ast.Is, ast.IsNot))
                and isinstance(node.comparators[0], ast.Constant)
                and node.comparators[0].value is None
                and attribute_of(node.left, self.receiver) == attribute
            ):
                return True
        return False

    def _claim(self, attribute: str, state: State) -> None:
        """The method set ``attribute`` right after testing it, before suspending: the tests
        made since the last suspension are its claim, and until it sets the flag again no
        other call of the method gets past that test."""
        state.claims.update(
            id(mark.node) for mark in state.known.values() if mark.epoch == state.epoch
        )
        state.exclusive |= {attribute}

    def _helper_writes(self, node: ast.expr, state: State) -> None:
        """``self._set_closed()``: a sync method of the class, called here, sets what it
        writes; a flag tested since the last suspension is claimed through it."""
        if (
            self.facts is None
            or not isinstance(node, ast.Call)
            or not isinstance(node.func, ast.Attribute)
            or not isinstance(node.func.value, ast.Name)
            or node.func.value.id != self.receiver
        ):
            return
        helper = self.facts.methods.get(node.func.attr)
        if helper is None or not isinstance(helper.node, ast.FunctionDef):
            return
        for attribute in sorted(helper.writes):
            fresh = state.known.get(attribute)
            if fresh is not None and fresh.epoch == state.epoch:
                self._claim(attribute, state)
                self._forget(attribute, state)

    def _forget(self, attribute: str, state: State) -> None:
        """After a write the attribute is fresh again: nothing read or tested before counts."""
        state.known.pop(attribute, None)
        for name in [n for n, (a, _) in state.locals.items() if a == attribute]:
            del state.locals[name]

    def _found(self, code: str, attribute: str, first: Mark, write: Where, via: str | None) -> None:
        if any(r.first.node is first.node and r.attribute == attribute for r in self.races):
            return
        self.races.append(
            Race(code, attribute, self.method, first, write, self._last_suspension, via)
        )


def constant(value: ast.expr) -> bool:
    """A literal or a named constant: setting it is a flag, not a computed value."""
    if isinstance(value, ast.Name):
        return value.id.isupper()
    if isinstance(value, ast.Constant):
        inner = value.value
        return inner is None or isinstance(inner, (bool, int, float, str, bytes))
    if isinstance(value, ast.UnaryOp):
        return constant(value.operand)
    return isinstance(value, ast.Attribute) and state_constant(value)


def held_lock_check(test: ast.expr) -> str | None:
    """``x.y`` for ``not x.y.locked()``: what a method that leaves unless a lock is held
    tests."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return lock_call(test.operand, "locked")
    return None


def lock_call(node: ast.AST, method: str) -> str | None:
    """``x.y`` for ``await x.y.acquire()`` / ``x.y.release()`` (with ``method``)."""
    if isinstance(node, ast.Await):
        node = node.value
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == method
        and not node.args
        and not node.keywords
    ):
        return ast_dotted_name(node.func.value)
    return None


def resets(value: ast.expr | None) -> bool:
    """``self.x = None`` / ``False`` / ``[]`` / ``{}`` after awaiting: teardown (``if
    self.task: await self.task; self.task = None``). Two tasks doing it both clear the same
    state; not the double initialisation AF402 is about."""
    if isinstance(value, ast.Constant):
        return value.value is None or value.value is False
    if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
        return not value.elts
    if isinstance(value, ast.Dict):
        return not value.keys
    if isinstance(value, ast.Call) and not value.args and not value.keywords:
        return ast_dotted_name(value.func) in ("list", "dict", "set", "tuple")
    return False


def _merge(a: State, b: State) -> State:
    """Both paths: what either may have read or tested (a finding needs one path)."""
    merged = State(max(a.epoch, b.epoch), dict(a.locals), dict(a.known), dict(a.held))
    merged.claims = a.claims & b.claims  # claimed on every path
    merged.exclusive = a.exclusive & b.exclusive
    for name, source in b.locals.items():
        merged.locals.setdefault(name, source)
    for attribute, mark in b.known.items():
        current = merged.known.get(attribute)
        if current is None or mark.epoch < current.epoch:
            merged.known[attribute] = mark
    merged.ended = a.ended and b.ended
    return merged


def _serialized() -> dict[str, Any]:
    import sys
    from importlib import resources

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    text = resources.files("asyncfix").joinpath("data/serialized_classes.toml").read_text("utf-8")
    loaded: dict[str, Any] = tomllib.loads(text)
    return loaded


_SERIALIZED = _serialized()
#: base classes whose methods a framework runs one at a time (data/serialized_classes.toml)
SERIALIZED_BASES = frozenset(_SERIALIZED["bases"]["names"])
#: base class -> the methods it only calls under a lock of its own
SERIALIZED_METHODS: dict[str, frozenset[str]] = {
    base: frozenset(names) for base, names in _SERIALIZED["methods"].items()
}
#: methods a framework calls once per object, one call at a time (entity lifecycle hooks)
CALLED_ONCE = frozenset(_SERIALIZED["once"]["names"])
#: calls that run the callback they are given once (``hass.bus.async_listen_once``)
ONCE_REGISTRARS = frozenset(_SERIALIZED["once"]["registrars"])


def base_name(base: ast.expr) -> str | None:
    """A base class as written, without its type arguments (``DataUpdateCoordinator`` for
    ``DataUpdateCoordinator[Data]``)."""
    return ast_dotted_name(base.value if isinstance(base, ast.Subscript) else base)


def serialized(cls: ast.ClassDef) -> bool:
    """A framework runs this class's methods one at a time (a Home Assistant config flow)."""
    for base in cls.bases:
        dotted = base_name(base)
        if dotted is not None and dotted.rsplit(".", 1)[-1] in SERIALIZED_BASES:
            return True
    return False


#: calls that start a coroutine as a task (the last part of the name)
_SPAWNS = frozenset(
    {
        "create_task",
        "ensure_future",
        "async_create_task",
        "async_create_background_task",
        "create_background_task",
        "create_eager_task",
    }
)


def starts_task(call: ast.Call) -> bool:
    """``create_task(...)``, ``loop.create_task(...)``, ``hass.async_create_task(...)``..."""
    return (ast_dotted_name(call.func) or "").rsplit(".", 1)[-1] in _SPAWNS


#: methods that together make a class a synchronisation primitive of its own
_PRIMITIVE_METHODS = (("acquire", "release"), ("wait", "notify"), ("wait", "set"))


def _primitive(facts: ClassFacts) -> bool:
    """The class implements a lock, semaphore, event or condition (``acquire``/``release``):
    it tests its own state, awaits a waiter, then updates the state by design, and callers
    use it to serialise themselves. Its methods are not races."""
    return any(all(name in facts.methods for name in pair) for pair in _PRIMITIVE_METHODS)


class Races:
    """The module's races (AF401/AF402) and the facts of its classes, made once per module
    when a race rule first asks (``SemanticModel.races``)."""

    def __init__(self, model: SemanticModel) -> None:
        self.model = model
        self.blocks = Blocks(model)
        #: (class, method) -> the lock its callers hold (``held_by_callers``)
        self._held: dict[tuple[int, str], str | None] = {}
        #: the nodes holding an ``await`` of their own body (not a nested function's), by id;
        #: and those holding any suspension (also ``async for``/``async with``)
        self._awaiting: set[int] = set()
        self._suspending: set[int] = set()
        by_type = model.scopes.by_type
        parents = model.scopes.parents
        for kind, marked in (
            (ast.Await, (self._awaiting, self._suspending)),
            (ast.AsyncFor, (self._suspending,)),
            (ast.AsyncWith, (self._suspending,)),
        ):
            for node in by_type.get(kind, ()):
                current: ast.AST | None = node
                while current is not None:
                    key = id(current)
                    if all(key in into for into in marked):
                        break  # marked on the way from another suspension
                    for into in marked:
                        into.add(key)
                    if type(current) in NESTED:  # the function it suspends
                        break
                    current = parents.get(key)

    def awaits(self, node: ast.AST | list[ast.stmt]) -> list[ast.Await]:
        """The ``await`` expressions in ``node`` (not in nested functions), in source order."""
        if isinstance(node, list):
            return [found for statement in node for found in self.awaits(statement)]
        if id(node) not in self._awaiting:
            return []
        return suspensions(node)

    def suspends(self, function: Function) -> bool:
        """``function``'s own body suspends somewhere (``await``, ``async for``/``with``)."""
        return id(function) in self._suspending

    @cached_property
    def facts(self) -> dict[int, ClassFacts]:
        """The facts of each of the module's top-level classes that has an ``async def``
        that suspends (in the others nothing races, holds a lock across an ``await`` or takes
        one twice), by the class node's id."""
        return {
            id(shape.node): class_facts(shape.node, self)
            for shape in self.model.classes.shapes.values()
            if any(
                isinstance(statement, ast.AsyncFunctionDef) and self.suspends(statement)
                for statement in shape.node.body
            )
        }

    def facts_of(self, cls: ast.ClassDef | None) -> ClassFacts | None:
        return self.facts.get(id(cls)) if cls is not None else None

    def class_of(self, method: Function) -> ClassFacts | None:
        return self._class_by_method.get(id(method))

    def of_method(self, method: Function) -> list[Race]:
        """The races (found directly and through accessors) in ``method``."""
        return self._by_method.get(id(method), [])

    @cached_property
    def _by_method(self) -> dict[int, list[Race]]:
        found: dict[int, list[Race]] = {}
        for race in [*self.found, *self.through_accessors]:
            found.setdefault(id(race.method), []).append(race)
        return found

    def takers(self, attribute: str, facts: ClassFacts) -> list[str]:
        """The methods of ``facts``'s class with a race on ``attribute``, sorted."""
        return self._takers.get((attribute, id(facts)), [])

    @cached_property
    def _takers(self) -> dict[tuple[str, int], list[str]]:
        found: dict[tuple[str, int], set[str]] = {}
        for race in self.found:
            facts = self.class_of(race.method)
            if facts is not None:
                found.setdefault((race.attribute, id(facts)), set()).add(race.method.name)
        return {key: sorted(names) for key, names in found.items()}

    @cached_property
    def _class_by_method(self) -> dict[int, ClassFacts]:
        """Each method's class (by the method node's id): asked for every race, so made once
        (a search of every class's methods each time made a class of thousands of methods
        take minutes)."""
        found: dict[int, ClassFacts] = {}
        for facts in self.facts.values():
            for method in facts.methods.values():
                found.setdefault(id(method.node), facts)
        return found

    def shared_names(self, function: Function) -> frozenset[str]:
        """Module-level names ``function`` shares with other tasks: those it declares
        ``global``/``nonlocal``, and module variables it uses without binding them locally
        (``CACHE[key] = ...``)."""
        local = self.model.scopes.opened.get(id(function))
        if local is None:
            return frozenset()
        names = set(local.declared_global)
        names.update(name for name in local.declared_nonlocal if self._shared_cell(local, name))
        names.update(
            name
            for name in self._module_variables
            if name not in local.bindings and name not in local.declared_nonlocal
        )
        return frozenset(names)

    def _shared_cell(self, scope: Scope, name: str) -> bool:
        """The ``nonlocal`` variable ``name`` of ``scope`` may be used by two tasks at once:
        some function that declares it ``nonlocal`` runs beside its definer's task (it is
        passed, stored, scheduled or gathered). A closure that is only ever awaited where it
        is defined (``await mount(batch)``) runs in the task that calls it, one call at a
        time, and each call of the outer function has a variable of its own."""
        owner = scope.parent
        while owner is not None and name in owner.declared_nonlocal:
            owner = owner.parent
        if owner is None or owner.kind not in ("function", "lambda"):
            return True
        scopes = self.model.scopes
        writers = [
            inner
            for inner in scopes.opened.values()
            if name in inner.declared_nonlocal and _inside(inner, owner)
        ]
        return any(not self._only_awaited(inner.node) for inner in writers)

    def _only_awaited(self, function: ast.AST) -> bool:
        """Every use of the nested function ``function``'s name calls it, awaited at once."""
        if not isinstance(function, ast.AsyncFunctionDef):
            return isinstance(function, ast.FunctionDef)  # a sync call runs to its end
        scopes = self.model.scopes
        for node in scopes.by_type.get(ast.Name, ()):
            assert isinstance(node, ast.Name)
            if node.id != function.name or not isinstance(node.ctx, ast.Load):
                continue
            found = scopes.resolve(node)
            if found is None or not any(b.node is function for b in found[1]):
                continue
            call = scopes.parents.get(id(node))
            if not (
                isinstance(call, ast.Call)
                and call.func is node
                and isinstance(scopes.parents.get(id(call)), ast.Await)
            ):
                return False
        return True

    @cached_property
    def _attribute_uses(self) -> dict[str, list[ast.Attribute]]:
        """Every ``x.<name>`` of the module, by name."""
        uses: dict[str, list[ast.Attribute]] = {}
        for node in self.model.scopes.by_type.get(ast.Attribute, ()):
            assert isinstance(node, ast.Attribute)
            uses.setdefault(node.attr, []).append(node)
        return uses

    def _uses_but_super(self, name: str) -> list[ast.Attribute]:
        """Every ``x.<name>`` of the module but ``super().<name>`` (an override calling the
        one it overrides)."""
        return [use for use in self._attribute_uses.get(name, []) if not _on_super(use)]

    def _self_uses(self, facts: ClassFacts, name: str) -> list[tuple[ast.Attribute, Function]]:
        """Each use of the method ``name`` in the module with the method of ``facts``'s
        class (or of a base class of it in the module) it is in, all as ``self.<name>``;
        empty when any use is another (through another object, in a nested function,
        outside those classes)."""
        parents = self.model.scopes.parents
        classes = self._lineage(facts.node)
        found: list[tuple[ast.Attribute, Function]] = []
        for node in self._attribute_uses.get(name, []):
            current = parents.get(id(node))
            while current is not None and type(current) not in NESTED:
                current = parents.get(id(current))
            if not isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return []
            if not any(parents.get(id(current)) is cls for cls in classes):
                return []
            receiver = self_name(current)
            if not (isinstance(node.value, ast.Name) and node.value.id == receiver):
                return []
            found.append((node, current))
        return found

    def held_by_callers(self, facts: ClassFacts, name: str) -> str | None:
        """The lock the method ``name`` always runs under, as the walk spells it: a
        framework base calls it under a lock of its own (``data/serialized_classes.toml``,
        and nothing in the module calls it otherwise); or it is private and only ever awaited
        inside ``async with self.<lock>:`` of one lock (``async with self._lock: return
        await self._connect_under_lock()``), or from methods that run under one."""
        key = (id(facts.node), name)
        if key in self._held:
            return self._held[key]
        self._held[key] = None  # while it is worked out: a call cycle holds nothing
        found = self._held_by_callers(facts, name)
        self._held[key] = found
        return found

    def _held_by_callers(self, facts: ClassFacts, name: str) -> str | None:
        method = facts.methods.get(name)
        if method is None:
            return None
        uses = self._uses_but_super(name)
        framework = self._framework_lock(facts.node, name, set())
        if framework is not None and not uses:
            return f"<{framework}'s lock>"
        if name in CALLED_ONCE and facts.node.bases and not uses:
            return f"<{name} once>"  # the framework's one call runs alone
        if not name.startswith("_") or name.startswith("__"):
            return None
        receiver = self_name(method.node)
        parents = self.model.scopes.parents
        lock: str | None = None
        self_uses = self._self_uses(facts, name)
        for node, caller in self_uses:
            call = parents.get(id(node))
            if not (
                isinstance(call, ast.Call) and call.func is node and self._runs_to_its_end(call)
            ):
                return None
            owner = self.class_of(caller) or facts  # a base class's method calls it
            around = self._lock_around(call, caller, owner)
            held = f"{receiver}.{around}" if around else self.held_by_callers(owner, caller.name)
            if held is None or (lock is not None and held != lock):
                return None
            lock = held
        return lock if self_uses else None

    def _runs_to_its_end(self, call: ast.Call) -> bool:
        """The caller waits, where it makes ``call``, until the coroutine has run to its end,
        whatever happens meanwhile: ``await self.m()``; or a task made of it that the caller
        awaits at once (``await create_task(self.m())``, or ``task = create_task(...)``
        with ``await task`` the next statement), or gathers with ``return_exceptions=True``.
        Without it ``gather`` hands the first error to the caller and leaves the other
        tasks running, whatever lock the caller held released (``gathered_tasks``)."""
        parents = self.model.scopes.parents
        spawn = parents.get(id(call))
        if isinstance(spawn, ast.Await):
            return True
        if not (isinstance(spawn, ast.Call) and spawn.args[:1] == [call] and starts_task(spawn)):
            return False
        holder = parents.get(id(spawn))
        if isinstance(holder, ast.Await):
            return True
        if isinstance(holder, ast.Call) and any(argument is spawn for argument in holder.args):
            return gathers_everything(holder, self.model.scopes.qualified_name) and isinstance(
                parents.get(id(holder)), ast.Await
            )
        if not (
            isinstance(holder, ast.Assign)
            and len(holder.targets) == 1
            and isinstance(holder.targets[0], ast.Name)
        ):
            return False
        task = holder.targets[0].id
        block = holding_list(parents.get(id(holder)) or holder, holder) or []
        at = next((i for i, statement in enumerate(block) if statement is holder), len(block))
        following = block[at + 1] if at + 1 < len(block) else None
        awaited = following.value if isinstance(following, (ast.Expr, ast.Assign)) else None
        return (
            isinstance(awaited, ast.Await)
            and isinstance(awaited.value, ast.Name)
            and awaited.value.id == task
        )

    def _framework_lock(self, cls: ast.ClassDef, name: str, seen: set[str]) -> str | None:
        """The framework base of ``cls`` (through the module's own classes) that calls
        ``name`` under its lock."""
        if cls.name in seen:
            return None
        seen.add(cls.name)
        for base in cls.bases:
            written = base_name(base)
            if written is None:
                continue
            last = written.rsplit(".", 1)[-1]
            if name in SERIALIZED_METHODS.get(last, ()):
                return last
            local = self._module_classes.get(written)
            if local is not None:
                found = self._framework_lock(local, name, seen)
                if found is not None:
                    return found
        return None

    def _lineage(self, cls: ast.ClassDef) -> list[ast.ClassDef]:
        """``cls`` and its base classes defined in the module."""
        found = [cls]
        for current in found:
            for base in current.bases:
                written = base_name(base)
                local = self._module_classes.get(written or "")
                if local is not None and local not in found:
                    found.append(local)
        return found

    @cached_property
    def _module_classes(self) -> dict[str, ast.ClassDef]:
        return {
            statement.name: statement
            for statement in self.model.tree.body
            if isinstance(statement, ast.ClassDef)
        }

    def locked_callers(self, facts: ClassFacts, name: str, lock: str) -> list[str] | None:
        """Methods of the class from one that awaits, holding ``self.<lock>``, down to the
        method ``name`` (``remote() -> _connect()``): a lock taken in ``name`` would wait
        for itself."""
        seen: set[str] = set()

        def search(target: str) -> list[str] | None:
            if target in seen:
                return None
            seen.add(target)
            for caller, method in sorted(facts.methods.items()):
                if target not in method.awaits:
                    continue
                receiver = self_name(method.node)
                for node in in_order(method.node.body):
                    if (
                        receiver is not None
                        and awaited_self_method(node, receiver) == target
                        and self._lock_around(node, method.node, facts, lock) == lock
                    ):
                        return [caller, target]
                found = search(caller)
                if found is not None:
                    return [*found, target]
            return None

        return search(name)

    def _lock_around(
        self, node: ast.AST, caller: Function, facts: ClassFacts, wanted: str | None = None
    ) -> str | None:
        """The innermost ``self.<lock>`` an ``async with`` around ``node`` in ``caller``
        takes (an ``asyncio.Lock``, or an attribute named as a lock; any attribute when it
        is the ``wanted`` one)."""
        parents = self.model.scopes.parents
        receiver = self_name(caller)
        child: ast.AST = node
        current = parents.get(id(node))
        while current is not None and current is not caller:
            if isinstance(current, (ast.AsyncWith, ast.With)) and any(
                child is statement for statement in current.body
            ):
                for item in current.items:
                    taken = entered_lock(item.context_expr, isinstance(current, ast.AsyncWith))
                    lock = attribute_of(taken, receiver) if receiver and taken else None
                    if (
                        lock is not None
                        and isinstance(taken, ast.Attribute)
                        and (
                            lock == wanted
                            or facts.lock_kind(lock) == "asyncio.Lock"
                            or "lock" in lock.lower()
                        )
                    ):
                        return lock
            child = current
            current = parents.get(id(current))
        return None

    def _lock_held(self, facts: ClassFacts, name: str) -> str | None:
        """The lock the callers of ``name`` hold, when it is a lock of the class (the
        framework's own serialisation is ``_runs_alone``'s)."""
        held = self.held_by_callers(facts, name)
        return None if held is None or held.startswith("<") else held

    def _runs_alone(self, facts: ClassFacts, name: str) -> str | None:
        """How one call of the method ``name`` at a time is all there is: one task runs it,
        or a framework does (its lock, or its one call); None otherwise."""
        spawned = self._spawned_once(facts, name)
        if spawned is not None:
            return f"`{name}()` runs in one task, started once by `{spawned[0].name}()`"
        held = self.held_by_callers(facts, name)
        if held is None or not held.startswith("<"):
            return None
        if held.endswith(" once>"):
            hook = held[1:-6]
            if hook == name:
                return f"`{name}()` is run once by its framework"
            return f"`{hook}()` is run once by its framework, and `{name}()` with it"
        return f"`{name}()` runs under {held[1:-1]}, one call at a time"

    def _beside_others(self, facts: ClassFacts, name: str, races: list[Race]) -> list[Race]:
        """``races`` of the method ``name`` when it runs one call at a time (``_runs_alone``):
        only those on an attribute another method sets meanwhile (a callback that stores
        what arrived), reported without the lock fix, which would not hold that method
        back. Methods serialised with it, and resets, do not count."""
        how = self._runs_alone(facts, name) if races else None
        if how is None:
            return races
        held = self.held_by_callers(facts, name)
        kept = []
        for race in races:
            writers = sorted(
                other_name
                for other_name, other in facts.methods.items()
                if other_name not in (name, "__init__")
                and race.attribute in other.sets
                and (held is None or self.held_by_callers(facts, other_name) != held)
                and not self._set_before_start(facts, other_name, name, race.attribute)
            )
            if writers:
                race.rivals = tuple(writers)
                race.unfixable = (
                    f"{how}: a lock taken here alone would not hold back "
                    f"{', '.join(f'`{w}()`' for w in writers)}"
                )
                kept.append(race)
        return kept

    def _one_task(self, facts: ClassFacts, name: str) -> bool:
        return self._spawned_once(facts, name) is not None

    def _spawned_once(self, facts: ClassFacts, name: str) -> tuple[Function, ast.Call] | None:
        """(the method that starts it, the call that does) when the method ``name`` is used
        once, as ``create_task(self.<name>())`` (``ensure_future``, Home Assistant's
        ``async_create_task`` / ``async_create_background_task``) in ``__init__`` or in a
        method that runs once (``_started_once``): one task per object runs it. (A start
        method called again would start another: Home Assistant's imap push coordinator
        starts its loop from every refresh.)"""
        uses = self._self_uses(facts, name)
        if len(uses) != 1:
            return None
        node, caller = uses[0]
        parents = self.model.scopes.parents
        call = parents.get(id(node))
        spawn = parents.get(id(call))
        if not (
            isinstance(call, ast.Call)
            and call.func is node
            and isinstance(spawn, ast.Call)
            and any(argument is call for argument in spawn.args)
        ):
            return None
        if not starts_task(spawn):
            return None
        if caller.name == "__init__" or self._started_once(facts, caller.name):
            return caller, spawn
        return None

    def _started_once(self, facts: ClassFacts, name: str) -> bool:
        """The method ``name`` runs once per object: its one use hands it to a registrar
        that calls it once (``hass.bus.async_listen_once(EVENT, self.start)``,
        ``async_at_start(hass, self.start)``; ``data/serialized_classes.toml`` [once]), or
        it is a lifecycle hook its framework calls once and the module does not call."""
        uses = self._uses_but_super(name)
        if name in CALLED_ONCE and not uses and facts.node.bases:
            return True
        if len(uses) != 1:
            return False
        parents = self.model.scopes.parents
        registrar = parents.get(id(uses[0]))
        return (
            isinstance(registrar, ast.Call)
            and any(argument is uses[0] for argument in registrar.args)
            and (ast_dotted_name(registrar.func) or "").rsplit(".", 1)[-1] in ONCE_REGISTRARS
        )

    def _set_before_start(self, facts: ClassFacts, writer: str, task: str, attribute: str) -> bool:
        """``writer`` starts the task of ``task`` and sets ``attribute`` only before that
        (filling what the task then works on): nothing it sets runs beside the task."""
        spawned = self._spawned_once(facts, task)
        if spawned is None or spawned[0].name != writer:
            return False
        spawner, spawn = spawned
        receiver = self_name(spawner)
        start = (spawn.lineno, spawn.col_offset)
        for node in in_order(spawner.body):
            for target, _ in assignments(node):
                if (
                    receiver is not None
                    and write_target(target, receiver) == attribute
                    and (target.lineno, target.col_offset) > start
                ):
                    return False
        return True

    @cached_property
    def _module_variables(self) -> list[str]:
        """The module's names bound by assignment only (not imports, functions, classes)."""
        scopes = self.model.scopes
        return [
            name
            for name, bindings in scopes.module.bindings.items()
            if all(is_plain_assignment(scopes, binding) for binding in bindings)
        ]

    @cached_property
    def through_accessors(self) -> list[Race]:
        """Lost updates through awaited accessor pairs (``analysis/accessors.py``)."""
        from asyncfix.analysis.accessors import AccessorRaces

        return AccessorRaces(self).found()

    @cached_property
    def found(self) -> list[Race]:
        """Every AF401/AF402 race in the async methods of the module's classes and in its
        async functions."""
        races: list[Race] = []
        for facts in self.facts.values():
            cls = facts.node
            # First walk: what each async method writes after suspending, along its paths
            # (the lexical order `class_facts` sees counts an `await` in an early-return
            # branch too), and its races that do not go through another method.
            found: dict[str, list[Race]] = {}
            for name, method in facts.methods.items():
                receiver = self_name(method.node)
                if isinstance(method.node, ast.AsyncFunctionDef) and receiver is not None:
                    if not self.suspends(method.node):
                        # a body that never suspends is atomic: no race, no write after
                        found[name] = []
                        method.writes_after_suspending = set()
                        continue
                    first = MethodWalk(
                        self,
                        method.node,
                        receiver,
                        facts,
                        follow=False,
                        shared=self.shared_names(method.node),
                        held=self._lock_held(facts, name),
                    )
                    found[name] = first.run()
                    method.writes_after_suspending = first.writes_after
            if any(serialized(c) for c in self._lineage(cls)) or _primitive(facts):
                continue
            for name, method in facts.methods.items():
                if name not in found:
                    continue
                if any(
                    facts.methods[c].writes_after_suspending
                    for c in method.awaits
                    if c in facts.methods
                ):
                    # it awaits a method that writes after suspending: walk again, following
                    again = MethodWalk(
                        self,
                        method.node,
                        self_name(method.node),
                        facts,
                        shared=self.shared_names(method.node),
                        held=self._lock_held(facts, name),
                    )
                    races.extend(self._beside_others(facts, name, again.run()))
                else:
                    races.extend(self._beside_others(facts, name, found[name]))
            # class state through `cls` in async classmethods (reported; the lock fix does
            # not apply to class-level state)
            for statement in cls.body:
                if (
                    isinstance(statement, ast.AsyncFunctionDef)
                    and is_classmethod(statement)
                    and self.suspends(statement)
                ):
                    receiver = first_parameter(statement)
                    if receiver is not None:
                        races.extend(
                            MethodWalk(self, statement, receiver, facts, follow=False).run()
                        )
        methods = {id(m.node) for f in self.facts.values() for m in f.methods.values()}
        for node in self.model.scopes.by_type.get(ast.AsyncFunctionDef, ()):
            assert isinstance(node, ast.AsyncFunctionDef)
            if id(node) in methods or is_classmethod(node) or not self.suspends(node):
                continue
            names = self.shared_names(node)
            if names:
                races.extend(MethodWalk(self, node, None, None, shared=names).run())
        return races


def _on_super(node: ast.Attribute) -> bool:
    """``super().<name>``: an override calling the one it overrides."""
    value = node.value
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "super"
    )


def _inside(scope: Scope, outer: Scope) -> bool:
    """``scope`` is ``outer`` or nested in it."""
    current: Scope | None = scope
    while current is not None:
        if current is outer:
            return True
        current = current.parent
    return False
