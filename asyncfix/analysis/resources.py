"""Which values are async resources a coroutine must close: a client, connection, pool or
file of the catalogue (``asyncfix/data/async_resources.toml``), or an instance of one of the
project's async context managers whose ``__aexit__`` closes it (the project index). The
resource part of the semantic model's value lattice."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from asyncfix.analysis.coroutines import project_name
from asyncfix.analysis.scopes import Scopes
from asyncfix.index import ClassFact, FunctionFact, ProjectIndex

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

if TYPE_CHECKING:
    from asyncfix.codemods.base import Project


@dataclass(frozen=True)
class Resource:
    #: how it is closed: awaited calls on it, as paths ("close", "session.close")
    closes: tuple[str, ...]
    awaited: bool
    #: ``async with <constructor>(...) as x:`` gives the same object and does nothing more
    #: on entry than the constructor did
    async_with: bool
    #: coroutine methods whose result does not need the resource open
    detached: frozenset[str] = frozenset()
    #: keyword arguments whose value closing the resource closes too -> the keyword that
    #: says it does not own it (``connector`` -> ``connector_owner``)
    closes_given: dict[str, str] = field(default_factory=dict, compare=False)
    #: other methods that close it too, awaited or not (aiosqlite's ``stop()``): the code
    #: closes it its own way, and nothing is reported
    closed_by: frozenset[str] = frozenset()
    #: a project class (found through the index), and its ``__aexit__``
    project: ClassFact | None = field(default=None, compare=False)
    exit_fact: FunctionFact | None = field(default=None, compare=False)

    @property
    def close(self) -> str:
        return self.closes[0]

    def is_close_path(self, path: str) -> bool:
        """``path`` closes it (a catalogue resource: any ``close()``/``aclose()``)."""
        return path in self.closes or (self.project is None and path in ("close", "aclose"))


_DATA: dict[str, Any] = tomllib.loads(
    resources.files("asyncfix").joinpath("data/async_resources.toml").read_text("utf-8")
)
#: methods that read a response or cursor made from a resource into plain data
READ_METHODS = frozenset(_DATA["read-methods"])


def _catalogue(data: dict[str, Any]) -> dict[str, Resource]:
    return {
        name: Resource(
            (entry["close"],),
            entry["awaited"],
            entry["async-with"],
            frozenset(entry.get("detached", ())),
            dict(entry.get("closes-given", {})),
            frozenset(entry.get("closed-by", ())),
        )
        for name, entry in data["resources"].items()
    }


RESOURCES = _catalogue(_DATA)
#: the last part of each constructor's name: a call by any other name makes no resource
#: of the catalogue
_SHORT_NAMES = frozenset(name.rsplit(".", 1)[1] for name in RESOURCES)
#: return annotations of values that live on their own once the resource is closed
_VALUE_TYPES = frozenset(
    {
        "None",
        "bool",
        "int",
        "float",
        "complex",
        "str",
        "bytes",
        "bytearray",
        "dict",
        "list",
        "tuple",
        "set",
        "frozenset",
        "Dict",
        "List",
        "Tuple",
        "Set",
        "FrozenSet",
        "Optional",
        "Union",
        "typing",
    }
)


def is_value_annotation(annotation: str) -> bool:
    """A return annotation made of plain data types only (``dict[str, Any]``,
    ``list[str] | None``): the value does not hold on to the object that made it. ``Any`` is
    accepted inside a container, not on its own."""
    try:
        tree = ast.parse(annotation, mode="eval").body
    except SyntaxError:
        return False
    if isinstance(tree, ast.Name) and tree.id == "Any":
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in _VALUE_TYPES and node.id != "Any":
            return False
        if isinstance(node, ast.Attribute) and not (
            isinstance(node.value, ast.Name) and node.value.id == "typing"
        ):
            return False
        if isinstance(node, ast.Constant) and not (node.value is None or node.value is Ellipsis):
            return False  # a string annotation: a forward reference to some class
    return True


def called(value: ast.expr | None) -> ast.Call | None:
    """The call ``value`` is (``await`` looked through)."""
    if isinstance(value, ast.Await):
        value = value.value
    return value if isinstance(value, ast.Call) else None


class Resources:
    """``resource_of(value)``: the resource a value makes, and its qualified name."""

    def __init__(self, tree: ast.Module, scopes: Scopes, project: Project | None) -> None:
        self.scopes = scopes
        self.project = project
        names = set(_SHORT_NAMES)
        if project is not None:
            names |= project.index.resource_names()
        for node in scopes.by_type.get(ast.ImportFrom, ()):
            assert isinstance(node, ast.ImportFrom)
            names.update(a.asname for a in node.names if a.asname and a.name in names)
        #: the names a resource constructor may be called by here (aliases included)
        self._names = frozenset(names)

    def resource_of(self, value: ast.expr) -> tuple[str, Resource] | None:
        """The resource ``value`` makes (``aiohttp.ClientSession()``, ``await
        asyncpg.connect()``, ``HAClient()``), and its qualified name; None when it makes
        none. A call by a name no resource constructor has is ruled out first (the file's
        result then depends on the project getting none so named: recorded for the cache)."""
        call = called(value)
        if call is None:
            return None
        func = call.func
        last = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if last not in self._names:
            if self.project is not None and last is not None:
                self.project.index.passed_over("resource", last)
            return None
        qualified = self.scopes.qualified_name(func)
        resource = RESOURCES.get(qualified or "")
        if resource is None:
            return None if isinstance(value, ast.Await) else self._project_resource(call)
        if resource.awaited != isinstance(value, ast.Await):
            return None
        return qualified or "", resource

    def project_class(self, func: ast.expr) -> ClassFact | None:
        """The project class an expression certainly names (through the index), or None."""
        project = self.project
        where = project_name(self.scopes, project, func, "class") if project else None
        if project is None or where is None:
            return None
        scope, name = where
        if scope == "global":
            return project.index.class_(name)
        return project.module.classes.get(name)

    def _project_resource(self, call: ast.Call) -> tuple[str, Resource] | None:
        """An instance of a project class that is an async context manager whose
        ``__aexit__`` closes it (``await self.close()``, ``await self.session.close()``)."""
        project = self.project
        cls = self.project_class(call.func)
        if project is None or cls is None:
            return None
        index = project.index
        closes = index.resource_close(cls)
        if not closes:
            return None
        given = {keyword.arg.strip("_") for keyword in call.keywords if keyword.arg}
        if any("." in path and path.split(".")[0].strip("_") in given for path in closes):
            # `Bot(token, session=shared)` closes by closing its `session`: one the caller
            # gave it and may still use, so this object does not own what closing it closes
            return None
        if _wraps_what_it_is_given(index, cls, closes, call):
            return None
        enter = index.method(cls, "__aenter__")
        detached = frozenset(
            name
            for name in index.coroutine_methods(cls)
            if (method := index.method(cls, name)) is not None
            and is_value_annotation(method.returns)
        )
        resource = Resource(
            closes,
            awaited=False,
            async_with=enter is not None and enter.returns_self_only,
            detached=detached,
            closed_by=index.resource_closers(cls, closes),
            project=cls,
            exit_fact=index.method(cls, "__aexit__"),
        )
        return cls.qualified, resource


def _wraps_what_it_is_given(
    index: ProjectIndex, cls: ClassFact, closes: tuple[str, ...], call: ast.Call
) -> bool:
    """A wrapper (``BufferedByteReceiveStream(receive_stream)``): its own close only closes
    what it holds (``await self.receive_stream.aclose()``), and the call hands it an object
    the caller made. Whoever made that object closes it; the wrapper holds nothing else."""
    if len(closes) != 1 or "." in closes[0]:
        return False
    close = index.method(cls, closes[0])
    if close is None or not close.awaits_on_self:
        return False
    if not all("." in path for path in close.awaits_on_self):
        return False
    values = [*call.args, *(keyword.value for keyword in call.keywords if keyword.arg)]
    return any(isinstance(value, (ast.Name, ast.Attribute)) for value in values)
