"""Unified diffs of the fixes, ``git apply``-able: in each file's own bytes (its encoding,
its BOM, its line endings), with paths relative to the top of the git work tree."""

from __future__ import annotations

import difflib

from asyncfix.files import BOM
from asyncfix.model import FileResult, RunResult

_NO_NEWLINE = b"\\ No newline at end of file\n"


def _bytes(result: FileResult, text: str) -> bytes:
    data = text.encode(result.encoding)
    return BOM + data if result.bom else data


def _lines(data: bytes) -> list[bytes]:
    """Lines as git and patch count them: ended by LF alone. A bare CR (a line break to
    Python) stays inside its line, or the hunks' line counts would not be git's."""
    lines = [line + b"\n" for line in data.split(b"\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def file_diff(result: FileResult) -> bytes:
    assert result.original is not None and result.fixed is not None
    old = _lines(_bytes(result, result.original))
    new = _lines(_bytes(result, result.fixed))
    path = (result.patch_path or result.display).encode("utf-8", "surrogateescape")
    lines = difflib.diff_bytes(
        difflib.unified_diff, old, new, b"a/" + path, b"b/" + path, n=3, lineterm=b"\n"
    )
    out: list[bytes] = []
    for line in lines:
        if line.endswith(b"\n"):
            out.append(line)
        else:  # the last line of a file without a final newline
            out.append(line + b"\n" + _NO_NEWLINE)
    return b"".join(out)


def render(run: RunResult) -> bytes:
    return b"".join(
        file_diff(result)
        for result in sorted(run.files, key=lambda r: r.display)
        if result.changed and not result.internal_error
    )
