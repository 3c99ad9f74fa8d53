"""Judge asyncfix's fixes by what they do to real programs: the projects' own test suites.

For each project of ``scripts/realproj.toml`` (pinned sdists of real asyncio projects that ship
offline test suites, none from the benchmark corpus):

1. download the sdist and make a virtualenv with the project's frozen test requirements
   (both cached);
2. in three fresh copies of the sdist, run the test suite as released (the baseline, cached
   per project, version and requirements), after ``asyncfix --write`` and after
   ``asyncfix --write --unsafe-fixes``;
3. compare test by test: a test that passed in the baseline and did not after a fix is
   *newly broken*; it is run once more, alone, to tell a flaky test from a broken one.

It prints a table per project and writes ``<cache>/report/<project>.md``: every finding with
the verdict a person recorded for it in ``scripts/realproj_verdicts.toml`` (or UNREAD), every
edit as a diff, every newly broken test with the end of its output. The totals at the end
count newly broken tests, edits read as wrong, and false positives among the findings read.
Exit status 1 when a test is newly broken, an edit was read as wrong, or a finding or an edit
has no verdict yet; 0 otherwise.

    python scripts/realproj.py [PROJECT ...] [--cache DIR] [--jobs N] [--fresh-baseline]

Tests run with a per-test timeout (pytest-timeout; a deadlock is a failure) and a timeout for
the whole suite, after which its process group is killed. Warm (sdists, venvs and baselines
cached) the whole set takes about 5 minutes on 2 cores; cold, about 15.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROJECTS = HERE / "realproj.toml"
VERDICTS = HERE / "realproj_verdicts.toml"
DEFAULT_CACHE = Path.home() / ".cache" / "asyncfix-realproj"
#: one test longer than this is a failure (a deadlock, say)
TEST_TIMEOUT = 120
#: the whole suite, before the fixes (after them: 4 times what the baseline took)
SUITE_TIMEOUT = 1200
VARIANTS = ("safe", "unsafe")
FINDING_VERDICTS = ("real bug", "deliberate", "harmless", "false positive")
EDIT_VERDICTS = ("correct", "harmless", "wrong")


@dataclass(frozen=True)
class Project:
    name: str
    version: str
    package: str
    requirements: tuple[str, ...]
    pythonpath: str = "."
    tests: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    #: xdist workers for a whole suite (a test run again alone runs without them)
    workers: int = 0
    install_self: bool = False

    @property
    def key(self) -> str:
        """Changes with the sdist and the environment the tests run in."""
        digest = hashlib.sha256(
            repr((self.version, self.requirements, self.install_self, sys.version)).encode()
        ).hexdigest()[:12]
        return f"{self.name}-{self.version}-{digest}"


@dataclass
class Suite:
    """One run of a test suite: outcome per test id, and the end of each failure's output."""

    outcomes: dict[str, str]
    excerpts: dict[str, str]
    seconds: float
    #: why the run gave no per-test results ("" when it did)
    problem: str = ""

    def counts(self) -> Counter[str]:
        return Counter(self.outcomes.values())


@dataclass
class Variant:
    """What one asyncfix mode did to a project."""

    name: str
    report: dict[str, Any]
    diff: str
    suite: Suite | None = None
    broken: list[str] = field(default_factory=list)
    flaky: list[str] = field(default_factory=list)


def load_projects() -> list[Project]:
    data = tomllib.loads(PROJECTS.read_text(encoding="utf-8"))
    return [
        Project(
            name=name,
            version=entry["version"],
            package=entry["package"],
            requirements=tuple(entry["requirements"]),
            pythonpath=entry.get("pythonpath", "."),
            tests=tuple(entry.get("tests", ())),
            args=tuple(entry.get("args", ())),
            workers=entry.get("workers", 0),
            install_self=entry.get("install-self", False),
        )
        for name, entry in data.items()
    ]


def load_verdicts() -> dict[tuple[str, str, str, str], dict[str, str]]:
    """``(project, path, code, the finding's line stripped)`` -> its verdict entry."""
    if not VERDICTS.exists():
        return {}
    data = tomllib.loads(VERDICTS.read_text(encoding="utf-8"))
    verdicts: dict[tuple[str, str, str, str], dict[str, str]] = {}
    for entry in data.get("finding", []):
        key = (entry["project"], entry["path"], entry["code"], entry["line"].strip())
        if entry.get("verdict") not in FINDING_VERDICTS:
            raise SystemExit(f"{VERDICTS}: {key}: verdict must be one of {FINDING_VERDICTS}")
        if entry.get("edit", "") not in ("", *EDIT_VERDICTS):
            raise SystemExit(f"{VERDICTS}: {key}: edit must be one of {EDIT_VERDICTS} or absent")
        verdicts[key] = entry
    return verdicts


# -- preparing ---------------------------------------------------------------------------------


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


def sdist(project: Project, cache: Path) -> Path:
    folder = cache / "sdist"
    folder.mkdir(parents=True, exist_ok=True)
    stem = project.name.replace("-", "_")
    names = {f"{project.name}-{project.version}.tar.gz", f"{stem}-{project.version}.tar.gz"}
    for attempt in range(2):
        for name in sorted(names):
            if (folder / name).exists():
                return folder / name
        if attempt == 0:
            spec = f"{project.name}=={project.version}"
            command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps"]
            done = _run([*command, "--no-binary=:all:", "-d", str(folder), spec])
            if done.returncode != 0:
                raise RuntimeError(f"cannot download {spec}: {done.stderr.strip()[-500:]}")
    raise RuntimeError(f"{project.name}: pip downloaded no file named {' or '.join(names)}")


def pristine(project: Project, cache: Path) -> Path:
    """The sdist extracted once (read only by the harness: copies are made from it)."""
    target = cache / "src" / f"{project.name}-{project.version}"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        with tarfile.open(sdist(project, cache)) as archive:
            archive.extractall(target, filter="data")
        (target / ".complete").write_text("")
    inner = [p for p in target.iterdir() if p.is_dir()]
    if len(inner) != 1:
        raise RuntimeError(f"{target}: expected one folder in the sdist")
    return inner[0]


def venv(project: Project, cache: Path) -> Path:
    folder = cache / "venv" / project.key
    python = folder / "bin" / "python"
    if (folder / ".complete").exists():
        return python
    shutil.rmtree(folder, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(folder)],
        [str(python), "-m", "pip", "install", "-q", "--no-deps", *project.requirements],
    ]
    if project.install_self:
        steps.append(
            [str(python), "-m", "pip", "install", "-q", "--no-deps", str(sdist(project, cache))]
        )
    for step in steps:
        done = _run(step)
        if done.returncode != 0:
            raise RuntimeError(f"{project.name}: {' '.join(step[:4])}: {done.stderr[-800:]}")
    (folder / ".complete").write_text("")
    return python


def fresh_copy(source: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, symlinks=True)
    return target


# -- running -----------------------------------------------------------------------------------


def _env(
    project: Project, copy: Path, outcomes: Path, more_path: tuple[str, ...] = ()
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "VIRTUAL_ENV", "PYTEST"))
    }
    env["PYTHONPATH"] = os.pathsep.join([str(copy / project.pythonpath), str(HERE), *more_path])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["REALPROJ_OUTCOMES"] = str(outcomes)
    return env


def check_import(project: Project, python: Path, copy: Path) -> None:
    """The tests must exercise the copy, not an installed package."""
    env = _env(project, copy, copy / ".unused")
    done = _run(
        [str(python), "-c", f"import {project.package}; print({project.package}.__file__)"],
        cwd=copy,
        env=env,
    )
    where = Path(done.stdout.strip() or "/")
    if done.returncode != 0 or copy not in where.resolve().parents:
        raise RuntimeError(
            f"{project.name}: the tests would not import the copy ({done.stdout.strip()} "
            f"{done.stderr.strip()[-300:]})"
        )


_RANK = {"passed": 0, "skipped": 1, "xfailed": 1, "xpassed": 1, "failed": 2, "error": 3}


def read_outcomes(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The plugin's lines: each test's worst outcome (a teardown error beats a pass), and the
    end of each failure's output."""
    outcomes: dict[str, str] = {}
    excerpts: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return outcomes, excerpts
    for text in lines:
        try:
            line = json.loads(text)
        except ValueError:
            continue  # the last line of a run killed while writing
        test, outcome = line["test"], line["outcome"]
        if _RANK[outcome] >= _RANK.get(outcomes.get(test, "passed"), 0):
            outcomes[test] = outcome
        if "excerpt" in line:
            excerpts.setdefault(test, line["excerpt"])
    return outcomes, excerpts


def run_suite(
    project: Project,
    python: Path,
    copy: Path,
    only: list[str] | None = None,
    timeout: float = SUITE_TIMEOUT,
    extra: tuple[str, ...] = (),
    more_path: tuple[str, ...] = (),
) -> Suite:
    """Run the tests in ``copy`` (``only`` these, one process, no xdist); a run that takes
    longer than ``timeout`` is killed with its process group, and the tests that had not
    finished have no outcome. ``extra``: more pytest arguments; ``more_path``: more folders
    on ``PYTHONPATH`` (after the copy's)."""
    outcomes = copy.parent / f".{copy.name}-outcomes.jsonl"
    outcomes.unlink(missing_ok=True)
    command = [
        str(python),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "realproj_plugin",
        f"--timeout={TEST_TIMEOUT}",
        *project.args,
        *extra,
    ]
    if only is not None:
        command += only
    else:
        command += [f"-n{project.workers}"] if project.workers else []
        command += list(project.tests)
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=copy,
        env=_env(project, copy, outcomes, more_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    problem = ""
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        problem = f"the suite did not finish in {timeout:.0f} s: killed (a deadlock?)"
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # what the tests left running
    seconds = time.perf_counter() - started
    found, excerpts = read_outcomes(outcomes)
    if not found and not problem:
        problem = "pytest reported no test:\n" + "\n".join(output.splitlines()[-30:])
    return Suite(found, excerpts, seconds, problem)


def baseline(project: Project, python: Path, source: Path, cache: Path, fresh: bool) -> Suite:
    stored = cache / "baseline" / f"{project.key}.json"
    if stored.exists() and not fresh:
        data = json.loads(stored.read_text(encoding="utf-8"))
        return Suite(**data)
    copy = fresh_copy(source, cache / "work" / project.name / "baseline")
    check_import(project, python, copy)
    suite = run_suite(project, python, copy)
    if not suite.problem:
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_text(json.dumps(suite.__dict__), encoding="utf-8")
    return suite


def run_asyncfix(copy: Path, unsafe: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "asyncfix", "--write", "--no-cache", "-q"]
    command += ["--unsafe-fixes"] if unsafe else []
    command += ["--output-format", "json", "."]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = _run(command, cwd=copy, env=env)
    if done.returncode not in (0, 1, 2) or not done.stdout.strip():
        raise RuntimeError(f"asyncfix failed in {copy}: {done.stderr[-1500:]}")
    report: dict[str, Any] = json.loads(done.stdout)
    report["exit"] = done.returncode
    report["stderr"] = done.stderr
    return report


def tree_diff(before: Path, after: Path) -> str:
    out: list[str] = []
    for path in sorted(after.rglob("*.py")):
        rel = path.relative_to(after)
        if ".asyncfix_cache" in rel.parts:
            continue
        old_path = before / rel
        new = path.read_bytes()
        old = old_path.read_bytes() if old_path.exists() else b""
        if old == new:
            continue
        old_text = old.decode("utf-8", "replace").splitlines(keepends=True)
        new_text = new.decode("utf-8", "replace").splitlines(keepends=True)
        out.extend(difflib.unified_diff(old_text, new_text, f"a/{rel}", f"b/{rel}"))
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def compare(project: Project, python: Path, base: Suite, variant: Variant, copy: Path) -> None:
    """Newly broken tests, each run once more on its own to tell flaky from broken."""
    assert variant.suite is not None
    after = variant.suite.outcomes
    suspects = [
        test
        for test, outcome in base.outcomes.items()
        if outcome == "passed" and after.get(test) != "passed"
    ]
    if not suspects:
        return
    if len(suspects) > 50:  # the whole suite failed: running each again tells nothing
        variant.broken = suspects
        return
    again = run_suite(project, python, copy, only=suspects, timeout=max(180.0, base.seconds))
    for test in suspects:
        if again.outcomes.get(test) == "passed":
            variant.flaky.append(test)
        else:
            variant.broken.append(test)


def run_project(project: Project, cache: Path, fresh: bool) -> tuple[Project, Suite, list[Variant]]:
    source = pristine(project, cache)
    python = venv(project, cache)
    base = baseline(project, python, source, cache, fresh)
    variants: list[Variant] = []
    for name in VARIANTS:
        copy = fresh_copy(source, cache / "work" / project.name / name)
        report = run_asyncfix(copy, unsafe=name == "unsafe")
        shutil.rmtree(copy / ".asyncfix_cache", ignore_errors=True)
        variant = Variant(name, report, tree_diff(source, copy))
        if variant.diff:
            check_import(project, python, copy)
            # a suite that takes far longer than it did before the fixes has hung
            limit = max(180.0, 4 * base.seconds)
            variant.suite = run_suite(project, python, copy, timeout=limit)
            compare(project, python, base, variant, copy)
        variants.append(variant)
    return project, base, variants


# -- reporting ---------------------------------------------------------------------------------


def _findings(variant: Variant) -> list[tuple[str, dict[str, Any]]]:
    return [(f["path"], x) for f in variant.report["files"] for x in f["findings"]]


def _line(source: Path, path: str, line: int) -> str:
    try:
        lines = (source / path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


@dataclass
class Totals:
    findings: int = 0
    read: int = 0
    false_positives: int = 0
    unread: int = 0
    edits: int = 0
    edits_unread: int = 0
    wrong_edits: int = 0
    broken: int = 0
    flaky: int = 0
    errors: int = 0
    #: TOML entries to fill in for the findings not read yet
    stubs: list[str] = field(default_factory=list)


def _stub(
    project: str, path: str, finding: dict[str, Any], text: str, applied: bool, mode: str
) -> str:
    """A ``[[finding]]`` entry for ``realproj_verdicts.toml``, to be filled in."""
    lines = [
        "[[finding]]",
        f"project = {json.dumps(project)}",
        f"path = {json.dumps(path)}",
        f"code = {json.dumps(finding['code'])}",
        f"line = {json.dumps(text)}",
        f'verdict = ""  # {" | ".join(FINDING_VERDICTS)}',
    ]
    if applied:
        lines.append(f'edit = ""  # {" | ".join(EDIT_VERDICTS)}; {mode}')
    lines.append('note = ""')
    message = " ".join(finding["message"].split())
    lines.append(f"# {finding['location']['line']}: {message[:200]}")
    return "\n".join(lines)


def report(
    project: Project,
    base: Suite,
    variants: list[Variant],
    cache: Path,
    verdicts: dict[tuple[str, str, str, str], dict[str, str]],
    totals: Totals,
) -> list[str]:
    source = pristine(project, cache)
    unsafe = next(v for v in variants if v.name == "unsafe")
    safe = next(v for v in variants if v.name == "safe")
    fixed_safe = {
        (path, x["location"]["line"], x["code"])
        for path, x in _findings(safe)
        if x["fix"]["applied"]
    }
    lines = [f"# {project.name} {project.version}", ""]
    counts = base.counts()
    lines.append(
        f"Baseline: {counts['passed']} passed, {counts['failed'] + counts['error']} failed "
        f"or errors, {counts['skipped']} skipped ({base.seconds:.0f} s)"
        + (f" -- {base.problem}" if base.problem else "")
    )
    lines.append("")
    lines.append("## Findings (from the --unsafe-fixes run)")
    lines.append("")
    for path, finding in _findings(unsafe):
        totals.findings += 1
        where = finding["location"]["line"]
        text = _line(source, path, where)
        entry = verdicts.get((project.name, path, finding["code"], text))
        applied = finding["fix"]["applied"]
        mode = (
            "fixed (safe)"
            if (path, where, finding["code"]) in fixed_safe
            else "fixed (unsafe)"
            if applied
            else f"not fixed ({finding['fix']['safety']})"
        )
        if entry is None:
            totals.unread += 1
            verdict = "UNREAD"
            totals.stubs.append(_stub(project.name, path, finding, text, applied, mode))
        else:
            totals.read += 1
            totals.false_positives += entry["verdict"] == "false positive"
            verdict = entry["verdict"]
        if applied:
            totals.edits += 1
            edit = (entry or {}).get("edit", "")
            if not edit:
                totals.edits_unread += 1
                edit = "UNREAD"
            totals.wrong_edits += edit == "wrong"
            verdict += f"; edit {edit}"
        note = f" -- {entry['note']}" if entry and entry.get("note") else ""
        lines.append(
            f"- `{path}:{where}` {finding['code']} {mode}: **{verdict}**{note}\n"
            f"  {finding['message']}\n  `{text}`"
        )
    for variant in variants:
        errors = [
            f"{f['path']}: {f['error'] or f['internal_error']}"
            for f in variant.report["files"]
            if f.get("error") or f.get("internal_error")
        ] + list(variant.report.get("errors", []))
        totals.errors += len(errors)
        lines += ["", f"## --write{' --unsafe-fixes' if variant.name == 'unsafe' else ''}", ""]
        lines += [f"asyncfix error: {error}" for error in errors]
        if variant.suite is None:
            lines.append("No file changed; tests not run again.")
            continue
        counts = variant.suite.counts()
        lines.append(
            f"Tests: {counts['passed']} passed, {counts['failed'] + counts['error']} failed or "
            f"errors ({variant.suite.seconds:.0f} s); newly broken: {len(variant.broken)}, "
            f"flaky (passed when run again): {len(variant.flaky)}"
            + (f" -- {variant.suite.problem}" if variant.suite.problem else "")
        )
        for test in variant.broken:
            lines += ["", f"### broken: `{test}`", "", "```"]
            lines += variant.suite.excerpts.get(test, "(no output)").splitlines()
            lines.append("```")
        lines += [f"- flaky: `{test}`" for test in variant.flaky]
        lines += ["", "```diff", *variant.diff.splitlines(), "```"]
    if variants:
        totals.broken += len(unsafe.broken) + len(safe.broken)
        totals.flaky += len(unsafe.flaky) + len(safe.flaky)
    return lines


def row(project: Project, base: Suite, variants: list[Variant]) -> str:
    def tests(variant: Variant) -> str:
        if variant.suite is None:
            return "unchanged"
        extra = f" +{len(variant.flaky)} flaky" if variant.flaky else ""
        return f"{len(variant.broken)} broken{extra}"

    unsafe = next(v for v in variants if v.name == "unsafe")
    safe = next(v for v in variants if v.name == "safe")
    found = len(_findings(unsafe))
    fixed = {v.name: sum(x["fix"]["applied"] for _, x in _findings(v)) for v in variants}
    counts = base.counts()
    return (
        f"{project.name:<14} {found:>8} {fixed['safe']:>6} {fixed['unsafe']:>7}   "
        f"{counts['passed']:>5} passed {base.seconds:>5.0f} s   "
        f"{tests(safe):<18} {tests(unsafe):<18}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("projects", nargs="*", help="names from realproj.toml (default: all)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--jobs", type=int, default=1, help="projects run at once")
    parser.add_argument("--fresh-baseline", action="store_true", help="run the baselines again")
    options = parser.parse_args()
    projects = load_projects()
    if options.projects:
        unknown = set(options.projects) - {p.name for p in projects}
        if unknown:
            parser.error(f"not in {PROJECTS.name}: {', '.join(sorted(unknown))}")
        projects = [p for p in projects if p.name in options.projects]
    verdicts = load_verdicts()
    cache: Path = options.cache
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=options.jobs) as pool:
        results = list(pool.map(lambda p: run_project(p, cache, options.fresh_baseline), projects))
    totals = Totals()
    (cache / "report").mkdir(parents=True, exist_ok=True)
    print(
        f"{'project':<14} {'findings':>8} {'safe':>6} {'unsafe':>7}   {'baseline':<24}   "
        f"{'--write':<18} {'--unsafe-fixes':<18}"
    )
    for project, base, variants in results:
        lines = report(project, base, variants, cache, verdicts, totals)
        (cache / "report" / f"{project.name}.md").write_text("\n".join(lines) + "\n")
        print(row(project, base, variants))
    share = totals.false_positives / totals.read if totals.read else 0.0
    print()
    print(
        f"findings {totals.findings} (read {totals.read}, unread {totals.unread}, "
        f"false positives {totals.false_positives} = {share:.1%} of those read); "
        f"edits {totals.edits} (unread {totals.edits_unread}, wrong {totals.wrong_edits}); "
        f"tests newly broken {totals.broken}, flaky {totals.flaky}; asyncfix errors "
        f"{totals.errors}; {time.perf_counter() - started:.0f} s"
    )
    print(f"reports: {cache / 'report'}/<project>.md")
    if totals.stubs:
        unread = cache / "report" / "unread.toml"
        unread.write_text("\n\n".join(totals.stubs) + "\n", encoding="utf-8")
        print(f"entries to fill in for the findings not read yet: {unread}")
    bad = totals.broken or totals.wrong_edits or totals.unread or totals.edits_unread
    return 1 if bad or totals.errors else 0


if __name__ == "__main__":
    sys.exit(main())
