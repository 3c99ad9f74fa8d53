"""Interrupts on real code: ``asyncfix --write --unsafe-fixes --jobs 2`` over a copy of a
corpus, stopped by SIGINT, SIGTERM or SIGKILL at a random moment, then run again.

The fixed tree is made once, by a run nobody stops. Each round copies the corpus, starts the
run, sends the signal (SIGINT to the whole process group, as Ctrl-C does; SIGTERM and SIGKILL
to the main process) at a random moment -- in turns, anywhere in the uninterrupted run's
time, or within 50 ms of the first file written (the writes come last, and are quick) --
and checks:

- the exit status (130, 143, or -9) and, for SIGINT and SIGTERM, no traceback and a last
  line saying which files are what;
- every file is byte for byte its original or its fixed version, none is half written;
- no temporary file is left (after SIGKILL: none once the next run has written);
- the next run (the cache as the stopped run left it) ends with the uninterrupted run's
  status, and the tree is then exactly the fixed tree.

    python scripts/interrupts.py CORPUS_DIR [--rounds 12] [--seed 0]

Prints one line per round and the totals; exits 1 if any round broke a property.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND = [sys.executable, "-m", "asyncfix", "--write", "--unsafe-fixes", "--jobs", "2", "."]
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -9}


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the tree but the cache's, by relative path."""
    files = {}
    for path in root.rglob("*"):
        if ".asyncfix_cache" in path.parts or path.is_symlink() or not path.is_file():
            continue
        files[str(path.relative_to(root))] = path.read_bytes()
    return files


def run(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(COMMAND, cwd=tree, capture_output=True, text=True, timeout=3600)


def signals_as_by_default() -> None:
    """In the child: SIGINT and SIGTERM do what they do by default, even when this runs
    where they are ignored (a shell's background job ignores SIGINT, and a program started
    from it inherits that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def interrupted(
    tree: Path, how: signal.Signals, after: float, watched: list[Path] | None
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Start a run and signal it: ``after`` seconds from its start, or, with ``watched``
    (files the run will fix), ``after`` seconds after the first of them is written."""
    mtimes = {path: path.stat().st_mtime_ns for path in watched or ()}
    start = time.perf_counter()
    process = subprocess.Popen(
        COMMAND, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=signals_as_by_default,
    )  # fmt: skip
    if watched:
        while process.poll() is None and all(
            path.stat().st_mtime_ns == mtime for path, mtime in mtimes.items()
        ):
            time.sleep(0.002)
    time.sleep(after)
    sent = time.perf_counter() - start
    with contextlib.suppress(ProcessLookupError):  # it may have ended already
        if how == signal.SIGINT:
            os.killpg(process.pid, how)
        else:
            os.kill(process.pid, how)
    out, err = process.communicate(timeout=600)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # a worker a SIGKILL left behind
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), sent


def check_round(
    tree: Path, how: signal.Signals, done: subprocess.CompletedProcess[str],
    original: dict[str, bytes], fixed: dict[str, bytes], status: int,
) -> tuple[list[str], int]:  # fmt: skip
    """The broken properties of one round, and how many files the stopped run had fixed."""
    problems = []
    if done.returncode not in (0, STATUS[how]):
        problems.append(f"exit status {done.returncode}: {done.stderr[-400:]}")
    if how != signal.SIGKILL and done.returncode != 0:
        if "Traceback" in done.stderr:
            problems.append(f"a traceback: {done.stderr[-800:]}")
        last = done.stderr.strip().splitlines()[-1:] or [""]
        if "the files written so far are wholly fixed" not in last[0]:
            problems.append(f"last line: {last[0]!r}")
    now = snapshot(tree)
    extra = sorted(set(now) - set(original))
    if how == signal.SIGKILL:  # a temporary file is allowed until the next run writes
        extra = [name for name in extra if not name.endswith(".asyncfix")]
    if extra:
        problems.append(f"files left behind: {extra[:5]}")
    written = 0
    for name, before in original.items():
        after = now.get(name)
        if after == fixed[name] and after != before:
            written += 1
        elif after != before:
            problems.append(f"{name}: neither its original nor its fix")
    again = run(tree)
    if again.returncode != status:
        problems.append(f"next run: status {again.returncode}: {again.stderr[-400:]}")
    final = snapshot(tree)
    if final != fixed:
        differ = sorted(set(final) ^ set(fixed)) or [
            name for name, data in final.items() if fixed.get(name) != data
        ]
        problems.append(f"after the next run the tree is not the fixed tree: {differ[:5]}")
    return problems, written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="asyncfix-interrupts-"))
    try:
        reference = work / "reference"
        shutil.copytree(args.corpus, reference, symlinks=True)
        original = snapshot(reference)
        start = time.perf_counter()
        first = run(reference)
        took = time.perf_counter() - start
        if first.returncode not in (0, 1, 2) or "Traceback" in first.stderr:
            print(f"the uninterrupted run failed ({first.returncode}): {first.stderr[-800:]}")
            return 1
        shutil.rmtree(reference / ".asyncfix_cache", ignore_errors=True)
        fixed = snapshot(reference)
        changed = sum(fixed[n] != original[n] for n in original)
        print(f"{len(original)} files, {changed} fixed by an uninterrupted run in {took:.1f} s")
        failed = 0
        to_fix = sorted(name for name in original if fixed[name] != original[name])
        for number in range(args.rounds):
            how = SIGNALS[number % len(SIGNALS)]
            tree = work / f"round-{number}"
            shutil.copytree(args.corpus, tree, symlinks=True)
            if number // len(SIGNALS) % 2 and to_fix:  # while it writes: a few ms in
                when = "writing"
                done, sent = interrupted(
                    tree, how, rng.uniform(0, 0.05), [tree / name for name in to_fix]
                )
            else:  # at any moment
                when = "anywhere"
                done, sent = interrupted(tree, how, rng.uniform(0.05, 0.95) * took, None)
            problems, written = check_round(tree, how, done, original, fixed, first.returncode)
            failed += bool(problems)
            state = "ok" if not problems else "FAILED"
            print(
                f"round {number}: {how.name} at {sent:.2f} s ({when}), status {done.returncode}, "
                f"{written} of {changed} files fixed when stopped: {state}"
            )
            for problem in problems:
                print(f"  {problem}")
            shutil.rmtree(tree)
        print(f"{args.rounds} rounds, {failed} failed")
        return 1 if failed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
