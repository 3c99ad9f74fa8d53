"""AF101 missing-await: a coroutine function is called and its coroutine never awaited."""

from __future__ import annotations

import ast
from typing import Any

from asyncfix.analysis.coroutines import Callee
from asyncfix.analysis.flow import Local, Use
from asyncfix.analysis.model import SemanticModel, holding_list
from asyncfix.analysis.source import shown
from asyncfix.analysis.uses import HANDED_ON, VALUE_BUILTINS, transparent, value_use
from asyncfix.codemods.base import Fix, Locate, PendingFix, Rule, await_expression
from asyncfix.index import ITERATED_FIRST, FunctionFact
from asyncfix.lazy import libcst as cst
from asyncfix.model import Safety, Severity

#: what a coroutine object may be asked for: closing one is how code disposes of it
COROUTINE_ATTRIBUTES = frozenset(
    {
        "close",
        "send",
        "throw",
        "cr_await",
        "cr_code",
        "cr_frame",
        "cr_running",
        "cr_suspended",
        "cr_origin",
        "__await__",
        "__name__",
        "__qualname__",
        "__class__",
    }
)
#: what a use of a local holding a coroutine (and nothing else) does wrong
VALUE_USES = {
    "tested": "used as a condition (always true)",
    "compared": "compared",
    "arithmetic": "used in arithmetic",
    "attribute": "used as an object (attribute access)",
    "subscripted": "subscripted",
    "iterated": "iterated",
    "formatted": "formatted into a string",
    "value": "passed to a builtin as a value",
    "dropped": "dropped",
}
#: a parameter a function uses only so (or never reads) loses a coroutine passed to it
LOST_IN = frozenset({"dropped", "tested", "compared", "formatted", "value"})
#: names that read a function's locals without naming them
_DYNAMIC = frozenset({"locals", "vars", "eval", "exec"})


class MissingAwait(Rule):
    code = "AF101"
    name = "missing-await"
    summary = "a coroutine function is called without `await`"
    why = (
        "Calling a coroutine function only creates a coroutine object; its body runs when the "
        "coroutine is awaited. Without `await` the work silently never happens (Python at best "
        "prints 'coroutine ... was never awaited' when it is garbage-collected), and where the "
        "result is used as a value — `if client.is_connected():`, `not f()`, `cb and cb(x)` — a "
        "coroutine object is always truthy, so the test is always true."
    )
    example_before = """\
class Agent:
    async def connect(self):
        ...

    async def start(self):
        self.connect()
"""
    example_after = """\
class Agent:
    async def connect(self):
        ...

    async def start(self):
        await self.connect()
"""
    fix_safety = Safety.SAFE
    fix_safety_note = (
        "Safe: the coroutine now runs where it was evidently meant to run. The callee must be "
        "known to be a coroutine function: a same-module `async def` (undecorated or with a "
        "decorator known to keep it a coroutine function), a method of the enclosing class or "
        "its same-module bases, a well-known library coroutine, or a function outside the "
        "project that the configuration declares one (`coroutine-functions`); anything else is "
        "not reported (an `async def` that yields is an async generator, which is iterated, "
        "not awaited). `return f()` from an `async def` gets an unsafe fix (a caller may await "
        "the returned coroutine itself). A coroutine bound to a local that is never awaited or "
        "handed on -- only tested, compared, subscripted, formatted, or never read (the "
        "model's value flow) -- gets `await` at the call. Reported without a fix: a coroutine "
        "awaited on some paths only (`t = f(); if b: await t`); one passed to a project "
        "function whose summary says it never awaits, schedules, stores or returns that "
        "parameter, directly or through a local handed to no other place; and a local whose "
        "first use, in the block of its binding, raises TypeError before any later use can "
        "await it: a `for` over it, or a call of a project function that begins by iterating "
        "that parameter (a sync function, no generator, whose first read of it is a `for` at "
        "the top of its body after no `return`; passing the coroutine straight to one is "
        "reported too). Inside a generator expression no fix is offered. A sync function whose "
        "every return is such a call (`def fetch_later(): return fetch()`) counts as a "
        "coroutine function; one that returns None on some path is reported without a fix "
        "(`await` would fail there), and `if x is None:` tells which paths hold nothing. Also "
        "reported without a fix: a coroutine put in a container nothing takes it out of, or in "
        "a dict item nothing reads; a callback parameter called and dropped, where a caller in "
        "the module passes a coroutine function; an instance of a plain class of the module "
        "dropped (or bound to a local never used) whose `__init__` keeps a coroutine on it and "
        "lets nothing else see it. Nothing is reported on a branch the module's own conditions "
        "rule out (`verbose = False` ... `if verbose:`). With `--evidence` (the "
        "runtime-evidence pytest plugin's file), a dropped call whose callee the analysis "
        "cannot tell (dynamic dispatch) is reported where the tests saw a coroutine made there "
        "and never awaited, with `await` as an unsafe fix (another call of it may not make "
        "one), when the call is its statement's only call."
    )
    severity = Severity.HIGH
    kind = "Coroutine never awaited"
    needles = ("async",)

    needs_index = True

    def on_Call(self, node: ast.Call) -> None:
        walk = self.walk
        if not walk.in_async_body(node):
            return
        context = self._dropped_context(node)
        if context is None:
            self._handed_on(node)
            return
        found = self.model.coroutines.callee(node)
        if found is None:
            dropped = context == "dropped"
            if dropped and not self._seen_never_awaited(node):
                if self._kept_by_instance(node, "dropped"):
                    return
                self._callback_parameter(node)
            return
        message = f"`{found.spelled}()` is not awaited: the coroutine is {context}"
        if found.optional:
            if context == "dropped":  # None on other paths: `await` is no fix
                message = (
                    f"`{found.spelled}()` is not awaited: the coroutine it may return is dropped"
                )
                self.report(node, message + " (no fix: it may return None)", None, [found.evidence])
            return
        if walk.place(node).genexp:
            self.report(
                node, message + " (no fix inside a generator expression)", None, [found.evidence]
            )
            return
        safety = Safety.UNSAFE if context == "returned" else Safety.SAFE
        changes = [f"Inserted `await` before `{self.model.source.segment(node.func)}(...)`"]

        def build(call: cst.CSTNode, locate: Locate) -> Fix:
            assert isinstance(call, cst.Call)
            awaited = await_expression(call, call, locate.parent(call))
            return Fix(safety=safety, changes=changes, replace={call: awaited})

        pending = PendingFix(node, cst.Call, build)
        self.report(node, message, (safety, changes, pending), [found.evidence])

    def _seen_never_awaited(self, node: ast.Call) -> bool:
        """A dropped call whose callee the model cannot tell (dynamic dispatch, untyped
        code), where the runtime-evidence plugin saw a coroutine made and never awaited:
        reported with `await` as an unsafe fix (the call made a coroutine when the tests
        ran; another call may not). Only for a call that is its statement, and the only
        call in it (the observation names a line, not a call)."""
        lines = range(node.lineno, (node.end_lineno or node.lineno) + 1)
        seen = self.context.seen("never-awaited", lines)
        if not seen:
            return False
        statement = self.model.scopes.parents.get(id(node))
        if not isinstance(statement, ast.Expr) or statement.value is not node:
            return False
        if [other for other in ast.walk(statement) if isinstance(other, ast.Call)] != [node]:
            return False
        first = seen[0]
        test = f" in {first.test}" if first.test else ""
        message = (
            f"`{self.model.source.segment(node.func)}()` is not awaited: when the tests ran it "
            f"made a coroutine that was never awaited ({first.message}{test})"
        )
        safety = Safety.UNSAFE
        changes = [f"Inserted `await` before `{self.model.source.segment(node.func)}(...)`"]

        def build(call: cst.CSTNode, locate: Locate) -> Fix:
            assert isinstance(call, cst.Call)
            awaited = await_expression(call, call, locate.parent(call))
            return Fix(safety=safety, changes=changes, replace={call: awaited})

        evidence = [o.said() for o in seen]
        self.report(node, message, (safety, changes, PendingFix(node, cst.Call, build)), evidence)
        return True

    def _kept_by_instance(self, node: ast.Call, lost: str) -> bool:
        """``D()`` dropped (or bound to a local never used), where ``D.__init__`` keeps a
        coroutine on the instance and nothing else: the coroutine is lost with it.
        Report only (what the instance was for is not known)."""
        kept = kept_by_instance(self.model, node)
        if kept is None:
            return False
        message = (
            f"`{self.model.source.segment(node.func)}()` keeps the coroutine of `{kept[0]}()` "
            f"on the instance, and the instance is {lost}: the coroutine is never awaited"
        )
        self.report(node, message, None, kept[1])
        return True

    def _callback_parameter(self, node: ast.Call) -> None:
        """``f()`` dropped, ``f`` a parameter of the enclosing module-level ``async def``,
        and a call of that function in this module passes a coroutine function (or a
        lambda that returns a coroutine) as ``f``: that caller's coroutine is lost. Other
        callers may pass sync callables, so there is no fix."""
        model = self.model
        func = node.func
        function = self.walk.place(node).function
        if not isinstance(func, ast.Name) or not isinstance(function, ast.AsyncFunctionDef):
            return
        local = model.flow.local(func)
        if local is None or local.function is not function:
            return
        if len(local.bindings) != 1 or local.bindings[0].kind != "param":
            return
        if model.scopes.parents.get(id(function)) is not model.tree:
            return  # a method or a nested function: its callers are not all in sight
        arguments = function.args
        positional = [a.arg for a in (*arguments.posonlyargs, *arguments.args)]
        keywords = {a.arg for a in (*arguments.args, *arguments.kwonlyargs)}
        for call in model.scopes.by_type.get(ast.Call, ()):
            assert isinstance(call, ast.Call)
            if not isinstance(call.func, ast.Name) or call.func.id != function.name:
                continue
            found = model.scopes.resolve(call.func)
            if found is None or found[0] is not model.scopes.module:
                continue
            if [binding.node for binding in found[1]] != [function]:
                continue
            passed: ast.expr | None = None
            if func.id in positional and not any(isinstance(a, ast.Starred) for a in call.args):
                at = positional.index(func.id)
                passed = call.args[at] if at < len(call.args) else None
            if passed is None and func.id in keywords:
                passed = next((k.value for k in call.keywords if k.arg == func.id), None)
            made = model.coroutines.makes_coroutine(passed) if passed is not None else None
            if made is None or passed is None:
                continue
            message = (
                f"`{func.id}()` is not awaited: `{function.name}()` is called with a "
                f"coroutine function as `{func.id}` at line {call.lineno}, and the coroutine "
                "is dropped"
            )
            evidence = [f"at line {call.lineno}, `{func.id}` is `{model.source.segment(passed)}`"]
            message += " (no fix: other callers may pass a sync callable)"
            self.report(node, message, None, [made.evidence, *evidence])
            return

    def report(self, node: ast.AST, *args: Any, **kwargs: Any) -> None:
        if self.model.conditions.dead(node):
            return  # a branch that never runs (`x = None` ... `if x:`)
        super().report(node, *args, **kwargs)

    # -- a coroutine bound to a local, or handed to a function -------------------------

    def _handed_on(self, node: ast.Call) -> None:
        """The call's coroutine goes into a local, or to a function, that loses it: a local
        only tested, compared, formatted... (or never read), or awaited on some paths only
        (the model's value flow); a project function whose summary (the index) says it
        never awaits, schedules, stores or returns that parameter. The callee is asked
        about first: most calls make no coroutine, and their values are not followed."""
        parent = self.walk.parent(node)
        if isinstance(parent, (ast.Assign, ast.AnnAssign)) and parent.value is node:
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            if len(targets) != 1 or not isinstance(targets[0], ast.Name) or targets[0].id == "_":
                return  # `_ = f()` means it (as pyright)
            found = self.model.coroutines.callee(node)
            if found is not None:
                self._bound(node, parent, targets[0], found)
            else:
                lost = instance_lost(self.model, node, targets[0])
                if lost is not None:
                    self._kept_by_instance(node, lost)
            return
        call = self.walk.parent(parent) if isinstance(parent, ast.keyword) else parent
        passed = isinstance(call, ast.Call) and call.func is not node
        if not passed and not may_be_contained(node, parent):
            return
        found = self.model.coroutines.callee(node)
        if found is None:
            return
        if passed:
            assert isinstance(call, ast.Call)
            self._passed(node, call, parent, found)
        else:
            self._contained(node, parent, found)

    def _bound(self, node: ast.Call, statement: ast.stmt, target: ast.Name, found: Callee) -> None:
        model = self.model
        local = followed_local(model, target)
        if local is None or local.function is not self.walk.place(statement).function:
            return
        handled = [use for use in local.uses if _hands_on(use)]
        raising = self._raises_first(local, statement) if handled else None
        if raising is not None:
            what, evidence = raising
            message = (
                f"`{found.spelled}()` is not awaited: `{target.id}` holds the coroutine and is "
                f"first {what}: that raises TypeError before anything can await it"
            )
            self.report(node, message, None, [found.evidence, *evidence])
            return
        losing = [self._loses(use) for use in handled]
        if handled and all(losing):
            fact, parameter, call = next(lose for lose in losing if lose is not None)
            lines = ", ".join(str(use.name.lineno) for use in handled)
            message = (
                f"`{found.spelled}()` is not awaited: the coroutine bound to `{target.id}` is "
                f"passed to `{model.source.segment(call.func)}()`, which "
                f"{_what_it_does(fact, parameter)}"
            )
            evidence = [
                found.evidence,
                f"`{target.id}` is handed on only to functions that lose it (line {lines})",
                _summary_evidence(fact, parameter),
            ]
            self.report(node, message, None, evidence)
            return
        if handled:
            if model.flow.on_every_path(local, _hands_on, found.optional) is not False:
                return
            message = (
                f"`{found.spelled}()` is not awaited on every path: the coroutine bound to "
                f"`{target.id}` is awaited or handed on only on some paths, and lost on the others"
            )
            evidence = [found.evidence, _paths_evidence(local)]
            self.report(node, message, None, evidence)
            return
        if found.optional:
            if not local.uses:  # tested, it may be a test for None
                message = (
                    f"`{found.spelled}()` is not awaited: the coroutine it may return is bound "
                    f"to `{target.id}`, which is never used (no fix: it may return None)"
                )
                self.report(node, message, None, [found.evidence])
            return
        if local.uses:
            first = local.uses[0]
            line = first.name.lineno
            negated = isinstance(first.node, ast.UnaryOp) and isinstance(first.node.op, ast.Not)
            what = "negated (always false)" if negated else VALUE_USES.get(first.kind, "used")
            message = (
                f"`{found.spelled}()` is not awaited: `{target.id}` holds the coroutine and is "
                f"{what} (line {line})"
            )
        else:
            message = (
                f"`{found.spelled}()` is not awaited: the coroutine is bound to `{target.id}`, "
                "which is never used"
            )
        evidence = [found.evidence, f"`{target.id}` is never awaited or handed on"]
        if self.walk.place(node).genexp:
            self.report(node, message + " (no fix inside a generator expression)", None, evidence)
            return
        changes = [f"Inserted `await` before `{model.source.segment(node.func)}(...)`"]

        def build(call: cst.CSTNode, locate: Locate) -> Fix:
            assert isinstance(call, cst.Call)
            awaited = await_expression(call, call, locate.parent(call))
            return Fix(safety=Safety.SAFE, changes=changes, replace={call: awaited})

        pending = PendingFix(node, cst.Call, build)
        self.report(node, message, (Safety.SAFE, changes, pending), evidence)

    def _raises_first(self, local: Local, statement: ast.stmt) -> tuple[str, list[str]] | None:
        """The local's first use, in the block of its binding after it, raises TypeError on a
        coroutine: ``for ... in local:``, or ``g(local)`` as a statement where the project
        function ``g`` iterates that parameter first. Every path that reaches a later use
        goes through it. What it is, and the evidence."""
        first = local.uses[0] if local.uses else None
        if first is None or first.conditional:
            return None
        used = first.node
        line = first.name.lineno
        if first.kind == "iterated" and isinstance(used, (ast.For, ast.AsyncFor)):
            if used.iter is not first.name:
                return None
            runs: ast.stmt = used
            what = f"iterated (line {line})"
            evidence = f"the `for` at line {line} is the first use of `{local.name}`"
        elif first.kind == "passed" and isinstance(used, ast.Call):
            holder = self.walk.parent(used)
            if not (isinstance(holder, (ast.Expr, ast.Assign)) and holder.value is used):
                return None
            runs = holder
            losing = self._loses(first)
            if losing is None or not _begins_by_iterating(losing[0], losing[1]):
                return None
            fact, parameter, _ = losing
            spelled = self.model.source.segment(used.func)
            what = (
                f"passed to `{spelled}()` (line {line}), which iterates its `{parameter}` at once"
            )
            evidence = _summary_evidence(fact, parameter)
        else:
            return None
        parent = self.walk.parent(statement)
        block = holding_list(parent, statement) if parent is not None else None
        if block is None or not any(item is runs for item in block):
            return None
        if block.index(runs) < block.index(statement):
            return None
        # the TypeError leaves the function: no `try` may catch it, no `with` suppress it
        # and hand the coroutine on afterwards
        around = parent
        while around is not None and around is not local.function:
            if not isinstance(around, (ast.If, ast.For, ast.AsyncFor, ast.While)):
                return None
            around = self.walk.parent(around)
        return what, [evidence, "it runs whenever the binding does: a coroutine is not iterable"]

    def _loses(self, use: Use) -> tuple[FunctionFact, str, ast.Call] | None:
        """The use passes the local to a project function that loses it: the function, the
        parameter and the call."""
        if use.kind != "passed":
            return None  # (a call made on some paths only loses it too: the others drop it)
        parent = self.walk.parent(use.name)
        call = self.walk.parent(parent) if isinstance(parent, ast.keyword) else parent
        if not isinstance(call, ast.Call) or call is not use.node:
            return None
        losing = losing_parameter(self.model, use.name, call, parent)
        return (*losing, call) if losing is not None else None

    def _contained(self, node: ast.Call, holder: ast.AST | None, found: Callee) -> None:
        lost = lost_in_container(self.model, node, holder)
        if lost is not None:
            message = f"`{found.spelled}()` is not awaited: the coroutine is {lost[0]}"
            self.report(node, message, None, [found.evidence, lost[1]])

    def _passed(
        self, node: ast.Call, call: ast.Call, argument: ast.AST | None, found: Callee
    ) -> None:
        """``g(f())`` where the project function ``g`` loses that parameter."""
        losing = losing_parameter(self.model, node, call, argument)
        if losing is None:
            return
        fact, parameter = losing
        spelled = self.model.source.segment(call.func)
        message = (
            f"`{found.spelled}()` is not awaited: the coroutine is passed to `{spelled}()`, "
            f"which {_what_it_does(fact, parameter)}"
        )
        self.report(node, message, None, [found.evidence, _summary_evidence(fact, parameter)])

    # -- is the coroutine used wrongly? ------------------------------------------------

    def _dropped_context(self, node: ast.expr) -> str | None:
        """How the coroutine is misused here, or None when this use may be legitimate."""
        parent = self.walk.parent(node)
        if isinstance(parent, ast.Expr):
            return "dropped"
        if isinstance(parent, (ast.If, ast.While, ast.IfExp)) and parent.test is node:
            return "used as a condition (always true)"
        if isinstance(parent, ast.comprehension) and any(test is node for test in parent.ifs):
            return "used as a condition (always true)"
        if isinstance(parent, ast.UnaryOp):
            return (
                "negated (always false)" if isinstance(parent.op, ast.Not) else "used as a number"
            )
        if isinstance(parent, ast.BoolOp):
            if parent.values[-1] is not node:
                return "used as a truth value (always true)"
            # the last operand is the result: misused only where the whole is misused
            return self._dropped_context(parent)
        if isinstance(parent, ast.Compare) and not self._awaited(parent):
            return "compared"
        if isinstance(parent, ast.BinOp) and not self._awaited(parent):
            return "used in arithmetic"
        if isinstance(parent, ast.Attribute) and parent.value is node:
            return "used as an object (attribute access)"
        if isinstance(parent, ast.Subscript) and parent.value is node:
            return "subscripted"
        call = parent
        if isinstance(parent, (ast.keyword, ast.Starred)):
            call = self.walk.parent(parent)
            if isinstance(parent, ast.Starred) and not (
                isinstance(call, ast.Call) and any(arg is parent for arg in call.args)
            ):
                return None
        if isinstance(call, ast.Call) and call.func is not node:
            if transparent(call, node, self.model.scopes.qualified_name):
                return self._dropped_context(call)  # `reveal_type(f())`
            if self.model.scopes.qualified_name(call.func) in VALUE_BUILTINS:
                return f"passed to `{self.model.source.segment(call.func)}()` as a value"
            return None
        if isinstance(parent, ast.FormattedValue) and parent.value is node:
            return "formatted into a string"
        if isinstance(parent, ast.Return):
            return "returned"
        return None

    def _awaited(self, node: ast.AST) -> bool:
        return isinstance(self.walk.parent(node), ast.Await)


def may_be_contained(node: ast.expr, parent: ast.AST | None) -> bool:
    """``node`` is an item of a display, or the value of ``d[k] = node``: worth asking
    ``lost_in_container`` about."""
    if isinstance(parent, (ast.Tuple, ast.List, ast.Dict)):
        return True
    return (
        isinstance(parent, ast.Assign)
        and parent.value is node
        and len(parent.targets) == 1
        and isinstance(parent.targets[0], ast.Subscript)
    )


def lost_in_container(
    model: SemanticModel, node: ast.Call, holder: ast.AST | None
) -> tuple[str, str] | None:
    """Where the coroutine ``node`` makes is lost in a local container, as (how, evidence):
    ``t = (f(), g())`` (or a list, or a dict with constant keys) when only other items are
    taken out (``await t[1]``); ``d[k] = f()`` into a local dict that nothing reads. Any
    other use of the container (iterated, passed on, returned) may use them all: None."""
    if isinstance(holder, ast.Assign):
        return _lost_in_item(model, holder)
    if not isinstance(holder, (ast.Tuple, ast.List, ast.Dict)):
        return None
    display = holder
    if isinstance(display, ast.Dict):
        keys = display.keys
        position = next((i for i, v in enumerate(display.values) if v is node), None)
        if position is None:
            return None  # a dict's key
        key = keys[position]
        if not isinstance(key, ast.Constant):
            return None
        wanted: object = key.value
    else:
        if any(isinstance(item, ast.Starred) for item in display.elts):
            return None
        wanted = next(i for i, item in enumerate(display.elts) if item is node)
        size = len(display.elts)
    statement = model.scopes.parents.get(id(display))
    if not isinstance(statement, ast.Assign) or statement.value is not display:
        return None
    if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
        return None
    target = statement.targets[0]
    local = followed_local(model, target)
    if local is None:
        return None
    taken_out = False
    for use in local.uses:
        item = use.node
        if use.kind != "subscripted" or not isinstance(item, ast.Subscript):
            return None
        index = item.slice
        if not isinstance(index, ast.Constant) or not isinstance(item.ctx, ast.Load):
            return None
        taken: object = index.value
        if not isinstance(display, ast.Dict):
            if not isinstance(taken, int) or isinstance(taken, bool):
                return None  # something no tuple or list is indexed by
            taken = taken + size if taken < 0 else taken  # `t[-1]`
        kind, _ = value_use(item, model.scopes.parents, model.scopes.qualified_name)
        if taken == wanted and (kind in HANDED_ON or kind == "other"):
            taken_out = True
    if taken_out:
        return None
    how = f"put in `{target.id}`, and nothing takes it out to await or hand it on"
    return how, f"`{target.id}` is only subscripted, at other items"


def _lost_in_item(model: SemanticModel, statement: ast.Assign) -> tuple[str, str] | None:
    """``d[k] = f()``, ``d`` a local bound once to a dict or list display, and every other
    use of ``d`` stores or deletes an item: nothing ever reads what it holds."""
    target = statement.targets[0]
    assert isinstance(target, ast.Subscript)
    if not isinstance(target.value, ast.Name):
        return None
    name = target.value
    local = model.flow.local(name)
    if local is None or local.single is None:
        return None
    bound = local.single.node
    if not isinstance(local.single.value, (ast.Dict, ast.List)) or not isinstance(bound, ast.Name):
        return None
    followed = followed_local(model, bound)
    if followed is None:
        return None
    for use in followed.uses:
        item = use.node
        if use.kind != "subscripted" or not isinstance(item, ast.Subscript):
            return None
        if isinstance(item.ctx, ast.Load):
            return None
    how = f"stored in `{name.id}`, which nothing reads"
    return how, f"`{name.id}` is only written to"


def instance_lost(model: SemanticModel, node: ast.Call, target: ast.Name) -> str | None:
    """How ``target = node`` loses the value: bound to a local of a function that is never
    read (the model's value flow), or None."""
    if target.id == "_":
        return None
    local = followed_local(model, target)
    if local is None or local.uses or local.single is None or local.single.value is not node:
        return None
    return f"bound to `{target.id}`, which is never used"


def kept_by_instance(model: SemanticModel, node: ast.Call) -> tuple[str, list[str]] | None:
    """(the coroutine function as spelled, the evidence) when the instance ``node`` makes
    alone keeps a coroutine (``Coroutines.kept_by_instance``)."""
    kept = model.coroutines.kept_by_instance(node)
    if kept is None:
        return None
    found, store = kept
    stored = f"line {store.lineno}: `{model.source.segment(store)}`, and nothing else sees it"
    return found.spelled, [found.evidence, stored]


def losing_parameter(
    model: SemanticModel, value: ast.expr, call: ast.Call, argument: ast.AST | None
) -> tuple[FunctionFact, str] | None:
    """``value`` is an argument of ``call`` (``argument``: the keyword it is given by, or
    ``value`` itself), and ``call`` calls a project function that never awaits, schedules,
    stores or returns that parameter, or iterates it first (a coroutine raises TypeError
    there), by its summary in the index: the function, and the parameter. Not a method
    called on an instance (a subclass may override it)."""
    if isinstance(argument, ast.keyword):
        position, keyword = None, argument.arg
        if keyword is None:
            return None  # `**f()`
    else:
        if any(isinstance(arg, ast.Starred) for arg in call.args):
            return None  # where the arguments land is not known
        position = next((i for i, arg in enumerate(call.args) if arg is value), None)
        keyword = None
        if position is None:
            return None
    fact = model.coroutines.project_function(call)
    if fact is None:
        return None
    # `obj.method(...)`: the receiver is not among the arguments (`module.function` and a
    # class's method called on the class are spelled as names that resolve)
    if isinstance(call.func, ast.Attribute) and model.scopes.qualified_name(call.func) is None:
        return None  # a subclass may override the method: what it does is not certain
    parameter = fact.parameter_for(False, position, keyword)
    if parameter is None:
        return None
    kinds = fact.parameter_uses(parameter)
    if kinds is None or not (set(kinds) <= LOST_IN or ITERATED_FIRST in kinds):
        return None
    return fact, parameter


def followed_local(model: SemanticModel, target: ast.Name) -> Local | None:
    """The local of a function ``target`` binds, when that is its one binding and nothing
    reads the function's locals without naming them (``locals()``)."""
    local = model.flow.local(target)
    if local is None or local.single is None or local.single.node is not target:
        return None
    if any(isinstance(n, ast.Name) and n.id in _DYNAMIC for n in ast.walk(local.function)):
        return None
    return local


def lost_local(model: SemanticModel, target: ast.Name) -> Local | None:
    """``followed_local``, when no use of it may await, hand on or dispose of its value: it
    is only used as a value, or never read."""
    local = followed_local(model, target)
    if local is None or any(_hands_on(use) for use in local.uses):
        return None
    return local


def _hands_on(use: Use) -> bool:
    """The use may await the coroutine, hand it on, or dispose of it (``coro.close()``);
    anything the classification does not name counts so too."""
    if use.kind == "attribute":
        node = use.node
        return isinstance(node, ast.Attribute) and node.attr in COROUTINE_ATTRIBUTES
    return use.kind in HANDED_ON or use.kind == "other"


def _paths_evidence(local: Local) -> str:
    lines = sorted({use.name.lineno for use in local.uses if _hands_on(use)})
    shown_lines = ", ".join(str(line) for line in lines)
    return f"`{local.name}` is awaited or handed on only at line {shown_lines}, not on every path"


def _begins_by_iterating(fact: FunctionFact, parameter: str) -> bool:
    return ITERATED_FIRST in (fact.parameter_uses(parameter) or ())


def _what_it_does(fact: FunctionFact, parameter: str) -> str:
    """What the function does with the coroutine passed as ``parameter``."""
    if _begins_by_iterating(fact, parameter):
        return f"iterates its `{parameter}` at once (a coroutine raises TypeError there)"
    return f"never awaits, schedules, stores or returns its `{parameter}`"


def _summary_evidence(fact: FunctionFact, parameter: str) -> str:
    if _begins_by_iterating(fact, parameter):
        where = f"{shown(fact.path)}:{fact.line}"
        return f"`{fact.qualified}` ({where}) begins with a `for` over its `{parameter}`"
    kinds = fact.parameter_uses(parameter) or ()
    what = ", ".join(VALUE_USES.get(kind, kind) for kind in kinds) or "never read"
    where = f"{shown(fact.path)}:{fact.line}"
    return f"`{fact.qualified}` ({where}): its `{parameter}` is {what}"
