"""What a worker is asked to do with one file (kept apart from the analysis: a run whose
results all come from the cache makes tasks and never loads the rules)."""

from __future__ import annotations

from dataclasses import dataclass

from asyncfix.model import Observed


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
    #: functions the project declares coroutine functions (config ``coroutine-functions``)
    coroutine_functions: tuple[str, ...] = ()
    #: the file is test code (``files.is_test_path``)
    test_code: bool = False
    #: fixes to leave out, by ``Finding.fix_id`` (``--validate`` found they break the tests)
    excluded: frozenset[str] = frozenset()
    #: what the runtime-evidence plugin saw in this file (``--evidence``), at its lines
    observed: tuple[Observed, ...] = ()
