"""The classes a module defines at its top level, and what their bodies define: the methods a
name finds by the MRO as far as this module shows it."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from asyncfix.analysis.scopes import Scope, Scopes
from asyncfix.index import PASS_THROUGH_DECORATORS, ast_dotted_name, yields

Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class ClassShape:
    """What a class body defines, as far as methods go."""

    node: ast.ClassDef
    #: method name -> its definitions in the class body (several with overloads/properties)
    methods: dict[str, list[Function]]
    #: names bound in the class body other than by an unconditional def
    attributes: set[str]
    #: base classes as dotted names ("" when not a plain name)
    bases: list[str]


def is_coroutine_function(node: ast.AST) -> bool:
    """An ``async def`` whose decorators are all known to keep it a coroutine function, and
    that does not ``yield`` (an async generator function's call is iterated, not awaited)."""
    if not isinstance(node, ast.AsyncFunctionDef):
        return False
    if not all(ast_dotted_name(d) in PASS_THROUGH_DECORATORS for d in node.decorator_list):
        return False
    return not yields(node)


class Classes:
    """The module's top-level classes (also under top-level ``if``/``try``), by name."""

    def __init__(self, tree: ast.Module, scopes: Scopes) -> None:
        self.scopes = scopes
        self.shapes = {
            statement.name: _shape(statement)
            for statement in top_level_statements(tree.body)
            if isinstance(statement, ast.ClassDef)
        }

    def shape(self, cls: ast.ClassDef) -> ClassShape | None:
        found = self.shapes.get(cls.name)
        return found if found is not None and found.node is cls else None

    def lookup_method(self, shape: ClassShape, name: str) -> list[Function] | None:
        """The definitions of ``name`` the class gets by the MRO, looking only at this
        module; None when that cannot be known (a class attribute, or a base from
        elsewhere that comes first)."""
        return lookup_in_bases(shape, name, self.shapes)

    def method_class(self, receiver: ast.Name) -> ast.ClassDef | None:
        """The class whose method ``receiver`` is the ``self``/``cls`` of: the first parameter
        of a function directly in a class body (read there or in a comprehension of it), not
        a ``staticmethod``, never rebound."""
        scope = function_scope(self.scopes.scope_of(receiver))
        if scope is None or scope.parent is None or scope.parent.kind != "class":
            return None
        function = scope.node
        assert isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
        params = [*function.args.posonlyargs, *function.args.args]
        if not params or params[0].arg != receiver.id:
            return None
        if any(ast_dotted_name(d) == "staticmethod" for d in function.decorator_list):
            return None
        found = self.scopes.lookup(receiver.id, scope)
        if found is None or found[0] is not scope or len(found[1]) != 1:
            return None
        cls = scope.parent.node
        assert isinstance(cls, ast.ClassDef)
        return cls


class Shape(Protocol):
    """What the MRO search needs of a class body (``ClassShape``)."""

    @property
    def methods(self) -> Mapping[str, Sequence[Any]]: ...

    @property
    def attributes(self) -> AbstractSet[str]: ...

    @property
    def bases(self) -> Sequence[str]: ...


S = TypeVar("S", bound=Shape)


def lookup_in_bases(start: S, name: str, shapes: Mapping[str, S]) -> list[Any] | None:
    """The definitions of ``name`` that ``start`` gets by the MRO, through the classes of
    ``shapes`` (this module's, by name); None when that cannot be known: the name is a
    class attribute, or a base that is not in ``shapes`` comes before the one defining it."""
    seen: set[int] = set()

    def search(current: S) -> Sequence[Any] | bool | None:
        if id(current) in seen:
            return False
        seen.add(id(current))
        if name in current.attributes:
            return None
        if name in current.methods:
            return current.methods[name]
        for base in current.bases:
            if base in ("object", "Generic", "ABC") or base.startswith(("typing.", "abc.ABC")):
                continue
            found_base = shapes.get(base)
            if found_base is None:
                return None  # unknown base: it may define the name
            found = search(found_base)
            if found is not False:
                return found
        return False

    result = search(start)
    return None if result is False or result is True or result is None else list(result)


def function_scope(scope: Scope | None) -> Scope | None:
    """The function a scope belongs to, through comprehensions (not lambdas or classes)."""
    while scope is not None and scope.kind == "comprehension":
        scope = scope.parent
    return scope if scope is not None and scope.kind == "function" else None


def top_level_statements(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """Module statements, looking into top-level ``if``/``try`` blocks (import guards)."""
    for statement in body:
        yield statement
        if isinstance(statement, ast.If):
            yield from top_level_statements(statement.body)
            yield from top_level_statements(statement.orelse)
        elif isinstance(statement, ast.Try):
            yield from top_level_statements(statement.body)
            for handler in statement.handlers:
                yield from top_level_statements(handler.body)


def _shape(node: ast.ClassDef) -> ClassShape:
    methods: dict[str, list[Function]] = {}
    attributes: set[str] = set()
    for statement in node.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            methods.setdefault(statement.name, []).append(statement)
        elif isinstance(statement, ast.ClassDef):
            attributes.add(statement.name)
        elif isinstance(statement, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            # definitions under a condition: every name bound there is unknown
            for sub in _nested_statements(statement):
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    attributes.add(sub.name)
                else:
                    attributes.update(_assigned_names(sub))
        else:
            attributes.update(_assigned_names(statement))
    bases = [
        ast_dotted_name(base.value if isinstance(base, ast.Subscript) else base) or ""
        for base in node.bases
    ]
    return ClassShape(node, methods, attributes, bases)


def _nested_statements(node: ast.stmt) -> Iterator[ast.stmt]:
    for field in ("body", "orelse", "finalbody", "handlers"):
        for child in getattr(node, field, []):
            if isinstance(child, ast.ExceptHandler):
                for sub in child.body:
                    yield sub
                    if not isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        yield from _nested_statements(sub)
                continue
            yield child
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield from _nested_statements(child)


def _assigned_names(statement: ast.stmt) -> Iterator[str]:
    if isinstance(statement, ast.Assign):
        for target in statement.targets:
            if isinstance(target, ast.Name):
                yield target.id
    elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)) and isinstance(
        statement.target, ast.Name
    ):
        yield statement.target.id


def self_name(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The name of ``self`` in a method: its first parameter, unless it is a static or class
    method (or has none)."""
    params = [*function.args.posonlyargs, *function.args.args]
    if not params:
        return None
    if any(ast_dotted_name(d) in ("staticmethod", "classmethod") for d in function.decorator_list):
        return None
    return params[0].arg
