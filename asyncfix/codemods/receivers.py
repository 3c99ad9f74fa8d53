"""What class a receiver is an instance of, for ``x.method()`` calls.

``client.connect()`` is a coroutine call only if ``client`` is known to be an instance of a
class whose ``connect`` is an ``async def`` — a sync twin of the same name on another class
must not be confused with it, so resolution goes by the receiver, never by the method name
alone. A receiver's class is known from:

- a local assigned only ``Client(...)`` (or ``await asyncpg.connect(...)`` for a library
  factory from the catalogue), or a parameter annotated ``Client`` / ``Client | None`` /
  ``Optional["Client"]``;
- ``self.client`` when every assignment to it in the class is ``Client(...)``, ``None``, or a
  parameter annotated with the class, or it is annotated with the class.

Anything else is unknown, and unknown means no finding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

from asyncfix.analysis.catalogue import LIBRARY_FACTORIES, LIBRARY_METHODS
from asyncfix.analysis.values import OPTIONAL_TYPES
from asyncfix.codemods.names import dotted_name, flatten_target
from asyncfix.codemods.walk import walk
from asyncfix.index import BLOCKING_METHODS, SAME_TYPE, ClassFact

if TYPE_CHECKING:
    from asyncfix.codemods.base import ClassFacts, Context


@dataclass(frozen=True)
class Type:
    """A receiver's class: from a library catalogue, the project index, or this module."""

    kind: str  # "library" | "project" | "local"
    name: str
    project: ClassFact | None = field(default=None, compare=False, hash=False)
    local: ClassFacts | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class Source:
    """One way ``self.x`` gets its value: the class it holds."""

    type: Type | None


UNKNOWN = Source(None)


class Receivers:
    """Answers ``type_of(expr)`` for the walk's current position."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._self_attributes: dict[int, dict[str, list[Source]]] = {}
        self._resolving: set[str] = set()

    # -- class expressions ------------------------------------------------------------

    def class_named(
        self, expr: cst.BaseExpression, scopes: Sequence[cst.CSTNode] | None = None
    ) -> Type | None:
        """The class an expression like ``Client`` / ``api.Client`` / ``httpx.AsyncClient``
        names, seen from ``scopes`` (where the expression is; the module by default): a
        function's own ``from trio import Path`` hides the module's ``pathlib.Path``."""
        ctx = self.ctx
        scopes = scopes or [ctx.module]
        if isinstance(expr, cst.Name):
            found = ctx.names.lookup(expr.value, scopes)
            local = ctx.classes.get(expr.value)
            if (
                found is not None
                and local is not None
                and all(binding.node is local.node for binding in found[1])
            ):
                return Type("local", expr.value, local=local)
        qualified = ctx.names.qualified_name(expr, scopes)
        if qualified is None:
            return None
        if qualified in LIBRARY_METHODS or qualified in BLOCKING_METHODS:
            return Type("library", qualified)
        if ctx.project is not None:
            target = ctx.project.absolute(qualified)
            fact = ctx.project.index.class_(target) if target else None
            if fact is not None:
                return Type("project", fact.qualified, project=fact)
        return None

    def annotation(self, annotation: cst.BaseExpression) -> Type | None:
        """The class an annotation names: ``Client``, ``Client | None``, ``Optional[Client]``,
        or the same as a string."""
        inner = self._unwrap_optional(annotation)
        if inner is None:
            return None
        if isinstance(inner, cst.SimpleString):
            text = inner.evaluated_value
            if not isinstance(text, str):
                return None
            try:
                inner = cst.parse_expression(text)
            except (cst.ParserSyntaxError, TypeError, ValueError):
                return None
            inner = self._unwrap_optional(inner)
            if inner is None:
                return None
        if isinstance(inner, (cst.Name, cst.Attribute)):
            return self.class_named(inner)
        return None

    def _unwrap_optional(self, node: cst.BaseExpression) -> cst.BaseExpression | None:
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
            sides = [node.left, node.right]
            others = [s for s in sides if not (isinstance(s, cst.Name) and s.value == "None")]
            return others[0] if len(others) == 1 else None
        if isinstance(node, cst.Subscript) and len(node.slice) == 1:
            qualified = self.ctx.names.qualified_name(node.value, [self.ctx.module])
            element = node.slice[0].slice
            if qualified in OPTIONAL_TYPES and isinstance(element, cst.Index):
                return element.value
        return node

    # -- receivers ----------------------------------------------------------------------

    def type_of(self, receiver: cst.BaseExpression) -> Type | None:
        if isinstance(receiver, cst.Name):
            return self._local(receiver)
        if (
            isinstance(receiver, cst.Attribute)
            and isinstance(receiver.value, cst.Name)
            and self.ctx.is_self(receiver.value)
        ):
            cls = self.ctx.enclosing_class()
            return self.self_attribute(cls, receiver.attr.value) if cls is not None else None
        # `Path(p).read_text()`, `(folder / "x").mkdir()`, where the walk is
        return self._value(receiver, self.ctx.scopes())

    def _local(self, name: cst.Name) -> Type | None:
        found = self.ctx.lookup(name.value)
        function = self.ctx.enclosing_function()
        if found is None or function is None or found[0] is not function:
            return None
        if name.value in self._resolving:
            return None  # `path = path / "x"`: the name's type depends on itself
        self._resolving.add(name.value)
        try:
            types: set[Type | None] = set()
            for binding in found[1]:
                if binding.kind == "param" and isinstance(binding.node, cst.Param):
                    annotation = binding.node.annotation
                    types.add(self.annotation(annotation.annotation) if annotation else None)
                elif binding.kind == "assign":
                    types.add(self._value(binding.value, self.ctx.scopes()))
                else:
                    return None
        finally:
            self._resolving.discard(name.value)
        return types.pop() if len(types) == 1 else None

    def _value(
        self, value: cst.BaseExpression | None, scopes: Sequence[cst.CSTNode]
    ) -> Type | None:
        """The class of ``Client(...)``, of ``await <library factory>(...)``, or of an
        expression the catalogue says keeps its operand's class (``folder / "x"``,
        ``path.parent``, ``Path.home()``); names are looked up from ``scopes``, where the
        expression is."""
        if isinstance(value, cst.Call):
            made = self.class_named(value.func, scopes)
            if made is not None:
                return made
            func = value.func
            if isinstance(func, cst.Attribute):
                # `path.with_suffix(".bak")` on an instance, `Path.home()` on the class
                owner = self.class_named(func.value, scopes) or self._operand(func.value)
                return _same_type(owner, "method", func.attr.value)
            return None
        if isinstance(value, cst.Await) and isinstance(value.expression, cst.Call):
            qualified = self.ctx.names.qualified_name(value.expression.func, scopes)
            if qualified in LIBRARY_FACTORIES:
                return Type("library", LIBRARY_FACTORIES[qualified])
            return None
        if isinstance(value, cst.Attribute):
            return _same_type(self._operand(value.value), "attribute", value.attr.value)
        if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Divide):
            return _same_type(self._operand(value.left), "operator", "/")
        return None

    def _operand(self, expr: cst.BaseExpression) -> Type | None:
        """The class of an instance inside a larger expression (library classes only)."""
        found = self.type_of(expr)
        return found if found is not None and found.kind == "library" else None

    def self_attribute(self, cls: cst.ClassDef, attribute: str) -> Type | None:
        """The one class ``self.<attribute>`` holds across the class, if there is one."""
        types = {source.type for source in self._sources(cls, attribute)}
        return types.pop() if len(types) == 1 else None

    def _sources(self, cls: cst.ClassDef, attribute: str) -> list[Source]:
        table = self._self_attributes.get(id(cls))
        if table is None:
            # while the class is being read, its own attributes are unknown
            # (`self.path = self.path.parent` must not recurse)
            self._self_attributes[id(cls)] = {}
            table = self._collect(cls)
            self._self_attributes[id(cls)] = table
        return table.get(attribute, [UNKNOWN])

    def _annotated(self, annotation: cst.BaseExpression) -> Source:
        return Source(self.annotation(annotation))

    def _collect(self, cls: cst.ClassDef) -> dict[str, list[Source]]:
        table: dict[str, list[Source]] = {}
        body = cls.body.body if isinstance(cls.body, cst.IndentedBlock) else ()
        for statement in body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
                        name = small.target.value
                        table.setdefault(name, []).append(
                            self._annotated(small.annotation.annotation)
                        )
            elif isinstance(statement, cst.FunctionDef):
                self._collect_method(cls, statement, table)
        return table

    def _collect_method(
        self, cls: cst.ClassDef, method: cst.FunctionDef, table: dict[str, list[Source]]
    ) -> None:
        scopes = [self.ctx.module, cls, method]
        params = [*method.params.posonly_params, *method.params.params]
        if not params:
            return
        receiver = params[0].name.value
        annotated = {
            p.name.value: p.annotation.annotation
            for p in [*params, *method.params.kwonly_params]
            if p.annotation is not None
        }

        def visit(node: cst.CSTNode) -> bool:
            if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)) and node is not method:
                return False
            targets: list[tuple[cst.BaseExpression, cst.BaseExpression | None]] = []
            if isinstance(node, cst.Assign):
                targets = [(t.target, node.value) for t in node.targets]
            elif isinstance(node, cst.AnnAssign):
                targets = [(node.target, node.value)]
                name = _self_attribute_name(node.target, receiver)
                if name is not None:
                    table.setdefault(name, []).append(self._annotated(node.annotation.annotation))
                    if node.value is None:
                        return True
            elif isinstance(node, (cst.AugAssign, cst.For, cst.WithItem, cst.NamedExpr)):
                rebound = _rebound_target(node)
                name = _self_attribute_name(rebound, receiver) if rebound is not None else None
                if name is not None:
                    table.setdefault(name, []).append(UNKNOWN)
                return True
            for assigned, value in targets:
                for element in flatten_target(assigned):
                    name = _self_attribute_name(element, receiver)
                    if name is None:
                        continue
                    if element is not assigned:
                        table.setdefault(name, []).append(UNKNOWN)  # tuple unpacking
                    elif isinstance(value, cst.Name) and value.value == "None":
                        continue  # `self.client = None` until connected: not a type
                    elif isinstance(value, cst.Name) and value.value in annotated:
                        table.setdefault(name, []).append(self._annotated(annotated[value.value]))
                    else:
                        table.setdefault(name, []).append(Source(self._value(value, scopes)))
            return True

        walk(method.body, visit)


def _same_type(owner: Type | None, kind: str, name: str) -> Type | None:
    if owner is None or owner.kind != "library":
        return None
    return owner if (kind, name) in SAME_TYPE.get(owner.name, frozenset()) else None


def _rebound_target(node: cst.CSTNode) -> cst.CSTNode | None:
    """The target a ``+=``, ``for``, ``with ... as`` or ``:=`` rebinds."""
    if isinstance(node, cst.WithItem):
        return node.asname.name if node.asname is not None else None
    if isinstance(node, (cst.AugAssign, cst.For, cst.NamedExpr)):
        return node.target
    return None


def _self_attribute_name(target: cst.CSTNode, receiver: str) -> str | None:
    if (
        isinstance(target, cst.Attribute)
        and isinstance(target.value, cst.Name)
        and target.value.value == receiver
    ):
        return dotted_name(target.attr)
    return None
