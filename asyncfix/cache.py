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

The last two are checked cheaply when they can be: each entry also records the *state* of
the project index it was last checked against (``ProjectIndex.state``: a digest of every
module's facts and of the project-wide name sets). While that state is the run's, nothing
any entry depends on can have changed, and an entry needs its content and settings alone.
Only when the state differs (some module's facts changed) are its dependencies compared,
one by one; those lists live in a file of their own that a run reads only then.

Two JSON files in the cache directory (``.asyncfix_cache``, which tells git to ignore it),
named after the format, so that another asyncfix version never reads them: the entries
(``results-*``) and what each entry depends on (``depends-*``). JSON, never ``pickle`` or
``marshal``: the cache sits in the repository's tree, and asyncfix runs on repositories it
does not own (a bot on pull requests); reading a cache someone crafted must never run code.
Each is read at most once and written at most once per run, through a temporary file and
an atomic rename: two runs at once each leave a whole cache, the last one wins, and nothing
is ever half written. A cache that cannot be read or does not have the expected shape --
the file, an entry, or a stored result -- is discarded, never trusted; a dependency list
that does not belong to its entry (another run wrote one file and not yet the other) is a
miss.
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
DEPENDS_FORMAT = FORMAT.replace("results-", "depends-", 1)


#: (content digest, settings key, a digest of what the result depends on (module names and
#: ``kind:name`` keys, in the depends file), the state of the project index the entry was
#: last checked against, the result as plain data (``FileResult.to_cache``) -- None for a
#: file with nothing to report, the commonest by far)
Entry = tuple[str, str, str, str, dict[str, Any] | None]

#: (content digest, settings key, what the result depends on): the entry's, in the depends file
Depends = tuple[str, str, list[str]]


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
        and isinstance(entry[2], str)
        and isinstance(entry[3], str)
        and (entry[4] is None or isinstance(entry[4], dict))
    )


def _combined(modules: list[str], digest_of: Digests) -> str:
    """One digest of what ``modules`` (the dependencies) are now."""
    if not modules:
        return ""
    return hashlib.sha256("\0".join(digest_of(modules)).encode()).hexdigest()[:16]


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_size, status.st_mtime_ns)


def _read_json(path: Path, form: str) -> dict[str, Any] | None:
    """The object in ``path`` when it is one of format ``form``; None when missing or not."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):  # missing, corrupt, truncated
        return None
    if not isinstance(data, dict) or data.get("format") != form:
        return None
    return data


class ResultCache:
    """The cached results of one cache directory, for one state of the project index.

    ``state``: ``ProjectIndex.state`` ("" without an index); ``digests``: what each
    dependency is now; ``prime``: called once with every dependency the depends file names,
    before the first is compared (``ProjectIndex.prime_dependencies``)."""

    def __init__(
        self,
        directory: Path,
        state: str = "",
        digests: Digests | None = None,
        prime: Callable[[set[str]], None] | None = None,
    ) -> None:
        self.path = directory / f"{FORMAT}.json"
        self.depends_path = directory / f"{DEPENDS_FORMAT}.json"
        self.directory = directory
        self.state = state
        self._digests = digests or _nothing
        self._prime = prime
        self._loaded_stamp: tuple[int, int] | None = None
        self.entries = self._load()
        self._depends: dict[str, Depends] | None = None
        self._depends_stamp: tuple[int, int] | None = None
        #: entries made or checked again in this run (saved)
        self._new: dict[str, Entry] = {}
        #: the dependencies of the entries made in this run
        self._new_depends: dict[str, Depends] = {}

    def _load(self) -> dict[str, Entry]:
        self._loaded_stamp = _stamp(self.path)
        data = _read_json(self.path, FORMAT)
        entries = data.get("entries") if data is not None else None
        if not isinstance(entries, dict) or not all(_is_entry(e) for e in entries.values()):
            return {}
        return {path: tuple(entry) for path, entry in entries.items()}

    def _load_depends(self) -> dict[str, Depends]:
        """Path -> (content, settings, dependencies), from the depends file; a list that is
        not one is left out (its entry is then a miss)."""
        self._depends_stamp = _stamp(self.depends_path)
        data = _read_json(self.depends_path, DEPENDS_FORMAT)
        if data is None:
            return {}
        keys, stored = data.get("keys"), data.get("entries")
        if not (
            isinstance(keys, list)
            and all(isinstance(key, str) for key in keys)
            and isinstance(stored, dict)
        ):
            return {}
        found: dict[str, Depends] = {}
        for path, item in stored.items():
            try:
                content, settings, positions = item
                if not (isinstance(content, str) and isinstance(settings, str)):
                    continue
                if not all(type(p) is int and p >= 0 for p in positions):
                    continue
                found[path] = (content, settings, [keys[p] for p in positions])
            except (TypeError, ValueError, IndexError):
                continue
        return found

    def _dependencies(self, path: str, content: str, settings: str) -> list[str] | None:
        if self._depends is None:
            self._depends = self._load_depends()
            if self._prime is not None:
                self._prime({key for _, _, keys in self._depends.values() for key in keys})
        found = self._depends.get(path)
        if found is None or found[0] != content or found[1] != settings:
            return None
        return found[2]

    def get(self, path: str, content: str, settings: str) -> FileResult | None:
        """The cached result for this content and settings, if nothing it used has changed
        (a fresh object the caller may change). A stored result that is not a result (the
        file was edited) is a miss, and the whole cache is dropped when it is saved."""
        entry = self.entries.get(path)
        if entry is None or entry[0] != content or entry[1] != settings:
            return None
        if entry[2] and entry[3] != self.state:
            # the project's facts changed since the entry was checked: its dependencies
            depends = self._dependencies(path, content, settings)
            if depends is None or _combined(depends, self._digests) != entry[2]:
                return None
            self._new[path] = (*entry[:3], self.state, entry[4])
        stored = entry[4]
        if stored is None:
            return FileResult(path=path, display=path)
        try:
            return FileResult.from_cache(stored)
        except (KeyError, TypeError, ValueError, AttributeError):
            self.entries = {}
            self._new.clear()
            return None

    def put(
        self, path: str, content: str, settings: str, depends: list[str], result: FileResult
    ) -> None:
        stored: dict[str, Any] | None = None
        if result.findings or result.error or result.partial or result.fixed is not None:
            kept = replace(result, written=False, write_skipped=None, cached=False, depends=[])
            stored = kept.to_cache()
        modules = list(depends)
        combined = _combined(modules, self._digests)
        self._new[path] = (content, settings, combined, self.state, stored)
        self._new_depends[path] = (content, settings, modules)

    def save(self) -> None:
        """Best effort: merged with what another run saved meanwhile, written atomically;
        a cache that cannot be written is simply not written. The depends file first (an
        entry whose list is not there yet is a miss, never wrong)."""
        if not self._new:
            return
        try:
            prepare(
                self.directory, ("results-*", "depends-*"), {self.path.name, self.depends_path.name}
            )
            if self._new_depends:
                self._save_depends()
            # another run may have saved since we read the cache: keep its entries too
            current = self.entries if _stamp(self.path) == self._loaded_stamp else self._load()
            entries = {**current, **self._new}
            data = json.dumps({"format": FORMAT, "entries": entries}, separators=(",", ":"))
            write_atomically(self.path, data.encode())
        except (OSError, ValueError, TypeError):
            return

    def _save_depends(self) -> None:
        if self._depends is None or _stamp(self.depends_path) != self._depends_stamp:
            self._depends = self._load_depends()
        merged = {**self._depends, **self._new_depends}
        keys: dict[str, int] = {}
        stored = {
            path: [content, settings, [keys.setdefault(key, len(keys)) for key in modules]]
            for path, (content, settings, modules) in merged.items()
        }
        data = {"format": DEPENDS_FORMAT, "keys": list(keys), "entries": stored}
        write_atomically(self.depends_path, json.dumps(data, separators=(",", ":")).encode())


def _nothing(keys: list[str]) -> list[str]:
    return [""] * len(keys)


def prepare(directory: Path, patterns: tuple[str, ...] | str, current: set[str]) -> None:
    """Make the cache directory (with a ``.gitignore`` so that git ignores it), and remove the
    files matching ``patterns`` that another asyncfix version wrote: they are never read."""
    directory.mkdir(exist_ok=True)
    for pattern in (patterns,) if isinstance(patterns, str) else patterns:
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
