"""A run: discover files, fan them out (the pool, the results cache), validate, write."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asyncfix.cache import ResultCache, settings_key
from asyncfix.codemods import CODES, NEEDS_INDEX
from asyncfix.config import Config, Selection
from asyncfix.engine.project import build_index, cache_directory, project_root
from asyncfix.engine.task import Task

if TYPE_CHECKING:
    from asyncfix.engine.snapshot import Snapshot
from asyncfix.files import (
    SourceError,
    atomic_write,
    decode,
    discover,
    display_path,
    is_test_path,
    patch_path,
    relative,
    sweep_orphans,
)
from asyncfix.index import (
    ProjectIndex,
)
from asyncfix.model import FileResult, Observed, RunResult

# -- the run --------------------------------------------------------------------------------


def all_codes() -> list[str]:
    return list(CODES)


def plan(
    paths: Sequence[Path], config: Config, force_exclude: bool = False
) -> tuple[list[Path], list[str], list[str]]:
    """The files to check, the errors (paths that are not there) and the warnings (files
    named that are not Python, skipped)."""
    found = discover(
        paths,
        config.root,
        config.exclude_spec(),
        respect_gitignore=config.respect_gitignore,
        force_exclude=force_exclude,
    )
    return found.files, found.errors, found.skipped


def run(
    paths: Sequence[Path],
    config: Config,
    mode: str,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
    extend_select: Sequence[str] = (),
    unsafe_fixes: bool | None = None,
    fix_for_report: bool = False,
    previews: bool = False,
    force_exclude: bool = False,
    jobs: int | None = None,
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
    validate: str | None = None,
    validate_timeout: float = 600.0,
    cwd: Path | None = None,
    observed: dict[str, tuple[Observed, ...]] | None = None,
    validate_evidence: bool = False,
) -> RunResult:
    """Analyse ``paths``; in diff/write mode compute verified fixes; in write mode write them
    (with ``validate``: judged by that command, see ``validate.py``).

    Files whose result is in the results cache (``cache.py``) are not analysed again, and
    a check or diff of the same files as the last one, none of them changed, takes its
    results as they are (``engine/snapshot.py``); ``progress(done, total)`` is called as
    files finish."""
    _select(config, select, ignore, extend_select)
    unsafe = config.unsafe_fixes if unsafe_fixes is None else unsafe_fixes
    if observed:  # the results depend on the evidence: neither cached nor taken from a cache
        use_cache = False
    files, errors, skipped = plan(paths, config, force_exclude)
    cwd = cwd or Path.cwd()  # paths are shown, and --validate runs, relative to it
    codes = all_codes()
    root = project_root(files, config) or config.root
    tasks = []
    fix = mode in ("diff", "write") or fix_for_report
    offload = tuple(config.offload_functions)
    declared = tuple(config.coroutine_functions)
    # the project root, the configuration's root and the working directory are most often
    # one directory: a file's path relative to them is worked out once
    same_root, same_cwd = root == config.root, cwd == config.root
    for file in files:
        found = relative(file, config.root)
        rel = found or file.as_posix()
        tasks.append(
            Task(
                path=str(file),
                display=rel if same_cwd and found else display_path(file, cwd),
                codes=config.enabled_codes(codes, rel),
                unsafe=unsafe,
                fix=fix,
                target=config.target,
                preview=fix_for_report or previews,
                offload=offload,
                coroutine_functions=declared,
                test_code=is_test_path(rel if same_root else relative(file, root) or rel),
                observed=observed.get(str(file.resolve()), ()) if observed else (),
            )
        )
    if use_cache and tasks:
        unusable = _unwritable(cache_directory(config, root))
        if unusable is not None:
            skipped.append(unusable)
    index = None
    needs_index = any(not NEEDS_INDEX.isdisjoint(task.codes) for task in tasks)
    # `asyncfix .` at the project root: the files just found are the project's files
    whole = len(paths) == 1 and not force_exclude and paths[0].absolute() == root == config.root
    snapshot = None
    if use_cache and mode != "write" and tasks:
        settings: tuple[Any, ...] = (cwd, root, config.root, unsafe, fix, fix_for_report)
        settings += (previews,)
        settings += (config.target, offload, declared, config.selections, config.only)
        settings += (config.per_file_ignores, needs_index, whole)
        snapshot = _snapshot(tasks, files, config, settings, needs_index and not whole)
    taken = _from_snapshot(snapshot, tasks) if snapshot is not None else None
    if taken is not None:
        results = taken
        if progress is not None:
            progress(len(results), len(results))
    else:
        if needs_index:
            index = build_index(files, config, jobs, whole_project=whole)
        results = _analyse_all(tasks, files, config, jobs, index, use_cache, progress)
        if snapshot is not None:
            snapshot.save(results)
    for result in results:
        if result.changed:  # only a diff names it
            result.patch_path = patch_path(Path(result.path), cwd, root)
    run_result = RunResult(
        files=results, mode=mode, unsafe_fixes=unsafe, errors=errors, warnings=skipped
    )
    if mode == "write" and validate:
        _validated_write(
            run_result, tasks, index, validate, validate_timeout, cwd, validate_evidence
        )
    elif mode == "write":
        for result in results:
            if result.changed and not result.internal_error:
                _write(result)
    return run_result


def _snapshot(
    tasks: list[Task],
    files: list[Path],
    config: Config,
    settings: tuple[Any, ...],
    partial_project: bool,
) -> Snapshot | None:
    """The snapshot a run keeps (``engine.snapshot``), for files that are all its results
    depend on: a whole project, or files outside any project (the index is theirs alone),
    or files checked without the index; None for some files of a project (the index reads
    the others too)."""
    from asyncfix.engine.snapshot import Snapshot, snapshot_key

    root = project_root(files, config)
    if partial_project and root is not None:
        return None
    directory = cache_directory(config, root)
    return Snapshot(directory, snapshot_key(*map(repr, settings)), [t.path for t in tasks])


def _from_snapshot(snapshot: Snapshot, tasks: list[Task]) -> list[FileResult] | None:
    """Every task's result from the snapshot, or None when it does not hold."""
    from asyncfix.engine.snapshot import restored

    stored = snapshot.results()
    if stored is None:
        return None
    results = []
    for task in tasks:
        result = restored(stored.get(task.path), task.path, task.display)
        if result is None:
            return None
        results.append(result)
    return results


def _validated_write(
    run: RunResult,
    tasks: list[Task],
    index: ProjectIndex | None,
    command: str,
    timeout: float,
    cwd: Path,
    evidence: bool = False,
) -> None:
    """Write the fixes the project's tests accept (``validate.Validator``); ``evidence``:
    each run of the tests under the runtime-evidence plugin, its counts compared."""
    import tempfile

    from asyncfix.engine.process import _set_index, process_text
    from asyncfix.validate import Validator

    changed = [r for r in run.files if r.changed and not r.internal_error]
    task_of = {task.path: task for task in tasks}

    def refix(result: FileResult, excluded: frozenset[str]) -> FileResult:
        assert result.original is not None
        task = dataclasses.replace(task_of[result.path], excluded=excluded)
        fresh = FileResult(path=result.path, display=result.display)
        fresh.encoding, fresh.bom, fresh.patch_path = result.encoding, result.bom, result.patch_path
        process_text(result.original, task, fresh)
        return fresh

    folder = tempfile.TemporaryDirectory(prefix="asyncfix-evidence-") if evidence else None
    where = Path(folder.name) / "evidence.json" if folder is not None else None
    validator = Validator(command, cwd, changed, refix, timeout, where)
    _set_index(index)
    try:
        run.validation = validator.run()
    except OSError as exc:  # a file could not be written back: all were put back as they were
        run.errors.append(f"--validate: {exc}; the files were left as they were")
        run.validation = validator.report
        return
    finally:
        _set_index(None)
        if folder is not None:
            folder.cleanup()
    if run.validation.with_fixes is None:  # nothing was written
        run.errors.append(f"--validate: {run.validation.note}")
        return
    final = validator.final_results()
    for position, result in enumerate(run.files):
        if result.path in final:
            done = final[result.path]
            done.written = done.changed and not done.internal_error
            done.content = result.content
            run.files[position] = done


def _analyse_all(
    tasks: list[Task],
    files: list[Path],
    config: Config,
    jobs: int | None,
    index: ProjectIndex | None,
    use_cache: bool,
    progress: Callable[[int, int], None] | None,
) -> list[FileResult]:
    """Every task's result, in task order: from the results cache where it is still valid,
    else analysed (in a process pool when there are enough)."""
    cache = None
    if use_cache and tasks:
        directory = cache_directory(config, project_root(files, config))
        if index is None:
            cache = ResultCache(directory)
        else:
            cache = ResultCache(
                directory,
                index.state(),
                index.dependency_digests,
                index.prime_dependencies,
                index.changed_since,
            )
    contents = index.contents if index is not None else {}
    results: list[FileResult | None] = [None] * len(tasks)
    # the module a file is (its package structure can change while its text does not)
    module_of = index.module_name_of if index is not None else _no_module
    keys = [_settings(task, module_of(task.path)) for task in tasks]
    misses: list[int] = []
    for position, task in enumerate(tasks):
        hit = None
        if cache is not None:
            content = contents.get(task.path) or _content_digest(task.path)
            if content is not None:
                hit = cache.get(_cache_path(task), content, keys[position])
        if hit is None:
            misses.append(position)
        else:
            hit.path, hit.display, hit.cached = task.path, task.display, True
            results[position] = hit
    done, total = len(tasks) - len(misses), len(tasks)
    if progress is not None:
        progress(done, total)
    for position, result in zip(misses, _map([tasks[i] for i in misses], jobs, index), strict=True):
        results[position] = result
        task = tasks[position]
        if cache is not None and result.content is not None and not result.internal_error:
            cache.put(_cache_path(task), result.content, keys[position], result.depends, result)
        done += 1
        if progress is not None:
            progress(done, total)
    if cache is not None:
        cache.save()
    return [result for result in results if result is not None]


_SETTINGS: dict[tuple[Any, ...], str] = {}


def _settings(task: Task, module: str) -> str:
    """The settings key of ``task``'s file: what it is checked with, and the module it is
    (digested once for each set of settings, then with each module's name)."""
    parts = (
        task.codes,
        task.unsafe,
        task.fix,
        task.target,
        task.preview,
        task.offload,
        task.coroutine_functions,
        task.test_code,
    )
    common = _SETTINGS.get(parts)
    if common is None:
        common = _SETTINGS[parts] = settings_key((sorted(task.codes), *parts[1:]))
    return hashlib.sha256(f"{common}\0{module}".encode()).hexdigest()[:16]


def _no_module(path: str) -> str:
    return ""


def _cache_path(task: Task) -> str:
    """The key of a file in the results cache: its absolute path as discovered (not
    normalised: ``a/link/../b`` is not ``a/b``)."""
    path = task.path
    return path if os.path.isabs(path) else os.path.join(os.getcwd(), path)


def _unwritable(directory: Path) -> str | None:
    """A note when the cache folder cannot be made or written (a read-only tree, a file in
    its place): the run goes on, its results are just not kept for the next one."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if os.access(directory, os.W_OK | os.X_OK):
            return None
        reason = "not writable"
    except OSError as exc:
        reason = exc.strerror or str(exc)
    return f"{directory}: the cache folder cannot be written ({reason}); results are not cached"


def _content_digest(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _map(
    tasks: list[Task], jobs: int | None, index: ProjectIndex | None = None
) -> Iterator[FileResult]:
    if not tasks:
        return
    # the analysis is loaded only when some file is analysed
    from asyncfix.engine import process as worker

    workers = jobs or os.cpu_count() or 1
    if workers <= 1 or len(tasks) < worker.POOL_THRESHOLD:
        worker._set_index(index)
        previous = worker._tune_gc()
        try:
            yield from map(worker.process_file, tasks)
        finally:
            worker._set_index(None)
            worker._restore_gc(previous)
        return
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(1, min(32, len(tasks) // (workers * 8)))
    pool = ProcessPoolExecutor(
        max_workers=workers, initializer=worker._start_worker, initargs=(index,)
    )
    try:
        yield from pool.map(worker.process_file, tasks, chunksize=chunk)
    except BaseException:
        # interrupted (or the reader stopped): the workers write nothing, so they can stop
        worker.stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def _write(result: FileResult) -> None:
    """Write a verified result; a file edited meanwhile is skipped with a warning."""
    assert result.fixed is not None and result.original is not None
    path = Path(result.path)
    try:
        source = decode(path.read_bytes())
    except OSError as exc:
        result.error = f"cannot re-read before writing: {exc.strerror or exc}"
        return
    except SourceError as exc:
        result.error = str(exc)
        return
    if source.text != result.original:
        result.write_skipped = "file changed on disk since it was read; not written"
        return
    for name in sweep_orphans(Path(os.path.realpath(path))):  # where atomic_write writes
        result.notes.append(f" removed {name}, left by an asyncfix run that was killed")
    reason = atomic_write(path, source.raw, source.encode(result.fixed))
    if reason is None:
        result.written = True
    elif reason.startswith("file changed"):
        result.write_skipped = reason
    else:
        result.error = reason


def needs_index(codes: frozenset[str]) -> bool:
    return not NEEDS_INDEX.isdisjoint(codes)


def _select(
    config: Config,
    select: Sequence[str] | None,
    ignore: Sequence[str] | None,
    extend_select: Sequence[str],
) -> None:
    """The command line's layer of rule selection, over the configuration's."""
    if select is not None or ignore or extend_select:
        config.cli_selection = Selection(
            None if select is None else tuple(select), tuple(ignore or ()), tuple(extend_select)
        )


def run_stdin(
    raw: bytes,
    filename: Path | None,
    config: Config,
    mode: str,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
    extend_select: Sequence[str] = (),
    unsafe_fixes: bool | None = None,
    previews: bool = False,
    jobs: int | None = None,
    cwd: Path | None = None,
) -> RunResult:
    """``asyncfix -``: the source on standard input, checked (and fixed, in diff and write
    mode: nothing is written, the caller prints the fixed text) as if it were ``filename``
    (``--stdin-filename``: its per-file ignores, whether it is test code, its project, whose
    other modules are read from disk). Never cached."""
    from asyncfix.engine.process import _set_index, keep_encodable, process_text

    _select(config, select, ignore, extend_select)
    unsafe = config.unsafe_fixes if unsafe_fixes is None else unsafe_fixes
    cwd = cwd or Path.cwd()
    path = (cwd / filename) if filename is not None else None
    display = display_path(path, cwd) if path is not None else "-"
    rel = (relative(path, config.root) or path.as_posix()) if path is not None else "-"
    root = project_root([path], config) if path is not None else None
    task = Task(
        path=str(path) if path is not None else "-",
        display=display,
        codes=config.enabled_codes(all_codes(), rel),
        unsafe=unsafe,
        fix=mode in ("diff", "write"),
        target=config.target,
        preview=previews,
        offload=tuple(config.offload_functions),
        coroutine_functions=tuple(config.coroutine_functions),
        test_code=is_test_path(relative(path, root) or rel) if path and root else False,
    )
    result = FileResult(path=task.path, display=display, patch_path=display)
    try:
        source = decode(raw)
    except SourceError as exc:
        result.error = str(exc)
        return RunResult(files=[result], mode=mode, unsafe_fixes=unsafe)
    result.content = hashlib.sha256(raw).hexdigest()
    result.encoding, result.bom = source.encoding, source.bom
    index = None
    if path is not None and root is not None and path.is_file() and needs_index(task.codes):
        index = build_index([path], config, jobs, whole_project=False)
    _set_index(index)
    try:
        process_text(source.text, task, result)
    finally:
        _set_index(None)
    keep_encodable(source, result)
    return RunResult(files=[result], mode=mode, unsafe_fixes=unsafe)
