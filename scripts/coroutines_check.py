"""Does the stdlib model know coroutine callees as the rules' LibCST code does?

For every call in every Python file under DIR (with the project index of DIR, as a run
builds it): is its callee known to be a coroutine function, by
``asyncfix.analysis.coroutines`` (stdlib ``ast``) and by ``codemods.coroutines.coroutine_callee``
(LibCST, what AF101/AF102 use)? Prints how many both, only LibCST (what the stdlib model does
not know yet: receivers of known classes, async callback parameters) and only the stdlib model
(which must be none: it may know less, never more). Exit status 1 when any is stdlib-only.

    python scripts/coroutines_check.py DIR [--show N]
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import libcst as cst

from asyncfix import engine
from asyncfix.analysis.classes import Classes
from asyncfix.analysis.coroutines import Coroutines, SourceText
from asyncfix.analysis.scopes import Scopes
from asyncfix.analysis.values import Values
from asyncfix.codemods.base import SUPPRESS, Rule
from asyncfix.codemods.coroutines import coroutine_callee
from asyncfix.config import Config
from asyncfix.engine import process as process_module
from asyncfix.files import SourceError, decode
from asyncfix.model import Safety, Severity
from scripts.scopes_check import char_span


class _Probe(Rule):
    """Reports every call whose callee the LibCST code knows to be a coroutine function."""

    code = "AF000"
    name = "probe"
    summary = why = kind = "coroutine callees, as the LibCST code knows them"
    fix_safety = Safety.NONE
    severity = Severity.LOW
    needs_index = True
    needles = ()

    def visit_Call(self, node: cst.Call) -> None:
        if coroutine_callee(self.ctx, node) is not None:
            self.report(node, "coroutine callee")


def check(path: Path, counts: Counter[str], shown: list[str], show: int) -> None:
    try:
        text = decode(path.read_bytes()).text
        tree = ast.parse(text)
    except (OSError, SourceError, SyntaxError, ValueError, RecursionError):
        counts["files skipped (do not parse)"] += 1
        return
    project = process_module._project_for(str(path), [_Probe])
    try:
        analysis = engine.analyse(text, [_Probe], (3, 10), project)
    except (cst.ParserSyntaxError, engine.TooDeep, RecursionError):
        counts["files skipped (do not parse)"] += 1
        return
    counts["files"] += 1
    theirs = set()
    for hit in analysis.hits:
        span = analysis.span(hit)
        theirs.add((span.line, span.col - 1, span.end_line, span.end_col - 1))  # 1-based
    lines = text.splitlines()
    scopes = Scopes(tree)
    classes = Classes(tree, scopes)
    model = Coroutines(scopes, classes, Values(scopes, classes, project), SourceText(text), project)
    ours = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            counts["calls"] += 1
            if model.callee(node) is not None:
                ours.add(char_span(lines, node))
    # a suppression comment hides the LibCST side's report: those lines are not compared
    hidden = {w for w in ours - theirs if SUPPRESS.search(lines[w[0] - 1])}
    counts["suppressed by a comment (not compared)"] += len(hidden)
    ours -= hidden
    counts["both"] += len(ours & theirs)
    counts["only LibCST (not known to the stdlib model yet)"] += len(theirs - ours)
    counts["ONLY STDLIB"] += len(ours - theirs)
    for where in sorted(ours - theirs)[: max(0, show - len(shown))]:
        shown.append(f"{path}:{where[0]}:{where[1]}: only the stdlib model says coroutine")
    for where in sorted(theirs - ours)[: max(0, show - len(shown))]:
        shown.append(f"{path}:{where[0]}:{where[1]}: only LibCST says coroutine")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--show", type=int, default=20)
    args = parser.parse_args()
    config = Config(root=args.directory.absolute())
    files, _ = engine.plan([args.directory], config)
    process_module._set_index(engine.build_index(files, config, None))
    counts: Counter[str] = Counter()
    shown: list[str] = []
    for path in files:
        check(path, counts, shown, args.show)
    for key, value in sorted(counts.items()):
        print(f"{key}: {value}")
    for line in shown:
        print(line)
    sys.exit(1 if counts["ONLY STDLIB"] else 0)


if __name__ == "__main__":
    main()
