"""Stdlib-``ast`` pre-filters: can a rule find anything in this file at all?

Parsing a file with LibCST costs several times what ``ast.parse`` does, and most files hold
no finding. Each function here answers, on the stdlib tree, whether a rule's shape is present
at all. They may say yes wrongly, never no: ``tests/test_prefilters.py``,
``tests/test_project_fixtures.py`` and ``scripts/prefilter_check.py`` (a whole corpus,
findings with the pre-filters on and off) hold them to it.

Races (AF401, AF402, AF403): ``races.py`` finds a race with a walk over the LibCST tree that
goes through each ``async def`` in source order. A race needs a read of some shared location
(``self.x``, a module variable) where that walk reads -- a test of ``if``/``while``, or the
value of a local that does not await -- and, after both that read and a suspension, a write of
the same location in the function, or an awaited ``self.m()`` of a class method that writes it.
Where it is unsure (a tuple target, a lock) this counts the race as possible.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from asyncfix.analysis.values import flatten_target
from asyncfix.codemods.base import ast_facts, ast_memo, ast_of_type
from asyncfix.index import ast_dotted_name

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
#: a key of a module-level name (as in ``races.NAME_KEY``); attribute keys are plain names
_NAME = "$"


@dataclass
class _Function:
    node: ast.AsyncFunctionDef
    #: the class whose body holds the function directly (a method), if any
    owner: ast.ClassDef | None
    receiver: str | None
    #: where the function first suspends (``await``, ``async for``/``with``), if it does
    suspends: tuple[int, int] | None = None
    #: where the last ``await <receiver>.m(...)`` ends, if there is one
    awaits_self: tuple[int, int] | None = None
    #: key -> where it is first read
    reads: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: key -> where the last statement that writes it ends
    writes: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: AF403's shape: an assignment whose value awaits, to a target that may be shared
    augmented: bool = False


@dataclass(frozen=True)
class RaceShapes:
    #: some async function may hold an AF401/AF402 race
    race: bool
    #: some async function may hold an AF403 update across an ``await``
    augmented: bool


def race_shapes(tree: ast.Module, serialized_bases: frozenset[str]) -> RaceShapes:
    """What the race rules could find in ``tree`` (``serialized_bases``: classes whose
    methods a framework runs one at a time, as in ``races.serialized``)."""
    result: RaceShapes = ast_memo(tree, "race-shapes", lambda: _race_shapes(tree, serialized_bases))
    return result


def _race_shapes(tree: ast.Module, serialized_bases: frozenset[str]) -> RaceShapes:
    module_names = _module_assigned(tree)
    owners: dict[int, ast.ClassDef] = {}
    for cls in ast_of_type(tree, ast.ClassDef):
        assert isinstance(cls, ast.ClassDef)
        for statement in cls.body:
            if isinstance(statement, ast.AsyncFunctionDef):
                # a method is a function straight in a class body (`races.class_facts`)
                owners[id(statement)] = cls
    functions = [_facts(node, owners.get(id(node)), module_names) for node in async_functions(tree)]
    # what the async methods of each class write (an awaited `self.m()` writes it)
    class_writes: dict[int, set[str]] = {}
    for function in functions:
        if function.owner is not None:
            class_writes.setdefault(id(function.owner), set()).update(function.writes.keys())
    race = augmented = False
    for function in functions:
        augmented = augmented or function.augmented
        if race or function.suspends is None:
            continue
        if (
            function.owner is not None
            and function.receiver is not None
            and _serialized(function.owner, serialized_bases)
        ):
            continue  # `races.module_races` skips its methods (a static one is a function)
        # `races.MethodWalk` goes through a function in source order (each loop body once):
        # a race writes after both the read or test and a suspension (on any path)
        suspends = function.suspends
        if any(
            function.reads[key] < written and suspends < written
            for key, written in function.writes.items()
            if key in function.reads
        ):
            race = True
        elif function.awaits_self is not None and function.owner is not None:
            # an awaited `self.m()` suspends, then writes what `m` writes
            awaited = function.awaits_self
            written_by_methods = class_writes.get(id(function.owner), set())
            race = any(
                function.reads[key] < awaited for key in written_by_methods & function.reads.keys()
            )
    return RaceShapes(race, augmented)


def _serialized(cls: ast.ClassDef, bases: frozenset[str]) -> bool:
    for base in cls.bases:
        spelled = ast_dotted_name(base)
        if spelled is not None and spelled.rsplit(".", 1)[-1] in bases:
            return True
    return False


def _module_assigned(tree: ast.Module) -> frozenset[str]:
    """Names the module binds by assignment anywhere at module level (``races`` shares a
    module variable whose every binding is an assignment: a superset of those)."""
    names: set[str] = set()
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, _SCOPES):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        stack.extend(ast.iter_child_nodes(node))
    return frozenset(names)


def _children(node: ast.AST) -> list[ast.AST]:
    """``ast.iter_child_nodes`` as a list, without the ``Load``/``Store`` markers."""
    out: list[ast.AST] = []
    for name in node._fields:
        if name == "ctx":
            continue
        value = getattr(node, name, None)
        if type(value) is list:
            out.extend(item for item in value if isinstance(item, ast.AST))
        elif isinstance(value, ast.AST):
            out.append(value)
    return out


def _receiver(node: ast.AsyncFunctionDef) -> str | None:
    arguments = [*node.args.posonlyargs, *node.args.args]
    if not arguments:
        return None
    if any(ast_dotted_name(d) == "staticmethod" for d in node.decorator_list):
        return None
    return arguments[0].arg


def _facts(
    node: ast.AsyncFunctionDef, owner: ast.ClassDef | None, module_names: frozenset[str]
) -> _Function:
    receiver = _receiver(node)
    function = _Function(node, owner, receiver)
    nodes = own_nodes(node, _FUNCTIONS)
    declared: set[str] = set()
    for inner in nodes:
        if isinstance(inner, (ast.Global, ast.Nonlocal)):
            declared.update(inner.names)
    shared = module_names | declared
    #: assignment targets and where the statement that assigns them ends
    targets: list[tuple[ast.expr, tuple[int, int]]] = []
    #: where `races.MethodWalk` reads shared state: the tests of `if`/`while` (AF402) and
    #: the values of assignments to locals that do not await (AF401, and locals tested later)
    read_from: list[ast.expr] = []
    for inner in nodes:
        if isinstance(inner, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
            where = _start(inner)
            if function.suspends is None or where < function.suspends:
                function.suspends = where
            if (
                isinstance(inner, ast.Await)
                and isinstance(inner.value, ast.Call)
                and isinstance(inner.value.func, ast.Attribute)
                and isinstance(inner.value.func.value, ast.Name)
                and inner.value.func.value.id == receiver
            ):
                end = _end(inner)
                if function.awaits_self is None or end > function.awaits_self:
                    function.awaits_self = end
        if isinstance(inner, (ast.If, ast.While)):
            read_from.append(inner.test)
        elif isinstance(inner, ast.Assign):
            if not _resets(inner.value):
                # a reset (`self.x = None` after awaiting) is neither the update nor the act
                targets.extend((target, _end(inner)) for target in inner.targets)
            if _assigns_local(inner.targets) and not _awaits(inner.value):
                read_from.append(inner.value)
            if (
                len(inner.targets) == 1
                and _shared_target(inner.targets[0], receiver, declared)
                and _awaits(inner.value)
            ):
                function.augmented |= _may_reread(inner.targets[0], inner.value)
        elif isinstance(inner, ast.AnnAssign):
            if inner.value is None or not _resets(inner.value):
                targets.append((inner.target, _end(inner)))
            if (
                inner.value is not None
                and _assigns_local([inner.target])
                and not _awaits(inner.value)
            ):
                read_from.append(inner.value)
        elif isinstance(inner, ast.AugAssign):
            if not _resets(inner.value):
                targets.append((inner.target, _end(inner)))
            if _shared_target(inner.target, receiver, declared) and _awaits(inner.value):
                function.augmented = True
    for target, end in targets:
        for element in flatten_target(target):
            key = _written(element, receiver, shared, declared)
            if key is not None and (key not in function.writes or function.writes[key] < end):
                function.writes[key] = end
    reads = function.reads
    for expression in read_from:
        stack: list[ast.AST] = [expression]
        while stack:
            inner = stack.pop()
            if isinstance(inner, _FUNCTIONS):
                continue
            key = None
            if isinstance(inner, ast.Attribute):
                value = inner.value
                if isinstance(value, ast.Name) and value.id == receiver:
                    key = inner.attr
            elif isinstance(inner, ast.Name) and inner.id in shared:
                key = _NAME + inner.id
            if key is not None:
                where = _start(inner)
                if key not in reads or where < reads[key]:
                    reads[key] = where
            stack.extend(_children(inner))
    return function


def _assigns_local(targets: list[ast.expr]) -> bool:
    """Some target is a plain name, alone or unpacked (``races.MethodWalk`` remembers what a
    local was read from)."""
    return any(isinstance(e, ast.Name) for target in targets for e in flatten_target(target))


def _resets(value: ast.expr | None) -> bool:
    """``races._resets`` on the stdlib tree: ``None``, ``False``, an empty literal, ``list()``
    and its kin."""
    if isinstance(value, ast.Constant):
        return value.value is None or value.value is False
    if isinstance(value, (ast.List, ast.Tuple, ast.Set)):
        return not value.elts
    if isinstance(value, ast.Dict):
        return not value.keys
    if isinstance(value, ast.Call) and not value.args and not value.keywords:
        return ast_dotted_name(value.func) in ("list", "dict", "set", "tuple")
    return False


def _start(node: ast.AST) -> tuple[int, int]:
    return node.lineno, node.col_offset  # type: ignore[attr-defined]


def _end(node: ast.AST) -> tuple[int, int]:
    return node.end_lineno or node.lineno, node.end_col_offset or 0  # type: ignore[attr-defined]


def _written(
    target: ast.expr, receiver: str | None, shared: frozenset[str], declared: set[str]
) -> str | None:
    """The key a target writes: ``x`` for ``self.x``/``self.x[k]``, ``$X`` for a declared
    ``global X`` or ``X[k]`` of a module variable."""
    if isinstance(target, ast.Subscript):
        target = target.value
        if isinstance(target, ast.Name):
            return _NAME + target.id if target.id in shared else None
    if isinstance(target, ast.Attribute):
        value = target.value
        if isinstance(value, ast.Name) and value.id == receiver:
            return target.attr
        return None
    if isinstance(target, ast.Name) and target.id in declared:
        return _NAME + target.id
    return None


def _awaits(value: ast.AST | None) -> bool:
    if value is None:
        return False
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Await):
            return True
        if isinstance(node, _FUNCTIONS):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


def _shared_target(target: ast.expr, receiver: str | None, declared: set[str]) -> bool:
    """AF403's shared targets (``shared_state._shared``): ``self.x``, ``self.x[k]`` and a
    declared ``global``/``nonlocal`` name."""
    if isinstance(target, ast.Name):
        return target.id in declared
    if isinstance(target, ast.Subscript):
        target = target.value
    return (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == receiver
    )


def _may_reread(target: ast.expr, value: ast.expr) -> bool:
    """``self.x = self.x + await f()``: the target spelled the same in the value, outside
    what is awaited (``shared_state._reads_before`` stops at the first ``await``; this only
    skips the awaited parts)."""
    spelled: str | None = None
    stack: list[ast.AST] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Await, *_FUNCTIONS)):
            continue
        if type(node) is type(target) and _last(node) == _last(target):
            if spelled is None:
                spelled = ast.unparse(target)
            if ast.unparse(node) == spelled:
                return True
        stack.extend(ast.iter_child_nodes(node))
    return False


def _last(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


# -- AF305 ------------------------------------------------------------------------------------

#: the names a handler must mention to catch cancellation (``swallowed_cancellation``)
_CATCHES_CANCELLATION = frozenset({"BaseException", "CancelledError"})


def async_functions(tree: ast.Module) -> list[ast.AsyncFunctionDef]:
    def compute() -> list[ast.AsyncFunctionDef]:
        return [
            n
            for n in ast_of_type(tree, ast.AsyncFunctionDef)
            if isinstance(n, ast.AsyncFunctionDef)
        ]

    result: list[ast.AsyncFunctionDef] = ast_memo(tree, "async-functions", compute)
    return result


def own_nodes(
    function: ast.AsyncFunctionDef | ast.FunctionDef,
    stop: tuple[type[ast.AST], ...] = _SCOPES,
) -> list[ast.AST]:
    """The nodes of ``function``'s body, not of the functions, lambdas and classes nested in
    it (``races.in_order``); with ``stop=_FUNCTIONS``, those of nested classes too (the race
    walk's ``suspensions`` and ``reads_of`` enter class bodies)."""
    out: list[ast.AST] = []
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        out.append(node)
        if isinstance(node, stop):
            continue
        stack.extend(_children(node))
    return out


# -- AF502 ------------------------------------------------------------------------------------


# -- AF201-AF204 ------------------------------------------------------------------------------


def _file_names(tree: ast.Module) -> tuple[set[str], set[str], dict[str, set[str]]]:
    """Names the file mentions (names, attributes, imported names, words of strings), the
    names its imports bind, and for each imported name the other names it is bound as."""

    def compute() -> tuple[set[str], set[str], dict[str, set[str]]]:
        mentioned: set[str] = set()
        imported: set[str] = set()
        aliases: dict[str, set[str]] = {}
        for node in ast_of_type(tree, ast.Import, ast.ImportFrom):
            assert isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names:
                mentioned.add(alias.name)
                imported.add(alias.asname or alias.name.split(".", 1)[0])
                if alias.asname and isinstance(node, ast.ImportFrom):
                    aliases.setdefault(alias.name, set()).add(alias.asname)
        for node in ast_of_type(tree, ast.Name):
            assert isinstance(node, ast.Name)
            mentioned.add(node.id)
        for node in ast_of_type(tree, ast.Attribute):
            assert isinstance(node, ast.Attribute)
            mentioned.add(node.attr)
        for node in ast_of_type(tree, ast.Constant):
            assert isinstance(node, ast.Constant)
            if isinstance(node.value, str):
                words = node.value.replace("[", " ").replace("]", " ").split()
                mentioned.update(words)
                mentioned.update(part for word in words for part in word.split("."))
        return mentioned, imported, aliases

    result: tuple[set[str], set[str], dict[str, set[str]]] = ast_memo(tree, "file-names", compute)
    return result


def may_call_blocking(
    tree: ast.Module, functions: frozenset[str], methods: dict[str, frozenset[str]]
) -> bool:
    """A call under an ``async def`` of a catalogue function (its last name is in
    ``functions``, called by a name an import binds or through an imported module), or of a
    catalogue method
    (``methods``: library class -> method names) where the file names that class: a
    receiver only has a library class when the file constructs or annotates it."""
    mentioned, imported, import_aliases = _file_names(tree)
    aliases = set(functions)
    for name in functions:
        aliases.update(import_aliases.get(name, ()))
    called: set[str] = set()
    for cls, names in methods.items():
        if cls.rsplit(".", 1)[1] in mentioned:
            called |= names
    for node, _, under_async, _, _ in ast_facts(tree).calls:
        if not under_async:
            continue
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in aliases:
                return True
        elif isinstance(func, ast.Attribute):
            if func.attr in called:
                return True
            if func.attr in functions:
                # `requests.get(...)`, `os.path.join`: reached through an imported module
                head = func.value
                while isinstance(head, ast.Attribute):
                    head = head.value
                if isinstance(head, ast.Name) and head.id in imported:
                    return True
    return False


# -- AF301 ------------------------------------------------------------------------------------


# -- AF304 ------------------------------------------------------------------------------------


# -- AF404 ------------------------------------------------------------------------------------


# -- AF405, AF406 -----------------------------------------------------------------------------


def _assigned_from_call(tree: ast.Module, last_names: frozenset[str]) -> bool:
    """An assignment from a call whose callee ends in one of ``last_names`` (or an import
    alias of one): how a lock attribute or name gets its kind in ``races.class_facts`` and
    ``ThreadLockAcrossAwait._thread_lock``."""
    names = set(last_names)
    for node in ast_of_type(tree, ast.ImportFrom):
        assert isinstance(node, ast.ImportFrom)
        names.update(a.asname for a in node.names if a.asname and a.name in last_names)
    for node in ast_of_type(tree, ast.Assign, ast.AnnAssign):
        assert isinstance(node, (ast.Assign, ast.AnnAssign))
        if isinstance(node.value, ast.Call):
            func = node.value.func
            last = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if last in names:
                return True
    return False


def may_reenter_lock(tree: ast.Module) -> bool:
    """AF405: an ``async with <attribute>:`` whose body acquires again or awaits, in a file
    that makes a ``Lock``."""
    if not _assigned_from_call(tree, frozenset({"Lock"})):
        return False
    for node in ast_of_type(tree, ast.AsyncWith):
        assert isinstance(node, ast.AsyncWith)
        if any(isinstance(item.context_expr, ast.Attribute) for item in node.items) and any(
            isinstance(inner, (ast.AsyncWith, ast.Await))
            for statement in node.body
            for inner in ast.walk(statement)
        ):
            return True
    return False


def _suspends(body: list[ast.stmt]) -> bool:
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
                return True
    return False


def may_hold_thread_lock_across_await(tree: ast.Module) -> bool:
    """AF406: a plain ``with`` over a name or attribute straight in an ``async def`` whose
    body suspends, in a file that makes a ``Lock``/``RLock``."""
    if not _assigned_from_call(tree, frozenset({"Lock", "RLock"})):
        return False
    for function in async_functions(tree):
        for node in own_nodes(function):
            if (
                isinstance(node, ast.With)
                and any(isinstance(i.context_expr, (ast.Name, ast.Attribute)) for i in node.items)
                and _suspends(node.body)
            ):
                return True
    return False
