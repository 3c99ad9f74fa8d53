"""The project index of a run: the facts of every module, cached between runs."""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asyncfix import __version__
from asyncfix import index as index_module
from asyncfix.analysis import uses as uses_module
from asyncfix.cache import prepare, write_atomically
from asyncfix.config import Config
from asyncfix.engine import names as names_module
from asyncfix.engine.names import project_names
from asyncfix.files import (
    SourceError,
    decode,
    discover,
)
from asyncfix.index import (
    NAME_KINDS,
    ModuleFact,
    Names,
    ProjectIndex,
    Raw,
    Stub,
    facts_from_source,
    module_name,
    to_raw,
)

# -- the project index ------------------------------------------------------------------------

INDEX_CACHE = ".asyncfix_cache"


def cache_directory(config: Config, root: Path | None) -> Path:
    """Where the caches of the project at ``root`` (else the configuration's directory)
    live: ``.asyncfix_cache`` there, or, under ``--cache-dir DIR`` / ``ASYNCFIX_CACHE_DIR``,
    a folder of DIR named by a digest of that directory (projects sharing DIR keep apart)."""
    top = root or config.root
    if config.cache_dir is None:
        return top / INDEX_CACHE
    digest = hashlib.sha256(str(top.absolute()).encode("utf-8", "surrogateescape")).hexdigest()
    return config.cache_dir / digest[:16]


PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


def project_root(processed: Sequence[Path], config: Config) -> Path | None:
    """Where the project of this run starts: the directory of the configuration file, else the
    nearest directory above the first path with a ``pyproject.toml``/``setup.py``/``.git``.
    None when there is none: then only the files named are indexed (never a home directory)."""
    if config.path is not None:
        return config.root
    if not processed:
        return None
    start = processed[0].absolute().parent
    for directory in (start, *start.parents):
        if (directory / "__init__.py").exists():
            continue  # inside a package (Home Assistant has a `setup.py` module)
        if any((directory / marker).exists() for marker in PROJECT_MARKERS):
            return directory
    return None


def build_index(
    processed: Sequence[Path], config: Config, jobs: int | None, whole_project: bool = False
) -> ProjectIndex:
    """Facts of the processed files and of the project's other Python files, reusing the
    on-disk cache (``<project root>/.asyncfix_cache``) for files whose content is unchanged.

    The cache holds each file's facts as plain lists and dicts (JSON: reading a cache never
    runs code) that become facts only when a rule asks about that module, and the
    project-wide name sets the pre-filters use, valid while no file changed.
    ``whole_project``: ``processed`` are every file the project root's discovery finds
    (the run was given the root itself): it is not walked again.
    """
    root = project_root(processed, config)
    if whole_project:
        others: list[Path] = []  # ``processed`` were found under the root as it would be
    elif root is not None:
        others = discover([root], root, config.exclude_spec(), config.respect_gitignore).files
    else:
        others = []
    if whole_project:  # discovery's own list: sorted, each file once
        files = list(processed)
    else:
        files = sorted({*processed, *others}, key=lambda path: path.parts)
    cache_dir = cache_directory(config, root)
    cache, cached_names, cached_state = _load_index_cache(cache_dir)
    raws: list[Raw] = []
    fact_digests: list[str] = []
    contents: dict[str, str] = {}
    missing: list[tuple[Path, str, bytes, tuple[int, int]]] = []
    fresh: dict[str, IndexEntry] = {}
    restamped = False
    for path in files:
        key = str(path)
        cached = cache.get(key)
        try:
            status = os.stat(key)
            stamp = (status.st_size, status.st_mtime_ns)
            if cached is not None and cached[3] == stamp:
                # same size and modification time (in nanoseconds): the same content, as
                # black and ruff assume; nothing to read
                digest, data = cached[0], b""
            else:
                data = path.read_bytes()
                digest = hashlib.sha256(data).hexdigest()
        except OSError:
            continue
        contents[key] = digest
        if (
            cached is not None
            and cached[0] == digest
            and (cached[1] is None or cached[1] == module_name(path)[0])
        ):
            if cached[3] != stamp:
                cached = (*cached[:3], stamp)
                restamped = True
            fresh[key] = cached
            if cached[1] is not None:
                raws.append((cached[1], key, cached[2]))  # a stub: read when needed
                fact_digests.append(cached[2])
        else:
            if not data:
                data = path.read_bytes()
            missing.append((path, digest, data, stamp))
    facts = _index_files([(path, data) for path, _, data, _ in missing], jobs)
    made: dict[str, tuple[str, Raw]] = {}
    fresh_facts: list[tuple[Raw, ModuleFact]] = []
    same_facts = len(fresh) + len(missing) == len(cache)
    for (path, digest, _, stamp), fact in zip(missing, facts, strict=True):
        raw = to_raw(fact) if fact is not None else None
        # what dependents see of this module: its facts, not its text (a comment edited in
        # client.py re-checks nothing else)
        facts_digest = _facts_digest(raw) if raw else ""
        entry = (digest, raw[0] if raw else None, facts_digest, stamp)
        before = cache.get(str(path))
        if before is None or before[1:3] != entry[1:3]:
            same_facts = False
            if raw is not None:
                made[str(path)] = (facts_digest, raw)
        fresh[str(path)] = entry
        if raw is not None:
            assert fact is not None
            raws.append(raw)
            fact_digests.append(facts_digest)
            fresh_facts.append((raw, fact))
    loader = FactsLoader(cache_dir)
    index = ProjectIndex(raws=raws, digests=fact_digests, loader=loader)
    for raw, fact in fresh_facts:  # made just now: not made again from their raw form
        index.modules.prime(raw, fact)
    index.contents = contents
    if same_facts and cached_names is not None:
        # no module's facts changed (files edited without changing what the index records
        # of them, or only touched): the project-wide names still hold
        index.set_names(*cached_names)
        if missing or restamped:
            _save_index_cache(cache_dir, fresh, cached_names, {}, None, index.state())
    else:
        # worked out once here, before the workers start, so that they share them
        path = cache_dir / f"{_NAMES_FORMAT}.json"
        names = project_names(index, path, _NAMES_FORMAT, cached_names)
        if cached_names is not None and cached_state:
            index.changed_since = (cached_state, _changed_keys(cache, index, cached_names))
        _save_index_cache(cache_dir, fresh, names, made, loader, index.state())
    return index


def _changed_keys(
    cache: dict[str, IndexEntry], index: ProjectIndex, before: Names
) -> frozenset[str]:
    """The dependencies whose digest (``ProjectIndex.dependency_digest``) may differ from
    what they were for the index the cache was written with: the modules whose facts
    changed, came or went (a module name two files have: whichever wins, counted as
    changed), and ``kind:name`` for each name a set gained or lost."""
    old: dict[str, str] = {}
    twice: set[str] = set()
    for entry in cache.values():
        if entry[1] is not None:
            if entry[1] in old:
                twice.add(entry[1])
            old.setdefault(entry[1], entry[2])
    new = index.digests
    twice.update(index.twice)
    keys = {name for name in old.keys() | new.keys() if old.get(name, "") != new.get(name, "")}
    keys |= twice
    for kind, was, now in zip(NAME_KINDS, before, index.names(), strict=True):
        keys.update(f"{kind}:{name}" for name in set(was) ^ set(now))
    return frozenset(keys)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _facts_digest(raw: Raw) -> str:
    """A digest of a module's facts that only their values decide (the same facts made in
    another process must not look changed, or every module that imports them is checked
    again)."""
    return hashlib.sha256(repr(raw).encode()).hexdigest()[:16]


#: the facts are kept in this many files, a module's by a digest of its directory (a
#: module's imports are often its package's): an edit rewrites the few that hold what
#: changed, and a run reads only those a rule needs
FACT_SHARDS = 64


def _shard(path: str) -> int:
    return zlib.crc32(os.path.dirname(path).encode()) % FACT_SHARDS


class FactsLoader:
    """The raw facts of a module whose entry in the index cache is unchanged, read from the
    cache's facts files on first use. When the file does not hold them for that content (a
    concurrent run rewrote it, or it is gone), the module is indexed again from its source.

    Each file (one of ``FACT_SHARDS``) maps each path to its facts digest and its facts as a
    JSON text of their own: reading a file makes one string per module (fast), and only the
    modules a rule asks about are decoded further."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._shards: dict[int, dict[str, tuple[str, str]]] = {}

    def path(self, shard: int) -> Path:
        return self.directory / f"{_FACTS_FORMAT}-{shard:02d}.json"

    def shard(self, number: int) -> dict[str, tuple[str, str]]:
        """Path -> (facts digest, facts as JSON text), of one file."""
        found = self._shards.get(number)
        if found is None:
            found = self._shards[number] = {}
            try:
                data = json.loads(self.path(number).read_bytes())
            except (OSError, ValueError, RecursionError):
                data = None
            if isinstance(data, dict) and data.get("format") == _FACTS_FORMAT:
                facts = data.get("facts")
                if isinstance(facts, dict) and all(
                    isinstance(item, list)
                    and len(item) == 2
                    and isinstance(item[0], str)
                    and isinstance(item[1], str)
                    for item in facts.values()
                ):
                    found.update((path, (item[0], item[1])) for path, item in facts.items())
        return found

    def __call__(self, stub: Stub) -> Raw | None:
        _, path, facts_digest = stub
        found = self.shard(_shard(path)).get(path)
        if found is not None and found[0] == facts_digest:
            try:
                raw = json.loads(found[1])
            except (ValueError, RecursionError):
                raw = None
            if isinstance(raw, list):
                return tuple(raw)
        try:
            fact = facts_from_source(decode(Path(path).read_bytes()).text, Path(path))
        except (OSError, SourceError):
            return None
        except Exception:  # as in _index_one: the module is left out
            return None
        return to_raw(fact) if fact is not None else None


def _index_one(item: tuple[Path, bytes]) -> ModuleFact | None:
    path, raw = item
    try:
        return facts_from_source(decode(raw).text, path)
    except SourceError:
        return None
    except Exception:  # an index entry is never worth the run: the file is left out of it
        return None


def _index_files(items: list[tuple[Path, bytes]], jobs: int | None) -> list[ModuleFact | None]:
    if not items:
        return []
    from asyncfix.engine import process as worker  # the collector's settings

    workers = jobs or os.cpu_count() or 1
    if workers <= 1 or len(items) < worker.POOL_THRESHOLD * 4:
        previous = worker._tune_gc()
        try:
            return [_index_one(item) for item in items]
        finally:
            worker._restore_gc(previous)
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=workers, initializer=worker._start_worker)
    try:
        facts = list(pool.map(_index_one, items, chunksize=64))
    except BaseException:  # interrupted: the chunks not started never start
        worker.stop_pool(pool)
        raise
    pool.shutdown(wait=True)
    return facts


def _cache_format() -> str:
    """Changes whenever the facts could: with the version and with the code that extracts them."""
    # the code that extracts the facts and makes the name sets from them, and the catalogues
    # it reads (which calls block)
    package = Path(index_module.__file__).parent
    sources = [Path(index_module.__file__), Path(uses_module.__file__), Path(names_module.__file__)]
    sources += sorted((package / "data").glob("*.toml"))
    extractor = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:12]
    # v6: JSON; entries are [content digest, module name, facts digest, [size, mtime_ns]];
    # the facts file holds each module's facts as a JSON text of its own;
    # the facts themselves are in the facts file; four name sets
    # v7: five name sets; each module's part of them in the names file; the facts in
    # FACT_SHARDS files
    # v8: the state of the index the file was written with
    return f"index-{__version__}-{extractor}-v8"


_CACHE_FORMAT = _cache_format()
_FACTS_FORMAT = _CACHE_FORMAT.replace("index-", "facts-", 1)
_NAMES_FORMAT = _CACHE_FORMAT.replace("index-", "names-", 1)

#: (content digest, module name or None, digest of its facts, (size, mtime_ns))
IndexEntry = tuple[str, str | None, str, tuple[int, int]]


def _load_index_cache(
    cache_dir: Path,
) -> tuple[dict[str, IndexEntry], Names | None, str]:
    """The cached facts, names and the state of the index they made (``ProjectIndex.state``),
    or nothing when the cache is missing, corrupt or from another version."""
    try:
        data = json.loads((cache_dir / f"{_CACHE_FORMAT}.json").read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}, None, ""
    if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT:
        return {}, None, ""
    stored, names, state = data.get("entries"), data.get("names"), data.get("state")
    if not isinstance(stored, dict):
        return {}, None, ""
    entries: dict[str, IndexEntry] = {}
    for path, entry in stored.items():
        if not (
            isinstance(entry, list)
            and len(entry) == 4
            and isinstance(entry[0], str)
            and (entry[1] is None or isinstance(entry[1], str))
            and isinstance(entry[2], str)
            and isinstance(entry[3], list)
            and len(entry[3]) == 2
            and type(entry[3][0]) is int
            and type(entry[3][1]) is int
        ):
            return {}, None, ""  # not what asyncfix writes: nothing in it is trusted
        entries[path] = (entry[0], entry[1], entry[2], (entry[3][0], entry[3][1]))
    if not (isinstance(names, list) and len(names) == 5 and all(_strings(g) for g in names)):
        return entries, None, ""
    state = state if isinstance(state, str) else ""
    return entries, (names[0], names[1], names[2], names[3], names[4]), state


def _save_index_cache(
    cache_dir: Path,
    entries: dict[str, IndexEntry],
    names: Names,
    made: dict[str, tuple[str, Raw]],
    loader: FactsLoader | None,
    state: str,
) -> None:
    """Best effort: a cache that cannot be written is simply not written. Each file is
    written to a temporary file and moved into place, so a concurrent run reads an old or a
    new one, never half of one; the facts files first, so that an index file never names
    facts that are not there yet (and ``FactsLoader`` checks them anyway). Only the facts
    files that hold a module whose facts changed are written."""
    try:
        shards = {f"{_FACTS_FORMAT}-{number:02d}.json" for number in range(FACT_SHARDS)}
        prepare(cache_dir, ("index-*", "facts-*"), {f"{_CACHE_FORMAT}.json", *shards})
        if loader is not None:  # some modules' facts changed: the files that hold them
            paths: dict[int, list[str]] = {}
            for path, entry in entries.items():
                if entry[1] is not None:
                    paths.setdefault(_shard(path), []).append(path)
            for number in sorted({_shard(path) for path in made}):
                stored = loader.shard(number)
                facts: dict[str, tuple[str, str]] = {}
                for path in paths.get(number, ()):
                    new = made.get(path)
                    found = (new[0], _json_text(new[1])) if new else stored.get(path)
                    if found is not None:
                        facts[path] = found
                data = {"format": _FACTS_FORMAT, "facts": facts}
                write_atomically(loader.path(number), _json_bytes(data))
        index = {"format": _CACHE_FORMAT, "entries": entries, "names": names, "state": state}
        write_atomically(cache_dir / f"{_CACHE_FORMAT}.json", _json_bytes(index))
    except (OSError, ValueError, TypeError):
        return


def _json_text(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()
