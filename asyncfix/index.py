"""The project index: cross-module facts the rules need, built once per run.

Which functions and methods are coroutine functions, which classes derive from which
(across modules), and what each module's imports bind (so ``from .client import connect as
c`` and ``__init__.py`` re-exports resolve). It only needs definitions, so it reads files with
the stdlib ``ast`` (several times cheaper than LibCST); a file this Python cannot parse (newer
syntax) is read with LibCST instead.

Each function's facts include its summary (``_Summary``, one walk of its body): what it does
with each parameter (the kinds of ``analysis/uses.py``, the classification the semantic
model's value flow uses), the calls a sync function makes on every run, and for a coroutine
method the state of its object read before its first suspension and written after one.

Rules see it through four questions (``ProjectIndex``): ``module_of(path)``,
``function(qualified)``, ``class_(qualified)`` and ``method(class, name)``; they never read
other files themselves. Every answer is "known" or None: an unknown name, a decorator that may
change what a function returns, a base class outside the project earlier in the MRO — all None.
"""

from __future__ import annotations

import ast
import builtins
import functools
import hashlib
import io
import os
import re
import sys
import tokenize
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asyncfix.analysis.source import python_lines
from asyncfix.analysis.uses import CHECKER_BUILTINS
from asyncfix.lazy import libcst as cst

if TYPE_CHECKING:
    from asyncfix.analysis.catalogue import CoroutineFunctions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: decorators known to keep an ``async def`` a coroutine function
PASS_THROUGH_DECORATORS = frozenset(
    {
        "staticmethod",
        "classmethod",
        "abc.abstractmethod",
        "abstractmethod",
        "typing.override",
        "typing_extensions.override",
        "override",
        "typing.final",
        "final",
    }
)
#: bases that define no methods a project class could inherit by mistake
NEUTRAL_BASES = frozenset(
    {"object", "Generic", "typing.Generic", "Protocol", "typing.Protocol", "ABC", "abc.ABC"}
)
MAX_HOPS = 8
#: a parameter's kind of use (beside ``analysis/uses.py``'s): its first read is a ``for`` over
#: it at the top of a sync function's body (a coroutine passed there raises TypeError at once)
ITERATED_FIRST = "iterated-first"


@dataclass(frozen=True, slots=True)
class FunctionFact:
    qualified: str
    is_coroutine: bool
    path: str
    line: int
    #: for an undecorated sync function: the blocking APIs it calls itself ("time.sleep")
    blocking: tuple[str, ...] = ()
    #: ... and the functions it calls, as qualified as the module's imports tell
    #: ("pkg.util.read", ".util.read", "pkg.mod.Class.method" for ``self.method()``)
    calls: tuple[str, ...] = ()
    #: the return annotation as written ("dict[str, Any]"), "" when there is none
    returns: str = ""
    #: the body (after a docstring) is ``return <first parameter>``: ``__aenter__`` that
    #: does nothing but hand out the object itself
    returns_self_only: bool = False
    #: for a coroutine method: the methods it awaits on its first parameter, as paths from
    #: it ("close", "session.close"): how ``__aexit__`` closes the object, and which other
    #: methods (``stop()`` awaiting ``self.close()``) close it too
    awaits_on_self: tuple[str, ...] = ()
    #: the body does nothing: ``pass``, ``...`` or only a docstring
    empty: bool = False
    #: ``parameters`` in a compact text (``self:r:?|key:p:other,stored``), read into
    #: tuples only when a rule asks: most functions' summaries are never asked about
    signature: str = ""
    #: for a coroutine method, in source order: the attributes of its receiver it reads
    #: before its first suspension (``await``, ``async for``/``with``) and writes after one,
    #: and the ones it enters with ``async with`` (the locks it may take); likewise the
    #: module names it declares ``global``
    reads_before: tuple[str, ...] = ()
    writes_after: tuple[str, ...] = ()
    enters: tuple[str, ...] = ()
    globals_read_before: tuple[str, ...] = ()
    globals_written_after: tuple[str, ...] = ()
    #: for an undecorated sync function that is no generator, when each of its returns is
    #: ``return <call>`` or returns None: the callees, qualified as ``calls`` are, and "None"
    #: when some path returns None (``return``, ``return None``, or the end of the body);
    #: ``("None",)`` when every path returns None; () when some return is anything else
    hands_out: tuple[str, ...] = ()
    #: for a method: the methods it calls on its receiver as a statement, dropping what they
    #: return (``self.update()`` -> "update"), own body only
    drops_on_self: tuple[str, ...] = ()

    @property
    def may_return_coroutine(self) -> bool:
        """A sync function whose returns are calls (a coroutine function's, maybe)."""
        return bool(self.hands_out) and self.hands_out != ("None",)

    @property
    def parameters(self) -> tuple[tuple[str, str, tuple[str, ...] | None], ...]:
        """Every parameter in order: (name, how it is passed, what the body does with it).
        How: "receiver" (a method's first, not of a static method), "posonly",
        "positional", "vararg", "kwonly", "kwarg". What: the kinds of use
        (``analysis/uses.py``) of its reads, sorted, ``()`` when it never reads it; None
        when it is not known (a parameter the function or a nested one may rebind, the
        receiver, every parameter of a function whose decorators may wrap it). (Read from
        ``signature`` on each use, through a cache of texts: a fact holds no more than its
        fields, and the index holds some 100,000 of them.)"""
        return _parameters_from_text(self.signature)

    def parameter_uses(self, name: str) -> tuple[str, ...] | None:
        """The kinds of use of parameter ``name``; None when it is not known."""
        for parameter, _, kinds in self.parameters:
            if parameter == name:
                return kinds
        return None

    def parameter_for(self, bound: bool, position: int | None, keyword: str | None) -> str | None:
        """The parameter an argument of a call goes to: the ``position``-th positional one,
        or the one named ``keyword``. ``bound``: called on an instance (``obj.method(...)``,
        the receiver is not among the arguments). None when no one parameter takes it (it
        goes to ``*args``/``**kwargs``, or there is no such parameter)."""
        passed = [p for p in self.parameters if not (bound and p[1] == "receiver")]
        if keyword is not None:
            for name, how, _ in passed:
                if name == keyword and how in ("positional", "kwonly"):
                    return name
            return None
        positional = [p for p in passed if p[1] in ("receiver", "posonly", "positional")]
        if position is None or position >= len(positional):
            return None
        return positional[position][0]


@dataclass(slots=True)
class ClassFact:
    qualified: str
    #: base classes as written, resolved to qualified names later by ``ProjectIndex``
    bases: list[str]
    methods: dict[str, FunctionFact] = field(default_factory=dict)
    #: names bound in the class body by anything but one plain ``def``: unknown
    ambiguous: set[str] = field(default_factory=set)


@dataclass(slots=True)
class ModuleFact:
    name: str
    path: str
    is_package: bool
    functions: dict[str, FunctionFact] = field(default_factory=dict)
    classes: dict[str, ClassFact] = field(default_factory=dict)
    #: local name -> what it imports ("pkg.client.connect", or ".client.connect" relative)
    imports: dict[str, str] = field(default_factory=dict)
    #: names bound at module level more than once, or by assignment: unknown
    ambiguous: set[str] = field(default_factory=set)
    #: modules whose public names ``from m import *`` brings in, in order
    star_imports: list[str] = field(default_factory=list)
    #: module-level type aliases of an async callback, bound once:
    #: ``Handler = Callable[[Request], Awaitable[Response]]`` (``Optional[...]`` of one too)
    async_callbacks: set[str] = field(default_factory=set)


def module_name(path: Path) -> tuple[str, bool]:
    """The dotted module name of ``path`` from its package structure (directories with an
    ``__init__.py``), and whether it is a package's ``__init__``."""
    text = str(path)
    if not os.path.isabs(text):
        text = str(path.absolute())
    directory, base = os.path.split(text)  # string operations: asked for every file, each run
    is_package = base == "__init__.py"
    package = _package_of(directory)
    if is_package:
        return package, True
    dot = base.rfind(".")
    stem = base[:dot] if 0 < dot < len(base) - 1 else base  # as `PurePath.stem`
    return ".".join(p for p in (package, stem) if p), False


@functools.lru_cache(maxsize=4096)
def _package_of(directory: str) -> str:
    """The dotted package a directory is (``""`` when it has no ``__init__.py``)."""
    if not os.path.exists(os.path.join(directory, "__init__.py")):
        return ""
    parent = os.path.dirname(directory)
    base = os.path.basename(directory)
    outer = _package_of(parent) if parent != directory else ""
    return f"{outer}.{base}" if outer else base


def child_nodes(node: ast.AST) -> list[ast.AST]:
    """``ast.iter_child_nodes(node)`` as a list, without the ``Load``/``Store`` markers, and
    several times faster (inlined: the walks over every function body use it)."""
    found: list[ast.AST] = []
    for name in node._fields:
        if name == "ctx":
            continue
        value = getattr(node, name, None)
        if type(value) is list:
            found.extend(item for item in value if isinstance(item, _AST))
        elif isinstance(value, _AST):
            found.append(value)
    return found


_AST = ast.AST


def ast_dotted_name(node: ast.expr) -> str | None:
    """``a.b.c`` for a Name/Attribute chain of the stdlib ast, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = ast_dotted_name(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _is_coroutine(node: ast.FunctionDef | ast.AsyncFunctionDef, generator: bool) -> bool:
    """Calling ``node`` makes a coroutine (``generator``: its body holds ``yield``)."""
    if not isinstance(node, ast.AsyncFunctionDef) or generator:
        return False
    return all(ast_dotted_name(d) in PASS_THROUGH_DECORATORS for d in node.decorator_list)


def yields(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The body (not a nested function) holds ``yield``: calling it makes a generator (an
    ``async def``'s: an async generator, which is iterated, never awaited)."""
    return _holds(node.body, (ast.Yield, ast.YieldFrom))


def _holds(statements: Iterable[ast.stmt], kinds: tuple[type, ...]) -> bool:
    """Some node of one of ``kinds`` is in ``statements``, outside nested functions."""
    stack: list[ast.AST] = list(statements)
    while stack:
        current = stack.pop()
        kind = type(current)
        if kind in kinds:
            return True
        if kind in _NESTED_KINDS:
            continue
        stack.extend(child_nodes(current))
    return False


def _dotted(node: ast.expr) -> str:
    name = ast_dotted_name(node)
    return name or ""


def _statements(body: Iterable[ast.stmt]) -> Iterable[tuple[ast.stmt, bool]]:
    """Statements of a module or class body, looking into ``if``/``try`` blocks; the flag says
    the statement is conditional (such bindings are not certain)."""
    for statement in body:
        yield statement, False
        if isinstance(statement, (ast.If, ast.Try)):
            blocks: list[list[ast.stmt]] = [statement.body, statement.orelse]
            if isinstance(statement, ast.Try):
                blocks += [handler.body for handler in statement.handlers]
                blocks.append(statement.finalbody)
            for block in blocks:
                for inner, _ in _statements(block):
                    yield inner, True


def facts_from_ast(tree: ast.Module, name: str, path: str, is_package: bool) -> ModuleFact:
    module = ModuleFact(name=name, path=path, is_package=is_package)
    imports = _module_imports(tree)
    seen: dict[str, int] = {}

    def bind(local: str) -> None:
        seen[local] = seen.get(local, 0) + 1

    for statement, conditional in _statements(tree.body):
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            bind(statement.name)
            fact = _function_fact(statement, f"{name}.{statement.name}", path, imports, name, None)
            module.functions[statement.name] = fact
            if conditional:
                module.ambiguous.add(statement.name)
        elif isinstance(statement, ast.ClassDef):
            bind(statement.name)
            module.classes[statement.name] = _class_fact(
                statement, f"{name}.{statement.name}", path, imports, name
            )
            if conditional:
                module.ambiguous.add(statement.name)
        elif isinstance(statement, ast.Import):
            for alias in statement.names:
                local = alias.asname or alias.name.split(".", 1)[0]
                target = alias.name if alias.asname else local
                bind(local)
                module.imports[local] = target
        elif isinstance(statement, ast.ImportFrom):
            prefix = "." * statement.level + (statement.module or "")
            for alias in statement.names:
                if alias.name == "*":
                    module.star_imports.append(prefix)
                    continue
                local = alias.asname or alias.name
                bind(local)
                separator = "" if prefix.endswith(".") else "."
                module.imports[local] = f"{prefix}{separator}{alias.name}"
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for assigned in targets:
                for node in ast.walk(assigned):
                    if isinstance(node, ast.Name):
                        module.ambiguous.add(node.id)
                        bind(node.id)
            value = statement.value
            if (
                not conditional
                and len(targets) == 1
                and isinstance(targets[0], ast.Name)
                and value is not None
                and _is_async_callback_type(value, imports)
            ):
                module.async_callbacks.add(targets[0].id)
    module.ambiguous.update(local for local, count in seen.items() if count > 1)
    module.async_callbacks -= {local for local, count in seen.items() if count > 1}
    return module


_CALLABLES = frozenset({"typing.Callable", "collections.abc.Callable"})
_AWAITABLES = frozenset(
    {
        "typing.Awaitable",
        "typing.Coroutine",
        "collections.abc.Awaitable",
        "collections.abc.Coroutine",
    }
)
_OPTIONALS = frozenset({"typing.Optional"})


def _is_async_callback_type(value: ast.expr, imports: dict[str, str]) -> bool:
    """``Callable[..., Awaitable[X]]`` (``Coroutine``), ``Optional[...]`` or ``... | None``
    of one, or the same as a string, qualified through the module's imports."""

    def qualified(node: ast.expr) -> str | None:
        dotted = ast_dotted_name(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        return imports[head] + (f".{rest}" if rest else "") if head in imports else None

    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        try:
            parsed = ast.parse(value.value, mode="eval").body
        except SyntaxError:
            return False
        return not isinstance(parsed, ast.Constant) and _is_async_callback_type(parsed, imports)
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.BitOr):
        sides = [v for v in (value.left, value.right) if not _is_none(v)]
        return len(sides) == 1 and _is_async_callback_type(sides[0], imports)
    if not isinstance(value, ast.Subscript):
        return False
    head = qualified(value.value)
    if head in _OPTIONALS:
        return _is_async_callback_type(value.slice, imports)
    elements = value.slice
    if head not in _CALLABLES or not isinstance(elements, ast.Tuple) or len(elements.elts) != 2:
        return False
    returned = elements.elts[1]
    target = returned.value if isinstance(returned, ast.Subscript) else returned
    return qualified(target) in _AWAITABLES


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _class_fact(
    node: ast.ClassDef, qualified: str, path: str, imports: dict[str, str], module: str
) -> ClassFact:
    # `Base[T]` inherits from `Base`
    bases = [base.value if isinstance(base, ast.Subscript) else base for base in node.bases]
    fact = ClassFact(qualified, [_dotted(base) for base in bases])
    counts: dict[str, int] = {}
    for statement, conditional in _statements(node.body):
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            counts[statement.name] = counts.get(statement.name, 0) + 1
            fact.methods[statement.name] = _function_fact(
                statement, f"{qualified}.{statement.name}", path, imports, module, qualified
            )
            if conditional:
                fact.ambiguous.add(statement.name)
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    fact.ambiguous.add(target.id)
        elif isinstance(statement, ast.ClassDef):
            fact.ambiguous.add(statement.name)
    fact.ambiguous.update(name for name, count in counts.items() if count > 1)
    return fact


#: what each blocking API does (asyncfix/data/blocking_calls.toml)
_BLOCKING = tomllib.loads(
    resources.files("asyncfix").joinpath("data/blocking_calls.toml").read_text("utf-8")
)
BLOCKING_CALLS: dict[str, str] = _BLOCKING["calls"]
#: class -> method -> what it does, for methods of sync objects that block
BLOCKING_METHODS: dict[str, dict[str, str]] = {
    cls: {method: kind for kind, methods in entry.items() for method in methods}
    for cls, entry in _BLOCKING["methods"].items()
}
#: class -> ("attribute"/"method"/"operator", name) pairs that give an object of the same class
SAME_TYPE: dict[str, frozenset[tuple[str, str]]] = {
    cls: frozenset(
        (kind, name)
        for key, kind in (
            ("attributes", "attribute"),
            ("methods", "method"),
            ("operators", "operator"),
        )
        for name in entry.get(key, ())
    )
    for cls, entry in _BLOCKING.get("same-type", {}).items()
}
#: decorators that leave a sync function running where it is called
NEUTRAL_DECORATORS = frozenset(
    {"staticmethod", "classmethod", "functools.cache", "functools.lru_cache", "cache", "lru_cache"}
)


def _module_imports(tree: ast.Module) -> dict[str, str]:
    """Local name -> imported dotted name, for the module's top-level imports."""
    imports: dict[str, str] = {}
    for statement, _ in _statements(tree.body):
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                if alias.asname:
                    imports[alias.asname] = alias.name
                else:
                    top = alias.name.split(".", 1)[0]
                    imports[top] = top
        elif isinstance(statement, ast.ImportFrom):
            prefix = "." * statement.level + (statement.module or "")
            separator = "" if prefix.endswith(".") else "."
            for alias in statement.names:
                if alias.name != "*":
                    imports[alias.asname or alias.name] = f"{prefix}{separator}{alias.name}"
    return imports


def _function_fact(
    node: ast.FunctionDef | ast.AsyncFunctionDef,
    qualified: str,
    path: str,
    imports: dict[str, str],
    module: str,
    cls: str | None,
) -> FunctionFact:
    returns = ast.unparse(node.returns) if node.returns is not None else ""
    wrapped = any(ast_dotted_name(d) not in NEUTRAL_DECORATORS for d in node.decorator_list)
    summary = _Summary(node, imports, cls is not None, wrapped)
    is_coroutine = _is_coroutine(node, summary.yields)
    if isinstance(node, ast.AsyncFunctionDef) or wrapped:
        return FunctionFact(
            qualified,
            is_coroutine,
            path,
            node.lineno,
            returns=returns,
            returns_self_only=_returns_self_only(node),
            # how `__aexit__` closes the object, and which other methods close it too
            awaits_on_self=tuple(sorted(set(summary.awaits_on_receiver))),
            empty=_is_empty(node),
            **summary.fields(),
        )
    receiver = node.args.args[0].arg if cls and node.args.args else None
    blocking: list[str] = []
    calls: list[str] = []
    arguments = node.args
    local_names = {a.arg for a in [*arguments.args, *arguments.kwonlyargs, *arguments.posonlyargs]}

    def callee(call: ast.Call) -> str | None:
        """The call's callee, qualified: ``Class.method`` for ``self.method()``; None for
        one that is not a dotted name, or is read from a parameter."""
        dotted = ast_dotted_name(call.func)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        if receiver is not None and head == receiver and rest and "." not in rest:
            return f"{cls}.{rest}"
        if head in local_names:
            return None
        if head in imports:
            return imports[head] + (f".{rest}" if rest else "")
        if dotted == "open":
            return "builtins.open"
        return f"{module}.{dotted}"

    for call in summary.direct_calls:
        target = callee(call)
        if target is None:
            continue
        if target in BLOCKING_CALLS:
            blocking.append(target)
        else:
            calls.append(target)
    hands_out: list[str] = []
    for statement in summary.returned:
        value = statement.value
        if value is None or (isinstance(value, ast.Constant) and value.value is None):
            hands_out.append("None")
            continue
        target = callee(value) if isinstance(value, ast.Call) else None
        if target is None:
            hands_out = []
            break
        hands_out.append(target)
    if not summary.returned or (hands_out and not _always_leaves(node.body)):
        hands_out.append("None")
    if summary.yields:
        hands_out = []
    return FunctionFact(
        qualified,
        is_coroutine,
        path,
        node.lineno,
        tuple(dict.fromkeys(blocking)),
        tuple(dict.fromkeys(calls)),
        returns,
        _returns_self_only(node),
        empty=_is_empty(node),
        hands_out=tuple(dict.fromkeys(hands_out)),
        **summary.fields(),
    )


def _always_leaves(body: list[ast.stmt]) -> bool:
    """The block never comes out at its end: it ends in ``return`` or ``raise``, or in an
    ``if`` whose both branches do (anything else may come through)."""
    if not body:
        return False
    last = body[-1]
    if isinstance(last, (ast.Return, ast.Raise)):
        return True
    if isinstance(last, ast.If):
        return _always_leaves(last.body) and _always_leaves(last.orelse)
    return False


Position = tuple[int, int]


def _position(node: ast.expr) -> Position:
    return node.lineno, node.col_offset


class _Summary:
    """What the index records of a function's body beyond its calls, from one walk of it:
    what it does with each parameter (the kinds of ``analysis/uses.py``, the classification
    the value flow of a module's semantic model uses), and for a coroutine method the state
    of its receiver and of its ``global`` names around its first suspension."""

    def __init__(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        imports: dict[str, str],
        is_method: bool,
        wrapped: bool,
    ) -> None:
        self.node = node
        self.imports = imports
        arguments = node.args
        static = any(ast_dotted_name(d) == "staticmethod" for d in node.decorator_list)
        positional = [*arguments.posonlyargs, *arguments.args]
        self.receiver = positional[0].arg if is_method and not static and positional else None
        #: every parameter and how it is passed
        self.signature: list[tuple[str, str]] = [
            *((a.arg, "posonly") for a in arguments.posonlyargs),
            *((a.arg, "positional") for a in arguments.args),
            *([(arguments.vararg.arg, "vararg")] if arguments.vararg else []),
            *((a.arg, "kwonly") for a in arguments.kwonlyargs),
            *([(arguments.kwarg.arg, "kwarg")] if arguments.kwarg else []),
        ]
        if self.receiver is not None:
            self.signature[0] = (self.receiver, "receiver")
        self.wrapped = wrapped
        self.names = [] if wrapped else [n for n, how in self.signature if how != "receiver"]
        self.tracks_state = isinstance(node, ast.AsyncFunctionDef) and (
            self.receiver is not None or _declares_global(node)
        )
        self.parents: dict[int, ast.AST] = {}
        self.reads: dict[str, list[ast.Name]] = {}
        self.rebound: set[str] = set()
        #: (position, attribute) of the receiver's attributes read / written, own body only
        self.state_reads: list[tuple[Position, str]] = []
        self.state_writes: list[tuple[Position, str]] = []
        self.global_reads: list[tuple[Position, str]] = []
        self.global_writes: list[tuple[Position, str]] = []
        self.suspensions: list[Position] = []
        self.entered: list[str] = []
        #: ``await self.close()`` -> "close", ``await self.session.close()`` -> "session.close"
        self.awaits_on_receiver: list[str] = []
        #: for a sync function that runs where it is called: the calls its body makes on every
        #: run (``direct_calls``)
        self.wants_calls = isinstance(node, ast.FunctionDef) and not wrapped
        self.direct_calls: list[ast.Call] = []
        #: ... and its ``return`` statements
        self.returned: list[ast.Return] = []
        #: ``self.update()`` as a statement -> "update"
        self.drops_on_receiver: list[str] = []
        #: the own body holds ``yield`` (a generator function)
        self.yields = False
        if self.names or self.tracks_state or self.wants_calls:
            self._walk()
        else:
            self.yields = yields(node)

    def fields(self) -> dict[str, Any]:
        found: dict[str, Any] = {"signature": _parameters_text(self._parameters())}
        if self.drops_on_receiver:
            found["drops_on_self"] = tuple(dict.fromkeys(self.drops_on_receiver))
        if not self.tracks_state:
            return found
        first = min(self.suspensions) if self.suspensions else None

        def before(events: list[tuple[Position, str]]) -> tuple[str, ...]:
            return tuple(sorted({n for at, n in events if first is None or at < first}))

        def after(events: list[tuple[Position, str]]) -> tuple[str, ...]:
            return tuple(sorted({n for at, n in events if first is not None and at > first}))

        found["reads_before"] = before(self.state_reads)
        found["writes_after"] = after(self.state_writes)
        found["enters"] = tuple(sorted(set(self.entered)))
        found["globals_read_before"] = before(self.global_reads)
        found["globals_written_after"] = after(self.global_writes)
        return found

    def _parameters(self) -> tuple[tuple[str, str, tuple[str, ...] | None], ...]:
        from asyncfix.analysis.uses import use_of

        out: list[tuple[str, str, tuple[str, ...] | None]] = []
        for name, how in self.signature:
            if how == "receiver" or self.wrapped or name in self.rebound:
                out.append((name, how, None))
                continue
            reads = self.reads.get(name, ())
            kinds = {use_of(read, self.node, self.parents, self._qualify)[0] for read in reads}
            if reads and self._iterates_first(min(reads, key=_position)):
                kinds.add(ITERATED_FIRST)
            out.append((name, how, tuple(sorted(kinds))))
        return tuple(out)

    def _iterates_first(self, first: ast.Name) -> bool:
        """``first``, a parameter's first read, is ``for ... in parameter:`` as a statement of
        the body of a sync function that is no generator, and no statement before it may
        return: every call runs that loop before anything else sees the argument, and
        nothing in the function catches what it raises."""
        loop = self.parents.get(id(first))
        node = self.node
        if not isinstance(node, ast.FunctionDef) or self.yields or not isinstance(loop, ast.For):
            return False
        if loop.iter is not first or self.parents.get(id(loop)) is not node:
            return False
        before = node.body[: next(i for i, s in enumerate(node.body) if s is loop)]
        return not _holds(before, (ast.Return,))

    def _qualify(self, expr: ast.expr) -> str | None:
        dotted = ast_dotted_name(expr)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        if head in self.imports:
            return self.imports[head] + (f".{rest}" if rest else "")
        return f"builtins.{head}" if not rest and head in _BUILTIN_NAMES else None

    def _walk(self) -> None:
        node = self.node
        parents = self.parents
        wanted = set(self.names)
        declared = _declared_globals(node) if self.tracks_state else frozenset()
        # the own body first; what nested functions and classes hold, after
        own: list[ast.AST] = list(node.body)
        for statement in own:
            parents[id(statement)] = node
        inside: list[ast.AST] = []
        for stack, nested in ((own, False), (inside, True)):
            while stack:
                current = stack.pop()
                kind = type(current)
                pushed = inside if not nested and kind in _NESTED_KINDS else stack
                for field_name in current._fields:
                    value = getattr(current, field_name, None)
                    if type(value) is list:
                        for item in value:
                            if isinstance(item, _AST):
                                parents[id(item)] = current
                                pushed.append(item)
                    elif isinstance(value, _AST) and field_name != "ctx":
                        parents[id(value)] = current
                        pushed.append(value)
                if (kind is ast.Yield or kind is ast.YieldFrom) and not nested:
                    self.yields = True
                if kind in _VISITED:
                    self._visit(current, kind, nested, wanted, declared)
                elif kind is ast.Call and not nested and self.wants_calls:
                    assert isinstance(current, ast.Call)
                    if self._on_every_run(current):
                        self.direct_calls.append(current)
                elif kind is ast.Return and not nested and self.wants_calls:
                    assert isinstance(current, ast.Return)
                    self.returned.append(current)
                elif kind is ast.Expr and not nested and self.receiver is not None:
                    assert isinstance(current, ast.Expr)
                    call = current.value
                    if (
                        type(call) is ast.Call
                        and isinstance(call.func, ast.Attribute)
                        and isinstance(call.func.value, ast.Name)
                        and call.func.value.id == self.receiver
                    ):
                        self.drops_on_receiver.append(call.func.attr)

    def _on_every_run(self, node: ast.AST) -> bool:
        """The body evaluates ``node`` on every run: not only in a branch (``if``/``else``,
        ``match`` cases, ``except`` handlers and ``try``'s ``else``, the right of
        ``and``/``or``, either side of ``x if c else y``, a comprehension's element).

        A helper that blocks only sometimes (``if uri.startswith("http"): urlopen(uri)``)
        may never block for the caller at hand: AF205 does not report what it cannot be
        sure of."""
        parents = self.parents
        function = self.node
        child = node
        parent = parents.get(id(child))
        while parent is not None and parent is not function:
            if not _runs_with(parent, child):
                return False
            child, parent = parent, parents.get(id(parent))
        return parent is function

    def _visit(
        self,
        current: ast.AST,
        kind: type,
        nested: bool,
        wanted: set[str],
        declared: frozenset[str],
    ) -> None:
        tracks = self.tracks_state
        receiver = self.receiver
        parents = self.parents
        if kind is ast.Name:
            assert isinstance(current, ast.Name)
            name = current.id
            loads = isinstance(current.ctx, ast.Load)
            if name in wanted:
                if loads:
                    self.reads.setdefault(name, []).append(current)
                else:
                    self.rebound.add(name)
            if tracks and not nested and name in declared:
                events = self.global_reads if loads else self.global_writes
                events.append((self._at(current, loads), name))
        elif kind is ast.Attribute and tracks and not nested:
            assert isinstance(current, ast.Attribute)
            value = current.value
            if isinstance(value, ast.Name) and value.id == receiver:
                if isinstance(current.ctx, ast.Load):
                    call = parents.get(id(current))
                    if not (isinstance(call, ast.Call) and call.func is current):
                        at = current.lineno, current.col_offset
                        self.state_reads.append((at, current.attr))  # not a method call
                else:
                    self.state_writes.append((self._at(current, False), current.attr))
        elif kind is ast.Subscript and tracks and not nested:
            assert isinstance(current, ast.Subscript)
            value = current.value
            if (
                not isinstance(current.ctx, ast.Load)
                and isinstance(value, ast.Attribute)
                and isinstance(value.value, ast.Name)
                and value.value.id == receiver
            ):
                self.state_writes.append((self._at(current, False), value.attr))
        elif wanted and kind in _BINDERS:
            self.rebound.update(wanted.intersection(spelled_names(current)))
        if tracks and not nested and kind in _SUSPENDS:
            self._suspends(current)

    def _at(self, node: ast.AST, loads: bool) -> Position:
        """Where a read happens (the node), or a write (the end of its statement: the value
        is computed first)."""
        if loads:
            return node.lineno, node.col_offset  # type: ignore[attr-defined]
        holder: ast.AST | None = node
        while holder is not None and not isinstance(holder, ast.stmt):
            holder = self.parents.get(id(holder))
        target = holder if holder is not None else node
        return target.end_lineno or 0, target.end_col_offset or 0  # type: ignore[attr-defined]

    def _suspends(self, node: ast.AST) -> None:
        if isinstance(node, (ast.Await, ast.Yield, ast.YieldFrom)):
            self.suspensions.append((node.end_lineno or 0, node.end_col_offset or 0))
            if isinstance(node, ast.Await) and isinstance(node.value, ast.Call):
                dotted = ast_dotted_name(node.value.func)
                head, _, rest = (dotted or "").partition(".")
                if head and head == self.receiver and rest:
                    self.awaits_on_receiver.append(rest)
        elif isinstance(node, ast.AsyncFor):
            self.suspensions.append((node.iter.end_lineno or 0, node.iter.end_col_offset or 0))
        elif isinstance(node, ast.AsyncWith):
            last = node.items[-1].context_expr
            self.suspensions.append((last.end_lineno or 0, last.end_col_offset or 0))
            for item in node.items:
                dotted = ast_dotted_name(item.context_expr)
                head, _, rest = (dotted or "").partition(".")
                if head and head == self.receiver and rest:
                    self.entered.append(rest)
        elif isinstance(node, ast.With):
            # `with (await self._lock):`, the pre-3.7 idiom, takes the lock too (its `await`
            # is a suspension of its own)
            for item in node.items:
                context = item.context_expr
                if isinstance(context, (ast.Await, ast.YieldFrom)):
                    dotted = ast_dotted_name(context.value)
                    head, _, rest = (dotted or "").partition(".")
                    if head and head == self.receiver and rest:
                        self.entered.append(rest)


_NESTED_KINDS = frozenset({ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef})
_SUSPENDS = frozenset({ast.Await, ast.Yield, ast.YieldFrom, ast.AsyncFor, ast.AsyncWith, ast.With})
_BINDERS = frozenset(
    {
        ast.arg,
        ast.FunctionDef,
        ast.AsyncFunctionDef,
        ast.ClassDef,
        ast.ExceptHandler,
        ast.alias,
        ast.Global,
        ast.Nonlocal,
        ast.MatchAs,
        ast.MatchStar,
        ast.MatchMapping,
    }
)
_BUILTIN_NAMES = frozenset(dir(builtins)) | CHECKER_BUILTINS
_COMPREHENSION_KINDS = frozenset({ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp})


def _runs_with(parent: ast.AST, child: ast.AST) -> bool:
    """Evaluating ``parent`` always evaluates ``child`` (a branch, a handler, a later operand
    of ``and``/``or``, a comprehension's element do not)."""
    kind = type(parent)
    if kind is ast.If or kind is ast.IfExp:
        return child is parent.test  # type: ignore[attr-defined]
    if kind is ast.Match:
        return child is parent.subject  # type: ignore[attr-defined]
    if kind is ast.Try:
        assert isinstance(parent, ast.Try)
        return any(child is s for s in parent.body) or any(child is s for s in parent.finalbody)
    if kind is ast.BoolOp:
        return child is parent.values[0]  # type: ignore[attr-defined]
    if kind is ast.comprehension:
        return child is parent.iter  # type: ignore[attr-defined]
    if kind in _COMPREHENSION_KINDS:
        return child is parent.generators[0]  # type: ignore[attr-defined]
    return True


#: the nodes ``_Summary._visit`` looks at
_VISITED = frozenset({ast.Name, ast.Attribute, ast.Subscript, *_BINDERS, *_SUSPENDS})


def spelled_names(node: ast.AST) -> list[str]:
    """The identifiers ``node`` itself holds as strings, not as ``Name`` children: a
    parameter, the names ``def``/``class``/``import``/``except ... as``/``global``/
    ``nonlocal``/a ``match`` capture bind (attribute and keyword names are not identifiers)."""
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.alias):
        return [node.name.split(".", 1)[0], *([node.asname] if node.asname else [])]
    if isinstance(node, ast.ImportFrom):
        return [node.module.split(".", 1)[0]] if node.module else []
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return list(node.names)
    if isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)):
        return [node.name] if node.name else []
    if isinstance(node, ast.MatchMapping):
        return [node.rest] if node.rest else []
    return []


def _declares_global(node: ast.AST) -> bool:
    return bool(_declared_globals(node))


def _declared_globals(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.AST) -> frozenset[str]:
    """The names the function's own body (not a nested function) declares ``global``."""
    found: set[str] = set()
    stack = list(getattr(node, "body", ()))
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Global):
            found.update(current.names)
        elif isinstance(current, ast.stmt) and type(current) not in _NESTED_KINDS:
            for name in ("body", "orelse", "finalbody"):
                stack.extend(getattr(current, name, ()))
            for handler in getattr(current, "handlers", ()):
                stack.extend(handler.body)
            for case in getattr(current, "cases", ()):
                stack.extend(case.body)
    return frozenset(found)


def _is_empty(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return all(
        isinstance(statement, ast.Pass)
        or (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant))
        for statement in node.body
    )


def _returns_self_only(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    body = node.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]
    positional = [*node.args.posonlyargs, *node.args.args]
    return (
        len(body) == 1
        and bool(positional)
        and isinstance(body[0], ast.Return)
        and isinstance(body[0].value, ast.Name)
        and body[0].value.id == positional[0].arg
    )


#: what CPython's parser says about code nested deeper than it (or LibCST) can follow
_TOO_DEEP_MESSAGES = (
    "too many nested parentheses",
    "too many levels of indentation",
    "too many statically nested blocks",
)


def too_deep(exc: BaseException) -> bool:
    """``ast.parse`` failed because the code nests too deeply: LibCST's parser must not be
    tried on it either (its native parser can overflow the C stack and crash the process)."""
    if isinstance(exc, (RecursionError, MemoryError)):
        return True
    return isinstance(exc, SyntaxError) and any(
        message in str(exc.msg) for message in _TOO_DEEP_MESSAGES
    )


def facts_from_source(text: str, path: Path) -> ModuleFact | None:
    """Facts of one file; None when neither ``ast`` nor LibCST can parse it."""
    name, is_package = module_name(path)
    tree: ast.Module | None
    try:
        tree = parse_ast(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        if too_deep(exc):
            return None
        tree = _ast_from_libcst(text)
    if tree is None:
        return None
    return facts_from_ast(tree, name, str(path), is_package)


def parse_ast(text: str) -> ast.Module:
    """``ast.parse``, also of the type-parameter syntax of Python 3.12 (PEP 695) on an older
    Python: when the text does not parse as it is, it is parsed without its ``type X = ...``
    keywords and the ``[T]`` after ``def``/``class`` names -- a tree for the index and the
    rules, which look at neither, with every other node where it is. Raises what
    ``ast.parse`` raises on the text as it is when that does not help."""
    try:
        return ast.parse(text)
    except SyntaxError as exc:
        if sys.version_info >= (3, 12) or too_deep(exc):
            raise
        # the quick cut first (most files), the careful one when that does not parse
        for cut in (_quick_without_type_parameters, _without_type_parameters):
            simpler = cut(text)
            if simpler is None:
                continue
            try:
                return ast.parse(simpler)
            except SyntaxError:
                continue
        raise exc from None


_DEFINITION = re.compile(r"\b(?:def|class)[ \t]+\w+[ \t]*\[")
_ALIAS = re.compile(r"^[ \t]*type[ \t]+\w+[ \t]*[\[=]", re.MULTILINE)
_CLOSERS = {"[": "]", "(": ")", "{": "}"}


def _quick_without_type_parameters(text: str) -> str | None:
    """``_without_type_parameters`` by a scan of the characters instead of ``tokenize`` (a
    tenth of the time): it may be fooled by the syntax inside strings, so the caller takes
    its result only when it parses, and cuts carefully otherwise."""
    chars = list(text)
    changed = False
    for match in _DEFINITION.finditer(text):
        opening = match.end() - 1
        closing = _matching(text, opening)
        if closing is None:
            return None
        for index in range(opening + 1, closing):
            if chars[index] not in "\r\n":
                chars[index] = " "
        chars[opening] = "("
        after = closing + 1
        while after < len(text) and text[after] in " \t":
            after += 1
        if after < len(text) and text[after] == "(":
            chars[closing] = " "
            chars[after] = " "  # the bases or parameters go on inside ours
        else:
            chars[closing] = ")"
        changed = True
    for match in _ALIAS.finditer(text):
        start = match.start() + len(match.group()) - len(match.group().lstrip(" \t"))
        name_start = start + len("type")
        while text[name_start] in " \t":
            name_start += 1
        name_end = name_start
        while name_end < len(text) and (text[name_end].isalnum() or text[name_end] == "_"):
            name_end += 1
        end = match.end() - 1
        if text[end] == "[":
            closing = _matching(text, end)
            if closing is None or "\n" in text[end:closing]:
                return None
            end = closing + 1
        name = text[name_start:name_end]
        for index in range(start, end):
            chars[index] = " "
        chars[start : start + len(name)] = list(name)
        changed = True
    return "".join(chars) if changed else None


def _matching(text: str, opening: int) -> int | None:
    """The index of the bracket that closes the one at ``opening`` (strings and comments
    skipped as far as a character scan can tell)."""
    stack = [_CLOSERS[text[opening]]]
    index = opening + 1
    length = len(text)
    while index < length:
        char = text[index]
        if char in "\"'":
            quote = char * 3 if text.startswith(char * 3, index) else char
            end = text.find(quote, index + len(quote))
            if end < 0:
                return None
            index = end + len(quote)
            continue
        if char == "#":
            end = text.find("\n", index)
            if end < 0:
                return None
            index = end
            continue
        if char in _CLOSERS:
            stack.append(_CLOSERS[char])
        elif char in ")]}":
            if char != stack.pop():
                return None
            if not stack:
                return index
        index += 1
    return None


def _without_type_parameters(text: str) -> str | None:
    """``text`` without PEP 695 syntax, every other character where it was (so positions in
    the tree are the text's), or None when there is none or ``tokenize`` fails:

    - ``def f[T](x):`` -> ``def f(   x):`` and ``class C[T](Base):`` -> ``class C(   Base):``
      (the list becomes the opening parenthesis and blanks; a list may span lines, inside
      the parenthesis);
    - ``class C[T]:`` -> ``class C(  ):``;
    - ``type X[T] = ...`` -> ``X         = ...`` (the name moves to where ``type`` was; the
      parameters of an alias must stay on its line)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    lines = [list(line) for line in python_lines(text, keepends=True)]
    changed = False

    def put(position: tuple[int, int], character: str) -> None:
        row, column = position
        lines[row - 1][column] = character

    def blank(start: tuple[int, int], end: tuple[int, int]) -> None:
        row, column = start
        while (row, column) < end:
            line = lines[row - 1]
            if column >= len(line):
                row, column = row + 1, 0
                continue
            if line[column] not in "\r\n":
                line[column] = " "
            column += 1

    statement_start = True
    index = 0
    count = len(tokens)
    while index < count:
        token = tokens[index]
        kind, string = token.type, token.string
        if kind in (tokenize.NL, tokenize.COMMENT):
            index += 1
            continue
        follows_name = index + 1 < count and tokens[index + 1].type == tokenize.NAME
        if kind == tokenize.NAME and string in ("def", "class") and follows_name:
            after = index + 2
            if after < count and tokens[after].string == "[":
                end = _closing(tokens, after)
                if end is None:
                    return None
                blank(tokens[after].start, tokens[end].end)
                put(tokens[after].start, "(")
                following = tokens[end + 1] if end + 1 < count else None
                if following is not None and following.string == "(":
                    put(following.start, " ")  # the bases or parameters go on inside ours
                else:
                    put(tokens[end].start, ")")
                changed = True
                index = end + 1
                statement_start = False
                continue
        if kind == tokenize.NAME and string == "type" and statement_start and follows_name:
            after = index + 2
            end = _closing(tokens, after) if tokens[after].string == "[" else after - 1
            if end is None:
                return None
            if end + 1 < count and tokens[end + 1].string == "=":
                name = tokens[index + 1]
                if tokens[end].end[0] != token.start[0] or name.start[0] != token.start[0]:
                    return None
                blank(token.start, tokens[end].end)
                row, column = token.start
                lines[row - 1][column : column + len(name.string)] = list(name.string)
                changed = True
                index = end + 1
                statement_start = False
                continue
        statement_start = kind in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT) or (
            kind == tokenize.OP and string == ";"
        )
        index += 1
    if not changed:
        return None
    return "".join("".join(line) for line in lines)


def _closing(tokens: list[tokenize.TokenInfo], opening: int) -> int | None:
    """The index of the ``]`` that closes the ``[`` at ``opening``."""
    depth = 0
    for index in range(opening, len(tokens)):
        string = tokens[index].string
        if tokens[index].type != tokenize.OP:
            continue
        if string in ("[", "(", "{"):
            depth += 1
        elif string in ("]", ")", "}"):
            depth -= 1
            if depth == 0:
                return index if string == "]" else None
    return None


def _ast_from_libcst(text: str) -> ast.Module | None:
    """For syntax newer than this Python that ``parse_ast`` cannot take either: LibCST parses
    it; keep only what ``ast`` can take.

    The definitions the index needs (``def``, ``class``, imports) are rebuilt by parsing each
    top-level statement's own code with ``ast`` (moved to the line it starts on); statements
    ``ast`` cannot parse (a PEP 695 ``type`` alias, say) are left out.
    """
    try:
        module = cst.parse_module(text)
    except (cst.ParserSyntaxError, RecursionError):
        return None
    body: list[ast.stmt] = []
    line = 1 + len(module.header)  # the line each statement's code (leading lines too) starts
    for statement in module.body:
        code = module.code_for_node(statement)
        try:
            parsed = ast.parse(code).body
        except (SyntaxError, ValueError, RecursionError):
            parsed = _class_stub(module, statement) if isinstance(statement, cst.ClassDef) else []
        for node in parsed:
            ast.increment_lineno(node, line - 1)
        body.extend(parsed)
        line += sum(end.endswith(("\n", "\r")) for end in python_lines(code, keepends=True))
    return ast.Module(body=body, type_ignores=[])


def _class_stub(module: cst.Module, node: cst.ClassDef) -> list[ast.stmt]:
    """A class whose body holds newer syntax: keep the methods ``ast`` can parse."""
    bases = ", ".join(module.code_for_node(arg.value) for arg in node.bases)
    try:
        stub = ast.parse(f"class {node.name.value}({bases}):\n    pass\n").body[0]
    except SyntaxError:
        return []
    assert isinstance(stub, ast.ClassDef)
    methods: list[ast.stmt] = []
    body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
    for statement in body:
        try:
            methods.extend(ast.parse(module.code_for_node(statement).strip("\n")).body)
        except (SyntaxError, ValueError, IndentationError):
            continue
    stub.body = methods or stub.body
    return [stub]


# -- the cache form: plain tuples and dicts (``marshal``-able), turned into facts on demand --

Raw = tuple[Any, ...]


def to_raw(module: ModuleFact) -> Raw:
    def function(fact: FunctionFact) -> Raw:
        return (
            fact.qualified,
            fact.is_coroutine,
            fact.line,
            fact.blocking,
            fact.calls,
            fact.returns,
            fact.returns_self_only,
            fact.awaits_on_self,
            fact.empty,
            fact.signature,
            fact.reads_before,
            fact.writes_after,
            fact.enters,
            fact.globals_read_before,
            fact.globals_written_after,
            fact.hands_out,
            fact.drops_on_self,
        )

    classes = {
        name: (
            cls.qualified,
            cls.bases,
            {method: function(fact) for method, fact in cls.methods.items()},
            sorted(cls.ambiguous),
        )
        for name, cls in module.classes.items()
    }
    return (
        module.name,
        module.path,
        module.is_package,
        {name: function(fact) for name, fact in module.functions.items()},
        classes,
        module.imports,
        sorted(module.ambiguous),
        module.star_imports,
        sorted(module.async_callbacks),
    )


def from_raw(raw: Raw) -> ModuleFact:
    name, path, is_package, functions, classes, imports, ambiguous, stars, callbacks = raw

    def function(item: Raw) -> FunctionFact:
        (qualified, is_coroutine, line, blocking, calls, returns, self_only, awaits, empty) = item[
            :9
        ]
        parameters, reads, writes, enters, global_reads, global_writes, hands_out, drops = item[9:]
        if not isinstance(parameters, str):
            raise ValueError("a signature is a text")  # an edited cache: never trusted
        return FunctionFact(
            qualified,
            is_coroutine,
            path,
            line,
            tuple(blocking),
            tuple(calls),
            returns,
            self_only,
            tuple(awaits),
            empty,
            parameters,
            tuple(reads),
            tuple(writes),
            tuple(enters),
            tuple(global_reads),
            tuple(global_writes),
            tuple(hands_out),
            tuple(drops),
        )

    module = ModuleFact(name, path, is_package)
    module.functions = {key: function(value) for key, value in functions.items()}
    for key, (qualified, bases, methods, class_ambiguous) in classes.items():
        module.classes[key] = ClassFact(
            qualified,
            list(bases),
            {method: function(value) for method, value in methods.items()},
            set(class_ambiguous),
        )
    module.imports = dict(imports)
    module.ambiguous = set(ambiguous)
    module.star_imports = list(stars)
    module.async_callbacks = set(callbacks)
    return module


#: how a parameter is passed, as one letter in the cache
_HOW = {
    "receiver": "r",
    "posonly": "o",
    "positional": "p",
    "vararg": "v",
    "kwonly": "k",
    "kwarg": "w",
}
_HOW_BACK = {letter: how for how, letter in _HOW.items()}


def _parameters_text(parameters: tuple[tuple[str, str, tuple[str, ...] | None], ...]) -> str:
    """``self:r:?|key:p:other,stored``: one string per function, not lists of lists (the
    summaries of every function of a project are many small objects otherwise)."""
    return "|".join(
        f"{name}:{_HOW[how]}:{'?' if kinds is None else ','.join(kinds)}"
        for name, how, kinds in parameters
    )


@functools.lru_cache(maxsize=8192)
def _parameters_from_text(text: str) -> tuple[tuple[str, str, tuple[str, ...] | None], ...]:
    if not text:
        return ()
    out: list[tuple[str, str, tuple[str, ...] | None]] = []
    for item in text.split("|"):
        name, how, kinds = item.split(":")
        out.append(
            (
                name,
                _HOW_BACK[how],
                None if kinds == "?" else tuple(kinds.split(",")) if kinds else (),
            )
        )
    return tuple(out)


#: the project-wide name sets: coroutine, blocking, resource and base class names, and the
#: qualified names of the sync functions and methods that block (``blocking_functions``)
Names = tuple[list[str], list[str], list[str], list[str], list[str]]
#: the kind of each name set, in that order: a dependency ``kind:name`` of a cached result
#: is whether the set of that kind has the name (``dependency_digest``)
NAME_KINDS = ("coroutine", "blocking", "resource", "subclassed", "blocks")


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one module adds to the project-wide name sets (``ProjectIndex.contribution``),
    made from its facts and those of the modules in ``consulted`` alone: while none of them
    changes, it holds (``engine.project`` keeps it between runs)."""

    coroutines: tuple[str, ...]
    bases: tuple[str, ...]
    resources: tuple[str, ...]
    #: its sync functions and methods that call a blocking API themselves (qualified)
    blockers: tuple[str, ...]
    #: (sync function or method, the sync project function it calls): qualified names
    calls: tuple[tuple[str, str], ...]
    #: the other modules looked up to make it (found or not)
    consulted: tuple[str, ...]


#: a module whose facts are still on disk: (name, path, digest of its facts)
Stub = tuple[str, str, str]
#: gives the raw facts of a stub (``engine`` reads them from the index cache)
Loader = Callable[[Stub], "Raw | None"]


class _Modules(dict[str, ModuleFact]):
    """Module name -> facts, turning cached raw tuples into facts only when asked (and
    fetching stubs' raw tuples from disk only then: a run whose results all come from the
    results cache never reads them)."""

    def __init__(
        self,
        raws: dict[str, Raw | None],
        ready: dict[str, ModuleFact],
        loader: Loader | None = None,
    ) -> None:
        super().__init__(ready)
        self._raws = raws
        self._loader = loader
        #: while recording, every module name looked up (found or not): what an analysis used
        self.consulted: set[str] | None = None

    def __contains__(self, key: object) -> bool:
        if self.consulted is not None and isinstance(key, str):
            self.consulted.add(key)
        return key in self._raws or super().__contains__(key)

    def __getitem__(self, key: str) -> ModuleFact:
        found = self.find(key)
        if found is None:
            raise KeyError(key)
        return found

    def get(self, key: str, default: Any = None) -> Any:
        found = self.find(key)
        return default if found is None else found

    def find(self, key: str) -> ModuleFact | None:
        if self.consulted is not None:
            self.consulted.add(key)
        if super().__contains__(key):
            return super().__getitem__(key)
        raw = self._raws.get(key)
        if raw is not None and len(raw) == 3 and self._loader is not None:
            # the stub stays: the facts made from what the loader reads are kept, not both
            raw = self._loader(raw)
            if raw is None:
                self._raws[key] = None
        if raw is None:
            return None
        try:
            module = from_raw(raw)
        except (TypeError, ValueError, AttributeError, KeyError):
            # facts read from a cache someone edited: the module is unknown, never trusted
            self._raws[key] = None
            return None
        self[key] = module
        return module

    def prime(self, raw: Raw, module: ModuleFact) -> None:
        """``module`` is what ``raw`` (given to the index) makes: kept, so that it is not
        made again from ``raw`` -- only when ``raw`` is the one the index holds under its
        name (the first of a name wins, whichever is at hand)."""
        if self._raws.get(module.name) is raw and not super().__contains__(module.name):
            super().__setitem__(module.name, module)

    def all(self) -> list[ModuleFact]:
        """Every module (for the project-wide name sets, which are not a per-file use)."""
        consulted, self.consulted = self.consulted, None
        try:
            return [self[name] for name in self._raws]
        finally:
            self.consulted = consulted

    def __iter__(self) -> Iterator[str]:
        return iter(self._raws)

    def __len__(self) -> int:
        return len(self._raws)


class ProjectIndex:
    """Facts of every module of the project, keyed by module name."""

    def __init__(
        self,
        modules: Iterable[ModuleFact] = (),
        raws: Iterable[Raw] = (),
        digests: Iterable[str] = (),
        loader: Loader | None = None,
    ) -> None:
        """``digests``, one per raw: a digest of its facts, for the results cache. A raw may
        be a ``Stub``, which ``loader`` turns into the raw when a rule first asks."""
        by_name: dict[str, Raw | None] = {}
        ready: dict[str, ModuleFact] = {}
        self._paths: dict[str, str] = {}
        #: module name -> digest of its facts ("" when unknown)
        self.digests: dict[str, str] = {}
        #: file path -> digest of its content, as read when the index was built
        self.contents: dict[str, str] = {}
        for module in modules:
            if module.name not in by_name:
                by_name[module.name] = None
                ready[module.name] = module
            self._paths[module.path] = module.name
        #: module names more than one file has (the first one given is the module)
        self.twice: set[str] = set()
        digest_list = list(digests)
        for position, raw in enumerate(raws):
            digest = digest_list[position] if position < len(digest_list) else ""
            if raw[0] not in by_name:
                by_name[raw[0]] = raw
                self.digests[raw[0]] = digest
            else:
                self.twice.add(raw[0])
            self._paths[raw[1]] = raw[0]
        self.modules = _Modules(by_name, ready, loader)
        self._coroutine_names: frozenset[str] | None = None
        self._base_names: frozenset[str] | None = None
        self._coroutine_methods: dict[str, frozenset[str]] = {}
        #: function -> (its blocking chain, the modules and dependency keys that took)
        self._chains: dict[str, tuple[tuple[str, ...] | None, frozenset[str], frozenset[str]]] = {}
        self._handing_out: dict[tuple[str, tuple[str, ...]], tuple[str, bool] | None] = {}
        self._blocking_names: frozenset[str] | None = None
        self._resource_names: frozenset[str] | None = None
        self._blocking_functions: frozenset[str] | None = None
        #: while recording, the ``kind:name`` keys of ``passed_over``
        self._passed_over: set[str] | None = None
        self._dependency_digests: dict[str, str] = {}
        self._state: str | None = None
        #: (the state of the index the caches were last written with, the dependencies
        #: whose digest may differ from what they were then), when the build knows them
        self.changed_since: tuple[str, frozenset[str]] | None = None

    def __len__(self) -> int:
        return len(self.modules)

    def state(self) -> str:
        """A digest of everything a dependency of a cached result can be (``dependency_digest``):
        every module's facts digest and the project-wide name sets. While it is the same, no
        cached result's dependencies changed (``cache.ResultCache``). "" when some module's
        facts have no digest (an index made from facts, not files): nothing is vouched for."""
        if self._state is None:
            if len(self.digests) != len(self.modules) or not all(self.digests.values()):
                self._state = ""
            else:
                digest = hashlib.sha256()
                for name in sorted(self.digests):
                    digest.update(f"{name}\0{self.digests[name]}\n".encode())
                for group in self.names():
                    digest.update("\0".join(group).encode() + b"\n")
                self._state = digest.hexdigest()[:16]
        return self._state

    def record(self) -> set[str]:
        """Start recording the modules lookups touch; returns the set that fills up (the
        names pre-filters pass over are recorded too, for ``dependencies``)."""
        consulted: set[str] = set()
        self.modules.consulted = consulted
        self._passed_over = set()
        return consulted

    def stop_recording(self) -> None:
        self.modules.consulted = None

    def passed_over(self, kind: str, name: str) -> None:
        """A pre-filter ruled out a call because no project function of this ``kind``
        ("coroutine", "blocking", "resource": the project-wide name sets) has ``name``. The
        file's result then depends on that staying so, whichever module would define it:
        recorded as the dependency ``kind:name`` (see ``dependency_digest``)."""
        if self.modules.consulted is not None and self._passed_over is not None:
            self._passed_over.add(f"{kind}:{name}")

    def dependency_digest(self, key: str) -> str:
        """What the results cache compares for a dependency: the digest of a module's facts,
        or for ``kind:name``, whether the project-wide name set of that kind has the name
        (each worked out once a run: a warm run asks for every file's dependencies)."""
        found = self._dependency_digests.get(key)
        if found is None:
            found = self._dependency_digests[key] = self._dependency_digest(key)
        return found

    def dependency_digests(self, keys: list[str]) -> list[str]:
        """``dependency_digest`` of each key (a warm run asks for some 360,000: the ones
        already worked out are looked up in one pass)."""
        memo = self._dependency_digests
        if not memo:
            memo.update(self.digests)  # every module's, at once
        found = list(map(memo.get, keys))  # all there after `prime_dependencies`
        if None in found:
            for position, value in enumerate(found):
                if value is None:
                    found[position] = self.dependency_digest(keys[position])
        return found  # type: ignore[return-value]

    def prime_dependencies(self, keys: set[str]) -> None:
        """Work out the digest of every key in ``keys`` at once (the dependencies of every
        cached result: a warm run of Home Assistant asks for some 65,000 distinct ones),
        with set and dict operations rather than a call for each."""
        memo = self._dependency_digests
        if not memo:
            memo.update(self.digests)
        missing = keys - memo.keys()
        plain = {key for key in missing if ":" not in key}
        memo.update(dict.fromkeys(plain, ""))  # a dotted name that is no module (now)
        by_kind: dict[str, list[tuple[str, str]]] = {}
        for key in missing - plain:
            kind, _, name = key.partition(":")
            by_kind.setdefault(kind, []).append((key, name))
        sets = dict(zip(NAME_KINDS, self._name_sets(), strict=True))
        for kind, items in by_kind.items():
            if kind not in sets:
                memo.update((key, "?") for key, _ in items)
                continue
            names = sets[kind]
            memo.update((key, "named" if name in names else "") for key, name in items)

    def _dependency_digest(self, key: str) -> str:
        kind, separator, name = key.partition(":")
        if not separator:
            return self.digests.get(key, "")
        if kind not in NAME_KINDS:
            return "?"
        names = self._name_sets()[NAME_KINDS.index(kind)]
        return "named" if name in names else ""

    def _name_sets(self) -> tuple[frozenset[str], ...]:
        """The project-wide name sets, in the order of ``NAME_KINDS``."""
        return (
            self.coroutine_names(),
            self.blocking_names(),
            self.resource_names(),
            self.base_names(),
            self.blocking_functions(),
        )

    def dependencies(self, module: ModuleFact, consulted: set[str]) -> list[str]:
        """What the last recorded analysis of ``module`` depends on: the project modules it
        looked up, and those it imports (with their packages), looked up or not -- a file a
        pre-filter passed over still depends on what it imports; then the ``kind:name``
        keys of the names its pre-filters passed over (``passed_over``)."""
        # a lookup tries many dotted names that are no module (`pkg.mod.Class.method`):
        # only the modules it found count
        found = {name for name in consulted if name in self.modules}
        for target in module.imports.values():
            absolute = self.absolute(target, module)
            parts = absolute.split(".") if absolute else []
            found.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
        found.discard(module.name)
        return sorted(found) + sorted(self._passed_over or ())

    def set_names(
        self,
        coroutine_names: Iterable[str],
        blocking_names: Iterable[str],
        resource_names: Iterable[str],
        base_names: Iterable[str],
        blocking_functions: Iterable[str],
    ) -> None:
        """The project-wide name sets (from a cache that is still valid, or just made)."""
        self._dependency_digests.clear()
        self._state = None
        self._coroutine_names = frozenset(coroutine_names)
        self._blocking_names = frozenset(blocking_names)
        self._resource_names = frozenset(resource_names)
        self._base_names = frozenset(base_names)
        self._blocking_functions = frozenset(blocking_functions)

    def names(self) -> Names:
        """The project-wide name sets, for ``set_names`` in a later run or another process."""
        if self._blocking_functions is None:
            self.names_from([self.contribution(m) for m in self.modules.all()])
        return (
            sorted(self.coroutine_names()),
            sorted(self.blocking_names()),
            sorted(self.resource_names()),
            sorted(self.base_names()),
            sorted(self.blocking_functions()),
        )

    def contribution(self, module: ModuleFact) -> Contribution:
        """What ``module`` adds to the project-wide name sets, and the modules that took."""
        consulted: set[str] = set()
        recording, self.modules.consulted = self.modules.consulted, consulted
        try:
            coroutines = set(module.async_callbacks)
            bases: set[str] = set()
            blockers: list[str] = []
            calls: list[tuple[str, str]] = []
            facts = list(module.functions.values())
            for cls in module.classes.values():
                facts.extend(cls.methods.values())
                bases.update(base.rsplit(".", 1)[-1] for base in cls.bases if base)
            for fact in facts:
                if fact.is_coroutine or fact.may_return_coroutine:
                    coroutines.add(fact.qualified.rsplit(".", 1)[1])
                if fact.is_coroutine:
                    continue
                if fact.blocking:
                    blockers.append(fact.qualified)
                    continue
                calls.extend(
                    (fact.qualified, c.qualified) for c in self._sync_callees(fact, module)
                )
            resources = [name for name, cls in module.classes.items() if self.resource_close(cls)]
        finally:
            self.modules.consulted = recording
        consulted.discard(module.name)
        return Contribution(
            tuple(sorted(coroutines)),
            tuple(sorted(bases)),
            tuple(sorted(resources)),
            tuple(blockers),
            tuple(calls),
            tuple(sorted(consulted)),
        )

    def names_from(self, contributions: Iterable[Contribution]) -> None:
        """The project-wide name sets from every module's contribution. A sync function
        blocks when some chain of the project calls it makes leads to one that calls a
        blocking API itself (what it reaches, whatever order it is asked in)."""
        coroutines: set[str] = set()
        bases: set[str] = set()
        resources: set[str] = set()
        blocking: set[str] = set()
        callers: dict[str, list[str]] = {}
        for part in contributions:
            coroutines.update(part.coroutines)
            bases.update(part.bases)
            resources.update(part.resources)
            blocking.update(part.blockers)
            for caller, callee in part.calls:
                callers.setdefault(callee, []).append(caller)
        stack = list(blocking)
        while stack:
            for caller in callers.get(stack.pop(), ()):
                if caller not in blocking:
                    blocking.add(caller)
                    stack.append(caller)
        blocking_names = {q.rsplit(".", 1)[1] for q in blocking}
        self.set_names(coroutines, blocking_names, resources, bases, blocking)

    def blocking_functions(self) -> frozenset[str]:
        """The qualified names of the project's sync functions and methods that block."""
        if self._blocking_functions is None:
            self.names()
        assert self._blocking_functions is not None
        return self._blocking_functions

    def _sync_callees(
        self, fact: FunctionFact, module: ModuleFact | None
    ) -> Iterator[FunctionFact]:
        """The sync project functions ``fact`` calls on every run, in the order it calls them."""
        for call in fact.calls:
            target = self.absolute(call, module) if module is not None else call
            callee = self.function(target) if target else None
            if callee is not None and not callee.is_coroutine:
                yield callee

    def module_name_of(self, path: str) -> str:
        """The module name the file at ``path`` has in the project, "" when it is none."""
        return self._paths.get(path, "")

    def module_of(self, path: str) -> ModuleFact | None:
        name = self._paths.get(path)
        module = self.modules.find(name) if name is not None else None
        return module if module is not None and module.path == path else None

    def absolute(self, target: str, module: ModuleFact) -> str | None:
        """``pkg.client.connect`` for ``.client.connect`` imported in ``pkg.handlers``."""
        if not target.startswith("."):
            return target
        level = len(target) - len(target.lstrip("."))
        package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
        if level - 1 > len(package):
            return None
        base = package[: len(package) - (level - 1)]
        rest = target[level:]
        return ".".join([*base, rest] if rest else base) or None

    def _lookup(
        self, qualified: str, hops: int = 0
    ) -> ModuleFact | FunctionFact | ClassFact | None:
        """What a dotted name of the project is: a module, a function, a class or a method."""
        if hops > MAX_HOPS:
            return None
        if qualified in self.modules:
            return self.modules[qualified]
        owner_name, _, attribute = qualified.rpartition(".")
        if not owner_name:
            return None
        owner = self._lookup(owner_name, hops + 1)
        if isinstance(owner, ModuleFact):
            return self._attribute(owner, attribute, hops + 1)
        if isinstance(owner, ClassFact):
            return self.method(owner, attribute)
        return None

    def _attribute(
        self, module: ModuleFact, attribute: str, hops: int
    ) -> ModuleFact | FunctionFact | ClassFact | None:
        if attribute in module.ambiguous:
            return None
        if attribute in module.functions:
            return module.functions[attribute]
        if attribute in module.classes:
            return module.classes[attribute]
        if attribute in module.imports:
            target = self.absolute(module.imports[attribute], module)
            return self._lookup(target, hops + 1) if target else None
        submodule = self.modules.find(f"{module.name}.{attribute}")
        if submodule is not None and module.is_package:
            return submodule  # `import pkg` then `pkg.mod.f()`, once pkg.mod is imported
        if not attribute.startswith("_"):
            # `from .client import *` (what a package's __init__ often does)
            for star in module.star_imports:
                source = self.absolute(star, module)
                found = self._lookup(f"{source}.{attribute}", hops + 1) if source else None
                if found is not None:
                    return found
        return None

    def function(self, qualified: str) -> FunctionFact | None:
        found = self._lookup(qualified)
        return found if isinstance(found, FunctionFact) else None

    def class_(self, qualified: str) -> ClassFact | None:
        found = self._lookup(qualified)
        return found if isinstance(found, ClassFact) else None

    def method(self, cls: ClassFact | None, name: str) -> FunctionFact | None:
        """``name`` as ``cls`` gets it by the MRO (depth-first, left to right, which agrees
        with C3 for the hierarchies this needs); None when a base that is not in the project
        comes before the class that defines it."""
        found = self.method_lookup(cls, name)
        return found if isinstance(found, FunctionFact) else None

    def method_lookup(self, cls: ClassFact | None, name: str) -> FunctionFact | str:
        """As ``method``, with why nothing was found: "missing" (no class of the chain
        defines it), "ambiguous" (a class binds it more than once, or not only with
        ``def``), "unknown" (a base outside the project comes first, or no class)."""
        seen: set[str] = set()

        def search(fact: ClassFact) -> FunctionFact | str | None:
            if fact.qualified in seen:
                return None
            seen.add(fact.qualified)
            if name in fact.ambiguous:
                return "ambiguous"
            if name in fact.methods:
                return fact.methods[name]
            module_name_, _, _ = fact.qualified.rpartition(".")
            module = self.modules.find(module_name_)
            for base in fact.bases:
                if base in NEUTRAL_BASES:
                    continue
                if module is None:
                    return "unknown"
                resolved = self._resolve_base(base, module)
                if resolved is None:
                    return "unknown"  # a base from outside the project may define it
                found = search(resolved)
                if found is not None:
                    return found
            return None

        if cls is None:
            return "unknown"
        result = search(cls)
        return "missing" if result is None else result

    def is_async_callback_alias(self, qualified: str, hops: int = 0) -> bool:
        """``pkg.typedefs.Handler`` is a module-level type alias of an async callback
        (``ModuleFact.async_callbacks``), there or where a module it is imported from says."""
        owner, _, name = qualified.rpartition(".")
        module = self.modules.find(owner) if owner else None
        if module is None:
            return False
        if name in module.async_callbacks:
            return True
        target = module.imports.get(name)
        if target is None or hops >= MAX_HOPS:
            return False
        absolute = self.absolute(target, module)
        return absolute is not None and self.is_async_callback_alias(absolute, hops + 1)

    def inherited(self, cls: ClassFact, name: str) -> FunctionFact | str:
        """What ``cls`` would get for ``name`` from its bases (what its own definition
        overrides): as ``method_lookup``, starting after the class itself."""
        module = self.modules.find(cls.qualified.rpartition(".")[0])
        for base in cls.bases:
            if base in NEUTRAL_BASES:
                continue
            resolved = self._resolve_base(base, module) if module is not None else None
            if resolved is None:
                return "unknown"
            found = self.method_lookup(resolved, name)
            if found != "missing":
                return found
        return "missing"

    def ancestry(self, cls: ClassFact) -> list[ClassFact]:
        """``cls`` and the project classes it inherits from (those that resolve), depth
        first."""
        found: list[ClassFact] = []
        seen: set[str] = set()
        stack = [cls]
        while stack:
            current = stack.pop()
            if current.qualified in seen:
                continue
            seen.add(current.qualified)
            found.append(current)
            module = self.modules.find(current.qualified.rpartition(".")[0])
            if module is None:
                continue
            for base in reversed(current.bases):
                resolved = self._resolve_base(base, module) if base not in NEUTRAL_BASES else None
                if resolved is not None:
                    stack.append(resolved)
        return found

    def _resolve_base(self, base: str, module: ModuleFact) -> ClassFact | None:
        return self.class_(f"{module.name}.{base}") if base else None

    def has_subclasses(self, cls: ClassFact) -> bool:
        """Some project class may name ``cls`` as a base: its name is the last part of a base
        of some class (a same-named class elsewhere counts too: a fix is then not offered).
        The answer is a dependency of the file asking, ``subclassed:<name>``: a subclass
        added in any module checks that file again."""
        name = cls.qualified.rsplit(".", 1)[-1]
        self.passed_over("subclassed", name)
        return name in self.base_names()

    def base_names(self) -> frozenset[str]:
        """The last part of every base class some project class names (a project-wide name
        set, like the others: made once and kept in the index cache)."""
        if self._base_names is None:
            self.names()
        assert self._base_names is not None
        return self._base_names

    def blocking_chain(self, fact: FunctionFact) -> tuple[str, ...] | None:
        """How a sync project function blocks: ``("load_config", "_read", "builtins.open")``
        -- the function, the project functions it goes through, the blocking API -- or None.
        The first way in the order of its calls, depth first, through functions that block
        (``blocking_functions``): the same whichever function is asked about first. What
        the answer took is a dependency of the file asking (``blocks:<function>``)."""
        memo = self._chains.get(fact.qualified)
        if memo is None:
            # what the answer takes is kept with it, for every file that asks again
            outer = self.modules.consulted, self._passed_over
            self.modules.consulted, self._passed_over = set(), set()
            try:
                found = self._blocking_chain(fact)
            finally:
                touched, keys = self.modules.consulted, self._passed_over
                self.modules.consulted, self._passed_over = outer
            memo = self._chains[fact.qualified] = (found, frozenset(touched), frozenset(keys))
        if self.modules.consulted is not None and self._passed_over is not None:
            self.modules.consulted.update(memo[1])
            self._passed_over.update(memo[2])
        return memo[0]

    def _blocking_chain(self, fact: FunctionFact) -> tuple[str, ...] | None:
        blocking = self.blocking_functions()
        visited: set[str] = set()

        def chain(current: FunctionFact) -> tuple[str, ...] | None:
            visited.add(current.qualified)
            short = current.qualified.rsplit(".", 1)[1]
            if current.blocking:
                return (short, current.blocking[0])
            module = self.modules.find(_module_part(current.qualified, self.modules))
            for callee in self._sync_callees(current, module):
                self.passed_over("blocks", callee.qualified)
                if callee.qualified in visited or callee.qualified not in blocking:
                    continue
                rest = chain(callee)
                if rest is not None:
                    return (short, *rest)
            return None

        self.passed_over("blocks", fact.qualified)
        return chain(fact) if fact.qualified in blocking else None

    def declared_coroutine(self, qualified: str, library: CoroutineFunctions) -> str | None:
        """The declaration (``coroutine-functions``) that makes ``qualified`` (absolute) a
        coroutine function, or None; never for a name of the project's own modules."""
        pattern = library.declared(qualified)
        if pattern is None or _module_part(qualified, self.modules) != "":
            return None
        return pattern

    def hands_out_coroutine(
        self, fact: FunctionFact, library: CoroutineFunctions
    ) -> tuple[str, bool] | None:
        """A sync project function that returns a coroutine: (the coroutine function whose
        coroutine it returns, whether it does on every path -- else it returns None on the
        others), or None when some path returns anything else. ``library``: the library
        coroutine functions, and the declared ones. Through sync functions that do the same
        (``return helper()``)."""
        key = (fact.qualified, library.patterns)
        if key in self._handing_out:
            return self._handing_out[key]
        self._handing_out[key] = None  # a cycle ends here
        found: tuple[str, bool] | None = None
        if fact.may_return_coroutine and not fact.is_coroutine:
            module = self.modules.find(_module_part(fact.qualified, self.modules))
            always = "None" not in fact.hands_out
            first: str | None = None
            for entry in fact.hands_out:
                if entry == "None":
                    continue
                target = self.absolute(entry, module) if module is not None else entry
                if target is None:
                    first = None
                    break
                if target in library:
                    first = first or target
                    continue
                callee = self.function(target)
                if callee is not None and callee.is_coroutine:
                    first = first or callee.qualified
                    continue
                if self.declared_coroutine(target, library):
                    first = first or target
                    continue
                inner = self.hands_out_coroutine(callee, library) if callee else None
                if inner is None:
                    first = None
                    break
                first = first or inner[0]
                always = always and inner[1]
            if first is not None:
                found = (first, always)
        self._handing_out[key] = found
        return found

    def is_async_context_manager(self, cls: ClassFact) -> bool:
        """``async with`` works on instances: ``__aenter__`` and ``__aexit__`` are coroutines."""
        enter, exit_ = self.method(cls, "__aenter__"), self.method(cls, "__aexit__")
        return bool(enter and exit_ and enter.is_coroutine and exit_.is_coroutine)

    def resource_close(self, cls: ClassFact) -> tuple[str, ...]:
        """How an instance of ``cls`` is closed, when it is an async resource: an async context
        manager whose ``__aexit__`` awaits ``self.close()``/``self.aclose()`` (-> "close"), or
        the close of something it holds (``self.session.close()`` -> "session.close"); empty
        when it is not one."""
        if not self.is_async_context_manager(cls):
            return ()
        exit_ = self.method(cls, "__aexit__")
        paths = exit_.awaits_on_self if exit_ is not None else ()
        closing = tuple(p for p in paths if p.rsplit(".", 1)[-1] in ("close", "aclose"))
        own = tuple(p for p in closing if "." not in p)
        if own:
            fact = self.method(cls, own[0])
            # a close that does nothing (a test double) leaves nothing open
            return own[:1] if fact is not None and fact.is_coroutine and not fact.empty else ()
        return closing

    def resource_closers(self, cls: ClassFact, closes: tuple[str, ...]) -> frozenset[str]:
        """The coroutine methods of ``cls`` (its own and inherited) that close an instance by
        awaiting one of ``closes`` on it (``async def stop(self): await self.close()``)."""
        found: set[str] = set()
        for name in self.coroutine_methods(cls):
            method = self.method(cls, name)
            if (
                name not in closes
                and method is not None
                and any(path in closes for path in method.awaits_on_self)
            ):
                found.add(name)
        return frozenset(found)

    def resource_names(self) -> frozenset[str]:
        """Names of the project's async resource classes (a cheap pre-filter for AF501)."""
        if self._resource_names is None:
            self.names()
        assert self._resource_names is not None
        return self._resource_names

    def blocking_names(self) -> frozenset[str]:
        """Names of the project's sync functions and methods that block (a cheap pre-filter)."""
        if self._blocking_names is None:
            self.names()
        assert self._blocking_names is not None
        return self._blocking_names

    def coroutine_methods(self, cls: ClassFact) -> frozenset[str]:
        """Names of the coroutine methods ``cls`` has, its project bases' included."""
        cached = self._coroutine_methods.get(cls.qualified)
        if cached is not None:
            return cached
        self._coroutine_methods[cls.qualified] = frozenset()  # a cycle ends here
        names = {name for name, fact in cls.methods.items() if fact.is_coroutine}
        module = self.modules.find(cls.qualified.rpartition(".")[0])
        for base in cls.bases:
            resolved = self._resolve_base(base, module) if module and base else None
            if resolved is not None:
                names |= self.coroutine_methods(resolved)
        result = frozenset(names)
        self._coroutine_methods[cls.qualified] = result
        return result

    def coroutine_names(self) -> frozenset[str]:
        """Every name a coroutine function or method of the project is defined under, a
        sync one that may return a coroutine, or an async callback type alias (a cheap
        pre-filter for files that might call one)."""
        if self._coroutine_names is None:
            self.names()
        assert self._coroutine_names is not None
        return self._coroutine_names


def _module_part(qualified: str, modules: dict[str, ModuleFact]) -> str:
    """The module a function or method's qualified name belongs to."""
    parts = qualified.split(".")
    for end in range(len(parts) - 1, 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return ""
