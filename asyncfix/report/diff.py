"""Unified diffs of the fixes, ``git apply``-able."""

from __future__ import annotations

import difflib

from asyncfix.model import FileResult, RunResult


def file_diff(result: FileResult) -> str:
    assert result.original is not None and result.fixed is not None
    old = result.original.splitlines(keepends=True)
    new = result.fixed.splitlines(keepends=True)
    lines = list(
        difflib.unified_diff(old, new, f"a/{result.display}", f"b/{result.display}", n=3)
    )
    out: list[str] = []
    for line in lines:
        if line.endswith(("\n", "\r")):
            out.append(line)
        else:  # the last line of a file without a final newline
            out.append(line + "\n\\ No newline at end of file\n")
    # difflib's header lines end with "\n" already; nothing else to adjust
    return "".join(out)


def render(run: RunResult) -> str:
    return "".join(
        file_diff(result)
        for result in sorted(run.files, key=lambda r: r.display)
        if result.changed and not result.internal_error
    )


def changed_blocks(result: FileResult) -> list[tuple[int, int, list[str], list[str]]]:
    """(first old line, last old line, old lines, new lines) for each changed region."""
    assert result.original is not None and result.fixed is not None
    old = result.original.splitlines()
    new = result.fixed.splitlines()
    blocks = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            blocks.append((i1 + 1, max(i1 + 1, i2), old[i1:i2], new[j1:j2]))
    return blocks
