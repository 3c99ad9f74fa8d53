"""The Rule base and the traversal context every rule shares.

A rule is a small class: its documentation as class attributes, then ``visit_<Node>``
/ ``leave_<Node>`` handlers that look at nodes and call :meth:`Rule.report`, then the
LibCST replacement that fixes what it found. The engine walks each file once and
calls every enabled rule's handlers from that one walk (see ``Context``).
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import libcst as cst

from asyncfix.analysis.classes import lookup_in_bases
from asyncfix.analysis.model import COMPOUND
from asyncfix.analysis.model import identifiers as identifiers_of
from asyncfix.codemods.names import Binding, Resolver, dotted_name
from asyncfix.codemods.walk import walk
from asyncfix.index import PASS_THROUGH_DECORATORS, ModuleFact, ProjectIndex

if TYPE_CHECKING:
    from asyncfix.analysis.model import Walk
    from asyncfix.codemods.receivers import Receivers
from asyncfix.model import Safety, Severity, Span

Replacement = cst.CSTNode | cst.FlattenSentinel[Any] | cst.RemovalSentinel

#: calls whose arguments run in a worker thread, not on the event loop
OFFLOADERS = frozenset({"asyncio.to_thread", "anyio.to_thread.run_sync", "trio.to_thread.run_sync"})
_OFFLOADER_NAMES = frozenset(name.rsplit(".", 1)[1] for name in OFFLOADERS)


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


def ast_memo(tree: ast.Module, key: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per syntax tree: the rules' pre-filters share what they derive
    from the same tree (the list of its nodes, the calls under ``async def``, ...)."""
    memo: dict[str, Any] | None = getattr(tree, "_asyncfix_memo", None)
    if memo is None:
        memo = {}
        tree._asyncfix_memo = memo  # type: ignore[attr-defined]
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def forget_ast_memo(tree: ast.Module) -> None:
    """Drop what ``ast_memo`` keeps on ``tree``: it refers back to the tree's nodes, and
    without it the tree is freed as soon as it is no longer used, not at the collector's
    next pass."""
    tree.__dict__.pop("_asyncfix_memo", None)


@dataclass
class AstFacts:
    """What the pre-filters look at in a stdlib syntax tree, gathered in one traversal."""

    #: every node (not the ``Load``/``Store`` context markers)
    nodes: list[ast.AST]
    #: every node inside an ``async def`` (nested functions' included)
    async_nodes: list[ast.AST]
    #: every call: (call, its parent, under an ``async def``, under a ``def``, the name of
    #: the module-level class it is in, if any)
    calls: list[tuple[ast.Call, ast.AST | None, bool, bool, str | None]]
    #: the nodes of each type
    types: dict[type, list[ast.AST]]


def ast_facts(tree: ast.Module) -> AstFacts:
    def compute() -> AstFacts:
        nodes: list[ast.AST] = []
        async_nodes: list[ast.AST] = []
        calls: list[tuple[ast.Call, ast.AST | None, bool, bool, str | None]] = []
        types: dict[type, list[ast.AST]] = {}
        stack: list[tuple[ast.AST, ast.AST | None, bool, bool, str | None]] = [
            (tree, None, False, False, None)
        ]
        pop, push, node_type, list_type = stack.pop, stack.append, ast.AST, list
        while stack:
            node, parent, under_async, under_sync, owner = pop()
            nodes.append(node)
            kind = type(node)
            bucket = types.get(kind)
            if bucket is None:
                types[kind] = [node]
            else:
                bucket.append(node)
            if under_async:
                async_nodes.append(node)
            if kind is ast.Call:
                assert isinstance(node, ast.Call)
                calls.append((node, parent, under_async, under_sync, owner))
            elif kind is ast.AsyncFunctionDef:
                under_async = True
            elif kind is ast.FunctionDef:
                under_sync = True
            elif kind is ast.ClassDef and not (under_async or under_sync):
                assert isinstance(node, ast.ClassDef)
                owner = node.name
            # `ast.iter_child_nodes`, inlined: this loop runs for every node of every file
            for name in node._fields:
                if name == "ctx":
                    continue
                value = getattr(node, name, None)
                if type(value) is list_type:
                    for item in value:
                        if isinstance(item, node_type):
                            push((item, node, under_async, under_sync, owner))
                elif isinstance(value, node_type):
                    push((value, node, under_async, under_sync, owner))
        return AstFacts(nodes, async_nodes, calls, types)

    result: AstFacts = ast_memo(tree, "facts", compute)
    return result


def ast_of_type(tree: ast.Module, *kinds: type[ast.AST]) -> list[ast.AST]:
    """The nodes of ``tree`` of these exact types."""
    types = ast_facts(tree).types
    if len(kinds) == 1:
        return types.get(kinds[0], [])
    return [node for kind in kinds for node in types.get(kind, ())]


def ast_nodes(tree: ast.Module) -> list[ast.AST]:
    """Every node of ``tree``, listed once for all pre-filters."""
    return ast_facts(tree).nodes


def ast_async_nodes(tree: ast.Module) -> list[ast.AST]:
    """Every node inside an ``async def`` (nested functions' included), listed once."""
    return ast_facts(tree).async_nodes


@dataclass
class Hit:
    """A finding while it still points into the tree."""

    rule: type[Rule]
    #: the LibCST node it reports, or the stdlib node for a rule that asks the semantic model
    node: cst.CSTNode | ast.AST
    message: str
    fix: Fix | None
    #: facts for the report; "{line}" in a text is filled with the line of its node
    evidence: list[tuple[str, cst.CSTNode | None]]
    #: where it is, when known without LibCST (a model rule's finding)
    span: Span | None = None
    #: a model rule's fix before it is built: ``fix`` holds its safety and changes only,
    #: until the file is parsed with LibCST (``engine.apply``) and this builds it there
    pending: PendingFix | None = None
    #: ``engine.detect.fix_id`` when it is known before LibCST (a model rule's finding)
    key: str | None = None


@dataclass
class PendingFix:
    """A model rule's fix: what it replaces (as stdlib nodes, found again by position in the
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
    """Base of every rule: docs as class attributes, handlers, ``report``."""

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
    #: its strings) -- a cheap pre-filter that spares most files a parse
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

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def report(
        self,
        node: cst.CSTNode,
        message: str,
        fix: Fix | None = None,
        evidence: Sequence[tuple[str, cst.CSTNode | None]] = (),
    ) -> None:
        if fix is not None and self.no_fix_in_tests and self.ctx.test_code:
            message += " (no fix in tests and docs: a fix must not change what they check or show)"
            fix = None
        self.ctx.hits.append(Hit(type(self), node, message, fix, list(evidence)))

    @classmethod
    def may_apply(cls, text: str) -> bool:
        for needle in cls.needles:
            options = (needle,) if isinstance(needle, str) else needle
            if not any(option in text for option in options):
                return False
        return True

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        """A second pre-filter on the stdlib syntax tree; True unless the rule can tell that
        nothing in ``tree`` could be a finding. It must never say False wrongly."""
        return True

    def finish(self) -> None:
        """Called after the walk, for rules that decide once they have seen the whole module."""


class ModelRule(Rule):
    """A rule that asks the semantic model (``asyncfix.analysis``) on the stdlib tree: its
    handlers are ``on_<ast node type>``, called from one walk (``analysis.model.Walk``) with
    every other model rule's; a file whose findings have no fix to apply is never parsed with
    LibCST."""

    def __init__(self, ctx: ModelContext) -> None:
        self.context = ctx
        self.walk = ctx.walk
        self.model = ctx.walk.model

    def report(  # type: ignore[override]
        self,
        node: ast.AST,
        message: str,
        fix: tuple[Safety, list[str], PendingFix] | None = None,
        evidence: Sequence[str] = (),
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
            [(text, None) for text in evidence],
            span=self.span(node),
            pending=pending,
            key=fix_key(self.code, message, self.model.source.segment(node)),
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
        ``await`` there makes it an async generator) or outside a function."""
        place = self.walk.place(node)
        function = place.function
        if place.genexp or function is None:
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
    """Where a model rule's fix moves a call to a worker thread (``ModelRule.offload_site``):
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
    """What model rules share in one run over one module."""

    walk: Walk
    target: tuple[int, int]
    project: Project | None
    test_code: bool
    hits: list[Hit] = field(default_factory=list)


@dataclass
class Frame:
    #: "module" | "class" | "def" | "async" | "lambda" | "offload" | "genexp" | "typecheck"
    kind: str
    #: the function, class, lambda, ... the frame belongs to
    node: cst.CSTNode
    #: the node whose subtree the frame covers: a function's body, not its decorators and
    #: defaults, which run in the enclosing scope
    covers: cst.CSTNode


@dataclass
class ClassFacts:
    node: cst.ClassDef
    #: method name -> its definitions in the class body (several with overloads/properties)
    methods: dict[str, list[cst.FunctionDef]]
    #: names bound in the class body other than by def (class attributes)
    attributes: set[str]
    #: base class expressions as dotted names ("" when not a plain name)
    bases: list[str]


class Context:
    """One walk over a module (``walk.walk``), calling every enabled rule's handlers.

    It keeps what several rules need to know about where they are: the stack of
    enclosing functions, classes, lambdas and offloading calls; the parent of every
    node on the current path; names resolved lazily (``names.py``).
    """

    def __init__(
        self,
        module: cst.Module,
        rules: Sequence[type[Rule]],
        target: tuple[int, int],
        project: Project | None = None,
        offload: Sequence[str] = (),
        test_code: bool = False,
    ) -> None:
        self.module = module
        self.target = target
        #: the file is test code (``files.is_test_path``): fixes must not change what it tests
        self.test_code = test_code
        #: the project's own offloading helpers (config ``offload-functions``)
        self.offload = frozenset(offload)
        self._offload_last = frozenset(name.rsplit(".", 1)[-1] for name in offload)
        #: the project index, when an enabled rule needs it and the file is in it
        self.project = project
        self.hits: list[Hit] = []
        self.frames: list[Frame] = [Frame("module", module, module)]
        self.path: list[cst.CSTNode] = []
        self._offloaded: set[int] = set()
        self._class_facts: dict[str, ClassFacts] | None = None
        self.names = Resolver(module)
        self._receivers: Receivers | None = None
        #: results several rules share, computed once per module (the race analysis)
        self.shared: dict[str, Any] = {}
        self.rules = [rule(self) for rule in rules]
        self._visit: dict[str, list[Callable[[Any], None]]] = {}
        self._leave: dict[str, list[Callable[[Any], None]]] = {}
        for instance in self.rules:
            for attr in dir(instance):
                if attr.startswith("visit_"):
                    self._visit.setdefault(attr[6:], []).append(getattr(instance, attr))
                elif attr.startswith("leave_"):
                    self._leave.setdefault(attr[6:], []).append(getattr(instance, attr))

    # -- the walk --------------------------------------------------------------------

    def on_visit(self, node: cst.CSTNode) -> bool:
        owner = self.path[-1] if self.path else None
        self.path.append(node)
        frame = _frame_for(node, owner)
        if frame is None and id(node) in self._offloaded:
            frame = Frame("offload", node, node)
        if frame is not None:
            self.frames.append(frame)
        if type(node) is cst.Call and self._is_offloading_call(node):
            # only the callable runs in the worker thread: the other arguments are evaluated
            # here, on the loop (`to_thread(write, path.read_bytes())` reads on the loop)
            position = 1 if _is_run_in_executor(node) else 0
            positional = [arg for arg in node.args if arg.keyword is None and not arg.star]
            if len(positional) > position:
                self._offloaded.add(id(positional[position]))
        for handler in self._visit.get(type(node).__name__, ()):
            handler(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        for handler in self._leave.get(type(original_node).__name__, ()):
            handler(original_node)
        if self.frames[-1].covers is original_node:
            self.frames.pop()
        self.path.pop()

    def _is_offloading_call(self, node: cst.Call) -> bool:
        """``asyncio.to_thread(...)``, ``loop.run_in_executor(...)``, ``anyio.to_thread.run_sync``
        or one of the project's helpers named in ``offload-functions``: an entry matches the
        call spelled that way, spelled with a longer receiver (``self.hass.add_job`` for
        ``hass.add_job``), or an import of that name."""
        if _is_run_in_executor(node):
            return True
        name = last_name(node.func)
        if name in _OFFLOADER_NAMES and self.qualified_name(node.func) in OFFLOADERS:
            return True
        if name is None or name not in self._offload_last:
            return False
        spelled = dotted_name(node.func)
        if spelled is not None and any(
            spelled == entry or spelled.endswith("." + entry) for entry in self.offload
        ):
            return True
        return self.qualified_name(node.func) in self.offload

    def run(self) -> list[Hit]:
        """The findings of every rule, in one walk. The context is spent afterwards: the rules
        and helpers it holds refer back to it, and that cycle would keep the whole tree
        alive until the collector's next pass."""
        walk(self.module, self.on_visit, self.on_leave)
        for rule in self.rules:
            rule.finish()
        hits = self.hits
        self.__dict__.clear()
        return hits

    # -- where am I ------------------------------------------------------------------

    def parent(self, node: cst.CSTNode | None = None, level: int = 1) -> cst.CSTNode | None:
        """The parent of the node being visited (or of ``node`` when it is on the path)."""
        index = len(self.path) - 1 if node is None else self._index(node)
        index -= level
        return self.path[index] if index >= 0 else None

    def _index(self, node: cst.CSTNode) -> int:
        for index in range(len(self.path) - 1, -1, -1):
            if self.path[index] is node:
                return index
        raise ValueError("node is not on the current path")

    def in_async_body(self) -> bool:
        """Lexically in an ``async def``, not in a nested def/lambda/class, in the callable given
        to an offloading call, or under ``if TYPE_CHECKING:``."""
        frame = self.innermost_scope()
        return frame is not None and frame.kind == "async"

    def innermost_scope(self) -> Frame | None:
        for frame in reversed(self.frames):
            if frame.kind != "genexp":
                return frame
        return None

    def in_generator_expression(self) -> bool:
        """Inside a generator expression of the current function: ``await`` there would make it
        an async generator, so fixes that insert one must not be offered."""
        for frame in reversed(self.frames):
            if frame.kind == "genexp":
                return True
            if frame.kind in ("async", "def", "lambda", "class", "offload"):
                return False
        return False

    def enclosing_function(self) -> cst.FunctionDef | None:
        for frame in reversed(self.frames):
            if frame.kind in ("def", "async"):
                assert isinstance(frame.node, cst.FunctionDef)
                return frame.node
            if frame.kind in ("class", "lambda"):
                return None
        return None

    def enclosing_class(self) -> cst.ClassDef | None:
        """The class whose method is being visited (directly, not in a nested function)."""
        for index in range(len(self.frames) - 1, -1, -1):
            frame = self.frames[index]
            if frame.kind in ("def", "async"):
                outer = self.frames[index - 1]
                if outer.kind == "class":
                    assert isinstance(outer.node, cst.ClassDef)
                    return outer.node
                return None
            if frame.kind in ("class", "lambda"):
                return None
        return None

    def is_self(self, receiver: cst.Name) -> bool:
        """``receiver`` is the ``self``/``cls`` of the method being walked: its first parameter,
        not a ``staticmethod``, never reassigned."""
        function = self.enclosing_function()
        if function is None or self.enclosing_class() is None:
            return False
        params = [*function.params.posonly_params, *function.params.params]
        if not params or params[0].name.value != receiver.value:
            return False
        if any(dotted_name(d.decorator) == "staticmethod" for d in function.decorators):
            return False
        found = self.lookup(receiver.value)
        return found is not None and found[0] is function and len(found[1]) == 1

    # -- names -----------------------------------------------------------------------

    def scopes(self) -> list[cst.CSTNode]:
        """The module, then each enclosing class and function, outermost first."""
        return [
            frame.node for frame in self.frames if frame.kind in ("module", "class", "def", "async")
        ]

    def qualified_name(self, node: cst.CSTNode) -> str | None:
        """The dotted name an expression refers to through imports (``t.sleep`` -> ``time.sleep``
        after ``import time as t``), ``builtins.x`` for a builtin, or None."""
        return self.names.qualified_name(node, self.scopes())

    @property
    def receivers(self) -> Receivers:
        """What class a receiver (``client``, ``self.client``) is an instance of."""
        if self._receivers is None:
            from asyncfix.codemods.receivers import Receivers

            self._receivers = Receivers(self)
        return self._receivers

    def lookup(self, name: str) -> tuple[cst.CSTNode, list[Binding]] | None:
        """The scope binding ``name`` where the walk is, and its bindings there (None: builtin
        or unbound)."""
        return self.names.lookup(name, self.scopes())

    def module_name_for(self, module: str, leading_only: bool = False) -> str | None:
        """The name an unconditional ``import module`` binds at module level (``aio`` after
        ``import asyncio as aio``), or None when the module is not imported that way.

        Imports under ``if`` (``TYPE_CHECKING``) do not count: the name may not exist at run
        time. With ``leading_only``, only imports before the first ``def``/``class`` count
        (for code the fix adds at module level, which runs at import time)."""
        for statement in self.module.body:
            if leading_only and isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
                break
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, cst.Import):
                        for alias in small.names:
                            if dotted_name(alias.name) == module:
                                if alias.asname is None:
                                    return module
                                asname = alias.asname.name
                                if isinstance(asname, cst.Name):
                                    return asname.value
        return None

    def imported_packages(self) -> frozenset[str]:
        """The top-level packages the module imports at module level (``asyncio``, ``anyio``,
        ``trio``): which event loops its code may run on."""
        found = self.shared.get("imported-packages")
        if found is None:
            names: set[str] = set()
            for statement in top_level_statements(self.module.body):
                if not isinstance(statement, cst.SimpleStatementLine):
                    continue
                for small in statement.body:
                    if isinstance(small, cst.Import):
                        names.update((dotted_name(a.name) or "").split(".")[0] for a in small.names)
                    elif (
                        isinstance(small, cst.ImportFrom)
                        and small.module is not None
                        and not small.relative
                    ):
                        names.add((dotted_name(small.module) or "").split(".")[0])
            found = self.shared["imported-packages"] = frozenset(names)
        return found

    # -- classes of this module --------------------------------------------------------

    @property
    def classes(self) -> dict[str, ClassFacts]:
        if self._class_facts is None:
            self._class_facts = {}
            for statement in top_level_statements(self.module.body):
                if isinstance(statement, cst.ClassDef):
                    self._class_facts[statement.name.value] = _class_facts(statement)
        return self._class_facts

    def class_facts(self, node: cst.ClassDef) -> ClassFacts | None:
        facts = self.classes.get(node.name.value)
        return facts if facts is not None and facts.node is node else None

    def lookup_method(self, cls: ClassFacts, name: str) -> list[cst.FunctionDef] | None:
        """Definitions of ``name`` that ``cls`` gets by the MRO, looking only at this module.

        None when it cannot be known: the name is a class attribute, or a base class
        that comes before the one defining it is not from this module.
        """
        return lookup_in_bases(cls, name, self.classes)


def _frame_for(node: cst.CSTNode, owner: cst.CSTNode | None) -> Frame | None:
    """The frame ``node`` opens: the body of a function, lambda or class (their decorators,
    defaults, annotations and bases belong to the enclosing scope), or a generator expression.

    Exact type tests: ``isinstance`` against LibCST's node classes goes through ``ABCMeta``,
    and this runs for every node of every walk."""
    kind = type(owner)
    if kind is cst.FunctionDef:
        assert isinstance(owner, cst.FunctionDef)
        if node is owner.body:
            return Frame("async" if owner.asynchronous is not None else "def", owner, node)
    elif kind is cst.Lambda:
        assert isinstance(owner, cst.Lambda)
        if node is owner.body:
            return Frame("lambda", owner, node)
    elif kind is cst.ClassDef:
        assert isinstance(owner, cst.ClassDef)
        if node is owner.body:
            return Frame("class", owner, node)
    elif kind is cst.If:
        assert isinstance(owner, cst.If)
        if node is owner.body and _is_type_checking(owner.test):
            return Frame("typecheck", owner, node)  # never runs: no rule looks inside
    if type(node) is cst.GeneratorExp:
        return Frame("genexp", node, node)
    return None


def _is_type_checking(test: cst.BaseExpression) -> bool:
    return dotted_name(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _is_run_in_executor(call: cst.Call) -> bool:
    func = call.func
    return isinstance(func, cst.Attribute) and func.attr.value == "run_in_executor"


def top_level_statements(body: Sequence[cst.BaseStatement]) -> Iterator[cst.BaseStatement]:
    """Module statements, looking into top-level ``if``/``try`` blocks (import guards)."""
    for statement in body:
        yield statement
        if isinstance(statement, (cst.If, cst.Try)):
            blocks: list[cst.BaseSuite] = [statement.body]
            if isinstance(statement, cst.Try):
                blocks.extend(handler.body for handler in statement.handlers)
            elif statement.orelse is not None:
                blocks.append(statement.orelse.body)
            for block in blocks:
                if isinstance(block, cst.IndentedBlock):
                    yield from top_level_statements(block.body)


def _class_facts(node: cst.ClassDef) -> ClassFacts:
    methods: dict[str, list[cst.FunctionDef]] = {}
    attributes: set[str] = set()
    body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
    for statement in body:
        if isinstance(statement, cst.FunctionDef):
            methods.setdefault(statement.name.value, []).append(statement)
        elif isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                for target in _assigned_names(small):
                    attributes.add(target)
        elif isinstance(statement, cst.ClassDef):
            attributes.add(statement.name.value)
        elif isinstance(statement, (cst.If, cst.Try, cst.With, cst.For, cst.While)):
            # definitions under a condition: treat every name bound there as unknown
            for sub in _walk_statements(statement):
                if isinstance(sub, cst.FunctionDef):
                    attributes.add(sub.name.value)
                elif isinstance(sub, cst.SimpleStatementLine):
                    for small in sub.body:
                        attributes.update(_assigned_names(small))
    bases = [
        dotted_name(arg.value.value if isinstance(arg.value, cst.Subscript) else arg.value) or ""
        for arg in node.bases
        if arg.keyword is None
    ]
    return ClassFacts(node, methods, attributes, bases)


def _walk_statements(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    for child in node.children:
        if isinstance(child, (cst.FunctionDef, cst.SimpleStatementLine)):
            yield child
        elif not isinstance(child, cst.ClassDef):
            yield from _walk_statements(child)


def _assigned_names(small: cst.BaseSmallStatement) -> Iterator[str]:
    if isinstance(small, cst.Assign):
        for target in small.targets:
            if isinstance(target.target, cst.Name):
                yield target.target.value
    elif isinstance(small, (cst.AnnAssign, cst.AugAssign)) and isinstance(small.target, cst.Name):
        yield small.target.value


def last_name(node: cst.CSTNode) -> str | None:
    """``sleep`` for ``time.sleep`` or ``sleep``: a cheap test before resolving a callee."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def is_coroutine_function(node: cst.FunctionDef) -> bool:
    """An ``async def`` whose decorators are all known to keep it a coroutine function."""
    if node.asynchronous is None:
        return False
    for decorator in node.decorators:
        name = dotted_name(decorator.decorator)
        if name not in PASS_THROUGH_DECORATORS:
            return False
    return True


def names_in(node: cst.CSTNode) -> set[str]:
    """Every identifier used in ``node`` (to pick a fresh name that clashes with none)."""
    found: set[str] = set()

    def visit(child: cst.CSTNode) -> bool:
        if isinstance(child, cst.Name):
            found.add(child.value)
        return True

    walk(node, visit)
    return found


def fresh_name(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    index = 1
    while f"{base}_{index}" in taken:
        index += 1
    return f"{base}_{index}"


_PRECEDENCE_PARENTS = (cst.Attribute, cst.Subscript, cst.Call, cst.Await)


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


def offload_fix(ctx: Context, node: cst.Call) -> Fix | None:
    """``f(a, b=1)`` -> ``await asyncio.to_thread(f, a, b=1)`` (unsafe: the call moves to a worker
    thread); for a target before Python 3.9, which has no ``to_thread``,
    ``await loop.run_in_executor(None, functools.partial(f, a, b=1))``. None in a generator
    expression (an ``await`` there makes it an async generator)."""
    if ctx.in_generator_expression():
        return None
    offloaded = offload_call(ctx, node)
    if offloaded is None:
        return None
    call, fix = offloaded
    how = "asyncio.to_thread" if ctx.target >= (3, 9) else "loop.run_in_executor"
    fix.changes.insert(
        0, f"Offloaded `{source_of(node.func)}(...)` to a worker thread with `{how}`"
    )
    fix.replace[node] = await_expression(call, node, ctx.parent())
    return fix


_COMMA = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


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


def offload_call(ctx: Context, node: cst.Call) -> tuple[cst.Call, Fix] | None:
    """The call that runs ``node`` in a worker thread, keeping its arguments as written (their
    comments and layout), and the imports and statements it needs (a Fix without
    replacements yet). None outside a function."""
    function = ctx.enclosing_function()
    if function is None:
        return None
    asyncio_name = ctx.module_name_for("asyncio")
    loop = None
    if ctx.target < (3, 9):
        existing = _running_loop(function, asyncio_name or "asyncio")
        if existing is not None:
            loop = existing, False
        else:
            loop = fresh_name("loop", set(ctx.names.occurrences(function))), True
    where = Offload(function, asyncio_name, ctx.module_name_for("functools"), ctx.target, loop)
    return offloaded_call(node, where)


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
        else _COMMA
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
    none = cst.Arg(cst.Name("None"), comma=_COMMA)
    if any(arg.keyword is not None or arg.star == "**" for arg in node.args):
        if not where.functools_name:
            fix.add_imports.append(ImportItem("functools"))
        partial = cst.Attribute(
            value=cst.Name(where.functools_name or "functools"), attr=cst.Name("partial")
        )
        bound = node.with_changes(func=partial, args=[func, *node.args])
        return cst.Call(func=run, args=[none, cst.Arg(bound.with_changes(lpar=[], rpar=[]))]), fix
    return node.with_changes(func=run, args=[none, func, *node.args]), fix


def _running_loop(function: cst.FunctionDef, asyncio_name: str) -> str | None:
    """The name ``function`` gives ``asyncio.get_running_loop()`` at its start, if it does."""
    wanted = cst.Call(
        func=cst.Attribute(value=cst.Name(asyncio_name), attr=cst.Name("get_running_loop"))
    )
    body = function.body.body if isinstance(function.body, cst.IndentedBlock) else ()
    for statement in body:
        if not isinstance(statement, cst.SimpleStatementLine):
            break
        for small in statement.body:
            if (
                isinstance(small, cst.Assign)
                and len(small.targets) == 1
                and isinstance(small.targets[0].target, cst.Name)
                and small.value.deep_equals(wanted)
            ):
                return small.targets[0].target.value
    return None


def source_of(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


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


SUPPRESS = re.compile(
    r"#\s*(?:asyncfix:\s*ignore(?:\[(?P<codes>[A-Z0-9,\s]+)\])?|noqa(?::\s*(?P<noqa>[A-Z0-9,\s]+))?)",
)
