"""The text of a module, to spell its stdlib nodes as written; paths as users write them."""

from __future__ import annotations

import ast
import os


class SourceText:
    """The text of a module, to spell its nodes as written (stdlib columns are UTF-8 bytes)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self._ascii = text.isascii()

    def column(self, line: int, offset: int) -> int:
        """The character column (0-based) of a UTF-8 byte ``offset`` on ``line`` (1-based)."""
        if self._ascii or line - 1 >= len(self.lines):
            return offset
        return len(self.lines[line - 1].encode()[:offset].decode(errors="replace"))

    def segment(self, node: ast.AST) -> str:
        """The source of ``node`` as written (without the parentheses around it); lines after
        the first lose the indentation of the line it starts on, as LibCST writes a node out
        on its own (messages and fix ids do not depend on how deep the code is nested)."""
        lineno: int | None = getattr(node, "lineno", None)
        end_lineno: int | None = getattr(node, "end_lineno", None)
        if lineno is None or end_lineno is None:
            return ""
        start = self.column(lineno, getattr(node, "col_offset", 0))
        end = self.column(end_lineno, getattr(node, "end_col_offset", 0))
        if lineno == end_lineno:
            return self.lines[lineno - 1][start:end]
        first = self.lines[lineno - 1]
        indent = first[: len(first) - len(first.lstrip(" \t"))]
        parts = [first[start:]]
        parts.extend(self.lines[lineno : end_lineno - 1])
        parts.append(self.lines[end_lineno - 1][:end])
        for index in range(1, len(parts)):
            if indent and parts[index].startswith(indent):
                parts[index] = parts[index][len(indent) :]
        return "".join(parts)


def shown(path: str) -> str:
    """A path as the user would write it: relative to the working directory when below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
