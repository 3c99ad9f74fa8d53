"""Human output: the concise one-line-per-finding listing and the full debug report."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from asyncfix.analysis.source import python_lines
from asyncfix.codemods import rule_by_code
from asyncfix.model import FileResult, Finding, RunResult, Safety, ValidationReport


@dataclass(frozen=True)
class Style:
    """How to draw: UTF-8 or ASCII, with or without colour."""

    ascii: bool = False
    color: bool = False

    def paint(self, text: str, **style: object) -> str:
        if not self.color:
            return text
        import click

        return click.style(text, **style)  # type: ignore[arg-type]

    def glyph(self, fancy: str, plain: str) -> str:
        return plain if self.ascii else fancy


_ASCII = str.maketrans(
    {
        "\N{EM DASH}": "--",
        "\N{EN DASH}": "-",
        "\N{RIGHTWARDS ARROW}": "->",
        "\N{HORIZONTAL ELLIPSIS}": "...",
        "\N{MULTIPLICATION SIGN}": "x",
        "\N{LEFT SINGLE QUOTATION MARK}": "'",
        "\N{RIGHT SINGLE QUOTATION MARK}": "'",
        "\N{LEFT DOUBLE QUOTATION MARK}": '"',
        "\N{RIGHT DOUBLE QUOTATION MARK}": '"',
        "\N{MIDDLE DOT}": "-",
        "\N{NO-BREAK SPACE}": " ",
    }
)


def as_ascii(text: str) -> str:
    """``--ascii``: the punctuation of asyncfix's own texts as ASCII, anything else (a name in
    the checked code) as a backslash escape."""
    return text.translate(_ASCII).encode("ascii", "backslashreplace").decode("ascii")


def _marker(finding: Finding, run: RunResult) -> str:
    if finding.fixed:
        return "[fixed]"
    if finding.fix_safety is Safety.SAFE:
        return "[*]"
    if finding.fix_safety is Safety.UNSAFE:
        return "[*]" if run.unsafe_fixes else "[*unsafe]"
    return ""


def concise_line(result: FileResult, finding: Finding, run: RunResult, style: Style) -> str:
    location = f"{result.display}:{finding.span.line}:{finding.span.col}:"
    marker = _marker(finding, run)
    parts = [
        style.paint(location, bold=True),
        style.paint(finding.code, fg="red", bold=True),
        finding.message,
    ]
    if marker:
        parts.append(style.paint(marker, fg="cyan"))
    return " ".join(parts)


def render_errors(run: RunResult, unused: bool = False) -> list[str]:
    """The errors and warnings of a run, for stderr; ``unused``: also each suppression
    comment that suppressed nothing (``--warn-unused-suppressions``)."""
    lines = [f"error: {message}" for message in run.errors]
    lines += [f"warning: {message}" for message in run.warnings]
    for result in run.files:
        lines.extend(f"warning: {result.display}:{note}" for note in result.notes)
        if unused:
            lines.extend(f"warning: {result.display}:{n}" for n in result.unused_suppressions)
        if result.error:
            lines.append(f"error: {result.display}: {result.error}; file skipped")
        if result.internal_error:
            lines.append(f"internal error: {result.display}: {result.internal_error}")
        if result.write_skipped:
            lines.append(f"warning: {result.display}: {result.write_skipped}")
        lines.extend(f"warning: {result.display}: {reason}" for reason in result.dropped)
        if result.partial:
            lines.append(f"warning: {result.display}: {result.partial}")
    return lines


def render_validation(report: ValidationReport, style: Style) -> list[str]:
    """What ``--validate`` ran and found: the command, before, with the fixes, each fix the
    tests rejected (with the tests and the end of their output), after the reverts."""
    arrow = style.glyph("→", "->")
    lines = [style.paint(f"Validation: `{report.command}` ({report.runs} runs)", bold=True)]
    if report.baseline is not None:
        lines.append(f"  before the fixes: {report.baseline.describe()}")
    if report.with_fixes is not None:
        lines.append(f"  with the fixes:   {report.with_fixes.describe()}")
    compared = evidence_change(report)
    if compared:
        lines.append(f"  runtime evidence: {compared}")
    for reverted in report.reverted:
        tests = ", ".join(reverted.tests[:5]) + (" ..." if len(reverted.tests) > 5 else "")
        lines.append(
            style.paint(
                f"  {arrow} reverted {reverted.path}:{reverted.line} {reverted.code}: "
                f"{tests} failed with it",
                fg="yellow",
            )
        )
        lines += [f"      | {line}" for line in reverted.excerpt.splitlines()]
    if report.final is not None:
        lines.append(f"  after reverting:  {report.final.describe()}")
    if report.note:
        lines.append(f"  {report.note}")
    elif report.with_fixes is not None and not report.reverted:
        lines.append("  no test that passed before fails with the fixes")
    return lines


def evidence_change(report: ValidationReport) -> str:
    """``--validate-evidence``: what the runtime-evidence plugin saw before the fixes and
    after them, as a person reads it ("never-awaited: 3 -> 0; perturbation failures in
    tests/t.py::test_counter: 10/40 -> 0/40"); "" when there is nothing to compare."""
    before, after = report.baseline, report.last
    if before is None or after is None or before.evidence is None or after.evidence is None:
        return ""
    parts = [
        f"{kind}: {before.evidence.get(kind, 0)} -> {after.evidence.get(kind, 0)}"
        for kind in sorted(set(before.evidence) | set(after.evidence))
        if kind != "perturbation"
    ]
    for test in sorted(set(before.perturbation) | set(after.perturbation)):
        total = before.perturbation.get(test) or after.perturbation.get(test) or "0/0"
        runs = total.split("/")[1]
        was = before.perturbation.get(test, f"0/{runs}")
        now = after.perturbation.get(test, f"0/{runs}")
        parts.append(f"perturbation failures in {test}: {was} -> {now}")
    return "; ".join(parts) or "nothing seen before or after"


def render_concise(run: RunResult, style: Style, quiet: bool = False) -> list[str]:
    return [line for line, _ in _listing(run, style, quiet)]


def render_full(run: RunResult, style: Style, quiet: bool = False) -> list[str]:
    """The concise listing, each finding followed by its source lines (up to ten) with the
    finding's columns underlined, as ruff's ``full`` format."""
    lines: list[str] = []
    for line, shown in _listing(run, style, quiet):
        lines.append(line)
        if shown is not None:
            lines += _frame(*shown, style)
    return lines


def _listing(
    run: RunResult, style: Style, quiet: bool
) -> list[tuple[str, tuple[FileResult, Finding] | None]]:
    """The concise lines, each with the finding it lists (None for a "Fixed" line)."""
    lines: list[tuple[str, tuple[FileResult, Finding] | None]] = []
    for result in run.files:
        if run.mode == "write":
            for finding in result.findings:
                if finding.fixed and result.written and not quiet:
                    line = (
                        f"{style.paint('Fixed', fg='green')} {result.display}:"
                        f"{finding.span.line}:{finding.span.col}: {finding.code} {finding.message}"
                    )
                    lines.append((line, None))
        for finding in run.reported(result):
            lines.append((concise_line(result, finding, run, style), (result, finding)))
    return lines


def _frame(result: FileResult, finding: Finding, style: Style) -> list[str]:
    text = result.fixed if result.written and result.fixed is not None else result.original
    if text is None:
        return []
    source = python_lines(text)
    span = finding.span
    first, last = span.line, min(span.end_line, span.line + 9)
    if first > len(source):
        return []
    width = len(str(last))
    bar = style.glyph("│", "|")
    gutter = " " * width
    frame = [f"{gutter} {bar}"]
    for number in range(first, min(last, len(source)) + 1):
        frame.append(f"{number:>{width}} {bar} {source[number - 1]}")
    if span.line == span.end_line:
        length = max(1, span.end_col - span.col)
        marks = " " * (span.col - 1) + style.paint("^" * length, fg="red", bold=True)
        frame.append(f"{gutter} {bar} {marks} {style.paint(finding.code, fg='red', bold=True)}")
    elif span.end_line > last:
        frame.append(f"{gutter} {bar} ...")
    frame.append(f"{gutter} {bar}")
    return [*frame, ""]


def summary(run: RunResult) -> str:
    text = _summary(run)
    failed = len(run.errors) + sum(1 for r in run.files if r.error or r.internal_error)
    if failed:
        text += f" {failed} error{'s' * (failed != 1)} (see above); exit status 2."
    return text


def statistics(run: RunResult, seconds: float) -> str:
    """The closing line of a run, for stderr: what was checked and how, findings per code."""
    files = len(run.files)
    cached = sum(1 for r in run.files if r.cached)
    changed = sum(1 for r in run.files if (r.written if run.mode == "write" else r.changed))
    errors = sum(1 for r in run.files if r.error or r.internal_error)
    per_code: dict[str, int] = {}
    for _, finding in run.findings:
        per_code[finding.code] = per_code.get(finding.code, 0) + 1
    verb = "written" if run.mode == "write" else "with fixes" if run.mode == "diff" else ""
    parts = [f"{cached} from cache"]
    if verb:
        parts.append(f"{changed} {verb}")
    parts.append(f"{errors} with errors")
    codes = ", ".join(f"{code} {count}" for code, count in sorted(per_code.items()))
    return f"{files} file{'s' * (files != 1)} checked in {seconds:.1f} s ({', '.join(parts)})" + (
        f"; findings: {codes}" if codes else ""
    )


def _summary(run: RunResult) -> str:
    files = len(run.files)
    found = run.findings
    noun = "file" if files == 1 else "files"
    if run.mode == "write":
        fixed = sum(1 for r, f in found if f.fixed and r.written)
        changed = sum(1 for r in run.files if r.written)
        remaining = len(run.reported_findings)
        files_changed = f"{changed} {'file' if changed == 1 else 'files'}"
        text = f"Fixed {fixed} finding{'s' * (fixed != 1)} in {files_changed}"
        text += f"; {remaining} remaining" if remaining else "; nothing left to fix"
        return text + f" ({files} {noun} checked)."
    if not found:
        partial = sum(1 for r in run.files if r.partial)
        if run.has_errors() or partial:
            checked = f"{files} {noun} checked"
            if partial:
                checked += f", {partial} only in part: see the warning{'s' * (partial != 1)}"
            return f"No findings ({checked})."
        return f"All checks passed ({files} {noun} checked)."
    safe = sum(1 for _, f in found if f.fix_safety is Safety.SAFE)
    unsafe = sum(1 for _, f in found if f.fix_safety is Safety.UNSAFE)
    with_findings = len({r.path for r, _ in found})
    text = (
        f"Found {len(found)} finding{'s' * (len(found) != 1)} in {with_findings} of {files} {noun}"
    )
    fixable = safe + (unsafe if run.unsafe_fixes else 0)
    extra = []
    if run.mode == "diff":
        fixed = sum(1 for _, f in found if f.fixed)
        if fixed:
            extra.append(f"{fixed} fixed in the diff")
        if fixable > fixed:
            extra.append(f"{fixable - fixed} fixable but left out (see the warnings)")
    elif fixable:
        extra.append(f"{fixable} fixable with `--write`")
    if unsafe and not run.unsafe_fixes:
        extra.append(f"{unsafe} more with `--unsafe-fixes`")
    return text + (f" ({', '.join(extra)})." if extra else ".")


# -- the full report -------------------------------------------------------------------

RULER_WIDTH = 60


def render_report(run: RunResult, style: Style) -> list[str]:
    heavy = style.glyph("━", "=") * RULER_WIDTH
    light = style.glyph("─", "-") * 42
    lines: list[str] = []
    found = run.findings
    for result, finding in found:
        rule = rule_by_code(finding.code)
        lines += [
            heavy,
            "ASYNC/CONCURRENCY DEBUG REPORT",
            f"Component: {result.display}",
            f"Issue: {rule.summary[:1].upper() + rule.summary[1:]} ({finding.code} {finding.name})",
            heavy,
            "",
            style.paint(f"{style.glyph('🐛 ', '')}ISSUE IDENTIFIED", bold=True),
            light,
            f"Type: {rule.kind}",
            f"Severity: {finding.severity.value.upper()}",
            f"Location: {result.display}:{_line_range(finding)}",
            "",
            "Code:",
            *_code_lines(result, finding),
            "",
            "Problem:",
            *_wrapped(rule.why),
            "",
            "Evidence:",
            *(f"    - {item}" for item in [finding.message, *finding.evidence]),
            "",
        ]
        lines += _fix_section(result, finding, run, style, light)
        lines += _validation_section(run, result, finding, style, light)
        lines += _additional(run, result, finding, style, light)
        lines.append("")
    return lines


def _line_range(finding: Finding) -> str:
    span = finding.span
    return str(span.line) if span.line == span.end_line else f"{span.line}-{span.end_line}"


def _code_lines(result: FileResult, finding: Finding) -> list[str]:
    if result.original is None:
        return []
    source = python_lines(result.original)
    first, last = finding.span.line, min(finding.span.end_line, finding.span.line + 9)
    width = len(str(last))
    return [
        f"    {n:>{width}} | {source[n - 1]}" for n in range(first, last + 1) if n <= len(source)
    ]


def _wrapped(text: str) -> list[str]:
    return textwrap.wrap(text, width=88, initial_indent="    ", subsequent_indent="    ")


def _fix_section(
    result: FileResult, finding: Finding, run: RunResult, style: Style, light: str
) -> list[str]:
    applied = style.glyph("✅ ", "")
    suggested = f"{style.glyph('💡 ', '')}SUGGESTED FIX {style.glyph('—', '-')} not applied:"
    if finding.fix_safety is Safety.NONE:
        title = f"{suggested} report only"
        return [style.paint(title, bold=True), light, *_wrapped(finding.message), ""]
    if finding.fixed and run.mode == "write" and result.written:
        title = f"{applied}FIX APPLIED"
    elif finding.fixed and run.mode == "diff":
        title = f"{applied}FIX (in the diff; nothing written)"
    elif not finding.fixable(run.unsafe_fixes):
        title = f"{suggested} unsafe, rerun with --unsafe-fixes"
    elif result.internal_error:
        title = f"{suggested} the fixed file did not verify"
    else:
        title = f"{suggested} rerun with --write"
    lines = [style.paint(title, bold=True), light]
    for line in finding.fix_preview:
        lines.append(style.paint(f"    {line}", fg="red" if line.startswith("-") else "green"))
    lines += ["", "Changes:", *(f"+ {change}" for change in finding.fix_changes), ""]
    return lines


def _validation_section(
    run: RunResult, result: FileResult, finding: Finding, style: Style, light: str
) -> list[str]:
    validation = result.validation
    if validation is None or not finding.fixable(True) or finding.fix_safety is Safety.NONE:
        return []
    if finding.code not in validation.recheck and not result.internal_error:
        return []
    parts: list[str] = []
    if validation.reparse is not None:
        parts.append(f"Re-parse: {'ok' if validation.reparse else 'FAILED'}")
    if validation.compile is True:
        parts.append("compile: ok")
    elif validation.compile is False:
        parts.append("compile: FAILED")
    elif validation.compile_note:
        parts.append(f"compile: {validation.compile_note}")
    if finding.code in validation.recheck:
        parts.append(f"re-check {finding.code}: {validation.recheck[finding.code]} findings")
    if validation.second_run_clean is not None:
        parts.append(f"second run: {'no changes' if validation.second_run_clean else 'CHANGES'}")
    separator = style.glyph(" · ", " | ")
    lines = [
        style.paint(f"{style.glyph('🧪 ', '')}VALIDATION", bold=True),
        light,
        separator.join(parts),
    ]
    if result.internal_error:
        lines.append(f"Not applied: {result.internal_error}")
    lines += _tests_line(run, finding)
    return [*lines, ""]


def _tests_line(run: RunResult, finding: Finding) -> list[str]:
    """What the project's tests said, or that they were not run."""
    report = run.validation
    if report is None:
        return ['Tests: not run (`--write --validate "CMD"` runs them before and after)']
    if finding.reverted:
        return [f"Tests ({report.command}): {finding.reverted}"]
    before = report.baseline.describe() if report.baseline else "not run"
    last = report.last
    after = last.describe() if last is not None else "not run"
    lines = [f"Tests ({report.command}): before {before}; after {after}"]
    compared = evidence_change(report)
    if compared:
        lines.append(f"Runtime evidence: {compared}")
    return lines


def _additional(
    run: RunResult,
    result: FileResult,
    finding: Finding,
    style: Style,
    light: str,
    limit: int = 10,
) -> list[str]:
    found = run.findings
    same = [(r, f) for r, f in found if f.code == finding.code and f is not finding]
    lines = [style.paint(f"{style.glyph('📋 ', '')}ADDITIONAL FINDINGS", bold=True), light]
    if same:
        lines.append("Same pattern elsewhere:")
        for other, f in same[:limit]:
            lines.append(f"  {other.display}:{f.span.line}  {f.code}  {_state(run, other, f)}")
        if len(same) > limit:
            lines.append(f"  ... and {len(same) - limit} more")
    else:
        lines.append("Same pattern elsewhere: none")
    others = [f for f in result.findings if f.code != finding.code]
    if others:
        codes = ", ".join(sorted({f.code for f in others}))
        lines.append(f"Other findings in this file: {len(others)} ({codes})")
    return lines


def _state(run: RunResult, result: FileResult, finding: Finding) -> str:
    """What happened to a finding's fix in this run, and only that: "fixed" means written."""
    if finding.fixed and run.mode == "write" and result.written:
        return "fixed"
    if finding.fixed and run.mode == "diff":
        return "fixed in the diff (not written)"
    if finding.fix_safety is Safety.NONE:
        return "report only"
    if result.internal_error and finding.fixable(run.unsafe_fixes):
        return "not fixed: the fixed file did not verify"
    if finding.fix_safety is Safety.UNSAFE and not run.unsafe_fixes:
        return "suggested (unsafe: --unsafe-fixes)"
    if run.mode == "write":
        return "not fixed"
    return "fixable with --write"
