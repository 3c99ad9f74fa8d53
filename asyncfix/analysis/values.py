"""What a value may be: the class an expression is an instance of, and whether a callable
is an async callback -- the value lattice of the semantic model, on the stdlib tree.

``client.connect()`` is a coroutine call only if ``client`` is known to be an instance of a
class whose ``connect`` is an ``async def``; a sync twin of the same name on another class
must not be confused with it, so resolution goes by the receiver, never by the method name
alone. A value's class is known from:

- a local assigned only ``Client(...)`` (or ``await asyncpg.connect(...)`` for a library
  factory from the catalogue), or a parameter annotated ``Client`` / ``Client | None`` /
  ``Optional["Client"]``;
- ``self.client`` when every assignment to it in the class is ``Client(...)``, ``None``, or a
  parameter annotated with the class, or it is annotated with the class;
- an expression the catalogue says keeps its operand's class (``folder / "x"``,
  ``path.parent``, ``Path.home()``).

Anything else is unknown, and unknown means no finding.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from asyncfix.analysis.catalogue import LIBRARY_FACTORIES, LIBRARY_METHODS
from asyncfix.analysis.classes import (
    Classes,
    ClassShape,
    Function,
    function_scope,
    is_coroutine_function,
)
from asyncfix.analysis.scopes import Scope, Scopes
from asyncfix.index import BLOCKING_METHODS, SAME_TYPE, ClassFact, FunctionFact, child_nodes

#: the calls that open a file and return its file object
FILE_OPENERS = frozenset({"builtins.open", "io.open", "os.fdopen", "io.open_code"})

if TYPE_CHECKING:
    from asyncfix.codemods.base import Project

AWAITABLE_TYPES = frozenset(
    {
        "typing.Awaitable",
        "typing.Coroutine",
        "collections.abc.Awaitable",
        "collections.abc.Coroutine",
    }
)
CALLABLE_TYPES = frozenset({"typing.Callable", "collections.abc.Callable"})
OPTIONAL_TYPES = frozenset({"typing.Optional"})


@dataclass(frozen=True)
class Type:
    """A value's class: from a library catalogue, the project index, or this module."""

    kind: str  # "library" | "project" | "local"
    name: str
    project: ClassFact | None = field(default=None, compare=False, hash=False)
    local: ClassShape | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class Source:
    """One way ``self.x`` gets its value: the class it holds, or an async callback."""

    type: Type | None
    awaitable_callable: bool


UNKNOWN = Source(None, False)


class Values:
    """``type_of(expr)``: the one class an expression is known to be an instance of."""

    def __init__(self, scopes: Scopes, classes: Classes, project: Project | None) -> None:
        self.scopes = scopes
        self.classes = classes
        self.project = project
        self._self_attributes: dict[int, dict[str, list[Source]]] = {}
        self._resolving: set[tuple[int, str]] = set()
        self._nonlocal: dict[int, frozenset[str]] = {}
        self._globals: frozenset[str] | None = None

    # -- class expressions ------------------------------------------------------------

    def class_named(self, expr: ast.expr, scope: Scope) -> Type | None:
        """The class an expression like ``Client`` / ``api.Client`` / ``httpx.AsyncClient``
        names, read in ``scope``: a function's own ``from trio import Path`` hides the
        module's ``pathlib.Path``."""
        if isinstance(expr, ast.Name):
            found = self.scopes.lookup(expr.id, scope)
            local = self.classes.shapes.get(expr.id)
            if (
                found is not None
                and local is not None
                and all(binding.node is local.node for binding in found[1])
            ):
                return Type("local", expr.id, local=local)
        qualified = self.scopes.qualified_name_at(expr, scope)
        if qualified is None:
            return None
        if qualified in LIBRARY_METHODS or qualified in BLOCKING_METHODS:
            return Type("library", qualified)
        project = self.project
        if project is not None:
            target = project.absolute(qualified)
            fact = project.index.class_(target) if target else None
            if fact is not None:
                return Type("project", fact.qualified, project=fact)
        return None

    def annotation(self, annotation: ast.expr) -> Type | None:
        """The class an annotation names: ``Client``, ``Client | None``, ``Optional[Client]``,
        or the same as a string. Names in annotations are read at module level."""
        module = self.scopes.module
        inner = self._unwrap_optional(annotation)
        if isinstance(inner, ast.Constant):
            if not isinstance(inner.value, str):
                return None
            parsed = _parse_annotation(inner.value)
            inner = self._unwrap_optional(parsed) if parsed is not None else None
        if isinstance(inner, (ast.Name, ast.Attribute)):
            return self.class_named(inner, module)
        return None

    def _type_alias(self, name: str) -> ast.expr | None:
        """The value of a module-level ``Name = <subscript>`` (``Name: TypeAlias = ...``, or
        the same as a string) that is the name's one binding."""
        bindings = self.scopes.module.bindings.get(name, [])
        if len(bindings) != 1 or bindings[0].kind != "assign":
            return None
        value = bindings[0].value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            value = _parse_annotation(value.value)  # `Name: TypeAlias = "Callable[...]"`
        return value if isinstance(value, ast.Subscript) else None

    def _unwrap_optional(self, node: ast.expr) -> ast.expr | None:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            sides = [node.left, node.right]
            others = [s for s in sides if not (isinstance(s, ast.Constant) and s.value is None)]
            return others[0] if len(others) == 1 else None
        if isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Tuple):
            qualified = self.scopes.qualified_name_at(node.value, self.scopes.module)
            if qualified in OPTIONAL_TYPES and not isinstance(node.slice, ast.Slice):
                return node.slice
        return node

    def is_awaitable_callable(self, annotation: ast.expr, depth: int = 0) -> bool:
        """``Callable[..., Awaitable[X]]`` / ``Callable[[A], Coroutine[...]]`` (optional too),
        or a module-level type alias of one (``Handler = Callable[...]``)."""
        inner = self._unwrap_optional(annotation)
        if isinstance(inner, ast.Name) and depth < 3:
            aliased = self._type_alias(inner.id)
            if aliased is not None:
                return self.is_awaitable_callable(aliased, depth + 1)
        if isinstance(inner, (ast.Name, ast.Attribute)) and self.project is not None:
            # an alias another project module defines (`from .typedefs import Handler`)
            dotted = self.scopes.qualified_name_at(inner, self.scopes.module)
            target = self.project.absolute(dotted) if dotted is not None else None
            return target is not None and self.project.index.is_async_callback_alias(target)
        if not isinstance(inner, ast.Subscript):
            return False
        elements = inner.slice
        if not isinstance(elements, ast.Tuple) or len(elements.elts) != 2:
            return False
        module = self.scopes.module
        if self.scopes.qualified_name_at(inner.value, module) not in CALLABLE_TYPES:
            return False
        returned = elements.elts[1]
        if isinstance(returned, ast.Slice):
            return False
        awaited = returned.value if isinstance(returned, ast.Subscript) else returned
        return self.scopes.qualified_name_at(awaited, module) in AWAITABLE_TYPES

    # -- values -------------------------------------------------------------------------

    def type_of(self, value: ast.expr) -> Type | None:
        """The class of ``value`` (a local, ``self.attribute`` or an expression) where it is."""
        if isinstance(value, ast.Name):
            return self._local(value)
        if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name):
            cls = self.classes.method_class(value.value)
            if cls is not None:
                return self.self_attribute(cls, value.attr)
        scope = self._scope_of(value)
        return self._value(value, scope) if scope is not None else None

    def _scope_of(self, value: ast.expr) -> Scope | None:
        """The scope an expression is read in: that of its first name."""
        for node in ast.walk(value):
            if isinstance(node, ast.Name):
                return self.scopes.scope_of(node)
        return None

    def _local(self, name: ast.Name) -> Type | None:
        """The class of a function's local or parameter, read in that function or in one
        nested in it (a closure: then no nested function may rebind it with
        ``nonlocal``), or of a module-level name no function declares ``global``. An
        annotated assignment's annotation names the class, when it is one the model knows."""
        scope = self.scopes.scope_of(name)
        if scope is None:
            return None
        found = self.scopes.lookup(name.id, scope)
        if found is None or found[0].kind not in ("function", "module"):
            return None
        function = found[0]
        if function.kind == "module":
            if name.id in self.global_names():
                return None  # a function rebinds it with `global`
        elif function is not function_scope(scope) and name.id in self._nonlocal_names(function):
            return None
        key = id(function.node), name.id
        if key in self._resolving:
            return None  # `path = path / "x"`: the name's type depends on itself
        self._resolving.add(key)
        try:
            types: set[Type | None] = set()
            for binding in found[1]:
                if binding.kind == "param" and isinstance(binding.node, ast.arg):
                    annotation = binding.node.annotation
                    types.add(self.annotation(annotation) if annotation is not None else None)
                elif binding.kind == "assign":
                    holder = self.scopes.parents.get(id(binding.value))
                    declared = (
                        self.annotation(holder.annotation)
                        if isinstance(holder, ast.AnnAssign) and holder.value is binding.value
                        else None
                    )  # `client: httpx.Client = make()`
                    types.add(declared or self._value(binding.value, function))
                else:
                    return None
        finally:
            self._resolving.discard(key)
        return types.pop() if len(types) == 1 else None

    def global_names(self) -> frozenset[str]:
        """The names some function of the module declares ``global``."""
        if self._globals is None:
            self._globals = frozenset(
                name
                for node in self.scopes.by_type.get(ast.Global, ())
                for name in node.names  # type: ignore[attr-defined]
            )
        return self._globals

    def _nonlocal_names(self, function: Scope) -> frozenset[str]:
        """The names functions nested in ``function`` declare ``nonlocal``."""
        found = self._nonlocal.get(id(function.node))
        if found is None:
            found = self._nonlocal[id(function.node)] = frozenset(
                name
                for node in ast.walk(function.node)
                if isinstance(node, ast.Nonlocal)
                for name in node.names
            )
        return found

    def _value(self, value: ast.expr | None, scope: Scope) -> Type | None:
        """The class of ``Client(...)``, of ``await <library factory>(...)``, or of an
        expression the catalogue says keeps its operand's class; names read in ``scope``."""
        if isinstance(value, ast.Call):
            made = self.class_named(value.func, scope)
            if made is not None:
                return made
            opened = self._opened(value, scope)
            if opened is not None:
                return opened
            func = value.func
            if isinstance(func, ast.Attribute):
                # `path.with_suffix(".bak")` on an instance, `Path.home()` on the class
                owner = self.class_named(func.value, scope) or self._operand(func.value)
                return _same_type(owner, "method", func.attr)
            return None
        if isinstance(value, ast.Await) and isinstance(value.value, ast.Call):
            call = value.value
            qualified = self.scopes.qualified_name_at(call.func, scope)
            if qualified in LIBRARY_FACTORIES:
                return Type("library", LIBRARY_FACTORIES[qualified])
            if qualified == "asyncio.to_thread" and call.args:
                # `await asyncio.to_thread(open, path)`: opened in a worker thread
                first = call.args[0]
                if self.scopes.qualified_name_at(first, scope) in FILE_OPENERS:
                    rest = ast.Call(func=first, args=call.args[1:], keywords=call.keywords)
                    return self._opened(rest, scope)
            return None
        if isinstance(value, ast.Name):
            return self._local(value)  # `f = other`: what `other` is
        if isinstance(value, ast.Attribute):
            return _same_type(self._operand(value.value), "attribute", value.attr)
        if isinstance(value, ast.BinOp) and isinstance(value.op, ast.Div):
            return _same_type(self._operand(value.left), "operator", "/")
        return None

    def _opened(self, call: ast.Call, scope: Scope) -> Type | None:
        """The file object ``open(path, mode)`` (``io.open``, ``os.fdopen``) makes: a text
        file, or a binary one for a ``b`` mode (reading, writing, or both); a mode that is
        not a constant may be either, and is taken for the one with every method."""
        if self.scopes.qualified_name_at(call.func, scope) not in FILE_OPENERS:
            return None
        mode: ast.expr | None = call.args[1] if len(call.args) > 1 else None
        for keyword in call.keywords:
            if keyword.arg == "mode":
                mode = keyword.value
            elif keyword.arg is None:
                return None  # `**options` may hold the mode
        if mode is None:
            return Type("library", "io.TextIOWrapper")
        if not isinstance(mode, ast.Constant) or not isinstance(mode.value, str):
            return Type("library", "io.BufferedRandom")
        text = mode.value
        if "b" not in text:
            return Type("library", "io.TextIOWrapper")
        if "+" in text:
            return Type("library", "io.BufferedRandom")
        return Type("library", "io.BufferedReader" if "r" in text else "io.BufferedWriter")

    def _operand(self, expr: ast.expr) -> Type | None:
        """The class of an instance inside a larger expression (library classes only)."""
        found = self.type_of(expr)
        return found if found is not None and found.kind == "library" else None

    def coroutine_method(self, owner: Type, method: str) -> FunctionFact | Function | str | None:
        """The coroutine ``method`` is on ``owner`` (a library name, an index fact or a local
        ``async def``), or None when it is not known to be one."""
        project = self.project
        if owner.kind == "library":
            known = LIBRARY_METHODS.get(owner.name, frozenset())
            return f"{owner.name}.{method}" if method in known else None
        if owner.kind == "project" and project is not None:
            found = project.index.method(owner.project, method)
            return found if found is not None and found.is_coroutine else None
        if owner.kind == "local" and owner.local is not None:
            definitions = self.classes.lookup_method(owner.local, method)
            if definitions is None and project is not None:
                fact = project.index.class_(f"{project.module.name}.{owner.name}")
                found = project.index.method(fact, method) if fact is not None else None
                return found if found is not None and found.is_coroutine else None
            if definitions and all(is_coroutine_function(d) for d in definitions):
                return definitions[-1]
        return None

    # -- attributes of self -------------------------------------------------------------

    def self_attribute(self, cls: ast.ClassDef, attribute: str) -> Type | None:
        """The one class ``self.<attribute>`` holds across the class, if there is one."""
        types = {source.type for source in self._sources(cls, attribute)}
        return types.pop() if len(types) == 1 else None

    def is_awaitable_callable_attribute(self, cls: ast.ClassDef, attribute: str) -> bool:
        """Every value ``self.<attribute>`` gets is annotated ``Callable[..., Awaitable[...]]``
        (an async callback stored on the object)."""
        sources = self._sources(cls, attribute)
        return sources != [UNKNOWN] and all(source.awaitable_callable for source in sources)

    def _sources(self, cls: ast.ClassDef, attribute: str) -> list[Source]:
        table = self._self_attributes.get(id(cls))
        if table is None:
            # while the class is being read, its own attributes are unknown
            # (`self.path = self.path.parent` must not recurse)
            self._self_attributes[id(cls)] = {}
            table = self._collect(cls)
            self._self_attributes[id(cls)] = table
        return table.get(attribute, [UNKNOWN])

    def _annotated(self, annotation: ast.expr) -> Source:
        return Source(self.annotation(annotation), self.is_awaitable_callable(annotation))

    def _collect(self, cls: ast.ClassDef) -> dict[str, list[Source]]:
        table: dict[str, list[Source]] = {}
        for statement in cls.body:
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                name = statement.target.id
                table.setdefault(name, []).append(self._annotated(statement.annotation))
            elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._collect_method(statement, table)
        return table

    def _collect_method(self, method: Function, table: dict[str, list[Source]]) -> None:
        scope = self.scopes.scope_of(method)
        params = [*method.args.posonlyargs, *method.args.args]
        if not params or scope is None:
            return
        receiver = params[0].arg
        annotated = {
            p.arg: p.annotation
            for p in [*params, *method.args.kwonlyargs]
            if p.annotation is not None
        }

        def add(name: str, source: Source) -> None:
            table.setdefault(name, []).append(source)

        def assigned(target: ast.expr, value: ast.expr) -> None:
            for element in flatten_target(target):
                name = own_attribute(element, receiver)
                if name is None:
                    continue
                if element is not target:
                    add(name, UNKNOWN)  # tuple unpacking
                elif isinstance(value, ast.Constant) and value.value is None:
                    continue  # `self.client = None` until connected: not a type
                elif isinstance(value, ast.Name) and value.id in annotated:
                    add(name, self._annotated(annotated[value.id]))
                else:
                    add(name, Source(self._value(value, scope), False))

        stack: list[ast.AST] = list(reversed(method.body))
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    assigned(target, node.value)
            elif isinstance(node, ast.AnnAssign):
                name = own_attribute(node.target, receiver)
                if name is not None:
                    add(name, self._annotated(node.annotation))
                if node.value is not None:
                    assigned(node.target, node.value)
            elif isinstance(node, (ast.AugAssign, ast.For, ast.AsyncFor)):
                name = own_attribute(node.target, receiver)
                if name is not None:
                    add(name, UNKNOWN)
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                name = own_attribute(node.optional_vars, receiver)
                if name is not None:
                    add(name, UNKNOWN)
            stack.extend(reversed(child_nodes(node)))


def _parse_annotation(text: str) -> ast.expr | None:
    try:
        return ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _same_type(owner: Type | None, kind: str, name: str) -> Type | None:
    if owner is None or owner.kind != "library":
        return None
    return owner if (kind, name) in SAME_TYPE.get(owner.name, frozenset()) else None


def flatten_target(target: ast.expr) -> list[ast.expr]:
    """An assignment target and, for ``a, (b, *c) = ...``, every element inside it."""
    if isinstance(target, (ast.Tuple, ast.List)):
        out: list[ast.expr] = [target]
        for element in target.elts:
            out.extend(flatten_target(element))
        return out
    if isinstance(target, ast.Starred):
        return flatten_target(target.value)
    return [target]


def own_attribute(target: ast.AST, receiver: str) -> str | None:
    """``x`` for ``self.x`` exactly (``receiver`` is the name of ``self``)."""
    if (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == receiver
    ):
        return target.attr
    return None
