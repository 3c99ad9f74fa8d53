"""AF501 unclosed-async-resource: a client, connection or file made into a local of a
coroutine and not closed on every way out of it.

The resources are a catalogue (``asyncfix/data/async_resources.toml``). A resource is the
function's to close only while it stays a local: returned, yielded, stored anywhere, passed
to a call, captured by a nested function or handed to ``async with`` -- then whoever got it
owns it, and nothing is reported. Otherwise it must be closed in a ``finally`` (or by
``async with``); a close at the end of the body is skipped when the code before it raises.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib import resources
from typing import Any

import libcst as cst

from asyncfix.codemods.base import Rule, source_of
from asyncfix.codemods.races import in_order, suspensions
from asyncfix.codemods.walk import children
from asyncfix.model import Safety, Severity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class Resource:
    close: str
    awaited: bool
    async_with: bool


def _catalogue() -> dict[str, Resource]:
    text = resources.files("asyncfix").joinpath("data/async_resources.toml").read_text("utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    return {
        name: Resource(entry["close"], entry["awaited"], entry["async-with"])
        for name, entry in data["resources"].items()
    }


RESOURCES = _catalogue()


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
    fix_safety = Safety.NONE
    fix_safety_note = (
        "Report only for now: the `async with` / `try`-`finally` rewrite is not offered yet. "
        "Not reported when the resource leaves the function (returned, stored, passed on, "
        "captured), is entered with `async with`, or is closed in a `finally`."
    )
    severity = Severity.HIGH
    kind = "Resource leak"
    needles = (
        "async",
        (
            "ClientSession",
            "TCPConnector",
            "AsyncClient",
            "aiofiles",
            "asyncpg",
            "aiosqlite",
            "redis",
            "websockets",
        ),
    )

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.asynchronous is None:
            return
        for statement in in_order(node.body):
            if not isinstance(statement, cst.Assign) or len(statement.targets) != 1:
                continue
            target = statement.targets[0].target
            if not isinstance(target, cst.Name):
                continue
            found = self._resource(statement.value)
            if found is None:
                continue
            _qualified, resource = found
            problem = _problem(node, statement, target.value, resource)
            call = _call(statement.value)
            if problem is not None and call is not None:
                self.report(
                    statement.value,
                    f"`{target.value} = {source_of(call.func)}(...)` "
                    f"{problem}; use `async with`"
                    + ("" if resource.async_with else " where it is supported, else try/finally")
                    + f" (`await {target.value}.{resource.close}()`)",
                )

    def _resource(self, value: cst.BaseExpression) -> tuple[str, Resource] | None:
        call = _call(value)
        if call is None:
            return None
        qualified = self.ctx.qualified_name(call.func)
        resource = RESOURCES.get(qualified or "")
        if resource is None or resource.awaited != isinstance(value, cst.Await):
            return None
        return qualified or "", resource


def _call(value: cst.BaseExpression) -> cst.Call | None:
    if isinstance(value, cst.Await):
        value = value.expression
    return value if isinstance(value, cst.Call) else None


def _problem(
    function: cst.FunctionDef, creation: cst.Assign, name: str, resource: Resource
) -> str | None:
    """Why the resource may stay open, or None when it is closed (or owned) on every path."""
    parents: dict[int, cst.CSTNode] = {}
    for node in in_order(function.body):
        for child in children(node):
            parents[id(child)] = node
    closes: list[cst.CSTNode] = []
    seen_creation = False
    for node in in_order(function.body):
        if node is creation:
            seen_creation = True
            continue
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
            call = parents.get(id(parent))
            if (
                parent.attr.value in (resource.close, "close", "aclose")
                and isinstance(call, cst.Call)
                and isinstance(parents.get(id(call)), cst.Await)
            ):
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
