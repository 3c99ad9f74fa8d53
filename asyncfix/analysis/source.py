"""The text of a module, to spell its stdlib nodes as written; paths as users write them."""

from __future__ import annotations

import ast
import os
import re

#: a line as Python counts them, its end included
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def python_lines(text: str, keepends: bool = False) -> list[str]:
    """The lines of ``text`` as Python numbers them: each ended by LF, CRLF or a bare CR.
    ``str.splitlines`` also ends a line at a form feed, a vertical tab, ``\\x1c``-``\\x1e``,
    NEL and the Unicode line and paragraph separators, which Python's tokenizer takes as any
    other character (a form feed between sections would move every line after it)."""
    lines: list[str] = _LINE.findall(text)
    if keepends:
        return lines
    return [line[:-2] if line.endswith("\r\n") else line.rstrip("\r\n") for line in lines]


class SourceText:
    """The text of a module, to spell its nodes as written (stdlib columns are UTF-8 bytes)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = python_lines(text, keepends=True)
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
