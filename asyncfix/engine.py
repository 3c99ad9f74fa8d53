"""The per-file pipeline: decode, parse once, analyse, fix to a fixpoint, verify.

``process_file`` runs in worker processes and returns plain data (``FileResult``);
``run`` discovers files, fans them out, and writes verified results atomically.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import gc
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider
from libcst.metadata.position_provider import PositionProvidingCodegenState

from asyncfix import __version__
from asyncfix import index as index_module
from asyncfix.cache import ResultCache, prepare, settings_key, write_atomically
from asyncfix.codemods import RULES, rule_by_code
from asyncfix.codemods.base import SUPPRESS, Context, Hit, Project, Rule, forget_ast_memo
from asyncfix.codemods.walk import children
from asyncfix.config import Config
from asyncfix.files import (
    SourceError,
    atomic_write,
    decode,
    discover,
    display_path,
    is_test_path,
    patch_path,
    relative,
)
from asyncfix.imports import add_stdlib_import, is_docstring, is_stdlib, split_at_comments
from asyncfix.index import (
    ModuleFact,
    Names,
    ProjectIndex,
    Raw,
    Stub,
    facts_from_source,
    module_name,
    parse_ast,
    to_raw,
    too_deep,
)
from asyncfix.model import FileResult, Finding, RunResult, Safety, Span, Validation

MAX_ROUNDS = 5
#: LibCST writes code recursively (several frames per nesting level). CPython itself parses
#: at most 200 nested brackets, so this is room for every file Python can run
RECURSION_LIMIT = 4000
sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
#: below this many files the pool costs more than it saves
POOL_THRESHOLD = 16
#: the collector's youngest-generation threshold while files are parsed (Python's is 700).
#: Parsers allocate millions of objects that live until the file is done and form few
#: cycles; at 700 the collector runs every few lines of source and, at each older-generation
#: pass, scans the project index too -- a fifth of a cold run
GC_THRESHOLD = 50_000


@dataclass(frozen=True)
class Task:
    path: str
    display: str
    codes: frozenset[str]
    unsafe: bool
    #: compute fixes (diff, write, or a report that shows them)
    fix: bool
    target: tuple[int, int]
    #: also compute each finding's own fix preview (for the report)
    preview: bool = False
    #: the project's own offloading helpers (config ``offload-functions``)
    offload: tuple[str, ...] = ()
    #: the file is test code (``files.is_test_path``)
    test_code: bool = False
    #: fixes to leave out, by ``Finding.fix_id`` (``--validate`` found they break the tests)
    excluded: frozenset[str] = frozenset()


@dataclass
class Analysis:
    """One parse of one source and what the enabled rules found in it."""

    #: None when no rule could apply and the file was never parsed with LibCST
    module: cst.Module | None
    hits: list[Hit]
    spans: dict[int, Span]

    def span(self, hit: Hit) -> Span:
        return self.spans[id(hit.node)]


class TooDeep(Exception):
    """The source nests deeper than the parser can follow."""


def analyse(
    text: str,
    rules: Sequence[type[Rule]],
    target: tuple[int, int],
    project: Project | None = None,
    offload: tuple[str, ...] = (),
    test_code: bool = False,
) -> Analysis:
    """Parse ``text`` once and run every rule in one walk; suppressed findings are dropped.

    Most files cannot hold a finding: rules first look at the text and at the stdlib ``ast``
    (several times cheaper than LibCST), and a file that Python parses and no rule wants is
    never parsed with LibCST. A file Python cannot parse (a syntax error, or syntax newer than
    this interpreter) always is: LibCST tells which of the two it is.
    """
    active = [rule for rule in rules if rule.may_apply(text)]
    tree = _ast_parse(text)
    if tree is not None:
        active = [rule for rule in active if rule.may_apply_to_ast(tree, project)]
        forget_ast_memo(tree)
        if not active:
            return Analysis(None, [], {})
    try:
        module = cst.parse_module(text)
    except RecursionError:
        raise TooDeep from None
    if not active:
        return Analysis(module, [], {})
    hits = Context(module, active, target, project, offload, test_code).run()
    if not hits:
        return Analysis(module, [], {})
    # positions only for files with findings, and only of the nodes findings point at
    wanted: dict[int, cst.CSTNode] = {}
    for hit in hits:
        wanted[id(hit.node)] = hit.node
        if hit.fix is not None:
            for node in hit.fix.replace:
                wanted[id(node)] = node
        for _, site in hit.evidence:
            if site is not None:
                wanted[id(site)] = site
    try:
        spans = _spans(module, tree, wanted)
    except RecursionError:
        raise TooDeep from None
    lines = text.splitlines()
    kept = [hit for hit in hits if not _suppressed(hit, spans[id(hit.node)], lines)]
    kept.sort(key=lambda hit: (spans[id(hit.node)].line, spans[id(hit.node)].col, hit.rule.code))
    return Analysis(module, kept, spans)


def _spans(
    module: cst.Module, tree: ast.Module | None, wanted: dict[int, cst.CSTNode]
) -> dict[int, Span]:
    """Where each wanted node is. LibCST finds positions by writing out the whole module;
    for a large file with one finding that costs more than the analysis. So only the
    innermost statements that hold wanted nodes are written out (``_place``), and moved to
    where the stdlib tree says they start -- checked against where they end. The whole
    module is used when the two trees do not line up."""
    if tree is not None:
        try:
            found = _spans_by_statement(module, tree, wanted)
        except (AttributeError, TypeError, KeyError):
            found = None  # LibCST's internals (``_positions``) changed: the public way
        if found is not None:
            return found
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    return {key: _span(positions[node]) for key, node in wanted.items()}


def _spans_by_statement(
    module: cst.Module, tree: ast.Module, wanted: dict[int, cst.CSTNode]
) -> dict[int, Span] | None:
    spans: dict[int, Span] = {}
    placed = _place(module, module.body, tree.body, (), wanted, spans)
    if placed is None or len(placed) != len(wanted):
        return None
    return spans


def _suites(statement: cst.BaseStatement, node: ast.stmt) -> list[tuple[cst.BaseSuite, Any]]:
    """The indented blocks of a compound statement, each with the stdlib statements of the
    same block (an ``elif`` chain and ``try``/``except*`` are not descended into)."""
    if isinstance(statement, cst.ClassDef) and isinstance(node, ast.ClassDef):
        return [(statement.body, node.body)]
    if isinstance(statement, cst.FunctionDef) and isinstance(
        node, (ast.FunctionDef, ast.AsyncFunctionDef)
    ):
        return [(statement.body, node.body)]
    if isinstance(statement, cst.With) and isinstance(node, (ast.With, ast.AsyncWith)):
        return [(statement.body, node.body)]
    suites: list[tuple[cst.BaseSuite, Any]] = []
    if (isinstance(statement, cst.For) and isinstance(node, (ast.For, ast.AsyncFor))) or (
        isinstance(statement, cst.While) and isinstance(node, ast.While)
    ):
        suites.append((statement.body, node.body))
        if statement.orelse is not None:
            suites.append((statement.orelse.body, node.orelse))
    elif isinstance(statement, cst.If) and isinstance(node, ast.If):
        suites.append((statement.body, node.body))
        if isinstance(statement.orelse, cst.Else):
            suites.append((statement.orelse.body, node.orelse))
    elif isinstance(statement, cst.Try) and isinstance(node, ast.Try):
        suites.append((statement.body, node.body))
        if len(statement.handlers) == len(node.handlers):
            pairs = zip(statement.handlers, node.handlers, strict=True)
            suites.extend((handler.body, twin.body) for handler, twin in pairs)
        if statement.orelse is not None:
            suites.append((statement.orelse.body, node.orelse))
        if statement.finalbody is not None:
            suites.append((statement.finalbody.body, node.finalbody))
    return suites


def _place(
    module: cst.Module,
    statements: Sequence[cst.BaseStatement],
    nodes: list[ast.stmt],
    indents: tuple[str, ...],
    wanted: dict[int, cst.CSTNode],
    spans: dict[int, Span],
) -> set[int] | None:
    """Put into ``spans`` the spans of the wanted nodes that lie inside ``statements`` (a
    block whose stdlib statements are ``nodes``, indented by ``indents``); returns their
    keys, or None when the two trees do not line up. A statement whose wanted nodes all lie
    in its indented blocks is not written out itself: its blocks are placed the same way."""
    # the stdlib statements of each LibCST statement (`a; b` is one line, two statements)
    lines: list[tuple[ast.stmt, ast.stmt]] = []
    next_ = 0
    for statement in statements:
        count = len(statement.body) if type(statement) is cst.SimpleStatementLine else 1
        if count < 1 or next_ + count > len(nodes):
            return None
        lines.append((nodes[next_], nodes[next_ + count - 1]))
        next_ += count
    if next_ != len(nodes):
        return None
    # which statement holds each wanted node
    owned: dict[int, dict[int, cst.CSTNode]] = {}
    remaining = set(wanted)
    for index, statement in enumerate(statements):
        stack: list[cst.CSTNode] = [statement]
        while stack:
            node = stack.pop()
            key = id(node)
            if key in remaining:
                owned.setdefault(index, {})[key] = wanted[key]
                remaining.discard(key)
            stack.extend(children(node))
        if not remaining:
            break
    for index, keys in owned.items():
        statement = statements[index]
        first, last = lines[index]
        if id(statement) not in keys and _place_inside(
            module, statement, first, indents, keys, spans
        ):
            continue
        positions = _positions(module, statement, indents)
        own = positions[statement]
        shift = first.lineno - own.start.line
        if last.end_lineno is None or last.end_lineno - own.end.line != shift:
            return None
        for key, node in keys.items():
            span = _span(positions[node])
            spans[key] = dataclasses.replace(
                span, line=span.line + shift, end_line=span.end_line + shift
            )
    return set(wanted) - remaining


def _place_inside(
    module: cst.Module,
    statement: cst.BaseStatement,
    node: ast.stmt,
    indents: tuple[str, ...],
    keys: dict[int, cst.CSTNode],
    spans: dict[int, Span],
) -> bool:
    """Place ``keys`` through the indented blocks of ``statement``; False (and ``spans``
    untouched) unless every one of them lies in one and the trees line up."""
    left = dict(keys)
    inner: dict[int, Span] = {}
    for block, inside in _suites(statement, node):
        if not left:
            break
        if type(block) is not cst.IndentedBlock:
            continue
        indent = module.default_indent if block.indent is None else block.indent
        placed = _place(module, block.body, inside, (*indents, indent), left, inner)
        if placed is None:
            return False
        for key in placed:
            del left[key]
    if left:
        return False
    spans.update(inner)
    return True


def _positions(
    module: cst.Module, statement: cst.BaseStatement, indents: tuple[str, ...]
) -> Mapping[cst.CSTNode, Any]:
    """LibCST's positions of the nodes of ``statement``, written out alone with the
    indentation of the blocks around it (so columns are right; lines count from its first
    leading line). ``MetadataWrapper`` would also walk the tree once for nothing. This uses
    LibCST's internals; ``_spans`` falls back to the public way if they change."""
    provider = PositionProvider()
    state = PositionProvidingCodegenState(
        default_indent=module.default_indent,
        default_newline=module.default_newline,
        provider=provider,
        indent_tokens=list(indents),
    )
    statement._codegen(state)
    return provider._computed


def _ast_parse(text: str) -> ast.Module | None:
    """The stdlib tree (``index.parse_ast``: type-parameter syntax too), or None when only
    LibCST can tell (a syntax error, or syntax newer than this Python); TooDeep when the code
    nests deeper than either parser can follow."""
    try:
        return parse_ast(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        if too_deep(exc):
            raise TooDeep from None
        return None


def _span(range_: Any) -> Span:
    return Span(range_.start.line, range_.start.column + 1, range_.end.line, range_.end.column + 1)


def _suppressed(hit: Hit, span: Span, lines: list[str]) -> bool:
    for number in {span.line, span.end_line}:
        if number - 1 >= len(lines):
            continue
        for match in SUPPRESS.finditer(lines[number - 1]):
            codes = match.group("codes") or match.group("noqa")
            if codes is None:
                return True
            named = {code.strip() for code in codes.replace(" ", ",").split(",")}
            if hit.rule.code in named or named.intersection(hit.rule.equivalent_codes):
                return True
    return False


def to_finding(hit: Hit, analysis: Analysis) -> Finding:
    rule = hit.rule
    span = analysis.span(hit)
    fix = hit.fix
    return Finding(
        code=rule.code,
        name=rule.name,
        message=hit.message,
        severity=rule.severity,
        span=span,
        fix_safety=fix.safety if fix is not None else Safety.NONE,
        fix_changes=list(fix.changes) if fix is not None else [],
        fix_id=fix_id(hit) if fix is not None else "",
        evidence=[
            text.replace("{line}", str(analysis.spans[id(node)].line)) if node is not None else text
            for text, node in hit.evidence
        ],
    )


# -- fixing -------------------------------------------------------------------------------


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
    unique: list[cst.BaseStatement] = []
    for statement in statements:
        if not any(statement.deep_equals(other) for other in unique):
            unique.append(statement)
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
    new: list[cst.BaseStatement] = []
    for statement in statements:
        if not any(statement.deep_equals(other) for other in [*existing, *new]):
            new.append(statement)
    return function.with_changes(
        body=body.with_changes(body=[*existing[:at], *new, *existing[at:]])
    )


def _overlaps(a: Span, b: Span) -> bool:
    return (a.line, a.col) < (b.end_line, b.end_col) and (b.line, b.col) < (a.end_line, a.end_col)


def apply_fixes(analysis: Analysis, fixable: list[Hit]) -> tuple[cst.Module, list[Hit]]:
    """Apply the fixes whose replaced nodes do not overlap; the rest wait for the next round."""
    chosen: list[Hit] = []
    taken: list[Span] = []
    replace: dict[cst.CSTNode, Any] = {}
    for hit in fixable:
        assert hit.fix is not None
        spans = [analysis.spans[id(node)] for node in hit.fix.replace]
        if any(_overlaps(span, other) for span in spans for other in taken):
            continue
        chosen.append(hit)
        taken.extend(spans)
        replace.update(hit.fix.replace)
    assert analysis.module is not None  # there are hits, so the file was parsed
    function_prelude: dict[cst.FunctionDef, list[cst.BaseStatement]] = {}
    class_init: dict[cst.ClassDef, list[cst.BaseStatement]] = {}
    for hit in chosen:
        assert hit.fix is not None
        for function, statement in hit.fix.function_prelude:
            function_prelude.setdefault(function, []).append(statement)
        for cls, statement in hit.fix.class_init:
            class_init.setdefault(cls, []).append(statement)
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
    removes = [item for hit in chosen if hit.fix for item in hit.fix.remove_unused]
    for item in adds:
        AddImportsVisitor.add_needed_import(context, item.module, item.obj, item.asname)
    if adds:
        module = AddImportsVisitor(context).transform_module(module)
    if removes:
        context = CodemodContext()
        for item in removes:
            RemoveImportsVisitor.remove_unused_import(context, item.module, item.obj, item.asname)
        before = module.body[0] if module.body else None
        module = RemoveImportsVisitor(context).transform_module(module)
        module = _no_leading_blank_lines(module, before)
    return module, chosen


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
    old = old_text.splitlines()
    new = new_text.splitlines()
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


def _compiles(text: str, path: str) -> tuple[bool, str]:
    try:
        compile(text, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return False, f"{exc.msg} (line {exc.lineno})"
    except ValueError as exc:
        return False, str(exc)
    return True, ""


def process_file(task: Task) -> FileResult:
    """Read, decode and process one file; every problem becomes ``FileResult.error``."""
    result = FileResult(path=task.path, display=task.display)
    try:
        raw = Path(task.path).read_bytes()
        result.content = hashlib.sha256(raw).hexdigest()
        source = decode(raw)
    except FileNotFoundError:
        result.error = "file vanished before it could be read"
        return result
    except IsADirectoryError:
        result.error = "is a directory"
        return result
    except OSError as exc:
        result.error = f"cannot read: {exc.strerror or exc}"
        return result
    except SourceError as exc:
        result.error = str(exc)
        return result
    result.encoding, result.bom = source.encoding, source.bom
    index = _INDEX
    if index is None:
        process_text(source.text, task, result)
    else:
        consulted = index.record()
        try:
            process_text(source.text, task, result)
        finally:
            index.stop_recording()
        module = index.module_of(task.path)
        if module is not None and any(rule_by_code(c).needs_index for c in task.codes):
            result.depends = index.dependencies(module, consulted)
    if result.fixed is not None:
        try:
            source.encode(result.fixed)
        except UnicodeEncodeError as exc:
            result.internal_error = f"fixed text cannot be encoded as {source.encoding}: {exc}"
            result.fixed = None
    return result


def process_text(text: str, task: Task, result: FileResult) -> None:
    """Analyse ``text`` and, when ``task.fix``, fix it to a verified fixpoint."""
    rules = [rule_by_code(code) for code in sorted(task.codes)]
    project = _project_for(task.path, rules)
    try:
        analysis = analyse(text, rules, task.target, project, task.offload, task.test_code)
    except cst.ParserSyntaxError as exc:
        result.error = _syntax_error(text, exc)
        return
    except TooDeep:
        result.error = "too deeply nested to parse"
        return
    except RecursionError:
        result.internal_error = (
            "asyncfix's analysis recursed too deeply on this file (a bug: please report it); "
            "file left as it was"
        )
        return
    except Exception as exc:  # a bug in a rule must not stop the run or lose other files
        result.internal_error = (
            f"asyncfix failed on this file ({type(exc).__name__}: {exc}); a bug, please report "
            "it; file left as it was"
        )
        return
    result.findings = [to_finding(hit, analysis) for hit in analysis.hits]
    if result.findings:
        result.original = text
    if task.preview:
        _previews(text, analysis, result)
    fixable = [hit for hit in analysis.hits if _fixable(hit, task.unsafe)]
    if not task.fix or not fixable:
        result.remaining = [f for f in result.findings if not f.fixable(task.unsafe)]
        return
    try:
        _fix_to_fixpoint(task, text, analysis, result, rules, project)
    except Exception as exc:  # a fix crashed: never let it take the file (or the run) down
        result.internal_error = f"fix failed: {type(exc).__name__}: {exc}"
        result.fixed = None
        result.remaining = list(result.findings)


def _previews(text: str, analysis: Analysis, result: FileResult) -> None:
    """Each finding's own fix as changed lines, for the report: the unsafe ones a run does
    not apply too (a suggestion shows what it would do). A fix that cannot be applied alone
    gets no preview."""
    for hit, finding in zip(analysis.hits, result.findings, strict=True):
        if hit.fix is None:
            continue
        try:
            module, _ = apply_fixes(analysis, [hit])
        except Exception:  # shown without its lines; the fixpoint reports what failed
            continue
        finding.fix_preview = _preview(text, module.code, finding.span)


def _syntax_error(text: str, exc: cst.ParserSyntaxError) -> str:
    """Python's own message where it has one (its positions are the ones people know)."""
    try:
        ast.parse(text)
    except SyntaxError as error:
        return f"syntax error at line {error.lineno}, column {error.offset}: {error.msg}"
    except (ValueError, RecursionError, MemoryError):
        pass
    first = exc.message.splitlines()[0] if exc.message else "cannot parse"
    return f"LibCST cannot parse this file (line {exc.raw_line}): {first}"


#: the project index of this run, set in each worker process (see ``_map``)
_INDEX: ProjectIndex | None = None


def _set_index(index: ProjectIndex | None) -> None:
    global _INDEX
    _INDEX = index


def _start_worker(index: ProjectIndex | None = None) -> None:
    """A pool worker's set-up: the run's index, and the collector tuned for parsing."""
    _set_index(index)
    _tune_gc()


def _tune_gc() -> tuple[int, int, int]:
    """Collect less often while parsing, and never scan again what exists now (the index,
    the rules); returns the thresholds to restore (``_restore_gc``)."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *previous[1:])
    return previous


def _restore_gc(previous: tuple[int, int, int]) -> None:
    gc.set_threshold(*previous)
    gc.unfreeze()


def _project_for(path: str, rules: Sequence[type[Rule]]) -> Project | None:
    if _INDEX is None or not any(rule.needs_index for rule in rules):
        return None
    module = _INDEX.module_of(path)
    return Project(_INDEX, module) if module is not None else None


def _fixable(hit: Hit, unsafe: bool) -> bool:
    return hit.fix is not None and (
        hit.fix.safety is Safety.SAFE or (unsafe and hit.fix.safety is Safety.UNSAFE)
    )


#: how a fix is known across rounds and runs (positions move as other fixes land): a digest
#: of its rule, its message and the text of the node it reports (``Finding.fix_id``)
FixKey = str


def fix_id(hit: Hit) -> FixKey:
    spelled = cst.Module(body=[]).code_for_node(hit.node)
    return hashlib.sha256(repr((hit.rule.code, hit.message, spelled)).encode()).hexdigest()[:16]


@dataclass
class _Attempt:
    """One run of the fix-verify loop with some fixes left out."""

    validation: Validation
    #: the verified text, or None when it did not verify
    text: str | None
    #: the analysis of the last round's output
    current: Analysis | None
    #: the fixes applied over all rounds
    applied: list[FixKey]
    #: why it did not verify ("" when it did)
    error: str = ""


def _attempt(
    task: Task,
    text: str,
    analysis: Analysis,
    rules: Sequence[type[Rule]],
    project: Project | None,
    excluded: set[FixKey],
) -> _Attempt:
    """Apply the fixable findings (but ``excluded``) to a fixpoint, then verify: the output
    re-parses and re-checks with nothing left to fix, and compiles."""
    validation = Validation()
    applied: list[FixKey] = []
    applied_codes: set[str] = set()
    current = analysis
    new_text = text

    def fixable_in(found: Analysis) -> list[Hit]:
        return [h for h in found.hits if _fixable(h, task.unsafe) and fix_id(h) not in excluded]

    def failed(error: str) -> _Attempt:
        return _Attempt(validation, None, None, applied, error)

    fixable = fixable_in(current)
    while fixable and validation.rounds < MAX_ROUNDS:
        try:
            module, chosen = apply_fixes(current, fixable)
        except RecursionError:
            return failed("the file nests too deeply to rewrite")
        except Exception as exc:  # a fix that cannot be applied
            applied.extend(fix_id(hit) for hit in fixable)
            return failed(f"applying the fixes failed ({type(exc).__name__}: {exc}); a bug")
        applied.extend(fix_id(hit) for hit in chosen)
        applied_codes.update(hit.rule.code for hit in chosen)
        new_text = module.code
        validation.rounds += 1
        try:
            current = analyse(new_text, rules, task.target, project, task.offload, task.test_code)
        except cst.ParserSyntaxError as exc:
            validation.reparse = False
            return failed(f"fixed code does not re-parse: {exc.message}")
        except (TooDeep, RecursionError):
            return failed("fixed code could not be re-checked (nested too deeply)")
        except Exception as exc:  # a bug in a rule
            return failed(f"re-checking the fixed code failed ({type(exc).__name__}: {exc}); a bug")
        fixable = fixable_in(current)
    validation.reparse = True
    validation.recheck = {
        code: sum(1 for hit in fixable if hit.rule.code == code) for code in sorted(applied_codes)
    }
    validation.second_run_clean = not fixable
    if fixable:
        still = ", ".join(sorted({hit.rule.code for hit in fixable}))
        return failed(
            f"fixes did not reach a fixpoint in {MAX_ROUNDS} rounds ({still} still fixable)"
        )
    ok, why = _compiles(new_text, task.path)
    if ok:
        validation.compile = True
    else:
        original_ok, _ = _compiles(text, task.path)
        if original_ok:
            validation.compile = False
            return failed(f"fixed code does not compile: {why}")
        validation.compile = None
        validation.compile_note = (
            f"not run: the file uses syntax Python {sys.version_info[0]}.{sys.version_info[1]} "
            "cannot compile"
        )
    return _Attempt(validation, new_text, current, applied)


def _fix_to_fixpoint(
    task: Task,
    text: str,
    analysis: Analysis,
    result: FileResult,
    rules: Sequence[type[Rule]],
    project: Project | None,
) -> None:
    """Fix and verify; when the output does not verify, find the fixes that break it, leave
    them out (their findings stay, unfixed, with the reason) and apply the others."""
    excluded: set[FixKey] = set(task.excluded)
    attempt = _attempt(task, text, analysis, rules, project, excluded)
    first_error = attempt.error
    budget = 2 * len(set(attempt.applied)) + 2
    while attempt.text is None and budget > 0:
        suspects = [k for k in dict.fromkeys(attempt.applied) if k not in excluded]
        culprit = None
        for key in suspects:  # one fix that breaks the file on its own account
            budget -= 1
            if _attempt(task, text, analysis, rules, project, excluded | {key}).text is not None:
                culprit = key
                break
            if budget <= 0:
                break
        if culprit is not None:
            excluded.add(culprit)
        else:  # several together: keep each one that still verifies with those kept so far
            kept: set[FixKey] = set()
            for key in suspects:
                budget -= 1
                others = {k for k in suspects if k not in kept and k != key}
                if _attempt(task, text, analysis, rules, project, excluded | others).text:
                    kept.add(key)
            excluded.update(k for k in suspects if k not in kept)
        attempt = _attempt(task, text, analysis, rules, project, excluded)
    result.validation = attempt.validation
    if attempt.text is None or attempt.current is None:
        result.internal_error = f"{first_error}; please report it; file left as it was"
        return
    result.fixed = attempt.text
    for finding in result.findings:
        finding.fixed = finding.fixable(task.unsafe) and finding.fix_id not in excluded
        if (
            finding.fixable(task.unsafe)
            and not finding.fixed
            and finding.fix_id not in task.excluded
        ):
            result.dropped.append(
                f"the {finding.code} fix at line {finding.span.line} was left out: with it "
                f"the file did not verify ({first_error}); a bug, please report it"
            )
    result.remaining = [to_finding(hit, attempt.current) for hit in attempt.current.hits]


# -- the run --------------------------------------------------------------------------------


def all_codes() -> list[str]:
    return [rule.code for rule in RULES]


def plan(
    paths: Sequence[Path], config: Config, force_exclude: bool = False
) -> tuple[list[Path], list[str]]:
    found = discover(
        paths,
        config.root,
        config.exclude_spec(),
        respect_gitignore=config.respect_gitignore,
        force_exclude=force_exclude,
    )
    return found.files, found.errors


def run(
    paths: Sequence[Path],
    config: Config,
    mode: str,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
    unsafe_fixes: bool | None = None,
    fix_for_report: bool = False,
    force_exclude: bool = False,
    jobs: int | None = None,
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
    validate: str | None = None,
    validate_timeout: float = 600.0,
    cwd: Path | None = None,
) -> RunResult:
    """Analyse ``paths``; in diff/write mode compute verified fixes; in write mode write them
    (with ``validate``: judged by that command, see ``validate.py``).

    Files whose result is in the results cache (``cache.py``) are not analysed again;
    ``progress(done, total)`` is called as files finish."""
    if select is not None:
        config.select = list(select)
    if ignore is not None:
        config.ignore = [*config.ignore, *ignore]
    unsafe = config.unsafe_fixes if unsafe_fixes is None else unsafe_fixes
    files, errors = plan(paths, config, force_exclude)
    cwd = cwd or Path.cwd()  # paths are shown, and --validate runs, relative to it
    codes = all_codes()
    root = project_root(files, config) or config.root
    tasks = []
    for file in files:
        rel = relative(file, config.root) or file.as_posix()
        tasks.append(
            Task(
                path=str(file),
                display=display_path(file, cwd),
                codes=config.enabled_codes(codes, rel),
                unsafe=unsafe,
                fix=mode in ("diff", "write") or fix_for_report,
                target=config.target,
                preview=fix_for_report,
                offload=tuple(config.offload_functions),
                test_code=is_test_path(relative(file, root) or rel),
            )
        )
    index = None
    if any(rule_by_code(code).needs_index for task in tasks for code in task.codes):
        index = build_index(files, config, jobs)
    results = _analyse_all(tasks, files, config, jobs, index, use_cache, progress)
    for result in results:
        if result.changed:  # only a diff names it
            result.patch_path = patch_path(Path(result.path), cwd, root)
    run_result = RunResult(files=results, mode=mode, unsafe_fixes=unsafe, errors=errors)
    if mode == "write" and validate:
        _validated_write(run_result, tasks, index, validate, validate_timeout, cwd)
    elif mode == "write":
        for result in results:
            if result.changed and not result.internal_error:
                _write(result)
    return run_result


def _validated_write(
    run: RunResult,
    tasks: list[Task],
    index: ProjectIndex | None,
    command: str,
    timeout: float,
    cwd: Path,
) -> None:
    """Write the fixes the project's tests accept (``validate.Validator``)."""
    from asyncfix.validate import Validator

    changed = [r for r in run.files if r.changed and not r.internal_error]
    task_of = {task.path: task for task in tasks}

    def refix(result: FileResult, excluded: frozenset[str]) -> FileResult:
        assert result.original is not None
        task = dataclasses.replace(task_of[result.path], excluded=excluded)
        fresh = FileResult(path=result.path, display=result.display)
        fresh.encoding, fresh.bom, fresh.patch_path = result.encoding, result.bom, result.patch_path
        process_text(result.original, task, fresh)
        return fresh

    validator = Validator(command, cwd, changed, refix, timeout)
    _set_index(index)
    try:
        run.validation = validator.run()
    except OSError as exc:  # a file could not be written back: all were put back as they were
        run.errors.append(f"--validate: {exc}; the files were left as they were")
        run.validation = validator.report
        return
    finally:
        _set_index(None)
    if run.validation.with_fixes is None:  # nothing was written
        run.errors.append(f"--validate: {run.validation.note}")
        return
    final = validator.final_results()
    for position, result in enumerate(run.files):
        if result.path in final:
            done = final[result.path]
            done.written = done.changed and not done.internal_error
            done.content = result.content
            run.files[position] = done


def _analyse_all(
    tasks: list[Task],
    files: list[Path],
    config: Config,
    jobs: int | None,
    index: ProjectIndex | None,
    use_cache: bool,
    progress: Callable[[int, int], None] | None,
) -> list[FileResult]:
    """Every task's result, in task order: from the results cache where it is still valid,
    else analysed (in a process pool when there are enough)."""
    cache = None
    if use_cache and tasks:
        cache = ResultCache((project_root(files, config) or config.root) / INDEX_CACHE)
    digests = index.dependency_digest if index is not None else _no_dependency
    contents = index.contents if index is not None else {}
    results: list[FileResult | None] = [None] * len(tasks)
    # the module a file is (its package structure can change while its text does not)
    module_of = index.module_name_of if index is not None else _no_module
    keys = [_settings(task, module_of(task.path)) for task in tasks]
    misses: list[int] = []
    for position, task in enumerate(tasks):
        hit = None
        if cache is not None:
            content = contents.get(task.path) or _content_digest(task.path)
            if content is not None:
                hit = cache.get(_cache_path(task), content, keys[position], digests)
        if hit is None:
            misses.append(position)
        else:
            hit.path, hit.display, hit.cached = task.path, task.display, True
            results[position] = hit
    done, total = len(tasks) - len(misses), len(tasks)
    if progress is not None:
        progress(done, total)
    for position, result in zip(misses, _map([tasks[i] for i in misses], jobs, index), strict=True):
        results[position] = result
        task = tasks[position]
        if cache is not None and result.content is not None and not result.internal_error:
            cache.put(
                _cache_path(task), result.content, keys[position], result.depends, digests, result
            )
        done += 1
        if progress is not None:
            progress(done, total)
    if cache is not None:
        cache.save()
    return [result for result in results if result is not None]


_SETTINGS: dict[tuple[Any, ...], str] = {}


def _settings(task: Task, module: str) -> str:
    parts = (
        task.codes,
        task.unsafe,
        task.fix,
        task.target,
        task.preview,
        task.offload,
        task.test_code,
        module,
    )
    key = _SETTINGS.get(parts)
    if key is None:
        key = _SETTINGS[parts] = settings_key((sorted(task.codes), *parts[1:]))
    return key


def _no_module(path: str) -> str:
    return ""


def _no_dependency(key: str) -> str:
    return ""


def _cache_path(task: Task) -> str:
    return str(Path(task.path).absolute())


def _content_digest(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _map(
    tasks: list[Task], jobs: int | None, index: ProjectIndex | None = None
) -> Iterator[FileResult]:
    workers = jobs or os.cpu_count() or 1
    if workers <= 1 or len(tasks) < POOL_THRESHOLD:
        _set_index(index)
        previous = _tune_gc()
        try:
            yield from map(process_file, tasks)
        finally:
            _set_index(None)
            _restore_gc(previous)
        return
    chunk = max(1, min(32, len(tasks) // (workers * 8)))
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_start_worker, initargs=(index,)
    ) as pool:
        yield from pool.map(process_file, tasks, chunksize=chunk)


# -- the project index ------------------------------------------------------------------------

INDEX_CACHE = ".asyncfix_cache"


PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


def project_root(processed: Sequence[Path], config: Config) -> Path | None:
    """Where the project of this run starts: the directory of the configuration file, else the
    nearest directory above the first path with a ``pyproject.toml``/``setup.py``/``.git``.
    None when there is none: then only the files named are indexed (never a home directory)."""
    if config.path is not None:
        return config.root
    if not processed:
        return None
    start = processed[0].absolute().parent
    for directory in (start, *start.parents):
        if (directory / "__init__.py").exists():
            continue  # inside a package (Home Assistant has a `setup.py` module)
        if any((directory / marker).exists() for marker in PROJECT_MARKERS):
            return directory
    return None


def build_index(processed: Sequence[Path], config: Config, jobs: int | None) -> ProjectIndex:
    """Facts of the processed files and of the project's other Python files, reusing the
    on-disk cache (``<project root>/.asyncfix_cache``) for files whose content is unchanged.

    The cache holds each file's facts as plain lists and dicts (JSON: reading a cache never
    runs code) that become facts only when a rule asks about that module, and the
    project-wide name sets the pre-filters use, valid while no file changed.
    """
    root = project_root(processed, config)
    others = (
        discover([root], root, config.exclude_spec(), config.respect_gitignore).files
        if root is not None
        else []
    )
    files = sorted({*processed, *others}, key=lambda path: path.parts)
    cache_dir = (root or config.root) / INDEX_CACHE
    cache, cached_names = _load_index_cache(cache_dir)
    raws: list[Raw] = []
    fact_digests: list[str] = []
    contents: dict[str, str] = {}
    missing: list[tuple[Path, str, bytes, tuple[int, int]]] = []
    fresh: dict[str, IndexEntry] = {}
    restamped = False
    for path in files:
        cached = cache.get(str(path))
        try:
            status = os.stat(path)
            stamp = (status.st_size, status.st_mtime_ns)
            if cached is not None and cached[3] == stamp:
                # same size and modification time (in nanoseconds): the same content, as
                # black and ruff assume; nothing to read
                digest, data = cached[0], b""
            else:
                data = path.read_bytes()
                digest = hashlib.sha256(data).hexdigest()
        except OSError:
            continue
        contents[str(path)] = digest
        if (
            cached is not None
            and cached[0] == digest
            and (cached[1] is None or cached[1] == module_name(path)[0])
        ):
            if cached[3] != stamp:
                cached = (*cached[:3], stamp)
                restamped = True
            fresh[str(path)] = cached
            if cached[1] is not None:
                raws.append((cached[1], str(path), cached[2]))  # a stub: read when needed
                fact_digests.append(cached[2])
        else:
            if not data:
                data = path.read_bytes()
            missing.append((path, digest, data, stamp))
    facts = _index_files([(path, data) for path, _, data, _ in missing], jobs)
    made: dict[str, tuple[str, Raw]] = {}
    same_facts = len(fresh) + len(missing) == len(cache)
    for (path, digest, _, stamp), fact in zip(missing, facts, strict=True):
        raw = to_raw(fact) if fact is not None else None
        # what dependents see of this module: its facts, not its text (a comment edited in
        # client.py re-checks nothing else)
        facts_digest = _facts_digest(raw) if raw else ""
        entry = (digest, raw[0] if raw else None, facts_digest, stamp)
        before = cache.get(str(path))
        if before is None or before[1:3] != entry[1:3]:
            same_facts = False
            if raw is not None:
                made[str(path)] = (facts_digest, raw)
        fresh[str(path)] = entry
        if raw is not None:
            raws.append(raw)
            fact_digests.append(facts_digest)
    loader = FactsLoader(cache_dir / f"{_FACTS_FORMAT}.json")
    index = ProjectIndex(raws=raws, digests=fact_digests, loader=loader)
    index.contents = contents
    if same_facts and cached_names is not None:
        # no module's facts changed (files edited without changing what the index records
        # of them, or only touched): the project-wide names still hold
        index.set_names(*cached_names)
        if missing or restamped:
            _save_index_cache(cache_dir, fresh, cached_names, {}, None)
    else:
        # computed once here, before the workers start, so that they share them
        names = index.names()
        _save_index_cache(cache_dir, fresh, names, made, loader)
    return index


def _facts_digest(raw: Raw) -> str:
    """A digest of a module's facts that only their values decide (the same facts made in
    another process must not look changed, or every module that imports them is checked
    again)."""
    return hashlib.sha256(repr(raw).encode()).hexdigest()[:16]


class FactsLoader:
    """The raw facts of a module whose entry in the index cache is unchanged, read from the
    cache's facts file on first use. When the file does not hold them for that content (a
    concurrent run rewrote it, or it is gone), the module is indexed again from its source."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._facts: dict[str, tuple[str, Raw]] | None = None

    def all(self) -> dict[str, tuple[str, Raw]]:
        if self._facts is None:
            self._facts = {}
            try:
                data = json.loads(self.path.read_bytes())
            except (OSError, ValueError, RecursionError):
                data = None
            if isinstance(data, dict) and data.get("format") == _FACTS_FORMAT:
                facts = data.get("facts")
                if isinstance(facts, dict) and all(
                    isinstance(found, list)
                    and len(found) == 2
                    and isinstance(found[0], str)
                    and isinstance(found[1], list)
                    for found in facts.values()
                ):
                    self._facts = {path: (found[0], found[1]) for path, found in facts.items()}
        return self._facts

    def __call__(self, stub: Stub) -> Raw | None:
        _, path, facts_digest = stub
        found = self.all().get(path)
        if found is not None and found[0] == facts_digest:
            return found[1]
        try:
            fact = facts_from_source(decode(Path(path).read_bytes()).text, Path(path))
        except (OSError, SourceError):
            return None
        except Exception:  # as in _index_one: the module is left out
            return None
        return to_raw(fact) if fact is not None else None


def _index_one(item: tuple[Path, bytes]) -> ModuleFact | None:
    path, raw = item
    try:
        return facts_from_source(decode(raw).text, path)
    except SourceError:
        return None
    except Exception:  # an index entry is never worth the run: the file is left out of it
        return None


def _index_files(items: list[tuple[Path, bytes]], jobs: int | None) -> list[ModuleFact | None]:
    workers = jobs or os.cpu_count() or 1
    if workers <= 1 or len(items) < POOL_THRESHOLD * 4:
        previous = _tune_gc()
        try:
            return [_index_one(item) for item in items]
        finally:
            _restore_gc(previous)
    with ProcessPoolExecutor(max_workers=workers, initializer=_start_worker) as pool:
        return list(pool.map(_index_one, items, chunksize=64))


def _cache_format() -> str:
    """Changes whenever the facts could: with the version and with the code that extracts them."""
    extractor = hashlib.sha256(Path(index_module.__file__).read_bytes()).hexdigest()[:12]
    # v5: JSON; entries are [content digest, module name, facts digest, [size, mtime_ns]];
    # the facts themselves are in the facts file; four name sets
    return f"index-{__version__}-{extractor}-v5"


_CACHE_FORMAT = _cache_format()
_FACTS_FORMAT = _CACHE_FORMAT.replace("index-", "facts-", 1)

#: (content digest, module name or None, digest of its facts, (size, mtime_ns))
IndexEntry = tuple[str, str | None, str, tuple[int, int]]


def _load_index_cache(
    cache_dir: Path,
) -> tuple[dict[str, IndexEntry], Names | None]:
    """The cached facts and names, or nothing when the cache is missing, corrupt or from
    another version."""
    try:
        data = json.loads((cache_dir / f"{_CACHE_FORMAT}.json").read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}, None
    if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT:
        return {}, None
    stored, names = data.get("entries"), data.get("names")
    if not isinstance(stored, dict):
        return {}, None
    entries: dict[str, IndexEntry] = {}
    for path, entry in stored.items():
        if not (
            isinstance(entry, list)
            and len(entry) == 4
            and isinstance(entry[0], str)
            and (entry[1] is None or isinstance(entry[1], str))
            and isinstance(entry[2], str)
            and isinstance(entry[3], list)
            and len(entry[3]) == 2
            and all(isinstance(n, int) for n in entry[3])
        ):
            return {}, None  # not what asyncfix writes: nothing in it is trusted
        entries[path] = (entry[0], entry[1], entry[2], (entry[3][0], entry[3][1]))
    if not (
        isinstance(names, list)
        and len(names) == 4
        and all(
            isinstance(group, list) and all(isinstance(n, str) for n in group) for group in names
        )
    ):
        return entries, None
    return entries, (names[0], names[1], names[2], names[3])


def _save_index_cache(
    cache_dir: Path,
    entries: dict[str, IndexEntry],
    names: Names,
    made: dict[str, tuple[str, Raw]],
    loader: FactsLoader | None,
) -> None:
    """Best effort: a cache that cannot be written is simply not written. Each file is
    written to a temporary file and moved into place, so a concurrent run reads an old or a
    new one, never half of one; the facts file first, so that an index file never names
    facts that are not there yet (and ``FactsLoader`` checks them anyway)."""
    try:
        current = {f"{_CACHE_FORMAT}.json", f"{_FACTS_FORMAT}.json"}
        prepare(cache_dir, "index-*", current)
        prepare(cache_dir, "facts-*", current)
        if loader is not None:  # some module's facts changed: the facts file with them
            facts = {
                path: made.get(path) or loader.all().get(path)
                for path, entry in entries.items()
                if entry[1] is not None
            }
            kept = {path: found for path, found in facts.items() if found is not None}
            facts_data = {"format": _FACTS_FORMAT, "facts": kept}
            write_atomically(loader.path, _json_bytes(facts_data))
        index = {"format": _CACHE_FORMAT, "entries": entries, "names": names}
        write_atomically(cache_dir / f"{_CACHE_FORMAT}.json", _json_bytes(index))
    except (OSError, ValueError, TypeError):
        return


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _write(result: FileResult) -> None:
    """Write a verified result; a file edited meanwhile is skipped with a warning."""
    assert result.fixed is not None and result.original is not None
    path = Path(result.path)
    try:
        source = decode(path.read_bytes())
    except OSError as exc:
        result.error = f"cannot re-read before writing: {exc.strerror or exc}"
        return
    except SourceError as exc:
        result.error = str(exc)
        return
    if source.text != result.original:
        result.write_skipped = "file changed on disk since it was read; not written"
        return
    reason = atomic_write(path, source.raw, source.encode(result.fixed))
    if reason is None:
        result.written = True
    elif reason.startswith("file changed"):
        result.write_skipped = reason
    else:
        result.error = reason
