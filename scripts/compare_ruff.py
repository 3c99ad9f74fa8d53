"""Side by side: asyncfix's blocking-call rules and ruff's ASYNC2xx on the same files.

Runs ``asyncfix --select AF20 --output-format json`` and ``ruff check --select ASYNC2
--preview --output-format json`` on a folder, matches findings by file and line, and prints
per code what both report, what only asyncfix reports and what only ruff reports, with
examples (file:line and the line's code) of each kind.

Usage: python scripts/compare_ruff.py CORPUS_DIR [--examples N]
  e.g. python scripts/compare_ruff.py ~/.cache/asyncfix-corpus/libs
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path


def _asyncfix(root: Path) -> dict[tuple[str, int], list[str]]:
    done = subprocess.run(
        [sys.executable, "-m", "asyncfix", "--select", "AF20", "--output-format", "json", "."],
        cwd=root,
        capture_output=True,
        text=True,
    )
    found: dict[tuple[str, int], list[str]] = defaultdict(list)
    for file in json.loads(done.stdout)["files"]:
        for finding in file["findings"]:
            found[(file["path"], finding["location"]["line"])].append(finding["code"])
    return found


def _ruff(root: Path) -> dict[tuple[str, int], list[str]]:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    done = subprocess.run(
        [
            *(ruff, "check", "--select", "ASYNC2", "--preview", "--isolated", "--no-cache"),
            *("--output-format", "json", "--exit-zero", "."),
        ],
        cwd=root,
        capture_output=True,
        text=True,
    )
    found: dict[tuple[str, int], list[str]] = defaultdict(list)
    for item in json.loads(done.stdout):
        path = Path(item["filename"]).relative_to(root.absolute()).as_posix()
        found[(path, item["location"]["row"])].append(item["code"])
    return found


def _line(root: Path, path: str, line: int) -> str:
    try:
        return (root / path).read_text("utf-8").splitlines()[line - 1].strip()[:100]
    except (OSError, IndexError, UnicodeDecodeError):
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--examples", type=int, default=3)
    args = parser.parse_args()
    root: Path = args.root.resolve()
    ours, theirs = _asyncfix(root), _ruff(root)
    both = sorted(set(ours) & set(theirs))
    only_ours = sorted(set(ours) - set(theirs))
    only_theirs = sorted(set(theirs) - set(ours))
    print(f"asyncfix AF20x: {sum(len(v) for v in ours.values())} findings on {len(ours)} lines")
    print(f"ruff ASYNC2xx:  {sum(len(v) for v in theirs.values())} findings on {len(theirs)} lines")
    print(f"same line: {len(both)}; only asyncfix: {len(only_ours)}; only ruff: {len(only_theirs)}")
    for title, keys, table in (
        ("both", both, None),
        ("only asyncfix", only_ours, ours),
        ("only ruff", only_theirs, theirs),
    ):
        kinds: Counter[str] = Counter()
        examples: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for key in keys:
            codes = (
                f"{'+'.join(sorted(set(ours[key])))} = {'+'.join(sorted(set(theirs[key])))}"
                if table is None
                else "+".join(sorted(set(table[key])))
            )
            kinds[codes] += 1
            examples[codes].append(key)
        print(f"\n## {title}")
        for codes, count in kinds.most_common():
            print(f"  {codes}: {count}")
            for path, line in examples[codes][: args.examples]:
                print(f"      {path}:{line}: {_line(root, path, line)}")


if __name__ == "__main__":
    main()
