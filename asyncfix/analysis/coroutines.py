"""Is this call a call of a coroutine function? The stdlib model's answer, from what is
certain: the library catalogue, the project index, the module's own ``async def``s, and the
methods of the enclosing class (in this module, by the MRO as far as this module shows it,
then through the index for bases elsewhere).

The second layer of the semantic model; it answers as ``codemods/coroutines.py`` does for
those sources (``scripts/coroutines_check.py`` compares the two on a corpus: where this one
says yes, the LibCST one must too). Receivers of known classes and async callback parameters,
which the LibCST version also knows, are not here yet.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from asyncfix.analysis.scopes import Scope, Scopes
from asyncfix.index import PASS_THROUGH_DECORATORS, ast_dotted_name

if TYPE_CHECKING:
    from asyncfix.codemods.base import Project

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
    """An ``async def`` whose decorators are all known to keep it a coroutine function."""
    if not isinstance(node, ast.AsyncFunctionDef):
        return False
    return all(ast_dotted_name(d) in PASS_THROUGH_DECORATORS for d in node.decorator_list)


class Coroutines:
    """``callee(call)``: why the call's callee is known to be a coroutine function, or None."""

    def __init__(
        self,
        tree: ast.Module,
        scopes: Scopes,
        project: Project | None = None,
        library: frozenset[str] = frozenset(),
    ) -> None:
        self.tree = tree
        self.scopes = scopes
        self.project = project
        self.library = library
        self.classes = {
            statement.name: _shape(statement)
            for statement in top_level_statements(tree.body)
            if isinstance(statement, ast.ClassDef)
        }

    def callee(self, call: ast.Call) -> str | None:
        func = call.func
        qualified = self.scopes.qualified_name(func)
        if qualified in self.library:
            return f"`{qualified}` is a library coroutine function"
        project = self.project
        if qualified is not None and project is not None:
            target = project.absolute(qualified)
            fact = project.index.function(target) if target else None
            if fact is not None and fact.is_coroutine:
                return f"`{fact.qualified}` is an `async def`"
        if isinstance(func, ast.Name):
            definition = self._module_coroutine(func)
            if definition is not None:
                return f"`{func.id}` is defined with `async def` at line {definition.lineno}"
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            method = self._own_method(func.value, func.attr)
            if method is not None:
                return method
        return None

    def _module_coroutine(self, name: ast.Name) -> Function | None:
        """The module-level ``async def`` that is every binding of ``name``."""
        found = self.scopes.resolve(name)
        if found is None or found[0] is not self.scopes.module:
            return None
        definitions: list[Function] = []
        for binding in found[1]:
            if not is_coroutine_function(binding.node):
                return None
            assert isinstance(binding.node, ast.AsyncFunctionDef)
            definitions.append(binding.node)
        return definitions[-1] if definitions else None

    # -- self.method() -------------------------------------------------------------------

    def _own_method(self, receiver: ast.Name, method: str) -> str | None:
        scope = self.scopes.scope_of(receiver)
        cls = self._method_class(receiver, scope)
        if cls is None:
            return None
        shape = self.classes.get(cls.name)
        if shape is None or shape.node is not cls:
            return None
        definitions = self._lookup_method(shape, method)
        if definitions is None:
            return self._inherited(cls, method)
        if not definitions or not all(is_coroutine_function(d) for d in definitions):
            return None
        return f"`{method}` is an `async def` method at line {definitions[-1].lineno}"

    def _method_class(self, receiver: ast.Name, scope: Scope | None) -> ast.ClassDef | None:
        """The class whose method ``receiver`` is the ``self``/``cls`` of: the first parameter
        of a function directly in a class body, not a ``staticmethod``, never rebound."""
        if scope is None or scope.kind != "function" or scope.parent is None:
            return None
        if scope.parent.kind != "class":
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

    def _lookup_method(self, shape: ClassShape, name: str) -> list[Function] | None:
        """The definitions of ``name`` the class gets by the MRO, looking only at this
        module; None when that cannot be known (a class attribute, or a base from
        elsewhere that comes first)."""
        seen: set[str] = set()

        def search(current: ClassShape) -> list[Function] | bool | None:
            if current.node.name in seen:
                return False
            seen.add(current.node.name)
            if name in current.attributes:
                return None
            if name in current.methods:
                return current.methods[name]
            for base in current.bases:
                if base in ("object", "Generic") or base.startswith(("typing.", "abc.ABC")):
                    continue
                if base == "ABC":
                    continue
                base_shape = self.classes.get(base)
                if base_shape is None:
                    return None
                found = search(base_shape)
                if found is not False:
                    return found
            return False

        result = search(shape)
        return None if result is False or result is True else result

    def _inherited(self, cls: ast.ClassDef, method: str) -> str | None:
        project = self.project
        if project is None:
            return None
        fact = project.index.class_(f"{project.module.name}.{cls.name}")
        found = project.index.method(fact, method) if fact is not None else None
        if found is None or not found.is_coroutine:
            return None
        return f"`{found.qualified}` is an inherited `async def` method"


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
