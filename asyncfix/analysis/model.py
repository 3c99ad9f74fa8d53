"""The semantic model of one module, and the one traversal that asks it on every rule's behalf.

``SemanticModel`` holds the layers (``scopes``, ``classes``, ``values``, ``coroutines``) built
on the stdlib tree; ``Walk`` traverses the tree once, keeps where it is (the frames of
functions, classes, lambdas, generator expressions, the callables handed to a worker thread,
``if TYPE_CHECKING:`` blocks; the path of parents) and calls each rule's ``on_<NodeType>``
handlers, so that a rule declares the node types it wants and all of them share the walk.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asyncfix.analysis.classes import Classes
from asyncfix.analysis.coroutines import Coroutines, SourceText
from asyncfix.analysis.scopes import Scopes
from asyncfix.analysis.values import Values
from asyncfix.index import ast_dotted_name

if TYPE_CHECKING:
    from asyncfix.codemods.base import Project

#: calls whose arguments run in a worker thread, not on the event loop
OFFLOADERS = frozenset({"asyncio.to_thread", "anyio.to_thread.run_sync", "trio.to_thread.run_sync"})
_OFFLOADER_NAMES = frozenset(name.rsplit(".", 1)[1] for name in OFFLOADERS)


class SemanticModel:
    """What names are bound to and what values may be, in one module."""

    def __init__(self, tree: ast.Module, text: str, project: Project | None = None) -> None:
        self.tree = tree
        self.source = SourceText(text)
        self.project = project
        self.scopes = Scopes(tree)
        self.classes = Classes(tree, self.scopes)
        self.values = Values(self.scopes, self.classes, project)
        self.coroutines = Coroutines(self.scopes, self.classes, self.values, self.source, project)


@dataclass
class Frame:
    #: "module" | "class" | "def" | "async" | "lambda" | "offload" | "genexp" | "typecheck"
    kind: str
    #: the function, class, lambda, ... the frame belongs to
    node: ast.AST


class Walk:
    """One traversal of the module for every rule's ``on_<NodeType>`` handlers."""

    def __init__(self, model: SemanticModel, offload: Sequence[str] = ()) -> None:
        self.model = model
        #: the project's own offloading helpers (config ``offload-functions``)
        self.offload = frozenset(offload)
        self._offload_last = frozenset(name.rsplit(".", 1)[-1] for name in offload)
        self.frames: list[Frame] = [Frame("module", model.tree)]
        #: the nodes from the module down to the one being visited
        self.path: list[ast.AST] = []
        self._handlers: dict[type, list[Callable[[Any], None]]] = {}

    def run(self, rules: Sequence[object]) -> None:
        for rule in rules:
            for attr in dir(rule):
                if attr.startswith("on_"):
                    kind = getattr(ast, attr[3:], None)
                    if isinstance(kind, type):
                        self._handlers.setdefault(kind, []).append(getattr(rule, attr))
        if self._handlers:
            self._visit(self.model.tree)

    # -- the traversal -------------------------------------------------------------------

    def _visit(self, node: ast.AST) -> None:
        self.path.append(node)
        for handler in self._handlers.get(type(node), ()):
            handler(node)
        kind = type(node)
        if kind is ast.FunctionDef or kind is ast.AsyncFunctionDef:
            assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            self._all(node.decorator_list)
            self._visit(node.args)
            if node.returns is not None:
                self._visit(node.returns)
            self._inside(Frame("async" if kind is ast.AsyncFunctionDef else "def", node), node.body)
        elif kind is ast.Lambda:
            assert isinstance(node, ast.Lambda)
            self._visit(node.args)
            self._inside(Frame("lambda", node), [node.body])
        elif kind is ast.ClassDef:
            assert isinstance(node, ast.ClassDef)
            self._all(node.decorator_list)
            self._all(node.bases)
            self._all(node.keywords)
            self._inside(Frame("class", node), node.body)
        elif kind is ast.If and _is_type_checking(node.test):  # type: ignore[attr-defined]
            assert isinstance(node, ast.If)
            self._visit(node.test)
            self._inside(Frame("typecheck", node), node.body)  # never runs: no rule looks inside
            self._all(node.orelse)
        elif kind is ast.GeneratorExp:
            self._inside(Frame("genexp", node), list(_children(node)))
        elif kind is ast.Call:
            assert isinstance(node, ast.Call)
            offloaded = self._offloaded_argument(node)
            self._visit(node.func)
            for arg in node.args:
                if arg is offloaded:
                    self._inside(Frame("offload", arg), [arg])
                else:
                    self._visit(arg)
            self._all(node.keywords)
        else:
            self._all(_children(node))
        self.path.pop()

    def _all(self, nodes: Sequence[ast.AST] | list[ast.AST]) -> None:
        for child in nodes:
            self._visit(child)

    def _inside(self, frame: Frame, nodes: Sequence[ast.AST]) -> None:
        self.frames.append(frame)
        try:
            self._all(nodes)
        finally:
            self.frames.pop()

    def _offloaded_argument(self, call: ast.Call) -> ast.expr | None:
        """The callable an offloading call runs in a worker thread: only it does; the other
        arguments are evaluated here, on the loop (``to_thread(write, path.read_bytes())``
        reads on the loop)."""
        if not self._is_offloading_call(call):
            return None
        position = 1 if _is_run_in_executor(call) else 0
        positional = [arg for arg in call.args if not isinstance(arg, ast.Starred)]
        return positional[position] if len(positional) > position else None

    def _is_offloading_call(self, call: ast.Call) -> bool:
        """``asyncio.to_thread(...)``, ``loop.run_in_executor(...)``, ``anyio.to_thread.run_sync``
        or one of the project's helpers named in ``offload-functions``: an entry matches the
        call spelled that way, spelled with a longer receiver (``self.hass.add_job`` for
        ``hass.add_job``), or an import of that name."""
        if _is_run_in_executor(call):
            return True
        func = call.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        qualified = self.model.scopes.qualified_name
        if name in _OFFLOADER_NAMES and qualified(func) in OFFLOADERS:
            return True
        if name is None or name not in self._offload_last:
            return False
        spelled = ast_dotted_name(func)
        if spelled is not None and any(
            spelled == entry or spelled.endswith("." + entry) for entry in self.offload
        ):
            return True
        return qualified(func) in self.offload

    # -- where am I ----------------------------------------------------------------------

    def parent(self, node: ast.AST | None = None) -> ast.AST | None:
        """The parent of the node being visited, or of ``node`` when it is on the path."""
        index = len(self.path) - 1 if node is None else self._index(node)
        return self.path[index - 1] if index > 0 else None

    def _index(self, node: ast.AST) -> int:
        for index in range(len(self.path) - 1, -1, -1):
            if self.path[index] is node:
                return index
        raise ValueError("node is not on the current path")

    def innermost_scope(self) -> Frame | None:
        for frame in reversed(self.frames):
            if frame.kind != "genexp":
                return frame
        return None

    def in_async_body(self) -> bool:
        """Lexically in an ``async def``, not in a nested def/lambda/class, in the callable
        given to an offloading call, or under ``if TYPE_CHECKING:``."""
        frame = self.innermost_scope()
        return frame is not None and frame.kind == "async"

    def in_generator_expression(self) -> bool:
        """Inside a generator expression of the current function: ``await`` there would make
        it an async generator, so fixes that insert one must not be offered."""
        for frame in reversed(self.frames):
            if frame.kind == "genexp":
                return True
            if frame.kind in ("async", "def", "lambda", "class", "offload"):
                return False
        return False

    def enclosing_function(self) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        for frame in reversed(self.frames):
            if frame.kind in ("def", "async"):
                assert isinstance(frame.node, (ast.FunctionDef, ast.AsyncFunctionDef))
                return frame.node
            if frame.kind in ("class", "lambda"):
                return None
        return None


def _children(node: ast.AST) -> list[ast.AST]:
    """``ast.iter_child_nodes`` without the ``Load``/``Store`` markers."""
    found: list[ast.AST] = []
    for name in node._fields:
        if name == "ctx":
            continue
        value = getattr(node, name, None)
        if type(value) is list:
            found.extend(item for item in value if isinstance(item, ast.AST))
        elif isinstance(value, ast.AST):
            found.append(value)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return ast_dotted_name(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _is_run_in_executor(call: ast.Call) -> bool:
    func = call.func
    return isinstance(func, ast.Attribute) and func.attr == "run_in_executor"
