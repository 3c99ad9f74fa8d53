"""One parse of one source, every rule in one walk, and the findings with their positions."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider
from libcst.metadata.position_provider import PositionProvidingCodegenState

from asyncfix.analysis.model import SemanticModel, Walk
from asyncfix.codemods.base import (
    SUPPRESS,
    Context,
    Hit,
    ModelContext,
    ModelRule,
    Project,
    Rule,
    fix_key,
    forget_ast_memo,
)
from asyncfix.codemods.walk import children
from asyncfix.index import (
    parse_ast,
    too_deep,
)
from asyncfix.model import Finding, Safety, Span


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

    #: None when no LibCST rule could apply and the file was not parsed with LibCST (yet:
    #: ``engine.apply`` parses it to build a model rule's fix)
    module: cst.Module | None
    hits: list[Hit]
    spans: dict[int, Span]
    #: the source analysed
    text: str = ""
    #: the rules that ask the semantic model and did not run: this Python cannot parse the
    #: text though LibCST can (syntax newer than the interpreter)
    unchecked: tuple[str, ...] = ()

    def span(self, hit: Hit) -> Span:
        return hit.span if hit.span is not None else self.spans[id(hit.node)]


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
    """Parse ``text`` and run every rule; suppressed findings are dropped.

    The stdlib tree comes first: the rules that ask the semantic model (``ModelRule``) run
    on it in one walk. The others (LibCST rules, until they move to the model) first look at
    the text and at the stdlib ``ast`` (several times cheaper than LibCST), and a file that
    Python parses and none of them wants is never parsed with LibCST. A file Python cannot
    parse (a syntax error, or syntax newer than this interpreter) always is: LibCST tells
    which of the two it is.
    """
    active = [rule for rule in rules if rule.may_apply(text)]
    modelled = [rule for rule in active if issubclass(rule, ModelRule)]
    active = [rule for rule in active if not issubclass(rule, ModelRule)]
    tree = _ast_parse(text)
    found: list[Hit] = []
    if tree is not None and modelled:
        found = _model_hits(tree, text, modelled, target, project, offload, test_code)
    spans: dict[int, Span] = {}
    module: cst.Module | None = None
    if tree is not None:
        active = [rule for rule in active if rule.may_apply_to_ast(tree, project)]
        forget_ast_memo(tree)
    if tree is None or active:
        try:
            module = cst.parse_module(text)
        except RecursionError:
            raise TooDeep from None
    if module is not None and active:
        hits = Context(module, active, target, project, offload, test_code).run()
        if hits:
            spans = _cst_spans(module, tree, hits)
            found.extend(hits)
    unchecked = tuple(rule.code for rule in modelled) if tree is None else ()
    if not found:
        return Analysis(module, [], {}, text, unchecked)
    lines = text.splitlines()
    kept = [hit for hit in found if not _suppressed(hit, _span_of(hit, spans), lines)]
    kept.sort(key=lambda hit: (*_order(_span_of(hit, spans)), hit.rule.code))
    return Analysis(module, kept, spans, text, unchecked)


def _span_of(hit: Hit, spans: dict[int, Span]) -> Span:
    return hit.span if hit.span is not None else spans[id(hit.node)]


def _order(span: Span) -> tuple[int, int]:
    return span.line, span.col


def _model_hits(
    tree: ast.Module,
    text: str,
    rules: Sequence[type[Rule]],
    target: tuple[int, int],
    project: Project | None,
    offload: tuple[str, ...],
    test_code: bool,
) -> list[Hit]:
    """The findings of the rules that ask the semantic model, from one walk of ``tree``."""
    try:
        walk = Walk(SemanticModel(tree, text, project), offload)
        ctx = ModelContext(walk, target, project, test_code)
        instances = [rule(ctx) for rule in rules]  # type: ignore[arg-type]
        walk.run(instances)
        for instance in instances:
            instance.finish()
    except RecursionError:
        raise TooDeep from None
    return ctx.hits


def _cst_spans(module: cst.Module, tree: ast.Module | None, hits: list[Hit]) -> dict[int, Span]:
    """The spans of the LibCST nodes findings point at (positions only for files with
    findings, and only of those nodes)."""
    wanted: dict[int, cst.CSTNode] = {}
    for hit in hits:
        assert isinstance(hit.node, cst.CSTNode)
        wanted[id(hit.node)] = hit.node
        if hit.fix is not None:
            for node in hit.fix.replace:
                wanted[id(node)] = node
        for _, site in hit.evidence:
            if site is not None:
                wanted[id(site)] = site
    try:
        return _spans(module, tree, wanted)
    except RecursionError:
        raise TooDeep from None


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


#: how a fix is known across rounds and runs (positions move as other fixes land): a digest
#: of its rule, its message and the text of the node it reports (``Finding.fix_id``)
FixKey = str


def fix_id(hit: Hit) -> FixKey:
    if hit.key is not None:
        return hit.key
    assert isinstance(hit.node, cst.CSTNode)
    return fix_key(hit.rule.code, hit.message, cst.Module(body=[]).code_for_node(hit.node))
