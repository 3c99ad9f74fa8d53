"""``--write --validate CMD``: the project's own tests judge the fixes.

CMD runs before anything is written (the baseline) and again with every fix written. When
something that passed now fails, the fixes responsible are found by bisection -- first over
the changed files, then over the fixes inside each file that still breaks something -- each
step writing a subset of the fixes and running CMD again. Exactly those fixes are reverted
(the file is fixed again without them, and verified as any fix is), CMD runs once more to
confirm, and the result says which fix broke which test, with the end of its output.

CMD runs through the shell in the working directory, in a process group of its own, with a
timeout (a deadlock is a failure): on expiry the whole group is killed. Failing tests are
named from pytest's and unittest's summaries; for any other command, its exit status alone
says pass or fail. asyncfix runs CMD only when asked on its command line (``--validate``):
never because a repository's configuration says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from asyncfix.files import BOM, atomic_write, decode
from asyncfix.model import FileResult, Reverted, TestRun, ValidationReport

#: the longest a run with fixes may take, as a multiple of the baseline's time (and at least
#: ``MIN_TIMEOUT``): far longer than before means it hangs
SLOWDOWN = 3.0
MIN_TIMEOUT = 60.0
#: the lines of output kept for the report
EXCERPT_LINES = 15

_PYTEST = re.compile(r"^(?:FAILED|ERROR) (\S+?)(?: - .*)?$", re.MULTILINE)
_UNITTEST = re.compile(r"^(?:FAIL|ERROR): (\w+) \(([\w.]+)\)", re.MULTILINE)
_COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)\b")


def run_command(command: str, cwd: Path, timeout: float, evidence: Path | None = None) -> TestRun:
    """Run ``command`` through the shell in a process group of its own; on timeout the
    group is killed. What is left of the group when the command ends is killed too.
    ``evidence``: pytest runs under the runtime-evidence plugin (``PYTEST_ADDOPTS``) and
    writes there; what it counted goes into the result."""
    started = time.perf_counter()
    env = None
    if evidence is not None:
        evidence.unlink(missing_ok=True)
        added = f"-p asyncfix.pytest_plugin --asyncfix-evidence={shlex.quote(str(evidence))}"
        env = {**os.environ}
        env["PYTEST_ADDOPTS"] = f"{env.get('PYTEST_ADDOPTS', '')} {added}".strip()
    process = subprocess.Popen(
        command,
        shell=True,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    timed_out = False
    try:
        raw, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(process.pid)
        raw, _ = process.communicate()
    except BaseException:  # interrupted: leave nothing running
        _kill(process.pid)
        process.wait()
        raise
    else:
        _kill(process.pid)
    output = raw.decode("utf-8", "replace")
    failing = [*_PYTEST.findall(output)]
    failing += [f"{where}.{test}" for test, where in _UNITTEST.findall(output)]
    counts = ", ".join(f"{n} {what}" for n, what in _COUNTS.findall(_last_summary(output)))
    run = TestRun(
        exit_code=None if timed_out else process.returncode,
        seconds=time.perf_counter() - started,
        failing=sorted(set(failing)),
        counts=counts,
        timed_out=timed_out,
        excerpt="\n".join(output.rstrip().splitlines()[-EXCERPT_LINES:]),
    )
    if evidence is not None:
        _read_evidence(evidence, run)
    return run


_PERTURBED = re.compile(r"fails in (\d+) of (\d+) perturbed runs")


def _read_evidence(path: Path, run: TestRun) -> None:
    """The plugin's counts (and each perturbed test's failures) into ``run``."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return
    counts = data.get("counts") if isinstance(data, dict) else None
    if not isinstance(counts, dict):
        return
    run.evidence = {str(k): v for k, v in counts.items() if isinstance(v, int)}
    for record in data.get("records") or ():
        if isinstance(record, dict) and record.get("kind") == "perturbation":
            found = _PERTURBED.search(str(record.get("message", "")))
            if found:
                run.perturbation[str(record.get("test"))] = f"{found[1]}/{found[2]}"


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _last_summary(output: str) -> str:
    """pytest's closing line (``=== 2 failed, 118 passed in 3.1s ===``), or unittest's."""
    for line in reversed(output.splitlines()):
        if _COUNTS.search(line):
            return line
    return ""


def new_failures(baseline: TestRun, after: TestRun) -> list[str] | None:
    """What fails now that passed before (None: nothing). A test suite that passed and now
    fails (or hangs) broke even when no test is named; one that failed before breaks only by
    new named failures, or by failing differently (another exit status: a collection error,
    an internal error)."""
    if after.passed:
        return None
    if after.timed_out and not baseline.timed_out:
        return after.failing or ["(the command hung: killed after the timeout)"]
    if baseline.passed:
        return after.failing or [f"(the command failed: exit status {after.exit_code})"]
    new = sorted(set(after.failing) - set(baseline.failing))
    if new:
        return new
    if after.exit_code != baseline.exit_code:
        return [f"(exit status {baseline.exit_code} before, {after.exit_code} now)"]
    return None


#: a change the tests judge: one fix of one file
Unit = tuple[str, str]  # (path, fix id)
#: the fixed text of a file with only some of its fixes (the engine fixes it again)
Refix = Callable[[FileResult, frozenset[str]], FileResult]


class Validator:
    """Writes subsets of the fixes and runs the command on them."""

    def __init__(
        self,
        command: str,
        cwd: Path,
        results: Sequence[FileResult],
        refix: Refix,
        timeout: float,
        evidence: Path | None = None,
    ) -> None:
        self.report = ValidationReport(command)
        #: where the runs under the runtime-evidence plugin write (``--validate-evidence``)
        self.evidence = evidence
        self.cwd = cwd
        self.timeout = timeout
        self.refix = refix
        self.results = {result.path: result for result in results}
        #: what each file holds on disk now (bytes), so every write checks it
        self.on_disk: dict[str, bytes] = {}
        self._texts: dict[tuple[str, frozenset[str]], FileResult] = {}
        #: (units applied, new failures) of every run that broke something
        self.breaking: list[tuple[frozenset[Unit], TestRun, list[str]]] = []
        #: the units written now
        self.current: frozenset[Unit] = frozenset()

    # -- the steps ---------------------------------------------------------------------------

    def run(self) -> ValidationReport:
        report = self.report
        for result in self.results.values():
            try:
                raw = Path(result.path).read_bytes()
            except OSError as exc:
                report.note = f"cannot read {result.display}: {exc.strerror or exc}"
                return report
            if decode(raw).text != result.original:
                report.note = f"{result.display} changed on disk since it was read"
                return report
            self.on_disk[result.path] = raw
        report.baseline = self._test(self.timeout)
        if report.baseline.timed_out:
            report.note = "the command did not finish before the fixes: nothing written"
            return report
        if report.baseline.exit_code in (126, 127):
            report.note = (
                f"the command could not run (exit status {report.baseline.exit_code}: "
                "not found or not executable): nothing written"
            )
            return report
        every = frozenset(self.units())
        try:
            report.with_fixes = self._apply_and_test(every)
            broken = new_failures(report.baseline, report.with_fixes)
            if broken is None:
                if not report.baseline.passed and not report.baseline.failing:
                    report.note = (
                        "the command failed before the fixes and named no failing test: "
                        "only a change of its exit status could be seen"
                    )
                return report
            self.breaking.append((every, report.with_fixes, broken))
            culprits = self._culprits(every)
            for unit in sorted(culprits):
                report.reverted.append(self._reverted(unit))
            report.final = self._apply_and_test(every - culprits)
            if new_failures(report.baseline, report.final) is not None:
                self._apply(frozenset())
                report.note = (
                    "the tests still failed with the rejected fixes reverted (flaky tests, or "
                    "fixes that break only together): every fix was reverted"
                )
            return report
        except BaseException:
            self._restore()  # interrupted, or a write failed: the files as they were
            raise

    def units(self) -> list[Unit]:
        return [
            (result.path, finding.fix_id)
            for result in self.results.values()
            for finding in result.findings
            if finding.fixed and finding.fix_id
        ]

    def final_results(self) -> dict[str, FileResult]:
        """Each file's result as it is on disk now: fixed without the rejected fixes, whose
        findings say why."""
        reasons = {(r.path, r.fix_id): _reason(r) for r in self.report.reverted}
        out: dict[str, FileResult] = {}
        for path, result in self.results.items():
            final = self._result(result, self._excluded(path, self.current))
            for finding in final.findings:
                finding.reverted = reasons.get((result.display, finding.fix_id))
            out[path] = final
        return out

    # -- bisection -----------------------------------------------------------------------

    def _culprits(self, units: frozenset[Unit]) -> frozenset[Unit]:
        """The units that break the tests: the files first, then the fixes inside each
        broken file. A group whose halves each pass alone breaks only as a whole: all of it
        is rejected."""
        by_file: dict[str, list[Unit]] = {}
        for unit in sorted(units):
            by_file.setdefault(unit[0], []).append(unit)
        files = self._search([frozenset(group) for group in by_file.values()])
        culprits: set[Unit] = set()
        for group in files:
            if len(group) == 1:
                culprits |= group
            else:
                culprits |= frozenset().union(*self._search([frozenset({u}) for u in group]))
        return frozenset(culprits)

    def _search(self, items: list[frozenset[Unit]]) -> list[frozenset[Unit]]:
        """The items that break the tests when applied alone, by halving (the whole set is
        known to break)."""
        if len(items) == 1:
            return items
        middle = len(items) // 2
        found: list[frozenset[Unit]] = []
        halves = (items[:middle], items[middle:])
        broke = [self._breaks(frozenset().union(*half)) for half in halves]
        for half, breaks in zip(halves, broke, strict=True):
            if breaks:
                found += self._search(half)
        if not any(broke):
            return items  # they break only together
        return found

    def _breaks(self, units: frozenset[Unit]) -> bool:
        assert self.report.baseline is not None
        run = self._apply_and_test(units)
        broken = new_failures(self.report.baseline, run)
        if broken is None:
            return False
        self.breaking.append((units, run, broken))
        return True

    def _reverted(self, unit: Unit) -> Reverted:
        path, fix = unit
        result = self.results[path]
        finding = next(f for f in result.findings if f.fix_id == fix)
        # the smallest run that had this fix and broke: its failures are this fix's doing
        runs = sorted((r for r in self.breaking if unit in r[0]), key=lambda r: len(r[0]))
        _, run, tests = runs[0]
        return Reverted(
            result.display,
            finding.span.line,
            finding.code,
            finding.message,
            fix,
            tests,
            run.excerpt,
        )

    # -- writing ---------------------------------------------------------------------------

    def _apply_and_test(self, units: frozenset[Unit]) -> TestRun:
        self._apply(units)
        assert self.report.baseline is not None
        limit = min(self.timeout, max(MIN_TIMEOUT, SLOWDOWN * self.report.baseline.seconds))
        return self._test(limit)

    def _test(self, timeout: float) -> TestRun:
        self.report.runs += 1
        return run_command(self.report.command, self.cwd, timeout, self.evidence)

    def _apply(self, units: frozenset[Unit]) -> None:
        """Write each file with exactly the fixes of ``units`` (its original text when none)."""
        for path, result in self.results.items():
            excluded = self._excluded(path, units)
            text = self._result(result, excluded).fixed or result.original
            assert text is not None
            data = _encoded(result, text)
            if data == self.on_disk[path]:
                continue
            reason = atomic_write(Path(path), self.on_disk[path], data)
            if reason is not None:
                raise OSError(f"{result.display}: {reason}")
            self.on_disk[path] = data
        self.current = units

    def _restore(self) -> None:
        """Put back every file's original bytes, as far as possible (a file someone changed
        meanwhile is left as they made it)."""
        for path, result in self.results.items():
            assert result.original is not None
            original = _encoded(result, result.original)
            current = self.on_disk.get(path, original)
            if current != original and atomic_write(Path(path), current, original) is None:
                self.on_disk[path] = original
        self.current = frozenset()

    def _excluded(self, path: str, units: frozenset[Unit]) -> frozenset[str]:
        return frozenset(fix for file, fix in self.units() if file == path) - frozenset(
            fix for file, fix in units if file == path
        )

    def _result(self, result: FileResult, excluded: frozenset[str]) -> FileResult:
        if not excluded:
            return result
        key = (result.path, excluded)
        if key not in self._texts:
            self._texts[key] = self.refix(result, excluded)
        return self._texts[key]


def _encoded(result: FileResult, text: str) -> bytes:
    data = text.encode(result.encoding)
    return BOM + data if result.bom else data


def _reason(reverted: Reverted) -> str:
    tests = ", ".join(reverted.tests[:5]) + (" ..." if len(reverted.tests) > 5 else "")
    return f"reverted: the project's tests failed with it ({tests})"
