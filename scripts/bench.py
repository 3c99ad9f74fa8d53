"""How fast asyncfix is, against the floor of any LibCST tool and against its peers.

In one run, with the same number of processes throughout, each figure the median of
``--runs`` runs (at least 3):

- the floors: ``libcst.parse_module`` on every Home Assistant file, nothing else; the same
  with the garbage collector set as asyncfix sets it while it parses (for comparison); and
  the stdlib's ``ast.parse`` on every file of both corpora, the floor a check on the stdlib
  tree is measured against;
- asyncfix on Home Assistant: a cold check and a cold ``--diff`` (no caches), a warm check
  (nothing changed), a check after a comment is added to a module that hundreds of files
  import (its facts do not change), and one after a function is added to a module a few
  files import (its facts change: those files are checked again);
- cold checks of a quarter and a half of Home Assistant's files, to show how cost grows;
- peers: flake8-async (``--select ASYNC``) on the six libraries; fixit's built-in async rule
  and ruff (``--select ASYNC,RUF006``) on both corpora; installed into a virtualenv of their
  own, in the cache directory;
- the peak memory of any one asyncfix process.

It prints a table with the ratios and writes it as JSON (``--json``). The corpus is fetched
with ``../shared/corpus/fetch.sh`` when it is not there, and copied to a scratch directory:
the benchmark edits files and makes caches, and never in the corpus itself.

asyncfix runs from byte-compiled modules, as an installed package does (pip compiles them
when it installs; a development checkout with ``PYTHONDONTWRITEBYTECODE`` set would compile
every module again at each start): the script compiles them first.

Usage: python scripts/bench.py [--corpus DIR] [--jobs N] [--runs 3] [--json FILE]
                               [--skip-peers] [--only GROUP,...]
  groups: floors, cold, warm (nothing changed, and the two edits), scale, peers
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FETCH = ROOT.parent / "shared" / "corpus" / "fetch.sh"
GROUPS = ("floors", "cold", "warm", "scale", "peers")
PEERS = ["flake8==7.5.0", "flake8-async==26.8.1", "fixit==2.2.1", "ruff==0.17.6"]
#: imported by hundreds of Home Assistant modules
WIDELY_IMPORTED = "homeassistant/helpers/entity.py"
#: imported by a few
NARROWLY_IMPORTED = "homeassistant/components/hue/bridge.py"

#: runs a command and prints, as the last line of stderr, its wall time (from its start to
#: its exit, in microseconds) and the peak resident memory of its largest process (KB): the
#: command alone, not this measuring interpreter's own start and exit
_MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = round((time.perf_counter() - start) * 1e6)
sys.stderr.write(done.stderr.decode(errors="replace")[-2000:])
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stderr.write(f"\\n@@wall={wall} peak={peak} rc={done.returncode}\\n")
"""


def _run(command: list[str], cwd: Path) -> tuple[float, int, int]:
    """Wall time, peak memory (KB) of the largest process, exit status."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    last = done.stderr.strip().splitlines()[-1]
    wall, peak, rc = (int(part.split("=")[1]) for part in last.lstrip("@").split())
    if rc not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({rc}):\n{done.stderr[-2000:]}")
    return wall / 1e6, peak, rc


def _command(command: list[str], cwd: Path) -> Callable[[], tuple[float, int, int]]:
    return lambda: _run(command, cwd)


def _median(
    runs: int,
    measure: Callable[[], tuple[float, int, int]],
    before: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    times, peaks = [], []
    for _ in range(runs):
        before()
        seconds, peak, _ = measure()
        times.append(seconds)
        peaks.append(peak)
    return {
        "median_s": round(statistics.median(times), 2),
        "runs_s": [round(t, 2) for t in times],
        "peak_mb": round(max(peaks) / 1024),
    }


# -- the floor -----------------------------------------------------------------------------


def _parse_chunk(paths: list[str]) -> int:
    import libcst

    for path in paths:
        with contextlib.suppress(Exception):  # a file LibCST cannot parse costs what it costs
            libcst.parse_module(Path(path).read_bytes())
    return len(paths)


def _ast_chunk(paths: list[str]) -> int:
    """The stdlib floor: ``ast.parse`` of every file (what a check on the stdlib tree pays)."""
    import ast

    for path in paths:
        with contextlib.suppress(Exception):
            ast.parse(Path(path).read_bytes())
    return len(paths)


def _tuned() -> None:
    """The garbage collector as asyncfix sets it while it parses (``engine.process._tune_gc``)."""
    from asyncfix.engine.process import _tune_gc

    _tune_gc()


def _floor(
    files: list[str], jobs: int, tuned: bool = False, stdlib: bool = False
) -> tuple[float, int, int]:
    """``tuned``: with the collector as asyncfix sets it, which the plain floor does not do
    (a figure to compare with, not the target's floor). ``stdlib``: ``ast.parse`` instead of
    LibCST's parser."""
    chunks = [files[i : i + 64] for i in range(0, len(files), 64)]
    parse = _ast_chunk if stdlib else _parse_chunk
    start = time.perf_counter()
    if jobs <= 1:
        previous = gc.get_threshold()
        if tuned:
            _tuned()
        try:
            for chunk in chunks:
                parse(chunk)
        finally:
            gc.set_threshold(*previous)
            gc.unfreeze()
    else:
        initializer = _tuned if tuned else None
        with ProcessPoolExecutor(max_workers=jobs, initializer=initializer) as pool:
            list(pool.map(parse, chunks))
    return time.perf_counter() - start, 0, 0


# -- the run ------------------------------------------------------------------------------


def _corpus(directory: Path | None) -> Path:
    if directory is not None and (directory / "ha").is_dir() and (directory / "libs").is_dir():
        return directory
    if not FETCH.exists():
        raise SystemExit(f"no corpus in {directory} and no {FETCH} to fetch it")
    done = subprocess.run(
        ["bash", str(FETCH), *([str(directory)] if directory else [])],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(done.stdout.strip().splitlines()[-1])


def _tools(cache: Path) -> Path:
    """A virtualenv with the peers, made once."""
    venv = cache / "peers"
    python = venv / "bin" / "python"
    marker = venv / "installed.txt"
    if not marker.exists() or marker.read_text() != "\n".join(PEERS):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS], check=True)
        marker.write_text("\n".join(PEERS))
    return venv / "bin"


def _forget(root: Path) -> None:
    """Remove every asyncfix cache under ``root`` (each project of the libraries has one)."""
    for cache in list(root.rglob(".asyncfix_cache")):
        shutil.rmtree(cache, ignore_errors=True)


def _python_files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*.py"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="the corpus (default: fetch.sh's)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "benchmark.json")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument(
        "--only",
        type=lambda text: set(text.split(",")),
        default=set(GROUPS),
        metavar="GROUP,...",
        help=f"measure these groups only ({', '.join(GROUPS)}; default: all)",
    )
    parser.add_argument(
        "--readme",
        action="store_true",
        help="only put the table of --json into README.md (between the bench markers)",
    )
    parser.add_argument(
        "--fixit-sample",
        type=int,
        default=16,
        metavar="K",
        help="run fixit on every K-th Home Assistant file (default 16; 1: all)",
    )
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "asyncfix-bench")
    args = parser.parse_args()
    if args.readme:
        update_readme(json.loads(args.json.read_text(encoding="utf-8")))
        return
    if args.runs < 3:
        parser.error("--runs: medians need at least 3 runs")
    if not args.only <= set(GROUPS):
        parser.error(f"--only: groups are {', '.join(GROUPS)}")
    if args.skip_peers:
        args.only.discard("peers")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "asyncfix")], check=True)
    corpus = _corpus(args.corpus)
    args.cache.mkdir(parents=True, exist_ok=True)
    jobs = args.jobs
    asyncfix = [sys.executable, "-m", "asyncfix", "-q", "--jobs", str(jobs)]
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "jobs": jobs,
        "runs": args.runs,
        "date": time.strftime("%Y-%m-%d"),
        "measures": {},
    }
    measures: dict[str, Any] = results["measures"]

    def record(name: str, value: dict[str, Any], files: int) -> None:
        value["files"] = files
        measures[name] = value
        print(f"{name:<44} {value['median_s']:>8.2f} s  {value['runs_s']}", flush=True)

    with tempfile.TemporaryDirectory(prefix="asyncfix-bench-") as scratch:
        ha = Path(scratch) / "ha"
        libs = Path(scratch) / "libs"
        shutil.copytree(corpus / "ha", ha, ignore=shutil.ignore_patterns(".asyncfix_cache"))
        shutil.copytree(corpus / "libs", libs, ignore=shutil.ignore_patterns(".asyncfix_cache"))
        ha_files = _python_files(ha)
        lib_files = _python_files(libs)

        def cold() -> None:
            _forget(ha)

        absolute = [str(ha / name) for name in ha_files]
        lib_absolute = [str(libs / name) for name in lib_files]
        if "floors" in args.only:
            record(
                "libcst parse only (floor), HA",
                _median(args.runs, lambda: _floor(absolute, jobs)),
                len(ha_files),
            )
            record(
                "libcst parse only, collector tuned as asyncfix's, HA",
                _median(args.runs, lambda: _floor(absolute, jobs, tuned=True)),
                len(ha_files),
            )
            for name, paths in (("HA", absolute), ("libs", lib_absolute)):
                record(
                    f"stdlib ast.parse only (floor), {name}",
                    _median(args.runs, functools.partial(_floor, paths, jobs, stdlib=True)),
                    len(paths),
                )
        if "cold" in args.only:
            record(
                "asyncfix cold check, HA",
                _median(args.runs, lambda: _run([*asyncfix, "."], ha), cold),
                len(ha_files),
            )
            record(
                "asyncfix cold check, libs",
                _median(args.runs, lambda: _run([*asyncfix, "."], libs), lambda: _forget(libs)),
                len(lib_files),
            )
            record(
                "asyncfix cold --diff, HA",
                _median(args.runs, lambda: _run([*asyncfix, "--diff", "."], ha), cold),
                len(ha_files),
            )
        if "warm" in args.only:
            _run([*asyncfix, "."], ha)  # warm the caches
            record(
                "asyncfix warm check (nothing changed), HA",
                _median(args.runs, lambda: _run([*asyncfix, "."], ha)),
                len(ha_files),
            )
            edits = iter(range(1_000_000))

            def comment(path: str) -> Callable[[], None]:
                def edit() -> None:
                    with open(ha / path, "a", encoding="utf-8") as handle:
                        handle.write(f"# benchmark edit {next(edits)}\n")

                return edit

            def new_function(path: str) -> Callable[[], None]:
                def edit() -> None:
                    with open(ha / path, "a", encoding="utf-8") as handle:
                        handle.write(f"\n\ndef _benchmark_edit_{next(edits)}():\n    return 1\n")

                return edit

            record(
                f"asyncfix warm, comment added to {Path(WIDELY_IMPORTED).name}",
                _median(args.runs, lambda: _run([*asyncfix, "."], ha), comment(WIDELY_IMPORTED)),
                len(ha_files),
            )
            record(
                "asyncfix warm, function added to hue/bridge.py",
                _median(
                    args.runs, lambda: _run([*asyncfix, "."], ha), new_function(NARROWLY_IMPORTED)
                ),
                len(ha_files),
            )
        if "scale" in args.only:
            for share, label in ((4, "a quarter of"), (2, "half of")):
                subset = ha_files[::share]
                record(
                    f"asyncfix cold check, {label} HA",
                    _median(args.runs, _command([*asyncfix, *subset], ha), cold),
                    len(subset),
                )
        if "peers" in args.only:
            tools = _tools(args.cache)
            record(
                "flake8-async (--select ASYNC), libs",
                _median(
                    args.runs,
                    lambda: _run(
                        [str(tools / "flake8"), "--select", "ASYNC", "-j", str(jobs), "."], libs
                    ),
                ),
                len(lib_files),
            )
            fixit = [str(tools / "fixit"), "--rules", "fixit.rules:UseAsyncSleepInAsyncDef", "lint"]
            ruff = [str(tools / "ruff"), "check", "--isolated", "--no-cache", "--exit-zero"]
            ruff += ["--select", "ASYNC,RUF006", "--preview", "-q"]
            # fixit takes about 150 ms a file: on all of Home Assistant, three runs would take
            # an hour, so it runs on every --fixit-sample'th file there
            sample = ha_files[:: args.fixit_sample]
            record(
                "fixit UseAsyncSleepInAsyncDef, HA sample",
                _median(args.runs, _command([*fixit, *sample], ha)),
                len(sample),
            )
            record(
                "fixit UseAsyncSleepInAsyncDef, libs",
                _median(args.runs, _command([*fixit, "."], libs)),
                len(lib_files),
            )
            for name, root, files in (("HA", ha, ha_files), ("libs", libs, lib_files)):
                record(
                    f"ruff --select ASYNC,RUF006, {name}",
                    _median(args.runs, _command([*ruff, "."], root)),
                    len(files),
                )

    def ratio(a: str, b: str) -> float | None:
        """a / b, per file (the fixit sample has fewer files than the rest)."""
        if a in measures and b in measures and measures[b]["median_s"]:
            per_file_a = float(measures[a]["median_s"]) / int(measures[a]["files"])
            per_file_b = float(measures[b]["median_s"]) / int(measures[b]["files"])
            return round(per_file_a / per_file_b, 2)
        return None

    results["ratios"] = {
        "cold check / parse floor (target <= 1.5)": ratio(
            "asyncfix cold check, HA", "libcst parse only (floor), HA"
        ),
        "cold check / parse floor with asyncfix's collector settings": ratio(
            "asyncfix cold check, HA", "libcst parse only, collector tuned as asyncfix's, HA"
        ),
        "cold check / stdlib ast.parse floor, HA (target <= 2.0)": ratio(
            "asyncfix cold check, HA", "stdlib ast.parse only (floor), HA"
        ),
        "cold check / stdlib ast.parse floor, libs (target <= 2.0)": ratio(
            "asyncfix cold check, libs", "stdlib ast.parse only (floor), libs"
        ),
        "flake8-async / asyncfix cold, libs (target >= 100)": ratio(
            "flake8-async (--select ASYNC), libs", "asyncfix cold check, libs"
        ),
        "asyncfix cold / ruff, HA": ratio(
            "asyncfix cold check, HA", "ruff --select ASYNC,RUF006, HA"
        ),
        "fixit / asyncfix cold, HA (per file)": ratio(
            "fixit UseAsyncSleepInAsyncDef, HA sample", "asyncfix cold check, HA"
        ),
        "fixit / asyncfix cold, libs": ratio(
            "fixit UseAsyncSleepInAsyncDef, libs", "asyncfix cold check, libs"
        ),
    }
    per_thousand = {
        name: round(value["median_s"] / value["files"] * 1000, 2)
        for name, value in measures.items()
        if name.startswith("asyncfix cold check") and "HA" in name
    }
    results["seconds_per_1000_files"] = per_thousand
    print()
    print(markdown(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.json}")


def update_readme(results: dict[str, Any]) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- bench:start -->\n", "<!-- bench:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}{markdown(results)}\n{end}{tail}", encoding="utf-8")


def markdown(results: dict[str, Any]) -> str:
    """The table for the README."""
    lines = [
        f"{results['date']}, {results['machine']['cpus']} cores, Python "
        f"{results['machine']['python']}, `--jobs {results['jobs']}`, median of "
        f"{results['runs']} runs",
        "",
        "| what | files | median | peak memory |",
        "|---|---:|---:|---:|",
    ]
    for name, value in results["measures"].items():
        memory = f"{value['peak_mb']} MB" if value["peak_mb"] else ""
        lines.append(f"| {name} | {value['files']:,} | {value['median_s']:.2f} s | {memory} |")
    lines += ["", "| ratio | value |", "|---|---:|"]
    for name, value in results["ratios"].items():
        lines.append(f"| {name} | {'' if value is None else f'{value}x'} |")
    lines += ["", "| cold check, seconds per 1,000 files | |", "|---|---:|"]
    for name, value in results["seconds_per_1000_files"].items():
        lines.append(f"| {name} | {value} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
