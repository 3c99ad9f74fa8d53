"""Shared state across an ``await``: the analysis behind AF401, AF402, AF405 and AF406.

asyncio switches tasks only where a coroutine suspends: ``await``, ``async for``, ``async
with``. A race needs a path on which shared state is read (AF401) or tested (AF402), then
the task suspends, then the same state is written from what was read or tested. Without a
suspension in between the code is atomic, however racy it looks.

Shared state here is an attribute of ``self`` (``self.x``, and ``self.x[key]`` as the same
location ``x``) in an ``async def`` method. The walk goes through a method's statements in
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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import libcst as cst

from asyncfix.codemods.names import dotted_name, flatten_target
from asyncfix.codemods.walk import children, walk

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


@dataclass(frozen=True)
class Mark:
    """Where shared state was read or tested: the node, the epoch, the locks held."""

    node: cst.CSTNode
    epoch: int
    held: frozenset[int]


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

    def copy(self) -> State:
        return State(
            self.epoch,
            dict(self.locals),
            dict(self.known),
            dict(self.held),
            self.ended,
            set(self.claims),
        )


@dataclass
class Race:
    """One finding: ``code`` is AF401 (lost update) or AF402 (check-then-act)."""

    code: str
    attribute: str
    method: cst.FunctionDef
    #: the read or test
    first: Mark
    #: the write (statement or awaited call)
    write: cst.CSTNode
    #: the suspension in between, for the message
    suspension: cst.CSTNode | None
    #: the write happens inside this awaited method (``await self.refresh()``)
    via: str | None = None


@dataclass
class MethodFacts:
    node: cst.FunctionDef
    #: attributes the method writes after it may have suspended (an awaited method does this
    #: to its caller's state)
    writes_after_suspending: set[str]
    #: attributes written anywhere
    writes: set[str]
    #: lock attributes it acquires with ``async with self.<lock>``
    acquires: set[str]
    #: self methods it awaits
    awaits: set[str]


@dataclass
class ClassFacts:
    node: cst.ClassDef
    methods: dict[str, MethodFacts]
    #: attribute -> constructors assigned to it anywhere in the class ("?" for other values)
    constructors: dict[str, set[str]]
    #: attribute -> lock attributes some method holds (``async with self.<lock>``) while
    #: writing it
    guarded_by: dict[str, set[str]] = field(default_factory=dict)
    #: attributes some method sets to ``None`` (a lock made lazily may not exist yet)
    nullable: set[str] = field(default_factory=set)

    def lock_kind(self, attribute: str) -> str | None:
        """``asyncio.Lock`` etc. when every value ``self.<attribute>`` gets is that."""
        kinds = self.constructors.get(attribute, set())
        return next(iter(kinds)) if len(kinds) == 1 else None

    def acquires_transitively(self, method: str, lock: str) -> list[str] | None:
        """The chain of awaited self methods from ``method`` to one that acquires ``lock``."""
        seen: set[str] = set()

        def search(name: str) -> list[str] | None:
            if name in seen or name not in self.methods:
                return None
            seen.add(name)
            facts = self.methods[name]
            if lock in facts.acquires:
                return [name]
            for callee in sorted(facts.awaits):
                found = search(callee)
                if found is not None:
                    return [name, *found]
            return None

        return search(method)


def self_name(function: cst.FunctionDef) -> str | None:
    params = [*function.params.posonly_params, *function.params.params]
    if not params:
        return None
    if any(
        dotted_name(d.decorator) in ("staticmethod", "classmethod") for d in function.decorators
    ):
        return None
    return params[0].name.value


def attribute_of(node: cst.CSTNode, receiver: str) -> str | None:
    """``x`` for ``self.x`` / ``self.x[k]`` / ``self.x.y``."""
    while isinstance(node, (cst.Subscript, cst.Attribute)):
        if (
            isinstance(node, cst.Attribute)
            and isinstance(node.value, cst.Name)
            and node.value.value == receiver
        ):
            return node.attr.value
        node = node.value
    return None


#: keys of shared module names (``global``/``nonlocal`` names, module dicts) start with this;
#: keys of ``self`` attributes are the attribute's name
NAME_KEY = "$"


def spelled(key: str, receiver: str | None = "self") -> str:
    """How a shared location is written in the source: ``self.x`` or ``COUNTER``."""
    return key[1:] if key.startswith(NAME_KEY) else f"{receiver or 'self'}.{key}"


def _own_attribute(node: cst.CSTNode, receiver: str | None) -> str | None:
    """``x`` for ``self.x`` exactly (``receiver`` is the name of ``self``)."""
    if (
        receiver is not None
        and isinstance(node, cst.Attribute)
        and isinstance(node.value, cst.Name)
        and node.value.value == receiver
    ):
        return node.attr.value
    return None


def write_target(
    node: cst.CSTNode, receiver: str | None, shared: frozenset[str] = frozenset()
) -> str | None:
    """The key of what an assignment target stores into: ``x`` for ``self.x``/``self.x[k]``,
    ``$X`` for a shared name ``X`` (``global X; X = ...``) or ``X[k]``."""
    if isinstance(node, cst.Attribute):
        return _own_attribute(node, receiver)
    if isinstance(node, cst.Name):
        return NAME_KEY + node.value if node.value in shared else None
    if isinstance(node, cst.Subscript):
        value = node.value
        if isinstance(value, cst.Name) and value.value in shared:
            return NAME_KEY + value.value
        return _own_attribute(value, receiver)
    return None


def reads_of(
    node: cst.CSTNode, receiver: str | None, shared: frozenset[str] = frozenset()
) -> set[str]:
    """Keys of the shared state an expression reads (not methods it calls: ``self.m()``)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (cst.Lambda, cst.FunctionDef)):
            continue
        if isinstance(current, cst.Call) and isinstance(current.func, cst.Attribute):
            func = current.func
            if isinstance(func.value, cst.Name) and func.value.value == receiver:
                stack.extend(arg.value for arg in current.args)
                continue  # `self.m(...)`: a method call, not a read of state
        own = _own_attribute(current, receiver)
        if own is not None:
            found.add(own)
            continue
        if isinstance(current, cst.Name) and current.value in shared:
            found.add(NAME_KEY + current.value)
            continue
        if isinstance(current, cst.Attribute):
            stack.append(current.value)  # not the attribute's own name
            continue
        stack.extend(children(current))
    return found


def guard_tests(
    test: cst.BaseExpression, receiver: str | None, shared: frozenset[str] = frozenset()
) -> set[str]:
    """Keys a test decides on: ``self.x`` itself is tested (``if self.x``, ``not self.x``,
    ``self.x is None``, ``key in self.x``, ``self.x <= now``, ``self.x == path``), possibly
    inside ``and``/``or``; the same for a shared name. ``self.x.y``, ``self.x.get(k)``,
    ``len(self.x)`` are not: they ask about something else the object holds."""
    found: set[str] = set()

    def direct(node: cst.BaseExpression) -> str | None:
        own = _own_attribute(node, receiver)
        if own is not None:
            return own
        if isinstance(node, cst.Name) and node.value in shared:
            return NAME_KEY + node.value
        return None

    def visit(node: cst.BaseExpression) -> None:
        if isinstance(node, cst.BooleanOperation):
            visit(node.left)
            visit(node.right)
        elif isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Not):
            visit(node.expression)
        elif isinstance(node, cst.Comparison):
            operands = [node.left, *(target.comparator for target in node.comparisons)]
            if _state_comparison(node, receiver):
                return  # `self.state == State.OPEN`: a state machine's step, not a guard
            for operand in operands:
                name = direct(operand)
                if name is not None:
                    found.add(name)
        else:
            name = direct(node)
            if name is not None:
                found.add(name)

    visit(test)
    return found


_EQUALITY = (cst.Equal, cst.NotEqual, cst.Is, cst.IsNot, cst.In, cst.NotIn)


def _state_comparison(node: cst.Comparison, receiver: str | None) -> bool:
    """``self.state == State.OPEN``, ``self.phase in ("idle", "done")``: the attribute
    compared for equality with named constants or strings. Such tests step a state machine
    (a protocol's connection state), whose object one task drives; they are not the guard
    of lazy initialisation or a cache that AF402 is about (``is None`` still is)."""
    if not all(isinstance(target.operator, _EQUALITY) for target in node.comparisons):
        return False
    others = [
        operand
        for operand in [node.left, *(target.comparator for target in node.comparisons)]
        if _own_attribute(operand, receiver) is None
    ]
    return bool(others) and all(_state_constant(other) for other in others)


def _state_constant(node: cst.BaseExpression) -> bool:
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        return True
    if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
        return bool(node.elements) and all(_state_constant(e.value) for e in node.elements)
    if isinstance(node, cst.Attribute):
        spelled = dotted_name(node)
        head = (spelled or "").split(".", 1)[0]
        return spelled is not None and head[:1].isupper()  # `State.OPEN`, `HTTPState.X`
    if isinstance(node, cst.Name):
        return node.value.isupper() and len(node.value) > 1  # `CONNECTED`
    return False


def names_read(node: cst.CSTNode) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name):
            found.add(current.value)
        elif isinstance(current, cst.Attribute):
            stack.append(current.value)
        elif isinstance(current, (cst.Lambda, cst.FunctionDef)):
            continue
        else:
            stack.extend(children(current))
    return found


def suspensions(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The ``await`` expressions in ``node`` (not in nested functions), in source order."""
    found: list[cst.CSTNode] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (cst.Lambda, cst.FunctionDef)):
            continue
        if isinstance(current, cst.Await):
            found.append(current)
        stack.extend(reversed(children(current)))
    return found


def awaited_self_method(node: cst.CSTNode, receiver: str) -> str | None:
    """``m`` for ``await self.m(...)``."""
    if isinstance(node, cst.Await) and isinstance(node.expression, cst.Call):
        func = node.expression.func
        if (
            isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.value.value == receiver
        ):
            return func.attr.value
    return None


# -- facts about a class -------------------------------------------------------------------


def class_facts(node: cst.ClassDef, qualified: Callable[[cst.CSTNode], str | None]) -> ClassFacts:
    """What each method of ``node`` writes, acquires and awaits; what each attribute holds."""
    methods: dict[str, MethodFacts] = {}
    constructors: dict[str, set[str]] = {}
    guarded: dict[str, set[str]] = {}
    nullable: set[str] = set()
    body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
    for statement in body:
        if not isinstance(statement, cst.FunctionDef):
            continue
        receiver = self_name(statement)
        if receiver is None:
            continue
        facts = MethodFacts(statement, set(), set(), set(), set())
        suspended = False
        for child in in_order(statement.body):
            if isinstance(child, cst.Await) or (
                isinstance(child, (cst.For, cst.With)) and child.asynchronous is not None
            ):
                suspended = True
                method = awaited_self_method(child, receiver)
                if method is not None:
                    facts.awaits.add(method)
            if isinstance(child, cst.With) and child.asynchronous is not None:
                for item in child.items:
                    lock = attribute_of(item.item, receiver)
                    if lock is not None and isinstance(item.item, cst.Attribute):
                        facts.acquires.add(lock)
                        for inner in in_order(child.body):
                            for target, _ in _assignments(inner):
                                written = write_target(target, receiver)
                                if written is not None:
                                    guarded.setdefault(written, set()).add(lock)
            for target, value in _assignments(child):
                attribute = write_target(target, receiver)
                if attribute is None:
                    continue
                facts.writes.add(attribute)
                if (suspended or (value is not None and suspensions(value))) and not _resets(value):
                    facts.writes_after_suspending.add(attribute)
                if isinstance(target, cst.Attribute) and not isinstance(child, cst.AugAssign):
                    made = "?"
                    if isinstance(value, cst.Call):
                        made = qualified(value.func) or "?"
                    elif isinstance(value, (cst.List, cst.ListComp)):
                        made = "builtins.list"
                    elif isinstance(value, (cst.Dict, cst.DictComp)):
                        made = "builtins.dict"
                    elif isinstance(value, (cst.Set, cst.SetComp)):
                        made = "builtins.set"
                    elif isinstance(value, cst.Name) and value.value == "None":
                        nullable.add(attribute)
                        continue
                    constructors.setdefault(attribute, set()).add(made)
        methods[statement.name.value] = facts
    return ClassFacts(node, methods, constructors, guarded, nullable)


def _assignments(
    node: cst.CSTNode,
) -> Iterator[tuple[cst.BaseExpression, cst.BaseExpression | None]]:
    if isinstance(node, cst.Assign):
        for target in node.targets:
            for element in flatten_target(target.target):
                yield element, node.value if element is target.target else None
    elif isinstance(node, cst.AnnAssign) and node.value is not None:
        yield node.target, node.value
    elif isinstance(node, cst.AugAssign):
        yield node.target, None
    elif isinstance(node, (cst.For, cst.WithItem)):
        rebound: cst.BaseExpression | None = None
        if isinstance(node, cst.For):
            rebound = node.target
        elif node.asname is not None:
            rebound = node.asname.name
        if rebound is not None:
            for element in flatten_target(rebound):
                yield element, None


def parent_map(root: cst.CSTNode) -> dict[int, cst.CSTNode]:
    """id(node) -> its parent, for every node under ``root`` outside nested functions."""
    parents: dict[int, cst.CSTNode] = {}
    for node in in_order(root):
        for child in children(node):
            parents[id(child)] = node
    return parents


def in_order(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """Every node under ``node`` in source order, not entering nested functions/lambdas."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, (cst.Lambda, cst.FunctionDef, cst.ClassDef)) and current is not node:
            continue
        stack.extend(reversed(children(current)))


# -- the walk over one method ----------------------------------------------------------------


class MethodWalk:
    """Finds AF401/AF402 races in one ``async def`` method of a class."""

    def __init__(
        self,
        method: cst.FunctionDef,
        receiver: str | None,
        facts: ClassFacts | None,
        follow: bool = True,
        shared: frozenset[str] = frozenset(),
    ) -> None:
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
        self._last_suspension: cst.CSTNode | None = None
        #: inside an ``except`` handler or ``finally`` block: a write there restores state or
        #: reacts to a failure; it is not the update or the act of a race
        self._in_handler = 0
        #: the method's nodes' parents, made when a write needs them
        self._parents: dict[int, cst.CSTNode] | None = None

    def run(self) -> list[Race]:
        self._block(self.method.body, State())
        return self.races

    # statements

    def _block(self, suite: cst.BaseSuite, state: State) -> State:
        if isinstance(suite, cst.IndentedBlock):
            for statement in suite.body:
                if state.ended:
                    break
                state = self._statement(statement, state)
        elif isinstance(suite, cst.SimpleStatementSuite):
            for small in suite.body:
                state = self._small(small, state, small)
        return state

    def _statement(self, node: cst.BaseStatement, state: State) -> State:
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                state = self._small(small, state, node)
            return state
        if isinstance(node, cst.If):
            return self._if(node, state)
        if isinstance(node, (cst.For, cst.While)):
            if isinstance(node, cst.For):
                state = self._expression(node.iter, state)
                if node.asynchronous is not None:
                    state = self._suspend(state, node)
            else:
                state = self._expression(node.test, state)
            inner = self._block(node.body, state.copy())
            inner.ended = False
            merged = _merge(state, inner)
            if isinstance(node, cst.While):
                # the loop ends right after its test ran: what it tests is fresh
                # (`while self.value <= 0: await ...` then `self.value -= 1`)
                mark = Mark(node, merged.epoch, frozenset(merged.held))
                for attribute in guard_tests(node.test, self.receiver, self.shared):
                    merged.known[attribute] = mark
            if node.orelse is not None:
                merged = self._block(node.orelse.body, merged)
            return merged
        if isinstance(node, cst.With):
            return self._with(node, state)
        if isinstance(node, (cst.Try, cst.TryStar)):
            after = self._block(node.body, state.copy())
            outcomes = [after]
            for handler in node.handlers:
                caught = _merge(state, after)
                caught.ended = False
                self._in_handler += 1
                outcomes.append(self._block(handler.body, caught))
                self._in_handler -= 1
            if node.orelse is not None and not after.ended:
                outcomes[0] = self._block(node.orelse.body, after)
            # paths that left (return/raise) carry nothing to the code after the try
            going_on = [outcome for outcome in outcomes if not outcome.ended]
            merged = going_on[0] if going_on else outcomes[0]
            for other in going_on[1:]:
                merged = _merge(merged, other)
            merged.ended = not going_on
            if node.finalbody is not None:
                ended = merged.ended
                merged.ended = False
                self._in_handler += 1  # `finally: self.x = saved` restores
                merged = self._block(node.finalbody.body, merged)
                self._in_handler -= 1
                merged.ended = merged.ended or ended
            return merged
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            return state
        if isinstance(node, cst.Match):
            state = self._expression(node.subject, state)
            outcomes = [self._block(case.body, state.copy()) for case in node.cases]
            merged = state
            for outcome in outcomes:
                outcome.ended = False
                merged = _merge(merged, outcome)
            return merged
        return state

    def _if(self, node: cst.If, state: State) -> State:
        state = self._expression(node.test, state)
        tested = guard_tests(node.test, self.receiver, self.shared)
        mark = Mark(node, state.epoch, frozenset(state.held))
        # names assigned from shared state and tested here count as tests of that state
        for name in names_read(node.test):
            if name in state.locals:
                tested.add(state.locals[name][0])
        then = state.copy()
        for attribute in tested:
            then.known[attribute] = mark
        then = self._block(node.body, then)
        otherwise = state.copy()
        for attribute in tested:
            otherwise.known[attribute] = mark
        if node.orelse is not None:
            if isinstance(node.orelse, cst.If):
                otherwise = self._if(node.orelse, otherwise)
            else:
                otherwise = self._block(node.orelse.body, otherwise)
        if then.ended and otherwise.ended:
            merged = _merge(then, otherwise)
            merged.ended = True
            return merged
        if then.ended:
            return otherwise
        if otherwise.ended:
            return then
        merged = _merge(then, otherwise)
        if node.orelse is None:
            # after `if test: <no exit>` nothing is known from the test
            for attribute in tested:
                if merged.known.get(attribute) is mark:
                    del merged.known[attribute]
        return merged

    def _with(self, node: cst.With, state: State) -> State:
        acquired: list[int] = []
        for item in node.items:
            state = self._expression(item.item, state)
        if node.asynchronous is not None:
            state = self._suspend(state, node)
            for item in node.items:
                spelled = dotted_name(item.item)
                if spelled is not None:
                    self._acquisitions += 1
                    acquired.append(self._acquisitions)
                    state.held[self._acquisitions] = spelled
        state = self._block(node.body, state)
        for acquisition in acquired:
            state.held.pop(acquisition, None)
        if node.asynchronous is not None and not state.ended:
            state = self._suspend(state, node)
        return state

    def _small(self, node: cst.BaseSmallStatement, state: State, line: cst.CSTNode) -> State:
        if isinstance(node, (cst.Return, cst.Raise)):
            value = node.value if isinstance(node, cst.Return) else node.exc
            if value is not None:
                state = self._expression(value, state)
            state.ended = True
            return state
        if isinstance(node, (cst.Break, cst.Continue)):
            state.ended = True
            return state
        if isinstance(node, cst.Expr):
            return self._expression(node.value, state)
        if isinstance(node, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
            value = node.value
            before = state.epoch
            reads_before = (
                reads_of(value, self.receiver, self.shared) if value is not None else set()
            )
            if value is not None:
                state = self._expression(value, state)
            targets = (
                [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
            )
            for target in targets:
                attribute = write_target(target, self.receiver, self.shared)
                if attribute is not None:
                    self._write(attribute, node, line, value, state)
                    continue
                for element in flatten_target(target):
                    if isinstance(element, cst.Name):
                        state.locals.pop(element.value, None)
                        shared = reads_before if value is not None else set()
                        # `device = await connect(self.device)` fetches a new value: not a
                        # read-modify-write of the old one
                        fetched = value is not None and bool(suspensions(value))
                        if len(shared) == 1 and not fetched and not isinstance(node, cst.AugAssign):
                            (attribute,) = shared
                            state.locals[element.value] = (
                                attribute,
                                Mark(node, before, frozenset(state.held)),
                            )
            return state
        return state

    def _expression(self, node: cst.CSTNode, state: State) -> State:
        released = _lock_call(node, "release")
        if released is not None:
            for acquisition, spelled in list(state.held.items()):
                if spelled == released:
                    del state.held[acquisition]
        for suspension in suspensions(node):
            state = self._suspend(state, suspension)
            acquired = _lock_call(suspension, "acquire")
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

    def _suspend(self, state: State, where: cst.CSTNode) -> State:
        state.epoch += 1
        self._last_suspension = where
        return state

    # writes

    def _write(
        self,
        attribute: str,
        node: cst.CSTNode,
        line: cst.CSTNode,
        value: cst.BaseExpression | None,
        state: State,
        via: str | None = None,
    ) -> None:
        held = frozenset(state.held)
        if state.epoch > 0 and via is None and not _resets(value):
            self.writes_after.add(attribute)
        fresh = state.known.get(attribute)
        if fresh is not None and fresh.epoch == state.epoch:
            # tested again since the last suspension (`if key not in self.cache:` right
            # before the write): the write acts on what is true now -- and when it sets
            # something, it claims the work for this task
            if not _resets(value):
                state.claims.update(
                    id(mark.node) for mark in state.known.values() if mark.epoch == state.epoch
                )
            self._forget(attribute, state)
            return
        if value is not None and not self._in_handler:
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
            and not _resets(value)
            and id(test.node) not in state.claims  # claimed before suspending: none repeats it
            and self._acts_on_test(test, node, line, value)
        ):
            self._found("AF402", attribute, test, line, via)
        self._forget(attribute, state)

    def _acts_on_test(
        self, test: Mark, node: cst.CSTNode, line: cst.CSTNode, value: cst.BaseExpression | None
    ) -> bool:
        """The write is the act the test guards: it stores what the awaited work made
        (``self.token = await fetch()``, a value computed after it), updates the tested value
        (``self.balance -= amount``), or sets a flag in the block the test guards (``if not
        self.connected: await connect(); self.connected = True``) or after the early exit it
        guards (``if self.connected: return``, then the same). A flag set in another branch of
        the test (``if self.closed: return`` / ``elif ...: ...; self.closed = True``) steps a
        protocol object one task drives; not reported."""
        if isinstance(node, cst.AugAssign):
            return True
        if value is not None and not _constant(value):
            return True
        guarded = test.node
        if not isinstance(guarded, (cst.If, cst.While)):
            return False
        blocks: list[cst.CSTNode] = [guarded.body]
        if isinstance(guarded, cst.If) and isinstance(guarded.orelse, cst.Else):
            blocks.append(guarded.orelse)  # `if self.done: ... else: act; self.done = True`
        if any(inner is line for block in blocks for inner in in_order(block)):
            return True
        if self._parents is None:
            self._parents = parent_map(self.method.body)
        block = self._parents.get(id(guarded))
        if not isinstance(block, cst.IndentedBlock):
            return False
        siblings = list(block.body)
        at = next((i for i, statement in enumerate(siblings) if statement is guarded), None)
        if at is None:
            return False
        return any(
            inner is line for statement in siblings[at + 1 :] for inner in in_order(statement)
        )

    def _forget(self, attribute: str, state: State) -> None:
        """After a write the attribute is fresh again: nothing read or tested before counts."""
        state.known.pop(attribute, None)
        for name in [n for n, (a, _) in state.locals.items() if a == attribute]:
            del state.locals[name]

    def _found(
        self, code: str, attribute: str, first: Mark, write: cst.CSTNode, via: str | None
    ) -> None:
        if any(r.first.node is first.node and r.attribute == attribute for r in self.races):
            return
        self.races.append(
            Race(code, attribute, self.method, first, write, self._last_suspension, via)
        )


def _constant(value: cst.BaseExpression) -> bool:
    if isinstance(value, cst.Name):
        return value.value in ("True", "False", "None") or value.value.isupper()
    if isinstance(value, (cst.Integer, cst.Float, cst.SimpleString, cst.ConcatenatedString)):
        return True
    if isinstance(value, cst.UnaryOperation):
        return _constant(value.expression)
    return isinstance(value, cst.Attribute) and _state_constant(value)


def _lock_call(node: cst.CSTNode, method: str) -> str | None:
    """``x.y`` for ``await x.y.acquire()`` / ``x.y.release()`` (with ``method``)."""
    if isinstance(node, cst.Await):
        node = node.expression
    if isinstance(node, cst.Expr):
        node = node.value
    if (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == method
        and not node.args
    ):
        return dotted_name(node.func.value)
    return None


def _resets(value: cst.BaseExpression | None) -> bool:
    """``self.x = None`` / ``False`` / ``[]`` / ``{}`` after awaiting: teardown (``if
    self.task: await self.task; self.task = None``). Two tasks doing it both clear the same
    state; not the double initialisation AF402 is about."""
    if isinstance(value, cst.Name):
        return value.value in ("None", "False")
    if isinstance(value, (cst.List, cst.Tuple, cst.Set, cst.Dict)):
        return not value.elements
    if isinstance(value, cst.Call) and not value.args:
        return dotted_name(value.func) in ("list", "dict", "set", "tuple")
    return False


def _merge(a: State, b: State) -> State:
    """Both paths: what either may have read or tested (a finding needs one path)."""
    merged = State(max(a.epoch, b.epoch), dict(a.locals), dict(a.known), dict(a.held))
    merged.claims = a.claims & b.claims  # claimed on every path
    for name, source in b.locals.items():
        merged.locals.setdefault(name, source)
    for attribute, mark in b.known.items():
        current = merged.known.get(attribute)
        if current is None or mark.epoch < current.epoch:
            merged.known[attribute] = mark
    merged.ended = a.ended and b.ended
    return merged


def _serialized_bases() -> frozenset[str]:
    import sys
    from importlib import resources

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    text = resources.files("asyncfix").joinpath("data/serialized_classes.toml").read_text("utf-8")
    return frozenset(tomllib.loads(text)["bases"]["names"])


#: base classes whose methods a framework runs one at a time (data/serialized_classes.toml)
SERIALIZED_BASES = _serialized_bases()


def serialized(cls: cst.ClassDef) -> bool:
    """A framework runs this class's methods one at a time (a Home Assistant config flow)."""
    for base in cls.bases:
        if base.keyword is not None:
            continue
        spelled = dotted_name(base.value)
        if spelled is not None and spelled.rsplit(".", 1)[-1] in SERIALIZED_BASES:
            return True
    return False


#: methods that together make a class a synchronisation primitive of its own
_PRIMITIVE_METHODS = (("acquire", "release"), ("wait", "notify"), ("wait", "set"))


def _primitive(facts: ClassFacts) -> bool:
    """The class implements a lock, semaphore, event or condition (``acquire``/``release``):
    it tests its own state, awaits a waiter, then updates the state by design, and callers
    use it to serialise themselves. Its methods are not races."""
    return any(all(name in facts.methods for name in pair) for pair in _PRIMITIVE_METHODS)


def module_races(
    module: cst.Module,
    classes: Sequence[cst.ClassDef],
    qualified: Callable[[cst.CSTNode], str | None],
    shared_for: Callable[[cst.FunctionDef], frozenset[str]] | None = None,
) -> tuple[list[Race], dict[int, ClassFacts]]:
    """Every AF401/AF402 race in the async methods of ``classes`` and the module's async
    functions, and the facts per class. ``shared_for`` names the module-level names a
    function shares with other tasks."""
    races: list[Race] = []
    facts_by_class: dict[int, ClassFacts] = {}

    def shared(function: cst.FunctionDef) -> frozenset[str]:
        return shared_for(function) if shared_for is not None else frozenset()

    for cls in classes:
        facts = class_facts(cls, qualified)
        facts_by_class[id(cls)] = facts
        # First walk: what each async method writes after suspending, along its paths (the
        # lexical order `class_facts` sees counts an `await` in an early-return branch too),
        # and its races that do not go through another method.
        found: dict[str, list[Race]] = {}
        for name, method in facts.methods.items():
            receiver = self_name(method.node)
            if method.node.asynchronous is not None and receiver is not None:
                first = MethodWalk(
                    method.node, receiver, facts, follow=False, shared=shared(method.node)
                )
                found[name] = first.run()
                method.writes_after_suspending = first.writes_after
        if serialized(cls) or _primitive(facts):
            continue
        for name, method in facts.methods.items():
            if name not in found:
                continue
            if any(
                facts.methods[c].writes_after_suspending
                for c in method.awaits
                if c in facts.methods
            ):
                # it awaits a method that writes after suspending: walk again, following it
                receiver = self_name(method.node)
                again = MethodWalk(method.node, receiver, facts, shared=shared(method.node))
                races.extend(again.run())
            else:
                races.extend(found[name])
        # class state through `cls` in async classmethods (reported; the lock fix does not
        # apply to class-level state)
        body = cls.body.body if isinstance(cls.body, cst.IndentedBlock) else ()
        for statement in body:
            if (
                isinstance(statement, cst.FunctionDef)
                and statement.asynchronous is not None
                and any(dotted_name(d.decorator) == "classmethod" for d in statement.decorators)
            ):
                params = [*statement.params.posonly_params, *statement.params.params]
                if params:
                    races.extend(
                        MethodWalk(statement, params[0].name.value, facts, follow=False).run()
                    )
    methods = {id(m.node) for f in facts_by_class.values() for m in f.methods.values()}
    functions: list[cst.FunctionDef] = []

    def visit(node: cst.CSTNode) -> bool:
        kind = type(node)
        if kind is cst.FunctionDef:
            assert isinstance(node, cst.FunctionDef)
            functions.append(node)
        return kind in _STATEMENT_CONTAINERS

    walk(module, visit)
    for node in functions:
        if node.asynchronous is None or id(node) in methods or _is_classmethod(node):
            continue
        names = shared(node)
        if names:
            races.extend(MethodWalk(node, None, None, shared=names).run())
    return races, facts_by_class


#: nodes whose children may hold a function definition (expressions never do)
_STATEMENT_CONTAINERS = frozenset(
    {
        cst.Module,
        cst.IndentedBlock,
        cst.FunctionDef,
        cst.ClassDef,
        cst.If,
        cst.Else,
        cst.For,
        cst.While,
        cst.With,
        cst.Try,
        cst.TryStar,
        cst.ExceptHandler,
        cst.ExceptStarHandler,
        cst.Finally,
        cst.Match,
        cst.MatchCase,
    }
)


def _is_classmethod(node: cst.FunctionDef) -> bool:
    return any(dotted_name(d.decorator) == "classmethod" for d in node.decorators)
