"""Fuzz asyncfix with generated programs: no crash, no internal error, every fix verified.

Programs come from hypothesmith (from Python's grammar, and from LibCST's node types), with
asyncio antipatterns injected between their top-level statements: the program becomes the
body of an ``async def`` (or stays a module, with the antipatterns in a coroutine after it).
Each composed program that Python compiles is checked twice over:

- in process (each program): the analysis, fixes on (unsafe ones too), gives no internal
  error; the fixed text compiles; a second run over it changes nothing (idempotent);
- through the command line (in batches of files): ``asyncfix --diff --unsafe-fixes``
  applies with ``git apply`` and gives the very files ``asyncfix --write --unsafe-fixes``
  writes; a second ``--write`` changes nothing; no run prints a traceback.

    python scripts/fuzz.py [--programs N] [--seed S] [--batch B] [--out DIR]

Prints the counts (programs, composed, with findings, fixed, failures) and the time; each
failure is saved under ``--out`` (default ``.fuzz-failures``) with what went wrong. Exit
status 1 when anything failed. ``tests/test_fuzz.py`` runs a short round of it.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from asyncfix.codemods import CODES  # noqa: E402 (the checkout first on the path)
from asyncfix.engine import Task  # noqa: E402
from asyncfix.engine.process import process_alone  # noqa: E402
from asyncfix.model import FileResult  # noqa: E402

HEADER = "import asyncio\nimport subprocess\nimport time\n\nimport requests\n\n\n"
#: statements an async body may hold, each a bug some rule fixes or reports
ANTIPATTERNS = (
    "time.sleep(1)",
    "asyncio.create_task(session.refresh())",
    "asyncio.ensure_future(session.refresh())",
    "data = open(path).read()",
    "requests.get(url)",
    "subprocess.run(['ls'])",
    "loop = asyncio.get_event_loop()",
    "asyncio.run(session.get())",
    "await asyncio.gather(session.get(), return_exceptions=True)",
    "self.total += await session.get()",
    "value = self.total\nawait asyncio.sleep(0)\nself.total = value + 1",
    "try:\n    await session.get()\nexcept asyncio.CancelledError:\n    pass",
    "with open(path) as handle:\n    handle.read()",
    "refresh()",
)
HELPERS = "\n\nasync def refresh():\n    await asyncio.sleep(0)\n"


def _indent(text: str, prefix: str = "    ") -> str:
    return "".join(prefix + line if line.strip() else line for line in text.splitlines(True))


def _compiles(text: str) -> bool:
    """Python compiles ``text`` (its warnings about the code unsaid): a generated or mutated
    program that does not is no test of asyncfix."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, "<fuzz>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def compose(program: str, rng: random.Random) -> str | None:
    """``program`` with antipatterns injected, or None when it cannot hold them (it does not
    parse, or wrapped it no longer compiles)."""
    import ast

    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    lines = program.splitlines(True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n"
    starts = sorted({statement.lineno for statement in tree.body})
    picks = [rng.choice(ANTIPATTERNS) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.5 and "__future__" not in program:
        # the program as an async body, the antipatterns between its statements
        places = sorted(rng.choice([*starts, len(lines) + 1]) for _ in picks)
        body: list[str] = []
        for number, line in enumerate([*lines, ""], 1):
            while places and places[0] == number:
                places.pop(0)
                body.append(picks.pop() + "\n")
            body.append(line)
        text = (
            HEADER
            + "async def handler(self, session, path, url):\n"
            + (_indent("".join(body)) or "    pass\n")
            + HELPERS
        )
    else:
        text = (
            program
            + ("" if program.endswith("\n") or not program else "\n")
            + "\n\n"
            + HEADER
            + "async def handler(self, session, path, url):\n"
            + _indent("\n".join(picks) + "\n")
            + HELPERS
        )
    return text if _compiles(text) else None


@dataclass
class Outcome:
    findings: int = 0
    fixed: bool = False
    problems: list[str] = field(default_factory=list)


def check_text(text: str) -> Outcome:
    """Analyse and fix ``text`` in process (every rule, unsafe fixes too) and verify."""
    outcome = Outcome()
    result = _process(text)
    if result.internal_error:
        outcome.problems.append(f"internal error: {result.internal_error}")
    if result.error and "nested" not in result.error:
        outcome.problems.append(f"error on a program Python compiles: {result.error}")
    outcome.findings = len(result.findings)
    fixed = result.fixed
    if fixed is None or fixed == text:
        return outcome
    outcome.fixed = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(fixed, "<fixed>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        outcome.problems.append(f"the fixed text does not compile: {exc}")
        return outcome
    again = _process(fixed)
    if again.internal_error:
        outcome.problems.append(f"internal error on the fixed text: {again.internal_error}")
    if again.fixed is not None and again.fixed != fixed:
        outcome.problems.append("not idempotent: a second run changes the fixed text")
    return outcome


def _process(text: str) -> FileResult:
    path = "fuzzed.py"
    task = Task(
        path=path, display=path, codes=frozenset(CODES), unsafe=True, fix=True, target=(3, 10)
    )
    try:
        return process_alone(text, task)
    except Exception as exc:  # a crash is what this looks for
        return FileResult(path=path, display=path, internal_error=f"crashed: {exc!r}")


def check_batch(texts: Sequence[str | bytes], work: Path) -> list[tuple[int, str]]:
    """The command line on ``texts`` as files: ``--diff`` applies with ``git apply`` and
    gives what ``--write`` writes; a second ``--write`` changes nothing. Returns the
    problems, by the program's number in the batch (-1: the batch as a whole)."""
    problems: list[tuple[int, str]] = []
    trees = [work / "diffed", work / "written"]
    for tree in trees:
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir(parents=True)
        (tree / "pyproject.toml").write_text("")
        for number, text in enumerate(texts):
            data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
            (tree / f"p{number:04d}.py").write_bytes(data)
    diffed, written = trees
    subprocess.run(["git", "init", "-q", "."], cwd=diffed, check=True)
    command = [sys.executable, "-m", "asyncfix", "--no-cache", "--unsafe-fixes", "--jobs", "2"]
    diff = subprocess.run([*command, "--diff", "."], cwd=diffed, capture_output=True)
    write = subprocess.run([*command, "--write", "."], cwd=written, capture_output=True)
    for name, done in (("--diff", diff), ("--write", write)):
        if b"Traceback" in done.stderr:
            problems.append((-1, f"{name} printed a traceback: {done.stderr[-2000:]!r}"))
    applied = subprocess.run(
        ["git", "apply", "--whitespace=nowarn", "-"], cwd=diffed, input=diff.stdout,
        capture_output=True,
    )  # fmt: skip
    if applied.returncode != 0:  # which file's part: each part alone
        for number in range(len(texts)):
            alone = subprocess.run(
                ["git", "apply", "--check", f"--include=p{number:04d}.py", "-"], cwd=diffed,
                input=diff.stdout, capture_output=True,
            )  # fmt: skip
            if alone.returncode != 0:
                problems.append((number, f"git apply refused its diff: {alone.stderr[-500:]!r}"))
        return problems
    for number in range(len(texts)):
        name = f"p{number:04d}.py"
        if (diffed / name).read_bytes() != (written / name).read_bytes():
            problems.append((number, "--diff applied is not what --write wrote"))
    for number, text in enumerate(texts):
        if isinstance(text, bytes):
            kept = kept_bytes(text, (written / f"p{number:04d}.py").read_bytes())
            if kept is not None:
                problems.append((number, kept))
    second = subprocess.run([*command, "--write", "."], cwd=written, capture_output=True)
    if b" 0 written" not in second.stderr and b"written" in second.stderr:
        problems.append((-1, f"a second --write wrote again: {second.stderr[-500:]!r}"))
    return problems


def kept_bytes(before: bytes, after: bytes) -> str | None:
    """What a fix must keep of a file's bytes: its BOM, its encoding cookie, its line
    endings on every line it adds, and every line it did not change, byte for byte (a
    line-level diff sees only whole lines changed)."""
    if before.startswith(b"\xef\xbb\xbf") != after.startswith(b"\xef\xbb\xbf"):
        return "the BOM was not kept"
    for number, line in enumerate(before.splitlines()[:2]):
        if b"coding" in line and after.splitlines()[number : number + 1] != [line]:
            return "the encoding cookie line changed or moved"
    ending = b"\r\n" if before.count(b"\r\n") * 2 > before.count(b"\n") else b"\n"
    old = set(before.splitlines(True))
    for line in after.splitlines(True):
        if line in old or not line.endswith(b"\n"):
            continue
        if not line.endswith(ending) or (ending == b"\n" and line.endswith(b"\r\n")):
            return f"a line added with another line ending: {line!r}"
    return None


def mutate(raw: bytes, rng: random.Random) -> bytes | None:
    """A corpus file with antipatterns inserted at random statements of its async functions
    (at their indentation), then perhaps with CRLF line endings, a BOM, tabs for its
    indentation, or latin-1 with a coding cookie; None when it has no async function or
    the result does not compile."""
    import ast

    try:
        text = raw.decode("utf-8")
        tree = ast.parse(text)
    except (UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    places: list[tuple[int, int]] = []  # (line, column) of statements in async bodies
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncFunctionDef):
            for statement in node.body:
                places.append((statement.lineno, statement.col_offset))
    if not places:
        return None
    lines = text.splitlines(True)
    for line, column in sorted(rng.sample(places, min(len(places), rng.randint(1, 3))))[::-1]:
        indent = lines[line - 1][:column]
        if indent.strip():  # a statement after `;` or on its def's line: not here
            continue
        picked = rng.choice(ANTIPATTERNS).replace("await session", "await self.session")
        lines[line - 1 : line - 1] = [indent + part + "\n" for part in picked.split("\n")]
    text = "".join(lines)
    if "import asyncio" not in text:
        text = "import asyncio\nimport subprocess\nimport time\n" + text
    encoding = "utf-8"
    variant = rng.choice(["plain", "crlf", "bom", "tabs", "latin-1"])
    if variant == "tabs" and "\t" not in text:
        text = "".join(_tabbed(line) for line in text.splitlines(True))
    elif variant == "crlf":
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    elif variant == "latin-1":
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            variant = "plain"
        else:
            text = "# -*- coding: latin-1 -*-\n" + text
            encoding = "latin-1"
    if not _compiles(text):
        return None
    data = text.encode(encoding)
    return b"\xef\xbb\xbf" + data if variant == "bom" else data


def _tabbed(line: str) -> str:
    """Leading groups of four spaces as tabs."""
    stripped = line.lstrip(" ")
    depth = (len(line) - len(stripped)) // 4
    return "\t" * depth + line[depth * 4 :]


def corpus(
    folder: Path, count: int, seed: int, batch: int, out: Path, say: Callable[[str], None] = print
) -> Counter[str]:
    """``count`` mutated files of the corpus under ``folder``: the in-process checks, the
    command line's, and the bytes a fix must keep."""
    rng = random.Random(seed)
    files = sorted(folder.rglob("*.py"))
    rng.shuffle(files)
    found = _Round(batch, say, out)
    for path in files:
        if found.counts["mutated"] >= count:
            break
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        if len(raw) > 300_000:
            continue
        mutated = mutate(raw, rng)
        if mutated is None:
            continue
        found.counts["mutated"] += 1
        body = mutated.removeprefix(b"\xef\xbb\xbf")
        latin = body.startswith(b"# -*- coding: latin-1")
        found.check(body.decode("latin-1" if latin else "utf-8"), mutated, f"{path}: ")
    return found.finish()


class _Round:
    """A fuzz round's counts and failures, and the programs waiting for the command line's
    checks (run in batches: a process per program would be most of the time)."""

    def __init__(self, batch: int, say: Callable[[str], None], out: Path) -> None:
        self.batch = batch
        self.say = say
        self.out = out
        self.started = time.perf_counter()
        self.counts: Counter[str] = Counter()
        self.failures: list[tuple[bytes, str]] = []
        #: as given: a file's bytes (whose keeping is checked too), or a program's text
        self.pending: list[str | bytes] = []

    def check(self, text: str, data: str | bytes, where: str = "") -> None:
        outcome = check_text(text)
        self.counts["with findings"] += outcome.findings > 0
        self.counts["fixed"] += outcome.fixed
        for problem in outcome.problems:
            self.fail(data, where + problem)
        self.pending.append(data)
        if len(self.pending) >= self.batch:
            self.flush()
            self.say(f"{dict(self.counts)}, {time.perf_counter() - self.started:.0f} s")

    def fail(self, data: str | bytes, problem: str) -> None:
        self.counts["failures"] += 1
        raw = data if isinstance(data, bytes) else data.encode("utf-8", "replace")
        self.failures.append((raw, problem))
        _save(self.out, self.failures[-1:], len(self.failures) - 1)  # kept if the run stops

    def flush(self) -> None:
        with tempfile.TemporaryDirectory() as work:
            for number, problem in check_batch(self.pending, Path(work)):
                self.fail(self.pending[number] if number >= 0 else b"", problem)
        self.pending.clear()

    def finish(self) -> Counter[str]:
        if self.pending:
            self.flush()
        self.counts["seconds"] = round(time.perf_counter() - self.started)
        return self.counts


def _save(out: Path, failures: list[tuple[bytes, str]], first: int = 0) -> None:
    if failures:
        out.mkdir(parents=True, exist_ok=True)
        for number, (data, problem) in enumerate(failures, first):
            (out / f"failure{number:04d}.py").write_bytes(data)
            (out / f"failure{number:04d}.txt").write_text(problem + "\n", encoding="utf-8")


def programs(count: int, seed: int) -> list[str]:
    """``count`` programs from hypothesmith, half from the grammar, half from the nodes."""
    import hypothesmith
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as seeded
    from hypothesis import strategies as st

    found: list[str] = []
    strategy = st.one_of(hypothesmith.from_grammar(), hypothesmith.from_node())

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seeded(seed)
    @given(strategy)
    def collect(program: str) -> None:
        found.append(program)

    collect()
    return found[:count]


def run(
    count: int, seed: int, batch: int, out: Path, say: Callable[[str], None] = print
) -> Counter[str]:
    """``count`` generated programs with antipatterns injected: the in-process checks and
    the command line's."""
    rng = random.Random(seed)
    found = _Round(batch, say, out)
    generated = 0
    while generated < count:
        step = min(500, count - generated)
        for program in programs(step, seed + generated):
            generated += 1
            found.counts["programs"] += 1
            text = compose(program, rng)
            if text is not None:
                found.counts["composed"] += 1
                found.check(text, text)
    return found.finish()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=250, help="programs per command-line run")
    parser.add_argument("--out", type=Path, default=Path(".fuzz-failures"))
    parser.add_argument(
        "--corpus", type=Path, help="mutate this corpus's files instead (--programs of them)"
    )
    args = parser.parse_args()
    if args.corpus is not None:
        counts = corpus(args.corpus, args.programs, args.seed, args.batch, args.out)
    else:
        counts = run(args.programs, args.seed, args.batch, args.out)
    print("totals: " + ", ".join(f"{key} {value}" for key, value in counts.items()))
    if counts["failures"]:
        print(f"failures saved under {args.out}")
    return 1 if counts["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
