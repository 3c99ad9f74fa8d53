"""Run the engine on text, the way the CLI does on a file."""

from __future__ import annotations

from asyncfix.engine import Task, process_text
from asyncfix.model import FileResult


def run_text(
    text: str,
    codes: set[str] | frozenset[str],
    *,
    unsafe: bool = True,
    fix: bool = True,
    target: tuple[int, int] = (3, 10),
    path: str = "fixture.py",
) -> FileResult:
    task = Task(
        path=path, display=path, codes=frozenset(codes), unsafe=unsafe, fix=fix, target=target
    )
    result = FileResult(path=path, display=path)
    process_text(text, task, result)
    if result.original is None:
        result.original = text
    return result


def fixed_text(result: FileResult) -> str:
    """The output text: the fixed source, or the original when nothing changed."""
    assert result.error is None, result.error
    assert result.internal_error is None, result.internal_error
    return result.fixed if result.fixed is not None else (result.original or "")
