"""Local value flow: where the value of a function's local goes.

The semantic model's answer to "what happens to this coroutine / task / resource once it is
in a local?" (``../shared/design/semantic.md``, Pyre's unawaited-awaitable analysis is the
model). ``Flow.local(target)`` gives, for the name a function binds, every read of it that
resolves to that function's scope -- in nested functions too -- each classified by what the
read does with the value (``Use.kind``):

=================  =====================================================================
``awaited``        ``await x``
``scheduled``      an argument of an API that awaits or schedules it (``gather``,
                   ``create_task``, ``wait_for``, ``TaskGroup.create_task``, ...)
``returned``       ``return x`` (``yielded``: ``yield x`` / ``yield from x``)
``stored``         assigned to an attribute or item, or bound by ``global`` code
``aliased``        assigned to another name (``y = x``, ``y := x``)
``contained``      put into a tuple, list, set or dict display
``passed``         an argument of any other call (``called``: ``x(...)``)
``tested``         a condition (``if x``, ``not x``, ``x and ...``, ``assert x``)
``compared``       an operand of a comparison (``is None`` included)
``arithmetic``     an operand of ``+``, ``-``, ...
``attribute``      ``x.name`` (a method call or attribute read)
``subscripted``    ``x[...]``
``iterated``       ``for ... in x``, unpacked, or in a comprehension's iterable
``formatted``      ``f"{x}"``
``value``          handed to a builtin that uses the value (``str``, ``print``, ``len``)
``entered``        ``with x`` / ``async with x``
``raised``         ``raise x``
``captured``       read in a nested function or lambda (it may outlive the call)
``dropped``        read as an expression statement of its own
``other``          anything else (``del x``, a decorator, ...)
=================  =====================================================================

``Flow.on_every_path(local, consumes)`` answers whether every path from the binding to the
function's end passes a use of one of the given kinds: True, False when a path that skips
them is certain from the statements' structure (``t = f(); if b: await t``), None when it
cannot tell (loops, ``break``, exception handlers, constant tests). Only the normal flow of
control counts; a path that leaves by an exception is no path.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from asyncfix.analysis.conditions import Conditions
from asyncfix.analysis.model import NESTED, TRY, holding_list
from asyncfix.analysis.scopes import Binding, Scopes
from asyncfix.analysis.uses import use_of

Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Use:
    #: what the read does with the value (the table in the module's docstring)
    kind: str
    #: the read
    name: ast.Name
    #: the node the value goes into: the ``Await``, ``Call``, ``Return``, ``If``, the
    #: assignment, the nested function...
    node: ast.AST
    #: the read is in a part of its statement that may not run (a branch of ``a if c else
    #: b``, a later operand of ``and``/``or``, a comprehension's element or condition)
    conditional: bool = False


@dataclass
class Local:
    """A name bound in a function's own scope, and every read of it."""

    name: str
    function: Function
    bindings: list[Binding]
    #: in source order; reads in nested functions come as one ``captured`` use each
    uses: list[Use] = field(default_factory=list)

    @property
    def kinds(self) -> set[str]:
        return {use.kind for use in self.uses}

    @property
    def single(self) -> Binding | None:
        """The binding, when there is exactly one and it is ``name = value``."""
        if len(self.bindings) == 1 and self.bindings[0].value is not None:
            return self.bindings[0]
        return None


class Flow:
    """``local(target)``: the flow of the local a function binds at ``target``."""

    def __init__(self, scopes: Scopes, conditions: Conditions | None = None) -> None:
        self.scopes = scopes
        self.conditions = conditions
        self._reads: dict[int, dict[str, list[ast.Name]]] = {}
        #: the target of each ``name += ...`` (a read the traversal records no parent for)
        self._augmented: dict[int, ast.AugAssign] = {}
        #: the names nested functions of each function declare ``nonlocal``
        self._nonlocal: dict[int, frozenset[str]] = {}

    def local(self, target: ast.Name) -> Local | None:
        """The local ``target`` names (a binding, or a read of it), or None when the name is
        not a local of a function: a module or class name, a ``global``/``nonlocal``, a
        builtin."""
        scope = self.scopes.scope_of(target)
        if scope is None:
            return None
        found = self.scopes.lookup(target.id, scope)
        if found is None:
            return None
        owner, bindings = found
        function = owner.node
        if owner.kind != "function" or not isinstance(
            function, (ast.FunctionDef, ast.AsyncFunctionDef)
        ):
            return None
        if target.id in owner.declared_global or target.id in owner.declared_nonlocal:
            return None
        reads = self._reads_of(function)
        if target.id in self._nonlocal[id(function)]:
            return None  # a nested function rebinds it
        local = Local(target.id, function, list(bindings))
        for read in reads.get(target.id, ()):
            local.uses.append(self._use(read, function))
        return local

    def on_every_path(
        self,
        local: Local,
        consumes: frozenset[str] | Callable[[Use], bool],
        optional: bool = False,
    ) -> bool | None:
        """Does every path from the local's one binding to the end of its function pass a use
        that ``consumes`` (a set of kinds, or a test of a use)? (None: it cannot tell; also
        when the name has more than one binding.) ``optional``: the value is None or an
        object that is always true (a coroutine), so the branch of ``if x is None:`` (``if
        not x:``, the ``else`` of ``if x is not None:``/``if x:``) holds nothing to use and
        its paths do not count."""
        test = consumes if callable(consumes) else _of_kinds(consumes)
        binding = local.single
        if binding is None or binding.value is None:
            return None
        statement = self._statement_of(binding.value)
        if not isinstance(statement, (ast.Assign, ast.AnnAssign)) or statement.value is not (
            binding.value
        ):
            return None  # `if (x := f()):`: what runs next is not the statement's successor
        using = {
            id(use.name): use.conditional
            for use in local.uses
            if use.kind != "captured" and test(use)
        }
        if any(use.kind == "captured" for use in local.uses):
            return None
        paths = _Paths(self.scopes, using, local.name if optional else None, self.conditions)
        outcome = paths.after(statement, local.function)
        if UNKNOWN in outcome or not outcome:
            return None
        return outcome == {CONSUMED}

    # -- reads ---------------------------------------------------------------------------

    def _reads_of(self, function: Function) -> dict[str, list[ast.Name]]:
        """The reads in ``function`` (nested functions included) that resolve to its own
        scope, by name, in source order."""
        found = self._reads.get(id(function))
        if found is not None:
            return found
        found = {}
        own = self.scopes.opened.get(id(function))
        resolve = self.scopes.resolve
        nonlocal_names: set[str] = set()
        for node in ast.walk(function):
            if type(node) is ast.Nonlocal:
                nonlocal_names.update(node.names)
                continue
            if type(node) is ast.AugAssign and type(node.target) is ast.Name:
                read = node.target  # `x += 1` reads x first
                self._augmented[id(read)] = node
            elif type(node) is ast.Name and not isinstance(node.ctx, ast.Store):
                read = node
            else:
                continue
            where = resolve(read)
            if where is not None and where[0] is own:
                found.setdefault(read.id, []).append(read)
        for reads in found.values():
            reads.sort(key=lambda n: (n.lineno, n.col_offset))
        self._reads[id(function)] = found
        self._nonlocal[id(function)] = frozenset(nonlocal_names)
        return found

    def _use(self, read: ast.Name, function: Function) -> Use:
        augmented = self._augmented.get(id(read))
        kind, node, conditional = use_of(
            read, function, self.scopes.parents, self.scopes.qualified_name, augmented
        )
        return Use(kind, read, node, conditional)

    def _statement_of(self, node: ast.AST) -> ast.stmt | None:
        parents = self.scopes.parents
        current: ast.AST | None = node
        while current is not None and not isinstance(current, ast.stmt):
            current = parents.get(id(current))
        return current


def _of_kinds(kinds: frozenset[str]) -> Callable[[Use], bool]:
    def test(use: Use) -> bool:
        return use.kind in kinds

    return test


# -- paths --------------------------------------------------------------------------------

#: what a path through statements may do: use the value, come out at the end, leave the
#: function without using it, or something this analysis does not follow
CONSUMED, THROUGH, EXITED, UNKNOWN = "consumed", "through", "exited", "unknown"


class _Paths:
    """The outcomes of the paths through statements, given the reads that count as uses."""

    def __init__(
        self,
        scopes: Scopes,
        using: dict[int, bool],
        optional: str | None,
        conditions: Conditions | None,
    ) -> None:
        self.scopes = scopes
        #: the conditions the module decides: a branch they rule out holds no path
        self.conditions = conditions
        #: id of each read that consumes -> whether it is in a conditional part
        self.using = using
        #: the local, when it is None or always true: tests of it tell where it is None
        self.optional = optional

    def _none_when(self, test: ast.expr) -> bool | None:
        """True: where ``test`` is true the optional local is None (``x is None``, ``not
        x``); False: where it is false (``x is not None``, ``x``); None: neither."""
        name = self.optional
        if name is None:
            return None
        if isinstance(test, ast.Name) and test.id == name:
            return False
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            inner = self._none_when(test.operand)
            return None if inner is None else not inner
        if (
            isinstance(test, ast.Compare)
            and len(test.ops) == 1
            and isinstance(test.left, ast.Name)
            and test.left.id == name
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value is None
        ):
            op = test.ops[0]
            return True if isinstance(op, ast.Is) else False if isinstance(op, ast.IsNot) else None
        return None

    def after(self, statement: ast.stmt, function: Function) -> set[str]:
        """The outcomes of the paths from just after ``statement`` to the function's end."""
        parents = self.scopes.parents
        outcome = {THROUGH}
        current: ast.AST = statement
        while True:
            parent = parents.get(id(current))
            if parent is None:
                return {UNKNOWN}
            block = holding_list(parent, current)
            if block is None:  # an `except` handler's body, a `match` case: not followed
                return {UNKNOWN}
            index = next(i for i, item in enumerate(block) if item is current)
            outcome = self._then(outcome, self.block(block[index + 1 :]))
            if THROUGH not in outcome:
                return outcome
            if parent is function:
                return {EXITED if item == THROUGH else item for item in outcome}
            if isinstance(parent, (ast.For, ast.AsyncFor, ast.While)) or type(parent) in NESTED:
                return {UNKNOWN}  # the loop goes round again: not followed
            if isinstance(parent, TRY):
                body, _, orelse, finalbody = _try_parts(parent)
                if any(current is item for item in body):
                    outcome = self._then(outcome, self.block(orelse))
                if not any(current is item for item in finalbody):
                    outcome = self._then(outcome, self.block(finalbody))
                if THROUGH not in outcome:
                    return outcome
            current = parent

    @staticmethod
    def _then(first: set[str], second: set[str]) -> set[str]:
        """The outcomes of running ``second`` after ``first``'s paths that come through."""
        if THROUGH not in first:
            return first
        return (first - {THROUGH}) | second

    def block(self, statements: list[ast.stmt]) -> set[str]:
        outcome = {THROUGH}
        for statement in statements:
            outcome = self._then(outcome, self.statement(statement))
            if THROUGH not in outcome:
                break
        return outcome

    def statement(self, node: ast.stmt) -> set[str]:
        kind = type(node)
        if kind in NESTED:
            return {THROUGH}
        if isinstance(node, ast.If):
            head = self._uses(node.test)
            if head is not None:
                return head
            decided = self.conditions.truth(node.test) if self.conditions else None
            if decided is not None:
                branch = node.body if decided else node.orelse
                return self.block(branch) if branch else {THROUGH}
            if isinstance(node.test, ast.Constant):
                return {UNKNOWN}
            none = self._none_when(node.test)  # the branch where it is None holds no path
            taken = set() if none is True else self.block(node.body)
            other = self.block(node.orelse) if node.orelse else {THROUGH}
            return taken | (set() if none is False else other)
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            head = self._uses(node.iter if not isinstance(node, ast.While) else node.test)
            if head is not None:
                return head
            if isinstance(node, ast.While) and isinstance(node.test, ast.Constant):
                return {UNKNOWN}
            inner = self.block(node.body) | self.block(node.orelse)
            if CONSUMED in inner or UNKNOWN in inner:
                return {UNKNOWN}  # used only if the loop runs: not followed
            if any(isinstance(n, (ast.Break, ast.Continue)) for n in _simple(node.body)):
                return {UNKNOWN}
            return inner | {THROUGH}
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                head = self._uses(item.context_expr)
                if head is not None:
                    return head
            return self.block(node.body)
        if isinstance(node, TRY):
            body_part, handler_parts, orelse, finalbody = _try_parts(node)
            body = self._then(self.block(body_part), self.block(orelse))
            final = self.block(finalbody)
            if CONSUMED in final and THROUGH not in final:
                return {CONSUMED}
            handlers: set[str] = set()
            for handler in handler_parts:
                handlers |= self.block(handler.body)
            if handlers - {CONSUMED}:
                body |= {UNKNOWN}  # a handler's path: where the body stopped is not followed
            return self._then(body, final)
        if isinstance(node, ast.Match):
            head = self._uses(node.subject)
            if head is not None:
                return head
            return {UNKNOWN}
        found = self._uses(node)
        if found is not None:
            return found
        if isinstance(node, ast.Return):
            return {EXITED}
        if isinstance(node, ast.Raise):
            return set()  # leaves by an exception: no path
        if isinstance(node, (ast.Break, ast.Continue)):
            return {UNKNOWN}
        return {THROUGH}

    def _uses(self, node: ast.AST) -> set[str] | None:
        """The outcome of evaluating ``node`` when it holds a use: consumed, or (a use in a
        part that may not run) consumed or not. None when it holds none."""
        found: bool | None = None
        for child in _expressions(node):
            if type(child) is ast.Name and id(child) in self.using:
                conditional = self.using[id(child)]
                if not conditional:
                    return {CONSUMED}
                found = True
        if found:
            if isinstance(node, ast.Raise):
                return {CONSUMED}
            return {CONSUMED, EXITED if isinstance(node, ast.Return) else THROUGH}
        return None


def _try_parts(
    node: ast.stmt,
) -> tuple[list[ast.stmt], list[ast.ExceptHandler], list[ast.stmt], list[ast.stmt]]:
    """The blocks of a ``try`` (``except*`` too): body, handlers, ``else``, ``finally``."""
    return node.body, node.handlers, node.orelse, node.finalbody  # type: ignore[attr-defined]


def _expressions(node: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a statement's own expressions (not of the statements in its blocks, not
    of nested functions)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if type(current) in NESTED and current is not node:
            continue
        for name in current._fields:
            value = getattr(current, name, None)
            if type(value) is list:
                stack.extend(v for v in value if isinstance(v, ast.AST) and not _is_stmt(v))
            elif isinstance(value, ast.AST) and not _is_stmt(value):
                stack.append(value)


def _is_stmt(node: ast.AST) -> bool:
    return isinstance(node, (ast.stmt, ast.excepthandler, ast.match_case))


def _simple(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of ``body`` and of its blocks, not entering nested loops or
    functions (whose ``break``/``continue`` are their own)."""
    stack = list(body)
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, (ast.For, ast.AsyncFor, ast.While)) or type(current) in NESTED:
            continue
        for name in ("body", "orelse", "finalbody"):
            stack.extend(getattr(current, name, ()))
        for handler in getattr(current, "handlers", ()):
            stack.extend(handler.body)
