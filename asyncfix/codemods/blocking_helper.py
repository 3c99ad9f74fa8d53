"""AF205 blocking-helper: an async function calls a project sync function that blocks."""

from __future__ import annotations

import ast

from asyncfix.analysis.source import shown
from asyncfix.codemods.base import PendingFix, Rule, lines_of, the_call_at
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
        "reported without a fix. With `--evidence` (the runtime-evidence pytest plugin's "
        "file), a call the tests saw holding the event loop (a slow callback whose thread was "
        "sampled at that line of the coroutine) is reported even where the analysis cannot "
        "tell it blocks (dynamic dispatch, third-party or CPU-bound code), with the same fix, "
        "when it is the only call on its line that is not awaited and not a call another AF2 "
        "rule owns."
    )
    severity = Severity.MEDIUM
    kind = "Blocking call on the event loop"
    no_fix_in_tests = True
    needles = ("async",)
    needs_index = True

    def on_Call(self, node: ast.Call) -> None:
        walk = self.walk
        if not walk.in_async_body(node) or isinstance(walk.parent(node), ast.Await):
            return
        if not self._project_helper(node) and self.context.observed:
            self._seen_blocking(node)

    def _seen_blocking(self, node: ast.Call) -> None:
        """A call the runtime-evidence plugin saw holding the event loop (``--evidence``: a
        slow callback whose thread was sampled at this line of the coroutine), where the
        analysis cannot tell it blocks (dynamic dispatch, third-party code, CPU-bound
        work): reported with the same offloading fix as a helper that blocks, unsafe (the
        call blocked when the tests ran; it runs in a worker thread after the fix). Only
        for the one call on its line that is not awaited, not a call the catalogue of
        blocking calls knows (its own rule reports it, or was deselected); dropped where
        another AF2 rule reports the line."""
        if self.model.scopes.qualified_name(node.func) in BLOCKING_CALLS:
            return
        seen = [
            o
            for o in self.context.seen("slow-callback", lines_of(node), "blocked")
            if the_call_at(self._statement(node), o.line) is node
        ]
        if not seen:
            return
        first = seen[0]
        spelled = self.model.source.segment(node.func)
        test = f" (in {first.test})" if first.test else ""
        message = f"`{spelled}()` blocks the event loop: it held the loop when the tests ran{test}"
        evidence = [o.said() for o in seen]
        offload = self.offload(node)
        if offload is None:
            self.report(node, message + " (no fix here)", None, evidence, runtime=True)
            return
        changes, build = offload
        pending = PendingFix(node, cst.Call, build)
        self.report(node, message, (Safety.UNSAFE, changes, pending), evidence, runtime=True)

    def _statement(self, node: ast.AST) -> ast.stmt:
        current: ast.AST | None = node
        while current is not None and not isinstance(current, ast.stmt):
            current = self.walk.parent(current)
        assert current is not None, "an expression is in a statement"
        return current

    def _project_helper(self, node: ast.Call) -> bool:
        """Whether ``node`` calls a project sync function that blocks (reported so)."""
        project = self.context.project
        if project is None:
            return False
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name is None:
            return False
        if name not in project.index.blocking_names():
            # no project function of this name blocks: the file's result depends on that
            # staying so (recorded for the results cache)
            project.index.passed_over("blocking", name)
            return False
        fact = self.model.coroutines.project_function(node)
        if fact is None or fact.is_coroutine:
            return False
        chain = project.index.blocking_chain(fact)
        if chain is None:
            return False
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
            return True
        changes, build = offload
        pending = PendingFix(node, cst.Call, build)
        self.report(node, message, (Safety.UNSAFE, changes, pending), evidence)
        return True
