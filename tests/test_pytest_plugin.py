"""The runtime-evidence pytest plugin, run by pytest in a subprocess on the example project
(examples/runtime): each signal recorded with its test and the line that caused it."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from asyncfix import pytest_plugin

EXAMPLE = Path(__file__).parent.parent / "examples" / "runtime"


def line_of(path: Path, text: str) -> int:
    (number,) = [n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    return number


def run_plugin(tmp_path: Path, *options: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    project = tmp_path / "runtime"
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns(".asyncfix_cache"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "asyncfix.pytest_plugin", "-p", "no:cacheprovider",
         "-q", *options],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    evidence = project / ".asyncfix_cache" / "evidence.json"
    data = json.loads(evidence.read_text()) if evidence.exists() else None
    return done, data


def by_kind(data: Any) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in data["records"]:
        found.setdefault(record["kind"], []).append(record)
    return found


def test_every_signal_is_recorded_with_its_test_and_line(tmp_path: Path) -> None:
    done, data = run_plugin(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr  # the tests themselves pass
    service = tmp_path / "runtime" / "service.py"
    assert data["format"] == 1 and data["tests"] == 9
    kinds = by_kind(data)
    assert sorted(kinds) == [
        "exception-never-retrieved",
        "never-awaited",
        "slow-callback",
        "task-destroyed-pending",
        "unclosed-resource",
    ]
    expected = {
        "never-awaited": ("test_dispatch", "handler(device)"),
        "task-destroyed-pending": ("test_polling", "create_task(_poll_forever())"),
        "exception-never-retrieved": ("test_failing_job", "create_task(_fail())"),
    }
    for kind, (test, marker) in expected.items():
        (record,) = kinds[kind]
        assert record["test"] == f"tests/test_service.py::{test}", kind
        assert Path(record["site"]["path"]).resolve() == service.resolve(), kind
        first = marker.split("\n")[0]
        lines = [n for n, line in enumerate(service.read_text().splitlines(), 1) if first in line]
        assert record["site"]["line"] in lines, (kind, record["site"])
    assert "'refresh' was never awaited" in kinds["never-awaited"][0]["message"]
    assert "_poll_forever()" in kinds["task-destroyed-pending"][0]["message"]
    assert "ValueError: device offline" in kinds["exception-never-retrieved"][0]["message"]
    # a slow callback is placed at the line the loop's thread was sampled at: the blocking
    # call itself, or the coroutine's call into the sync code that blocked
    sensor, profile = sorted(kinds["slow-callback"], key=lambda r: r["test"], reverse=True)
    assert sensor["test"] == "tests/test_service.py::test_read_sensor"
    assert sensor["seconds"] >= 0.1 and "read_sensor()" in sensor["message"]
    assert sensor["where"] == "blocked"
    assert sensor["site"]["line"] == line_of(service, "time.sleep(0.15)  # holds")
    assert profile["test"] == "tests/test_service.py::test_load_profile"
    assert profile["site"]["line"] == line_of(service, "profile = backend(name)")
    assert profile["site"]["function"] == "load_profile"
    disk = line_of(service, "time.sleep(0.15)  # a slow disk")
    assert f"(in _read_disk() at service.py:{disk})" in profile["message"]
    assert profile["stack"][-1]["function"] == "_read_disk"  # innermost last
    socket, session, chosen = sorted(kinds["unclosed-resource"], key=lambda r: r["test"])
    assert socket["test"] == "tests/test_service.py::test_probe"
    assert "unclosed <socket.socket" in socket["message"]
    # a resource that keeps its creation stack (aiohttp, in debug mode) is placed there
    assert session["test"] == "tests/test_service.py::test_session_headers"
    assert "Unclosed client session" in session["message"]
    assert session["site"]["line"] == line_of(service, "session = aiohttp.ClientSession()")
    assert (session["where"], socket["where"]) == ("created", "collected")
    assert chosen["site"]["line"] == line_of(service, 'session = SESSIONS["default"]()')
    # the summary at the end of the session
    assert "asyncfix runtime evidence" in done.stdout
    assert "never-awaited: 1 (in 1 tests)" in done.stdout
    assert "test_clean" not in json.dumps(data)


def test_options_threshold_and_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "evidence.json"
    done, _ = run_plugin(
        tmp_path, "--asyncfix-slow-callback", "5", "--asyncfix-evidence", str(target)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    kinds = by_kind(json.loads(target.read_text()))
    assert "slow-callback" not in kinds  # 0.15 s is under 5 s
    unclosed = next(r for r in kinds["unclosed-resource"] if r["test"].endswith("probe"))
    tests = tmp_path / "runtime" / "tests" / "test_service.py"
    # where the socket was garbage-collected: the end of the test's line that dropped it
    assert unclosed["site"]["line"] == line_of(tests, "assert service.probe(80)")


def test_a_session_with_nothing_to_see(tmp_path: Path) -> None:
    done, data = run_plugin(tmp_path, "-k", "clean")
    assert done.returncode == 0
    assert data["records"] == [] and data["counts"] == {}
    assert "nothing seen in 1 tests" in done.stdout


def test_a_deadlock_fails_its_test_with_every_tasks_stack(tmp_path: Path) -> None:
    done, data = run_plugin(tmp_path, "--asyncfix-hang", "1", "hangs")
    assert done.returncode == 1  # the test failed instead of waiting for its 60 s timeout
    assert "asyncfix: no callback ran for" in done.stdout
    (hang,) = data["records"]  # and not the cancellation's own never-retrieved exceptions
    assert hang["kind"] == "hang" and hang["test"] == "hangs/test_hang.py::test_deadlock"
    test = tmp_path / "runtime" / "hangs" / "test_hang.py"
    assert hang["site"]["line"] == line_of(test, "await asyncio.wait_for(")
    awaiting = line_of(test, "async with second:")
    assert hang["message"].count(f"transfer() at test_hang.py:{awaiting}") == 2
    assert "main() at test_hang.py" in hang["message"]


def test_the_hang_detectors_own_cancellation_is_not_reported_in_any_order(tmp_path: Path) -> None:
    """The watchdog cancels a hung loop's tasks in no set order: when the task awaiting a
    gather is cancelled first, the gather cancels its children without the hang's message and
    asyncio then logs the gather's CancelledError as never retrieved. That is the
    cancellation's own doing, on that loop only."""
    evidence = pytest_plugin.Evidence(tmp_path, 0.1)
    hung, other = asyncio.new_event_loop(), asyncio.new_event_loop()
    idle = threading.Event()

    async def deadlock() -> None:
        hung.call_later(0.05, idle.set)
        await asyncio.gather(hung.create_future())  # nothing will ever set it

    outcome: list[BaseException] = []

    def run() -> None:
        try:
            hung.run_until_complete(deadlock())
        except BaseException as error:  # what the test looks at
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert idle.wait(10)
        ident = thread.ident
        assert ident is not None
        while not sys._current_frames()[ident].f_code.co_filename.endswith("selectors.py"):
            time.sleep(0.01)
        pytest_plugin._Watchdog(evidence, 1.0)._hung(hung, ident, 2.0)
        thread.join(10)
        assert isinstance(outcome[0], asyncio.CancelledError)  # the tasks were cancelled
        assert [r.kind for r in evidence.records] == ["hang"]
        cancelled = asyncio.CancelledError()  # as a gather's child makes it: no message
        seen = {"message": "_GatheringFuture exception was never retrieved", "exception": cancelled}
        evidence.exception_context(seen, hung)
        assert [r.kind for r in evidence.records] == ["hang"]
        evidence.exception_context(seen, other)  # a loop the watchdog did not touch
        assert [r.kind for r in evidence.records] == ["hang", "exception-never-retrieved"]
    finally:
        thread.join(10)
        hung.close()
        other.close()


def test_perturbation_finds_the_lost_update_and_not_the_locked_counter(tmp_path: Path) -> None:
    done, data = run_plugin(tmp_path, "--asyncfix-perturb", "40", "races")
    assert done.returncode == 1  # the perturbed runs that lost an update failed
    (record,) = data["records"]
    assert record["kind"] == "perturbation"
    assert record["test"] == "races/test_counter.py::test_counter"  # not the locked one
    found = re.match(
        r"fails in (\d+) of 40 perturbed runs and passes as it is \(seeds ([\d, ]+)",
        record["message"],
    )
    assert found is not None, record["message"]
    assert 0 < int(found[1]) < 40
    test = tmp_path / "runtime" / "races" / "test_counter.py"
    assert record["site"]["line"] == line_of(test, "def test_counter()")
    assert "races/test_counter.py::test_counter fails in" in done.stdout
    # a seed reproduces its failure, and the same seeds fail again
    seed = found[2].split(",")[0]
    again, _ = run_plugin(
        tmp_path / "again", "--asyncfix-perturb", "1", "--asyncfix-seed", seed, "races"
    )
    assert (
        again.returncode == 1 and "test_counter[asyncfix-perturb0] - assert 1 == 2" in again.stdout
    )
    _, data2 = run_plugin(tmp_path / "same", "--asyncfix-perturb", "40", "races")
    assert data2["records"][0]["message"] == record["message"]


def test_perturbation_keeps_what_another_thread_schedules_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A callback another thread appends (`call_soon_threadsafe`) while a perturbed turn
    sorts the ready queue must stay in it (losing it hung janus's threaded tests)."""
    import asyncio
    import collections
    import random

    from asyncfix import pytest_plugin

    class Racing(collections.deque):  # type: ignore[type-arg]
        appended = False

        def popleft(self) -> object:
            if not self.appended:  # the other thread, right now
                self.appended = True
                self.append("from another thread")
            return super().popleft()

    async def idle() -> None:
        await asyncio.sleep(0)

    loop = asyncio.new_event_loop()
    try:
        tasks = [loop.create_task(idle()) for _ in range(4)]
        ready = Racing(loop._ready)  # type: ignore[attr-defined]
        fake = type("Loop", (), {"_ready": ready})()
        monkeypatch.setattr(pytest_plugin, "_ORIGINAL_RUN_ONCE", lambda loop: None)
        monkeypatch.setattr(pytest_plugin, "_PERTURB", [random.Random(1)])
        pytest_plugin._perturbed_run_once(fake)  # type: ignore[arg-type]
        assert "from another thread" in ready
        assert len(ready) == len(tasks) + 1  # the held-back ones are back too
        loop.run_until_complete(asyncio.gather(*tasks))  # the real queue runs them
    finally:
        loop.close()


def test_a_slow_callback_nobody_sampled_is_placed_at_its_next_await(tmp_path: Path) -> None:
    """Without a sample of the loop's thread (a step shorter than the sampler's period), the
    record says where the coroutine was suspended next: the blocking code is before it."""
    import logging

    from asyncfix import pytest_plugin

    evidence = pytest_plugin.Evidence(tmp_path, 0.1)
    handle = "<Task pending name='Task-1' coro=<poll() running at /p/m.py:7> cb=[...]>"
    record = logging.LogRecord(
        "asyncio", logging.WARNING, "", 0, "Executing %s took %.3f seconds", (handle, 0.25), None
    )
    evidence.slow_callback(record)
    (seen,) = evidence.records
    assert (seen.where, seen.site, seen.seconds) == (
        "suspended",
        pytest_plugin.Site("/p/m.py", 7, "poll"),
        0.25,
    )
    assert "held the event loop for 0.250 s" in seen.message


def test_under_xdist_the_workers_evidence_is_one_file(tmp_path: Path) -> None:
    """Each xdist worker writes its part; the controller joins them (and tells a test's
    perturbed runs apart, which land on any worker) and leaves no part behind."""
    pytest.importorskip("xdist")
    done, data = run_plugin(tmp_path / "xdist", "-n", "2", "tests")
    assert done.returncode == 0, done.stdout + done.stderr
    _, alone = run_plugin(tmp_path / "alone", "tests")
    assert data["tests"] == alone["tests"] == 9
    assert data["counts"] == alone["counts"]
    assert "never-awaited: 1 (in 1 tests)" in done.stdout  # not twice (the controller's copy)
    folder = tmp_path / "xdist" / "runtime" / ".asyncfix_cache"
    assert sorted(p.name for p in folder.iterdir()) == [".gitignore", "evidence.json"]
    perturbed, raced = run_plugin(
        tmp_path / "races", "-n", "2", "--asyncfix-perturb", "20", "races"
    )
    assert perturbed.returncode == 1  # the perturbed runs that lost the update failed
    (record,) = raced["records"]
    assert (
        record["kind"] == "perturbation" and record["test"] == "races/test_counter.py::test_counter"
    )
    assert re.match(r"fails in \d+ of 20 perturbed runs", record["message"])
