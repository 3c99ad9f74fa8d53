"""Suppression comments, parsed strictly from the comments of a file (never from inside a
string): ``# asyncfix: ignore``, ``# asyncfix: ignore[AF101, AF201]``, ``# noqa``,
``# noqa: AF101`` (the keywords in any case), and ``# asyncfix: skip-file`` on a line of its
own.

A malformed one -- ``ignore[af101]``, ``ignore [AF101]``, ``ignore[AF-101]``, ``noqa:
af101``, an unknown AF code -- suppresses nothing and gives a warning: read loosely it would
have silenced every rule on its line. A blanket ``# noqa`` belongs to every linter and is
taken as it is; ``# noqa: E501`` names another tool's codes and leaves asyncfix's alone.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from asyncfix.analysis.source import python_lines

#: a file holds a candidate only when this matches somewhere in it (the cheap test)
CANDIDATE = re.compile(r"(?i)#\s*(?:noqa|asyncfix\s*:)")
#: only a file with this can skip itself
SKIP_FILE = re.compile(r"(?i)skip-file")
#: where nothing was found, only these comments can give a warning (malformed, or unused):
#: an asyncfix directive, or a noqa comment with something like an AF code on its line.
#: Other files are not tokenized (a tenth of Home Assistant's files have a noqa comment)
OF_INTEREST = re.compile(r"(?i)#\s*asyncfix\s*:|#\s*noqa\b[^\n]*?af")
_NOQA = re.compile(r"(?i)#\s*noqa(?P<rest>.*)")
_DIRECTIVE = re.compile(r"(?i)#\s*asyncfix\s*:\s*(?P<word>[A-Za-z_-]*)(?P<rest>.*)")
_CODE = re.compile(r"[A-Z]+[0-9]+")
_CODES = re.compile(r"\s*(?P<codes>[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+|\s+[A-Z]+[0-9]+)*)")
_AF = re.compile(r"AF[0-9]{3}")


@dataclass(frozen=True)
class Directive:
    """One suppression comment: on ``line`` (1-based), at ``col`` (1-based), the codes it
    names (None: all of them)."""

    line: int
    col: int
    text: str
    codes: frozenset[str] | None
    #: a noqa comment (True) or an `asyncfix: ignore` one (False)
    noqa: bool


@dataclass
class Suppressions:
    """The suppression comments of one file."""

    by_line: dict[int, list[Directive]] = field(default_factory=dict)
    #: ``line:col: what is wrong`` for each malformed comment
    warnings: list[str] = field(default_factory=list)
    skip_file: bool = False

    def suppressing(
        self, code: str, equivalent: Iterable[str], lines: Iterable[int]
    ) -> list[Directive]:
        """The directives on ``lines`` that suppress a finding of ``code`` (or of one of its
        ``equivalent`` codes: ``# noqa: RUF006`` also silences AF301)."""
        names = {code, *equivalent}
        return [
            directive
            for line in set(lines)
            for directive in self.by_line.get(line, ())
            if directive.codes is None or not names.isdisjoint(directive.codes)
        ]

    def unused(self, used: set[Directive], enabled: frozenset[str]) -> list[str]:
        """``line:col: ...`` for each directive that suppressed nothing, of the ones that
        can be judged: an ``asyncfix: ignore`` (blanket or not) or a ``noqa`` naming AF
        codes, each of its AF codes enabled for the file (a rule that did not run cannot
        say whether the comment is needed). A blanket ``# noqa`` is every linter's."""
        out: list[str] = []
        for directives in self.by_line.values():
            for directive in directives:
                if directive in used:
                    continue
                if directive.codes is None:
                    if directive.noqa:
                        continue
                    out.append(f"{directive.line}:{directive.col}: unused `{directive.text}`")
                    continue
                ours = sorted(c for c in directive.codes if _AF.fullmatch(c))
                if ours and all(c in enabled for c in ours):
                    out.append(
                        f"{directive.line}:{directive.col}: unused `{directive.text}` (no "
                        f"{', '.join(ours)} finding on this line)"
                    )
        return sorted(out, key=lambda text: tuple(int(n) for n in text.split(":")[:2]))


def _comments(text: str) -> Iterator[tuple[int, int, str, bool]]:
    """Each comment: line, column (1-based), text, and whether it is alone on its line.
    When this Python cannot tokenize the file (syntax newer than it), each candidate to
    the end of its line is taken for a comment, as before there was a tokenizer here."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        for number, source in enumerate(python_lines(text), 1):
            match = CANDIDATE.search(source)
            if match is not None:
                start = match.start()
                yield number, start + 1, source[start:], not source[:start].strip()
        return
    for token in tokens:
        if token.type == tokenize.COMMENT:
            (line, col) = token.start
            alone = not token.line[:col].strip()
            yield line, col + 1, token.string, alone


def parse(text: str, known: frozenset[str]) -> Suppressions:
    """The suppression comments of ``text``; ``known``: asyncfix's rule codes."""
    found = Suppressions()
    if not CANDIDATE.search(text):
        return found
    for line, col, comment, alone in _comments(text):
        if not CANDIDATE.search(comment):
            continue
        for start in (m.start() for m in CANDIDATE.finditer(comment)):
            piece = comment[start:]
            end = piece.find("#", 1)
            piece = (piece if end < 0 else piece[:end]).rstrip()
            where = f"{line}:{col + start}"
            directive = _directive(piece, line, col + start, alone, known, found, where)
            if directive is not None:
                found.by_line.setdefault(line, []).append(directive)
    return found


def _directive(
    piece: str,
    line: int,
    col: int,
    alone: bool,
    known: frozenset[str],
    found: Suppressions,
    where: str,
) -> Directive | None:
    noqa = _NOQA.fullmatch(piece)
    if noqa is not None:
        rest = noqa["rest"]
        if not rest.startswith(":"):
            if rest and not rest[0].isspace():  # "noqa123", "noqa-AF101"
                found.warnings.append(f"{where}: `{piece}` is not a `# noqa` comment; ignored")
                return None
            return Directive(line, col, piece, None, True)
        codes = _codes(rest[1:], strict=False)
        if codes is None:
            found.warnings.append(
                f"{where}: `{piece}`: expected codes such as AF101 after `noqa:`; it "
                "suppresses nothing"
            )
            return None
        return Directive(line, col, piece, codes, True)
    directive = _DIRECTIVE.fullmatch(piece)
    if directive is None:  # the directive word is missing
        found.warnings.append(f"{where}: `{piece}`: expected `ignore` or `skip-file`")
        return None
    word, rest = directive["word"].lower(), directive["rest"]
    if word == "skip-file" and not rest.strip():
        if alone:
            found.skip_file = True
        else:
            found.warnings.append(
                f"{where}: `{piece}` must be on a line of its own to skip the file; ignored"
            )
        return None
    if word != "ignore":
        found.warnings.append(
            f"{where}: `{piece}`: unknown directive (expected `ignore`, `ignore[CODES]` or "
            "`skip-file`); ignored"
        )
        return None
    if not rest.strip():
        return Directive(line, col, piece, None, False)
    bracket = re.fullmatch(r"\[(?P<inside>[^\]]*)\](?P<after>.*)", rest)
    codes = _codes(bracket["inside"], strict=True) if bracket is not None else None
    if bracket is None or codes is None or bracket["after"].strip():
        found.warnings.append(
            f"{where}: `{piece}`: expected `ignore` or `ignore[AF101, ...]` (codes in capitals, "
            "no space before the bracket); it suppresses nothing"
        )
        return None
    unknown = sorted(code for code in codes if code not in known)
    if unknown:
        found.warnings.append(
            f"{where}: `{piece}`: unknown rule code{'s' * (len(unknown) > 1)} "
            f"{', '.join(unknown)} (see `asyncfix rules`)"
        )
        codes = codes - set(unknown)
        if not codes:
            return None
    return Directive(line, col, piece, codes, False)


def _codes(text: str, strict: bool) -> frozenset[str] | None:
    """The codes of ``AF101, AF201`` / ``AF101 AF201`` (None: not such a list). Not
    ``strict`` (``noqa:``), words after the codes are a remark (``# noqa: E501 long URL``)."""
    match = _CODES.match(text)
    if match is None:
        return None
    after = text[match.end() :]
    if after.strip(" ,") and (strict or not after[:1].isspace()):
        return None
    return frozenset(_CODE.findall(match["codes"]))
