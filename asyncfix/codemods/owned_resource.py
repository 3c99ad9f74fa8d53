"""AF503 stored-resource-never-closed: a class keeps an async resource on ``self`` and
nothing ever closes it.

AF501 leaves a resource alone once it is stored on ``self``: the object owns it from then
on. This rule checks the owner. It stays silent whenever someone else might close the
resource: any code in the module calls ``.close()``/``.aclose()`` on that attribute, a class
of the module hands the attribute out (returns it, passes it to a call, puts it in a
container, enters it with ``async with``), or the class has a base outside this module that
could close it.
"""

from __future__ import annotations

import ast

import libcst as cst

from asyncfix.codemods.base import Context, Project, Rule, ast_nodes, source_of
from asyncfix.codemods.races import in_order, self_name
from asyncfix.codemods.unclosed_resource import (
    call_name,
    passed_over_resource,
    resource_names,
    resource_of,
)
from asyncfix.codemods.walk import descendants
from asyncfix.index import NEUTRAL_BASES
from asyncfix.model import Safety, Severity

#: methods of a resource that close it
_CLOSERS = frozenset({"close", "aclose", "disconnect", "terminate", "shutdown", "__aexit__"})


class StoredResourceNeverClosed(Rule):
    code = "AF503"
    name = "stored-resource-never-closed"
    summary = "a class stores an async client or connection on `self` and never closes it"
    why = (
        "An object that makes its own `aiohttp.ClientSession`, `httpx.AsyncClient` or "
        "database pool owns it: when nothing in the class ever closes it, every instance "
        "leaks its connections, and there is no method a caller could call to release them."
    )
    example_before = """\
import aiohttp


class Weather:
    def __init__(self):
        self.session = aiohttp.ClientSession()

    async def today(self, url):
        async with self.session.get(url) as response:
            return await response.json()
"""
    example_after = """\
import aiohttp


class Weather:
    def __init__(self):
        self.session = aiohttp.ClientSession()

    async def today(self, url):
        async with self.session.get(url) as response:
            return await response.json()

    async def close(self):
        await self.session.close()
"""
    fix_safety = Safety.NONE
    fix_safety_note = (
        "Report only: who should call the new `close()` (a shutdown hook, `__aexit__`, the "
        "code that made the object) is the author's design. Not reported when any code in the "
        "class or the module closes the attribute, when the class hands the attribute out "
        "(returns it, passes it to a call, stores it elsewhere), or when the class has a base "
        "defined outside the module, which could close it."
    )
    severity = Severity.MEDIUM
    kind = "Resource leak"
    needles = ("self",)
    needs_index = True

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        """``self.<x> = <resource constructor>(...)`` somewhere in a class."""
        names = resource_names(project, tree)
        for node in ast_nodes(tree):
            if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
                continue
            if not any(isinstance(target, ast.Attribute) for target in _ast_targets(node)):
                continue
            name = call_name(node.value)
            if name in names:
                return True
            passed_over_resource(project, name)
        return False

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._closed_in_module: set[str] | None = None
        self._classes: dict[str, cst.ClassDef] | None = None

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if not self._bases_visible(node):
            return
        methods = [
            statement for statement in node.body.body if isinstance(statement, cst.FunctionDef)
        ]
        stored: dict[str, tuple[cst.BaseExpression, str]] = {}
        for method in methods:
            receiver = self_name(method)
            if receiver is None:
                continue
            for statement in in_order(method.body):
                target, value = _stored(statement, receiver)
                if target is None or value is None or target in stored:
                    continue
                found = resource_of(self.ctx, value)
                if found is not None:
                    stored[target] = (value, found[1].close)
        if not stored:
            return
        # the class's relatives in this module (a base's property, a subclass's close) may
        # hand the attribute on: every class of the module counts
        related = [node, *(c for c in self._module_classes().values() if c is not node)]
        handled = self._closed_anywhere().union(
            *(self._handled(cls, set(stored)) for cls in related)
        )
        for attribute, (value, close) in stored.items():
            if attribute in handled:
                continue
            call = value.expression if isinstance(value, cst.Await) else value
            assert isinstance(call, cst.Call)
            self.report(
                value,
                f"`self.{attribute} = {source_of(call.func)}(...)` is never closed: nothing in "
                f"`{node.name.value}` closes or hands on `self.{attribute}`; add an "
                f"`async def close()` that awaits `self.{attribute}.{close}()`, and call it "
                "when the object is done",
            )

    def _bases_visible(self, node: cst.ClassDef) -> bool:
        """Every base is neutral or a class of this module (whose code the module check
        covers); a base from elsewhere could close the attribute."""
        classes = self._module_classes()
        for base in node.bases:
            if base.keyword is not None:
                continue
            name = source_of(base.value)
            if name in NEUTRAL_BASES or name in classes:
                continue
            return False
        return True

    def _module_classes(self) -> dict[str, cst.ClassDef]:
        if self._classes is None:
            self._classes = {
                statement.name.value: statement
                for statement in self.ctx.module.body
                if isinstance(statement, cst.ClassDef)
            }
        return self._classes

    def _handled(self, node: cst.ClassDef, attributes: set[str]) -> set[str]:
        """The attributes the class closes or hands on somewhere."""
        handled: set[str] = set()
        for method in node.body.body:
            if not isinstance(method, cst.FunctionDef):
                continue
            receiver = self_name(method)
            if receiver is None:
                continue
            parents: dict[int, cst.CSTNode] = {}
            for child in descendants(method.body, parents):
                if not (
                    isinstance(child, cst.Attribute)
                    and isinstance(child.value, cst.Name)
                    and child.value.value == receiver
                    and child.attr.value in attributes
                ):
                    continue
                parent = parents.get(id(child))
                if isinstance(parent, cst.Attribute) and parent.value is child:
                    continue  # self.session.get(...): a use
                if isinstance(parent, cst.AssignTarget) or (
                    isinstance(parent, (cst.AnnAssign, cst.AugAssign)) and parent.target is child
                ):
                    continue  # stored into, not handed on
                if isinstance(parent, (cst.Comparison, cst.ComparisonTarget, cst.If)):
                    continue  # `if self.session is None`, `if self.session:`
                if isinstance(parent, (cst.UnaryOperation, cst.BooleanOperation)):
                    continue  # `not self.session`, `self.session and ...`
                handled.add(child.attr.value)  # returned, passed, stored, entered: handed on
        return handled

    def _closed_anywhere(self) -> set[str]:
        """Attributes closed anywhere in the module: ``<anything>.<attr>.close()``, and
        ``<anything>.<attr>.session.close()`` for a resource its ``session`` closes."""
        if self._closed_in_module is None:
            closed: set[str] = set()
            for child in descendants(self.ctx.module):
                if isinstance(child, cst.Attribute) and child.attr.value in _CLOSERS:
                    inner = child.value
                    while isinstance(inner, cst.Attribute):
                        closed.add(inner.attr.value)
                        inner = inner.value
            self._closed_in_module = closed
        return self._closed_in_module


def _ast_targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return list(node.targets) if isinstance(node, ast.Assign) else [node.target]


def _stored(node: cst.CSTNode, receiver: str) -> tuple[str | None, cst.BaseExpression | None]:
    """``self.<attr> = <value>`` (or annotated): the attribute and the value."""
    if isinstance(node, cst.Assign) and len(node.targets) == 1:
        target: cst.BaseExpression = node.targets[0].target
        value: cst.BaseExpression | None = node.value
    elif isinstance(node, cst.AnnAssign):
        target, value = node.target, node.value
    else:
        return None, None
    if (
        isinstance(target, cst.Attribute)
        and isinstance(target.value, cst.Name)
        and target.value.value == receiver
    ):
        return target.attr.value, value
    return None, None
