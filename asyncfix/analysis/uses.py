"""What a read of a name does with the value: the one classification that the value flow
(``analysis/flow.py``, on a module's semantic model) and the project index's function
summaries (``index.py``, on each module's definitions) share.

It needs only the stdlib tree, a map from each node to its parent, and a way to qualify a
callee (``asyncio.gather``): it imports nothing of asyncfix, so that the index can use it.
The kinds are listed in ``analysis/flow.py``'s docstring.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping

#: calls that await or schedule the awaitable they are given
SCHEDULERS = frozenset(
    {
        "asyncio.create_task",
        "asyncio.ensure_future",
        "asyncio.gather",
        "asyncio.wait",
        "asyncio.wait_for",
        "asyncio.shield",
        "asyncio.as_completed",
        "asyncio.run",
        "asyncio.run_coroutine_threadsafe",
        "anyio.run",
        "trio.run",
    }
)
#: methods that await or schedule the awaitable they are given, on any receiver (a loop, a
#: ``TaskGroup``, a nursery, Home Assistant's ``hass``)
SCHEDULING_METHODS = frozenset(
    {
        "create_task",
        "run_until_complete",
        "start_soon",
        "async_create_task",
        "async_create_background_task",
        "async_run_hass_job",
    }
)
#: builtins that use the value of their argument
VALUE_BUILTINS = frozenset(
    f"builtins.{name}"
    for name in (
        "print",
        "str",
        "repr",
        "len",
        "bool",
        "int",
        "float",
        "list",
        "tuple",
        "set",
        "dict",
        "sorted",
        "sum",
        "min",
        "max",
        "any",
        "all",
        "format",
    )
)
#: names type checkers take for builtins
CHECKER_BUILTINS = frozenset({"reveal_type", "reveal_locals"})
#: calls that return their one argument as it is: what happens to the call happens to it
#: (a type checker's ``reveal_type(x)`` as a statement drops ``x``)
TRANSPARENT = frozenset(
    {"typing.reveal_type", "typing_extensions.reveal_type", "builtins.reveal_type"}
)
#: the kinds of use that hand the value on: someone else may await, close or keep it
HANDED_ON = frozenset(
    {
        "awaited",
        "scheduled",
        "returned",
        "yielded",
        "stored",
        "aliased",
        "contained",
        "passed",
        "called",
        "entered",
        "raised",
        "captured",
    }
)

Parents = Mapping[int, ast.AST]
Qualify = Callable[[ast.expr], "str | None"]

_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
_DISPLAYS = (ast.Tuple, ast.List, ast.Set, ast.Dict)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def use_of(
    read: ast.Name,
    function: ast.AST,
    parents: Parents,
    qualify: Qualify,
    augmented: ast.AugAssign | None = None,
) -> tuple[str, ast.AST, bool]:
    """What ``read`` (a read of a local of ``function``) does with the value: its kind, the
    node the value goes into, and whether the read is in a part of its statement that may
    not run. ``augmented``: the ``x += ...`` whose target ``read`` is."""
    first = augmented if augmented is not None else parents.get(id(read))
    parent = first
    while parent is not None and parent is not function:
        if isinstance(parent, _NESTED):
            return "captured", parent, False  # it may run at any later time
        parent = parents.get(id(parent))
    conditional = False
    current: ast.AST = read
    parent = first
    while parent is not None and not isinstance(parent, ast.stmt):
        if runs_only_sometimes(parent, current):
            conditional = True
        current, parent = parent, parents.get(id(parent))
    if augmented is not None:
        return "arithmetic", augmented, conditional
    kind, node = _kind(read, parents, qualify)
    return kind, node, conditional


def runs_only_sometimes(parent: ast.AST, child: ast.AST) -> bool:
    """``child`` runs only sometimes when ``parent`` is evaluated: a branch of ``a if c else
    b``, an operand of ``and``/``or`` after the first, all of a comprehension but its first
    iterable."""
    if isinstance(parent, ast.IfExp):
        return child is not parent.test
    if isinstance(parent, ast.BoolOp):
        return child is not parent.values[0]
    if isinstance(parent, ast.comprehension):
        return child is not parent.iter
    if isinstance(parent, _COMPREHENSIONS):
        return not (parent.generators and child is parent.generators[0])
    return False


def value_use(node: ast.expr, parents: Parents, qualify: Qualify) -> tuple[str, ast.AST]:
    """What the code does with the value of any expression (``t[0]`` in ``await t[0]``):
    the kind of use, and the node the value goes into."""
    return _kind(node, parents, qualify)


def _kind(read: ast.expr, parents: Parents, qualify: Qualify) -> tuple[str, ast.AST]:
    node: ast.AST = read
    parent = parents.get(id(node))
    # the last operand of `and`/`or` is the whole's value: what happens to the whole
    while isinstance(parent, ast.BoolOp) and parent.values[-1] is node:
        node, parent = parent, parents.get(id(parent))
    if parent is None:
        return "other", read
    kind = type(parent)
    simple = _SIMPLE.get(kind)
    if simple is not None:
        return simple, parent
    if kind is ast.Subscript:
        assert isinstance(parent, ast.Subscript)
        return ("subscripted" if parent.value is node else "other"), parent
    if kind is ast.UnaryOp:
        assert isinstance(parent, ast.UnaryOp)
        return ("tested" if isinstance(parent.op, ast.Not) else "arithmetic"), parent
    if kind in (ast.If, ast.While, ast.IfExp, ast.Assert):
        return ("tested" if getattr(parent, "test", None) is node else "other"), parent
    if kind is ast.comprehension:
        assert isinstance(parent, ast.comprehension)
        return ("iterated" if parent.iter is node else "tested"), parent
    if kind is ast.For or kind is ast.AsyncFor:
        assert isinstance(parent, (ast.For, ast.AsyncFor))
        return ("iterated" if parent.iter is node else "other"), parent
    if kind is ast.Starred:
        holder = parents.get(id(parent))
        return "iterated", holder if isinstance(holder, ast.Call) else parent
    if kind in _DISPLAYS:
        if kind is ast.Tuple and isinstance(parents.get(id(parent)), (ast.For, ast.AsyncFor)):
            return "other", parent
        return "contained", parent
    if kind is ast.keyword:
        call = parents.get(id(parent))
        return _argument(call, qualify) if isinstance(call, ast.Call) else ("other", parent)
    if kind is ast.Call:
        assert isinstance(parent, ast.Call)
        if parent.func is node:
            return "called", parent
        if transparent(parent, node, qualify):
            return _kind(parent, parents, qualify)
        return _argument(parent, qualify)
    if kind is ast.Assign or kind is ast.AnnAssign or kind is ast.NamedExpr:
        return _assigned(parent), parent
    return "other", parent


_SIMPLE: dict[type, str] = {
    ast.Await: "awaited",
    ast.Return: "returned",
    ast.Yield: "yielded",
    ast.YieldFrom: "yielded",
    ast.Expr: "dropped",
    ast.Attribute: "attribute",
    ast.Compare: "compared",
    ast.BinOp: "arithmetic",
    ast.BoolOp: "tested",
    ast.FormattedValue: "formatted",
    ast.withitem: "entered",
    ast.Raise: "raised",
    ast.AugAssign: "arithmetic",
}


def transparent(call: ast.Call, argument: ast.AST, qualify: Qualify) -> bool:
    """``call`` returns ``argument``, its one argument, as it is (``reveal_type(x)``)."""
    return (
        len(call.args) == 1
        and call.args[0] is argument
        and not call.keywords
        and qualify(call.func) in TRANSPARENT
    )


def _argument(call: ast.Call, qualify: Qualify) -> tuple[str, ast.AST]:
    qualified = qualify(call.func)
    if qualified in SCHEDULERS:
        return "scheduled", call
    if qualified in VALUE_BUILTINS:
        return "value", call
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in SCHEDULING_METHODS:
        return "scheduled", call
    return "passed", call


def _assigned(statement: ast.AST) -> str:
    targets: list[ast.expr]
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, (ast.AnnAssign, ast.NamedExpr)):
        targets = [statement.target]
    else:  # pragma: no cover - only the three are passed
        return "other"
    if all(isinstance(target, ast.Name) for target in targets):
        return "aliased"
    if all(isinstance(target, (ast.Attribute, ast.Subscript)) for target in targets):
        return "stored"
    return "iterated"  # unpacked into a tuple of targets
