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

from asyncfix.analysis.classes import self_name
from asyncfix.analysis.model import in_order
from asyncfix.analysis.resources import called
from asyncfix.codemods.base import ModelContext, Rule
from asyncfix.codemods.unclosed_resource import seen_unclosed
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
        "defined outside the module, which could close it. With `--evidence`, `self.x = "
        "<call>` where the tests saw the object made there garbage-collected unclosed is "
        "reported even when the analysis cannot tell the call makes a resource."
    )
    severity = Severity.MEDIUM
    kind = "Resource leak"
    needles = ("self",)
    needs_index = True

    def __init__(self, ctx: ModelContext) -> None:
        super().__init__(ctx)
        self._closed_in_module: set[str] | None = None
        self._classes: dict[str, ast.ClassDef] | None = None

    def on_Assign(self, statement: ast.Assign) -> None:
        """``self.x = <a call>`` that made a resource the runtime evidence saw never closed,
        where the analysis cannot tell it is one (``unclosed_resource.seen_unclosed``)."""
        if not self.context.observed or len(statement.targets) != 1:
            return
        target = statement.targets[0]
        function = self.walk.place(statement).function
        if not isinstance(target, ast.Attribute) or function is None:
            return
        receiver = self_name(function) if self.walk.enclosing_class(statement) else None
        if not isinstance(target.value, ast.Name) or target.value.id != receiver:
            return
        if self.model.resources.resource_of(statement.value) is None:
            seen_unclosed(self, statement, target)

    def on_ClassDef(self, node: ast.ClassDef) -> None:
        if not self._bases_visible(node):
            return
        methods = [
            statement
            for statement in node.body
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        resources = self.model.resources
        stored: dict[str, tuple[ast.expr, str]] = {}
        for method in methods:
            receiver = self_name(method)
            if receiver is None:
                continue
            for statement in in_order(method.body):
                target, value = _stored(statement, receiver)
                if target is None or value is None or target in stored:
                    continue
                found = resources.resource_of(value)
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
            call = called(value)
            assert call is not None
            self.report(
                value,
                f"`self.{attribute} = {self.model.source.segment(call.func)}(...)` is never "
                f"closed: nothing in `{node.name}` closes or hands on `self.{attribute}`; add "
                f"an `async def close()` that awaits `self.{attribute}.{close}()`, and call it "
                "when the object is done",
            )

    def _bases_visible(self, node: ast.ClassDef) -> bool:
        """Every base is a class of this module (which the search of related classes
        covers); a base from elsewhere could close the attribute."""
        classes = self._module_classes()
        for base in node.bases:
            name = self.model.source.segment(base)
            if name in NEUTRAL_BASES or name in classes:
                continue
            return False
        return True

    def _module_classes(self) -> dict[str, ast.ClassDef]:
        if self._classes is None:
            self._classes = {
                statement.name: statement
                for statement in self.model.tree.body
                if isinstance(statement, ast.ClassDef)
            }
        return self._classes

    def _handled(self, node: ast.ClassDef, attributes: set[str]) -> set[str]:
        parents = self.model.scopes.parents
        handled: set[str] = set()
        for method in node.body:
            if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            receiver = self_name(method)
            if receiver is None:
                continue
            for child in (n for statement in method.body for n in ast.walk(statement)):
                if not (
                    isinstance(child, ast.Attribute)
                    and isinstance(child.value, ast.Name)
                    and child.value.id == receiver
                    and child.attr in attributes
                ):
                    continue
                parent = parents.get(id(child))
                if isinstance(parent, ast.Attribute) and parent.value is child:
                    continue  # self.session.get(...): a use
                if (isinstance(parent, ast.Assign) and child in parent.targets) or (
                    isinstance(parent, (ast.AnnAssign, ast.AugAssign)) and parent.target is child
                ):
                    continue  # stored into, not handed on
                if isinstance(parent, (ast.Compare, ast.If)):
                    continue  # `if self.session is None`, `if self.session:`
                if isinstance(parent, (ast.UnaryOp, ast.BoolOp)):
                    continue  # `not self.session`, `self.session and ...`
                handled.add(child.attr)  # returned, passed, stored, entered: handed on
        return handled

    def _closed_anywhere(self) -> set[str]:
        """Attributes some code of the module closes: ``<anything>.<attr>.close()``, also
        ``<anything>.<attr>.session.close()`` for a resource its ``session`` closes."""
        if self._closed_in_module is None:
            closed: set[str] = set()
            for child in ast.walk(self.model.tree):
                if isinstance(child, ast.Attribute) and child.attr in _CLOSERS:
                    inner = child.value
                    while isinstance(inner, ast.Attribute):
                        closed.add(inner.attr)
                        inner = inner.value
            self._closed_in_module = closed
        return self._closed_in_module


def _stored(node: ast.AST, receiver: str) -> tuple[str | None, ast.expr | None]:
    """``self.<attr> = <value>`` (or annotated): the attribute and the value."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target: ast.expr = node.targets[0]
        value: ast.expr | None = node.value
    elif isinstance(node, ast.AnnAssign):
        target, value = node.target, node.value
    else:
        return None, None
    if (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == receiver
    ):
        return target.attr, value
    return None, None
