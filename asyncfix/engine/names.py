"""The project-wide name sets, made again after an edit from each module's part of them
(``index.Contribution``), kept between runs in the names file of the index cache.

A module's part holds while neither its facts nor those of a module it looked up changed
(``Contribution.consulted``, names looked up and not found included: a module added under
such a name counts). An edit makes again the parts of the modules it changed and of those
that looked them up; the others are read back as they were. What blocks is then worked out
over every part (``ProjectIndex.names_from``): the same sets a run that makes every part
finds. When every part made again is what it was (an edit that adds a function calling
nothing), the sets the last run found stand as they were, without combining the parts;
they are taken from the index cache only when the names file says its parts give them (a
digest of those sets, ``sets``: two runs at once may each write one of the two files).

The file names each string once (``names``) and holds each module's part as the positions
of its strings: ``{"format", "sets", "names": [...], "modules": {module: [facts digest,
coroutines, bases, resources, blockers, calls (caller, callee, ...), consulted]}}``. A
run combines the parts it keeps without decoding them, and adds the parts it made at the
end of the table. JSON, read as data: a file that is not what asyncfix writes (a position
that is no position of the table, a part that is no list) is discarded and every part is
made again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from asyncfix.cache import prepare, write_atomically
from asyncfix.index import Contribution, Names, ProjectIndex

#: (facts digest, coroutines, bases, resources, blockers, calls, consulted): positions
Item = list[Any]


class _NotOne(Exception):
    """The names file is not what asyncfix writes."""


#: modules whose facts changed while their part did not, left with the old digest in the
#: file (each run makes their parts again, cheaply) until this many: then it is written
STALE = 32


def project_names(
    index: ProjectIndex, path: Path, form: str, previous: Names | None = None
) -> Names:
    """The name sets of ``index`` (set on it too), from the parts in ``path`` that still
    hold and those made again; ``path`` is updated when a part changed. ``previous``: the
    sets the last run found (the index cache's): when every part made again is what it was,
    they still hold."""
    table, modules, made_for = _read(path, form)
    if previous is not None and made_for != _digest(previous):
        previous = None  # the sets another run found for other parts
    try:
        return _combine(index, path, form, table, modules, previous)
    except _NotOne:
        return _combine(index, path, form, [], {}, None)


def _digest(names: Names) -> str:
    return hashlib.sha256(json.dumps(names).encode()).hexdigest()[:16]


def _read(path: Path, form: str) -> tuple[list[str], dict[str, Item], str]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return [], {}, ""
    if not isinstance(data, dict) or data.get("format") != form:
        return [], {}, ""
    table, modules = data.get("names"), data.get("modules")
    if not (
        isinstance(table, list)
        and all(isinstance(name, str) for name in table)
        and isinstance(modules, dict)
        and all(
            isinstance(item, list) and len(item) == 7 and isinstance(item[0], str)
            for item in modules.values()
        )
    ):
        return [], {}, ""
    made_for = data.get("sets")
    return table, modules, made_for if isinstance(made_for, str) else ""


def _combine(
    index: ProjectIndex,
    path: Path,
    form: str,
    table: list[str],
    modules: dict[str, Item],
    previous: Names | None,
) -> Names:
    digests = index.digests
    changed = {name for name, item in modules.items() if digests.get(name) != item[0]}
    changed.update(name for name in digests if name not in modules)
    position = {name: number for number, name in enumerate(table)}
    touched = {position[name] for name in changed if name in position}
    kept: dict[str, Item] = {}
    made: dict[str, Contribution] = {}
    try:
        for name in index.modules:
            item = modules.get(name)
            if item is not None and name not in changed and touched.isdisjoint(item[6]):
                kept[name] = item
                continue
            module = index.modules.find(name)
            if module is not None:
                made[name] = index.contribution(module)
    except TypeError:  # a part that is no list
        raise _NotOne from None
    if (
        previous is not None
        and len(kept) + len(made) == len(modules)
        and all(
            name in modules and _same(modules[name], part, table) for name, part in made.items()
        )
    ):
        # every part made again is what it was (a comment, a function that changes no set):
        # the sets hold; the new digests are written once enough of them wait
        index.set_names(*previous)
        stale = [name for name in made if digests.get(name) != modules[name][0]]
        if len(stale) > STALE and all(digests.get(name) for name in made):
            _save(path, form, table, kept, made, digests, previous)
        return previous
    # what the kept parts hold, as positions, without decoding them one by one
    coroutines: set[int] = set()
    bases: set[int] = set()
    resources: set[int] = set()
    blockers: set[int] = set()
    calls: list[int] = []
    consulted: set[int] = set()
    try:
        for item in kept.values():
            coroutines.update(item[1])
            bases.update(item[2])
            resources.update(item[3])
            blockers.update(item[4])
            calls.extend(item[5])
            consulted.update(item[6])
    except TypeError:  # a part that is no list
        raise _NotOne from None
    every = coroutines | bases | resources | blockers | consulted | set(calls)
    try:
        if len(calls) % 2 or (every and (min(every) < 0 or max(every) >= len(table))):
            raise _NotOne
        held = Contribution(
            tuple(table[p] for p in coroutines),
            tuple(table[p] for p in bases),
            tuple(table[p] for p in resources),
            tuple(table[p] for p in blockers),
            _pairs([table[p] for p in calls]),
            (),
        )
        if not all(type(p) is int for p in consulted):
            raise _NotOne
    except (TypeError, IndexError):  # a position that is no int
        raise _NotOne from None
    index.names_from([held, *made.values()])
    names = index.names()
    if (made or len(kept) != len(modules)) and all(digests.get(name) for name in made):
        _save(path, form, table, kept, made, digests, names)
    return names


def _same(item: Item, part: Contribution, table: list[str]) -> bool:
    """The stored part ``item`` is ``part`` (a stored part that is not one is not)."""
    try:
        return _decoded(item, table) == part
    except (TypeError, IndexError, ValueError):
        return False


def _save(
    path: Path,
    form: str,
    table: list[str],
    kept: dict[str, Item],
    made: dict[str, Contribution],
    digests: dict[str, str],
    names: Names,
) -> None:
    """Best effort, written atomically, with a digest of the sets the parts give
    (``names``). The table is made again when many parts are new (the strings only the old
    parts named are dropped), else the new strings are added at its end (the positions the
    kept parts hold stay right)."""
    if len(made) * 4 > len(kept):
        made = {**{name: _decoded(item, table) for name, item in kept.items()}, **made}
        table, kept = [], {}
    position = {name: number for number, name in enumerate(table)}

    def positions(names: tuple[str, ...]) -> list[int]:
        return [position.setdefault(name, len(position)) for name in names]

    modules: dict[str, Item] = dict(kept)
    for name, part in made.items():
        modules[name] = [
            digests[name],
            positions(part.coroutines),
            positions(part.bases),
            positions(part.resources),
            positions(part.blockers),
            positions(tuple(name for call in part.calls for name in call)),
            positions(part.consulted),
        ]
    data = {"format": form, "sets": _digest(names), "names": list(position), "modules": modules}
    try:
        prepare(path.parent, "names-*", {path.name})
        write_atomically(path, json.dumps(data, separators=(",", ":")).encode())
    except (OSError, ValueError, TypeError):
        return


def _pairs(names: list[str]) -> tuple[tuple[str, str], ...]:
    return tuple(zip(names[::2], names[1::2], strict=True))


def _decoded(item: Item, table: list[str]) -> Contribution:
    """A kept part (its positions checked by ``_combine``) as strings."""
    coroutines, bases, resources, blockers = (tuple(table[p] for p in item[n]) for n in range(1, 5))
    calls = _pairs([table[p] for p in item[5]])
    return Contribution(
        coroutines, bases, resources, blockers, calls, tuple(table[p] for p in item[6])
    )
