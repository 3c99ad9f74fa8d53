"""The catalogues of library APIs: coroutine functions and methods
(``asyncfix/data/library_coroutines.toml``), and the methods library classes call
synchronously on their subclasses (``asyncfix/data/sync_callbacks.toml``); and
``gathers_everything``; ``CoroutineFunctions``, the catalogue with what the configuration
declares."""

from __future__ import annotations

import ast
import fnmatch
import sys
from collections.abc import Callable
from importlib import resources
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


def _load() -> tuple[frozenset[str], dict[str, frozenset[str]], dict[str, str]]:
    text = resources.files("asyncfix").joinpath("data/library_coroutines.toml").read_text("utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    functions = frozenset(data["functions"]["names"])
    methods: dict[str, frozenset[str]] = {}
    returned_by: dict[str, str] = {}
    for name, entry in data["classes"].items():
        methods[name] = frozenset(entry["methods"])
        for factory in entry.get("returned-by", ()):
            returned_by[factory] = name
    return functions, methods, returned_by


#: library coroutine functions; class -> its coroutine methods; factory -> the class it
#: returns (``asyncpg.connect`` -> ``asyncpg.Connection``)
LIBRARY_FUNCTIONS, LIBRARY_METHODS, LIBRARY_FACTORIES = _load()


def _load_callbacks() -> dict[str, frozenset[str]]:
    text = resources.files("asyncfix").joinpath("data/sync_callbacks.toml").read_text("utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    return {name: frozenset(entry["methods"]) for name, entry in data["classes"].items()}


#: library class -> the methods it calls on an instance without awaiting what they return
SYNC_CALLBACKS = _load_callbacks()


class CoroutineFunctions:
    """The coroutine functions asyncfix knows without seeing them: the library catalogue's,
    and those the configuration declares (``coroutine-functions``: dotted names where ``*``
    matches any characters within a part, and a part ``**`` one or more parts) for code it
    cannot see, such as a library outside the project.
    ``name in`` asks the catalogue; ``declared`` asks the declarations, which count only for
    names the project does not define (``ProjectIndex.declared_coroutine`` checks that)."""

    def __init__(self, library: frozenset[str], declared: tuple[str, ...] = ()) -> None:
        self.library = library
        self.patterns = declared
        self._split = [(pattern, pattern.split(".")) for pattern in declared]

    def __contains__(self, name: object) -> bool:
        return name in self.library

    def declared(self, name: str) -> str | None:
        """The first declaration ``name`` matches, or None (a builtin never does)."""
        if not self.patterns or name.startswith("builtins."):
            return None
        parts = name.split(".")
        for pattern, pattern_parts in self._split:
            if _parts_match(pattern_parts, parts):
                return pattern
        return None


def _parts_match(pattern: list[str], name: list[str]) -> bool:
    """``vendor.*.async_*`` against a dotted name, part by part: ``*`` within a part
    (``async_*`` is not ``async_client.Controller``), a part ``**`` one or more whole parts.
    (``fnmatch`` per part, no regular expression of the whole: a repository's configuration
    cannot make the match backtrack for long.)"""
    # reach[j]: the pattern parts so far match the first j parts of the name
    reach = [True] + [False] * len(name)
    for part in pattern:
        if part == "**":
            seen, nxt = False, [False] * (len(name) + 1)
            for j in range(1, len(name) + 1):
                seen = seen or reach[j - 1]
                nxt[j] = seen
        else:
            nxt = [False] + [
                reach[j - 1] and fnmatch.fnmatchcase(name[j - 1], part)
                for j in range(1, len(name) + 1)
            ]
        reach = nxt
    return reach[-1]


def gathers_everything(call: ast.Call, qualified_name: Callable[[ast.expr], str | None]) -> bool:
    """``asyncio.gather(..., return_exceptions=True)``: it ends only when every awaitable
    has (also when one fails, or the caller is cancelled), and raises none of their errors.
    Without ``return_exceptions`` the first error is raised at once and the others run on."""
    return (
        any(
            keyword.arg == "return_exceptions"
            and isinstance(keyword.value, ast.Constant)
            and keyword.value.value is True
            for keyword in call.keywords
        )
        and qualified_name(call.func) == "asyncio.gather"
    )
