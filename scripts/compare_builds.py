"""What a change to asyncfix changes in its output: two builds run on the same code.

Runs the asyncfix of ``BASE`` (a source tree, e.g. a ``git worktree`` of an earlier commit)
and the one this script belongs to on each ``CORPUS`` folder, each in a scratch copy of its
own (the caches are written there, never in the corpus), with ``--no-cache``:

- ``--output-format json``: the findings, compared as (path, code, line, column, message,
  fix safety, evidence);
- ``--diff --unsafe-fixes``: the fixes, compared file by file.

It prints every finding only one build reports and every file whose diff differs, and exits
1 when anything differs. Each build's own cache is then exercised too: the check runs a
second time with the cache, and its findings must be the first run's.

Usage: python scripts/compare_builds.py BASE CORPUS [CORPUS ...] [--jobs N]
  e.g. git worktree add /tmp/base HEAD~3
       python scripts/compare_builds.py /tmp/base ~/.cache/asyncfix-corpus/ha
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

Finding = tuple[str, str, int, int, str, str, tuple[str, ...]]


def _asyncfix(tree: Path, args: list[str], cwd: Path) -> tuple[str, float]:
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "asyncfix", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=environment,
    )
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1, 2):
        raise SystemExit(f"asyncfix {' '.join(args)} ({tree}) failed:\n{done.stderr[-3000:]}")
    return done.stdout, seconds


def _findings(output: str) -> set[Finding]:
    data: dict[str, Any] = json.loads(output)
    found: set[Finding] = set()
    for entry in data["files"]:
        for item in entry["findings"]:
            where = item["location"]
            found.add(
                (
                    entry["path"],
                    item["code"],
                    where["line"],
                    where["column"],
                    item["message"],
                    item["fix"]["safety"],
                    tuple(item["evidence"]),
                )
            )
    return found


def _diffs(output: str) -> dict[str, str]:
    """Each file's part of a unified diff."""
    parts: dict[str, str] = {}
    current = None
    for line in output.splitlines(keepends=True):
        if line.startswith("--- "):
            current = line[4:].strip().removeprefix("a/")
            parts[current] = ""
        if current is not None:
            parts[current] += line
    return parts


def _run(tree: Path, corpus: Path, scratch: Path, jobs: list[str]) -> dict[str, Any]:
    copy = scratch / corpus.name
    shutil.copytree(corpus, copy, ignore=shutil.ignore_patterns(".asyncfix_cache"))
    check, seconds = _asyncfix(tree, [*jobs, "--no-cache", "--output-format", "json", "."], copy)
    diff, _ = _asyncfix(tree, [*jobs, "--no-cache", "--diff", "--unsafe-fixes", "."], copy)
    cold, _ = _asyncfix(tree, [*jobs, "--output-format", "json", "."], copy)
    warm, _ = _asyncfix(tree, [*jobs, "--output-format", "json", "."], copy)
    shutil.rmtree(copy)
    return {
        "findings": _findings(check),
        "diffs": _diffs(diff),
        "seconds": seconds,
        "cache_agrees": _findings(cold) == _findings(warm) == _findings(check),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", type=Path, help="the source tree of the other build")
    parser.add_argument("corpus", type=Path, nargs="+")
    parser.add_argument("--jobs", type=int)
    args = parser.parse_args()
    jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    differs = False
    for corpus in args.corpus:
        with tempfile.TemporaryDirectory(prefix="asyncfix-compare-") as scratch:
            base = _run(args.base.resolve(), corpus.resolve(), Path(scratch), jobs)
            this = _run(ROOT, corpus.resolve(), Path(scratch), jobs)
        print(f"== {corpus}: {len(base['findings'])} findings before, {len(this['findings'])} now")
        print(f"   check: {base['seconds']:.1f} s before, {this['seconds']:.1f} s now")
        for name, result in (("before", base), ("now", this)):
            if not result["cache_agrees"]:
                differs = True
                print(f"   the cache changed the findings ({name})")
        for label, only in (
            ("only before", base["findings"] - this["findings"]),
            ("only now", this["findings"] - base["findings"]),
        ):
            for finding in sorted(only):
                differs = True
                path, code, line, column, message, safety, evidence = finding
                print(f"   {label}: {path}:{line}:{column}: {code} [{safety}] {message}")
                for item in evidence:
                    print(f"       - {item}")
        for path in sorted(set(base["diffs"]) | set(this["diffs"])):
            before, now = base["diffs"].get(path), this["diffs"].get(path)
            if before != now:
                differs = True
                print(f"   diff differs: {path}")
                for line in (now or "(no change now)\n").splitlines()[:60]:
                    print(f"       {line}")
    sys.exit(1 if differs else 0)


if __name__ == "__main__":
    main()
