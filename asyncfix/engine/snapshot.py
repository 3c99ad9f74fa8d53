"""The last run's results, taken as they are while nothing they came from changed.

A run that checks (or diffs) a whole project, or files that make a project of their own,
keeps its results with the size and modification time of every file it read
(``.asyncfix_cache/run-*.json``) and a key of everything else they came from: the asyncfix
build, the Python that runs it, the working directory, the project root, the settings. The
next run with the same key, the same files and not one of them changed (the same trust in
sizes and times as the project index's, as black's and ruff's) takes those results without
reading the project index or the results cache: the warm run CI and editors repeat. Any
difference and the run goes the usual way, and keeps its results for the next one.

Stamps are taken before anything is read: a file changed during the run has a stamp its
next run does not match. Runs that write, validate or met a file they could not read keep
nothing (a file's permissions change neither its size nor its time). JSON, read as data;
a file that is not what asyncfix writes is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from asyncfix.cache import FORMAT, prepare, write_atomically
from asyncfix.model import FileResult

SNAPSHOT_FORMAT = FORMAT.replace("results-", "run-", 1)


def snapshot_key(*settings: Any) -> str:
    """A digest of what a run's results come from besides its files (``settings``: the
    working directory, the roots, the effective settings), with the build and the Python."""
    parts = (SNAPSHOT_FORMAT, tuple(sys.version_info[:3]), settings)
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _stamps(paths: list[str]) -> list[int] | None:
    """Size and modification time of each file, in one flat list; None when one is gone."""
    found: list[int] = []
    for path in paths:
        try:
            status = os.stat(path)
        except OSError:
            return None
        found.append(status.st_size)
        found.append(status.st_mtime_ns)
    return found


class Snapshot:
    """The snapshot of ``directory`` for a run of ``paths`` with ``key``: the files are
    stamped at once."""

    def __init__(self, directory: Path, key: str, paths: list[str]) -> None:
        self.path = directory / f"{SNAPSHOT_FORMAT}.json"
        self.key = key
        self.paths = paths
        self.stamps = _stamps(paths)

    def results(self) -> dict[str, dict[str, Any]] | None:
        """The stored results (path -> plain data, for files with something to report), when
        the last run had this key, these files, and none of them changed since."""
        if self.stamps is None:
            return None
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError, RecursionError):
            return None
        if not (
            isinstance(data, dict)
            and data.get("format") == SNAPSHOT_FORMAT
            and data.get("key") == self.key
            and data.get("paths") == self.paths
            and data.get("stamps") == self.stamps
        ):
            return None
        results = data.get("results")
        if not isinstance(results, dict) or not all(
            isinstance(item, dict) for item in results.values()
        ):
            return None
        return results

    def save(self, results: list[FileResult]) -> None:
        """Best effort, written atomically; nothing when a file could not be read (or was
        not there when stamped)."""
        if self.stamps is None or any(r.error or r.internal_error for r in results):
            return
        stored = {
            result.path: replace(
                result, written=False, write_skipped=None, cached=False, depends=[]
            ).to_cache()
            for result in results
            if result.worth_keeping
        }
        data = {
            "format": SNAPSHOT_FORMAT,
            "key": self.key,
            "paths": self.paths,
            "stamps": self.stamps,
            "results": stored,
        }
        try:
            prepare(self.path.parent, "run-*", {self.path.name})
            write_atomically(self.path, json.dumps(data, separators=(",", ":")).encode())
        except (OSError, ValueError, TypeError):
            return


def restored(stored: dict[str, Any] | None, path: str, display: str) -> FileResult | None:
    """The result of ``path`` from a snapshot (None: not one asyncfix wrote)."""
    if stored is None:
        result = FileResult(path=path, display=display)
    else:
        try:
            result = FileResult.from_cache(stored)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
    result.path, result.display, result.cached = path, display, True
    return result
