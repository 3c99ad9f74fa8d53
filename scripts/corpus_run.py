"""Benchmark and safety run over the pinned corpus (../shared/corpus/fetch.sh).

Copies a corpus folder to a scratch directory, then:
  1. check      -- findings per code, wall time
  2. --write --unsafe-fixes -- files changed, errors, wall time
  3. every changed file re-parses with LibCST (and compiles where this Python can)
  4. a second --write run changes nothing

Usage: python scripts/corpus_run.py CORPUS_DIR [--jobs N]
  e.g. python scripts/corpus_run.py "$(bash ../shared/corpus/fetch.sh)/ha"
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import libcst as cst


def _asyncfix(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "asyncfix", *args], cwd=cwd, capture_output=True, text=True
    )
    return done, time.perf_counter() - start


def _digests(root: Path) -> dict[Path, str]:
    return {
        path: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(root.rglob("*.py"))
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--jobs", type=int, default=None)
    options = parser.parse_args()
    jobs = ["--jobs", str(options.jobs)] if options.jobs else []
    with tempfile.TemporaryDirectory(prefix="asyncfix-corpus-") as scratch:
        work = Path(scratch) / options.corpus.name
        shutil.copytree(options.corpus, work)
        before = _digests(work)

        checked, check_time = _asyncfix(["--output-format", "json", *jobs, "."], work)
        report = json.loads(checked.stdout)
        summary = report["summary"]
        files = summary["files_checked"]
        print(f"files: {files}  check: {check_time:.1f}s  exit {checked.returncode}")
        print(f"findings: {summary['findings']}  by code: {summary['by_code']}")
        fixable = Counter(
            f["code"]
            for file in report["files"]
            for f in file["findings"]
            if f["fix"]["safety"] != "none"
        )
        print(f"with a fix (safe or unsafe): {dict(sorted(fixable.items()))}")

        written, write_time = _asyncfix(["--write", "--unsafe-fixes", "-q", *jobs, "."], work)
        after = _digests(work)
        changed = [path for path in after if after[path] != before.get(path)]
        errors = [line for line in written.stderr.splitlines() if "error" in line]
        print(f"write: {write_time:.1f}s  exit {written.returncode}  files changed: {len(changed)}")
        print(f"errors: {len(errors)}")
        for line in errors[:20]:
            print(f"  {line}")

        reparse_failures = compile_failures = compile_skipped = 0
        for path in changed:
            text = path.read_text(encoding="utf-8")
            try:
                cst.parse_module(text)
            except cst.ParserSyntaxError:
                reparse_failures += 1
                print(f"  does not re-parse: {path.relative_to(work)}")
                continue
            try:
                compile(text, str(path), "exec", dont_inherit=True)
            except SyntaxError:
                original = (options.corpus / path.relative_to(work)).read_text(encoding="utf-8")
                try:
                    compile(original, str(path), "exec", dont_inherit=True)
                except SyntaxError:
                    compile_skipped += 1  # newer syntax than this Python: not a failure
                else:
                    compile_failures += 1
                    print(f"  does not compile: {path.relative_to(work)}")
        print(
            f"changed files: re-parse failures {reparse_failures}, compile failures "
            f"{compile_failures} (compile not possible here: {compile_skipped})"
        )

        second, second_time = _asyncfix(["--write", "--unsafe-fixes", "-q", *jobs, "."], work)
        again = _digests(work)
        moved = [path for path in again if again[path] != after.get(path)]
        print(
            f"second run: {second_time:.1f}s  exit {second.returncode}  files changed: {len(moved)}"
        )
        ok = not reparse_failures and not compile_failures and not moved and not errors
        print("RESULT:", "ok" if ok else "FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
