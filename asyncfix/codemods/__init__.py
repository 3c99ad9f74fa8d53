"""The rule registry: one module per antipattern, registered here in code order.

The table names each rule's module and class, which are imported when a rule is first asked
for (``rule_by_code``, ``RULES``): a run whose results all come from the cache never loads
the rules or the semantic model. ``tests/test_all_rules.py`` holds the table to the classes.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncfix.codemods.base import Rule

#: code -> (module in this package, class)
_TABLE: dict[str, tuple[str, str]] = {
    "AF101": ("missing_await", "MissingAwait"),
    "AF102": ("coroutine_in_sync", "CoroutineInSyncContext"),
    "AF103": ("async_override", "AsyncOverrideMismatch"),
    "AF201": ("blocking_sleep", "BlockingSleep"),
    "AF202": ("blocking_io", "BlockingHttp"),
    "AF203": ("blocking_io", "BlockingFileIo"),
    "AF204": ("blocking_io", "BlockingSubprocess"),
    "AF205": ("blocking_helper", "BlockingHelper"),
    "AF206": ("blocking_io", "BlockingInput"),
    "AF301": ("dangling_task", "DanglingTask"),
    "AF302": ("gather_errors", "GatherErrorsLost"),
    "AF303": ("get_event_loop", "GetEventLoopInCoroutine"),
    "AF304": ("nested_loop", "NestedEventLoop"),
    "AF305": ("swallowed_cancellation", "SwallowedCancellation"),
    "AF401": ("lost_update", "LostUpdate"),
    "AF402": ("check_then_act", "CheckThenAct"),
    "AF403": ("await_in_augmented_assign", "AwaitInAugmentedAssign"),
    "AF404": ("sync_with_async_lock", "SyncWithOnAsyncLock"),
    "AF405": ("lock_reentry", "LockReentry"),
    "AF406": ("thread_lock", "ThreadLockAcrossAwait"),
    "AF501": ("unclosed_resource", "UnclosedAsyncResource"),
    "AF502": ("loop_bound", "LoopBoundAtImport"),
    "AF503": ("owned_resource", "StoredResourceNeverClosed"),
}

#: every rule's code, in code order
CODES: tuple[str, ...] = tuple(sorted(_TABLE))

#: the rules that ask the project index about other modules (``Rule.needs_index``): the
#: engine builds the index only for them
NEEDS_INDEX: frozenset[str] = frozenset(
    {"AF101", "AF102", "AF103", "AF205", "AF401", "AF402", "AF406", "AF501", "AF503"}
)

_LOADED: dict[str, type[Rule]] = {}


def rule_by_code(code: str) -> type[Rule]:
    found = _LOADED.get(code)
    if found is None:
        module, name = _TABLE[code]
        found = _LOADED[code] = getattr(import_module(f"{__name__}.{module}"), name)
    return found


def __getattr__(name: str) -> Any:
    if name == "RULES":  # every rule class, in code order (imports them all)
        return tuple(rule_by_code(code) for code in CODES)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
