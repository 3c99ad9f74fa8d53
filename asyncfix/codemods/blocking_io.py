"""AF202 blocking-http, AF203 blocking-file-io, AF204 blocking-subprocess: a blocking call
made directly in an async body. One detection, three rules: they differ in which calls of the
catalogue (asyncfix/data/blocking_calls.toml) they own and which async API they point to."""

from __future__ import annotations

from typing import ClassVar

import libcst as cst

from asyncfix.codemods.base import Rule, offload_fix, source_of
from asyncfix.index import BLOCKING_CALLS, BLOCKING_METHODS
from asyncfix.model import Safety, Severity


class _BlockingCall(Rule):
    #: the catalogue's category this rule owns
    category: ClassVar[str]
    #: what to migrate to, as advice in the message
    advice: ClassVar[str]
    fix_safety = Safety.UNSAFE
    kind = "Blocking call on the event loop"

    def visit_Call(self, node: cst.Call) -> None:
        if not self.ctx.in_async_body() or isinstance(self.ctx.parent(), cst.Await):
            return
        qualified = self._blocking_api(node.func)
        if qualified is None:
            return
        spelled = source_of(node.func)
        message = f"`{spelled}()` blocks the event loop ({self.category}); {self.advice}"
        evidence = [(f"`{spelled}` is `{qualified.removeprefix('builtins.')}`", None)]
        if isinstance(self.ctx.parent(), cst.WithItem):
            # offloading `open()` alone leaves every read of the block on the loop
            self.report(
                node,
                message + " (no fix: the block's reads block too; move the block into a sync "
                "function and offload that)",
                None,
                evidence,
            )
            return
        fix = offload_fix(self.ctx, node)
        self.report(node, message if fix else message + " (no fix here)", fix, evidence)

    def _blocking_api(self, func: cst.BaseExpression) -> str | None:
        """``requests.get`` for ``requests.get``/``http.get``; ``requests.Session.get`` for
        ``session.get`` on a ``requests.Session()``; None when the call is not this rule's."""
        qualified = self.ctx.qualified_name(func)
        if qualified is not None:
            return qualified if BLOCKING_CALLS.get(qualified) == self.category else None
        if isinstance(func, cst.Attribute):
            receiver = self.ctx.receivers.type_of(func.value)
            if receiver is not None and receiver.kind == "library":
                kind = BLOCKING_METHODS.get(receiver.name, {}).get(func.attr.value)
                if kind == self.category:
                    return f"{receiver.name}.{func.attr.value}"
        return None


class BlockingHttp(_BlockingCall):
    code = "AF202"
    name = "blocking-http"
    summary = (
        "a blocking HTTP or socket call (`requests`, `urllib`, sync `httpx`) in an async function"
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
    needles = ("async", ("requests", "urlopen", "httpx", "socket"))
    category = "network I/O"
    advice = "use an async client (httpx.AsyncClient, aiohttp) or offload it"


class BlockingFileIo(_BlockingCall):
    code = "AF203"
    name = "blocking-file-io"
    summary = "blocking file I/O (`open`, `shutil`, `json.load`, `os.listdir`) in an async function"
    why = (
        "Disk I/O blocks the calling thread; on a network file system or a busy disk it can "
        "take far longer than expected. In a coroutine that thread runs the event loop, so "
        "every other task waits for the disk."
    )
    example_before = """\
import shutil


async def backup(path):
    shutil.copyfile(path, path + ".bak")
"""
    example_after = """\
import asyncio
import shutil


async def backup(path):
    await asyncio.to_thread(shutil.copyfile, path, path + ".bak")
"""
    fix_safety_note = (
        "Unsafe: `await asyncio.to_thread(...)` runs the call in a worker thread. A "
        "`with open(...)` block is reported without a fix: offloading `open()` alone would "
        "leave the reads in the block on the loop. aiofiles is advised, never automatic."
    )
    severity = Severity.MEDIUM
    needles = ("async", ("open", "shutil", "json.", "pickle", "listdir", "scandir", "walk", "Path"))
    category = "file I/O"
    advice = "offload it (asyncio.to_thread) or use aiofiles"


class BlockingSubprocess(_BlockingCall):
    code = "AF204"
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
    needles = ("async", ("subprocess", "os.system", "popen", "system(", "Popen"))
    category = "a subprocess"
    advice = "use asyncio.create_subprocess_exec, or offload it"
