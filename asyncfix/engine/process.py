"""One file in a worker: read, decode, analyse, fix to a verified fixpoint (``process_file``),
and the worker's state (the run's project index, the collector tuned for parsing)."""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import difflib
import gc
import hashlib
import itertools
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from asyncfix.analysis.source import python_lines
from asyncfix.codemods import NEEDS_INDEX, rule_by_code
from asyncfix.codemods.base import Hit, Project, Rule
from asyncfix.engine.detect import (
    Analysis,
    FixKey,
    NotPython,
    Task,
    TooDeep,
    analyse,
    fix_id,
    null_byte,
    to_finding,
)
from asyncfix.files import (
    Source,
    SourceError,
    decode,
)
from asyncfix.index import (
    ProjectIndex,
    facts_from_source,
)
from asyncfix.lazy import libcst as cst
from asyncfix.model import FileResult, Observed, Safety, Validation

MAX_ROUNDS = 5
#: below this many files the pool costs more than it saves
POOL_THRESHOLD = 16
#: the collector's youngest-generation threshold while files are parsed (Python's is 700).
#: Parsers allocate millions of objects that live until the file is done and form few
#: cycles; at 700 the collector runs every few lines of source and, at each older-generation
#: pass, scans the project index too -- a fifth of a cold run
GC_THRESHOLD = 50_000


def _compiles(text: str, path: str) -> tuple[bool, str]:
    """Whether the fixed text compiles; the compiler's warnings (an ``is`` with a literal,
    an invalid escape) are about the project's code, not the fix: not printed (they were,
    on every fixed file that had one -- found by scripts/fuzz.py)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return False, f"{exc.msg} (line {exc.lineno})"
    except ValueError as exc:
        return False, str(exc)
    return True, ""


def process_file(task: Task) -> FileResult:
    """Read, decode and process one file; every problem becomes ``FileResult.error``."""
    result = FileResult(path=task.path, display=task.display)
    try:
        raw = Path(task.path).read_bytes()
        result.content = hashlib.sha256(raw).hexdigest()
        source = decode(raw)
    except FileNotFoundError:
        result.error = "file vanished before it could be read"
        return result
    except IsADirectoryError:
        result.error = "is a directory"
        return result
    except OSError as exc:
        result.error = f"cannot read: {exc.strerror or exc}"
        return result
    except SourceError as exc:
        result.error = str(exc)
        return result
    result.encoding, result.bom = source.encoding, source.bom
    index = _INDEX
    if index is None:
        process_text(source.text, task, result)
    else:
        consulted = index.record()
        try:
            process_text(source.text, task, result)
        finally:
            index.stop_recording()
        module = index.module_of(task.path)
        if module is not None and not NEEDS_INDEX.isdisjoint(task.codes):
            result.depends = index.dependencies(module, consulted)
    keep_encodable(source, result)
    return result


def keep_encodable(source: Source, result: FileResult) -> None:
    """A fixed text that the file's own encoding cannot hold is not a fix (an internal
    error: the file is left as it was)."""
    if result.fixed is not None:
        try:
            source.encode(result.fixed)
        except UnicodeEncodeError as exc:
            result.internal_error = f"fixed text cannot be encoded as {source.encoding}: {exc}"
            result.fixed = None


def process_alone(text: str, task: Task) -> FileResult:
    """``process_text`` on ``text`` as a one-module project, its index holding just this
    text (the fixit rules', the tests' and the fuzzer's way to run the engine on a string)."""
    result = FileResult(path=task.path, display=task.display)
    facts = facts_from_source(text, Path(task.path))
    if facts is not None:
        facts.path = task.path
    _set_index(ProjectIndex([facts]) if facts is not None else None)
    try:
        process_text(text, task, result)
    finally:
        _set_index(None)
    return result


def process_text(text: str, task: Task, result: FileResult) -> None:
    """Analyse ``text`` and, when ``task.fix``, fix it to a verified fixpoint."""
    rules = [rule_by_code(code) for code in sorted(task.codes)]
    project = _project_for(task.path, rules)
    try:
        analysis = analyse(
            text,
            rules,
            task.target,
            project,
            task.offload,
            task.test_code,
            task.observed,
            declared=task.coroutine_functions,
        )
    except cst.ParserSyntaxError as exc:
        result.error = _syntax_error(text, exc)
        return
    except NotPython as exc:
        result.error = str(exc)
        return
    except TooDeep:
        result.error = "too deeply nested to parse"
        return
    except RecursionError:
        result.internal_error = (
            "asyncfix's analysis recursed too deeply on this file (a bug: please report it); "
            "file left as it was"
        )
        return
    except Exception as exc:  # a bug in a rule must not stop the run or lose other files
        result.internal_error = (
            f"asyncfix failed on this file ({type(exc).__name__}: {exc}); a bug, please report "
            "it; file left as it was"
        )
        return
    if analysis.unchecked:
        version = ".".join(map(str, sys.version_info[:2]))
        result.partial = (
            f"Python {version}, which runs asyncfix, cannot parse this file (syntax newer than "
            f"it, such as PEP 701 f-strings), so {', '.join(analysis.unchecked)} did not check "
            "it; run asyncfix on a newer Python to check it fully"
        )
    result.findings = [to_finding(hit, analysis) for hit in analysis.hits]
    result.notes = list(analysis.warnings)
    result.unused_suppressions = list(analysis.unused)
    if result.findings:
        result.original = text
    if any(hit.fix is not None for hit in analysis.hits):
        why = _too_large_to_fix(text) if len(text) > SIZE_CHECKED else None
        if why is not None:
            _without_fixes(why, "the file is too large to fix", result)
            return
        why = _unfaithful(analysis)
        if why is not None:
            _without_fixes(why, "LibCST cannot reproduce the file", result)
            return
    if task.preview:
        _previews(text, analysis, result)
    fixable = [hit for hit in analysis.hits if _fixable(hit, task.unsafe)]
    if not task.fix or not fixable:
        result.remaining = [f for f in result.findings if not f.fixable(task.unsafe)]
        return
    try:
        _fix_to_fixpoint(task, text, analysis, result, rules, project)
    except Exception as exc:  # a fix crashed: never let it take the file (or the run) down
        result.internal_error = f"fix failed: {type(exc).__name__}: {exc}"
        result.fixed = None
        result.remaining = list(result.findings)


#: the largest file fixes are made in: LibCST needs about 0.15 s and 5 MB a thousand nodes
#: to fix one (a generated 20 MB module took 10 GB before it was stopped; a 1 MB list
#: literal, 42 s and 2 GB); the analysis has no such limit. The largest file of the
#: benchmark corpus has 50,000 nodes
MAX_FIX_NODES = 200_000
#: a file this long has its nodes counted before it is fixed (a shorter one cannot have that
#: many)
SIZE_CHECKED = 400_000
MAX_FIX_CHARACTERS = 5_000_000


def _too_large_to_fix(text: str) -> str | None:
    """Why the file is too large to fix, or None."""
    size = len(text.encode("utf-8", "surrogatepass")) / 1_000_000
    if len(text) > MAX_FIX_CHARACTERS:
        return f"the file is too large to fix ({size:.1f} MB; fixes are made up to 5 MB)"
    try:
        nodes = sum(1 for _ in ast.walk(ast.parse(text)))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if nodes > MAX_FIX_NODES:
        return (
            f"the file is too large to fix ({nodes:,} syntax nodes in {size:.1f} MB; fixes are "
            f"made up to {MAX_FIX_NODES:,})"
        )
    return None


def code_of(module: cst.Module, text: str) -> str:
    """The text of ``module``, made from ``text``: LibCST drops the bare CR that ends a
    file (the file's last line break, in a file whose lines end so); it is kept."""
    code = module.code
    if text.endswith("\r") and not code.endswith(("\r", "\n")):
        code += "\r"
    return code


def _unfaithful(analysis: Analysis) -> str | None:
    """Why LibCST, which makes the fixes, cannot be trusted with this file, or None. Its tree
    must give back the text byte for byte: a file it reproduces differently (LibCST drops a
    line that holds nothing but a backslash continuation) would have bytes far from any fix
    changed, and the change taken back only by the next run."""
    if analysis.module is None:
        try:
            analysis.module = cst.parse_module(analysis.text)
        except cst.ParserSyntaxError as exc:
            return f"LibCST, which makes the fixes, cannot parse this file (line {exc.raw_line})"
        except RecursionError:
            return "LibCST, which makes the fixes, cannot parse this file (too deeply nested)"
    code = code_of(analysis.module, analysis.text)
    if code == analysis.text:
        return None
    pairs = itertools.zip_longest(
        python_lines(analysis.text, keepends=True), python_lines(code, keepends=True)
    )
    number = next(n for n, (given, made) in enumerate(pairs, 1) if given != made)
    return f"LibCST, which makes the fixes, does not reproduce this file exactly (line {number})"


def _without_fixes(why: str, short: str, result: FileResult) -> None:
    """Its findings without their fixes, and a warning saying why (``short`` in each
    finding's message)."""
    why += ": its findings are reported without fixes"
    result.partial = f"{result.partial}; {why}" if result.partial else why
    for finding in result.findings:
        if finding.fix_safety is not Safety.NONE:
            finding.fix_safety = Safety.NONE
            finding.fix_changes = []
            finding.fix_id = ""
            finding.message += f" (no fix: {short})"
    result.remaining = list(result.findings)


def _previews(text: str, analysis: Analysis, result: FileResult) -> None:
    """Each finding's own fix as changed lines (for the report) and as edits of the text
    (SARIF): the unsafe ones a run does not apply too (a suggestion shows what it would do).
    A fix that cannot be applied alone gets neither. The fixes are built on the LibCST tree
    once for the file (finding each one's nodes means writing the module out), then applied
    one at a time."""
    from asyncfix.engine.apply import _preview, apply_fixes, build_pending, edits_between

    with_fix = [hit for hit in analysis.hits if hit.fix is not None]
    with contextlib.suppress(Exception):  # a fix that cannot be built: each alone below
        build_pending(analysis, with_fix)
    for hit, finding in zip(analysis.hits, result.findings, strict=True):
        if hit.fix is None:
            continue
        try:
            module, _ = apply_fixes(analysis, [hit])
        except Exception:  # shown without its lines; the fixpoint reports what failed
            continue
        code = code_of(module, text)
        finding.fix_preview = _preview(text, code, finding.span)
        finding.fix_edits = edits_between(text, code)


def shifted(observed: tuple[Observed, ...], old: str, new: str) -> tuple[Observed, ...]:
    """The observations of ``old``'s lines at the same lines of ``new`` (a fix that adds an
    import moves what follows); one on a line the fixes changed is dropped."""
    if not observed:
        return ()
    moved: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(a=python_lines(old), b=python_lines(new), autojunk=False)
    for tag, i1, i2, j1, _ in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(i2 - i1):
                moved[i1 + offset + 1] = j1 + offset + 1
    return tuple(
        dataclasses.replace(seen, line=moved[seen.line]) for seen in observed if seen.line in moved
    )


def _syntax_error(text: str, exc: cst.ParserSyntaxError) -> str:
    """Python's own message where it has one (its positions are the ones people know)."""
    try:
        ast.parse(text)
    except SyntaxError as error:
        if error.lineno is None:  # a NUL byte: Python does not say where
            return null_byte(text) or f"syntax error: {error.msg}"
        return f"syntax error at line {error.lineno}, column {error.offset}: {error.msg}"
    except (ValueError, RecursionError, MemoryError):
        pass
    first = exc.message.splitlines()[0] if exc.message else "cannot parse"
    return f"LibCST cannot parse this file (line {exc.raw_line}): {first}"


#: the project index of this run, set in each worker process (see ``_map``)
_INDEX: ProjectIndex | None = None


def _set_index(index: ProjectIndex | None) -> None:
    global _INDEX
    _INDEX = index


def stop_pool(pool: Executor) -> None:
    """An interrupted run's pool: nothing more starts, the workers end now (they write
    nothing, so what they held is simply not done), and their processes are reaped."""
    processes = dict(getattr(pool, "_processes", None) or {})
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes.values():
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes.values():
        with contextlib.suppress(Exception):
            process.join(5)


def _start_worker(index: ProjectIndex | None = None) -> None:
    """A pool worker's set-up: the run's index, and the collector tuned for parsing. A
    worker ignores SIGINT: Ctrl-C reaches the whole process group, and the main process
    alone decides what an interrupt means (no traceback from every worker); SIGTERM ends a
    worker at once (what it held was not written: writes are the main process's)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the main process's handler
    parent = os.getppid()
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()
    _set_index(index)
    _tune_gc()


#: how often a pool worker looks whether the process that started it is still there
ORPHAN_CHECK = 0.5


def _end_with(parent: int) -> None:
    """End this worker when the process that started it is gone: a main process killed
    (SIGKILL, the OOM killer) cannot stop its pool, whose workers would wait for work
    forever (holding the caller's pipes open). A worker writes nothing, so ending is safe."""
    while True:
        time.sleep(ORPHAN_CHECK)
        if os.getppid() != parent:
            os._exit(1)


def _tune_gc() -> tuple[int, int, int]:
    """Collect less often while parsing, and never scan again what exists now (the index,
    the rules); returns the thresholds to restore (``_restore_gc``)."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *previous[1:])
    return previous


def _restore_gc(previous: tuple[int, int, int]) -> None:
    gc.set_threshold(*previous)
    gc.unfreeze()


def _project_for(path: str, rules: Sequence[type[Rule]]) -> Project | None:
    if _INDEX is None or not any(rule.needs_index for rule in rules):
        return None
    module = _INDEX.module_of(path)
    return Project(_INDEX, module) if module is not None else None


def _fixable(hit: Hit, unsafe: bool) -> bool:
    return hit.fix is not None and (
        hit.fix.safety is Safety.SAFE or (unsafe and hit.fix.safety is Safety.UNSAFE)
    )


@dataclass
class _Attempt:
    """One run of the fix-verify loop with some fixes left out."""

    validation: Validation
    #: the verified text, or None when it did not verify
    text: str | None
    #: the analysis of the last round's output
    current: Analysis | None
    #: the fixes applied over all rounds
    applied: list[FixKey]
    #: why it did not verify ("" when it did)
    error: str = ""


def _attempt(
    task: Task,
    text: str,
    analysis: Analysis,
    rules: Sequence[type[Rule]],
    project: Project | None,
    excluded: set[FixKey],
) -> _Attempt:
    """Apply the fixable findings (but ``excluded``) to a fixpoint, then verify: the output
    re-parses and re-checks with nothing left to fix, and compiles."""
    from asyncfix.engine.apply import apply_fixes  # LibCST: only to fix

    validation = Validation()
    applied: list[FixKey] = []
    applied_codes: set[str] = set()
    current = analysis
    new_text = text

    def fixable_in(found: Analysis) -> list[Hit]:
        return [h for h in found.hits if _fixable(h, task.unsafe) and fix_id(h) not in excluded]

    def failed(error: str) -> _Attempt:
        return _Attempt(validation, None, None, applied, error)

    fixable = fixable_in(current)
    while fixable and validation.rounds < MAX_ROUNDS:
        try:
            module, chosen = apply_fixes(current, fixable)
        except RecursionError:
            return failed("the file nests too deeply to rewrite")
        except Exception as exc:  # a fix that cannot be applied
            applied.extend(fix_id(hit) for hit in fixable)
            return failed(f"applying the fixes failed ({type(exc).__name__}: {exc}); a bug")
        applied.extend(fix_id(hit) for hit in chosen)
        applied_codes.update(hit.rule.code for hit in chosen)
        new_text = code_of(module, current.text)
        validation.rounds += 1
        try:
            observed = shifted(task.observed, text, new_text)
            current = analyse(
                new_text,
                rules,
                task.target,
                project,
                task.offload,
                task.test_code,
                observed,
                declared=task.coroutine_functions,
            )
        except cst.ParserSyntaxError as exc:
            validation.reparse = False
            return failed(f"fixed code does not re-parse: {exc.message}")
        except NotPython as exc:
            validation.reparse = False
            return failed(f"fixed code does not compile: {exc}")
        except (TooDeep, RecursionError):
            return failed("fixed code could not be re-checked (nested too deeply)")
        except Exception as exc:  # a bug in a rule
            return failed(f"re-checking the fixed code failed ({type(exc).__name__}: {exc}); a bug")
        fixable = fixable_in(current)
    validation.reparse = True
    validation.recheck = {
        code: sum(1 for hit in fixable if hit.rule.code == code) for code in sorted(applied_codes)
    }
    validation.second_run_clean = not fixable
    if fixable:
        still = ", ".join(sorted({hit.rule.code for hit in fixable}))
        return failed(
            f"fixes did not reach a fixpoint in {MAX_ROUNDS} rounds ({still} still fixable)"
        )
    ok, why = _compiles(new_text, task.path)
    if ok:
        validation.compile = True
    else:
        original_ok, _ = _compiles(text, task.path)
        if original_ok:
            validation.compile = False
            return failed(f"fixed code does not compile: {why}")
        validation.compile = None
        validation.compile_note = (
            f"not run: the file uses syntax Python {sys.version_info[0]}.{sys.version_info[1]} "
            "cannot compile"
        )
    return _Attempt(validation, new_text, current, applied)


def _fix_to_fixpoint(
    task: Task,
    text: str,
    analysis: Analysis,
    result: FileResult,
    rules: Sequence[type[Rule]],
    project: Project | None,
) -> None:
    """Fix and verify; when the output does not verify, find the fixes that break it, leave
    them out (their findings stay, unfixed, with the reason) and apply the others."""
    excluded: set[FixKey] = set(task.excluded)
    attempt = _attempt(task, text, analysis, rules, project, excluded)
    first_error = attempt.error
    budget = 2 * len(set(attempt.applied)) + 2
    while attempt.text is None and budget > 0:
        suspects = [k for k in dict.fromkeys(attempt.applied) if k not in excluded]
        culprit = None
        for key in suspects:  # one fix that breaks the file on its own account
            budget -= 1
            if _attempt(task, text, analysis, rules, project, excluded | {key}).text is not None:
                culprit = key
                break
            if budget <= 0:
                break
        if culprit is not None:
            excluded.add(culprit)
        else:  # several together: keep each one that still verifies with those kept so far
            kept: set[FixKey] = set()
            for key in suspects:
                budget -= 1
                others = {k for k in suspects if k not in kept and k != key}
                if _attempt(task, text, analysis, rules, project, excluded | others).text:
                    kept.add(key)
            excluded.update(k for k in suspects if k not in kept)
        attempt = _attempt(task, text, analysis, rules, project, excluded)
    result.validation = attempt.validation
    if attempt.text is None or attempt.current is None:
        result.internal_error = f"{first_error}; please report it; file left as it was"
        return
    result.fixed = attempt.text
    for finding in result.findings:
        finding.fixed = finding.fixable(task.unsafe) and finding.fix_id not in excluded
        if (
            finding.fixable(task.unsafe)
            and not finding.fixed
            and finding.fix_id not in task.excluded
        ):
            result.dropped.append(
                f"the {finding.code} fix at line {finding.span.line} was left out: with it "
                f"the file did not verify ({first_error}); a bug, please report it"
            )
    result.remaining = [to_finding(hit, attempt.current) for hit in attempt.current.hits]
