"""`asyncfix --evidence`: what the runtime-evidence plugin saw, used by the fixer."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asyncfix.engine.process import shifted
from asyncfix.evidence import EvidenceError, load_evidence
from asyncfix.model import Observed
from tests.helpers import run_text

EXAMPLE = Path(__file__).parent.parent / "examples" / "runtime"

DISPATCH = """\
HANDLERS = {}


async def dispatch(name):
    handler = HANDLERS[name]
    handler()
"""


def seen(line: int, kind: str = "never-awaited") -> Observed:
    return Observed(kind, line, "tests/test_x.py::test_it", "coroutine 'refresh' was never awaited")


def test_a_never_awaited_coroutine_seen_at_run_time_is_an_af101_with_an_unsafe_fix() -> None:
    result = run_text(DISPATCH, {"AF101"}, observed=(seen(6),))
    (finding,) = result.findings
    assert finding.code == "AF101" and finding.span.line == 6
    assert finding.fix_safety.value == "unsafe"
    assert "when the tests ran it made a coroutine that was never awaited" in finding.message
    assert finding.evidence == [
        "seen at run time: coroutine 'refresh' was never awaited (in tests/test_x.py::test_it)"
    ]
    assert result.fixed == DISPATCH.replace("    handler()", "    await handler()")
    # without the evidence, or seen elsewhere, nothing is reported
    assert run_text(DISPATCH, {"AF101"}).findings == []
    assert run_text(DISPATCH, {"AF101"}, observed=(seen(5),)).findings == []


@pytest.mark.parametrize(
    "line", ["    x = handler()", "    handler(other())", "    handler() or other()"]
)
def test_no_fix_where_the_line_does_not_say_which_call(line: str) -> None:
    text = DISPATCH.replace("    handler()", line) + "\n\ndef other():\n    return 1\n"
    assert run_text(text, {"AF101"}, observed=(seen(6),)).findings == []


def test_findings_the_evidence_bears_out_say_so() -> None:
    text = (
        "import asyncio\nimport time\n\n\nasync def poll():\n    time.sleep(1)\n"
        "    await asyncio.sleep(0)\n"
    )
    observed = (
        Observed("slow-callback", 7, "t::a", "poll() held the event loop for 1.000 s"),
        Observed("never-awaited", 6, "t::b", "coroutine 'x' was never awaited"),
    )
    (finding,) = run_text(text, {"AF201"}, observed=observed).findings
    assert finding.evidence[-1] == (
        "seen at run time: poll() held the event loop for 1.000 s (in t::a)"
    )
    assert not any("never awaited" in line for line in finding.evidence)


def test_observations_follow_their_lines_through_a_fix() -> None:
    old = "a\nb\nc\nd\n"
    new = "x\ny\na\nB\nc\nd\n"  # two lines added above, b rewritten
    moved = shifted((seen(1), seen(2), seen(4)), old, new)
    assert [o.line for o in moved] == [3, 6]


def test_evidence_files_that_are_not_ones(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    for text, why in [
        ("{", "not JSON"),
        ('{"format": 2, "records": []}', "not an evidence file"),
        ('{"format": 1, "records": {}}', "'records' must be a list"),
        ('{"format": 1, "records": [{"kind": 1}]}', "record 0"),
        ('{"format": 1, "records": [{"kind": "k", "test": "", "message": "", "site": '
         '{"path": "a.py", "line": "3"}}]}', "record 0"),
    ]:  # fmt: skip
        path.write_text(text)
        with pytest.raises(EvidenceError, match=why):
            load_evidence(path)
    with pytest.raises(EvidenceError, match="cannot read"):
        load_evidence(tmp_path / "missing.json")


def test_plugin_then_fixer_end_to_end(tmp_path: Path) -> None:
    """Run the example's tests under the plugin, then `asyncfix --evidence ... --diff`: the
    coroutine the dynamic dispatch dropped is awaited, and the static findings carry what
    was seen."""
    project = tmp_path / "runtime"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".asyncfix_cache"))
    plugin = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "asyncfix.pytest_plugin", "-p",
         "no:cacheprovider"],
        cwd=project, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert plugin.returncode == 0, plugin.stdout + plugin.stderr
    evidence = project / ".asyncfix_cache" / "evidence.json"
    fixer = [sys.executable, "-m", "asyncfix", "--evidence", str(evidence), "service.py"]
    check = subprocess.run(
        [*fixer, "--output-format", "json"], cwd=project, capture_output=True, text=True
    )
    assert check.returncode == 1, check.stderr
    (file,) = json.loads(check.stdout)["files"]
    by_code = {(f["code"], f["location"]["line"]): f for f in file["findings"]}
    dispatch = by_code[("AF101", 26)]
    assert dispatch["fix"]["safety"] == "unsafe"
    assert "tests/test_service.py::test_dispatch" in dispatch["evidence"][-1]
    assert any("test_polling" in e for e in by_code[("AF301", 35)]["evidence"])
    assert any("test_read_sensor" in e for e in by_code[("AF201", 48)]["evidence"])
    assert any("test_session_headers" in e for e in by_code[("AF501", 59)]["evidence"])
    diff = subprocess.run(
        [*fixer, "--diff", "--unsafe-fixes"], cwd=project, capture_output=True, text=True
    )
    assert "+    await handler(device)  # never awaited" in diff.stdout
    # without the evidence the dispatch is not reported
    plain = subprocess.run(
        [sys.executable, "-m", "asyncfix", "--no-cache", "service.py"],
        cwd=project, capture_output=True, text=True,
    )  # fmt: skip
    assert ":26:" not in plain.stdout
    bad = subprocess.run(
        [*fixer[:4], "nope.json", "service.py"], cwd=project, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--evidence" in bad.stderr


def test_validate_compares_the_runtime_evidence_before_and_after_the_fixes(
    tmp_path: Path,
) -> None:
    project = tmp_path / "runtime"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".asyncfix_cache"))
    tests = f"{sys.executable} -m pytest -q -p no:cacheprovider --asyncfix-perturb 20 races tests"
    done = subprocess.run(
        [sys.executable, "-m", "asyncfix", "--write", "--unsafe-fixes", "--select",
         "AF201,AF401", "--validate", tests, "--validate-evidence", "counter.py", "service.py"],
        cwd=project, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    line = next(x for x in done.stdout.splitlines() if x.strip().startswith("runtime evidence:"))
    # every run of the tests counts (the plain one and the 20 perturbed ones)
    slow = re.search(r"slow-callback: (\d+) -> 0", line)  # time.sleep became asyncio.sleep
    assert slow is not None and int(slow[1]) >= 21, line
    never = re.search(r"never-awaited: (\d+) -> (\d+)", line)  # the dispatch: not selected
    assert never is not None and never[1] == never[2] != "0", line
    found = re.search(
        r"perturbation failures in races/test_counter.py::test_counter: (\d+)/20 -> 0/20", line
    )
    assert found is not None and int(found[1]) > 0, line
    assert "no test that passed before fails with the fixes" in done.stdout
    assert "async with self._value_lock:" in (project / "counter.py").read_text()
    # without a command to watch it is a usage error
    bad = subprocess.run(
        [sys.executable, "-m", "asyncfix", "--validate-evidence", "counter.py"],
        cwd=project, capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2 and "--validate-evidence needs --validate" in bad.stderr


KEPT_TASK = """\
import asyncio


class Poller:
    def start(self):
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self):
        await asyncio.sleep(3600)
"""


def test_a_kept_task_seen_destroyed_pending_is_reported_without_a_fix() -> None:
    assert run_text(KEPT_TASK, {"AF301"}).findings == []
    observed = (
        Observed("task-destroyed-pending", 6, "t::poll", "Task was destroyed but it is pending!"),
    )
    (finding,) = run_text(KEPT_TASK, {"AF301"}, observed=observed).findings
    assert finding.span.line == 6 and finding.fix_safety.value == "none"
    assert "destroyed while still pending when the tests ran (in t::poll)" in finding.message
    failed = (Observed("exception-never-retrieved", 6, "", "Task exception ... ValueError: x"),)
    (finding,) = run_text(KEPT_TASK, {"AF301"}, observed=failed).findings
    assert "nobody retrieved its exception" in finding.message
