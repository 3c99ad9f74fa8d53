"""Stdlib-``ast`` pre-filters: can a LibCST rule find anything in this file at all?

Parsing a file with LibCST costs several times what ``ast.parse`` does, and most files hold
no finding. The rules that still detect on the LibCST tree (AF202-AF204, ``blocking_io.py``)
ask this first, on the stdlib tree, whether their shape is present at all. It may say yes
wrongly, never no: ``tests/test_prefilters.py``, ``tests/test_project_fixtures.py`` and
``scripts/prefilter_check.py`` (a whole corpus, findings with the pre-filters on and off)
hold it to that. The rules that ask the semantic model (``asyncfix/analysis``) need none.
"""

from __future__ import annotations

import ast

from asyncfix.codemods.base import ast_facts, ast_memo, ast_of_type

# -- AF201-AF204 ------------------------------------------------------------------------------


def _file_names(tree: ast.Module) -> tuple[set[str], set[str], dict[str, set[str]]]:
    """Names the file mentions (names, attributes, imported names, words of strings), the
    names its imports bind, and for each imported name the other names it is bound as."""

    def compute() -> tuple[set[str], set[str], dict[str, set[str]]]:
        mentioned: set[str] = set()
        imported: set[str] = set()
        aliases: dict[str, set[str]] = {}
        for node in ast_of_type(tree, ast.Import, ast.ImportFrom):
            assert isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names:
                mentioned.add(alias.name)
                imported.add(alias.asname or alias.name.split(".", 1)[0])
                if alias.asname and isinstance(node, ast.ImportFrom):
                    aliases.setdefault(alias.name, set()).add(alias.asname)
        for node in ast_of_type(tree, ast.Name):
            assert isinstance(node, ast.Name)
            mentioned.add(node.id)
        for node in ast_of_type(tree, ast.Attribute):
            assert isinstance(node, ast.Attribute)
            mentioned.add(node.attr)
        for node in ast_of_type(tree, ast.Constant):
            assert isinstance(node, ast.Constant)
            if isinstance(node.value, str):
                words = node.value.replace("[", " ").replace("]", " ").split()
                mentioned.update(words)
                mentioned.update(part for word in words for part in word.split("."))
        return mentioned, imported, aliases

    result: tuple[set[str], set[str], dict[str, set[str]]] = ast_memo(tree, "file-names", compute)
    return result


def may_call_blocking(
    tree: ast.Module, functions: frozenset[str], methods: dict[str, frozenset[str]]
) -> bool:
    """A call under an ``async def`` of a catalogue function (its last name is in
    ``functions``, called by a name an import binds or through an imported module), or of a
    catalogue method
    (``methods``: library class -> method names) where the file names that class: a
    receiver only has a library class when the file constructs or annotates it."""
    mentioned, imported, import_aliases = _file_names(tree)
    aliases = set(functions)
    for name in functions:
        aliases.update(import_aliases.get(name, ()))
    called: set[str] = set()
    for cls, names in methods.items():
        if cls.rsplit(".", 1)[1] in mentioned:
            called |= names
    for node, _, under_async, _, _ in ast_facts(tree).calls:
        if not under_async:
            continue
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in aliases:
                return True
        elif isinstance(func, ast.Attribute):
            if func.attr in called:
                return True
            if func.attr in functions:
                # `requests.get(...)`, `os.path.join`: reached through an imported module
                head = func.value
                while isinstance(head, ast.Attribute):
                    head = head.value
                if isinstance(head, ast.Name) and head.id in imported:
                    return True
    return False
