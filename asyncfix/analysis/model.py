"""The semantic model of one module, and how rules are called on it.

``SemanticModel`` holds the layers (``scopes``, ``classes``, ``values``, ``coroutines``) built
on the stdlib tree. The tree is traversed once, by the scopes' builder, which also records
every node's parent and the nodes of each type; ``Walk`` hands each rule's ``on_<NodeType>``
handlers the nodes of that type and answers where a node is (in which function's body, in a
generator expression, in the callable given to a worker thread, under ``if TYPE_CHECKING:``),
worked out from the parents when a rule asks, once per node.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from asyncfix.analysis.catalogue import LIBRARY_FUNCTIONS, CoroutineFunctions
from asyncfix.analysis.classes import Classes, top_level_statements
from asyncfix.analysis.coroutines import Coroutines
from asyncfix.analysis.resources import Resources
from asyncfix.analysis.scopes import Binding, Scopes
from asyncfix.analysis.source import SourceText
from asyncfix.analysis.values import Values
from asyncfix.index import ast_dotted_name, child_nodes, spelled_names

if TYPE_CHECKING:
    from asyncfix.analysis.conditions import Conditions
    from asyncfix.analysis.flow import Flow
    from asyncfix.analysis.races import Races
    from asyncfix.codemods.base import Project

#: calls whose arguments run in a worker thread, not on the event loop
OFFLOADERS = frozenset({"asyncio.to_thread", "anyio.to_thread.run_sync", "trio.to_thread.run_sync"})
_OFFLOADER_NAMES = frozenset(name.rsplit(".", 1)[1] for name in OFFLOADERS)


class SemanticModel:
    """What names are bound to and what values may be, in one module."""

    def __init__(
        self,
        tree: ast.Module,
        text: str,
        project: Project | None = None,
        declared: tuple[str, ...] = (),
    ) -> None:
        self.tree = tree
        self.source = SourceText(text)
        self.project = project
        self.scopes = Scopes(tree)
        self.classes = Classes(tree, self.scopes)
        self.values = Values(self.scopes, self.classes, project)
        self.coroutines = Coroutines(
            self.scopes,
            self.classes,
            self.values,
            self.source,
            project,
            CoroutineFunctions(LIBRARY_FUNCTIONS, declared),
        )

    @cached_property
    def resources(self) -> Resources:
        """Which values are async resources (asked by the resource rules only)."""
        return Resources(self.tree, self.scopes, self.project)

    @cached_property
    def flow(self) -> Flow:
        """Where the values of functions' locals go (asked by rules that follow one)."""
        from asyncfix.analysis.flow import Flow

        return Flow(self.scopes, self.conditions)

    @cached_property
    def conditions(self) -> Conditions:
        """The conditions the module decides by itself (``x = None; if x is None:``)."""
        from asyncfix.analysis.conditions import Conditions

        return Conditions(self.scopes, self.values)

    @cached_property
    def races(self) -> Races:
        """Shared state across an ``await`` (asked by the race rules only)."""
        from asyncfix.analysis.races import Races

        return Races(self)

    @cached_property
    def imported_packages(self) -> frozenset[str]:
        """The top-level packages the module imports at module level (``asyncio``, ``anyio``,
        ``trio``): which event loops its code may run on."""
        names: set[str] = set()
        for statement in top_level_statements(self.tree.body):
            if isinstance(statement, ast.Import):
                names.update(alias.name.split(".")[0] for alias in statement.names)
            elif isinstance(statement, ast.ImportFrom) and statement.module and not statement.level:
                names.add(statement.module.split(".")[0])
        return frozenset(names)

    def module_name_for(self, module: str, leading_only: bool = False) -> str | None:
        """The name an unconditional ``import module`` binds at module level (``aio`` after
        ``import asyncio as aio``), or None when the module is not imported that way.

        Imports under ``if`` (``TYPE_CHECKING``) do not count: the name may not exist at run
        time. With ``leading_only``, only imports before the first ``def``/``class`` count
        (for code a fix adds at module level, which runs at import time)."""
        for statement in self.tree.body:
            if leading_only and isinstance(
                statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
            ):
                break
            if isinstance(statement, ast.Import):
                for alias in statement.names:
                    if alias.name == module:
                        return alias.asname or module
        return None


@dataclass(frozen=True)
class Place:
    """Where a node is, as the rules ask it: the innermost frame (a generator expression
    aside), and what encloses it."""

    #: "module" | "class" | "def" | "async" | "lambda" | "offload" | "typecheck": the body of
    #: a module, class, function or lambda, the callable handed to a worker thread, or an
    #: ``if TYPE_CHECKING:`` block (code that never runs)
    kind: str
    #: the function whose body this is (through offloaded callables, ``TYPE_CHECKING``
    #: blocks and generator expressions; not through a class or a lambda)
    function: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    #: inside a generator expression of that body: an ``await`` there would make it an
    #: async generator
    genexp: bool = False
    #: the node whose body this is: the function, lambda or class, the ``if``, the callable
    #: (the module's body: None)
    owner: ast.AST | None = None


_MODULE = Place("module")


class Walk:
    """Calls each rule's ``on_<NodeType>`` handlers with the nodes of that type (from the
    scopes' one traversal), and answers where a node is (``place``) and what its parent is."""

    def __init__(self, model: SemanticModel, offload: Sequence[str] = ()) -> None:
        self.model = model
        #: the project's own offloading helpers (config ``offload-functions``)
        self.offload = frozenset(offload)
        self._offload_last = frozenset(name.rsplit(".", 1)[-1] for name in offload)
        self._places: dict[int, Place] = {id(model.tree): _MODULE}

    def run(self, rules: Sequence[object]) -> None:
        """Each rule's handlers, called with the nodes of their types in source order."""
        by_type = self.model.scopes.by_type
        for rule in rules:
            handlers: dict[type, Callable[[Any], None]] = {
                kind: getattr(rule, attr) for kind, attr in _handler_names(type(rule))
            }
            module = handlers.pop(ast.Module, None)
            if module is not None:
                module(self.model.tree)
            nodes = [node for kind in handlers for node in by_type.get(kind, ())]
            if len(handlers) > 1:
                nodes.sort(key=_position)
            for node in nodes:
                handlers[type(node)](node)

    # -- where am I ----------------------------------------------------------------------

    def parent(self, node: ast.AST) -> ast.AST | None:
        return self.model.scopes.parents.get(id(node))

    def place(self, node: ast.AST) -> Place:
        """Where ``node`` is. It must be a node the traversal recorded a parent for: every
        node but the name a single-target assignment (``x = ...``, ``x: T = ...``, ``x :=
        ...``) binds and the ``arguments``/``arg`` nodes of a definition -- ask about their
        statement or function instead."""
        places = self._places
        found = places.get(id(node))
        if found is not None:
            return found
        parents = self.model.scopes.parents
        # climb to the nearest node whose place is known, then come back down
        chain = [node]
        parent = parents.get(id(node))
        while parent is not None and id(parent) not in places:
            chain.append(parent)
            parent = parents.get(id(parent))
        place = places[id(parent)] if parent is not None else _MODULE
        for current in reversed(chain):
            if parent is not None:
                place = self._step(parent, current, place)
            places[id(current)] = place
            parent = current
        return place

    def _step(self, parent: ast.AST, node: ast.AST, place: Place) -> Place:
        """The place of ``node``, a child of ``parent`` whose place is ``place``."""
        place = self._frame(parent, node, place)
        if type(node) is ast.GeneratorExp and not place.genexp:
            return Place(place.kind, place.function, True, place.owner)
        return place

    def _frame(self, parent: ast.AST, node: ast.AST, place: Place) -> Place:
        """The frame ``parent`` opens for ``node``: the body of a function, lambda or class
        (their decorators, defaults, annotations and bases belong to the enclosing body), an
        ``if TYPE_CHECKING:`` block, an offloaded callable; else ``place``."""
        kind = type(parent)
        if kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
            assert isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef))
            if node in parent.body:
                kind_name = "async" if kind is ast.AsyncFunctionDef else "def"
                return Place(kind_name, parent, owner=parent)
        elif kind is ast.Lambda:
            assert isinstance(parent, ast.Lambda)
            if node is parent.body:
                return Place("lambda", owner=parent)
        elif kind is ast.ClassDef:
            assert isinstance(parent, ast.ClassDef)
            if node in parent.body:
                return Place("class", owner=parent)
        elif kind is ast.If:
            assert isinstance(parent, ast.If)
            if node in parent.body and _is_type_checking(parent.test):
                return Place("typecheck", place.function, place.genexp, parent)
        elif kind is ast.Call:
            assert isinstance(parent, ast.Call)
            if node is self._offloaded_argument(parent):
                return Place("offload", place.function, owner=node)
        return place

    def enclosing_class(self, node: ast.AST) -> ast.ClassDef | None:
        """The class whose method ``node`` is in (directly, not in a nested function)."""
        function = self.place(node).function
        if function is None:
            return None
        owner = self.place(function)
        cls = owner.owner
        return cls if owner.kind == "class" and isinstance(cls, ast.ClassDef) else None

    def in_async_body(self, node: ast.AST) -> bool:
        """Lexically in an ``async def``, not in a nested def/lambda/class, in the callable
        given to an offloading call, or under ``if TYPE_CHECKING:``."""
        return self.place(node).kind == "async"

    def _offloaded_argument(self, call: ast.Call) -> ast.expr | None:
        """The callable an offloading call runs in a worker thread: only it does; the other
        arguments are evaluated here, on the loop (``to_thread(write, path.read_bytes())``
        reads on the loop)."""
        if not self._is_offloading_call(call):
            return None
        position = 1 if _is_run_in_executor(call) else 0
        positional = [arg for arg in call.args if not isinstance(arg, ast.Starred)]
        return positional[position] if len(positional) > position else None

    def _is_offloading_call(self, call: ast.Call) -> bool:
        """``asyncio.to_thread(...)``, ``loop.run_in_executor(...)``, ``anyio.to_thread.run_sync``
        or one of the project's helpers named in ``offload-functions``: an entry matches the
        call spelled that way, spelled with a longer receiver (``self.hass.add_job`` for
        ``hass.add_job``), or an import of that name."""
        if _is_run_in_executor(call):
            return True
        func = call.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        qualified = self.model.scopes.qualified_name
        if name in _OFFLOADER_NAMES and qualified(func) in OFFLOADERS:
            return True
        if name is None or name not in self._offload_last:
            return False
        spelled = ast_dotted_name(func)
        if spelled is not None and any(
            spelled == entry or spelled.endswith("." + entry) for entry in self.offload
        ):
            return True
        return qualified(func) in self.offload


def identifiers(node: ast.AST) -> Counter[str]:
    """How often each identifier occurs in ``node``'s subtree, nested scopes included: names,
    and what ``spelled_names`` holds."""
    counts: Counter[str] = Counter()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            counts[child.id] += 1
        else:
            counts.update(spelled_names(child))
    return counts


#: ``try`` statements (``except*`` from Python 3.11)
TRY: tuple[type[ast.stmt], ...] = (ast.Try, getattr(ast, "TryStar", ast.Try))
#: statements with blocks (the others are simple statements, which LibCST puts on lines)
COMPOUND: tuple[type[ast.stmt], ...] = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.With,
    ast.AsyncWith,
    *TRY,
    ast.Match,
)


#: the nodes ``in_order`` yields without entering
NESTED = frozenset({ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef})


def in_order(node: ast.AST | list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node of ``node`` (or of a list of statements) in source order, not entering
    nested functions, lambdas or classes (which are yielded themselves); not the ``Load``/
    ``Store`` markers."""
    stack: list[ast.AST] = list(reversed(node)) if isinstance(node, list) else [node]
    while stack:
        current = stack.pop()
        yield current
        if type(current) in NESTED and current is not node:
            continue
        children = child_nodes(current)
        children.reverse()
        stack.extend(children)


def holding_list(parent: ast.AST, child: ast.AST) -> list[ast.stmt] | None:
    """The list of statements of ``parent`` (a body, ``orelse``, ``finalbody``) that holds
    ``child``, if one does."""
    for name in ("body", "orelse", "finalbody"):
        value = getattr(parent, name, None)
        if type(value) is list and any(item is child for item in value):
            return value
    return None


_HANDLERS: dict[type, tuple[tuple[type, str], ...]] = {}


def _handler_names(rule: type) -> tuple[tuple[type, str], ...]:
    """A rule class's ``on_<NodeType>`` handlers: (node type, method name)."""
    found = _HANDLERS.get(rule)
    if found is None:
        names = []
        for attr in dir(rule):
            if attr.startswith("on_"):
                kind = getattr(ast, attr[3:], None)
                if isinstance(kind, type):
                    names.append((kind, attr))
        found = _HANDLERS[rule] = tuple(names)
    return found


def _position(node: ast.AST) -> tuple[int, int]:
    return getattr(node, "lineno", 0), getattr(node, "col_offset", 0)


def names_in(node: ast.AST) -> set[str]:
    """Every name spelled in ``node``'s subtree (identifiers, attribute and keyword names,
    every part of a dotted import): to pick a fresh name that clashes with none."""
    found = set(identifiers(node))
    for child in ast.walk(node):
        if isinstance(child, ast.Attribute):
            found.add(child.attr)
        elif isinstance(child, ast.keyword) and child.arg:
            found.add(child.arg)
        elif isinstance(child, ast.alias):
            found.update(child.name.split("."))
        elif isinstance(child, ast.ImportFrom) and child.module:
            found.update(child.module.split("."))
    return found


def is_plain_assignment(scopes: Scopes, binding: Binding) -> bool:
    """The binding is ``name = ...``, ``name: T = ...`` or ``name := ...`` (not a ``for``,
    ``with``, unpacking, ``del`` or ``+=`` target)."""
    if binding.kind != "assign":
        return False
    if binding.value is not None:
        return True
    parent = scopes.parents.get(id(binding.node))
    return isinstance(parent, (ast.Assign, ast.AnnAssign, ast.NamedExpr))


def after_statement(model: SemanticModel, statement: ast.stmt) -> str:
    """What follows ``statement`` on its last line (stripped): "", a comment, ``; ...``."""
    source = model.source
    end_line = statement.end_lineno or statement.lineno
    last = source.lines[end_line - 1]
    return last[source.column(end_line, statement.end_col_offset or 0) :].strip()


def trailing_comment(model: SemanticModel, statement: ast.stmt) -> str | None:
    """The comment at the end of ``statement``'s last line, if there is one."""
    rest = after_statement(model, statement)
    return rest if rest.startswith("#") else None


def alone_on_its_line(model: SemanticModel, statement: ast.stmt) -> bool:
    """A simple statement that is the only one on its lines, as LibCST's
    ``SimpleStatementLine`` with one statement: not after ``if x:`` or a ``;``, and nothing but
    a comment after it."""
    source = model.source
    first = source.lines[statement.lineno - 1]
    if first[: source.column(statement.lineno, statement.col_offset)].strip():
        return False
    rest = after_statement(model, statement)
    return not rest or rest.startswith("#")


def _is_type_checking(test: ast.expr) -> bool:
    return ast_dotted_name(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _is_run_in_executor(call: ast.Call) -> bool:
    func = call.func
    return isinstance(func, ast.Attribute) and func.attr == "run_in_executor"
