"""Resource bounds: time and peak memory of asyncfix on pathological and very large files.

Each case is one ``asyncfix --no-cache --jobs 1`` run in a fresh process on one generated
file (or a corpus file), measured with ``os.wait4`` (wall time, peak resident memory); a
case over its bound fails the script:

- a class of 3,000 async methods, each racing on shared state and awaiting the next one
  (the race analysis across methods);
- a class of 2,000 lost updates, each with its lock fix (``--diff --unsafe-fixes``);
- a 20 MB module (30,000 functions, an antipattern in every tenth);
- a 1 MB line (a list literal) before a coroutine with a blocking call;
- with ``--corpus DIR``: the five largest files of the benchmark corpus, ``--diff``.

    python scripts/stress.py [--corpus DIR] [--only NAME]

Prints one row per case: seconds, peak MB, the bound, and the run's last line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def racing_methods(count: int = 3000) -> str:
    head = "import asyncio\n\n\nclass Big:\n    def __init__(self):\n"
    head += "        self.x = 0\n        self.items = {}\n\n"
    return head + "".join(
        f"    async def m{i}(self, k):\n        v = self.x\n"
        f"        await self.m{(i + 1) % count}(k)\n        self.x = v + {i}\n"
        f"        if k not in self.items:\n            await asyncio.sleep(0)\n"
        f"            self.items[k] = {i}\n\n"
        for i in range(count)
    )


def lock_fixes(count: int = 2000) -> str:
    head = "import asyncio\n\n\nclass Big:\n    def __init__(self):\n"
    head += "".join(f"        self.x{i} = 0\n" for i in range(count)) + "\n"
    return head + "".join(
        f"    async def m{i}(self):\n        v = self.x{i}\n        await asyncio.sleep(0)\n"
        f"        self.x{i} = v + 1\n\n"
        for i in range(count)
    )


def big_module(megabytes: int = 20) -> str:
    parts = ["import asyncio\nimport time\n\n\n"]
    size, number = 0, 0
    while size < megabytes * 1_000_000:
        body = "    time.sleep(0.01)\n" if number % 10 == 0 else "    await asyncio.sleep(0)\n"
        text = (
            f"async def handler_{number}(request, data=None):\n"
            f'    """Handle request {number}: parse it, check it, answer it."""\n'
            f"    values = [item * {number} for item in range(10) if item % 3]\n"
            f"{body}"
            f"    return {{'id': {number}, 'values': values, 'data': data}}\n\n\n"
        )
        parts.append(text)
        size += len(text)
        number += 1
    return "".join(parts)


def long_line(megabytes: int = 1) -> str:
    items = "1, " * (megabytes * 1_000_000 // 3)
    return f"DATA = [{items}]\n\nimport time\n\n\nasync def f():\n    time.sleep(1)\n"


@dataclass
class Case:
    name: str
    make: Callable[[], str] | Path
    args: tuple[str, ...]
    seconds: float
    megabytes: float


CASES = [
    Case("3,000 racing methods", racing_methods, (), 30, 400),
    Case("2,000 lock fixes", lock_fixes, ("--diff", "--unsafe-fixes"), 45, 600),
    Case("20 MB module", big_module, ("--diff",), 120, 4000),
    Case("1 MB line", long_line, ("--diff",), 30, 1000),
]


def measure(path: Path, args: tuple[str, ...]) -> tuple[float, float, str]:
    """Wall seconds, peak resident megabytes and the last line of one run on ``path``."""
    command = [sys.executable, "-m", "asyncfix", "--no-cache", "--jobs", "1", *args, str(path)]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    peak = usage.ru_maxrss / 1024  # kilobytes on Linux
    return seconds, peak, (lines[-1] if lines else f"exit {process.returncode}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="also the five largest files under DIR")
    parser.add_argument("--only", help="the cases whose name holds this")
    args = parser.parse_args()
    cases = list(CASES)
    if args.corpus is not None:
        largest = sorted(args.corpus.rglob("*.py"), key=lambda p: p.stat().st_size)[-5:]
        for path in largest:
            cases.append(Case(f"corpus {path.name}", path, ("--diff",), 60, 1500))
    failed = 0
    with tempfile.TemporaryDirectory() as work:
        for case in cases:
            if args.only and args.only not in case.name:
                continue
            if isinstance(case.make, Path):
                path = case.make
            else:
                path = Path(work) / "case.py"
                path.write_text(case.make(), encoding="utf-8")
            size = path.stat().st_size / 1_000_000
            seconds, peak, last = measure(path, case.args)
            over = seconds > case.seconds or peak > case.megabytes
            failed += over
            print(
                f"{case.name:<34} {size:6.1f} MB  {seconds:7.1f} s (bound {case.seconds:.0f})  "
                f"{peak:7.0f} MB peak (bound {case.megabytes:.0f})  "
                f"{'OVER ' if over else ''}{last[:90]}",
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
