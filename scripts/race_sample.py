"""The race findings on the corpus, read: a sample drawn at random, shown with their code,
and the verdicts a person recorded for them.

Checks each corpus folder (``ha``, ``libs``: ``../shared/corpus/fetch.sh``) in a scratch
copy, takes the findings of the race rules (AF401-AF406), and per code draws at most
``--per-code`` of them by a hash of the seed and each finding's key (all of them when there
are fewer; a change that removes or adds findings leaves the rest of the draw as it was): the
sample issue 18 asks to read. Each is looked up in ``scripts/corpus_verdicts.toml`` (keyed by
corpus, path, code and the stripped text of the finding's line, as realproj's verdicts);
``--show`` prints the unread ones with the source of the function that holds them, and a
``[[finding]]`` entry to fill in. The summary counts the verdicts per code and the false
positives among those read; the exit status is 1 while a drawn finding is unread.

Usage: python scripts/race_sample.py [--corpus DIR] [--per-code 40] [--seed 18] [--show]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
VERDICTS = HERE / "corpus_verdicts.toml"
FETCH = HERE.parent.parent / "shared" / "corpus" / "fetch.sh"
RACE_CODES = ("AF401", "AF402", "AF403", "AF404", "AF405", "AF406")
KINDS = ("real bug", "harmless", "deliberate", "false positive")

Key = tuple[str, str, str, str]


def _corpus(directory: Path | None) -> Path:
    if directory is not None:
        return directory
    done = subprocess.run(["bash", str(FETCH)], check=True, capture_output=True, text=True)
    return Path(done.stdout.strip().splitlines()[-1])


def _findings(folder: Path) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="asyncfix-races-") as scratch:
        copy = Path(scratch) / folder.name
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(".asyncfix_cache"))
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "asyncfix",
                "--no-cache",
                "--output-format",
                "json",
                "--select",
                ",".join(RACE_CODES),
                ".",
            ],
            cwd=copy,
            capture_output=True,
            text=True,
        )
    data = json.loads(done.stdout)
    return [
        {**finding, "path": entry["path"]}
        for entry in data["files"]
        for finding in entry["findings"]
    ]


def _verdicts() -> dict[Key, dict[str, str]]:
    if not VERDICTS.exists():
        return {}
    found: dict[Key, dict[str, str]] = {}
    for entry in tomllib.loads(VERDICTS.read_text(encoding="utf-8")).get("finding", []):
        if entry.get("verdict") not in KINDS:
            raise SystemExit(f"{VERDICTS}: {entry}: verdict must be one of {KINDS}")
        found[(entry["corpus"], entry["path"], entry["code"], entry["line"])] = entry
    return found


def _function_source(path: Path, line: int) -> str:
    """The innermost function holding ``line``, numbered (the file's lines around it else)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    start, end = max(1, line - 15), min(len(lines), line + 15)
    try:
        tree = ast.parse(text)
    except SyntaxError:
        tree = None
    if tree is not None:
        holders = [
            node
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.lineno <= line <= (node.end_lineno or node.lineno)
        ]
        if holders:
            inner = min(holders, key=lambda node: (node.end_lineno or 0) - node.lineno)
            start, end = inner.lineno, min(inner.end_lineno or inner.lineno, inner.lineno + 80)
    return "\n".join(f"{n:5d}  {lines[n - 1]}" for n in range(start, end + 1))


def _rank(seed: int, corpus: Path, item: tuple[str, dict[str, Any]]) -> str:
    """A finding's place in the draw: stable while the finding's line stays the same."""
    name, finding = item
    line = _line_text(corpus / name / finding["path"], finding["location"]["line"])
    key = f"{seed}\0{name}\0{finding['path']}\0{finding['code']}\0{line}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _line_text(path: Path, line: int) -> str:
    return path.read_text(encoding="utf-8").splitlines()[line - 1].strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--per-code", type=int, default=40)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--show", action="store_true", help="print the unread ones")
    args = parser.parse_args()
    corpus = _corpus(args.corpus)
    verdicts = _verdicts()
    drawn: list[tuple[str, dict[str, Any]]] = []
    every: Counter[str] = Counter()
    for name in ("ha", "libs"):
        for finding in _findings(corpus / name):
            every[finding["code"]] += 1
            drawn.append((name, finding))
    sample: list[tuple[str, dict[str, Any]]] = []
    for code in RACE_CODES:
        found = [item for item in drawn if item[1]["code"] == code]
        # each finding's place in the draw is a hash of the seed and its key: a change to
        # asyncfix that removes or adds findings leaves the rest of the sample as it was
        found.sort(key=lambda item: _rank(args.seed, corpus, item))
        sample += found[: args.per_code]
    tally: dict[str, Counter[str]] = {}
    unread = 0
    for name, finding in sample:
        path = corpus / name / finding["path"]
        line = finding["location"]["line"]
        text = _line_text(path, line)
        entry = verdicts.get((name, finding["path"], finding["code"], text))
        verdict = entry["verdict"] if entry else "UNREAD"
        tally.setdefault(finding["code"], Counter())[verdict] += 1
        if entry is None:
            unread += 1
            if args.show:
                print(f"\n=== {name}/{finding['path']}:{line} {finding['code']}")
                print(f"    {finding['message']}")
                print(_function_source(path, line))
                print("[[finding]]")
                print(f'corpus = "{name}"\npath = "{finding["path"]}"')
                print(f'code = "{finding["code"]}"\nline = {json.dumps(text)}')
                print(f'verdict = ""  # {" | ".join(KINDS)}\nnote = ""')
    print("\ncode   found  drawn  " + "  ".join(f"{kind:>14}" for kind in (*KINDS, "UNREAD")))
    for code in RACE_CODES:
        counts = tally.get(code, Counter())
        row = "  ".join(f"{counts[kind]:>14}" for kind in (*KINDS, "UNREAD"))
        print(f"{code}  {every[code]:>5}  {sum(counts.values()):>5}  {row}")
    read = sum(sum(c.values()) - c["UNREAD"] for c in tally.values())
    false = sum(c["false positive"] for c in tally.values())
    share = f"{false / read:.0%}" if read else "-"
    print(f"\n{read} read, {false} false positives ({share} of those read), {unread} unread")
    sys.exit(1 if unread else 0)


if __name__ == "__main__":
    main()
