"""AF302 gather-errors-lost: ``gather(..., return_exceptions=True)`` whose results nobody
looks at, so every exception the tasks raised disappears."""

from __future__ import annotations

import ast

from asyncfix.analysis.catalogue import gathers_everything
from asyncfix.analysis.flow import Flow
from asyncfix.analysis.model import identifiers, in_order
from asyncfix.codemods.base import Rule
from asyncfix.model import Safety, Severity


def _starts_work(call: ast.Call, flow: Flow) -> bool:
    """Every awaitable is made right here (``f(x)``, ``*(d.refresh() for d in devices)``,
    or ``*aws`` for a local list this function fills with calls and gives nothing else):
    nothing else holds them, so the returned exceptions are the only trace of a failure.
    ``gather(*tasks)`` over tasks made elsewhere is left alone (a drain at shutdown; the
    tasks keep their exceptions)."""
    if not call.args:
        return False
    for value in call.args:
        if isinstance(value, ast.Starred):
            inner = value.value
            if isinstance(inner, ast.Name):
                if not _local_calls(inner, value, flow):
                    return False
            elif not isinstance(inner, (ast.GeneratorExp, ast.ListComp)) or not isinstance(
                inner.elt, ast.Call
            ):
                return False
        elif not isinstance(value, ast.Call):
            return False
    return True


def _local_calls(name: ast.Name, starred: ast.Starred, flow: Flow) -> bool:
    """``name`` is a local bound once to calls made here (``[f(x) for x in xs]``, ``[f(),
    g()]``, or ``[]`` then ``name.append(f(x))``), and read nowhere but in ``starred``."""
    local = flow.local(name)
    binding = local.single if local is not None else None
    if local is None or binding is None:
        return False
    value = binding.value
    if isinstance(value, (ast.ListComp, ast.GeneratorExp)):
        made = isinstance(value.elt, ast.Call)
    elif isinstance(value, (ast.List, ast.Tuple)):
        made = all(isinstance(item, ast.Call) for item in value.elts)
    else:
        made = False
    if not made:
        return False
    for use in local.uses:
        if use.name is name:
            continue
        appended = use.node
        if not (
            use.kind == "attribute"
            and isinstance(appended, ast.Attribute)
            and appended.attr == "append"
            and isinstance(value, ast.List)
        ):
            return False
        call = flow.scopes.parents.get(id(appended))
        if not (
            isinstance(call, ast.Call)
            and call.func is appended
            and len(call.args) == 1
            and isinstance(call.args[0], ast.Call)
            and isinstance(flow.scopes.parents.get(id(call)), ast.Expr)
        ):
            return False
    return starred.value is name


class GatherErrorsLost(Rule):
    code = "AF302"
    name = "gather-errors-lost"
    summary = "`gather(..., return_exceptions=True)` whose results are never inspected"
    why = (
        "With `return_exceptions=True`, `gather()` does not raise: a task's exception becomes "
        "an item of the returned list. Code that drops the list, or binds it and never reads "
        "it, silently loses every failure — a device that never updates, a write that never "
        "happened, with nothing in the log."
    )
    example_before = """\
import asyncio


async def refresh_all(devices):
    await asyncio.gather(*(d.refresh() for d in devices), return_exceptions=True)
"""
    example_after = """\
import asyncio
import logging


async def refresh_all(devices):
    results = await asyncio.gather(*(d.refresh() for d in devices), return_exceptions=True)
    for device, result in zip(devices, results):
        if isinstance(result, BaseException):
            logging.error("refreshing %s failed", device, exc_info=result)
"""
    fix_safety = Safety.NONE
    fix_safety_note = (
        "Report only: what a failure should do (log it, retry, raise the first one) is the "
        "author's call. The message suggests inspecting the results, or `asyncio.TaskGroup` "
        "when the target is Python 3.11+ and one failure should cancel the rest."
    )
    severity = Severity.MEDIUM
    kind = "Errors lost"
    needles = ("gather", "return_exceptions")

    def on_Call(self, node: ast.Call) -> None:
        model = self.model
        if not gathers_everything(node, model.scopes.qualified_name):
            return
        awaited = self.walk.parent(node)
        if not isinstance(awaited, ast.Await) or self._after_cancel(node):
            return
        if not _starts_work(node, model.flow):
            return  # existing tasks: their exceptions stay on the task objects
        holder = self.walk.parent(awaited)
        spelled = model.source.segment(node.func)
        advice = (
            "inspect the results, or use `asyncio.TaskGroup`"
            if self.context.target >= (3, 11)
            else "inspect the results"
        )
        if isinstance(holder, ast.Expr):
            self.report(
                node,
                f"`{spelled}(..., return_exceptions=True)` is awaited and its results dropped: "
                f"every exception the tasks raised is lost; {advice}",
            )
            return
        if isinstance(holder, ast.Assign) and len(holder.targets) == 1:
            target = holder.targets[0]
            if isinstance(target, ast.Name) and not self._read_later(target.id, node):
                self.report(
                    node,
                    f"the results of `{spelled}(..., return_exceptions=True)` are bound to "
                    f"`{target.id}` and never read: every exception the tasks raised is "
                    f"lost; {advice}",
                )

    def _after_cancel(self, node: ast.Call) -> bool:
        """A ``.cancel()`` call comes first in the function: the gather waits for the
        cancelled tasks to finish, and their CancelledErrors are what it deliberately drops."""
        function = self.walk.place(node).function
        if function is None:
            return False
        for child in in_order(function.body):
            if child is node:
                return False
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Attribute)
                and child.func.attr == "cancel"
            ):
                return True
        return False

    def _read_later(self, name: str, node: ast.Call) -> bool:
        """The name is mentioned again in the function (a conservative "read": any other
        mention counts as a read)."""
        function = self.walk.place(node).function
        if function is None:
            return True
        return identifiers(function)[name] > 1
