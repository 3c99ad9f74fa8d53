"""The rule registry: one module per antipattern, registered here in code order."""

from __future__ import annotations

from asyncfix.codemods.async_override import AsyncOverrideMismatch
from asyncfix.codemods.await_in_augmented_assign import AwaitInAugmentedAssign
from asyncfix.codemods.base import Rule
from asyncfix.codemods.blocking_helper import BlockingHelper
from asyncfix.codemods.blocking_io import (
    BlockingFileIo,
    BlockingHttp,
    BlockingInput,
    BlockingSubprocess,
)
from asyncfix.codemods.blocking_sleep import BlockingSleep
from asyncfix.codemods.check_then_act import CheckThenAct
from asyncfix.codemods.coroutine_in_sync import CoroutineInSyncContext
from asyncfix.codemods.dangling_task import DanglingTask
from asyncfix.codemods.gather_errors import GatherErrorsLost
from asyncfix.codemods.get_event_loop import GetEventLoopInCoroutine
from asyncfix.codemods.lock_reentry import LockReentry
from asyncfix.codemods.loop_bound import LoopBoundAtImport
from asyncfix.codemods.lost_update import LostUpdate
from asyncfix.codemods.missing_await import MissingAwait
from asyncfix.codemods.nested_loop import NestedEventLoop
from asyncfix.codemods.owned_resource import StoredResourceNeverClosed
from asyncfix.codemods.swallowed_cancellation import SwallowedCancellation
from asyncfix.codemods.sync_with_async_lock import SyncWithOnAsyncLock
from asyncfix.codemods.thread_lock import ThreadLockAcrossAwait
from asyncfix.codemods.unclosed_resource import UnclosedAsyncResource

RULES: tuple[type[Rule], ...] = tuple(
    sorted(
        (
            AsyncOverrideMismatch,
            BlockingFileIo,
            BlockingHelper,
            BlockingHttp,
            BlockingInput,
            BlockingSubprocess,
            BlockingSleep,
            CoroutineInSyncContext,
            DanglingTask,
            GetEventLoopInCoroutine,
            GatherErrorsLost,
            MissingAwait,
            LoopBoundAtImport,
            UnclosedAsyncResource,
            StoredResourceNeverClosed,
            NestedEventLoop,
            SyncWithOnAsyncLock,
            SwallowedCancellation,
            LostUpdate,
            CheckThenAct,
            AwaitInAugmentedAssign,
            LockReentry,
            ThreadLockAcrossAwait,
        ),
        key=lambda rule: rule.code,
    )
)
_BY_CODE = {rule.code: rule for rule in RULES}


def rule_by_code(code: str) -> type[Rule]:
    return _BY_CODE[code]
