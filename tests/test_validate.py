"""`--write --validate CMD`: the project's own tests judge the fixes; the ones that break a
test are found, reverted and reported, and the rest are kept."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import pytest
from click.testing import Result

from asyncfix.cli import main
from asyncfix.model import TestRun
from asyncfix.validate import new_failures, run_command
from tests.helpers import cli_runner

#: two fixes in one file: the second undoes what the project's test checks (the call holds
#: the loop on purpose), the first harms nothing
TIMING = """\
import time


async def pause():
    time.sleep(0)


async def hold():
    time.sleep(0.2)
"""
OTHER = """\
import time


async def nap():
    time.sleep(0)
"""
CHECKS = """\
import asyncio

from app.other import nap
from app.timing import hold, pause


def test_hold_keeps_other_tasks_waiting():
    async def main():
        ticks = []

        async def tick():
            ticks.append(1)

        task = asyncio.ensure_future(tick())
        await hold()
        seen = list(ticks)
        await task
        return seen

    assert asyncio.run(main()) == []


def test_pause_and_nap_return():
    asyncio.run(pause())
    asyncio.run(nap())
"""


def invoke(*args: str) -> Result:
    return cli_runner().invoke(main, list(args), catch_exceptions=False)


def _command(folder: str) -> str:
    python = shlex.quote(sys.executable)
    return f"{python} -m pytest -q -p no:cacheprovider -o addopts= {folder}"


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "timing.py").write_text(TIMING)
    (tmp_path / "app" / "other.py").write_text(OTHER)
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "test_app.py").write_text(CHECKS)
    return tmp_path


def test_a_fix_that_breaks_a_test_is_reverted_and_reported(project: Path) -> None:
    result = invoke("--write", "--output-format", "json", "--validate", _command("checks"), "app")
    assert result.exit_code == 1, result.output  # the reverted finding is left
    data = json.loads(result.stdout)
    report = data["validation"]
    assert report["baseline"]["passed"] is True
    assert report["with_fixes"]["passed"] is False
    assert report["final"]["passed"] is True
    (reverted,) = report["reverted"]
    assert (reverted["path"], reverted["line"], reverted["code"]) == ("app/timing.py", 9, "AF201")
    assert reverted["tests"] == ["checks/test_app.py::test_hold_keeps_other_tasks_waiting"]
    assert "test_hold_keeps_other_tasks_waiting" in reverted["excerpt"]
    # exactly that fix is taken back: the file's other fix and the other file stay fixed
    timing = (project / "app" / "timing.py").read_text()
    assert "    await asyncio.sleep(0)\n" in timing and "    time.sleep(0.2)\n" in timing
    assert "await asyncio.sleep(0)" in (project / "app" / "other.py").read_text()
    findings = {
        (f["path"], x["location"]["line"]): x["fix"] for f in data["files"] for x in f["findings"]
    }
    assert findings[("app/timing.py", 9)]["applied"] is False
    assert "reverted" in findings[("app/timing.py", 9)]["reverted"]
    assert findings[("app/timing.py", 5)]["applied"] is True
    assert findings[("app/other.py", 5)]["applied"] is True
    # the tests pass with what was written
    assert run_command(_command("checks"), project, 60).passed


def test_fixes_the_tests_accept_are_all_kept(project: Path) -> None:
    (project / "checks" / "test_app.py").write_text(
        CHECKS.replace("    assert asyncio.run(main()) == []\n", "    asyncio.run(main())\n")
    )
    result = invoke("--write", "--validate", _command("checks"), "app")
    assert result.exit_code == 0, result.output
    assert "no test that passed before fails with the fixes" in result.output
    assert "time.sleep" not in (project / "app" / "timing.py").read_text()


def test_the_report_says_what_the_tests_said(project: Path) -> None:
    result = invoke("--write", "--output-format", "report", "--validate", _command("checks"), "app")
    out = result.output
    assert "Validation: `" in out
    assert "reverted app/timing.py:9 AF201" in out
    assert "reverted: the project's tests failed with it" in out  # that finding's block
    plain = invoke("--output-format", "report", "app").output
    assert 'Tests: not run (`--write --validate "CMD"` runs them before and after)' in plain


def test_validate_runs_only_when_asked_on_the_command_line(project: Path) -> None:
    """A repository's configuration names the command; only `--validate` runs it."""
    marker = project / "ran"
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "demo"\n[tool.asyncfix]\nvalidate = "touch {marker}"\n'
    )
    invoke("--write", "app")
    assert not marker.exists()
    invoke("app", "--write", "--validate")  # the configured command
    assert marker.exists()


def test_validate_usage_errors(project: Path) -> None:
    assert invoke("--validate", "true", "app").exit_code == 2  # needs --write
    took_a_path = invoke("--write", "--validate", "app")
    assert took_a_path.exit_code == 2 and "--validate" in took_a_path.output
    # no command given and none configured: `app` would be taken as one, so use `=`
    assert invoke("--write", "--validate=", "app").exit_code == 2


def test_a_hung_command_is_killed_with_its_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child"
    started = time.perf_counter()
    run = run_command(f"sleep 30 & echo $! > {pid_file}; wait", tmp_path, timeout=1)
    assert run.timed_out and not run.passed
    assert time.perf_counter() - started < 10
    child = int(pid_file.read_text())
    time.sleep(0.2)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    """Running (a zombie nobody has reaped yet is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (TestRun(0, 1.0), TestRun(0, 1.0), None),
        (TestRun(0, 1.0), TestRun(1, 1.0, failing=["t::a"]), ["t::a"]),
        (TestRun(0, 1.0), TestRun(1, 1.0), ["(the command failed: exit status 1)"]),
        (TestRun(1, 1.0, failing=["t::a"]), TestRun(1, 1.0, failing=["t::a"]), None),
        (TestRun(1, 1.0, failing=["t::a"]), TestRun(1, 1.0, failing=["t::a", "t::b"]), ["t::b"]),
        (TestRun(1, 1.0, failing=["t::a"]), TestRun(2, 1.0), ["(exit status 1 before, 2 now)"]),
        (
            TestRun(0, 1.0),
            TestRun(None, 9.0, timed_out=True),
            ["(the command hung: killed after the timeout)"],
        ),
    ],
)
def test_what_counts_as_newly_failing(
    before: TestRun, after: TestRun, expected: list[str] | None
) -> None:
    assert new_failures(before, after) == expected


def test_an_interrupted_validation_puts_the_files_back(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """^C while the tests run with the fixes written: every file is as it was."""
    from asyncfix import validate

    real = validate.run_command
    calls: list[str] = []

    def interrupted(
        command: str, cwd: Path, timeout: float, evidence: Path | None = None
    ) -> TestRun:
        calls.append(command)
        if len(calls) == 2:  # the run with every fix written
            raise KeyboardInterrupt
        return real(command, cwd, timeout, evidence)

    monkeypatch.setattr(validate, "run_command", interrupted)
    before = {p: p.read_bytes() for p in (project / "app").glob("*.py")}
    result = cli_runner().invoke(main, ["--write", "--validate", _command("checks"), "app"])
    assert result.exit_code != 0 and "Aborted" in result.output  # click's ^C
    assert len(calls) == 2
    assert {p: p.read_bytes() for p in (project / "app").glob("*.py")} == before


def test_a_command_that_cannot_run_writes_nothing(project: Path) -> None:
    before = (project / "app" / "timing.py").read_text()
    result = invoke("--write", "--validate", "no-such-command-here --flag", "app")
    assert result.exit_code == 2
    assert "could not run" in result.output
    assert (project / "app" / "timing.py").read_text() == before
