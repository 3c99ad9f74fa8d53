"""AF501 unclosed-async-resource: a client, connection or file made into a local of a
coroutine and not closed on every way out of it.

The resources are a catalogue (``asyncfix/data/async_resources.toml``) and the project's own
async context managers whose ``__aexit__`` closes them (the project index): the semantic
model's ``analysis.resources``.
A resource is the function's to close only while it stays a local: returned, yielded,
stored anywhere, passed to a call, captured by a nested function or handed to ``async
with`` -- then whoever got it owns it, and nothing is reported. Otherwise it must be closed
in a ``finally`` (or by ``async with``); a close at the end of the body is skipped when the
code before it raises.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from asyncfix.analysis.model import (
    COMPOUND,
    TRY,
    alone_on_its_line,
    in_order,
    trailing_comment,
)
from asyncfix.analysis.resources import READ_METHODS, Resource, called
from asyncfix.analysis.source import shown
from asyncfix.codemods.base import (
    Fix,
    Locate,
    PendingFix,
    Rule,
    dotted_name,
    lines_of,
    the_call_at,
)
from asyncfix.index import ast_dotted_name, spelled_names
from asyncfix.lazy import libcst as cst
from asyncfix.model import Safety, Severity

Function = ast.FunctionDef | ast.AsyncFunctionDef


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
        "close (`Bot(token, session=shared)`). With `--evidence` (the runtime-evidence "
        "pytest plugin's file), `name = <call>` in a function, where the tests saw the object "
        "made there garbage-collected unclosed (aiohttp's sessions and connectors and "
        "asyncio's transports say where they were made), is reported without a fix even when "
        "the analysis cannot tell the call makes a resource (a class chosen at run time)."
    )
    severity = Severity.HIGH
    no_fix_in_tests = True
    kind = "Resource leak"
    needles = ("async",)
    needs_index = True

    def on_Assign(self, statement: ast.Assign) -> None:
        if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
            return
        target = statement.targets[0]
        found = self.model.resources.resource_of(statement.value)
        if found is None:
            if self.context.observed:
                seen_unclosed(self, statement, target)
            return
        # a local of the coroutine whose body (its blocks, not a nested def or class) holds it
        node = self.walk.place(statement).function
        if isinstance(node, ast.AsyncFunctionDef):
            self._created(node, statement, target, *found)

    def _created(
        self,
        node: ast.AsyncFunctionDef,
        statement: ast.Assign,
        target: ast.Name,
        qualified: str,
        resource: Resource,
    ) -> None:
        problem = self._problem(node, statement, target.id, resource)
        call = called(statement.value)
        if problem is None or call is None:
            return
        message = (
            f"`{target.id} = {self.model.source.segment(call.func)}(...)` {problem}; "
            + ("use `async with`" if resource.async_with else "close it in `finally`")
            + f" (`await {target.id}.{resource.close}()`)"
        )
        evidence: list[str] = []
        if resource.exit_fact is not None:
            where = f"{shown(resource.exit_fact.path)}:{resource.exit_fact.line}"
            closing = " and ".join(f"`self.{path}()`" for path in resource.closes)
            evidence.append(
                f"`{qualified}` is an async context manager whose `__aexit__` awaits "
                f"{closing} ({where})"
            )
        reason = self._no_fix_reason(node, statement, target.id, call, resource)
        if reason is not None:
            self.report(statement.value, f"{message} (no fix: {reason})", None, evidence)
            return
        if resource.async_with:
            change = (
                f"Wrapped the uses of `{target.id}` in `async with "
                f"{self.model.source.segment(call.func)}(...) as {target.id}:`"
            )
        else:
            change = f"Closed `{target.id}` in `finally` around its uses"
        changes = [change]
        pending = PendingFix(
            statement,
            cst.SimpleStatementLine,
            _build(changes, self.span(node), target.id, resource),
        )
        self.report(statement.value, message, (Safety.UNSAFE, changes, pending), evidence)

    # -- is it closed on every path? ---------------------------------------------------

    def _problem(
        self, function: Function, creation: ast.Assign, name: str, resource: Resource
    ) -> str | None:
        """Why the resource may stay open, or None when it is closed (or owned) on every
        path. Where its value goes is the model's value flow: used only through its
        attributes and methods, or compared, it stays this function's to close; returned,
        stored, passed on, captured by a nested function, entered, rebound -- someone else
        owns it, or which value is closed is not clear."""
        parents = self.model.scopes.parents
        target = creation.targets[0]
        assert isinstance(target, ast.Name) and target.id == name
        local = self.model.flow.local(target)
        if local is None or local.function is not function or local.single is None:
            return None
        closes: list[ast.Call] = []
        for use in local.uses:
            if use.kind == "compared":
                continue  # `if session is None`
            if use.kind != "attribute":
                return None
            attribute = use.node
            assert isinstance(attribute, ast.Attribute)
            if attribute.attr in resource.closed_by and isinstance(
                parents.get(id(attribute)), ast.Call
            ):
                return None  # `db.stop()`: closed its own way
            call = self._close_call(use.name, resource)
            if call is not None:
                closes.append(call)
            elif self._close_call(use.name, resource, awaited=False) is not None:
                # `ensure_future(db.close())`: the close is handed to something that runs it
                return None
        if not closes:
            return "is never closed"
        if any(self._in_finally(close) for close in closes):
            return None
        between = self._statements_between(function, creation, closes[0])
        if any(_suspends_or_calls(statement) for statement in between):
            return "is not closed when the code before `close()` raises"
        return None

    def _close_call(
        self, name: ast.Name, resource: Resource, awaited: bool = True
    ) -> ast.Call | None:
        """The awaited call that closes the resource, when ``name`` is its receiver (with
        ``awaited`` false: a call that closes it, awaited here or not)."""
        parents = self.model.scopes.parents
        path: list[str] = []
        current: ast.AST = name
        parent = parents.get(id(current))
        while isinstance(parent, ast.Attribute) and parent.value is current:
            path.append(parent.attr)
            current, parent = parent, parents.get(id(parent))
        if (
            resource.is_close_path(".".join(path))
            and isinstance(parent, ast.Call)
            and parent.func is current
            and (not awaited or isinstance(parents.get(id(parent)), ast.Await))
        ):
            return parent
        return None

    def _in_finally(self, node: ast.AST) -> bool:
        parents = self.model.scopes.parents
        child: ast.AST = node
        parent = parents.get(id(child))
        while parent is not None:
            if isinstance(parent, TRY) and child in getattr(parent, "finalbody", ()):
                return True
            child, parent = parent, parents.get(id(parent))
        return False

    def _statements_between(
        self, function: Function, creation: ast.stmt, close: ast.Call
    ) -> list[ast.stmt]:
        """Simple statements that run after the creation and before the close, in source
        order."""
        parents = self.model.scopes.parents
        holder: ast.AST | None = close
        while holder is not None and not isinstance(holder, ast.stmt):
            holder = parents.get(id(holder))
        out: list[ast.stmt] = []
        started = False
        for node in in_order(function.body):
            if node is creation:
                started = True
                continue
            if node is close or node is holder:
                break
            if started and isinstance(node, ast.stmt) and not isinstance(node, COMPOUND):
                out.append(node)
        return out

    # -- can it be fixed? ----------------------------------------------------------------

    def _no_fix_reason(
        self,
        function: Function,
        creation: ast.Assign,
        name: str,
        call: ast.Call,
        resource: Resource,
    ) -> str | None:
        """Why ``async with`` (or ``try``/``finally``) cannot be put around the uses, or
        None when it can."""
        model = self.model
        if not alone_on_its_line(model, creation):
            return "the creation shares its line with other statements"
        body = function.body
        if not any(statement is creation for statement in body):
            return "it is made inside a nested block; values made from it may be used after"
        start = next(i for i, statement in enumerate(body) if statement is creation)
        escape = self._derived_escape(body[start + 1 :], name, resource.detached)
        if escape is not None:
            return escape
        # every use must be inside the block's statements after the creation
        parents = model.scopes.parents
        after = {id(statement) for statement in body[start:]}
        for node in in_order(body):
            if isinstance(node, ast.Name) and node.id == name and node is not creation.targets[0]:
                holder: ast.AST | None = node
                while holder is not None and id(holder) not in after:
                    holder = parents.get(id(holder))
                if holder is None:
                    return "it is used outside the block it is made in"
        region = body[start + 1 :]
        naming = [i for i, statement in enumerate(region) if _mentions(statement, {name})]
        if naming and self._is_close(region[naming[-1]], name, resource):
            index = start + 1 + naming[-1]
            if self._has_comment(body, index):
                return "its `close()` line carries a comment"
            region = region[: naming[-1]]
        else:
            given = _given_and_owned(call, resource)
            if given is not None:
                return (
                    f"closing it would also close the `{given}` it was given, which stays open now"
                )
        if any(
            self._is_close(node, name, resource)
            for statement in region
            for node in in_order(statement)
            if isinstance(node, ast.stmt)
        ):
            return "it is also closed inside the code that uses it"
        return None

    def _derived_escape(
        self, statements: list[ast.stmt], name: str, detached: frozenset[str]
    ) -> str | None:
        """A value made from the resource that outlives the function (a live response
        returned, stored on an object): closing the resource at the end would break it. What
        a ``detached`` method returns (rows, a fully read response, a method annotated
        ``-> dict``) is not."""
        derived = {name}
        for statement in statements:
            for node in in_order(statement):
                if (
                    isinstance(node, ast.Assign)
                    and _mentions(node.value, derived)
                    and not _detached_call(node.value, name, derived, detached)
                ):
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            derived.add(target.id)
                        else:
                            return "a value made from it is stored on an object"
        for statement in statements:
            for node in in_order(statement):
                value = node.value if isinstance(node, (ast.Return, ast.Yield)) else None
                if value is None:
                    continue
                inner = value.value if isinstance(value, ast.Await) else value
                if isinstance(inner, ast.Name) and inner.id in derived:
                    return f"`{inner.id}`, made from it, is returned"
                if (
                    isinstance(inner, ast.Call)
                    and _mentions(inner.func, {name})
                    and not _detached_call(value, name, derived, detached)
                ):
                    returned = self.model.source.segment(inner.func)
                    return f"what `{returned}()` returns is returned and may need `{name}` open"
        return None

    def _is_close(self, statement: ast.AST, name: str, resource: Resource) -> bool:
        """``await name.close()`` (or another way the resource closes, with no arguments)
        standing on its own line."""
        if not isinstance(statement, ast.Expr) or not isinstance(statement.value, ast.Await):
            return False
        if not alone_on_its_line(self.model, statement):
            return False
        call = statement.value.value
        if not isinstance(call, ast.Call) or call.args or call.keywords:
            return False
        head, _, path = (ast_dotted_name(call.func) or "").partition(".")
        return head == name and resource.is_close_path(path)

    def _has_comment(self, body: list[ast.stmt], index: int) -> bool:
        """A comment at the end of ``body[index]``'s line or on the lines just above it."""
        source = self.model.source
        statement = body[index]
        if trailing_comment(self.model, statement) is not None:
            return True
        previous = body[index - 1]
        above = range((previous.end_lineno or previous.lineno) + 1, statement.lineno)
        return any(source.lines[line - 1].strip().startswith("#") for line in above)


def seen_unclosed(rule: Rule, statement: ast.Assign, target: ast.expr) -> None:
    """A resource the runtime-evidence plugin saw garbage-collected unclosed, made at this
    assignment (``--evidence``: an ``unclosed-resource`` record placed where the object was
    created -- aiohttp's sessions and connectors and asyncio's transports keep that in debug
    mode), where the analysis cannot tell the call makes a resource (a class chosen at run
    time, a wrapper it does not know). Reported without a fix: where to close it is the
    program's to decide. Only for the one call of the statement, in a function; dropped
    where another AF5 rule reports the line."""
    if rule.walk.place(statement).function is None:
        return  # made at import time: closed (or not) by whoever owns the module
    seen = [
        o
        for o in rule.context.seen("unclosed-resource", lines_of(statement), "created")
        if the_call_at(statement, o.line) is statement.value
    ]
    if not seen:
        return
    first = seen[0]
    call = statement.value
    assert isinstance(call, ast.Call)
    made = f"`{rule.model.source.segment(target)} = {rule.model.source.segment(call.func)}(...)`"
    test = f" (in {first.test})" if first.test else ""
    closing = (
        f"close it when the object is done (an `async def close()` that closes "
        f"`{rule.model.source.segment(target)}`)"
        if isinstance(target, ast.Attribute)
        else "close it with `async with` or in `finally`"
    )
    message = (
        f"{made} made a resource that was never closed when the tests ran{test}: "
        f"{first.message}; {closing} (no fix: the analysis cannot tell what it makes)"
    )
    rule.report(call, message, None, [o.said() for o in seen], runtime=True)


def _suspends_or_calls(statement: ast.stmt) -> bool:
    return any(isinstance(node, (ast.Await, ast.Call)) for node in in_order(statement))


def _given_and_owned(call: ast.Call, resource: Resource) -> str | None:
    """A keyword argument whose value the resource closes with itself
    (``ClientSession(connector=shared)`` closes ``shared``, unless ``connector_owner=False``)."""
    keywords = {keyword.arg: keyword.value for keyword in call.keywords if keyword.arg}
    for keyword, flag in resource.closes_given.items():
        owner = keywords.get(flag)
        if keyword in keywords and not (isinstance(owner, ast.Constant) and owner.value is False):
            return keyword
    return None


def _detached_call(value: ast.expr, name: str, derived: set[str], detached: frozenset[str]) -> bool:
    """``await name.method(...)`` whose result does not need the resource open (a
    ``detached`` method of the resource, or a read such as ``await response.text()`` on a
    value made from it), and no argument is made from the resource."""
    if not isinstance(value, ast.Await) or not isinstance(value.value, ast.Call):
        return False
    call = value.value
    func = call.func
    if not isinstance(func, ast.Attribute) or not isinstance(func.value, ast.Name):
        return False
    receiver, method = func.value.id, func.attr
    arguments = [*call.args, *(keyword.value for keyword in call.keywords)]
    return (
        (receiver == name and method in detached)
        or (receiver in derived and method in READ_METHODS)
    ) and not any(_mentions(arg, derived) for arg in arguments)


def _mentions(node: ast.AST, names: set[str]) -> bool:
    """Any of ``names`` is spelled in ``node`` (not in a nested function): as a name, an
    attribute or keyword name, or what a statement binds -- the look is by spelling."""
    for child in in_order(node):
        if isinstance(child, ast.Name):
            spelled = [child.id]
        elif isinstance(child, ast.Attribute):
            spelled = [child.attr]
        elif isinstance(child, ast.keyword):
            spelled = [child.arg] if child.arg else []
        else:
            spelled = spelled_names(child)
        if names.intersection(spelled):
            return True
    return False


# -- the fix, on the LibCST tree ------------------------------------------------------------


def _build(
    changes: list[str], function_span: object, name: str, resource: Resource
) -> Callable[[cst.CSTNode, Locate], Fix]:
    """``async with <call> as name:`` (or ``try``/``finally``) around the statements from the
    creation to the end of the function, dropping a plain ``await name.close()`` that ends
    the uses (the detection has made sure it can be done)."""

    def build(head: cst.CSTNode, locate: Locate) -> Fix:
        assert isinstance(head, cst.SimpleStatementLine)
        function = locate.find(function_span, cst.FunctionDef)  # type: ignore[arg-type]
        assert isinstance(function, cst.FunctionDef)
        assert isinstance(function.body, cst.IndentedBlock)
        body = list(function.body.body)
        start = next(i for i, statement in enumerate(body) if statement is head)
        creation = head.body[0]
        assert isinstance(creation, cst.Assign)
        call = (
            creation.value.expression if isinstance(creation.value, cst.Await) else creation.value
        )
        assert isinstance(call, cst.Call)
        # to the end of the function: a response or cursor made from the resource may be
        # read after the last line that names the resource itself
        region = body[start + 1 :]
        removed = list(region)
        # the last line that names the resource may be its close: the block ends right
        # there (where the author closed it), and `async with` closes it
        naming = [i for i, st in enumerate(region) if _cst_mentions(st, name)]
        if naming and _cst_is_close(region[naming[-1]], name, resource):
            removed = region[: naming[-1] + 1]
            region = region[: naming[-1]]
        if not region:
            region = [cst.SimpleStatementLine([cst.Pass()])]
        first = region[0]
        if isinstance(first, cst.SimpleStatementLine | cst.BaseCompoundStatement):
            # the blank lines that followed the creation do not open the new block
            kept = [line for line in first.leading_lines if line.comment is not None]
            region[0] = first.with_changes(leading_lines=kept)
        replacement: list[cst.BaseStatement]
        if resource.async_with:
            new: cst.BaseStatement = cst.With(
                items=[cst.WithItem(call, asname=cst.AsName(cst.Name(name)))],
                asynchronous=cst.Asynchronous(),
                body=cst.IndentedBlock(body=region, header=head.trailing_whitespace),
                leading_lines=head.leading_lines,
            )
            replacement = [new]
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
            replacement = [head, new]
        fix = Fix(Safety.UNSAFE, changes)
        fix.replace[head] = cst.FlattenSentinel(replacement)
        for statement in removed:
            fix.replace[statement] = cst.RemovalSentinel.REMOVE
        return fix

    return build


def _cst_mentions(node: cst.CSTNode, name: str) -> bool:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name) and current.value == name:
            return True
        if isinstance(current, (cst.Lambda, cst.FunctionDef, cst.ClassDef)) and current is not node:
            continue
        stack.extend(current.children)
    return False


def _cst_is_close(statement: cst.CSTNode, name: str, resource: Resource) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if not isinstance(small, cst.Expr) or not isinstance(small.value, cst.Await):
        return False
    call = small.value.expression
    if not isinstance(call, cst.Call) or call.args:
        return False
    head, _, path = (dotted_name(call.func) or "").partition(".")
    return head == name and resource.is_close_path(path)
