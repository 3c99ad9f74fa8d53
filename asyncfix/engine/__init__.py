"""The engine: the only part of asyncfix that knows about files, processes and caches.

- ``detect``: one parse of one source, every rule in one walk, findings with positions;
- ``apply``: a set of fixes applied to a LibCST module;
- ``process``: one file in a worker -- read, analyse, fix to a verified fixpoint;
- ``project``: the project index (facts of every module), cached between runs;
- ``names``: the project-wide name sets, made again from each module's part after an edit;
- ``runner``: discovery, the pool, the results cache, ``--validate``, atomic writes.

Its names are imported from their modules when first used: a run whose results all come
from the cache never loads the analysis.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncfix.engine.detect import Analysis, TooDeep, analyse, fix_id, to_finding
    from asyncfix.engine.process import process_file, process_text
    from asyncfix.engine.project import INDEX_CACHE, build_index, project_root
    from asyncfix.engine.runner import all_codes, plan, run, run_stdin
    from asyncfix.engine.task import Task

_WHERE = {
    "Analysis": "detect",
    "TooDeep": "detect",
    "analyse": "detect",
    "fix_id": "detect",
    "to_finding": "detect",
    "Task": "task",
    "process_file": "process",
    "process_text": "process",
    "INDEX_CACHE": "project",
    "build_index": "project",
    "project_root": "project",
    "all_codes": "runner",
    "plan": "runner",
    "run": "runner",
    "run_stdin": "runner",
}

__all__ = [
    "INDEX_CACHE",
    "Analysis",
    "Task",
    "TooDeep",
    "all_codes",
    "analyse",
    "build_index",
    "fix_id",
    "plan",
    "process_file",
    "process_text",
    "project_root",
    "run",
    "run_stdin",
    "to_finding",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
