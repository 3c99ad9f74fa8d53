"""Run the engine on text, the way the CLI does on a file."""

from __future__ import annotations

from typing import Any

from asyncfix.engine import Task
from asyncfix.engine.process import process_alone
from asyncfix.model import FileResult, Observed


def run_text(
    text: str,
    codes: set[str] | frozenset[str],
    *,
    unsafe: bool = True,
    fix: bool = True,
    target: tuple[int, int] = (3, 10),
    path: str = "fixture.py",
    offload: tuple[str, ...] = (),
    test_code: bool = False,
    observed: tuple[Observed, ...] = (),
    coroutine_functions: tuple[str, ...] = (),
) -> FileResult:
    """Analyse (and fix) ``text`` as a one-module project: the index holds just this file."""
    task = Task(
        path=path,
        display=path,
        codes=frozenset(codes),
        unsafe=unsafe,
        fix=fix,
        target=target,
        offload=offload,
        test_code=test_code,
        observed=observed,
        coroutine_functions=coroutine_functions,
    )
    result = process_alone(text, task)
    if result.original is None:
        result.original = text
    return result


def fixed_text(result: FileResult) -> str:
    """The output text: the fixed source, or the original when nothing changed."""
    assert result.error is None, result.error
    assert result.internal_error is None, result.internal_error
    return result.fixed if result.fixed is not None else (result.original or "")


def cli_runner() -> Any:
    """A ``CliRunner`` as click 8.2 makes it on every click asyncfix supports: ``stdout``
    and ``stderr`` apart, ``output`` both. (fixit pins click below 8.2, so a development
    environment with it runs click 8.1, whose runner mixes the two streams unless told
    not to, and whose ``output`` is then stdout alone.)"""
    import inspect

    from click.testing import CliRunner, Result

    if "mix_stderr" not in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner()

    class _Both(Result):
        @property
        def output(self) -> str:
            return self.stdout + self.stderr

    class _Runner(CliRunner):
        def invoke(self, *args: Any, **kwargs: Any) -> Result:
            result = super().invoke(*args, **kwargs)
            result.__class__ = _Both
            return result

    return _Runner(mix_stderr=False)  # type: ignore[call-arg]
