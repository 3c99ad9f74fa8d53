"""AF202 blocking-http, AF203 blocking-file-io, AF204 blocking-subprocess: a blocking call
made directly in an async body. One detection, three rules: they differ in which calls of the
catalogue (asyncfix/data/blocking_calls.toml) they own and which async API they point to."""

from __future__ import annotations

import ast
import functools
from collections.abc import Sequence
from typing import ClassVar

from asyncfix.analysis.extract import extract_block
from asyncfix.analysis.model import identifiers
from asyncfix.codemods.base import (
    Fix,
    Locate,
    ModelContext,
    PendingFix,
    Rule,
    fresh_name,
    offloaded_call,
)
from asyncfix.index import BLOCKING_CALLS, BLOCKING_METHODS, ast_dotted_name
from asyncfix.lazy import libcst as cst
from asyncfix.model import Safety, Severity


@functools.cache
def _catalogue(category: str) -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """The last names of the catalogue's functions, and the methods per library class, of
    one category."""
    functions = frozenset(
        name.rsplit(".", 1)[1] for name, kind in BLOCKING_CALLS.items() if kind == category
    )
    methods = {
        name: frozenset(m for m, kind in table.items() if kind == category)
        for name, table in BLOCKING_METHODS.items()
    }
    return functions, methods


def _needles(category: str) -> tuple[str | tuple[str, ...], ...]:
    """A file can hold a call of the category only if its text holds the call's last name:
    at the call (``os.path.exists(p)``, ``path.stat()``) or in the import that renames it
    (``from os.path import exists as e``). So the needles are those names, straight from the
    catalogue."""
    return ("async", tuple(sorted(_call_names(category))))


@functools.cache
def _call_names(category: str) -> frozenset[str]:
    """The last names of the category's functions and methods (a call by another name is
    none of them)."""
    functions, methods = _catalogue(category)
    if category == "a subprocess":
        functions |= {name.rsplit(".", 1)[1] for name in SPAWNS}
    return functions | frozenset().union(*methods.values())


Planned = tuple[Safety, list[str], PendingFix]


class _BlockingCall(Rule):
    #: the catalogue's category this rule owns
    category: ClassVar[str]
    #: what to migrate to, as advice in the message
    advice: ClassVar[str]
    fix_safety = Safety.UNSAFE
    kind = "Blocking call on the event loop"
    no_fix_in_tests = True

    def __init__(self, ctx: ModelContext) -> None:
        super().__init__(ctx)
        #: function -> names of nested functions this walk's fixes define in it
        self._given: dict[int, set[str]] = {}
        #: the last names of the calls this rule may own, for ``module.f()``/``obj.m()``
        self._names = _call_names(self.category)

    def on_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            if func.attr not in self._names:
                return  # not a catalogue function or method (a name may be an import alias)
        elif not isinstance(func, ast.Name):
            return
        walk = self.walk
        parent = walk.parent(node)
        if not walk.in_async_body(node) or isinstance(parent, ast.Await):
            return
        qualified = self._blocking_api(func, call=node)
        if qualified is None:
            return
        spelled = self.model.source.segment(func)
        message = f"`{spelled}()` blocks the event loop ({self.category}); {self.advice}"
        plain = qualified.removeprefix("builtins.")
        evidence = [
            f"`{spelled}` is `{plain}`"
            if spelled != plain
            else f"`{plain}` is a blocking call ({self.category})"
        ]
        if isinstance(parent, ast.withitem) and parent.context_expr is node:
            # offloading `open()` alone would leave every read of the block on the loop
            found = self._block_fix(node, parent)
            if isinstance(found, str):
                self.report(node, f"{message} (no fix: {found})", None, evidence)
            else:
                self.report(node, message, found, evidence)
            return
        offload = self.offload(node)
        if offload is None:
            self.report(node, message + " (no fix here)", None, evidence)
            return
        changes, build = offload
        self.report(
            node, message, (Safety.UNSAFE, changes, PendingFix(node, cst.Call, build)), evidence
        )

    def _block_fix(self, node: ast.Call, item: ast.withitem) -> Planned | str:
        """Move the ``with`` block ``node`` opens into a nested sync function and offload it
        whole, or say why that cannot be done cleanly."""
        walk = self.walk
        block = walk.parent(item)
        function = walk.place(node).function
        assert isinstance(block, (ast.With, ast.AsyncWith)) and function is not None
        segment = self.model.source.segment
        library = self.other_event_loop()
        if library is not None:
            return f"the module may run on {library}, where `asyncio.to_thread` does not work"
        if isinstance(block, ast.AsyncWith):
            opener = segment(node.func)
            return (
                f"`async with {opener}(...)`: `{opener}()` is not an async context manager "
                "(this raises TypeError); use `aiofiles.open`, or a plain `with` offloaded whole"
            )
        for other in block.items:
            entered = other.context_expr
            if (
                not isinstance(entered, ast.Call)
                or self._blocking_api(entered.func, any_category=True) is None
            ):
                dotted = ast_dotted_name(entered.func if isinstance(entered, ast.Call) else entered)
                shown = dotted and (f"{dotted}(...)" if isinstance(entered, ast.Call) else dotted)
                return (
                    f"the `with` also enters `{shown or 'another context manager'}`, which may "
                    "need to stay on the event loop's thread"
                )
        path: list[ast.AST] = [block]
        while path[-1] is not function:
            up = walk.parent(path[-1])
            assert up is not None
            path.append(up)
        path.reverse()
        found = extract_block(self.model, block, function, path)
        if isinstance(found, str):
            return found
        # names handed out to earlier blocks of the function in this walk are taken too
        given = self._given.setdefault(id(function), set())
        name = fresh_name(self._function_name(block), set(identifiers(function)) | given)
        given.add(name)
        site = self.offload_site(function)
        gives = (
            f"; it returns {', '.join(f'`{n}`' for n in found.returns)}" if found.returns else ""
        )
        moved = (
            f"Moved the `with` block into `def {name}()` and offloaded it with `{site.how}`{gives}"
        )
        returned, returns_value = list(found.returns), found.returns_value

        def build(with_node: cst.CSTNode, locate: Locate) -> Fix:
            assert isinstance(with_node, cst.With)
            call, fix = offloaded_call(cst.Call(func=cst.Name(name)), site.where(locate))
            returns: list[cst.BaseSmallStatement] = []
            result = _names_expression(returned)
            if result is not None:
                returns.append(cst.Return(value=result))
            nested = cst.FunctionDef(
                name=cst.Name(name),
                params=cst.Parameters(),
                body=cst.IndentedBlock(
                    body=[
                        with_node.with_changes(leading_lines=[]),
                        *([cst.SimpleStatementLine(returns)] if returns else []),
                    ]
                ),
                leading_lines=_blank_before(with_node, locate.parent(with_node)),
            )
            awaited = cst.Await(expression=call)
            statement: cst.BaseSmallStatement
            if returns_value:
                statement = cst.Return(value=awaited)
            elif result is None:
                statement = cst.Expr(awaited)
            else:
                statement = cst.Assign(targets=[cst.AssignTarget(result)], value=awaited)
            after = cst.SimpleStatementLine(
                [statement], leading_lines=[cst.EmptyLine(indent=False)]
            )
            fix.replace[with_node] = cst.FlattenSentinel([nested, after])
            fix.changes.insert(0, moved)
            return fix

        return Safety.UNSAFE, [moved, *site.added], PendingFix(block, cst.With, build)

    def _function_name(self, block: ast.With) -> str:
        if self.category != "file I/O":
            return "_blocking_io"
        for item in block.items:
            call = item.context_expr
            assert isinstance(call, ast.Call)
            method = self.model.scopes.qualified_name(call.func) is None
            mode = _mode_argument(call, method)
            if mode is None:
                return "_file_io"
            if any(letter in mode for letter in "wax+"):
                return "_write_file"
        return "_read_file"

    def _blocking_api(
        self, func: ast.expr, any_category: bool = False, call: ast.Call | None = None
    ) -> str | None:
        """``requests.get`` for ``requests.get``/``http.get``; ``requests.Session.get`` for
        ``session.get`` on a ``requests.Session()``; ``os.spawnl`` for ``call`` when its
        mode is ``os.P_WAIT``; None when the call is not this rule's (with
        ``any_category``: not a blocking call the catalogue knows)."""
        model = self.model
        qualified = model.scopes.qualified_name(func)
        if qualified is not None:
            kind = BLOCKING_CALLS.get(qualified)
            if kind is None and qualified in SPAWNS and call is not None:
                kind = "a subprocess" if self._waits(call) else None
            if kind is not None and (any_category or kind == self.category):
                return qualified
            return None
        if isinstance(func, ast.Attribute):
            receiver = model.values.type_of(func.value)
            if receiver is not None and receiver.kind == "library":
                kind = BLOCKING_METHODS.get(receiver.name, {}).get(func.attr)
                if kind is not None and (any_category or kind == self.category):
                    return f"{receiver.name}.{func.attr}"
        return None

    def _waits(self, call: ast.Call) -> bool:
        """The mode of an ``os.spawn*`` call is ``os.P_WAIT`` (0 on every platform): it
        returns when the child exits (``P_NOWAIT``, or a mode it cannot name, does not
        count)."""
        mode = call.args[0] if call.args else None
        for keyword in call.keywords:
            if keyword.arg == "mode":
                mode = keyword.value
        if mode is None or isinstance(mode, ast.Starred):
            return False
        if isinstance(mode, ast.Constant):
            return type(mode.value) is int and mode.value == 0
        return self.model.scopes.qualified_name(mode) == "os.P_WAIT"


#: ``os.spawn*``: they wait for the child only with mode ``os.P_WAIT``
SPAWNS = frozenset(
    f"os.spawn{suffix}" for suffix in ("l", "le", "lp", "lpe", "v", "ve", "vp", "vpe")
)


def _names_expression(names: list[str]) -> cst.Name | cst.Tuple | None:
    """``a`` or ``a, b`` (an unparenthesised tuple, for ``return`` and assignment targets)."""
    if not names:
        return None
    if len(names) == 1:
        return cst.Name(names[0])
    elements = [
        cst.Element(
            cst.Name(name),
            comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            if index < len(names) - 1
            else cst.MaybeSentinel.DEFAULT,
        )
        for index, name in enumerate(names)
    ]
    return cst.Tuple(elements=elements, lpar=[], rpar=[])


def _blank_before(block: cst.With, parent: cst.CSTNode | None) -> Sequence[cst.EmptyLine]:
    """The ``with``'s own leading lines, with the blank line a nested ``def`` gets after other
    code (as black writes it)."""
    lines = list(block.leading_lines)
    first = isinstance(parent, cst.IndentedBlock) and parent.body[0] is block
    if not first and not any(line.comment is None for line in lines):
        lines.insert(0, cst.EmptyLine(indent=False))
    return lines


def _mode_argument(call: ast.Call, method: bool) -> str | None:
    """The mode string of ``open(path, mode)`` / ``path.open(mode)`` (``"r"`` by default), or
    None when it is not a literal."""
    if any(isinstance(arg, ast.Starred) for arg in call.args) or any(
        keyword.arg is None for keyword in call.keywords
    ):
        return None
    position = 0 if method else 1
    value: ast.expr | None = None
    for keyword in call.keywords:
        if keyword.arg == "mode":
            value = keyword.value
    if value is None and len(call.args) > position:
        value = call.args[position]
    if value is None:
        return "r"
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    return None


class BlockingHttp(_BlockingCall):
    code = "AF202"
    equivalent_codes = ("ASYNC210", "ASYNC211", "ASYNC212")
    name = "blocking-http"
    summary = (
        "a blocking HTTP or socket call (`requests`, `urllib`, `http.client`, sync `httpx`) in "
        "an async function"
    )
    why = (
        "`requests.get()` and its kin wait for the network on the calling thread. In a "
        "coroutine that is the event loop's thread: for the whole round trip — often seconds, "
        "unbounded without a timeout — no other request is served and no timer fires."
    )
    example_before = """\
import requests


async def weather(url):
    response = requests.get(url, timeout=10)
    return response.json()
"""
    example_after = """\
import asyncio

import requests


async def weather(url):
    response = await asyncio.to_thread(requests.get, url, timeout=10)
    return response.json()
"""
    fix_safety_note = (
        "Unsafe: the call moves to a worker thread (`await asyncio.to_thread(...)`), which is "
        "correct for a self-contained request but changes which thread runs it. The better "
        "repair, an async client (`httpx.AsyncClient`, `aiohttp`), is advised, never automatic."
    )
    severity = Severity.HIGH
    needles = _needles("network I/O")
    category = "network I/O"
    advice = "use an async client (httpx.AsyncClient, aiohttp) or offload it"


class BlockingFileIo(_BlockingCall):
    code = "AF203"
    equivalent_codes = ("ASYNC230", "ASYNC232")
    name = "blocking-file-io"
    summary = "blocking file I/O (`open`, `shutil`, `json.load`, `os.listdir`) in an async function"
    why = (
        "Disk I/O blocks the calling thread; on a network file system or a busy disk it can "
        "take far longer than expected. In a coroutine that thread runs the event loop, so "
        "every other task waits for the disk."
    )
    example_before = """\
import json


async def version(path):
    with open(path) as handle:
        state = json.loads(handle.read())
    return state["version"]
"""
    example_after = """\
import asyncio
import json


async def version(path):
    def _read_file():
        with open(path) as handle:
            state = json.loads(handle.read())
        return state

    state = await asyncio.to_thread(_read_file)
    return state["version"]
"""
    fix_safety_note = (
        "Unsafe: `await asyncio.to_thread(...)` runs the call in a worker thread "
        "(`loop.run_in_executor` for a target before Python 3.9). A `with open(...)` block "
        "moves whole into a nested sync function that is offloaded (offloading `open()` alone "
        "would leave the reads on the loop); it returns the names the code after the block "
        "reads. The block is reported without a fix, with the reason, when moving it could "
        "change what the code does: it awaits, yields or breaks out of a loop; it reads a "
        "name before assigning it that may hold an earlier value; code after it needs a name "
        "it does not assign on every path; it is in a `try` whose handlers use its names; "
        "it uses `global`, `nonlocal` or `super()`; or the `with` enters something besides "
        "files. aiofiles is advised, never automatic."
    )
    severity = Severity.MEDIUM
    needles = _needles("file I/O")
    category = "file I/O"
    advice = "offload it (asyncio.to_thread) or use aiofiles"


class BlockingSubprocess(_BlockingCall):
    code = "AF204"
    equivalent_codes = ("ASYNC220", "ASYNC221", "ASYNC222")
    name = "blocking-subprocess"
    summary = "a blocking subprocess call (`subprocess.run`, `os.system`, ...) in an async function"
    why = (
        "`subprocess.run()` and `os.system()` wait for the child process on the calling thread: "
        "in a coroutine, the event loop stops until the process exits."
    )
    example_before = """\
import subprocess


async def revision():
    return subprocess.check_output(["git", "rev-parse", "HEAD"], text=True)
"""
    example_after = """\
import asyncio
import subprocess


async def revision():
    return await asyncio.to_thread(subprocess.check_output, ["git", "rev-parse", "HEAD"], text=True)
"""
    fix_safety_note = (
        "Unsafe: the call moves to a worker thread. For streaming output or many processes, "
        "`asyncio.create_subprocess_exec` is the better repair (advised, never automatic)."
    )
    severity = Severity.HIGH
    needles = _needles("a subprocess")
    category = "a subprocess"
    advice = "use asyncio.create_subprocess_exec, or offload it"


class BlockingInput(_BlockingCall):
    code = "AF206"
    equivalent_codes = ("ASYNC250",)
    name = "blocking-input"
    summary = "`input()` in an async function waits for the terminal and stops the event loop"
    why = (
        "`input()` waits on the calling thread until someone types a line. In a coroutine "
        "that thread runs the event loop: every task, timer and connection stops until "
        "then (ruff's ASYNC250)."
    )
    example_before = """\
async def ask(prompt):
    answer = input(prompt)
    return answer.strip()
"""
    example_after = """\
import asyncio


async def ask(prompt):
    answer = await asyncio.to_thread(input, prompt)
    return answer.strip()
"""
    fix_safety_note = (
        "Unsafe: the prompt is read in a worker thread (`await asyncio.to_thread(input, ...)`): "
        "the loop goes on meanwhile, and a task cancelled while it waits leaves the thread "
        "blocked until a line comes."
    )
    severity = Severity.MEDIUM
    needles = _needles("console input")
    category = "console input"
    advice = "read it in a worker thread (asyncio.to_thread)"
