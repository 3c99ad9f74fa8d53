"""Unified diffs of the fixes, ``git apply``-able."""

from __future__ import annotations

import difflib

from asyncfix.model import FileResult, RunResult


def file_diff(result: FileResult) -> str:
    assert result.original is not None and result.fixed is not None
    old = result.original.splitlines(keepends=True)
    new = result.fixed.splitlines(keepends=True)
    lines = list(difflib.unified_diff(old, new, f"a/{result.display}", f"b/{result.display}", n=3))
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
