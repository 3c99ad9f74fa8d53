"""Recall on a peer's own test suite: what asyncfix finds of the positives the peer's fixtures
mark, and what it reports on their negatives.

Reads the fixtures from a snapshot of the peer's repository (a git directory, bare or not:
``git clone --bare https://github.com/facebook/infer``) at a pinned commit, copies them to a
temporary folder with the layout they need (packages for cross-module cases), runs
``asyncfix check --output-format json`` there, and scores per function.

- ``infer``: ``infer/tests/codetoanalyze/python/pulse/async_*.py`` (and the packages
  ``dir1``/``dir2`` they import). A function whose name has a ``bad`` part (``sleep_bad``,
  ``bad1``, ``FN_..._bad``) is a positive, one with an ``ok``/``good`` part a negative; a
  finding counts for the innermost function that holds its line. Infer's own reports
  (``issues.exp``) are shown beside: which positives Infer finds and which negatives it
  reports.

Usage: python scripts/peer_recall.py infer SNAPSHOT [--commit SHA] [--list]
  e.g. python scripts/peer_recall.py infer /work/.mirror/facebook+infer/repo --list
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

#: the commits the figures in the notes were measured at
PINNED = {"infer": "be1b9a8dc1b0f8d2aac29136f5812d117da5fcd9"}
INFER_DIR = "infer/tests/codetoanalyze/python/pulse"
#: the rules a peer's positives are about
CODES = {"infer": "AF101,AF102,AF301,AF302"}

_BAD = re.compile(r"(^|_)bad\d*($|_)", re.IGNORECASE)
_OK = re.compile(r"(^|_)(ok|good)\d*($|_)", re.IGNORECASE)


@dataclass
class Case:
    """One function of a fixture file."""

    file: str
    name: str  # "f", "C::m" (Infer's spelling of a method)
    start: int
    end: int
    expected: str  # "bad" | "ok" | ""
    found: list[str] = field(default_factory=list)  # asyncfix's findings in it
    peer: bool = False  # the peer reports it


def _git(snapshot: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", f"--git-dir={_git_dir(snapshot)}", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _git_dir(snapshot: Path) -> Path:
    return snapshot / ".git" if (snapshot / ".git").exists() else snapshot


def _extract(snapshot: Path, commit: str, prefix: str, into: Path, keep: re.Pattern[str]) -> None:
    """The files under ``prefix`` whose path (relative to it) matches ``keep``, at ``commit``."""
    for path in _git(snapshot, "ls-tree", "-r", "--name-only", commit, prefix).splitlines():
        relative = path[len(prefix) + 1 :]
        if not keep.search(relative):
            continue
        target = into / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_git(snapshot, "show", f"{commit}:{path}"), "utf-8")


def _cases(root: Path, files: list[Path]) -> list[Case]:
    cases: list[Case] = []
    for file in files:
        tree = ast.parse(file.read_text("utf-8"))
        _functions(tree.body, "", file.relative_to(root).as_posix(), cases)
    return cases


def _functions(body: list[ast.stmt], owner: str, relative: str, cases: list[Case]) -> None:
    for node in body:
        if isinstance(node, ast.ClassDef):
            _functions(node.body, f"{node.name}::", relative, cases)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = node.name
            expected = "bad" if _BAD.search(name) else "ok" if _OK.search(name) else ""
            end = node.end_lineno or node.lineno
            cases.append(Case(relative, owner + name, node.lineno, end, expected))


def _asyncfix(root: Path, codes: str) -> list[tuple[str, int, str, str]]:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "asyncfix", "check", "--select", codes),
            *("--output-format", "json", "--no-cache", "."),
        ],
        cwd=root,
        capture_output=True,
        text=True,
    )
    found = []
    for file in json.loads(done.stdout)["files"]:
        for finding in file["findings"]:
            line = finding["location"]["line"]
            found.append((file["path"], line, finding["code"], finding["message"]))
    return found


def _holder(cases: list[Case], path: str, line: int) -> Case | None:
    """The innermost case holding the line (a nested function's lines are its own)."""
    holding = [c for c in cases if c.file == path and c.start <= line <= c.end]
    return min(holding, key=lambda c: c.end - c.start) if holding else None


def infer(snapshot: Path, commit: str, show: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="asyncfix-infer-") as folder:
        root = Path(folder)
        _extract(snapshot, commit, INFER_DIR, root, re.compile(r"^(async_.*\.py|dir[12]/.*\.py)$"))
        expected = _git(snapshot, "show", f"{commit}:{INFER_DIR}/issues.exp")
        fixtures = sorted(root.glob("async_*.py"))
        cases = _cases(root, fixtures)
        reported = {
            (parts[0], parts[1].split(".", 1)[1])
            for line in expected.splitlines()
            if (parts := [p.strip() for p in line.split(",")])[0].startswith("async_")
        }
        for case in cases:
            case.peer = (case.file, case.name) in reported
        module_level: list[tuple[str, int, str, str]] = []
        for path, line, code, message in _asyncfix(root, CODES["infer"]):
            holder = _holder(cases, path, line)
            if holder is None:
                module_level.append((path, line, code, message))
            else:
                holder.found.append(f"{code} line {line}: {message}")
    bad = [c for c in cases if c.expected == "bad"]
    ok = [c for c in cases if c.expected == "ok"]
    print(f"Infer ({commit[:12]}): {len(bad)} bad functions, {len(ok)} ok functions")
    print(f"  asyncfix finds {sum(bool(c.found) for c in bad)} of the bad functions", end="")
    print(f" (Infer: {sum(c.peer for c in bad)});", end="")
    flagged, infer_flagged = sum(bool(c.found) for c in ok), sum(c.peer for c in ok)
    print(f" flags {flagged} ok functions (Infer: {infer_flagged})")
    infer_module = sum(1 for file, name in reported if name == "__module_body__")
    print(f"  module level: asyncfix {len(module_level)} findings, Infer {infer_module} reports")
    if show:
        for title, chosen in (
            ("bad functions asyncfix misses", [c for c in bad if not c.found]),
            ("ok functions asyncfix flags", [c for c in ok if c.found]),
            ("unmarked functions asyncfix flags", [c for c in cases if not c.expected and c.found]),
        ):
            print(f"\n{title}:")
            for case in chosen:
                peer = " (Infer finds it)" if case.peer else ""
                print(f"  {case.file}:{case.start} {case.name}{peer}")
                for found in case.found:
                    print(f"      {found}")
        print("\nmodule-level findings:")
        for path, line, code, message in module_level:
            print(f"  {path}:{line} {code} {message}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("peer", choices=sorted(PINNED))
    parser.add_argument("snapshot", type=Path, help="the peer's repository (a git directory)")
    parser.add_argument("--commit", help="another commit than the pinned one")
    parser.add_argument("--list", action="store_true", help="list every disagreement")
    args = parser.parse_args(argv)
    commit = args.commit or PINNED[args.peer]
    return infer(args.snapshot, commit, args.list)


if __name__ == "__main__":
    sys.exit(main())
