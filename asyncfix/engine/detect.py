"""One parse of one source, every rule in one walk of its semantic model, and the findings."""

from __future__ import annotations

import ast
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from asyncfix import suppressions
from asyncfix.analysis.model import SemanticModel, Walk
from asyncfix.codemods import CODES
from asyncfix.codemods.base import (
    Hit,
    ModelContext,
    Project,
    Rule,
)
from asyncfix.engine.task import Task
from asyncfix.index import (
    parse_ast,
    too_deep,
)
from asyncfix.lazy import libcst as cst
from asyncfix.model import Finding, Observed, Safety, Span

__all__ = ["Analysis", "NotPython", "Task", "TooDeep", "analyse", "fix_id", "to_finding"]


@dataclass
class Analysis:
    """One parse of one source and what the enabled rules found in it."""

    #: the LibCST tree, once a fix is built (``engine.apply`` parses it then)
    module: cst.Module | None
    hits: list[Hit]
    #: where the LibCST nodes the built fixes replace are, by id
    spans: dict[int, Span]
    #: the source analysed
    text: str = ""
    #: the rules that did not run: this Python cannot parse the text though LibCST can
    #: (syntax newer than the interpreter)
    unchecked: tuple[str, ...] = ()
    #: ``line:col: ...`` for each malformed suppression comment (``suppressions.py``)
    warnings: tuple[str, ...] = ()
    #: ``line:col: ...`` for each suppression comment that suppressed nothing
    unused: tuple[str, ...] = ()

    def span(self, hit: Hit) -> Span:
        return hit.span


#: asyncfix's rule codes: what a suppression comment may name
_KNOWN = frozenset(CODES)


class TooDeep(Exception):
    """The source nests deeper than the parser can follow."""


class NotPython(Exception):
    """Python refuses the source though LibCST (or ``ast.parse``) may not: a NUL byte, or an
    error only the compiler reports (``return`` outside a function, ``await`` outside an
    ``async def``, a ``nonlocal`` at module level, ...). The message says what and where,
    as Python does."""


def analyse(
    text: str,
    rules: Sequence[type[Rule]],
    target: tuple[int, int],
    project: Project | None = None,
    offload: tuple[str, ...] = (),
    test_code: bool = False,
    observed: Sequence[Observed] = (),
    declared: tuple[str, ...] = (),
) -> Analysis:
    """Parse ``text`` with the stdlib ``ast`` and run every rule in one walk of its semantic
    model; suppressed findings are dropped. ``observed``: what the runtime-evidence plugin
    saw at lines of this text; a finding it bears out says so in its evidence.
    ``declared``: the functions the configuration declares coroutine functions.

    A rule runs only on a file whose text holds its needles. The file is parsed with LibCST
    only when a fix is applied (``engine.apply`` builds it there) -- or when Python cannot
    parse it: LibCST tells a syntax error (raised) from syntax newer than this interpreter,
    which the rules cannot check (``Analysis.unchecked``).
    """
    comments = None
    if suppressions.SKIP_FILE.search(text):
        comments = suppressions.parse(text, _KNOWN)
        if comments.skip_file:
            return Analysis(None, [], {}, text, warnings=tuple(comments.warnings))
    active = [rule for rule in rules if rule.may_apply(text)]
    tree = _ast_parse(text)
    if tree is not None:
        _compiles(tree)
    if tree is None:
        try:
            module = cst.parse_module(text)
        except RecursionError:
            raise TooDeep from None
        return Analysis(module, [], {}, text, tuple(rule.code for rule in active))
    by_line: dict[int, list[Observed]] = {}
    for seen in observed:
        by_line.setdefault(seen.line, []).append(seen)
    found = (
        _model_hits(tree, text, active, target, project, offload, test_code, by_line, declared)
        if active
        else []
    )
    if comments is None:
        if not found and not suppressions.OF_INTEREST.search(text):
            return Analysis(None, [], {}, text)
        comments = suppressions.parse(text, _KNOWN)
    if observed:
        found = _without_repeats(found)
    kept: list[Hit] = []
    used: set[suppressions.Directive] = set()
    for hit in found:
        lines = (hit.span.line, hit.span.end_line)
        directives = comments.suppressing(hit.rule.code, hit.rule.equivalent_codes, lines)
        used.update(directives)
        if not directives:
            kept.append(hit)
    kept.sort(key=lambda hit: (hit.span.line, hit.span.col, hit.rule.code))
    if observed:
        _borne_out(kept, observed, tree)
    enabled = frozenset(rule.code for rule in rules)
    return Analysis(
        None,
        kept,
        {},
        text,
        warnings=tuple(comments.warnings),
        unused=tuple(comments.unused(used, enabled)),
    )


def _model_hits(
    tree: ast.Module,
    text: str,
    rules: Sequence[type[Rule]],
    target: tuple[int, int],
    project: Project | None,
    offload: tuple[str, ...],
    test_code: bool,
    observed: dict[int, list[Observed]],
    declared: tuple[str, ...] = (),
) -> list[Hit]:
    """The findings of the rules that ask the semantic model, from one walk of ``tree``."""
    try:
        walk = Walk(SemanticModel(tree, text, project, declared), offload)
        ctx = ModelContext(walk, target, project, test_code, observed=observed)
        instances = [rule(ctx) for rule in rules]
        walk.run(instances)
        for instance in instances:
            instance.finish()
    except RecursionError:
        raise TooDeep from None
    return ctx.hits


#: the runtime kinds that bear out each family of rules
_BORNE_OUT = {
    "never-awaited": ("AF101", "AF102"),
    "task-destroyed-pending": ("AF301",),
    "exception-never-retrieved": ("AF301", "AF302"),
    "unclosed-resource": ("AF501", "AF502", "AF503"),
    "slow-callback": ("AF2",),
}


#: a finding made from the runtime evidence alone gives way to a finding of these codes on
#: its line (the analysis's own, which the evidence then bears out)
RUNTIME_FAMILY = {"AF205": "AF2", "AF501": "AF5", "AF503": "AF5"}


def _without_repeats(hits: list[Hit]) -> list[Hit]:
    """The findings, without those made from the runtime evidence alone where the analysis
    reports the same line for the same family of rules (its finding says what and why;
    ``_borne_out`` adds what was seen)."""
    static = [hit for hit in hits if not hit.runtime]
    if len(static) == len(hits):
        return hits

    def repeated(hit: Hit) -> bool:
        family = RUNTIME_FAMILY.get(hit.rule.code, hit.rule.code)
        return any(
            other.rule.code.startswith(family)
            and other.span.line <= hit.span.line <= other.span.end_line
            for other in static
        )

    return [hit for hit in hits if not hit.runtime or not repeated(hit)]


def _borne_out(hits: list[Hit], observed: Sequence[Observed], tree: ast.Module) -> None:
    """Each finding the runtime evidence bears out gets a line of evidence saying what was
    seen and in which test: an observation on the finding's lines, of a kind its rule is
    about; a slow callback anywhere in the same function (it is placed at the ``await``
    after the code that held the loop)."""
    functions = [
        (node.lineno, node.end_lineno or node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]

    def function_of(line: int) -> tuple[int, int] | None:
        holding = [(a, b) for a, b in functions if a <= line <= b]
        return max(holding) if holding else None

    for hit in hits:
        said: set[str] = set()
        for seen in observed:
            if not hit.rule.code.startswith(_BORNE_OUT.get(seen.kind, ())):
                continue
            if seen.kind == "slow-callback":
                here = function_of(hit.span.line)
                if here is None or function_of(seen.line) != here:
                    continue
            elif not hit.span.line <= seen.line <= hit.span.end_line:
                continue
            line = seen.said()
            if line not in said and line not in hit.evidence:
                said.add(line)
                hit.evidence.append(line)


def _compiles(tree: ast.Module) -> None:
    """NotPython when Python's compiler refuses the tree (errors ``ast.parse`` lets pass);
    its warnings (an ``is`` with a literal, an invalid escape) are not this tool's to say."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(tree, "<asyncfix>", "exec", dont_inherit=True)
        except SyntaxError as exc:
            raise NotPython(
                f"syntax error at line {exc.lineno}, column {exc.offset}: {exc.msg}"
            ) from None
        except (RecursionError, MemoryError):
            raise TooDeep from None


def null_byte(text: str) -> str | None:
    """Python's refusal of a NUL byte, with the position it does not give."""
    index = text.find("\0")
    if index < 0:
        return None
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"syntax error at line {line}, column {column}: source code cannot contain null bytes"


def _ast_parse(text: str) -> ast.Module | None:
    """The stdlib tree (``index.parse_ast``: type-parameter syntax too), or None when only
    LibCST can tell (a syntax error, or syntax newer than this Python); TooDeep when the code
    nests deeper than either parser can follow."""
    try:
        return parse_ast(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        if too_deep(exc):
            if isinstance(exc, SyntaxError) and exc.lineno:  # Python's own limit: its words
                raise NotPython(
                    f"syntax error at line {exc.lineno}, column {exc.offset}: {exc.msg}"
                ) from None
            raise TooDeep from None
        nul = null_byte(text)
        if nul is not None:
            raise NotPython(nul) from None
        return None


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
        evidence=list(hit.evidence),
    )


#: how a fix is known across rounds and runs (positions move as other fixes land): a digest
#: of its rule, its message and the text of the node it reports (``Finding.fix_id``)
FixKey = str


def fix_id(hit: Hit) -> FixKey:
    return hit.key
