"""The engine: the only part of asyncfix that knows about files, processes and caches.

- ``detect``: one parse of one source, every rule in one walk, findings with positions;
- ``apply``: a set of fixes applied to a LibCST module;
- ``process``: one file in a worker -- read, analyse, fix to a verified fixpoint;
- ``project``: the project index (facts of every module), cached between runs;
- ``runner``: discovery, the pool, the results cache, ``--validate``, atomic writes.
"""

from asyncfix.engine.detect import Analysis, Task, TooDeep, analyse, fix_id, to_finding
from asyncfix.engine.process import process_file, process_text
from asyncfix.engine.project import INDEX_CACHE, build_index, project_root
from asyncfix.engine.runner import all_codes, plan, run

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
    "to_finding",
]
