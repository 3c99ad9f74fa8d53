"""A pull request's body: GitHub-flavoured Markdown over one group's ``RunResult``.

A summary table (rule, findings, fixed, files), each applied fix with its diff and what its
safety asks of the reviewer, VALIDATION (the static checks, and the project's tests when
``--validate`` ran), ADDITIONAL FINDINGS (what was reported without a fix). The body stays
under GitHub's limit: past a budget, the fixes and findings left are counted, not shown, and
the body says how to see them all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from asyncfix.codemods import rule_by_code
from asyncfix.model import FileResult, Finding, RunResult, Safety

#: GitHub refuses a body over 65,536 characters; keep well clear of it
BUDGET = 60_000
FINGERPRINT = re.compile(r"<!-- asyncfix:fingerprint=([0-9a-f]{16,64}) -->")

#: what an unsafe fix of each family asks a reviewer to check
_CHECK = {
    "AF1": "that the awaited call was meant to run here and now",
    "AF2": (
        "the call now runs in a worker thread: check that it touches nothing the event loop "
        "owns and is safe to run in a thread"
    ),
    "AF3": (
        "check that the task's new lifetime and the cancellation that now reaches callers "
        "are what the code expects"
    ),
    "AF4": (
        "a lock now serialises the region: check that no caller already holds it (a "
        "deadlock) and that the region's awaits are short"
    ),
    "AF5": "the resource is now closed: check that nothing uses it afterwards",
}


@dataclass(frozen=True)
class Group:
    """What one pull request fixes: a branch name's last part, a title, the rule codes."""

    key: str
    title: str
    codes: tuple[str, ...]


def fingerprint_of(body: str) -> str | None:
    match = FINGERPRINT.search(body)
    return match[1] if match else None


def render_body(
    group: Group,
    run: RunResult,
    fingerprint: str,
    version: str,
    budget: int = BUDGET,
) -> str:
    fixed = [(r, f) for r, f in run.findings if f.fixed and r.written]
    others = [(r, f) for r, f in run.findings if not (f.fixed and r.written)]
    select = ",".join(group.codes)
    head = [
        f"<!-- asyncfix:fingerprint={fingerprint} -->",
        f"## asyncfix: {group.title}",
        "",
        f"asyncfix fixed {_count(len(fixed), 'finding')} in "
        f"{_count(len({r.path for r, _ in fixed}), 'file')}"
        + (f" and reports {len(others)} more without a fix." if others else "."),
        "",
        "| Rule | Findings | Fixed | Files |",
        "|---|---:|---:|---:|",
    ]
    for code in sorted({f.code for _, f in run.findings}):
        mine = [(r, f) for r, f in run.findings if f.code == code]
        name = rule_by_code(code).name
        done = sum(1 for r, f in mine if f.fixed and r.written)
        files = len({r.path for r, _ in mine})
        head.append(f"| {code} {name} | {len(mine)} | {done} | {files} |")
    tail = [
        "",
        "---",
        f"Made by [asyncfix](https://pypi.org/project/asyncfix/) {version}. To see the same "
        f"fixes locally: `asyncfix --diff --select {select}"
        + (" --unsafe-fixes" if run.unsafe_fixes else "")
        + " .`. A person's push to this branch stops the bot from updating it; closing this "
        "pull request without merging stops it from offering these fixes again.",
    ]
    validation = _validation(run, fixed)
    sections = [*head, "", "### Fixes applied", ""]
    used = _size(sections) + _size(validation) + _size(tail) + 400
    shown = 0
    for result, finding in fixed:
        block = _fix_block(result, finding)
        if used + _size(block) > budget:
            break
        sections += block
        used += _size(block)
        shown += 1
    if shown < len(fixed):
        sections += [
            f"*{len(fixed) - shown} more fixes are not shown here (the body would pass "
            f"GitHub's size limit): the commits hold them all, and `asyncfix --diff --select "
            f"{select}` shows them.*",
            "",
        ]
    sections += validation
    additional = _additional(others, budget - used - _size(validation))
    sections += additional
    return "\n".join([*sections, *tail]) + "\n"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _size(lines: Sequence[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def _fence(lines: Sequence[str]) -> str:
    """A backtick fence longer than any run of backticks in ``lines``."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _fix_block(result: FileResult, finding: Finding) -> list[str]:
    rule = rule_by_code(finding.code)
    lines = [
        f"#### `{result.display}:{finding.span.line}` {finding.code} {rule.name}",
        "",
        _inline(finding.message),
        "",
    ]
    if finding.fix_safety is Safety.SAFE:
        lines += [
            "**Safe fix**: it changes behaviour only in the intended way; review quickly.",
            "",
        ]
    else:
        check = _CHECK.get(finding.code[:3], "check what it changes")
        lines += [f"**Unsafe fix**: read it carefully; {check}.", ""]
    if finding.fix_preview:
        fence = _fence(finding.fix_preview)
        lines += [f"{fence}diff", *finding.fix_preview, fence, ""]
    lines += [f"- {_inline(change)}" for change in finding.fix_changes]
    return [*lines, ""]


def _inline(text: str) -> str:
    """Text for a Markdown line: no raw HTML, no accidental line break."""
    return text.replace("<", "&lt;").replace("\n", " ")


def _validation(run: RunResult, fixed: list[tuple[FileResult, Finding]]) -> list[str]:
    files = {r.path: r for r, _ in fixed}
    checks = [r.validation for r in files.values() if r.validation is not None]
    reparse = all(v.reparse is not False for v in checks)
    compiled = all(v.compile is not False for v in checks)
    second = all(v.second_run_clean is not False for v in checks)
    lines = [
        "### Validation",
        "",
        f"- Static: every changed file re-parses ({'ok' if reparse else 'FAILED'}), compiles "
        f"({'ok' if compiled else 'FAILED'}) and re-checks without the fixed findings; a second "
        f"run changes nothing ({'ok' if second else 'FAILED'}).",
    ]
    report = run.validation
    if report is None:
        lines.append(
            "- Tests: not run (the bot runs the project's tests only when asked, with "
            '`--validate "CMD"`).'
        )
        return [*lines, ""]
    before = report.baseline.describe() if report.baseline else "not run"
    last = report.last
    after = last.describe() if last is not None else "not run"
    lines.append(f"- Tests: `{report.command}`: before the fixes {before}; with them {after}.")
    if report.note:
        lines.append(f"- {_inline(report.note)}")
    for reverted in report.reverted:
        tests = ", ".join(f"`{t}`" for t in reverted.tests[:5])
        lines.append(
            f"- Left out: `{reverted.path}:{reverted.line}` {reverted.code} broke {tests}."
        )
        if reverted.excerpt:
            excerpt = reverted.excerpt.splitlines()[-10:]
            fence = _fence(excerpt)
            lines += ["", f"  {fence}", *(f"  {line}" for line in excerpt), f"  {fence}"]
    return [*lines, ""]


def _additional(others: list[tuple[FileResult, Finding]], budget: int) -> list[str]:
    if not others:
        return []
    lines = [
        "### Additional findings",
        "",
        "Reported without a fix in this pull request (no fix, an unsafe fix not enabled, or a "
        "fix withheld in test code):",
        "",
    ]
    used = _size(lines)
    for shown, (result, finding) in enumerate(others):
        line = (
            f"- `{result.display}:{finding.span.line}` {finding.code}: {_inline(finding.message)}"
        )
        if used + len(line) + 200 > budget:
            lines.append(f"- ... and {len(others) - shown} more (`asyncfix` lists them all)")
            break
        lines.append(line)
        used += len(line) + 1
    return [*lines, ""]


#: GitHub's job summary takes up to 1 MiB; a summary stays well under it
SUMMARY_BUDGET = 900_000


def render_summary(run: RunResult, budget: int = SUMMARY_BUDGET) -> str:
    """``--output-format markdown``: a CI job summary or a pull request comment. A table of
    the findings per rule, then each finding by file with its fix as a fenced diff (when it
    has one), then the files that could not be checked. Past ``budget`` characters the
    findings left are counted, not shown."""
    listed = run.reported_findings
    fixable = sum(1 for _, f in listed if f.fixable(run.unsafe_fixes))
    fixed = sum(1 for r, f in run.findings if f.fixed and r.written)
    files = len({r.path for r, _ in listed})
    lines = ["## asyncfix", ""]
    if listed:
        counts = f"{_count(len(listed), 'finding')} in {_count(files, 'file')}"
        extra = [f"{fixable} fixable"] + ([f"{fixed} fixed"] if fixed else [])
        lines += [f"{counts} ({', '.join(extra)}).", ""]
        lines += ["| Code | Rule | Findings | Fixable |", "|---|---|---:|---:|"]
        for code in sorted({f.code for _, f in listed}):
            mine = [f for _, f in listed if f.code == code]
            can = sum(1 for f in mine if f.fixable(run.unsafe_fixes))
            lines.append(f"| {code} | {rule_by_code(code).name} | {len(mine)} | {can} |")
        lines.append("")
    else:
        lines += [
            f"No findings in {_count(len(run.files), 'file')}"
            + (f"; {_count(fixed, 'finding')} fixed." if fixed else "."),
            "",
        ]
    used = _size(lines)
    current: str | None = None
    for shown, (result, finding) in enumerate(listed):
        block = [] if result.path == current else [f"### `{_code_span(result.display)}`", ""]
        block += _summary_item(result, finding, run)
        if used + _size(block) > budget:
            lines += [f"*... and {len(listed) - shown} more: `asyncfix` lists them all.*", ""]
            break
        lines += block
        used += _size(block)
        current = result.path
    problems = [
        f"- `{_code_span(r.display)}`: {_inline(r.error or r.internal_error or '')}"
        for r in run.files
        if r.error or r.internal_error
    ] + [f"- {_inline(message)}" for message in run.errors]
    if problems:
        lines += ["### Errors", "", *problems, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _code_span(text: str) -> str:
    """``text`` for inside a one-backtick code span."""
    return text.replace("`", "'")


def _summary_item(result: FileResult, finding: Finding, run: RunResult) -> list[str]:
    span = finding.span
    if finding.fixable(run.unsafe_fixes):
        state = f" ({finding.fix_safety.value} fix)"
    elif finding.fix_safety is Safety.UNSAFE:
        state = " (unsafe fix: `--unsafe-fixes`)"
    else:
        state = ""
    lines = [
        f"- `{_code_span(result.display)}:{span.line}:{span.col}` **{finding.code}** "
        f"{_inline(finding.message)}{state}"
    ]
    if finding.fix_preview:
        fence = _fence(finding.fix_preview)
        lines += ["", f"  {fence}diff", *(f"  {line}" for line in finding.fix_preview)]
        lines.append(f"  {fence}")
    return [*lines, ""]
