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

- ``flake8-async``: ``tests/eval_files/*.py``, the lines marked ``# ASYNCnnn: ...`` (any
  ``_asyncio`` variant too) of the families asyncfix has a rule for; files marked
  ``NOASYNCIO`` or ``ASYNCIO_NO_ERROR`` are skipped (they are not about asyncio).
- ``ruff``: ``crates/ruff_linter/resources/test/fixtures/flake8_async/*.py`` and
  ``ruff/RUF006.py``, the lines their snapshots (``*.snap``) hold a diagnostic for.

For the marker-based peers a line is found when asyncfix reports that family's code on it;
asyncfix's findings of those codes on unmarked lines are listed as extra. Their fixtures
often call ``subprocess.run()`` without importing ``subprocess``; asyncfix resolves names
through imports, so each file is scored as written and with the imports it lacks added at
its end (line numbers do not move).

- ``mypy``: the cases of ``test-data/unit/*.test`` that expect ``Value of type
  "Coroutine[...]" must be used`` (``unused-coroutine``), each case's program a file of its
  own; the lines it expects the error on (an ``# E:`` comment, or ``_program.py:N`` in its
  ``[out]``).
- ``pyright``: ``packages/pyright-internal/src/tests/samples/unusedCoroutine*.py``, the lines
  after a ``# This should generate an error`` comment.

For the type checkers a line is found when asyncfix reports AF101 or AF102 on it.

Usage: python scripts/peer_recall.py {infer,flake8-async,ruff,mypy,pyright} SNAPSHOT
  [--commit SHA] [--list]
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
PINNED = {
    "infer": "be1b9a8dc1b0f8d2aac29136f5812d117da5fcd9",
    "flake8-async": "c695f61dd9e237375c197f20f3a3eb41885b4eca",
    "ruff": "fca5c7cf2cd2f8338f18b9485f936b8e9f07bd0b",
    "mypy": "8b3e7d8b9f63543374e53d1c389ea443dd65bc46",
    "pyright": "93a6550b2acc61d930edf54ad4621638cdc70777",
}
#: family -> (the peers' codes, asyncfix's code)
FAMILIES = {
    "http": (("ASYNC210", "ASYNC211", "ASYNC212"), "AF202"),
    "subprocess": (("ASYNC220", "ASYNC221", "ASYNC222"), "AF204"),
    "file I/O": (("ASYNC230", "ASYNC231", "ASYNC232", "ASYNC240"), "AF203"),
    "sleep": (("ASYNC251",), "AF201"),
    "input": (("ASYNC250",), "AF206"),
    "dangling task": (("ASYNC300", "RUF006"), "AF301"),
}
#: modules the peers' fixtures call without importing them
MODULES = (
    "asyncio",
    "httpx",
    "httpx2",
    "io",
    "os",
    "pathlib",
    "requests",
    "shutil",
    "subprocess",
    "time",
    "urllib",
    "urllib3",
)
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
    if not done.stdout:
        raise SystemExit(f"asyncfix gave no report: {done.stderr.strip()}")
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


#: Infer's naming convention for coroutine functions it cannot see (its tests import
#: ``async_fun`` from a module that does not exist), as a project would declare it
INFER_CONVENTION = ("**.async_*", "**._async_*")


def _infer_findings(
    root: Path, cases: list[Case]
) -> tuple[dict[int, list[str]], list[tuple[str, int, str, str]]]:
    """asyncfix's findings per case (by index) and at module level."""
    by_case: dict[int, list[str]] = {}
    module_level: list[tuple[str, int, str, str]] = []
    for path, line, code, message in _asyncfix(root, CODES["infer"]):
        holder = _holder(cases, path, line)
        if holder is None:
            module_level.append((path, line, code, message))
        else:
            by_case.setdefault(cases.index(holder), []).append(f"{code} line {line}: {message}")
    return by_case, module_level


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
        by_case, module_level = _infer_findings(root, cases)
        declared = ", ".join(f'"{p}"' for p in INFER_CONVENTION)
        (root / "pyproject.toml").write_text(
            f"[tool.asyncfix]\ncoroutine-functions = [{declared}]\n", "utf-8"
        )
        conventional, _ = _infer_findings(root, cases)
    for number, case in enumerate(cases):
        case.found = by_case.get(number, [])
    bad = [c for c in cases if c.expected == "bad"]
    ok = [c for c in cases if c.expected == "ok"]
    print(f"Infer ({commit[:12]}): {len(bad)} bad functions, {len(ok)} ok functions")
    print(f"  asyncfix finds {sum(bool(c.found) for c in bad)} of the bad functions", end="")
    print(f" (Infer: {sum(c.peer for c in bad)});", end="")
    flagged, infer_flagged = sum(bool(c.found) for c in ok), sum(c.peer for c in ok)
    print(f" flags {flagged} ok functions (Infer: {infer_flagged})")
    infer_module = sum(1 for file, name in reported if name == "__module_body__")
    print(f"  module level: asyncfix {len(module_level)} findings, Infer {infer_module} reports")
    found = {n for n, c in enumerate(cases) if c.expected == "bad" and conventional.get(n)}
    wrong = {n for n, c in enumerate(cases) if c.expected == "ok" and conventional.get(n)}
    print(f"  with Infer's naming convention declared (coroutine-functions = [{declared}]):")
    print(f"    asyncfix finds {len(found)} of the bad functions; flags {len(wrong)} ok functions")
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
                for seen in case.found:
                    print(f"      {seen}")
        print("\nmodule-level findings:")
        for path, line, code, message in module_level:
            print(f"  {path}:{line} {code} {message}")
        print("\nwith the naming convention declared, what changes:")
        for number, case in enumerate(cases):
            now = conventional.get(number, [])
            if bool(now) != bool(case.found):
                change = "now found" if now else "no longer found"
                print(f"  {case.file}:{case.start} {case.name} [{case.expected or '-'}] {change}")
                for seen in now:
                    print(f"      {seen}")
    return 0


# -- peers that mark lines -------------------------------------------------------------------

_MARK = re.compile(r"#\s*(ASYNC\d{3})(?:_asyncio)?\s*:")
_SNAP_CODE = re.compile(r"^(ASYNC\d{3}|RUF\d{3}) ")
_SNAP_WHERE = re.compile(r"-->\s+(\S+?):(\d+):\d+")


def _family(code: str) -> str | None:
    return next((name for name, (codes, _) in FAMILIES.items() if code in codes), None)


def _with_imports(text: str) -> str:
    """The text with an import of each of ``MODULES`` it uses and does not import, at its
    end (a module-level import binds the name for every function; no line moves)."""
    tree = ast.parse(text)
    imported = {
        alias.asname or alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    missing = [m for m in MODULES if m in used and m not in imported]
    if "urllib" in missing:
        missing[missing.index("urllib")] = "urllib.request"
    lines = "".join(f"import {module}\n" for module in missing)
    if "Optional" in used and "Optional" not in imported:
        lines += "from typing import Optional\n"
    return text if not lines else text.rstrip("\n") + "\n\n" + lines


def _score(
    name: str,
    commit: str,
    root: Path,
    marked: dict[str, set[tuple[int, str]]],
    show: bool,
) -> None:
    """Per family: marked lines, those asyncfix finds, and its extra findings."""
    from asyncfix.codemods import RULES

    known = {rule.code for rule in RULES}
    codes = ",".join(sorted({code for _, code in FAMILIES.values()} & known))
    print(f"{name} ({commit[:12]}), {len(marked)} files")
    results: dict[str, list[tuple[str, int, str]]] = {}
    for variant in ("as written", "with imports"):
        if variant == "with imports":
            for path in marked:
                file = root / path
                file.write_text(_with_imports(file.read_text("utf-8")), "utf-8")
        found: dict[tuple[str, int], set[str]] = {}
        messages: dict[tuple[str, int, str], str] = {}
        for path, line, code, message in _asyncfix(root, codes):
            found.setdefault((path, line), set()).add(code)
            messages[(path, line, code)] = message
        print(f"  {variant}:")
        for family, (_, ours) in FAMILIES.items():
            positives = [
                (path, line)
                for path, lines in marked.items()
                for line, peer in lines
                if _family(peer) == family
            ]
            hit = [p for p in positives if ours in found.get(p, set())]
            marked_lines = {(path, line) for path, lines in marked.items() for line, _ in lines}
            extra = [
                (path, line, messages[(path, line, ours)])
                for (path, line), got in sorted(found.items())
                if ours in got and (path, line) not in marked_lines
            ]
            if not positives and not extra:
                continue
            share = f"{100 * len(hit) / len(positives):.0f}%" if positives else "-"
            print(
                f"    {family:13} {len(hit):3} of {len(positives):3} ({share:>4}), "
                f"{len(extra)} extra"
            )
            missed = sorted(set(positives) - set(hit))
            results[f"{variant}/{family}"] = [(p, n, "missed") for p, n in missed] + [
                (p, n, f"extra: {m}") for p, n, m in extra
            ]
    if show:
        for key, items in results.items():
            if not items:
                continue
            print(f"\n{key}:")
            for path, line, what in items:
                text = (root / path).read_text("utf-8").splitlines()[line - 1].strip()[:90]
                print(f"  {path}:{line} {what}\n      {text}")


def flake8_async(snapshot: Path, commit: str, show: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="asyncfix-flake8-async-") as folder:
        root = Path(folder)
        _extract(snapshot, commit, "tests/eval_files", root, re.compile(r"^[^/]*\.py$"))
        marked: dict[str, set[tuple[int, str]]] = {}
        for file in sorted(root.glob("*.py")):
            text = file.read_text("utf-8")
            if "# NOASYNCIO" in text or "# ASYNCIO_NO_ERROR" in text:
                file.unlink()
                continue
            lines = {
                (number, code)
                for number, line in enumerate(text.splitlines(), 1)
                for code in _MARK.findall(line)
                if _family(code) is not None
            }
            if lines:
                marked[file.name] = lines
            else:
                file.unlink()
        _score("flake8-async", commit, root, marked, show)
    return 0


def ruff(snapshot: Path, commit: str, show: bool) -> int:
    base = "crates/ruff_linter"
    with tempfile.TemporaryDirectory(prefix="asyncfix-ruff-") as folder:
        root = Path(folder)
        fixtures = f"{base}/resources/test/fixtures"
        _extract(snapshot, commit, f"{fixtures}/flake8_async", root, re.compile(r"^[^/]*\.py$"))
        _extract(snapshot, commit, f"{fixtures}/ruff", root, re.compile(r"^RUF006\.py$"))
        marked: dict[str, set[tuple[int, str]]] = {}
        snapshots = [
            path
            for folder_name in ("flake8_async", "ruff")
            for path in _git(
                snapshot,
                "ls-tree",
                "--name-only",
                commit,
                f"{base}/src/rules/{folder_name}/snapshots/",
            ).splitlines()
            if path.endswith(".snap") and "preview" not in path
        ]
        for path in snapshots:
            code = None
            for line in _git(snapshot, "show", f"{commit}:{path}").splitlines():
                head = _SNAP_CODE.match(line)
                if head:
                    code = head.group(1)
                    continue
                where = _SNAP_WHERE.search(line)
                if where and code and _family(code) is not None:
                    if (root / where.group(1)).exists():
                        marked.setdefault(where.group(1), set()).add((int(where.group(2)), code))
                    code = None
        for file in root.glob("*.py"):
            if file.name not in marked:
                file.unlink()
        _score("ruff", commit, root, marked, show)
    return 0


_MYPY_CASE = re.compile(r"^\[case ([^\]]+)\]")
_MYPY_COROUTINE = 'Value of type "Coroutine['
_MYPY_OUT = re.compile(r"^_program\.py:(\d+): error: Value of type \"Coroutine\[")


def _mypy_cases(text: str) -> dict[str, tuple[list[str], set[int]]]:
    """Each case that expects an unused coroutine: its program's lines and the expected lines."""
    cases: dict[str, tuple[list[str], set[int]]] = {}
    name: str | None = None
    program: list[str] = []
    expected: set[int] = set()
    section = ""

    def close() -> None:
        if name is not None and expected:
            cases[name] = (program, set(expected))

    for line in text.splitlines():
        head = _MYPY_CASE.match(line)
        if head:
            close()
            name, program, expected, section = head.group(1), [], set(), "program"
            continue
        if name is None:
            continue
        if line.startswith("[") and line.rstrip().endswith("]"):
            section = line.strip()
            continue
        if section == "program":
            program.append(line)
            if "# E:" in line and _MYPY_COROUTINE in line:
                expected.add(len(program))
        elif section == "[out]":
            found = _MYPY_OUT.match(line)
            if found:
                expected.add(int(found.group(1)))
    close()
    return cases


def _type_checker(
    name: str, commit: str, root: Path, marked: dict[str, set[int]], show: bool
) -> None:
    positives = {(path, line) for path, lines in marked.items() for line in lines}
    hit: set[tuple[str, int]] = set()
    extra: list[tuple[str, int, str]] = []
    for path, line, code, message in _asyncfix(root, "AF101,AF102"):
        # a coroutine bound to a local is reported where it is made, naming the line that
        # drops it ("... and is dropped (line 13)"): the checkers report that line
        lines = {line, *(int(n) for n in re.findall(r"\(line (\d+)\)", message))}
        matched = {(path, at) for at in lines} & positives
        hit |= matched
        if not matched:
            extra.append((path, line, f"{code} {message}"))
    print(f"{name} ({commit[:12]}), {len(marked)} files")
    print(f"  unused coroutine: {len(hit)} of {len(positives)}, {len(extra)} extra")
    if show:
        for path, line in sorted(positives - hit):
            text = (root / path).read_text("utf-8").splitlines()[line - 1].strip()[:90]
            print(f"  missed {path}:{line}\n      {text}")
        for path, line, what in extra:
            print(f"  extra {path}:{line} {what[:120]}")


def mypy(snapshot: Path, commit: str, show: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="asyncfix-mypy-") as folder:
        root = Path(folder)
        marked: dict[str, set[int]] = {}
        listing = _git(snapshot, "ls-tree", "-r", "--name-only", commit, "test-data/unit")
        for path in listing.splitlines():
            if not path.endswith(".test"):
                continue
            text = _git(snapshot, "show", f"{commit}:{path}")
            if _MYPY_COROUTINE not in text:
                continue
            for case, (program, lines) in _mypy_cases(text).items():
                file = f"{Path(path).stem}__{re.sub(r'[^A-Za-z0-9_]', '_', case)}.py"
                (root / file).write_text("\n".join(program) + "\n", "utf-8")
                marked[file] = lines
        _type_checker("mypy", commit, root, marked, show)
    return 0


def pyright(snapshot: Path, commit: str, show: bool) -> int:
    samples = "packages/pyright-internal/src/tests/samples"
    with tempfile.TemporaryDirectory(prefix="asyncfix-pyright-") as folder:
        root = Path(folder)
        _extract(snapshot, commit, samples, root, re.compile(r"^unusedCoroutine\d*\.py$"))
        marked: dict[str, set[int]] = {}
        for file in sorted(root.glob("*.py")):
            lines = file.read_text("utf-8").splitlines()
            marked[file.name] = {
                number + 1
                for number, line in enumerate(lines, 1)
                if "should generate an error" in line and number < len(lines)
            }
        _type_checker("pyright", commit, root, marked, show)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("peer", choices=sorted(PINNED))
    parser.add_argument("snapshot", type=Path, help="the peer's repository (a git directory)")
    parser.add_argument("--commit", help="another commit than the pinned one")
    parser.add_argument("--list", action="store_true", help="list every disagreement")
    args = parser.parse_args(argv)
    commit = args.commit or PINNED[args.peer]
    runs = {"infer": infer, "flake8-async": flake8_async, "ruff": ruff}
    run = {**runs, "mypy": mypy, "pyright": pyright}[args.peer]
    return run(args.snapshot, commit, args.list)


if __name__ == "__main__":
    sys.exit(main())
