"""Moving a ``with open(...) as f:`` block out of the event loop as a whole.

Offloading ``open()`` alone would leave every read and write of the block on the loop, so the
fix turns the block into a nested sync function and offloads that::

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
  could see a value from outside the block (a name the function also uses elsewhere, or any
  name when the block runs in a loop);
- the ``with`` enters only blocking file openers (another context manager may need the
  loop's thread).

Otherwise :func:`extract_block` says why, and the finding is reported without a fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import libcst as cst

from asyncfix.codemods.names import ScopeBindings, bindings_in, identifiers, reads
from asyncfix.codemods.walk import children

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


def extract_block(
    block: cst.With,
    path: Sequence[cst.CSTNode],
    in_loop: bool,
    function_bindings: ScopeBindings,
) -> Extraction | str:
    """Whether ``block`` can become a nested sync function: what it returns, or why not.
    ``path`` runs from the enclosing function down to the block."""
    function = path[0]
    assert isinstance(function, cst.FunctionDef)
    bound_here = bindings_in(block)
    if bound_here.declared_global or bound_here.declared_nonlocal:
        return "the block declares `global`/`nonlocal` names"
    bound = set(bound_here.bound)
    declared = function_bindings.declared_global | function_bindings.declared_nonlocal
    shared = sorted(bound & declared)
    if shared:
        return f"the block assigns `{shared[0]}`, declared global/nonlocal in the function"
    # what the rest of the function reads (a name only rebound after the block is not needed)
    outside = reads(function) - reads(block)
    body = _body(block.body)
    last = body[-1] if body else None
    flow = _Flow(
        allow_return=isinstance(last, cst.SimpleStatementLine)
        and isinstance(last.body[-1], cst.Return)
    )
    assigned: set[str] = set()
    for item in block.items:
        _reads(item.item, assigned, bound, flow)
    for item in block.items:
        if item.asname is not None:
            _assign_target(item.asname.name, assigned, flow)
    _statements(body, assigned, bound, flow, loop_depth=0)
    if flow.reason is not None:
        return flow.reason
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


def _in_try_body(path: Sequence[cst.CSTNode]) -> bool:
    return any(
        isinstance(node, (cst.Try, cst.TryStar)) and path[index + 1] is node.body
        for index, node in enumerate(path[:-1])
    )


def _live_after(path: Sequence[cst.CSTNode], name: str) -> bool:
    """Whether code after the block (the last node of ``path``) may read ``name`` before
    assigning it. Follows the statements after the block, then after each enclosing ``if`` or
    ``with``; anything else around the block (``try``, ``match``) counts as a read."""
    for level in range(len(path) - 1, 0, -1):
        statement, parent = path[level], path[level - 1]
        if not isinstance(parent, cst.IndentedBlock):
            continue
        siblings = list(parent.body)
        index = next(i for i, s in enumerate(siblings) if s is statement)
        for following in siblings[index + 1 :]:
            verdict = _first_use(following, name)
            if verdict is not None:
                return verdict
        owner = path[level - 2] if level >= 2 else None
        if owner is path[0]:
            return False  # the end of the function
        if isinstance(owner, cst.Else) and level >= 3:
            owner = path[level - 3]
        if not isinstance(owner, (cst.If, cst.With)):
            return True
    return True


def _first_use(statement: cst.BaseStatement, name: str) -> bool | None:
    """True: ``statement`` may read ``name``; False: it assigns it first; None: neither."""
    if identifiers(statement)[name] == 0:
        return None
    if isinstance(statement, cst.With) and any(
        item.asname is not None
        and isinstance(item.asname.name, cst.Name)
        and item.asname.name.value == name
        for item in statement.items
    ):
        # `with open(other) as handle:` rebinds before its body reads
        return any(reads(item.item)[name] > 0 for item in statement.items)
    if reads(statement)[name] > 0:
        return True
    if isinstance(statement, cst.SimpleStatementLine):
        for small in statement.body:
            if isinstance(small, cst.Assign) and any(
                isinstance(t.target, cst.Name) and t.target.value == name for t in small.targets
            ):
                return False
    return True


def _body(suite: cst.BaseSuite) -> Sequence[cst.BaseStatement | cst.BaseSmallStatement]:
    if isinstance(suite, cst.IndentedBlock):
        return suite.body
    assert isinstance(suite, cst.SimpleStatementSuite)
    return suite.body


def _statements(
    statements: Iterable[cst.BaseStatement | cst.BaseSmallStatement],
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
    node: cst.BaseStatement | cst.BaseSmallStatement,
    assigned: set[str],
    bound: set[str],
    flow: _Flow,
    loop_depth: int,
) -> None:
    if isinstance(node, cst.SimpleStatementLine):
        _statements(node.body, assigned, bound, flow, loop_depth)
    elif isinstance(node, cst.Return) and flow.allow_return and node.value is not None:
        _reads(node.value, assigned, bound, flow)
    elif isinstance(node, (cst.Return, cst.Global, cst.Nonlocal)):
        keyword = {cst.Return: "return", cst.Global: "global", cst.Nonlocal: "nonlocal"}
        flow.reason = f"the block contains `{keyword[type(node)]}`"
    elif isinstance(node, (cst.Break, cst.Continue)):
        if loop_depth == 0:
            word = "break" if isinstance(node, cst.Break) else "continue"
            flow.reason = f"the block contains `{word}` of a loop around it"
    elif isinstance(node, cst.Assign):
        _reads(node.value, assigned, bound, flow)
        for target in node.targets:
            _assign_target(target.target, assigned, flow)
    elif isinstance(node, cst.AnnAssign):
        if node.value is not None:
            _reads(node.value, assigned, bound, flow)
            _assign_target(node.target, assigned, flow)
    elif isinstance(node, cst.AugAssign):
        _reads(node.target, assigned, bound, flow)
        _reads(node.value, assigned, bound, flow)
    elif isinstance(node, (cst.Import, cst.ImportFrom)):
        _assign_names(bindings_in(node).bound, assigned, flow)
    elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
        if isinstance(node, cst.FunctionDef) and node.asynchronous is not None:
            flow.reason = "the block defines an `async def`"
            return
        _reads(node, assigned, bound, flow)  # a closure reads when called: count it now
        _assign_names([node.name.value], assigned, flow)
    elif isinstance(node, cst.If):
        _reads(node.test, assigned, bound, flow)
        then = set(assigned)
        _statements(_body(node.body), then, bound, flow, loop_depth)
        if node.orelse is not None:
            otherwise = set(assigned)
            orelse = node.orelse
            if isinstance(orelse, cst.If):
                _statement(orelse, otherwise, bound, flow, loop_depth)
            else:
                _statements(_body(orelse.body), otherwise, bound, flow, loop_depth)
            _assign_names(sorted(then & otherwise - assigned), assigned, flow)
    elif isinstance(node, (cst.For, cst.While)):
        if isinstance(node, cst.For):
            if node.asynchronous is not None:
                flow.reason = "the block contains `async for`"
                return
            _reads(node.iter, assigned, bound, flow)
            inner = set(assigned)
            _assign_target(node.target, inner, _Flow())
        else:
            _reads(node.test, assigned, bound, flow)
            inner = set(assigned)
        _statements(_body(node.body), inner, bound, flow, loop_depth + 1)
        if node.orelse is not None:
            _statements(_body(node.orelse.body), set(assigned), bound, flow, loop_depth)
    elif isinstance(node, cst.With):
        if node.asynchronous is not None:
            flow.reason = "the block contains `async with`"
            return
        for item in node.items:
            _reads(item.item, assigned, bound, flow)
        inner = set(assigned)
        for item in node.items:
            if item.asname is not None:
                _assign_target(item.asname.name, inner, _Flow())
        # a context manager may swallow an exception: the body's names are not certain after
        _statements(_body(node.body), inner, bound, flow, loop_depth)
    elif isinstance(node, (cst.Try, cst.TryStar)):
        _statements(_body(node.body), set(assigned), bound, flow, loop_depth)
        for handler in node.handlers:
            if handler.type is not None:
                _reads(handler.type, assigned, bound, flow)
            caught = set(assigned)
            if handler.name is not None:
                _assign_target(handler.name.name, caught, _Flow())
            _statements(_body(handler.body), caught, bound, flow, loop_depth)
        if node.orelse is not None:
            _statements(_body(node.orelse.body), set(assigned), bound, flow, loop_depth)
        if node.finalbody is not None:
            _statements(_body(node.finalbody.body), set(assigned), bound, flow, loop_depth)
    elif isinstance(node, cst.Match):
        _reads(node.subject, assigned, bound, flow)
        for case in node.cases:
            _reads(case, assigned, bound, flow)  # patterns and guards; bodies below
            _statements(_body(case.body), set(assigned), bound, flow, loop_depth)
    else:
        # Expr, Del, Raise, Assert, Pass: reads only
        _reads(node, assigned, bound, flow)


def _assign_target(target: cst.BaseExpression, assigned: set[str], flow: _Flow) -> None:
    """``name = ...`` / ``a, b = ...``: names assigned; ``x.y = ...`` / ``x[i] = ...``: reads."""
    if isinstance(target, cst.Name):
        _assign_names([target.value], assigned, flow)
    elif isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            _assign_target(element.value, assigned, flow)
    elif isinstance(target, cst.StarredElement):
        _assign_target(target.value, assigned, flow)


def _assign_names(names: Iterable[str], assigned: set[str], flow: _Flow) -> None:
    for name in names:
        assigned.add(name)
        if name not in flow.order:
            flow.order.append(name)


def _reads(node: cst.CSTNode, assigned: set[str], bound: set[str], flow: _Flow) -> None:
    """Note names of the block read where they may be unassigned; reject what cannot move."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name):
            if current.value in FRAME_SENSITIVE:
                flow.reason = f"the block uses `{current.value}`, which depends on its frame"
            elif current.value in bound and current.value not in assigned:
                flow.read_unassigned.add(current.value)
            continue
        if isinstance(current, (cst.Await, cst.Yield)):
            word = "await" if isinstance(current, cst.Await) else "yield"
            flow.reason = f"the block contains `{word}`"
            return
        if isinstance(current, cst.CompFor) and current.asynchronous is not None:
            flow.reason = "the block contains `async for`"
            return
        if isinstance(current, cst.Attribute):
            stack.append(current.value)
            continue
        if isinstance(current, cst.Arg):
            stack.append(current.value)
            continue
        if isinstance(current, cst.NamedExpr):
            stack.append(current.value)
            if isinstance(current.target, cst.Name):
                flow.read_unassigned.discard(current.target.value)
            continue
        if isinstance(current, (cst.FunctionDef, cst.Lambda)):
            # a nested function's own yield/return/await are its own business
            stack.extend(_outer_parts(current))
            stack.extend(_names_only(current))
            continue
        stack.extend(children(current))


def _outer_parts(node: cst.FunctionDef | cst.Lambda) -> list[cst.CSTNode]:
    """What of a nested function runs where it is defined: decorators and defaults."""
    parts: list[cst.CSTNode] = []
    if isinstance(node, cst.FunctionDef):
        parts.extend(decorator.decorator for decorator in node.decorators)
    params = node.params
    for param in [*params.posonly_params, *params.params, *params.kwonly_params]:
        if param.default is not None:
            parts.append(param.default)
    return parts


def _names_only(node: cst.FunctionDef | cst.Lambda) -> list[cst.CSTNode]:
    """The names a nested function's body reads (as if read now: it may be called now)."""
    found: list[cst.CSTNode] = []
    for name, count in identifiers(node.body).items():
        if count > 0:
            found.append(cst.Name(name))
    return found
