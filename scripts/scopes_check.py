"""Does the stdlib semantic model name things as the LibCST resolver the rules use does?

For every call in every Python file under DIR, the qualified name of its callee (``time.sleep``
for ``t.sleep()`` after ``import time as t``) from ``asyncfix.analysis.scopes`` (stdlib
``ast``) and from ``asyncfix.codemods.names`` (LibCST, as the rules see it today). Prints the
counts and the first differences, grouped by kind; exit status 1 when any differ.

    python scripts/scopes_check.py DIR [--show N]

The two disagree on purpose where the LibCST resolver is coarser: a comprehension's own
variables (it has no comprehension scope) and names evaluated outside a function that it
looks up inside (decorators, defaults). Those are counted apart.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from asyncfix.analysis.scopes import Scopes
from asyncfix.codemods.names import Resolver
from asyncfix.files import SourceError, decode


def char_span(lines: list[str], node: ast.expr) -> tuple[int, int, int, int]:
    """Where a callee starts and ends, in characters (``f(x).g()``: two callees start there)."""
    assert node.end_lineno is not None and node.end_col_offset is not None

    def column(line: int, offset: int) -> int:
        return len(lines[line - 1].encode("utf-8")[:offset].decode("utf-8", "replace"))

    return (
        node.lineno,
        column(node.lineno, node.col_offset),
        node.end_lineno,
        column(node.end_lineno, node.end_col_offset),
    )


class _Calls(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.stack: list[cst.CSTNode] = []
        self.found: dict[tuple[int, int, int, int], tuple[str | None, bool]] = {}
        self.outside = 0  # > 0 while in decorators, defaults or annotations

    def visit_Module(self, node: cst.Module) -> None:
        self.stack.append(node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.stack.append(node)

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.stack.pop()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.stack.append(node)

    def leave_ClassDef(self, node: cst.ClassDef) -> None:
        self.stack.pop()

    def visit_Decorator(self, node: cst.Decorator) -> None:
        self.outside += 1

    def leave_Decorator(self, node: cst.Decorator) -> None:
        self.outside -= 1

    def visit_Param(self, node: cst.Param) -> None:
        self.outside += 1

    def leave_Param(self, node: cst.Param) -> None:
        self.outside -= 1

    def visit_Call(self, node: cst.Call) -> None:
        where = self.get_metadata(PositionProvider, node.func)
        name = self.resolver.qualified_name(node.func, self.stack)
        key = (where.start.line, where.start.column, where.end.line, where.end.column)
        self.found[key] = (name, self.outside > 0)


def check(path: Path, counts: Counter[str], shown: list[str], show: int) -> None:
    try:
        text = decode(path.read_bytes()).text
        tree = ast.parse(text)
        module = cst.parse_module(text)
    except (SourceError, SyntaxError, ValueError, cst.ParserSyntaxError, RecursionError):
        counts["files skipped (do not parse)"] += 1
        return
    counts["files"] += 1
    lines = text.splitlines()
    scopes = Scopes(tree)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    visitor = _Calls(Resolver(wrapper.module))
    wrapper.visit(visitor)
    in_comprehension = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            bound = scopes.opened[id(node)].bindings
            for inner in ast.walk(node):
                if isinstance(inner, ast.Name) and inner.id in bound:
                    in_comprehension.add(id(inner))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        counts["calls"] += 1
        key = char_span(lines, node.func)
        if key not in visitor.found:
            counts["calls LibCST placed elsewhere"] += 1
            continue
        theirs, outside = visitor.found[key]
        ours = scopes.qualified_name(node.func)
        if ours == theirs:
            counts["same"] += 1
            continue
        head = node.func
        while isinstance(head, ast.Attribute):
            head = head.value
        if id(head) in in_comprehension:
            kind = "differ: a comprehension's own variable"
        elif outside:
            kind = "differ: evaluated outside the function (decorator, default)"
        else:
            kind = "DIFFER"
        counts[kind] += 1
        if len(shown) < show and kind == "DIFFER":
            shown.append(f"{path}:{key[0]}:{key[1]}: stdlib {ours!r}, LibCST {theirs!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--show", type=int, default=20)
    args = parser.parse_args()
    counts: Counter[str] = Counter()
    shown: list[str] = []
    for path in sorted(args.directory.rglob("*.py")):
        check(path, counts, shown, args.show)
    for key, value in sorted(counts.items()):
        print(f"{key}: {value}")
    for line in shown:
        print(line)
    sys.exit(1 if counts["DIFFER"] else 0)


if __name__ == "__main__":
    main()
