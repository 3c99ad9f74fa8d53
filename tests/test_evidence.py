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


def line_of(path: Path, text: str) -> int:
    (number,) = [n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    return number


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
    service = project / "service.py"
    dispatch = by_code[("AF101", line_of(service, "handler(device)"))]
    assert dispatch["fix"]["safety"] == "unsafe"
    assert "tests/test_service.py::test_dispatch" in dispatch["evidence"][-1]
    polling = by_code[("AF301", line_of(service, "create_task(_poll_forever())"))]
    assert any("test_polling" in e for e in polling["evidence"])
    # the sampled line of a slow callback bears out the static finding there ...
    sleep = by_code[("AF201", line_of(service, "time.sleep(0.15)  # holds"))]
    assert any("test_read_sensor" in e for e in sleep["evidence"])
    assert ("AF205", sleep["location"]["line"]) not in by_code
    # ... and is a finding of its own where the analysis has none (dynamic dispatch)
    backend = by_code[("AF205", line_of(service, "profile = backend(name)"))]
    assert backend["fix"]["safety"] == "unsafe"
    assert "_read_disk() at service.py:" in backend["evidence"][0]
    session = by_code[("AF501", line_of(service, "session = aiohttp.ClientSession()"))]
    assert any("test_session_headers" in e for e in session["evidence"])
    chosen = by_code[("AF501", line_of(service, 'session = SESSIONS["default"]()'))]
    assert chosen["fix"]["safety"] == "none" and "test_session_timeout" in chosen["message"]
    diff = subprocess.run(
        [*fixer, "--diff", "--unsafe-fixes"], cwd=project, capture_output=True, text=True
    )
    assert "+    await handler(device)  # never awaited" in diff.stdout
    assert "+    profile = await asyncio.to_thread(backend, name)" in diff.stdout
    # without the evidence the dispatch is not reported
    plain = subprocess.run(
        [sys.executable, "-m", "asyncfix", "--no-cache", "service.py"],
        cwd=project, capture_output=True, text=True,
    )  # fmt: skip
    assert f":{dispatch['location']['line']}:" not in plain.stdout
    assert "AF205" not in plain.stdout and "SESSIONS" not in plain.stdout
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
    # time.sleep became asyncio.sleep (the dynamic dispatch's blocking backend stays)
    slow = re.search(r"slow-callback: (\d+) -> (\d+)", line)
    assert slow is not None and int(slow[1]) - int(slow[2]) >= 21 and int(slow[2]) >= 21, line
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


LOADER = """\
import asyncio

BACKENDS = {}


async def load(name):
    backend = BACKENDS[name]
    profile = backend(name)
    await asyncio.sleep(0)
    return profile
"""


def held(line: int, where: str = "blocked") -> Observed:
    message = "load() held the event loop for 0.150 s, at m.py:8 (in read() at m.py:3)"
    return Observed("slow-callback", line, "tests/test_m.py::test_load", message, where)


def test_a_call_seen_holding_the_loop_is_an_af205_with_the_offloading_fix() -> None:
    result = run_text(LOADER, {"AF205"}, observed=(held(8),))
    (finding,) = result.findings
    assert (finding.code, finding.span.line, finding.fix_safety.value) == ("AF205", 8, "unsafe")
    assert "held the loop when the tests ran (in tests/test_m.py::test_load)" in finding.message
    assert finding.evidence == [held(8).said()]
    assert "    profile = await asyncio.to_thread(backend, name)\n" in result.fixed
    # placed at the `await` after it (no sample of the thread), or at another line: nothing
    assert run_text(LOADER, {"AF205"}, observed=(held(8, "suspended"),)).findings == []
    assert run_text(LOADER, {"AF205"}, observed=(held(9),)).findings == []
    assert run_text(LOADER, {"AF205"}).findings == []


@pytest.mark.parametrize(
    "line",
    [
        "    profile = backend(name) or backend(name.lower())",  # which of the two?
        "    profile = str(backend(name))",
        "    profile = await backend(name)",  # awaited: not a blocking call
    ],
)
def test_no_af205_where_the_line_does_not_say_which_call(line: str) -> None:
    text = LOADER.replace("    profile = backend(name)", line)
    assert run_text(text, {"AF205"}, observed=(held(8),)).findings == []


def test_a_blocking_call_its_own_rule_knows_is_left_to_that_rule() -> None:
    text = (
        "import time\nimport requests\n\n\nasync def poll(url):\n    time.sleep(1)\n"
        "    session = requests.Session()\n    return session.get(url)\n"
    )
    observed = (held(6), held(8))
    # time.sleep is AF201's, even when AF201 is not selected
    assert run_text(text, {"AF205"}, observed=observed).findings[0].span.line == 8
    # the session's `get` is AF202's: with it selected, the runtime finding gives way, and
    # AF202's finding carries what was seen
    findings = run_text(text, {"AF201", "AF202", "AF205"}, observed=observed).findings
    assert [(f.code, f.span.line) for f in findings] == [("AF201", 6), ("AF202", 8)]
    assert findings[1].evidence[-1] == held(8).said()


FACTORY = """\
import aiohttp

SESSIONS = {"default": aiohttp.ClientSession}
kept = SESSIONS["default"]()


async def status():
    session = SESSIONS["default"]()
    return session.timeout


class Client:
    def __init__(self):
        self.session = SESSIONS["default"]()
"""


def unclosed(line: int, where: str = "created") -> Observed:
    return Observed("unclosed-resource", line, "t::u", "Unclosed client session", where)


def test_a_resource_seen_unclosed_is_an_af501_or_af503_without_a_fix() -> None:
    observed = (unclosed(4), unclosed(8), unclosed(14))
    result = run_text(FACTORY, {"AF501", "AF503"}, observed=observed)
    assert [(f.code, f.span.line, f.fix_safety.value) for f in result.findings] == [
        ("AF501", 8, "none"),
        ("AF503", 14, "none"),
    ]  # not the module's own `kept`: made at import time
    local, stored = result.findings
    assert "never closed when the tests ran (in t::u): Unclosed client session" in local.message
    assert "`async with`" in local.message and "async def close()" in stored.message
    assert local.evidence == [unclosed(8).said()]
    assert result.fixed is None  # nothing to fix
    # where it was garbage-collected is not where it was made: nothing
    collected = (unclosed(8, "collected"), unclosed(14, "collected"))
    assert run_text(FACTORY, {"AF501", "AF503"}, observed=collected).findings == []


def test_a_static_af501_takes_the_runtime_evidence_instead() -> None:
    text = (
        "import aiohttp\n\n\nasync def status():\n    session = aiohttp.ClientSession()\n"
        "    return session.headers\n"
    )
    (finding,) = run_text(text, {"AF501"}, observed=(unclosed(5),)).findings
    assert "made a resource" not in finding.message and finding.fix_safety.value == "unsafe"
    assert finding.evidence[-1] == unclosed(5).said()


def test_records_from_before_where_was_written_still_read(tmp_path: Path) -> None:
    path = tmp_path / "e.json"
    record = {
        "kind": "slow-callback",
        "test": "t",
        "message": "m",
        "site": {"path": "a.py", "line": 3},
    }
    path.write_text(json.dumps({"format": 1, "records": [record, {**record, "where": "blocked"}]}))
    (seen_here,) = load_evidence(path).values()
    assert [o.where for o in seen_here] == ["", "blocked"]
    path.write_text(json.dumps({"format": 1, "records": [{**record, "where": 3}]}))
    with pytest.raises(EvidenceError, match="record 0"):
        load_evidence(path)
