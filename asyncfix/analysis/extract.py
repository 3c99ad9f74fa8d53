"""Whether a ``with open(...) as f:`` block can move out of the event loop as a whole.

Offloading ``open()`` alone would leave every read and write of the block on the loop, so the
fix (AF203, ``codemods/blocking_io.py``) turns the block into a nested sync function and
offloads that::

    with open(path) as handle:              def _read_file():
        data = json.load(handle)       ->       with open(path) as handle:
    return data["name"]                             data = json.load(handle)
                                                return data

                                            data = await asyncio.to_thread(_read_file)
                                            return data["name"]

The nested function sees the enclosing function's names through its closure, but every name
the block binds becomes local to it. So the move is only offered when that changes nothing:

- the block cannot leave early or suspend: no ``await``, ``yield``, ``return``, no ``break``
  or ``continue`` of a loop outside it, no ``async for``/``async with``, no ``global`` or
  ``nonlocal``, no ``super()``/``locals()``/``vars()``/``eval``/``exec``;
- no name the block binds is declared ``global``/``nonlocal`` in the function;
- a name the block binds and the rest of the function uses is assigned on every path
  through the block (so the nested function can return it) and is not read in the block
  before that: it is returned and assigned from the ``await``;
- no name the block binds is read in the block before the block assigns it when that read
  could see a value from outside the block (a name the function also uses elsewhere --
  a parameter counts -- or any name when the block runs in a loop);
- the ``with`` enters only blocking file openers (another context manager may need the
  loop's thread; the rule checks that).

Otherwise :func:`extract_block` says why, and the finding is reported without a fix. It reads
the stdlib tree of the module's semantic model.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from asyncfix.analysis.model import TRY, holding_list, identifiers, in_order
from asyncfix.index import child_nodes

if TYPE_CHECKING:
    from asyncfix.analysis.model import SemanticModel

Function = ast.FunctionDef | ast.AsyncFunctionDef

#: calls whose behaviour depends on the frame they run in
FRAME_SENSITIVE = frozenset({"super", "locals", "vars", "eval", "exec", "__class__"})


@dataclass
class Extraction:
    """A block that can move into a nested function, and what it must return."""

    #: names the code after the block needs, in the order the block assigns them
    returns: list[str]
    #: the block ends in ``return value``: the function returns what the nested one does
    returns_value: bool = False


@dataclass
class _Flow:
    """What the walk over the block learns."""

    #: the first reason the block cannot move, if any
    reason: str | None = None
    #: ``return value`` may stay in the block (it ends with one)
    allow_return: bool = False
    #: names read in the block where the block may not have assigned them yet
    read_unassigned: set[str] = field(default_factory=set)
    #: names the block assigns, in the order it first does (on any path)
    order: list[str] = field(default_factory=list)


def reads(node: ast.AST | Sequence[ast.AST]) -> Counter[str]:
    """How often each name is read in ``node``, nested functions included: loads and
    deletions, ``x += ...``, a bare ``x: T``; a parameter and a ``global``/``nonlocal``
    declaration count as a use too (a value that comes from outside)."""
    counts: Counter[str] = Counter()
    stack: list[ast.AST] = list(node) if isinstance(node, Sequence) else [node]
    while stack:
        current = stack.pop()
        kind = type(current)
        if kind is ast.Name:
            assert isinstance(current, ast.Name)
            if type(current.ctx) is not ast.Store:
                counts[current.id] += 1
            continue
        if kind is ast.arg:
            assert isinstance(current, ast.arg)
            counts[current.arg] += 1
        elif kind is ast.AugAssign or kind is ast.AnnAssign:
            assert isinstance(current, (ast.AugAssign, ast.AnnAssign))
            target = current.target
            if isinstance(target, ast.Name) and (kind is ast.AugAssign or current.value is None):
                counts[target.id] += 1
        elif kind is ast.Global or kind is ast.Nonlocal:
            assert isinstance(current, (ast.Global, ast.Nonlocal))
            counts.update(current.names)
        elif kind is ast.MatchAs or kind is ast.MatchStar:
            assert isinstance(current, (ast.MatchAs, ast.MatchStar))
            if current.name:
                counts[current.name] += 1
        stack.extend(child_nodes(current))
    return counts


def extract_block(
    model: SemanticModel, block: ast.With, function: Function, path: Sequence[ast.AST]
) -> Extraction | str:
    """Whether ``block`` can become a nested sync function: what it returns, or why not.
    ``path`` runs from ``function`` down to the block."""
    scope = model.scopes.opened.get(id(function))
    assert scope is not None
    for node in in_order(block):
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            return "the block declares `global`/`nonlocal` names"
    bound = _bound_in(model, block, function)
    declared = scope.declared_global | scope.declared_nonlocal
    shared = sorted(bound & declared)
    if shared:
        return f"the block assigns `{shared[0]}`, declared global/nonlocal in the function"
    # what the rest of the function reads (a name only rebound after the block is not needed)
    outside = reads(function) - reads(block)
    body = block.body
    flow = _Flow(allow_return=bool(body) and isinstance(body[-1], ast.Return))
    assigned: set[str] = set()
    for item in block.items:
        _reads(item.context_expr, assigned, bound, flow)
    for item in block.items:
        if item.optional_vars is not None:
            _assign_target(item.optional_vars, assigned, flow)
    _statements(body, assigned, bound, flow, loop_depth=0)
    if flow.reason is not None:
        return flow.reason
    in_loop = any(isinstance(node, (ast.For, ast.AsyncFor, ast.While)) for node in path[1:])
    for name in sorted(flow.read_unassigned):
        if outside[name] > 0 or in_loop:
            where = "a value from an earlier loop pass" if in_loop else "a value set outside it"
            return f"the block reads `{name}` before assigning it (it may see {where})"
    if _in_try_body(path):
        # when the block raises, a handler sees what it had assigned so far: a nested
        # function's locals are gone by then
        seen = sorted(name for name in bound if outside[name] > 0)
        if seen:
            return f"the block is in a `try` whose other code uses `{seen[0]}`, which it assigns"
    if flow.allow_return:
        # every way out of the block returns from the function: nothing after it runs
        return Extraction(returns=[], returns_value=True)
    live = {name for name in bound if outside[name] > 0 and (in_loop or _live_after(path, name))}
    # `assigned` now holds what the block assigns on every path through it
    needed = [name for name in flow.order if name in live and name in assigned]
    missing = sorted(live - set(needed))
    if missing:
        return f"`{missing[0]}` is used after the block but not assigned on every path through it"
    return Extraction(returns=needed)


def _bound_in(model: SemanticModel, block: ast.With, function: Function) -> set[str]:
    """The names of ``function``'s scope that ``block`` binds (nested scopes: their name)."""
    scope = model.scopes.opened[id(function)]
    start = (block.lineno, block.col_offset)
    end = (block.end_lineno or block.lineno, block.end_col_offset or 0)
    bound: set[str] = set()
    for name, bindings in scope.bindings.items():
        for binding in bindings:
            node = binding.node
            where = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
            if binding.kind != "param" and start <= where < end:
                bound.add(name)
                break
    return bound


def _in_try_body(path: Sequence[ast.AST]) -> bool:
    return any(
        isinstance(node, TRY) and any(path[index + 1] is s for s in node.body)  # type: ignore[attr-defined]
        for index, node in enumerate(path[:-1])
    )


def _live_after(path: Sequence[ast.AST], name: str) -> bool:
    """Whether code after the block (the last node of ``path``) may read ``name`` before
    assigning it. Follows the statements after the block, then after each enclosing ``if`` or
    ``with``; anything else around the block (``try``, ``match``, a loop) counts as a read."""
    for level in range(len(path) - 1, 0, -1):
        statement, parent = path[level], path[level - 1]
        siblings = holding_list(parent, statement)
        if siblings is None:
            continue
        index = next(i for i, s in enumerate(siblings) if s is statement)
        for following in siblings[index + 1 :]:
            verdict = _first_use(following, name)
            if verdict is not None:
                return verdict
        if parent is path[0]:
            return False  # the end of the function
        if not isinstance(parent, (ast.If, ast.With, ast.AsyncWith)):
            return True
    return True


def _first_use(statement: ast.stmt, name: str) -> bool | None:
    """True: ``statement`` may read ``name``; False: it assigns it first; None: neither."""
    if identifiers(statement)[name] == 0:
        return None
    if isinstance(statement, (ast.With, ast.AsyncWith)) and any(
        isinstance(item.optional_vars, ast.Name) and item.optional_vars.id == name
        for item in statement.items
    ):
        # `with open(other) as handle:` rebinds before its body reads
        return any(reads(item.context_expr)[name] > 0 for item in statement.items)
    if reads(statement)[name] > 0:
        return True
    assigns = isinstance(statement, ast.Assign) and any(
        isinstance(target, ast.Name) and target.id == name for target in statement.targets
    )
    return not assigns


def _statements(
    statements: Iterable[ast.stmt],
    assigned: set[str],
    bound: set[str],
    flow: _Flow,
    loop_depth: int,
) -> None:
    """Walk statements in order; ``assigned`` grows with what is assigned on every path."""
    for statement in statements:
        if flow.reason is not None:
            return
        _statement(statement, assigned, bound, flow, loop_depth)


def _statement(
    node: ast.stmt, assigned: set[str], bound: set[str], flow: _Flow, loop_depth: int
) -> None:
    if isinstance(node, ast.Return) and flow.allow_return and node.value is not None:
        _reads(node.value, assigned, bound, flow)
    elif isinstance(node, (ast.Return, ast.Global, ast.Nonlocal)):
        keyword = {ast.Return: "return", ast.Global: "global", ast.Nonlocal: "nonlocal"}
        flow.reason = f"the block contains `{keyword[type(node)]}`"
    elif isinstance(node, (ast.Break, ast.Continue)):
        if loop_depth == 0:
            word = "break" if isinstance(node, ast.Break) else "continue"
            flow.reason = f"the block contains `{word}` of a loop around it"
    elif isinstance(node, ast.Assign):
        _reads(node.value, assigned, bound, flow)
        for target in node.targets:
            _assign_target(target, assigned, flow)
    elif isinstance(node, ast.AnnAssign):
        if node.value is not None:
            _reads(node.value, assigned, bound, flow)
            _assign_target(node.target, assigned, flow)
    elif isinstance(node, ast.AugAssign):
        _reads(node.target, assigned, bound, flow)
        _reads(node.value, assigned, bound, flow)
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        names = []
        for alias in node.names:
            if isinstance(node, ast.Import) and not alias.asname:
                names.append(alias.name.split(".", 1)[0])
            else:
                names.append(alias.asname or alias.name)
        _assign_names(names, assigned, flow)
    elif isinstance(node, ast.AsyncFunctionDef):
        flow.reason = "the block defines an `async def`"
    elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        _reads(node, assigned, bound, flow)  # a closure reads when called: count it now
        _assign_names([node.name], assigned, flow)
    elif isinstance(node, ast.If):
        _reads(node.test, assigned, bound, flow)
        then = set(assigned)
        _statements(node.body, then, bound, flow, loop_depth)
        if node.orelse:
            otherwise = set(assigned)
            _statements(node.orelse, otherwise, bound, flow, loop_depth)
            _assign_names(sorted(then & otherwise - assigned), assigned, flow)
    elif isinstance(node, ast.AsyncFor):
        flow.reason = "the block contains `async for`"
    elif isinstance(node, (ast.For, ast.While)):
        if isinstance(node, ast.For):
            _reads(node.iter, assigned, bound, flow)
            inner = set(assigned)
            _assign_target(node.target, inner, _Flow())
        else:
            _reads(node.test, assigned, bound, flow)
            inner = set(assigned)
        _statements(node.body, inner, bound, flow, loop_depth + 1)
        if node.orelse:
            _statements(node.orelse, set(assigned), bound, flow, loop_depth)
    elif isinstance(node, ast.AsyncWith):
        flow.reason = "the block contains `async with`"
    elif isinstance(node, ast.With):
        for item in node.items:
            _reads(item.context_expr, assigned, bound, flow)
        inner = set(assigned)
        for item in node.items:
            if item.optional_vars is not None:
                _assign_target(item.optional_vars, inner, _Flow())
        # a context manager may swallow an exception: the body's names are not certain after
        _statements(node.body, inner, bound, flow, loop_depth)
    elif isinstance(node, TRY):
        _try(node, assigned, bound, flow, loop_depth)
    elif isinstance(node, ast.Match):
        _reads(node.subject, assigned, bound, flow)
        for case in node.cases:
            _reads(case, assigned, bound, flow)  # patterns and guards; bodies below
            _statements(case.body, set(assigned), bound, flow, loop_depth)
    else:
        # Expr, Delete, Raise, Assert, Pass: reads only
        _reads(node, assigned, bound, flow)


def _try(node: ast.stmt, assigned: set[str], bound: set[str], flow: _Flow, loop_depth: int) -> None:
    assert isinstance(node, TRY)
    body: list[ast.stmt] = node.body  # type: ignore[attr-defined]
    _statements(body, set(assigned), bound, flow, loop_depth)
    for handler in node.handlers:  # type: ignore[attr-defined]
        if handler.type is not None:
            _reads(handler.type, assigned, bound, flow)
        caught = set(assigned)
        if handler.name is not None:
            _assign_names([handler.name], caught, _Flow())
        _statements(handler.body, caught, bound, flow, loop_depth)
    _statements(node.orelse, set(assigned), bound, flow, loop_depth)  # type: ignore[attr-defined]
    _statements(node.finalbody, set(assigned), bound, flow, loop_depth)  # type: ignore[attr-defined]


def _assign_target(target: ast.expr, assigned: set[str], flow: _Flow) -> None:
    """``name = ...`` / ``a, b = ...``: names assigned (``x.y = ...`` / ``x[i] = ...``:
    nothing is assigned)."""
    if isinstance(target, ast.Name):
        _assign_names([target.id], assigned, flow)
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            _assign_target(element, assigned, flow)
    elif isinstance(target, ast.Starred):
        _assign_target(target.value, assigned, flow)


def _assign_names(names: Iterable[str], assigned: set[str], flow: _Flow) -> None:
    for name in names:
        assigned.add(name)
        if name not in flow.order:
            flow.order.append(name)


def _reads(node: ast.AST, assigned: set[str], bound: set[str], flow: _Flow) -> None:
    """Note names of the block read where they may be unassigned; reject what cannot move."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Name):
            _read_name(current.id, assigned, bound, flow)
            continue
        if isinstance(current, (ast.MatchAs, ast.MatchStar)) and current.name:
            _read_name(current.name, assigned, bound, flow)  # a capture, counted as a use
        if isinstance(current, (ast.Await, ast.Yield, ast.YieldFrom)):
            word = "await" if isinstance(current, ast.Await) else "yield"
            flow.reason = f"the block contains `{word}`"
            return
        if isinstance(current, ast.comprehension) and current.is_async:
            flow.reason = "the block contains `async for`"
            return
        if isinstance(current, ast.Attribute):
            stack.append(current.value)
            continue
        if isinstance(current, ast.NamedExpr):
            stack.append(current.value)
            if isinstance(current.target, ast.Name):
                flow.read_unassigned.discard(current.target.id)
            continue
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            # a nested function's own yield/return/await are its own business: what runs
            # where it is defined (decorators, defaults), and the names its body reads (as if
            # read now: it may be called now)
            stack.extend(_outer_parts(current))
            body = current.body
            used: Counter[str] = Counter()
            for part in body if isinstance(body, list) else [body]:
                used.update(identifiers(part))
            for name, count in used.items():
                if count > 0:
                    _read_name(name, assigned, bound, flow)
            continue
        if isinstance(current, ast.ClassDef):
            _read_name(current.name, assigned, bound, flow)
        stack.extend(child_nodes(current))


def _read_name(name: str, assigned: set[str], bound: set[str], flow: _Flow) -> None:
    if name in FRAME_SENSITIVE:
        flow.reason = f"the block uses `{name}`, which depends on its frame"
    elif name in bound and name not in assigned:
        flow.read_unassigned.add(name)


def _outer_parts(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[ast.AST]:
    """What of a nested function runs where it is defined: decorators and defaults."""
    parts: list[ast.AST] = []
    if not isinstance(node, ast.Lambda):
        parts.extend(node.decorator_list)
    parts.extend(node.args.defaults)
    parts.extend(default for default in node.args.kw_defaults if default is not None)
    return parts
