"""Runtime evidence: a pytest plugin that watches asyncio while the project's tests run.

Opt in with ``pytest -p asyncfix.pytest_plugin``. For the session it turns on asyncio's
debug mode for every event loop (``PYTHONASYNCIODEBUG``), tracks where each coroutine was
created (``sys.set_coroutine_origin_tracking_depth``), shows every ``ResourceWarning``, and
records, with the test that was running:

- ``never-awaited``: a coroutine garbage-collected without being awaited, and the line that
  created it (the last frame of the project's own code in its origin);
- ``task-destroyed-pending``: a task destroyed while still pending, and where it was created;
- ``exception-never-retrieved``: a task or future whose exception nobody retrieved;
- ``unclosed-resource``: a ``ResourceWarning`` (a socket, a transport, an event loop) or a
  library's own "Unclosed ..." report (aiohttp's client sessions and connectors);
- ``slow-callback``: a step of a task (or a callback) that held the event loop longer than
  ``--asyncfix-slow-callback`` seconds (default 0.1), with its duration, the coroutine and
  the line that held it (a sampler thread takes the loop thread's stack while a step runs
  long), else the line it was suspended at next (the blocking code runs between its
  previous ``await`` and that line);
- ``hang`` (with ``--asyncfix-hang SECONDS``): a loop that ran no callback for that long
  while waiting in its selector (a deadlock, a future nobody sets): every task and the line
  it awaits at, and the tasks are cancelled with that message, so the test fails with it
  instead of hanging until CI's timeout; a loop whose thread is stuck in sync code is
  recorded with the thread's stack.

Each test ends with a garbage collection, so what it dropped is seen while it is the test
running. The records go to one JSON file (``--asyncfix-evidence``, default
``.asyncfix_cache/evidence.json`` under pytest's root directory; ``docs/evidence.md``), and
the session ends with a summary line per kind.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import glob
import inspect
import json
import logging
import os
import random
import re
import sys
import threading
import time
import traceback
import warnings
import weakref
from collections.abc import Generator, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

EVIDENCE_FORMAT = 1
#: how the hang detector's message (and so its cancellation) starts
HANG = "asyncfix: no callback ran"
ORIGIN_DEPTH = 16
_FRAME = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')
_RUNNING_AT = re.compile(r"coro=<(?P<name>[^ (]+)\(\) running at (?P<path>[^>]+?):(?P<line>\d+)>")


@dataclass
class Site:
    path: str
    line: int
    function: str = ""


@dataclass
class Record:
    kind: str
    #: the test running (a pytest node id), "" between tests
    test: str
    message: str
    #: where the thing was created (a coroutine, a task, a resource), or the code that held
    #: the loop (a slow callback); None when Python did not say
    site: Site | None = None
    #: the creation stack, innermost last (the project's frames and the rest)
    stack: list[Site] = field(default_factory=list)
    #: a slow callback's duration in seconds
    seconds: float | None = None
    #: what ``site`` is, where that varies by record: an unclosed resource's ``created``
    #: (where it was made) or ``collected`` (where it was garbage-collected); a slow
    #: callback's ``blocked`` (the line of the coroutine that was running when the loop was
    #: seen held) or ``suspended`` (the ``await`` it reached next); else ""
    where: str = ""


def _sites(text: str) -> list[Site]:
    return [Site(m["path"], int(m["line"]), m["function"]) for m in _FRAME.finditer(text or "")]


#: where Python and installed packages live: frames there are not the project's
_ELSEWHERE = tuple(
    {
        str(Path(p).resolve())
        for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.__file__))
    }
)


def _is_project(site: Site, root: Path) -> bool:
    """Whether the frame is the project's own code (not the standard library, not an
    installed package, not this plugin)."""
    return _project_path(site.path, str(root))


@functools.lru_cache(maxsize=4096)
def _project_path(path: str, root: str) -> bool:
    resolved = str(Path(path).resolve())
    inside = resolved.startswith(root)
    installed = "site-packages" in resolved or resolved.startswith(_ELSEWHERE)
    return inside and not installed and not resolved.endswith("pytest_plugin.py")


def _site_of(stack: list[Site], root: Path) -> Site | None:
    """The innermost frame of the project's own code, else the innermost frame."""
    for site in reversed(stack):
        if _is_project(site, root):
            return site
    return stack[-1] if stack else None


def _traceback_sites(traceback: Iterable[Any] | None) -> list[Site]:
    """``_source_traceback`` (a ``traceback.StackSummary``) as sites."""
    return [Site(frame.filename, frame.lineno or 0, frame.name) for frame in traceback or ()]


class Evidence:
    """What the session saw; one per pytest session (``config.stash``)."""

    def __init__(self, root: Path, slow: float) -> None:
        self.root = root.resolve()
        self.slow = slow
        self.records: list[Record] = []
        self.test = ""
        self.tests = 0
        #: ``--asyncfix-perturb``: each run's test (without the run's id), seed (None: the
        #: plain run) and place, and whether it passed
        self.runs: dict[str, tuple[str, int | None, Site]] = {}
        self.outcomes: dict[str, bool] = {}
        #: the objects an unclosed-resource record is about (aiohttp reports an unclosed
        #: session twice: a ResourceWarning and the loop's exception handler), kept alive
        #: so that their ids stay theirs
        self._unclosed: dict[int, object] = {}

    def add(
        self,
        kind: str,
        message: str,
        stack: list[Site],
        seconds: float | None = None,
        site: Site | None = None,
        where: str = "",
    ) -> None:
        at = site if site is not None else _site_of(stack, self.root)
        self.records.append(Record(kind, self.test, message, at, stack, seconds, where))

    # -- the sources ---------------------------------------------------------------------

    def warning(self, message: warnings.WarningMessage, test: str = "") -> None:
        """A warning, seen while ``test`` ran (pytest says which) or now."""
        text = str(message.message)
        running, self.test = self.test, test or self.test
        try:
            if isinstance(message.message, RuntimeWarning) and "was never awaited" in text:
                self.add("never-awaited", text.splitlines()[0], _sites(text))
            elif isinstance(message.message, ResourceWarning) and self._first(
                getattr(message, "source", None)
            ):
                stack, where = _allocation(message)
                self.add("unclosed-resource", text.splitlines()[0], stack, where=where)
        finally:
            self.test = running

    def exception_context(
        self, context: dict[str, Any], loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """What an event loop's exception handler is told."""
        message = str(context.get("message", ""))
        task = context.get("task") or context.get("future")
        stack = _traceback_sites(
            getattr(task, "_source_traceback", None) or context.get("source_traceback")
        )
        if "destroyed but it is pending" in message:
            self.add("task-destroyed-pending", f"{message} {_coro_name(task)}".strip(), stack)
        elif "exception was never retrieved" in message:
            exception = context.get("exception")
            if isinstance(exception, asyncio.CancelledError) and (
                str(exception).startswith(HANG) or loop in _CANCELLED_BY_WATCHDOG
            ):
                # the hang detector's own cancellation: the tasks are cancelled in no set
                # order, so a gather or wait_for may cancel a child first, without the message
                return

            detail = f"{type(exception).__name__}: {exception}" if exception else ""
            self.add("exception-never-retrieved", f"{message} {detail}".strip(), stack)
        elif message.lower().startswith("unclosed"):
            about = next(
                (v for k, v in context.items() if k not in ("message", "source_traceback")),
                None,
            )
            if self._first(about):
                self.add("unclosed-resource", message, stack, where="created" if stack else "")

    def forget_objects(self) -> None:
        """The objects of the tests before may go."""
        self._unclosed.clear()

    def _first(self, about: object) -> bool:
        """Whether this is the first report of ``about`` (None: cannot tell, so yes)."""
        if about is None:
            return True
        if id(about) in self._unclosed:
            return False
        self._unclosed[id(about)] = about
        return True

    def slow_callback(self, record: logging.LogRecord) -> None:
        """``Executing <handle> took N seconds`` from a loop in debug mode: the handle the
        loop is running is still its current one while it logs. Placed at the line the
        sampler saw the loop's thread at while the handle ran (the project's innermost
        coroutine frame: the call in the ``async def`` that did not return), else at the
        ``await`` the coroutine reached next (the blocking code is between that and its
        previous suspension)."""
        args = record.args if isinstance(record.args, tuple) else ()
        seconds = float(args[1]) if len(args) > 1 and isinstance(args[1], int | float) else None
        described = str(args[0]) if args else record.getMessage()
        loop = asyncio.events._get_running_loop()
        handle = getattr(loop, "_current_handle", None)
        samples = _SAMPLES.pop(id(handle), []) if handle is not None else []
        task = getattr(getattr(handle, "_callback", None), "__self__", None)
        name = _coro_name(task) or described
        message = f"{name} held the event loop for {seconds:.3f} s" if seconds else described
        blocked = self._blocked_at(samples)
        if blocked is not None:
            site, inner, stack = blocked
            message += f", at {Path(site.path).name}:{site.line}"
            if inner != site:
                message += f" (in {inner.function}() at {Path(inner.path).name}:{inner.line})"
            self.add("slow-callback", message, stack, seconds, site, where="blocked")
            return
        created = _traceback_sites(getattr(task, "_source_traceback", None))
        suspended = _suspended_at(task)
        running = _RUNNING_AT.search(described)
        if suspended is None and running is not None:
            suspended = Site(running["path"], int(running["line"]), running["name"])
        self.add("slow-callback", message, created, seconds, suspended, where="suspended")

    def _blocked_at(self, samples: list[list[_Sampled]]) -> tuple[Site, Site, list[Site]] | None:
        """What the samples of the loop's thread say held it: the project's innermost
        coroutine frame (else its innermost frame) and its innermost frame, as most samples
        saw them, with that sample's stack (innermost last)."""
        seen: dict[tuple[Any, ...], int] = {}
        found: dict[tuple[Any, ...], tuple[Site, Site, list[Site]]] = {}
        for sample in samples:
            ours = [(site, coroutine) for site, coroutine in sample if _is_project(site, self.root)]
            if not ours:
                continue  # none of the project's own code was running
            inner = ours[-1][0]
            site = next((s for s, coroutine in reversed(ours) if coroutine), inner)
            key = (site.path, site.line, inner.path, inner.line)
            seen[key] = seen.get(key, 0) + 1
            found.setdefault(key, (site, inner, [s for s, _ in sample]))
        if not seen:
            return None
        return found[max(seen, key=lambda key: seen[key])]  # the first of the most seen

    def perturbation_results(self) -> None:
        """A ``perturbation`` record for each test that passed as it is and failed in some
        perturbed runs: how many, and the seeds that reproduce them."""
        tests: dict[str, list[tuple[int | None, bool]]] = {}
        sites: dict[str, Site] = {}
        for nodeid, (base, seed, site) in self.runs.items():
            if nodeid in self.outcomes:
                tests.setdefault(base, []).append((seed, self.outcomes[nodeid]))
                sites[base] = site
        for base, outcomes in tests.items():
            plain = [passed for seed, passed in outcomes if seed is None]
            failed = sorted(seed for seed, passed in outcomes if seed is not None and not passed)
            perturbed = sum(1 for seed, _ in outcomes if seed is not None)
            if plain == [True] and failed:
                seeds = ", ".join(map(str, failed[:10])) + (" ..." if len(failed) > 10 else "")
                message = (
                    f"fails in {len(failed)} of {perturbed} perturbed runs and passes as it is "
                    f"(seeds {seeds}; rerun one with --asyncfix-seed SEED --asyncfix-perturb 1)"
                )
                self.records.append(
                    Record("perturbation", base, message, sites[base], [sites[base]])
                )

    # -- the file ------------------------------------------------------------------------

    def data(self) -> dict[str, Any]:
        counts = _counts(record.kind for record in self.records)
        return {
            "format": EVIDENCE_FORMAT,
            "root": str(self.root),
            "slow_callback_seconds": self.slow,
            "tests": self.tests,
            "counts": counts,
            "records": [asdict(record) for record in self.records],
        }


def _allocation(message: warnings.WarningMessage) -> tuple[list[Site], str]:
    """Where the object a ResourceWarning is about was made, when it kept its creation
    stack (asyncio's transports and aiohttp's sessions do, in debug mode:
    ``_source_traceback``); else where the warning came from (where it was
    garbage-collected: Python does not say where it was made, and tracemalloc's record of
    the block points at the caller, not the line that made it)."""
    made = _traceback_sites(getattr(getattr(message, "source", None), "_source_traceback", None))
    if made:
        return made, "created"
    return ([Site(message.filename, message.lineno)], "collected") if message.filename else ([], "")


def _suspended_at(task: Any) -> Site | None:
    """Where the task's coroutine waits now: the ``await`` after the code that held the
    loop."""
    get_coro = getattr(task, "get_coro", None)
    coro = get_coro() if callable(get_coro) else None
    frame = getattr(coro, "cr_frame", None)
    if frame is None:
        return None
    return Site(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


def _coro_name(task: Any) -> str:
    get_coro = getattr(task, "get_coro", None)
    coro = get_coro() if callable(get_coro) else None
    return f"{getattr(coro, '__qualname__', '')}()" if coro is not None else ""


class _AsyncioLog(logging.Handler):
    def __init__(self, evidence: Evidence) -> None:
        super().__init__(logging.WARNING)
        self.evidence = evidence

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("Executing %s took"):
            self.evidence.slow_callback(record)


_KEY = pytest.StashKey[Evidence]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("asyncfix", "asyncfix runtime evidence")
    group.addoption(
        "--asyncfix-evidence",
        metavar="PATH",
        help="Where the evidence JSON goes (default: .asyncfix_cache/evidence.json under "
        "the root directory).",
    )
    group.addoption(
        "--asyncfix-hang",
        type=float,
        default=None,
        metavar="SECONDS",
        help="When an event loop runs nothing for this long, record every task's stack and "
        "cancel its tasks (the test fails with the stacks) instead of hanging (default: off).",
    )
    group.addoption(
        "--asyncfix-perturb",
        type=int,
        default=0,
        metavar="N",
        help="Run each selected test N more times with the order of ready tasks perturbed "
        "(a task's resumption held back to the next turn of the loop at random), and report "
        "the tests that fail only so: the races.",
    )
    group.addoption(
        "--asyncfix-seed",
        type=int,
        default=0,
        metavar="SEED",
        help="The first perturbed run's seed (run i uses SEED + i): a failure reproduces.",
    )
    group.addoption(
        "--asyncfix-slow-callback",
        type=float,
        default=0.1,
        metavar="SECONDS",
        help="Record a task step or callback that holds the event loop this long (default 0.1).",
    )


def pytest_configure(config: pytest.Config) -> None:
    evidence = Evidence(Path(str(config.rootpath)), config.getoption("asyncfix_slow_callback"))
    config.stash[_KEY] = evidence
    os.environ["PYTHONASYNCIODEBUG"] = "1"  # every loop made from now on runs in debug mode
    sys.set_coroutine_origin_tracking_depth(ORIGIN_DEPTH)
    config.addinivalue_line("filterwarnings", "always::ResourceWarning")
    config.addinivalue_line("filterwarnings", "always:coroutine .* was never awaited")
    _patch_loops(evidence)
    sampler = _Sampler(evidence.slow)
    sampler.start()
    config.add_cleanup(sampler.stop)
    hang = config.getoption("asyncfix_hang")
    if hang:
        watchdog = _Watchdog(evidence, hang)
        watchdog.start()
        config.add_cleanup(watchdog.stop)
    handler = _AsyncioLog(evidence)
    logging.getLogger("asyncio").addHandler(handler)
    config.add_cleanup(lambda: logging.getLogger("asyncio").removeHandler(handler))


_ORIGINAL_INIT = asyncio.base_events.BaseEventLoop.__init__
_ORIGINAL_RUN = asyncio.events.Handle._run
_ORIGINAL_RUN_FOREVER = asyncio.base_events.BaseEventLoop.run_forever
#: a turn of the loop (private, so not in the type stubs: reached by name)
_RUN_ONCE = "_run_once"
_ORIGINAL_RUN_ONCE = vars(asyncio.base_events.BaseEventLoop)[_RUN_ONCE]
#: the perturbed run's random source (None: the loop runs as it does)
_PERTURB: list[random.Random | None] = [None]
#: how likely a ready task's resumption is held back to the next turn of the loop
HOLD_BACK = 0.5


def _perturbed_run_once(self: asyncio.base_events.BaseEventLoop) -> None:
    """One turn of the loop; in a perturbed run, some of the tasks ready to resume wait for
    the next turn, so the others (and what they schedule) run first. Only a task's own step
    is held back -- as if what it awaited had completed a moment later, a schedule that can
    happen -- never another callback (asyncio runs those in the order they were
    scheduled, and code relies on that); never all of them."""
    rng = _PERTURB[0]
    ready = self._ready  # type: ignore[attr-defined]
    held: list[Any] = []
    if rng is not None and len(ready) > 1:
        # taken from the left and put back there: another thread may append to the right
        # meanwhile (``call_soon_threadsafe``), and what it appends must stay
        taken = [ready.popleft() for _ in range(len(ready))]
        kept = []
        for handle in taken:
            task = getattr(getattr(handle, "_callback", None), "__self__", None)
            if isinstance(task, asyncio.Task) and rng.random() < HOLD_BACK:
                held.append(handle)
            else:
                kept.append(handle)
        if not kept:
            kept.append(held.pop(0))
        ready.extendleft(reversed(kept))
    _ORIGINAL_RUN_ONCE(self)
    ready.extend(held)


#: the loops made in the session, and when each last ran a callback
_LOOPS: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
#: the loops whose tasks the hang detector cancelled
_CANCELLED_BY_WATCHDOG: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_PROGRESS: dict[int, float] = {}
#: the handle each loop runs now (by the loop's id) and since when
_RUNNING: dict[int, tuple[asyncio.Handle, float]] = {}
#: a frame the sampler saw, and whether it is a coroutine's (an ``async def``'s)
_Sampled = tuple[Site, bool]
#: the stacks (innermost last) the sampler saw a handle's loop thread in while it ran long,
#: by the handle's id; taken by its slow-callback record
_SAMPLES: dict[int, list[list[_Sampled]]] = {}
#: a handle's samples kept at most, and how deep a sampled stack goes
MAX_SAMPLES = 50
MAX_DEPTH = 64
_ASYNC_CODE = inspect.CO_COROUTINE | inspect.CO_ITERABLE_COROUTINE | inspect.CO_ASYNC_GENERATOR


class _Sampler(threading.Thread):
    """Where a loop's thread is while a handle holds it long: every fifth of the
    slow-callback threshold, each handle that has run for half of it has its thread's stack
    taken (``sys._current_frames``), so its slow-callback record can name the line that
    blocked -- which the loop's own report (the handle, its duration) does not."""

    def __init__(self, seconds: float) -> None:
        super().__init__(name="asyncfix-slow-callback-sampler", daemon=True)
        self.seconds = seconds
        self.done = threading.Event()

    def stop(self) -> None:
        self.done.set()

    def run(self) -> None:
        while not self.done.wait(max(0.005, self.seconds / 5)):
            now = time.monotonic()
            for handle, start in _RUNNING.copy().values():
                if now - start >= self.seconds / 2:
                    self._sample(handle)

    def _sample(self, handle: asyncio.Handle) -> None:
        loop = getattr(handle, "_loop", None)
        thread = getattr(loop, "_thread_id", None)
        frame = sys._current_frames().get(thread) if thread is not None else None
        stack: list[_Sampled] = []
        while frame is not None and len(stack) < MAX_DEPTH:
            code = frame.f_code
            site = Site(code.co_filename, frame.f_lineno or 0, code.co_name)
            stack.append((site, bool(code.co_flags & _ASYNC_CODE)))
            frame = frame.f_back
        running = _RUNNING.get(id(loop))
        if stack and running is not None and running[0] is handle:  # still that handle
            if len(_SAMPLES) > MAX_SAMPLES:  # handles whose records never came for them
                _SAMPLES.clear()
            samples = _SAMPLES.setdefault(id(handle), [])
            if len(samples) < MAX_SAMPLES:
                samples.append(stack[::-1])


class _Watchdog(threading.Thread):
    """Every so often, each running loop that ran no callback for ``seconds``: when its
    thread waits in the selector (nothing will ever wake it: a deadlock, a future nobody
    sets), every task's stack is recorded (``hang``) and the tasks are cancelled, so the test
    fails with a message instead of hanging; when its thread is busy in sync code, the
    thread's stack is recorded (it cannot be interrupted)."""

    def __init__(self, evidence: Evidence, seconds: float) -> None:
        super().__init__(name="asyncfix-hang-watchdog", daemon=True)
        self.evidence = evidence
        self.seconds = seconds
        self.done = threading.Event()
        self.reported: set[tuple[int, float]] = set()

    def stop(self) -> None:
        self.done.set()

    def run(self) -> None:
        while not self.done.wait(min(1.0, self.seconds / 4)):
            now = time.monotonic()
            for loop in list(_LOOPS):
                thread = getattr(loop, "_thread_id", None)
                if thread is None or not loop.is_running():
                    continue
                last = _PROGRESS.setdefault(id(loop), now)
                if now - last >= self.seconds and (id(loop), last) not in self.reported:
                    self.reported.add((id(loop), last))
                    self._hung(loop, thread, now - last)

    def _hung(self, loop: asyncio.AbstractEventLoop, thread: int, idle: float) -> None:
        frame = sys._current_frames().get(thread)
        waiting = frame is not None and frame.f_code.co_filename.endswith("selectors.py")
        if not waiting:
            stack = (
                [Site(f.filename, f.lineno or 0, f.name) for f in traceback.extract_stack(frame)]
                if frame is not None
                else []
            )
            self.evidence.add(
                "hang", f"the event loop's thread has been busy for {idle:.1f} s", stack
            )
            return
        lines = [f"{HANG} for {idle:.1f} s; the tasks and what they await:"]
        first: list[Site] = []
        for task in sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name()):
            frames = task.get_stack()
            where = [Site(f.f_code.co_filename, f.f_lineno, f.f_code.co_name) for f in frames]
            first = first or where
            path = " <- ".join(f"{s.function}() at {Path(s.path).name}:{s.line}" for s in where)
            lines.append(f"  {task.get_name()} {_coro_name(task)}: {path or 'not started'}")
        message = "\n".join(lines)
        self.evidence.add("hang", message, first)
        _CANCELLED_BY_WATCHDOG.add(loop)
        for task in asyncio.all_tasks(loop):
            loop.call_soon_threadsafe(task.cancel, message)


def _patch_loops(evidence: Evidence) -> None:
    """Every event loop made in the session: the slow-callback threshold, and an exception
    handler that records what it is told and then does what the loop would have done."""

    def init(self: asyncio.base_events.BaseEventLoop, *args: Any, **kwargs: Any) -> None:
        _ORIGINAL_INIT(self, *args, **kwargs)
        self.slow_callback_duration = evidence.slow
        _LOOPS.add(self)

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            evidence.exception_context(context, loop)
            loop.default_exception_handler(context)

        self.set_exception_handler(handler)

    asyncio.base_events.BaseEventLoop.__init__ = init  # type: ignore[method-assign,assignment]

    def run(handle: asyncio.Handle) -> None:
        loop = id(handle._loop)  # type: ignore[attr-defined]
        now = _PROGRESS[loop] = time.monotonic()
        if _SAMPLES:
            _SAMPLES.pop(id(handle), None)  # another handle's that had its id
        _RUNNING[loop] = (handle, now)
        try:
            _ORIGINAL_RUN(handle)
        finally:
            _RUNNING.pop(loop, None)

    def run_forever(self: asyncio.base_events.BaseEventLoop) -> None:
        # a loop that starts (again) has not been idle: not since its last run, nor since
        # a loop that had its id before it
        _PROGRESS[id(self)] = time.monotonic()
        _ORIGINAL_RUN_FOREVER(self)

    asyncio.base_events.BaseEventLoop.run_forever = run_forever  # type: ignore[method-assign]

    asyncio.events.Handle._run = run  # type: ignore[method-assign,assignment]
    setattr(asyncio.base_events.BaseEventLoop, _RUN_ONCE, _perturbed_run_once)


def pytest_unconfigure(config: pytest.Config) -> None:
    asyncio.base_events.BaseEventLoop.__init__ = _ORIGINAL_INIT  # type: ignore[method-assign]
    asyncio.events.Handle._run = _ORIGINAL_RUN  # type: ignore[method-assign]
    asyncio.base_events.BaseEventLoop.run_forever = _ORIGINAL_RUN_FOREVER  # type: ignore[method-assign]
    setattr(asyncio.base_events.BaseEventLoop, _RUN_ONCE, _ORIGINAL_RUN_ONCE)


_PARAM = "asyncfix_perturbed_run"
_RUN_IDS = (
    re.compile(r"\[asyncfix-(?:plain|perturb\d+)\]$"),  # the only parameter
    re.compile(r"-asyncfix-(?:plain|perturb\d+)(?=[-\]])"),  # after others
    re.compile(r"(?<=\[)asyncfix-(?:plain|perturb\d+)-"),  # before others
)


def _without_run(nodeid: str) -> str:
    """The test a perturbed run is a run of (its node id without the run's parameter)."""
    for pattern in _RUN_IDS:
        if pattern.search(nodeid):
            return pattern.sub("", nodeid, count=1)
    return nodeid


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``--asyncfix-perturb N``: each test once as it is and N times perturbed (a
    parameter of the plugin's own, read back from the test's ``callspec``)."""
    runs = metafunc.config.getoption("asyncfix_perturb")
    if runs:
        ids = ["asyncfix-plain", *(f"asyncfix-perturb{i}" for i in range(runs))]
        metafunc.fixturenames.append(_PARAM)
        metafunc.parametrize(_PARAM, [None, *range(runs)], ids=ids, indirect=True)


@pytest.fixture
def asyncfix_perturbed_run(request: pytest.FixtureRequest) -> int | None:
    """The perturbed run's number (None: the plain run); the parametrization needs it."""
    run: int | None = request.param
    return run


def _perturbation(item: pytest.Item, evidence: Evidence) -> random.Random | None:
    """The item's perturbed run, if it is one: its random source (seeded), and what the
    evidence needs to tell its runs apart."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or _PARAM not in callspec.params:
        return None
    run: int | None = callspec.params[_PARAM]
    seed = item.config.getoption("asyncfix_seed") + run if run is not None else None
    base = _without_run(item.nodeid)
    path, line, _ = item.location
    evidence.runs[item.nodeid] = (base, seed, Site(str(evidence.root / path), (line or 0) + 1))
    return random.Random(seed) if seed is not None else None


_RUN_ID = re.compile(r"asyncfix-(?:plain|perturb(?P<run>\d+))(?=[-\]])")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    evidence = _current
    if evidence is None:
        return
    if _controller and report.nodeid not in evidence.runs and _current_seed is not None:
        # under xdist a test's runs go to any worker: the controller, which sees every
        # report, tells the runs apart by their ids
        found = _RUN_ID.search(report.nodeid)
        if found is not None:
            run = found["run"]
            seed = _current_seed + int(run) if run is not None else None
            path, line, _ = report.location
            site = Site(str(evidence.root / path), (line or 0) + 1)
            evidence.runs[report.nodeid] = (_without_run(report.nodeid), seed, site)
    if report.nodeid not in evidence.runs:
        return
    if report.when == "call" or (report.when == "setup" and report.failed):
        evidence.outcomes[report.nodeid] = report.passed


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    evidence = item.config.stash[_KEY]
    evidence.forget_objects()  # the last test's (its warnings were recorded by now)
    evidence.test = item.nodeid
    evidence.tests += 1
    _PERTURB[0] = _perturbation(item, evidence)
    try:
        yield
    finally:
        _PERTURB[0] = None
        evidence.test = ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    yield
    # what the test dropped in a reference cycle is seen now, while it is the test running
    # (a coroutine never awaited warns when it is collected). The young generations only:
    # what the test made is there, and a full collection after every test made big suites
    # several times slower (starlette's: 14 s -> 118 s; 24 s so); what escapes them is seen
    # by the full collection at the end of the session, between tests
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        gc.collect(1)
    evidence = item.config.stash[_KEY]
    for message in seen:
        evidence.warning(message)


def pytest_warning_recorded(warning_message: warnings.WarningMessage, nodeid: str) -> None:
    """The warnings pytest captured while a test ran (on an xdist controller, the workers'
    warnings come again: the workers recorded them)."""
    evidence = _current
    if evidence is not None and not _controller:
        evidence.warning(warning_message, nodeid)


_current: Evidence | None = None
#: ``--asyncfix-seed`` when ``--asyncfix-perturb`` is on (else None)
_current_seed: int | None = None
#: this process runs no tests: it is the controller of xdist workers, which write their
#: evidence to parts of the file that it joins at the end
_controller = False


def _target(config: pytest.Config, evidence: Evidence) -> Path:
    target = config.getoption("asyncfix_evidence")
    return Path(target) if target else evidence.root / ".asyncfix_cache" / "evidence.json"


def _parts(path: Path) -> list[Path]:
    """The parts xdist workers write (``evidence.json.gw0`` ...)."""
    return sorted(path.parent.glob(f"{glob.escape(path.name)}.gw*"))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    global _current, _controller, _current_seed
    config = session.config
    _current = config.stash[_KEY]
    _controller = config.pluginmanager.has_plugin("dsession")
    perturbing = config.getoption("asyncfix_perturb")
    _current_seed = config.getoption("asyncfix_seed") if perturbing else None
    if _controller:
        for stale in _parts(_target(config, _current)):  # a run that was killed
            stale.unlink(missing_ok=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    evidence = config.stash[_KEY]
    gc.collect()
    worker = getattr(config, "workerinput", None)
    if worker is None:  # a worker sees some of a test's runs only: the controller tells
        evidence.perturbation_results()
    path = _target(config, evidence)
    if worker is not None:
        path = path.with_name(f"{path.name}.{worker['workerid']}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent.name == ".asyncfix_cache" and not (path.parent / ".gitignore").exists():
        (path.parent / ".gitignore").write_text("# created by asyncfix\n*\n", encoding="utf-8")
    data = evidence.data()
    if _controller:
        data = _joined(data, _parts(path))
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    if _controller:
        for part in _parts(path):
            part.unlink(missing_ok=True)
    config.stash[_DATA] = data
    config.stash[_PATH] = path


def _joined(data: dict[str, Any], parts: list[Path]) -> dict[str, Any]:
    """The controller's evidence with its workers' (their tests, records, counts)."""
    records = list(data["records"])
    tests = data["tests"]
    for part in parts:
        try:
            worker = json.loads(part.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a worker that crashed while writing: its tests are failures anyway
        records += worker.get("records", [])
        tests += worker.get("tests", 0)
    counts = _counts(record["kind"] for record in records)
    return {**data, "tests": tests, "counts": counts, "records": records}


def _counts(kinds: Iterable[str]) -> dict[str, int]:
    """How many records of each kind, by kind."""
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


_PATH = pytest.StashKey[Path]()
_DATA = pytest.StashKey[dict[str, Any]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    data = config.stash[_DATA] if _DATA in config.stash else config.stash[_KEY].data()
    records: list[dict[str, Any]] = data["records"]
    terminalreporter.section("asyncfix runtime evidence")
    if not data["counts"]:
        terminalreporter.write_line(f"nothing seen in {data['tests']} tests")
    for kind, count in data["counts"].items():
        tests = len({r["test"] for r in records if r["kind"] == kind})
        terminalreporter.write_line(f"{kind}: {count} (in {tests} tests)")
    for record in records:
        if record["kind"] == "perturbation":
            terminalreporter.write_line(f"  {record['test']} {record['message']}")
    if _PATH in config.stash:
        terminalreporter.write_line(f"evidence: {config.stash[_PATH]}")
