"""A read-only walk over LibCST trees.

LibCST's own ``visit`` rebuilds and re-validates every node it passes and dispatches every
field through the visitor. Reading needs none of that, and skipping whitespace and
punctuation nodes (most of a tree) makes a walk several times faster. Iterative, so deeply
nested code cannot exhaust the recursion limit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import libcst as cst

#: node types never visited: they hold no code a rule looks at
SKIPPED = (
    cst.BaseParenthesizableWhitespace,
    cst.Comment,
    cst.EmptyLine,
    cst.TrailingWhitespace,
    cst.Newline,
    cst.Comma,
    cst.Dot,
    cst.Colon,
    cst.Semicolon,
    cst.LeftParen,
    cst.RightParen,
    cst.LeftSquareBracket,
    cst.RightSquareBracket,
    cst.LeftCurlyBrace,
    cst.RightCurlyBrace,
    cst.AssignEqual,
    cst.Asynchronous,
    cst.ImportStar,
)
_FIELDS: dict[type[cst.CSTNode], tuple[str, ...]] = {}


#: node class -> 1 (a node with code), 2 (a skipped node), 0 (not a node). Asking
#: ``isinstance`` of LibCST's abstract classes costs more than the rest of a walk together
_KIND: dict[type, int] = {}


def _kind(kind: type) -> int:
    found = _KIND.get(kind)
    if found is None:
        found = 0
        if issubclass(kind, cst.CSTNode):
            found = 2 if issubclass(kind, SKIPPED) else 1
        _KIND[kind] = found
    return found


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The child nodes of ``node`` that hold code, in field order."""
    kind = type(node)
    names = _FIELDS.get(kind)
    if names is None:
        names = tuple(
            field.name
            for field in dataclasses.fields(kind)
            if not field.name.startswith("whitespace") and field.name not in ("lpar", "rpar")
        )
        _FIELDS[kind] = names
    found: list[cst.CSTNode] = []
    for name in names:
        value = getattr(node, name)
        value_kind = _KIND.get(type(value))
        if value_kind is None:
            value_kind = _kind(type(value))
        if value_kind == 1:
            found.append(value)
        elif value_kind == 0 and type(value) in (tuple, list):
            for item in value:
                item_kind = _KIND.get(type(item))
                if item_kind is None:
                    item_kind = _kind(type(item))
                if item_kind == 1:
                    found.append(item)
    return found


def descendants(
    root: cst.CSTNode, parents: dict[int, cst.CSTNode] | None = None
) -> Iterator[cst.CSTNode]:
    """``root`` and every node under it, nested functions and classes included (in no
    particular order); fills ``parents`` (id of a node -> its parent) on the way when given."""
    stack = [root]
    while stack:
        current = stack.pop()
        yield current
        for child in children(current):
            if parents is not None:
                parents[id(child)] = current
            stack.append(child)


def walk(
    root: cst.CSTNode,
    visit: Callable[[cst.CSTNode], bool],
    leave: Callable[[cst.CSTNode], None] | None = None,
) -> None:
    """Call ``visit`` on every node, parents first; its False prunes the node's subtree.
    ``leave`` is called after a visited node's subtree."""
    marker = object()
    stack: list[object] = [root]
    while stack:
        item = stack.pop()
        if item is marker:
            node = stack.pop()
            leave(node)  # type: ignore[misc,arg-type]
            continue
        descend = visit(item)  # type: ignore[arg-type]
        if leave is not None:
            stack.append(item)
            stack.append(marker)
        if descend:
            stack.extend(reversed(children(item)))  # type: ignore[arg-type]
