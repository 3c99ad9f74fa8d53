"""AF205 blocking-helper: an async function calls a project sync function that blocks."""

from __future__ import annotations

import ast

from asyncfix.analysis.source import shown
from asyncfix.codemods.base import PendingFix, Rule
from asyncfix.index import BLOCKING_CALLS
from asyncfix.lazy import libcst as cst
from asyncfix.model import Safety, Severity


class BlockingHelper(Rule):
    code = "AF205"
    name = "blocking-helper"
    summary = "an async function calls a project sync function that blocks"
    why = (
        "A helper that sleeps, reads a file, makes an HTTP request or runs a subprocess blocks "
        "the thread it runs on. Called from a coroutine, that thread is the event loop's: every "
        "other task stalls until the helper returns. The blocking call is often several calls "
        "down (`load_config -> _read -> open`), where no linter that looks at one function "
        "sees it."
    )
    example_before = """\
import json


def load_config(path):
    with open(path) as f:
        return json.load(f)


async def handle(request):
    config = load_config("config.json")
    return config["greeting"]
"""
    example_after = """\
import asyncio
import json


def load_config(path):
    with open(path) as f:
        return json.load(f)


async def handle(request):
    config = await asyncio.to_thread(load_config, "config.json")
    return config["greeting"]
"""
    fix_safety = Safety.UNSAFE
    fix_safety_note = (
        "Unsafe: `await asyncio.to_thread(helper, ...)` runs the helper in a worker thread, so "
        "it must be safe to run there (no event-loop objects, no thread-unsafe shared state). "
        "Needs Python 3.9 (`target-version`); inside a generator expression the finding is "
        "reported without a fix."
    )
    severity = Severity.MEDIUM
    kind = "Blocking call on the event loop"
    no_fix_in_tests = True
    needles = ("async",)
    needs_index = True

    def on_Call(self, node: ast.Call) -> None:
        project = self.context.project
        walk = self.walk
        if project is None or not walk.in_async_body(node):
            return
        if isinstance(walk.parent(node), ast.Await):
            return
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name is None:
            return
        if name not in project.index.blocking_names():
            # no project function of this name blocks: the file's result depends on that
            # staying so (recorded for the results cache)
            project.index.passed_over("blocking", name)
            return
        fact = self.model.coroutines.project_function(node)
        if fact is None or fact.is_coroutine:
            return
        chain = project.index.blocking_chain(fact)
        if chain is None:
            return
        api = chain[-1].removeprefix("builtins.")
        steps = " -> ".join([*chain[:-1], api])
        spelled = self.model.source.segment(node.func)
        message = f"`{spelled}()` blocks the event loop: {steps} ({BLOCKING_CALLS[chain[-1]]})"
        evidence = [
            f"`{fact.qualified}` is a sync function ({shown(fact.path)}:{fact.line})",
            f"it reaches `{api}()` through {steps}",
        ]
        offload = self.offload(node)
        if offload is None:
            self.report(node, message + " (no fix here)", None, evidence)
            return
        changes, build = offload
        pending = PendingFix(node, cst.Call, build)
        self.report(node, message, (Safety.UNSAFE, changes, pending), evidence)
