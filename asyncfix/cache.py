"""The results cache: a file whose analysis cannot have changed is not analysed again.

An entry holds one file's result, valid while four things stay the same:
- the file's content (its SHA-256);
- asyncfix itself: its version and a digest of its code and data files;
- the effective settings for the file (codes, unsafe fixes, target, offloading helpers, ...);
- the facts of every project module the analysis used from the project index, and of
  every module the file imports. Editing ``client.py`` so that a function becomes a
  coroutine changes its facts and re-checks the files that import it; editing a comment
  changes no fact and re-checks nothing else;
- for each call a pre-filter ruled out by name alone (no project coroutine is called
  ``get``), that no project function of that kind has the name yet: adding
  ``async def get`` anywhere re-checks the files that call a ``get``, and nothing else.

All entries live in one JSON file in the cache directory (``.asyncfix_cache``, which tells
git to ignore it), named after the format, so that another asyncfix version never reads it.
JSON, never ``pickle`` or ``marshal``: the cache sits in the repository's tree, and asyncfix
runs on repositories it does not own (a bot on pull requests); reading a cache someone
crafted must never run code. It is read once and written once per run, through a temporary
file and an atomic rename: two runs at once each leave a whole cache, the last one wins, and
nothing is ever half written. A cache that cannot be read or does not have the expected
shape -- the file, an entry, or a stored result -- is discarded, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from asyncfix import __version__
from asyncfix.model import FileResult


def _code_digest() -> str:
    """Changes whenever asyncfix's code or data does (a development build included)."""
    package = Path(__file__).parent
    digest = hashlib.sha256(__version__.encode())
    for path in sorted([*package.rglob("*.py"), *package.rglob("*.toml")]):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


FORMAT = f"results-{__version__}-{_code_digest()}"


#: (content digest, settings key, what the result depends on (module names and
#: ``kind:name`` keys), a digest of what those were, the result as plain data
#: (``FileResult.to_cache``) -- None for a file with nothing to report, the commonest by far)
Entry = tuple[str, str, list[str], str, dict[str, Any] | None]


#: what the results cache compares for each of a list of dependencies
#: (``ProjectIndex.dependency_digests``): the digest of a module's facts ("" when the module
#: is not there), or for ``kind:name`` whether the project has a function of that kind so
#: named
Digests = Callable[[list[str]], list[str]]


def _is_entry(entry: Any) -> bool:
    return (
        isinstance(entry, list)
        and len(entry) == 5
        and isinstance(entry[0], str)
        and isinstance(entry[1], str)
        and isinstance(entry[2], list)  # of strings: checked when used (``get``)
        and isinstance(entry[3], str)
        and (entry[4] is None or isinstance(entry[4], dict))
    )


def _combined(modules: list[str], digest_of: Digests) -> str:
    """One digest of what ``modules`` (the dependencies) are now."""
    if not modules:
        return ""
    return hashlib.sha256("\0".join(digest_of(modules)).encode()).hexdigest()[:16]


class ResultCache:
    """The cached results of one cache directory."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / f"{FORMAT}.json"
        self.directory = directory
        self._loaded_stamp: tuple[int, int] | None = None
        self.entries = self._load()
        self._new: dict[str, Entry] = {}

    def _stamp(self) -> tuple[int, int] | None:
        try:
            status = self.path.stat()
        except OSError:
            return None
        return (status.st_size, status.st_mtime_ns)

    def _load(self) -> dict[str, Entry]:
        self._loaded_stamp = self._stamp()
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError, RecursionError):  # missing, corrupt, truncated
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return {}
        entries = data.get("entries")
        if not isinstance(entries, dict) or not all(_is_entry(e) for e in entries.values()):
            return {}
        return {path: tuple(entry) for path, entry in entries.items()}

    def dependency_keys(self) -> set[str]:
        """Every dependency some cached result has (checked as a list of strings in ``get``)."""
        keys: set[object] = set()
        for entry in self.entries.values():
            try:
                keys.update(entry[2])
            except TypeError:  # an edited cache: `get` drops it
                continue
        if all(isinstance(key, str) for key in keys):
            return keys  # type: ignore[return-value]
        return {key for key in keys if isinstance(key, str)}

    def get(self, path: str, content: str, settings: str, digests: Digests) -> FileResult | None:
        """The cached result for this content and settings, if nothing it used has changed
        (a fresh object the caller may change). A stored result that is not a result (the
        file was edited) is a miss, and the whole cache is dropped when it is saved."""
        entry = self.entries.get(path)
        if entry is None or entry[0] != content or entry[1] != settings:
            return None
        try:
            if _combined(entry[2], digests) != entry[3]:
                return None
        except (TypeError, AttributeError):  # a dependency that is no module name
            self.entries = {}
            return None
        stored = entry[4]
        if stored is None:
            return FileResult(path=path, display=path)
        try:
            return FileResult.from_cache(stored)
        except (KeyError, TypeError, ValueError, AttributeError):
            self.entries = {}
            return None

    def put(
        self,
        path: str,
        content: str,
        settings: str,
        depends: list[str],
        digests: Digests,
        result: FileResult,
    ) -> None:
        stored: dict[str, Any] | None = None
        if result.findings or result.error or result.partial or result.fixed is not None:
            kept = replace(result, written=False, write_skipped=None, cached=False, depends=[])
            stored = kept.to_cache()
        modules = list(depends)
        self._new[path] = (content, settings, modules, _combined(modules, digests), stored)

    def save(self) -> None:
        """Best effort: merged with what another run saved meanwhile, written atomically;
        a cache that cannot be written is simply not written."""
        if not self._new:
            return
        # another run may have saved since we read the cache: keep its entries too
        current = self.entries if self._stamp() == self._loaded_stamp else self._load()
        entries = {**current, **self._new}
        try:
            prepare(self.directory, "results-*", {self.path.name})
            data = json.dumps({"format": FORMAT, "entries": entries}, separators=(",", ":"))
            write_atomically(self.path, data.encode())
        except (OSError, ValueError, TypeError):
            return


def prepare(directory: Path, pattern: str, current: set[str]) -> None:
    """Make the cache directory (with a ``.gitignore`` so that git ignores it), and remove the
    files matching ``pattern`` that another asyncfix version wrote: they are never read."""
    directory.mkdir(exist_ok=True)
    for stale in directory.glob(pattern):
        if stale.name not in current:
            stale.unlink(missing_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# created by asyncfix\n*\n", encoding="utf-8")


def write_atomically(target: Path, data: bytes) -> None:
    """Through a temporary file in the same directory and a rename: a concurrent reader sees
    the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def settings_key(parts: tuple[Any, ...]) -> str:
    """A digest of the settings a file was analysed with."""
    return hashlib.sha256(repr((FORMAT, parts)).encode()).hexdigest()[:16]
