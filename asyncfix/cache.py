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
one by one; those lists live in a file of their own that a run reads only then, each
under a digest of the list, and that is written only when a list changed (an edit that
leaves a file's imports and uses alone, a comment or a new function, does not).

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
from asyncfix.files import signals_held
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
#: ``kind:name`` keys) now, the state of the project index the entry was last checked
#: against, a digest of the list of those dependencies (which the depends file holds under
#: it), the result as plain data (``FileResult.to_cache``) -- None for a file with nothing
#: to report, the commonest by far)
Entry = tuple[str, str, str, str, str, dict[str, Any] | None]


#: what the results cache compares for each of a list of dependencies
#: (``ProjectIndex.dependency_digests``): the digest of a module's facts ("" when the module
#: is not there), or for ``kind:name`` whether the project has a function of that kind so
#: named
Digests = Callable[[list[str]], list[str]]


def _is_entry(entry: Any) -> bool:
    return (
        isinstance(entry, list)
        and len(entry) == 6
        and isinstance(entry[0], str)
        and isinstance(entry[1], str)
        and isinstance(entry[2], str)
        and isinstance(entry[3], str)
        and isinstance(entry[4], str)
        and (entry[5] is None or isinstance(entry[5], dict))
    )


def _digest(parts: list[str]) -> str:
    """One digest of a list of strings ("" for none)."""
    if not parts:
        return ""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


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
        changed: tuple[str, frozenset[str]] | None = None,
    ) -> None:
        self.path = directory / f"{FORMAT}.json"
        self.depends_path = directory / f"{DEPENDS_FORMAT}.json"
        self.directory = directory
        self.state = state
        self._digests = digests or _nothing
        self._prime = prime
        self._changed = changed
        self._loaded_stamp: tuple[int, int] | None = None
        self.entries = self._load()
        self._depends: _DependsFile | None = None
        #: entries made or checked again in this run (saved)
        self._new: dict[str, Entry] = {}
        #: the dependencies of the entries made in this run that the depends file lacks
        self._new_depends: dict[str, tuple[str, list[str]]] = {}
        #: the entries whose list the depends file did not hold
        self._unlisted: set[str] = set()

    def _load(self) -> dict[str, Entry]:
        self._loaded_stamp = _stamp(self.path)
        data = _read_json(self.path, FORMAT)
        entries = data.get("entries") if data is not None else None
        if not isinstance(entries, dict) or not all(_is_entry(e) for e in entries.values()):
            return {}
        return {path: tuple(entry) for path, entry in entries.items()}

    def get(self, path: str, content: str, settings: str) -> FileResult | None:
        """The cached result for this content and settings, if nothing it used has changed
        (a fresh object the caller may change). A stored result that is not a result (the
        file was edited) is a miss, and the whole cache is dropped when it is saved."""
        entry = self.entries.get(path)
        if entry is None or entry[0] != content or entry[1] != settings:
            return None
        if entry[4] and entry[3] != self.state:
            # the project's facts changed since the entry was checked: its dependencies
            if self._depends is None:
                self._depends = _DependsFile(self.depends_path)
            if self._changed is not None and entry[3] == self._changed[0]:
                # checked against the index the caches were last written with: only what
                # changed since can have changed for it
                clear = self._depends.clear_of(path, entry[4], self._changed[1])
                if clear is None:
                    self._unlisted.add(path)
                if not clear:
                    return None
            else:
                if self._prime is not None:
                    self._prime(set(self._depends.keys))
                    self._prime = None
                now = self._depends.combined(path, entry[4], self._digests)
                if now is None:
                    self._unlisted.add(path)
                if now != entry[2]:
                    return None
            self._new[path] = (*entry[:3], self.state, *entry[4:])
        stored = entry[5]
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
        if result.worth_keeping:
            kept = replace(result, written=False, write_skipped=None, cached=False, depends=[])
            stored = kept.to_cache()
        modules = list(depends)
        listed = _digest(modules)
        combined = _digest(self._digests(modules)) if modules else ""
        before = self.entries.get(path)
        if listed and (before is None or before[4] != listed or path in self._unlisted):
            # a list the depends file does not hold yet (a comment edited keeps the list)
            self._new_depends[path] = (listed, modules)
        self._new[path] = (content, settings, combined, self.state, listed, stored)

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
                if self._depends is None or not self._depends.current():
                    self._depends = _DependsFile(self.depends_path)
                self._depends.save(self._new_depends)
            # another run may have saved since we read the cache: keep its entries too
            current = self.entries if _stamp(self.path) == self._loaded_stamp else self._load()
            entries = {**current, **self._new}
            data = json.dumps({"format": FORMAT, "entries": entries}, separators=(",", ":"))
            write_atomically(self.path, data.encode())
        except (OSError, ValueError, TypeError):
            return


class _DependsFile:
    """What each entry depends on: ``{"keys": [every key], "entries": {path: [digest of
    the list, [position of each key]]}}`` (a key is named once however many entries have
    it). Read whole, an entry used when asked for; a list that is not one is a miss."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp = _stamp(path)
        data = _read_json(path, DEPENDS_FORMAT)
        keys = data.get("keys") if data is not None else None
        entries = data.get("entries") if data is not None else None
        if not (
            isinstance(keys, list)
            and all(isinstance(key, str) for key in keys)
            and isinstance(entries, dict)
        ):
            keys, entries = [], {}
        self.keys: list[str] = keys
        self.entries: dict[str, Any] = entries
        #: what each key of the table is now (``combined``)
        self._now: list[str] | None = None
        #: the keys ``clear_of`` was last asked about, and their positions in the table
        self._changed: frozenset[str] | None = None
        self._changed_positions: frozenset[int] = frozenset()

    def current(self) -> bool:
        """Nobody wrote the file since it was read."""
        return _stamp(self.path) == self.stamp

    def get(self, path: str, listed: str) -> list[str] | None:
        """The dependencies of ``path``'s entry (``listed``: the digest of its list)."""
        return self._pick(path, listed, self.keys)

    def combined(self, path: str, listed: str, digests: Digests) -> str | None:
        """The digest of what ``path``'s dependencies are now (as ``put`` makes it), or None
        when the file does not hold its list."""
        if self._now is None:
            self._now = digests(self.keys)  # every key at once
        found = self._pick(path, listed, self._now)
        return None if found is None else _digest(found)

    def clear_of(self, path: str, listed: str, changed: frozenset[str]) -> bool | None:
        """``path``'s list names none of ``changed`` (compared as positions in the table);
        None when the file does not hold its list."""
        if self._changed is not changed:
            self._changed = changed
            self._changed_positions = frozenset(
                number for number, key in enumerate(self.keys) if key in changed
            )
        try:
            stored, positions = self.entries[path]
            if stored != listed or type(positions) is not list or not positions:
                return None
            if min(positions) < 0 or max(positions) >= len(self.keys):
                return None  # positions of no key: not a list asyncfix wrote
            return self._changed_positions.isdisjoint(positions)
        except (KeyError, TypeError, ValueError):
            return None

    def _pick(self, path: str, listed: str, values: list[str]) -> list[str] | None:
        """The item of ``values`` at each position ``path``'s list holds (a position that is
        no position of the table: None; nothing asyncfix writes is negative, and a crafted
        file can only make an entry a miss or name other keys)."""
        try:
            stored, positions = self.entries[path]
            if stored != listed or not positions or min(positions) < 0:
                return None
            return [values[p] for p in positions]
        except (KeyError, TypeError, ValueError, IndexError):
            return None

    def save(self, new: dict[str, tuple[str, list[str]]]) -> None:
        """Add (or replace) ``new``; the table of keys is made again when many entries are
        new (the keys only their old lists named are dropped), else the new keys are added
        at its end (the positions the other entries hold stay right)."""
        if len(new) * 4 > len(self.entries) or len(set(self.keys)) != len(self.keys):
            merged: dict[str, tuple[str, list[str]]] = {}
            for path, item in self.entries.items():
                if path not in new and isinstance(item, list) and item:
                    found = self.get(path, item[0])
                    if found is not None:
                        merged[path] = (item[0], found)
            merged.update(new)
            self.keys, self.entries = [], {}
            new = merged
        position = {key: number for number, key in enumerate(self.keys)}
        for path, (listed, keys) in new.items():
            self.entries[path] = [listed, [position.setdefault(key, len(position)) for key in keys]]
        self.keys = list(position)
        self._now = None
        self._changed = None
        data = {"format": DEPENDS_FORMAT, "keys": self.keys, "entries": self.entries}
        write_atomically(self.path, json.dumps(data, separators=(",", ":")).encode())
        self.stamp = _stamp(self.path)


def _nothing(keys: list[str]) -> list[str]:
    return [""] * len(keys)


def prepare(directory: Path, patterns: tuple[str, ...] | str, current: set[str]) -> None:
    """Make the cache directory (with a ``.gitignore`` so that git ignores it), and remove the
    files matching ``patterns`` that another asyncfix version wrote: they are never read."""
    directory.mkdir(parents=True, exist_ok=True)
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
    with signals_held():  # an interrupt arrives before the temporary file or after it is moved
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
