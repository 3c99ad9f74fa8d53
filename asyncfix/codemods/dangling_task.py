"""AF301 dangling-task: a Task nobody keeps a reference to can vanish mid-flight."""

from __future__ import annotations

import ast
import re

from asyncfix.analysis.model import (
    alone_on_its_line,
    is_plain_assignment,
    names_in,
    trailing_comment,
)
from asyncfix.codemods.base import Fix, ImportItem, Locate, PendingFix, Rule, fresh_name
from asyncfix.index import ast_dotted_name
from asyncfix.lazy import libcst as cst
from asyncfix.model import Safety, Severity

TASK_FACTORIES = frozenset({"asyncio.create_task", "asyncio.ensure_future"})
LOOP_GETTERS = frozenset({"asyncio.get_running_loop", "asyncio.get_event_loop"})
TASK_SET = "_background_tasks"
_WEAK = "the event loop holds tasks only by weak reference"


class DanglingTask(Rule):
    code = "AF301"
    name = "dangling-task"
    summary = "a task is created and its only reference dropped"
    why = (
        "The event loop keeps only a weak reference to a Task. A task whose result is dropped "
        "(a bare `asyncio.create_task(...)`, `_ = ...`, or a local never used again) can be "
        "garbage-collected before it finishes — the work silently stops half-way — and if it "
        "fails, its exception is never retrieved: at best a 'Task exception was never retrieved' "
        "line in the log long after the fact."
    )
    example_before = """\
import asyncio


async def on_message(msg):
    asyncio.create_task(store(msg))
"""
    example_after = """\
import asyncio

_background_tasks: set[asyncio.Task[object]] = set()


async def on_message(msg):
    task = asyncio.create_task(store(msg))
    _background_tasks.add(task)
    task.add_done_callback(_background_tasks.discard)
"""
    fix_safety = Safety.SAFE
    fix_safety_note = (
        "Safe: the task runs exactly as before; it is now also held in a module-level set until "
        "it completes, which is what the asyncio documentation prescribes. Offered inside "
        "functions when the call is a statement of its own (or assigned to `_` or to an unused "
        "local); a one-line `if x: create_task(...)` or a module-level call is reported only. "
        "With `--evidence`, a task the analysis sees kept but the tests saw destroyed while "
        "pending, or failing with its exception never retrieved, is reported without a fix."
    )
    severity = Severity.HIGH
    kind = "Task lifecycle"
    needles = (("create_task", "ensure_future"),)
    equivalent_codes = ("RUF006", "ASYNC300")

    def on_Call(self, node: ast.Call) -> None:
        spelled = self._task_factory(node)
        if spelled is None:
            return
        parent = self.walk.parent(node)
        message = (
            f"the task from `{spelled}()` is dropped: it can be garbage-collected before it "
            "finishes and its exception is never seen"
        )
        if isinstance(parent, ast.Expr):
            self._dropped(node, parent, None, message, "the call's result is not stored")
            return
        if isinstance(parent, (ast.List, ast.Tuple, ast.Set)) and isinstance(
            self.walk.parent(parent), ast.Expr
        ):
            # `[create_task(...)]` as a statement: the display, and the task, are dropped
            shown = message.replace("dropped", "put in a list, tuple or set that is dropped")
            self.report(node, shown + " (no fix)", None, [_WEAK, "the display is not stored"])
            return
        if self._only_tested(node, parent):
            shown = message.replace("dropped", "only tested, then dropped")
            self.report(node, shown + " (no fix)", None, [_WEAK, "a task is always true"])
            return
        if not isinstance(parent, (ast.Assign, ast.AnnAssign)) or parent.value is not node:
            self._seen_at_run_time(node, spelled)
            return
        target = _single_name_target(parent)
        if target is None:
            self._seen_at_run_time(node, spelled)
            return
        if target.id == "_":
            bound = message.replace("dropped", "bound to `_`")
            self._dropped(node, parent, target, bound, "`_` is a throw-away name")
        elif self._unused_local(target, parent):
            unused = f"bound to `{target.id}`, which is never used"
            self._dropped(
                node,
                parent,
                target,
                message.replace("dropped", unused),
                f"`{target.id}` is never read in this function",
            )
        else:
            self._seen_at_run_time(node, spelled)

    def _seen_at_run_time(self, node: ast.Call, spelled: str) -> None:
        """A task the analysis sees kept, that the runtime-evidence plugin saw destroyed
        while pending, or fail with nobody retrieving its exception (``--evidence``):
        reported without a fix (what to do with it -- await it, cancel it on close, read
        its result -- is the program's to decide)."""
        lines = range(node.lineno, (node.end_lineno or node.lineno) + 1)
        pending = self.context.seen("task-destroyed-pending", lines)
        failed = self.context.seen("exception-never-retrieved", lines)
        if not pending and not failed:
            return
        first = (pending or failed)[0]
        test = f" (in {first.test})" if first.test else ""
        if pending:
            message = (
                f"the task from `{spelled}()` was destroyed while still pending when the tests "
                f"ran{test}: nothing awaited or cancelled it before its event loop closed"
            )
        else:
            message = (
                f"the task from `{spelled}()` failed and nobody retrieved its exception when "
                f"the tests ran{test}: {first.message}"
            )
        evidence = [o.said() for o in (*pending, *failed)]
        self.report(node, message + " (no fix)", None, evidence)

    # -- detection ---------------------------------------------------------------------

    def _only_tested(self, node: ast.AST, parent: ast.AST | None) -> bool:
        """The task is the test of an ``if``/``while``/``x if c else y``/comprehension
        condition, or negated: its value is used as a truth value and then gone."""
        if isinstance(parent, (ast.If, ast.While, ast.IfExp)):
            return parent.test is node
        if isinstance(parent, ast.comprehension):
            return any(test is node for test in parent.ifs)
        if isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not):
            return self._only_tested(parent, self.walk.parent(parent))
        return False

    def _task_factory(self, node: ast.Call) -> str | None:
        func = node.func
        last = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if last not in ("create_task", "ensure_future"):
            return None
        qualified = self.model.scopes.qualified_name
        spelled = self.model.source.segment(func)
        found = qualified(func)
        if found in TASK_FACTORIES:
            if found == "asyncio.ensure_future" and not _first_arg_is_call(node):
                return None  # ensure_future(existing_future) returns the same object
            return spelled
        if isinstance(func, ast.Attribute) and func.attr == "create_task":
            receiver = func.value
            if isinstance(receiver, ast.Call):
                return spelled if qualified(receiver.func) in LOOP_GETTERS else None
            name = ast_dotted_name(receiver)
            if name is not None and name.rsplit(".", 1)[-1].lower().endswith("loop"):
                return spelled
        return None

    def _unused_local(self, target: ast.Name, statement: ast.stmt) -> bool:
        """A local of the enclosing function (not global/nonlocal) bound only by plain
        assignments, and never read -- in nested functions neither (the model's value
        flow)."""
        function = self.walk.place(statement).function
        scopes = self.model.scopes
        local = self.model.flow.local(target)
        if function is None or local is None or local.function is not function:
            return False
        if not all(is_plain_assignment(scopes, binding) for binding in local.bindings):
            return False
        return not local.uses

    # -- the fix -----------------------------------------------------------------------

    def _dropped(
        self,
        call: ast.Call,
        statement: ast.stmt,
        target: ast.Name | None,
        message: str,
        why: str,
    ) -> None:
        evidence = [why, "the event loop holds tasks only by weak reference"]
        function = self.walk.place(call).function
        if function is None or not alone_on_its_line(self.model, statement):
            self.report(call, message, None, evidence)
            return
        task_set = self._task_set()
        if task_set is None:
            self.report(
                call,
                message + f" (no fix: `{TASK_SET}` is taken, or asyncio is imported late)",
                None,
                evidence,
            )
            return
        set_name, code, add = task_set
        changes: list[str] = []
        keep_name = target is not None and target.id != "_"
        if target is None or not keep_name:
            var = fresh_name("task", names_in(function))
            changes.append(f"Kept the task in a local `{var}`")
        else:
            var = target.id
            if _noqa_codes(trailing_comment(self.model, statement), "F841") is not None:
                changes.append(f"Dropped `F841` from the `noqa` comment: `{var}` is used now")
        changes.append(f"Added it to `{set_name}` and discard it when it is done")
        if code:
            changes.append(f"Added module-level `{set_name}` set")

        def build(line: cst.CSTNode, locate: Locate) -> Fix:
            assert isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1
            small = line.body[0]
            if keep_name:
                first = _without_noqa(line, "F841")
            else:
                value = small.value if isinstance(small, (cst.Expr, cst.Assign)) else None
                if isinstance(small, cst.AnnAssign):
                    value = small.value
                assert value is not None
                first = line.with_changes(
                    body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(var))], value=value)]
                )
            keep = cst.SimpleStatementLine(
                body=[cst.Expr(_method_call(set_name, "add", cst.Name(var)))]
            )
            discard = cst.SimpleStatementLine(
                body=[
                    cst.Expr(
                        _method_call(
                            var,
                            "add_done_callback",
                            cst.Attribute(value=cst.Name(set_name), attr=cst.Name("discard")),
                        )
                    )
                ]
            )
            return Fix(
                safety=Safety.SAFE,
                changes=changes,
                replace={line: cst.FlattenSentinel([first, keep, discard])},
                add_imports=add,
                prelude={set_name: cst.parse_statement(code)} if code else {},
            )

        pending = PendingFix(statement, cst.SimpleStatementLine, build)
        self.report(call, message, (Safety.SAFE, changes, pending), evidence)

    def _task_set(self) -> tuple[str, str, list[ImportItem]] | None:
        """The module-level set to keep tasks in: an existing ``_background_tasks = set()``,
        or a new one (its code, for the prelude). None when the name is taken by something
        else."""
        model = self.model
        for statement in model.tree.body:
            if not isinstance(statement, (ast.Assign, ast.AnnAssign)):
                continue
            if not alone_on_its_line(model, statement):
                continue
            if isinstance(statement, ast.Assign):
                if len(statement.targets) != 1:
                    continue
                target = statement.targets[0]
            else:
                target = statement.target
            if isinstance(target, ast.Name) and target.id == TASK_SET:
                return (TASK_SET, "", []) if _is_empty_set(statement.value) else None
        if TASK_SET in names_in(model.tree):
            return None
        asyncio_name = model.module_name_for("asyncio", leading_only=True)
        if asyncio_name is None and model.module_name_for("asyncio") is not None:
            return None  # imported only further down: the set's annotation would fail
        add = [] if asyncio_name else [ImportItem("asyncio")]
        if self.context.target >= (3, 9):
            code = f"{TASK_SET}: set[{asyncio_name or 'asyncio'}.Task[object]] = set()\n"
        else:
            code = f"{TASK_SET}: set = set()\n"
        return TASK_SET, code, add


def _single_name_target(node: ast.Assign | ast.AnnAssign) -> ast.Name | None:
    if isinstance(node, ast.AnnAssign):
        return node.target if isinstance(node.target, ast.Name) else None
    if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0]
    return None


def _noqa_codes(comment: str | None, code: str) -> list[str] | None:
    """The codes of a ``# noqa: ...`` comment when it names ``code``, else None."""
    match = _NOQA.match(comment) if comment is not None else None
    if match is None:
        return None
    codes = [c for c in re.split(r"[\s,]+", match.group("codes")) if c]
    return codes if code in codes else None


_NOQA = re.compile(r"#\s*noqa\s*:\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*)(?P<rest>.*)")


def _without_noqa(statement: cst.SimpleStatementLine, code: str) -> cst.SimpleStatementLine:
    """``statement`` without ``code`` in its trailing ``# noqa: ...`` (the fix makes the
    suppression stale: a linter would flag it as unused); the comment goes when it named
    nothing else. The statement itself when there is nothing to drop."""
    comment = statement.trailing_whitespace.comment
    codes = _noqa_codes(comment.value if comment is not None else None, code)
    if comment is None or codes is None:
        return statement
    match = _NOQA.match(comment.value)
    assert match is not None
    kept = [c for c in codes if c != code]
    whitespace = statement.trailing_whitespace
    if kept:
        text = f"# noqa: {', '.join(kept)}{match.group('rest')}"
        whitespace = whitespace.with_changes(comment=cst.Comment(text))
    else:
        whitespace = whitespace.with_changes(whitespace=cst.SimpleWhitespace(""), comment=None)
    return statement.with_changes(trailing_whitespace=whitespace)


def _first_arg_is_call(node: ast.Call) -> bool:
    first = node.args[0] if node.args else (node.keywords[0].value if node.keywords else None)
    return isinstance(first, ast.Call)


def _is_empty_set(value: ast.expr | None) -> bool:
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "set"
        and not value.args
        and not value.keywords
    )


def _method_call(receiver: str, method: str, arg: cst.BaseExpression) -> cst.Call:
    return cst.Call(
        func=cst.Attribute(value=cst.Name(receiver), attr=cst.Name(method)),
        args=[cst.Arg(arg)],
    )
