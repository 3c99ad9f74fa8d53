"""Applying fixes to a LibCST module: replacements, a new ``__init__``, statements a function
or the module gains, imports."""

from __future__ import annotations

import ast
import bisect
import dataclasses
import difflib
import sys
from collections.abc import Sequence
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from asyncfix.analysis.source import python_lines
from asyncfix.codemods.base import Hit, ImportItem, Locate
from asyncfix.engine.detect import Analysis
from asyncfix.imports import add_stdlib_import, is_docstring, is_stdlib, split_at_comments
from asyncfix.model import Edit, Span

#: LibCST writes code recursively (several frames per nesting level). CPython itself parses
#: at most 200 nested brackets, so this is room for every file Python can run
RECURSION_LIMIT = 4000
sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))


class _Replace(cst.CSTTransformer):
    def __init__(
        self,
        replace: dict[cst.CSTNode, Any],
        function_prelude: dict[cst.FunctionDef, list[cst.BaseStatement]],
        class_init: dict[cst.ClassDef, list[cst.BaseStatement]] | None = None,
    ) -> None:
        super().__init__()
        self.replace = replace
        self.function_prelude = function_prelude
        self.class_init = class_init or {}

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        if isinstance(original_node, cst.FunctionDef) and original_node in self.function_prelude:
            assert isinstance(updated_node, cst.FunctionDef)
            updated_node = _prepend(updated_node, self.function_prelude[original_node])
        if isinstance(original_node, cst.ClassDef) and original_node in self.class_init:
            assert isinstance(updated_node, cst.ClassDef)
            updated_node = _add_init(updated_node, self.class_init[original_node])
        return self.replace.get(original_node, updated_node)


def _add_init(cls: cst.ClassDef, statements: list[cst.BaseStatement]) -> cst.ClassDef:
    """A new ``def __init__(self) -> None:`` holding ``statements`` (each once), before the
    class's first method."""
    body = cls.body
    if not isinstance(body, cst.IndentedBlock):
        return cls
    unique = _each_once(statements)
    existing = list(body.body)
    at = next((i for i, s in enumerate(existing) if isinstance(s, cst.FunctionDef)), len(existing))
    blank = [cst.EmptyLine(indent=False)]
    first = existing[at] if at < len(existing) else None
    leading: Sequence[cst.EmptyLine] = blank
    if isinstance(first, cst.FunctionDef):
        # the blank lines before the method go before `__init__`; the comments that explain
        # the method (and its decorators) stay with it
        leading, comments = split_at_comments(list(first.leading_lines))
        existing[at] = first.with_changes(leading_lines=[*blank, *comments])
    init = cst.FunctionDef(
        name=cst.Name("__init__"),
        params=cst.Parameters(params=[cst.Param(cst.Name("self"))]),
        returns=cst.Annotation(cst.Name("None")),
        body=cst.IndentedBlock(body=unique),
        leading_lines=leading,
    )
    if not isinstance(first, cst.FunctionDef) and at == 0:
        init = init.with_changes(leading_lines=[])
    return cls.with_changes(body=body.with_changes(body=[*existing[:at], init, *existing[at:]]))


def _prepend(function: cst.FunctionDef, statements: list[cst.BaseStatement]) -> cst.FunctionDef:
    """``statements`` at the start of ``function``'s body, after its docstring; each once."""
    body = function.body
    if not isinstance(body, cst.IndentedBlock):
        return function  # one-line body: the fix's own statement is there, nothing to share
    existing = list(body.body)
    at = 1 if existing and function.get_docstring(clean=False) is not None else 0
    new = _each_once(statements, existing)
    return function.with_changes(
        body=body.with_changes(body=[*existing[:at], *new, *existing[at:]])
    )


def _overlaps(a: Span, b: Span) -> bool:
    return (a.line, a.col) < (b.end_line, b.end_col) and (b.line, b.col) < (a.end_line, a.end_col)


#: LibCST node types a walk skips: whitespace and punctuation, no code a fix looks for
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


class _Locate(Locate):
    """Where the LibCST twins of stdlib nodes are: by position (one write-out of the module,
    only for a file with a fix to build)."""

    def __init__(self, module: cst.Module) -> None:
        positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        self.spans: dict[int, Span] = {}
        self._by_type: dict[type, list[tuple[Span, cst.CSTNode]]] = {}
        self._sorted_by_type: dict[
            type, tuple[list[tuple[int, int, int, int]], list[tuple[Span, cst.CSTNode]]]
        ] = {}
        for node, where in positions.items():
            span = Span(
                where.start.line, where.start.column + 1, where.end.line, where.end.column + 1
            )
            self.spans[id(node)] = span
            self._by_type.setdefault(type(node), []).append((span, node))
        self._parents: dict[int, cst.CSTNode] = {}
        stack: list[cst.CSTNode] = [module]
        while stack:
            node = stack.pop()
            for child in children(node):
                self._parents[id(child)] = node
                stack.append(child)

    def find(self, span: Span, kind: type[cst.CSTNode]) -> cst.CSTNode:
        """The innermost node of type ``kind`` whose range holds ``span`` (a LibCST node's
        range includes its parentheses, a stdlib node's does not). The nodes of a type are
        sorted by where they start (at one start, the longest first): walking back from the
        span's start, the first that holds it is the innermost (a scan of all of them for
        each fix made a module of thousands of fixes take minutes)."""
        nodes = self._sorted(kind)
        at = bisect.bisect_right(nodes[0], (span.line, span.col, sys.maxsize, sys.maxsize))
        for index in range(at - 1, -1, -1):
            where, node = nodes[1][index]
            if _holds(where, span):
                return node
        raise LookupError(f"no {kind.__name__} at line {span.line}, column {span.col}")

    def _sorted(
        self, kind: type[cst.CSTNode]
    ) -> tuple[list[tuple[int, int, int, int]], list[tuple[Span, cst.CSTNode]]]:
        found = self._sorted_by_type.get(kind)
        if found is None:
            pairs = sorted(
                self._by_type.get(kind, ()),
                key=lambda pair: (pair[0].line, pair[0].col, -pair[0].end_line, -pair[0].end_col),
            )
            keys = [(w.line, w.col, -w.end_line, -w.end_col) for w, _ in pairs]
            found = self._sorted_by_type[kind] = (keys, pairs)
        return found

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self._parents.get(id(node))


def _holds(outer: Span, inner: Span) -> bool:
    starts = (outer.line, outer.col) <= (inner.line, inner.col)
    return starts and (inner.end_line, inner.end_col) <= (outer.end_line, outer.end_col)


def build_pending(analysis: Analysis, hits: Sequence[Hit]) -> None:
    """Build the fixes of the findings on the LibCST tree (parsed now, if an earlier round
    did not): each fix is made from the node at its finding's position."""
    pending = [hit for hit in hits if hit.pending is not None]
    if not pending:
        return
    if analysis.module is None:
        analysis.module = cst.parse_module(analysis.text)
    locate = _Locate(analysis.module)
    for hit in pending:
        wanted = hit.pending
        assert wanted is not None and hit.fix is not None and wanted.span is not None
        node = locate.find(wanted.span, wanted.kind)
        fix = wanted.build(node, locate)
        if fix.safety is not hit.fix.safety or fix.changes != hit.fix.changes:
            raise ValueError(f"the {hit.rule.code} fix built differs from the one reported")
        hit.fix = fix
        hit.pending = None
        for replaced in fix.replace:
            analysis.spans[id(replaced)] = locate.spans[id(replaced)]


def apply_fixes(analysis: Analysis, fixable: list[Hit]) -> tuple[cst.Module, list[Hit]]:
    """Apply the fixes whose replaced nodes do not overlap; the rest wait for the next round."""
    build_pending(analysis, fixable)
    chosen: list[Hit] = []
    #: the spans taken, by each line they cover (what may overlap a span is on its lines)
    taken: dict[int, list[Span]] = {}
    replace: dict[cst.CSTNode, Any] = {}
    for hit in fixable:
        assert hit.fix is not None
        spans = [analysis.spans[id(node)] for node in hit.fix.replace]
        if any(
            _overlaps(span, other)
            for span in spans
            for line in range(span.line, span.end_line + 1)
            for other in taken.get(line, ())
        ):
            continue
        chosen.append(hit)
        for span in spans:
            for line in range(span.line, span.end_line + 1):
                taken.setdefault(line, []).append(span)
        replace.update(hit.fix.replace)
    assert analysis.module is not None  # there are hits, so the file was parsed
    function_prelude: dict[cst.FunctionDef, list[cst.BaseStatement]] = {}
    class_init: dict[cst.ClassDef, list[cst.BaseStatement]] = {}
    for hit in chosen:
        assert hit.fix is not None
        # fixes that share a lock (an accessor pair's group) each create it: once
        for function, statement in hit.fix.function_prelude:
            function_prelude.setdefault(function, []).append(statement)  # each once: later
        for cls, statement in hit.fix.class_init:
            class_init.setdefault(cls, []).append(statement)  # each once: later
    module = analysis.module.visit(_Replace(replace, function_prelude, class_init))
    prelude: dict[str, cst.BaseStatement] = {}
    for hit in chosen:
        assert hit.fix is not None
        prelude.update(hit.fix.prelude)
    if prelude:
        module = _insert_prelude(module, list(prelude.values()))
    # imported here: only runs that fix pay for LibCST's codemod machinery (0.2 s to import)
    from libcst.codemod import CodemodContext
    from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

    context = CodemodContext()
    adds = []
    for hit in chosen:
        assert hit.fix is not None
        for item in hit.fix.add_imports:
            if item.obj is None and item.asname is None and is_stdlib(item.module):
                module = add_stdlib_import(module, item.module)
            else:
                adds.append(item)
    # each once: an import a hundred fixes leave unused is one removal, not a hundred passes
    removes = list(dict.fromkeys(i for hit in chosen if hit.fix for i in hit.fix.remove_unused))
    for item in adds:
        AddImportsVisitor.add_needed_import(context, item.module, item.obj, item.asname)
    if adds:
        module = AddImportsVisitor(context).transform_module(module)
    before = module.body[0] if module.body else None
    module, removes = _remove_plain_imports(module, removes)
    if removes:
        context = CodemodContext()
        for item in removes:
            RemoveImportsVisitor.remove_unused_import(context, item.module, item.obj, item.asname)
        module = RemoveImportsVisitor(context).transform_module(module)
    if module.body and before is not None and module.body[0] is not before:
        module = _no_leading_blank_lines(module, before)
    return module, chosen


def _remove_plain_imports(
    module: cst.Module, items: list[ImportItem]
) -> tuple[cst.Module, list[ImportItem]]:
    """Remove each ``import name`` line (a module-level statement of that one import) whose
    name the module no longer uses, as the stdlib tree of its code says; the items not of
    that shape are returned for LibCST's RemoveImportsVisitor, whose scope analysis took
    minutes on a large module."""
    plain = {
        item.module: item
        for item in items
        if item.obj is None and item.asname is None and "." not in item.module
    }
    lines: dict[str, int] = {}
    for index, statement in enumerate(module.body):
        found = _plain_import(statement)
        if found is not None and found in plain and found not in lines:
            lines[found] = index
    if not lines:
        return module, items
    try:
        tree = ast.parse(module.code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return module, items
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            used.update(node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            used.add(node.value)  # `__all__ = ["time"]`, a string annotation: kept, to be safe
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname is None and "." in alias.name:  # `import os.path` binds os
                    used.add(alias.name.split(".", 1)[0])
    dropped = {index for name, index in lines.items() if name not in used}
    body = list(module.body)
    kept: list[cst.BaseStatement] = []
    carried: list[cst.EmptyLine] = []
    for index, statement in enumerate(body):
        if index in dropped:
            assert isinstance(statement, cst.SimpleStatementLine)
            carried.extend(line for line in statement.leading_lines if line.comment is not None)
            continue
        if carried and isinstance(statement, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            statement = statement.with_changes(leading_lines=[*carried, *statement.leading_lines])
            carried = []
        kept.append(statement)
    rest = [item for item in items if item.module not in lines or item is not plain[item.module]]
    return module.with_changes(body=kept), rest


def _plain_import(statement: cst.BaseStatement) -> str | None:
    """``name`` for a line that is ``import name`` alone."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if not isinstance(small, cst.Import) or len(small.names) != 1:
        return None
    alias = small.names[0]
    if alias.asname is not None or not isinstance(alias.name, cst.Name):
        return None
    return alias.name.value


def _each_once(
    statements: Sequence[cst.BaseStatement], there: Sequence[cst.BaseStatement] = ()
) -> list[cst.BaseStatement]:
    """``statements`` without repeats, nor those already ``there``, told apart by their code
    (a comparison of every pair of trees made a class with thousands of fixes take minutes)."""
    seen = {_code(statement) for statement in there}
    unique: list[cst.BaseStatement] = []
    for statement in statements:
        code = _code(statement)
        if code not in seen:
            seen.add(code)
            unique.append(statement)
    return unique


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _no_leading_blank_lines(module: cst.Module, first_before: cst.CSTNode | None) -> cst.Module:
    """When the file's first statement was an import the fix removed, the blank lines that
    separated it from the next statement would now open the file: drop them."""
    if not module.body or first_before is None:
        return module
    first = module.body[0]
    if first.deep_equals(first_before) or not isinstance(
        first, cst.SimpleStatementLine | cst.BaseCompoundStatement
    ):
        return module
    if module.header or not all(line.comment is None for line in first.leading_lines):
        return module
    return module.with_changes(body=[first.with_changes(leading_lines=[]), *module.body[1:]])


def _is_import_block(statement: cst.BaseStatement) -> bool:
    """Imports only: a line of them, or a ``try``/``if`` whose every block holds only imports
    (``if sys.version_info >= (3, 11): from asyncio import Runner`` / ``else: <a backport>``
    is not: what follows its ``else`` is code)."""
    if isinstance(statement, cst.SimpleStatementLine):
        return all(isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body)
    if isinstance(statement, (cst.Try, cst.If)):
        blocks: list[cst.BaseSuite] = [statement.body]
        if isinstance(statement, cst.Try):
            blocks += [handler.body for handler in statement.handlers]
            if statement.orelse is not None:
                blocks.append(statement.orelse.body)
        elif isinstance(statement.orelse, cst.Else):
            blocks.append(statement.orelse.body)
        elif isinstance(statement.orelse, cst.If):
            blocks.append(cst.IndentedBlock(body=[statement.orelse]))
        return all(
            _is_import_block(inner)
            for block in blocks
            for inner in (block.body if isinstance(block, cst.IndentedBlock) else [])
            if isinstance(inner, cst.BaseStatement)
        )
    return False


def _insert_prelude(module: cst.Module, statements: list[cst.BaseStatement]) -> cst.Module:
    """Insert module-level definitions after the leading imports (or the docstring), with a
    blank line before them and the two a following ``def``/``class`` wants."""
    body = list(module.body)
    index = 0
    for position, statement in enumerate(body):
        if _is_import_block(statement):
            index = position + 1
        elif isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            break
        elif position == 0 and is_docstring(statement):
            index = 1
    new = [
        statement.with_changes(leading_lines=[cst.EmptyLine()] if index and at == 0 else [])
        if isinstance(statement, cst.SimpleStatementLine)
        else statement
        for at, statement in enumerate(statements)
    ]
    if index < len(body):
        following = body[index]
        wanted = 2 if isinstance(following, (cst.FunctionDef, cst.ClassDef)) else 1
        if isinstance(following, cst.SimpleStatementLine | cst.BaseCompoundStatement):
            blanks = sum(1 for line in following.leading_lines if line.comment is None)
            if blanks < wanted:
                blank = [cst.EmptyLine()] * (wanted - blanks)
                body[index] = following.with_changes(
                    leading_lines=[*blank, *following.leading_lines]
                )
    return module.with_changes(body=[*body[:index], *new, *body[index:]])


def _preview(old_text: str, new_text: str, span: Span) -> list[str]:
    """The changed lines of ``new_text`` next to (or in) the finding's lines."""
    old = python_lines(old_text)
    new = python_lines(new_text)
    lines: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        first, last = i1 + 1, max(i1 + 1, i2)
        if first <= span.end_line + 1 and last >= span.line:
            lines += [f"- {line}" for line in old[i1:i2]]
            lines += [f"+ {line}" for line in new[j1:j2]]
    return lines


def edits_between(old_text: str, new_text: str) -> list[Edit]:
    """``new_text`` as line edits of ``old_text`` (``model.Edit``), first to last."""
    old = python_lines(old_text, keepends=True)
    new = python_lines(new_text, keepends=True)
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    return [
        Edit(i1 + 1, i2 + 1, "".join(new[j1:j2]))
        for tag, i1, i2, j1, j2 in matcher.get_opcodes()
        if tag != "equal"
    ]
