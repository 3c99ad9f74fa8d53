"""AF501 unclosed-async-resource: a client, connection or file made into a local of a
coroutine and not closed on every way out of it.

The resources are a catalogue (``asyncfix/data/async_resources.toml``) and the project's own
async context managers whose ``__aexit__`` closes them (the project index).
A resource is the function's to close only while it stays a local: returned, yielded,
stored anywhere, passed to a call, captured by a nested function or handed to ``async
with`` -- then whoever got it owns it, and nothing is reported. Otherwise it must be closed
in a ``finally`` (or by ``async with``); a close at the end of the body is skipped when the
code before it raises.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import libcst as cst

from asyncfix.analysis.coroutines import shown
from asyncfix.codemods.base import (
    Context,
    Fix,
    Project,
    Rule,
    ast_async_nodes,
    ast_memo,
    ast_nodes,
    source_of,
)
from asyncfix.codemods.coroutines import project_class
from asyncfix.codemods.names import dotted_name
from asyncfix.codemods.races import in_order, parent_map, suspensions
from asyncfix.codemods.walk import descendants
from asyncfix.index import ClassFact, FunctionFact, ProjectIndex
from asyncfix.model import Safety, Severity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


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
#: the last part of each constructor's name, for the syntax-tree pre-filter
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


class UnclosedAsyncResource(Rule):
    code = "AF501"
    name = "unclosed-async-resource"
    summary = "an async client, connection or file made in a coroutine and not always closed"
    why = (
        "An `aiohttp.ClientSession`, an `httpx.AsyncClient`, a database connection or pool "
        "holds sockets until it is closed. A coroutine that makes one and does not close it "
        "on every way out — an exception between the creation and the `close()` included — "
        "leaks the connections: 'Unclosed client session' warnings, file descriptors running "
        "out, a database refusing new connections."
    )
    example_before = """\
import aiohttp


async def status(url):
    session = aiohttp.ClientSession()
    response = await session.get(url)
    return response.status
"""
    example_after = """\
import aiohttp


async def status(url):
    async with aiohttp.ClientSession() as session:
        response = await session.get(url)
        return response.status
"""
    fix_safety = Safety.UNSAFE
    fix_safety_note = (
        "Unsafe: a value made from the resource (a response whose body is read later) stops "
        "working once the resource is closed, and asyncfix cannot always see that. Offered "
        "when the resource is made in the function's top-level body and nothing made from it "
        "that may need it open is returned, yielded or stored. The statements from the "
        "creation to its `await name.close()` (which is dropped), or to the end of the "
        "function when it is never closed, go into `async with <constructor>(...) as name:`. "
        "Resources without `async with` support (`asyncpg.connect()`) are closed in a "
        "`finally` around their uses. A project class is a resource when it is an async "
        "context manager whose `__aexit__` awaits `self.close()`/`self.aclose()` (one that "
        "does something) or the close of something it holds (`self.session.close()`); it gets "
        "`async with` when its `__aenter__` only returns the object, and the `finally` "
        "otherwise, so entering does not do its work twice. Values that live on their own do "
        "not stop the fix: what a method annotated with plain data types returns "
        "(`-> dict[str, Any]`), what the catalogue lists (httpx requests, asyncpg `fetch`), "
        "and reads such as `await response.text()`. The resource is closed as before on "
        "success, and now also when the code raises. No fix when the resource is used outside "
        "the block it is made in, closed in the middle of its uses, or when closing it would "
        "close something it was given that the code never closed "
        "(`ClientSession(connector=shared)`). Not reported when the resource leaves the "
        "function (returned, stored, passed on, captured by a nested function), is entered "
        "with `async with`, is closed in a `finally`, or was given what closing it would "
        "close (`Bot(token, session=shared)`)."
    )
    severity = Severity.HIGH
    no_fix_in_tests = True
    kind = "Resource leak"
    needles = ("async",)
    needs_index = True

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        """An assignment in an ``async def`` from a call whose name is that of a resource
        constructor (under any alias), or of one of the project's resource classes."""
        names = resource_names(project, tree)
        for node in ast_async_nodes(tree):
            if isinstance(node, ast.Assign):
                name = call_name(node.value)
                if name in names:
                    return True
                passed_over_resource(project, name)
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.asynchronous is None:
            return
        parents: dict[int, cst.CSTNode] | None = None  # made once, for the first resource
        for statement in in_order(node.body):
            if not isinstance(statement, cst.Assign) or len(statement.targets) != 1:
                continue
            target = statement.targets[0].target
            if not isinstance(target, cst.Name):
                continue
            found = self._resource(statement.value)
            if found is None:
                continue
            qualified, resource = found
            if parents is None:
                parents = parent_map(node.body)
            problem = _problem(node, statement, target.value, resource, parents)
            call = _call(statement.value)
            if problem is not None and call is not None:
                message = (
                    f"`{target.value} = {source_of(call.func)}(...)` {problem}; "
                    + ("use `async with`" if resource.async_with else "close it in `finally`")
                    + f" (`await {target.value}.{resource.close}()`)"
                )
                evidence: list[tuple[str, cst.CSTNode | None]] = []
                if resource.exit_fact is not None:
                    where = f"{shown(resource.exit_fact.path)}:{resource.exit_fact.line}"
                    closing = " and ".join(f"`self.{path}()`" for path in resource.closes)
                    evidence.append(
                        (
                            f"`{qualified}` is an async context manager whose `__aexit__` "
                            f"awaits {closing} ({where})",
                            None,
                        )
                    )
                fix = _fix(node, statement, target.value, call, resource, parents)
                if isinstance(fix, str):
                    self.report(statement.value, f"{message} (no fix: {fix})", None, evidence)
                else:
                    self.report(statement.value, message, fix, evidence)

    def _resource(self, value: cst.BaseExpression) -> tuple[str, Resource] | None:
        return resource_of(self.ctx, value)


def resource_of(ctx: Context, value: cst.BaseExpression) -> tuple[str, Resource] | None:
    """The resource ``value`` makes (``aiohttp.ClientSession()``, ``await asyncpg.connect()``,
    ``HAClient()``), and its qualified name; None when it makes none."""
    call = _call(value)
    if call is None:
        return None
    qualified = ctx.qualified_name(call.func)
    resource = RESOURCES.get(qualified or "")
    if resource is None:
        return None if isinstance(value, cst.Await) else _project_resource(ctx, call)
    if resource.awaited != isinstance(value, cst.Await):
        return None
    return qualified or "", resource


def _project_resource(ctx: Context, call: cst.Call) -> tuple[str, Resource] | None:
    """An instance of a project class that is an async context manager whose ``__aexit__``
    closes it (``await self.close()``, ``await self.session.close()``)."""
    project = ctx.project
    cls = project_class(ctx, call.func)
    if project is None or cls is None:
        return None
    index = project.index
    closes = index.resource_close(cls)
    if not closes:
        return None
    given = {arg.keyword.value.strip("_") for arg in call.args if arg.keyword is not None}
    if any("." in path and path.split(".")[0].strip("_") in given for path in closes):
        # `Bot(token, session=shared)` closes by closing its `session`: one the caller gave
        # it and may still use, so this object does not own what closing it closes
        return None
    if _wraps_what_it_is_given(index, cls, closes, call):
        return None
    enter = index.method(cls, "__aenter__")
    detached = frozenset(
        name
        for name in index.coroutine_methods(cls)
        if (method := index.method(cls, name)) is not None and is_value_annotation(method.returns)
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
    index: ProjectIndex, cls: ClassFact, closes: tuple[str, ...], call: cst.Call
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
    return any(
        isinstance(arg.value, (cst.Name, cst.Attribute)) and arg.star == "" for arg in call.args
    )


def resource_names(project: Project | None, tree: ast.Module) -> set[str]:
    """The names a resource constructor may be called by in ``tree``: the catalogue's and the
    project's classes, and what ``from m import X as Y`` renames them to."""

    def compute() -> set[str]:
        names = set(_SHORT_NAMES)
        if project is not None:
            names |= project.index.resource_names()
        for node in ast_nodes(tree):
            if isinstance(node, ast.ImportFrom):
                names.update(a.asname for a in node.names if a.asname and a.name in names)
        return names

    result: set[str] = ast_memo(tree, "resource-names", compute)
    return result


def passed_over_resource(project: Project | None, name: str | None) -> None:
    """A call a pre-filter passed over because ``name`` is no resource class's: a later run
    must look again if the project gets one so named (``ProjectIndex.passed_over``)."""
    if project is not None and name is not None:
        project.index.passed_over("resource", name)


def call_name(value: ast.expr) -> str | None:
    """The last name of the function ``value`` calls (``await`` looked through)."""
    if isinstance(value, ast.Await):
        value = value.value
    if not isinstance(value, ast.Call):
        return None
    func = value.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _call(value: cst.BaseExpression) -> cst.Call | None:
    if isinstance(value, cst.Await):
        value = value.expression
    return value if isinstance(value, cst.Call) else None


def _problem(
    function: cst.FunctionDef,
    creation: cst.Assign,
    name: str,
    resource: Resource,
    parents: dict[int, cst.CSTNode],
) -> str | None:
    """Why the resource may stay open, or None when it is closed (or owned) on every path."""
    closes: list[cst.CSTNode] = []
    seen_creation = False
    for node in in_order(function.body):
        if node is creation:
            seen_creation = True
            continue
        if isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)) and any(
            isinstance(inner, cst.Name) and inner.value == name for inner in descendants(node)
        ):
            return None  # captured by a nested function: it may close it, or outlive us
        if not isinstance(node, cst.Name) or node.value != name:
            continue
        parent = parents.get(id(node))
        if isinstance(parent, cst.AssignTarget) or (
            isinstance(parent, (cst.AugAssign, cst.AnnAssign)) and parent.target is node
        ):
            if parent is not creation.targets[0]:
                return None  # rebound: which value is closed is not clear
            continue
        if isinstance(parent, cst.Attribute) and parent.value is node:
            if parent.attr.value in resource.closed_by and isinstance(
                parents.get(id(parent)), cst.Call
            ):
                return None  # `db.stop()`: closed its own way
            call = _close_call(node, resource, parents)
            if call is not None:
                closes.append(call)
            continue  # a method or attribute of the resource: a use
        if isinstance(parent, (cst.Comparison, cst.ComparisonTarget)):
            continue  # `if session is None`
        return None  # returned, stored, passed on, captured, entered: someone else owns it
    if not seen_creation:
        return None
    if not closes:
        return "is never closed"
    if any(_in_finally(close, parents) for close in closes):
        return None
    first_close = closes[0]
    between = _statements_between(function, creation, first_close, parents)
    if any(suspensions(statement) or _calls(statement) for statement in between):
        return "is not closed when the code before `close()` raises"
    return None


def _given_and_owned(call: cst.Call, resource: Resource) -> str | None:
    """A keyword argument whose value the resource closes with itself
    (``ClientSession(connector=shared)`` closes ``shared``, unless ``connector_owner=False``)."""
    keywords = {arg.keyword.value: arg.value for arg in call.args if arg.keyword is not None}
    for keyword, flag in resource.closes_given.items():
        owner = keywords.get(flag)
        if keyword in keywords and not (isinstance(owner, cst.Name) and owner.value == "False"):
            return keyword
    return None


def _close_call(
    name: cst.Name, resource: Resource, parents: dict[int, cst.CSTNode]
) -> cst.Call | None:
    """The awaited call that closes the resource, when ``name`` is its receiver."""
    path: list[str] = []
    current: cst.CSTNode = name
    parent = parents.get(id(current))
    while isinstance(parent, cst.Attribute) and parent.value is current:
        path.append(parent.attr.value)
        current, parent = parent, parents.get(id(parent))
    if (
        resource.is_close_path(".".join(path))
        and isinstance(parent, cst.Call)
        and parent.func is current
        and isinstance(parents.get(id(parent)), cst.Await)
    ):
        return parent
    return None


def _in_finally(node: cst.CSTNode, parents: dict[int, cst.CSTNode]) -> bool:
    current: cst.CSTNode | None = node
    while current is not None:
        if isinstance(current, cst.Finally):
            return True
        current = parents.get(id(current))
    return False


def _statements_between(
    function: cst.FunctionDef,
    creation: cst.CSTNode,
    close: cst.CSTNode,
    parents: dict[int, cst.CSTNode],
) -> list[cst.CSTNode]:
    """Statements that run after the creation and before the close, in source order."""
    holder: cst.CSTNode | None = close
    while holder is not None and not isinstance(holder, cst.SimpleStatementLine):
        holder = parents.get(id(holder))
    out: list[cst.CSTNode] = []
    started = False
    for node in in_order(function.body):
        if node is creation:
            started = True
            continue
        if node is close or node is holder:
            break
        if started and isinstance(node, cst.SimpleStatementLine):
            out.append(node)
    return out


def _calls(node: cst.CSTNode) -> bool:
    return any(isinstance(child, cst.Call) for child in in_order(node))


def _fix(
    function: cst.FunctionDef,
    creation: cst.Assign,
    name: str,
    call: cst.Call,
    resource: Resource,
    parents: dict[int, cst.CSTNode],
) -> Fix | str:
    """``async with <call> as name:`` (or ``try``/``finally``) around the statements from the
    creation to the last one that uses the resource, dropping a plain ``await name.close()``
    at the end; or why not."""
    line = parents.get(id(creation))
    block = parents.get(id(line)) if line is not None else None
    if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
        return "the creation shares its line with other statements"
    if not isinstance(block, cst.IndentedBlock):
        return "the creation is not a statement of its own block"
    if block is not function.body:
        return "it is made inside a nested block; values made from it may be used after"
    body = list(block.body)
    start = next(i for i, statement in enumerate(body) if statement is line)
    # to the end of the function: a response or cursor made from the resource may be read
    # after the last line that names the resource itself
    last = len(body) - 1
    escape = _derived_escape(body[start + 1 :], name, resource.detached)
    if escape is not None:
        return escape
    # every use must be inside the block's statements after the creation
    for node in in_order(function.body):
        if isinstance(node, cst.Name) and node.value == name:
            holder: cst.CSTNode | None = node
            while holder is not None and not any(holder is s for s in body[start : last + 1]):
                holder = parents.get(id(holder))
            if holder is None:
                return "it is used outside the block it is made in"
    region = list(body[start + 1 : last + 1])
    removed = list(region)
    # the last line that names the resource may be its close: the block ends right there
    # (where the author closed it), and `async with` closes it
    naming = [i for i, st in enumerate(region) if _mentions(st, {name})]
    if naming and _is_close(region[naming[-1]], name, resource):
        closing = region[naming[-1]]
        assert isinstance(closing, cst.SimpleStatementLine)
        if closing.trailing_whitespace.comment is not None or any(
            line.comment is not None for line in closing.leading_lines
        ):
            return "its `close()` line carries a comment"
        removed = region[: naming[-1] + 1]
        region = region[: naming[-1]]
    else:
        given = _given_and_owned(call, resource)
        if given is not None:
            return f"closing it would also close the `{given}` it was given, which stays open now"
    if any(
        _is_close(node, name, resource)
        for statement in region
        for node in in_order(statement)
        if isinstance(node, cst.SimpleStatementLine)
    ):
        return "it is also closed inside the code that uses it"
    if not region:
        region = [cst.SimpleStatementLine([cst.Pass()])]
    first = region[0]
    if isinstance(first, cst.SimpleStatementLine | cst.BaseCompoundStatement):
        # the blank lines that followed the creation do not open the new block
        kept = [line for line in first.leading_lines if line.comment is not None]
        region[0] = first.with_changes(leading_lines=kept)
    head = line
    if resource.async_with:
        new: cst.BaseStatement = cst.With(
            items=[cst.WithItem(call, asname=cst.AsName(cst.Name(name)))],
            asynchronous=cst.Asynchronous(),
            body=cst.IndentedBlock(body=region, header=head.trailing_whitespace),
            leading_lines=head.leading_lines,
        )
        change = (
            f"Wrapped the uses of `{name}` in `async with {source_of(call.func)}(...) as {name}:`"
        )
        replacement: list[cst.BaseStatement] = [new]
    else:
        finals: list[cst.BaseStatement] = [
            cst.SimpleStatementLine(
                [cst.Expr(cst.Await(cst.Call(cst.parse_expression(f"{name}.{path}"))))]
            )
            for path in resource.closes
        ]
        new = cst.Try(
            body=cst.IndentedBlock(body=region),
            finalbody=cst.Finally(body=cst.IndentedBlock(body=finals)),
        )
        change = f"Closed `{name}` in `finally` around its uses"
        replacement = [head, new]
    fix = Fix(Safety.UNSAFE, [change])
    fix.replace[head] = cst.FlattenSentinel(replacement)
    for statement in removed:
        fix.replace[statement] = cst.RemovalSentinel.REMOVE
    return fix


def _derived_escape(
    statements: list[cst.BaseStatement], name: str, detached: frozenset[str]
) -> str | None:
    """A value made from the resource that outlives the function (a live response returned,
    stored on an object): closing the resource at the end would break it. What a ``detached``
    method returns (rows, a fully read response, a method annotated ``-> dict``) is not."""
    derived = {name}
    for statement in statements:
        for node in in_order(statement):
            if (
                isinstance(node, cst.Assign)
                and _mentions(node.value, derived)
                and not _detached_call(node.value, name, derived, detached)
            ):
                for target in node.targets:
                    if isinstance(target.target, cst.Name):
                        derived.add(target.target.value)
                    else:
                        return "a value made from it is stored on an object"
    for statement in statements:
        for node in in_order(statement):
            value = node.value if isinstance(node, (cst.Return, cst.Yield)) else None
            if not isinstance(value, cst.BaseExpression):
                continue
            inner = value.expression if isinstance(value, cst.Await) else value
            if isinstance(inner, cst.Name) and inner.value in derived:
                return f"`{inner.value}`, made from it, is returned"
            if (
                isinstance(inner, cst.Call)
                and _mentions(inner.func, {name})
                and not _detached_call(value, name, derived, detached)
            ):
                returned = source_of(inner.func)
                return f"what `{returned}()` returns is returned and may need `{name}` open"
    return None


def _detached_call(
    value: cst.BaseExpression, name: str, derived: set[str], detached: frozenset[str]
) -> bool:
    """``await name.method(...)`` whose result does not need the resource open (a
    ``detached`` method of the resource, or a read such as ``await response.text()`` on a value
    made from it), and no argument is made from the resource."""
    if not isinstance(value, cst.Await) or not isinstance(value.expression, cst.Call):
        return False
    call = value.expression
    func = call.func
    if not isinstance(func, cst.Attribute) or not isinstance(func.value, cst.Name):
        return False
    receiver, method = func.value.value, func.attr.value
    return (
        (receiver == name and method in detached)
        or (receiver in derived and method in READ_METHODS)
    ) and not any(_mentions(arg, derived) for arg in call.args)


def _mentions(node: cst.CSTNode, names: set[str]) -> bool:
    return any(isinstance(n, cst.Name) and n.value in names for n in in_order(node))


def _is_close(statement: cst.CSTNode, name: str, resource: Resource) -> bool:
    """``await name.close()`` (or another way the resource closes, with no arguments)
    standing on its own line."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if not isinstance(small, cst.Expr) or not isinstance(small.value, cst.Await):
        return False
    call = small.value.expression
    if not isinstance(call, cst.Call) or call.args:
        return False
    dotted = dotted_name(call.func)
    head, _, path = (dotted or "").partition(".")
    return head == name and resource.is_close_path(path)
