"""The rule base, and what fixes share.

A rule is a small class (``Rule``): its documentation as class attributes, then
``on_<ast node type>`` handlers that ask the semantic model (``asyncfix.analysis``) and call
:meth:`Rule.report`, each finding with the LibCST change that fixes it planned
(``PendingFix``). The engine walks each file's stdlib tree once and calls every enabled
rule's handlers from that one walk; a fix is built on the LibCST tree, found again by
position, only when it is applied (``engine.apply``).
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from asyncfix.analysis.model import COMPOUND
from asyncfix.analysis.model import identifiers as identifiers_of
from asyncfix.index import ModuleFact, ProjectIndex
from asyncfix.lazy import libcst as cst

if TYPE_CHECKING:
    from asyncfix.analysis.model import Walk
from asyncfix.model import Observed, Safety, Severity, Span

if TYPE_CHECKING:
    Replacement = cst.CSTNode | cst.FlattenSentinel[Any] | cst.RemovalSentinel


@dataclass(frozen=True)
class ImportItem:
    """``import module`` (obj None) or ``from module import obj [as asname]``."""

    module: str
    obj: str | None = None
    asname: str | None = None


@dataclass
class Fix:
    """What a finding's fix does to the tree, kept inside the worker (never pickled)."""

    safety: Safety
    #: one line per change, shown in the report
    changes: list[str]
    #: original node (by identity) -> what replaces it
    replace: dict[cst.CSTNode, Replacement] = field(default_factory=dict)
    add_imports: list[ImportItem] = field(default_factory=list)
    #: imports to drop when the fix leaves them unused
    remove_unused: list[ImportItem] = field(default_factory=list)
    #: module-level statements the fix needs, by the name they define (inserted once)
    prelude: dict[str, cst.BaseStatement] = field(default_factory=dict)
    #: statements to put at the start of a function's body (after its docstring), inserted
    #: once however many fixes ask for them: ``loop = asyncio.get_running_loop()``
    function_prelude: list[tuple[cst.FunctionDef, cst.BaseStatement]] = field(default_factory=list)
    #: statements for a new ``__init__(self)`` of a class that has none (one ``__init__`` is
    #: made with the statements of every fix that asks, before the first method)
    class_init: list[tuple[cst.ClassDef, cst.BaseStatement]] = field(default_factory=list)


@dataclass(frozen=True)
class Project:
    """What a rule may know beyond its file: the project index and this file's entry in it."""

    index: ProjectIndex
    module: ModuleFact

    def absolute(self, qualified: str) -> str | None:
        """An import target as written here (``.client.connect``) made absolute."""
        return self.index.absolute(qualified, self.module)


@dataclass
class Hit:
    """A finding while it still points into the tree."""

    rule: type[Rule]
    #: the stdlib node it reports
    node: ast.AST
    message: str
    fix: Fix | None
    #: facts for the report
    evidence: list[str]
    #: where it is
    span: Span
    #: how the fix is known across rounds and runs (``fix_key``)
    key: str
    #: the fix before it is built: ``fix`` holds its safety and changes only, until the file
    #: is parsed with LibCST (``engine.apply``) and this builds it there
    pending: PendingFix | None = None
    #: made from the runtime evidence alone (``--evidence``): dropped when another finding
    #: of its family (``detect.RUNTIME_FAMILY``) is on the observed line
    runtime: bool = False


@dataclass
class PendingFix:
    """A rule's fix: what it replaces (as stdlib nodes, found again by position in the
    LibCST tree) and how, once the LibCST nodes are there."""

    #: the stdlib node whose LibCST twin the fix starts from, and the LibCST type it has
    node: ast.AST
    kind: type[cst.CSTNode]
    #: builds the fix from the LibCST twin (``Locate`` answers where else to look)
    build: Callable[[cst.CSTNode, Locate], Fix]
    #: where ``node`` is (set when the finding is reported)
    span: Span | None = None


class Locate:
    """What a pending fix may ask of the LibCST tree it is built on (``engine.apply``)."""

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        raise NotImplementedError

    def find(self, span: Span, kind: type[cst.CSTNode]) -> cst.CSTNode:
        """The innermost node of type ``kind`` whose range holds ``span``."""
        raise NotImplementedError


class Rule:
    """Base of every rule: its docs as class attributes, then ``on_<ast node type>`` handlers
    that ask the semantic model (``asyncfix.analysis``) on the stdlib tree, called from one
    walk (``analysis.model.Walk``) with every other rule's, and ``report``. A file whose
    findings have no fix to apply is never parsed with LibCST."""

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    #: "why is this a bug", for `asyncfix rule CODE` and the report's Problem section
    why: ClassVar[str]
    example_before: ClassVar[str]
    example_after: ClassVar[str]
    #: the best safety this rule's fixes have (NONE: report only)
    fix_safety: ClassVar[Safety]
    #: what the fix-safety level means for this rule, for the docs
    fix_safety_note: ClassVar[str]
    severity: ClassVar[Severity]
    #: the report's "Type:" line
    kind: ClassVar[str]
    #: the rule only runs on files whose text contains every needle (a tuple: any one of
    #: its strings) -- a cheap test that spares most files the semantic model
    needles: ClassVar[tuple[str | tuple[str, ...], ...]]
    #: the rule asks the project index about other modules (the engine builds it only then)
    needs_index: ClassVar[bool] = False
    #: codes of other tools' equivalent rules: a `noqa` comment for RUF006 also silences
    #: AF301, since it records the same decision about the same line
    equivalent_codes: ClassVar[tuple[str, ...]] = ()
    #: in test code the finding is reported without its fix: what the fix changes may be what
    #: the test measures (a test that holds the event loop on purpose, or checks the warning
    #: a resource left open gives)
    no_fix_in_tests: ClassVar[bool] = False

    @classmethod
    def may_apply(cls, text: str) -> bool:
        for needle in cls.needles:
            options = (needle,) if isinstance(needle, str) else needle
            if not any(option in text for option in options):
                return False
        return True

    def __init__(self, ctx: ModelContext) -> None:
        self.context = ctx
        self.walk = ctx.walk
        self.model = ctx.walk.model

    def report(
        self,
        node: ast.AST,
        message: str,
        fix: tuple[Safety, list[str], PendingFix] | None = None,
        evidence: Sequence[str] = (),
        runtime: bool = False,
    ) -> None:
        ctx = self.context
        if fix is not None and self.no_fix_in_tests and ctx.test_code:
            message += " (no fix in tests and docs: a fix must not change what they check or show)"
            fix = None
        pending = fix[2] if fix is not None else None
        if pending is not None:
            pending.span = self.span(pending.node)
        hit = Hit(
            type(self),
            node,
            message,
            Fix(fix[0], list(fix[1])) if fix is not None else None,
            list(evidence),
            span=self.span(node),
            key=fix_key(self.code, message, self.model.source.segment(node)),
            pending=pending,
            runtime=runtime,
        )
        ctx.hits.append(hit)

    def span(self, node: ast.AST) -> Span:
        """Where a stdlib node is, in characters (its columns are UTF-8 bytes)."""
        source = self.model.source
        line: int = getattr(node, "lineno", 1)
        end_line: int = getattr(node, "end_lineno", None) or line
        return Span(
            line,
            source.column(line, getattr(node, "col_offset", 0)) + 1,
            end_line,
            source.column(end_line, getattr(node, "end_col_offset", 0)) + 1,
        )

    def offload(
        self, node: ast.Call
    ) -> tuple[list[str], Callable[[cst.CSTNode, Locate], Fix]] | None:
        """The changes and the builder of the fix that moves the call ``node`` to a worker
        thread (``offload_fix``): ``await asyncio.to_thread(f, ...)``, before Python 3.9
        ``await loop.run_in_executor(None, ...)``. None in a generator expression (an
        ``await`` there makes it an async generator), outside a function, or in a module
        that may run on anyio or trio (``other_event_loop``)."""
        place = self.walk.place(node)
        function = place.function
        if place.genexp or function is None or self.other_event_loop() is not None:
            return None
        site = self.offload_site(function)
        first = (
            f"Offloaded `{self.model.source.segment(node.func)}(...)` to a worker thread with "
            f"`{site.how}`"
        )

        def build(call: cst.CSTNode, locate: Locate) -> Fix:
            assert isinstance(call, cst.Call)
            new, fix = offloaded_call(call, site.where(locate))
            fix.changes.insert(0, first)
            fix.replace[call] = await_expression(new, call, locate.parent(call))
            return fix

        return [first, *site.added], build

    def finish(self) -> None:
        """Called after the walk, for rules that decide once they have seen the whole module."""

    def other_event_loop(self) -> str | None:
        """ "anyio" or "trio" when the module's code may run on that library and not only on
        asyncio: it imports it and not asyncio, or it is part of that package itself (whose
        own modules import it relatively). `asyncio.to_thread` does not work there."""
        model = self.model
        imported = set(model.imported_packages)
        project = self.context.project
        if project is not None and project.module.name:
            imported.add(project.module.name.split(".")[0])
        if "asyncio" in model.imported_packages:
            return None
        return next((name for name in ("anyio", "trio") if name in imported), None)

    def offload_site(self, function: ast.FunctionDef | ast.AsyncFunctionDef) -> OffloadSite:
        """How a call in ``function`` moves to a worker thread: the names it uses, and before
        Python 3.9 the running loop's name (and whether the fix makes it)."""
        model = self.model
        target = self.context.target
        asyncio_name = model.module_name_for("asyncio")
        loop: tuple[str, bool] | None = None
        if target < (3, 9):
            existing = _running_loop_of(function, asyncio_name or "asyncio")
            loop = (
                (existing, False)
                if existing
                else (fresh_name("loop", set(identifiers_of(function))), True)
            )
        return OffloadSite(
            self.span(function), asyncio_name, model.module_name_for("functools"), target, loop
        )


@dataclass(frozen=True)
class OffloadSite:
    """Where a rule's fix moves a call to a worker thread (``Rule.offload_site``):
    the function, by position, and what ``Offload`` needs there."""

    function: Span
    asyncio_name: str | None
    functools_name: str | None
    target: tuple[int, int]
    loop: tuple[str, bool] | None

    @property
    def how(self) -> str:
        return "asyncio.to_thread" if self.target >= (3, 9) else "loop.run_in_executor"

    @property
    def added(self) -> list[str]:
        """The change the fix makes besides the call: the running loop it fetches."""
        if self.loop is None or not self.loop[1]:
            return []
        return [f"Added `{self.loop[0]} = asyncio.get_running_loop()` at the start of the function"]

    def where(self, locate: Locate) -> Offload:
        definition = locate.find(self.function, cst.FunctionDef)
        assert isinstance(definition, cst.FunctionDef)
        return Offload(definition, self.asyncio_name, self.functools_name, self.target, self.loop)


def _running_loop_of(
    function: ast.FunctionDef | ast.AsyncFunctionDef, asyncio_name: str
) -> str | None:
    """The name ``function`` gives ``asyncio.get_running_loop()`` in the simple statements it
    starts with, if it does (``_running_loop`` on the stdlib tree)."""
    if function.body and function.body[0].lineno == function.lineno:
        return None  # a one-line body
    for statement in function.body:
        if isinstance(statement, COMPOUND):
            break
        if (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
            and isinstance(statement.value, ast.Call)
            and not statement.value.args
            and not statement.value.keywords
            and isinstance(statement.value.func, ast.Attribute)
            and statement.value.func.attr == "get_running_loop"
            and isinstance(statement.value.func.value, ast.Name)
            and statement.value.func.value.id == asyncio_name
        ):
            return statement.targets[0].id
    return None


def fix_key(code: str, message: str, spelled: str) -> str:
    """A fix's id: a digest of its rule, its message and the text of the node it reports
    (``engine.detect.fix_id``)."""
    return hashlib.sha256(repr((code, message, spelled)).encode()).hexdigest()[:16]


@dataclass
class ModelContext:
    """What the rules share in one run over one module."""

    walk: Walk
    target: tuple[int, int]
    project: Project | None
    test_code: bool
    hits: list[Hit] = field(default_factory=list)
    #: what the runtime-evidence plugin saw, by line (``--evidence``)
    observed: dict[int, list[Observed]] = field(default_factory=dict)

    def seen(self, kind: str, lines: range, where: str | None = None) -> list[Observed]:
        """What the plugin saw of ``kind`` on ``lines`` (and, given ``where``, placed so)."""
        return [
            o
            for line in lines
            for o in self.observed.get(line, ())
            if o.kind == kind and (where is None or o.where == where)
        ]


def lines_of(node: ast.AST) -> range:
    start: int = getattr(node, "lineno", 0)
    return range(start, (getattr(node, "end_lineno", None) or start) + 1)


def the_call_at(statement: ast.stmt, line: int) -> ast.Call | None:
    """The one call of ``statement`` on ``line`` that is not awaited, or None when there is
    none or more than one: the runtime evidence names a line, and a finding from it must
    name the call it means."""
    calls = [
        node
        for node in ast.walk(statement)
        if isinstance(node, ast.Call) and line in lines_of(node)
    ]
    awaited = {id(node.value) for node in ast.walk(statement) if isinstance(node, ast.Await)}
    left = [call for call in calls if id(call) not in awaited]
    return left[0] if len(left) == 1 else None


def fresh_name(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    index = 1
    while f"{base}_{index}" in taken:
        index += 1
    return f"{base}_{index}"


def await_expression(
    expr: cst.BaseExpression, original: cst.CSTNode, parent: cst.CSTNode | None
) -> cst.Await:
    """``await expr`` to stand where ``original`` stood under ``parent``; parenthesised when the
    parent binds tighter than ``await`` (``(await f()).x``, ``(await f())[0]``, ``(await f())()``,
    ``(await f()) ** 2``)."""
    node = cst.Await(expression=expr)
    needs_parens = (
        (isinstance(parent, cst.Attribute) and parent.value is original)
        or (isinstance(parent, cst.Subscript) and parent.value is original)
        or (isinstance(parent, cst.Call) and parent.func is original)
        or isinstance(parent, cst.Await)
        or (
            isinstance(parent, cst.BinaryOperation)
            and isinstance(parent.operator, cst.Power)
            and parent.left is original
        )
    )
    if needs_parens:
        node = node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return node


def _comma() -> cst.Comma:
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


@dataclass(frozen=True)
class Offload:
    """Where a call is moved to a worker thread: what the fix needs to know about the code
    around it (from the LibCST walk, or from the semantic model)."""

    function: cst.FunctionDef
    #: the names ``import asyncio`` / ``import functools`` bind (None: not imported)
    asyncio_name: str | None
    functools_name: str | None
    target: tuple[int, int]
    #: before Python 3.9, the running loop's name in the function, and whether the fix adds
    #: ``<name> = asyncio.get_running_loop()`` at its start
    loop: tuple[str, bool] | None = None


def offloaded_call(node: cst.Call, where: Offload) -> tuple[cst.Call, Fix]:
    """``offload_call`` once it is known where the call is."""
    fix = Fix(safety=Safety.UNSAFE, changes=[])
    if not where.asyncio_name:
        fix.add_imports.append(ImportItem("asyncio"))
    asyncio_ref = cst.Name(where.asyncio_name or "asyncio")
    # in a call laid out one argument per line, the callable gets a line of its own too
    separator = (
        cst.Comma(whitespace_after=node.whitespace_before_args)
        if isinstance(node.whitespace_before_args, cst.ParenthesizedWhitespace)
        else _comma()
    )
    func = cst.Arg(node.func, comma=separator if node.args else cst.MaybeSentinel.DEFAULT)
    if where.target >= (3, 9) or where.loop is None:
        to_thread = cst.Attribute(value=asyncio_ref, attr=cst.Name("to_thread"))
        return node.with_changes(func=to_thread, args=[func, *node.args]), fix
    # before 3.9: loop.run_in_executor(None, func, *args), keywords through functools.partial
    loop, new = where.loop
    if new:
        wanted = cst.Call(func=cst.Attribute(value=asyncio_ref, attr=cst.Name("get_running_loop")))
        statement = cst.SimpleStatementLine(
            [cst.Assign(targets=[cst.AssignTarget(cst.Name(loop))], value=wanted)]
        )
        fix.function_prelude.append((where.function, statement))
        fix.changes.append(
            f"Added `{loop} = asyncio.get_running_loop()` at the start of the function"
        )
    run = cst.Attribute(value=cst.Name(loop), attr=cst.Name("run_in_executor"))
    none = cst.Arg(cst.Name("None"), comma=_comma())
    if any(arg.keyword is not None or arg.star == "**" for arg in node.args):
        if not where.functools_name:
            fix.add_imports.append(ImportItem("functools"))
        partial = cst.Attribute(
            value=cst.Name(where.functools_name or "functools"), attr=cst.Name("partial")
        )
        bound = node.with_changes(func=partial, args=[func, *node.args])
        return cst.Call(func=run, args=[none, cst.Arg(bound.with_changes(lpar=[], rpar=[]))]), fix
    return node.with_changes(func=run, args=[none, func, *node.args]), fix


def dotted_name(node: cst.CSTNode) -> str | None:
    """``a.b.c`` for a LibCST Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr.value}" if base is not None else None
    return None


def import_item_for(func: cst.BaseExpression, qualified: str) -> ImportItem | None:
    """The import that binds the name ``func`` is spelled with, given what it resolves to:
    ``t.sleep`` / ``time.sleep`` -> ``import time [as t]``; ``zz`` -> ``from time import sleep as
    zz``. Used to drop an import a fix leaves unused."""
    module, _, obj = qualified.rpartition(".")
    if isinstance(func, cst.Name):
        return ImportItem(module, obj, func.value if func.value != obj else None)
    base = dotted_name(func.value) if isinstance(func, cst.Attribute) else None
    if base is None:
        return None
    if base == module:
        return ImportItem(module)
    if "." not in base:
        return ImportItem(module, None, base)
    return None
