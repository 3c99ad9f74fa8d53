"""Adding a standard-library ``import x`` where isort/ruff would put it.

LibCST's AddImportsVisitor appends new imports after the last import of the file, which
puts ``import asyncio`` below third-party imports: a fixed file would then fail the
project's own import-order check. For a plain standard-library import we do what isort's
default profile does: the stdlib section, ``import x`` lines before ``from x import`` lines,
alphabetical. Everything else still goes through AddImportsVisitor.
"""

from __future__ import annotations

import sys

from asyncfix.lazy import libcst as cst

STDLIB = frozenset(sys.stdlib_module_names)


def is_stdlib(module: str) -> bool:
    return module.split(".", 1)[0] in STDLIB


def _imported_module(statement: cst.BaseStatement) -> tuple[str, str] | None:
    """("import" | "from", module) for a line holding one import statement."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.Import):
        name = cst.Module(body=[]).code_for_node(small.names[0].name)
        return "import", name
    if isinstance(small, cst.ImportFrom) and small.module is not None and not small.relative:
        return "from", cst.Module(body=[]).code_for_node(small.module)
    if isinstance(small, cst.ImportFrom):
        return "from", "."
    return None


def has_module_import(module: cst.Module, name: str) -> bool:
    for statement in module.body:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Import):
                    for alias in small.names:
                        spelled = cst.Module(body=[]).code_for_node(alias.name)
                        if spelled == name and alias.asname is None:
                            return True
    return False


def add_stdlib_import(module: cst.Module, name: str) -> cst.Module:
    """``import name`` in the standard-library section of the leading imports."""
    if has_module_import(module, name):
        return module
    body: list[cst.BaseStatement] = list(module.body)
    start = 0
    if body and is_docstring(body[0]):
        start = 1
    while start < len(body) and (_imported_module(body[start]) or ("", ""))[1] == "__future__":
        start += 1
    # the leading run of import lines, split into sections at blank lines
    sections: list[list[int]] = []
    index = start
    while index < len(body) and _imported_module(body[index]) is not None:
        statement = body[index]
        assert isinstance(statement, cst.SimpleStatementLine)
        if not sections or statement.leading_lines:
            sections.append([])
        sections[-1].append(index)
        index += 1
    new = cst.parse_statement(f"import {name}\n", config=module.config_for_parsing)
    assert isinstance(new, cst.SimpleStatementLine)
    for whole in sections:
        # the section's leading standard-library imports (all of it, in an isort layout; the
        # first lines of a file that does not separate sections)
        section = []
        for i in whole:
            found = _imported_module(body[i])
            if found is None or not is_stdlib(found[1]):
                break
            section.append(i)
        if not section:
            continue
        modules = [_imported_module(body[i]) for i in section]
        position = section[-1] + 1
        for i, found in zip(section, modules, strict=True):
            assert found is not None
            style, spelled = found
            if style == "from" or spelled.lower() > name.lower():
                position = i
                break
        return _insert(module, body, position, new, at_section_start=position == section[0])
    # no standard-library section: open one before the first import
    if sections:
        first = sections[0][0]
        return _insert(module, body, first, new, at_section_start=True, separate=True)
    return _insert(module, body, start, new, at_section_start=True, separate=start < len(body))


def _insert(
    module: cst.Module,
    body: list[cst.BaseStatement],
    position: int,
    new: cst.SimpleStatementLine,
    at_section_start: bool,
    separate: bool = False,
) -> cst.Module:
    following = body[position] if position < len(body) else None
    if at_section_start and isinstance(
        following, cst.SimpleStatementLine | cst.FunctionDef | cst.ClassDef
    ):
        lines = list(following.leading_lines)
        if _imported_module(following) is not None:
            # a comment heading the import section now heads it above the new import
            new = new.with_changes(leading_lines=lines)
            following = following.with_changes(leading_lines=[cst.EmptyLine()] if separate else [])
        elif separate:
            # code right after the docstring: the comments that explain it stay with it, with
            # the blank lines a definition wants before them
            _, comments = split_at_comments(lines)
            new = new.with_changes(leading_lines=[cst.EmptyLine()] if position else [])
            wanted = 2 if isinstance(following, cst.FunctionDef | cst.ClassDef) else 1
            following = following.with_changes(
                leading_lines=[*([cst.EmptyLine()] * wanted), *comments]
            )
        body[position] = following
    return module.with_changes(body=[*body[:position], new, *body[position:]])


def split_at_comments(
    lines: list[cst.EmptyLine],
) -> tuple[list[cst.EmptyLine], list[cst.EmptyLine]]:
    """A statement's leading lines: the blank ones before its first comment, and the rest
    (the comments that explain it stay with it when code is inserted before it)."""
    cut = next((i for i, line in enumerate(lines) if line.comment is not None), len(lines))
    return lines[:cut], lines[cut:]


def is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )
