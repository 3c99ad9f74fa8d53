"""AF301 dangling-task: a Task nobody keeps a reference to can vanish mid-flight."""

from __future__ import annotations

import ast
import re

import libcst as cst

from asyncfix.codemods.base import (
    Fix,
    ImportItem,
    Project,
    Rule,
    fresh_name,
    last_name,
    names_in,
    source_of,
)
from asyncfix.codemods.names import dotted_name
from asyncfix.codemods.prefilters import may_drop_task
from asyncfix.model import Safety, Severity

TASK_FACTORIES = frozenset({"asyncio.create_task", "asyncio.ensure_future"})
LOOP_GETTERS = frozenset({"asyncio.get_running_loop", "asyncio.get_event_loop"})
TASK_SET = "_background_tasks"


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
        "local); a one-line `if x: create_task(...)` or a module-level call is reported only."
    )
    severity = Severity.HIGH
    kind = "Task lifecycle"
    needles = (("create_task", "ensure_future"),)
    equivalent_codes = ("RUF006",)

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        return may_drop_task(tree)

    def visit_Call(self, node: cst.Call) -> None:
        spelled = self._task_factory(node)
        if spelled is None:
            return
        parent = self.ctx.parent()
        statement = self.ctx.parent(level=2)
        message = (
            f"the task from `{spelled}()` is dropped: it can be garbage-collected before it "
            "finishes and its exception is never seen"
        )
        if isinstance(parent, cst.Expr):
            self._dropped(node, statement, None, message, "the call's result is not stored")
        elif (
            isinstance(parent, (cst.Assign, cst.AnnAssign))
            and parent.value is node
            and self._single_name_target(parent) is not None
        ):
            target = self._single_name_target(parent)
            assert target is not None
            if target.value == "_":
                bound = message.replace("dropped", "bound to `_`")
                self._dropped(node, statement, parent, bound, "`_` is a throw-away name")
            elif self._unused_local(target):
                unused = f"bound to `{target.value}`, which is never used"
                self._dropped(
                    node,
                    statement,
                    parent,
                    message.replace("dropped", unused),
                    f"`{target.value}` is never read in this function",
                )

    # -- detection ---------------------------------------------------------------------

    def _task_factory(self, node: cst.Call) -> str | None:
        func = node.func
        if last_name(func) not in ("create_task", "ensure_future"):
            return None
        qualified = self.ctx.qualified_name(func)
        if qualified in TASK_FACTORIES:
            if qualified == "asyncio.ensure_future" and not _first_arg_is_call(node):
                return None  # ensure_future(existing_future) returns the same object
            return source_of(func)
        if isinstance(func, cst.Attribute) and func.attr.value == "create_task":
            receiver = func.value
            if isinstance(receiver, cst.Call):
                if self.ctx.qualified_name(receiver.func) in LOOP_GETTERS:
                    return source_of(func)
                return None
            name = dotted_name(receiver)
            if name is not None and name.rsplit(".", 1)[-1].lower().endswith("loop"):
                return source_of(func)
        return None

    @staticmethod
    def _single_name_target(node: cst.Assign | cst.AnnAssign) -> cst.Name | None:
        if isinstance(node, cst.AnnAssign):
            return node.target if isinstance(node.target, cst.Name) else None
        if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
            return node.targets[0].target
        return None

    def _unused_local(self, target: cst.Name) -> bool:
        """A local of the enclosing function that is never mentioned again (not even in a
        nested function): the name occurs only as the target of its own assignments."""
        function = self.ctx.enclosing_function()
        found = self.ctx.lookup(target.value)
        if function is None or found is None or found[0] is not function:
            return False
        bindings = found[1]
        if any(binding.kind != "assign" for binding in bindings):
            return False
        occurrences = self.ctx.names.occurrences(function)[target.value]
        return occurrences == len(bindings)

    # -- the fix -----------------------------------------------------------------------

    def _dropped(
        self,
        call: cst.Call,
        statement: cst.CSTNode | None,
        assign: cst.Assign | cst.AnnAssign | None,
        message: str,
        why: str,
    ) -> None:
        evidence = [(why, None), ("the event loop holds tasks only by weak reference", None)]
        function = self.ctx.enclosing_function()
        if (
            function is None
            or not isinstance(statement, cst.SimpleStatementLine)
            or len(statement.body) != 1
        ):
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
        set_name, prelude, add = task_set
        changes: list[str] = []
        if (
            assign is None
            or (target := self._single_name_target(assign)) is None
            or (target.value == "_")
        ):
            var = fresh_name("task", names_in(function))
            first = statement.with_changes(
                body=[cst.Assign(targets=[cst.AssignTarget(cst.Name(var))], value=call)]
            )
            changes.append(f"Kept the task in a local `{var}`")
        else:
            var = target.value
            first = _without_noqa(statement, "F841")
            if first is not statement:
                changes.append(f"Dropped `F841` from the `noqa` comment: `{var}` is used now")
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
        changes.append(f"Added it to `{set_name}` and discard it when it is done")
        if prelude:
            changes.append(f"Added module-level `{set_name}` set")
        fix = Fix(
            safety=Safety.SAFE,
            changes=changes,
            replace={statement: cst.FlattenSentinel([first, keep, discard])},
            add_imports=add,
            prelude=prelude,
        )
        self.report(call, message, fix, evidence)

    def _task_set(
        self,
    ) -> tuple[str, dict[str, cst.BaseStatement], list[ImportItem]] | None:
        """The module-level set to keep tasks in: an existing ``_background_tasks = set()``,
        or a new one (returned as prelude). None when the name is taken by something else."""
        for statement in self.ctx.module.body:
            if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
                small = statement.body[0]
                target = value = None
                if isinstance(small, cst.Assign) and len(small.targets) == 1:
                    target, value = small.targets[0].target, small.value
                elif isinstance(small, cst.AnnAssign):
                    target, value = small.target, small.value
                if isinstance(target, cst.Name) and target.value == TASK_SET:
                    if _is_empty_set(value):
                        return TASK_SET, {}, []
                    return None
        if TASK_SET in names_in(self.ctx.module):
            return None
        asyncio_name = self.ctx.module_name_for("asyncio", leading_only=True)
        if asyncio_name is None and self.ctx.module_name_for("asyncio") is not None:
            return None  # imported only further down: the set's annotation would fail
        add = [] if asyncio_name else [ImportItem("asyncio")]
        if self.ctx.target >= (3, 9):
            code = f"{TASK_SET}: set[{asyncio_name or 'asyncio'}.Task[object]] = set()\n"
        else:
            code = f"{TASK_SET}: set = set()\n"
        return TASK_SET, {TASK_SET: cst.parse_statement(code)}, add


_NOQA = re.compile(r"#\s*noqa\s*:\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*)(?P<rest>.*)")


def _without_noqa(statement: cst.SimpleStatementLine, code: str) -> cst.SimpleStatementLine:
    """``statement`` without ``code`` in its trailing ``# noqa: ...`` (the fix makes the
    suppression stale: a linter would flag it as unused); the comment goes when it named
    nothing else. The statement itself when there is nothing to drop."""
    comment = statement.trailing_whitespace.comment
    match = _NOQA.match(comment.value) if comment is not None else None
    if comment is None or match is None:
        return statement
    codes = [c for c in re.split(r"[\s,]+", match.group("codes")) if c]
    if code not in codes:
        return statement
    kept = [c for c in codes if c != code]
    whitespace = statement.trailing_whitespace
    if kept:
        text = f"# noqa: {', '.join(kept)}{match.group('rest')}"
        whitespace = whitespace.with_changes(comment=cst.Comment(text))
    else:
        whitespace = whitespace.with_changes(whitespace=cst.SimpleWhitespace(""), comment=None)
    return statement.with_changes(trailing_whitespace=whitespace)


def _first_arg_is_call(node: cst.Call) -> bool:
    return bool(node.args) and isinstance(node.args[0].value, cst.Call)


def _is_empty_set(value: cst.BaseExpression | None) -> bool:
    return (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Name)
        and value.func.value == "set"
        and not value.args
    )


def _method_call(receiver: str, method: str, arg: cst.BaseExpression) -> cst.Call:
    return cst.Call(
        func=cst.Attribute(value=cst.Name(receiver), attr=cst.Name(method)),
        args=[cst.Arg(arg)],
    )
