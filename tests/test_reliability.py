"""Odd paths and files (issue 21): each gets a clear message naming it, the other files are
processed, and the exit status says so -- never a hang, a traceback or a write outside the
project."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncfix.files import ORPHAN_AGE
from scripts.interrupts import signals_as_by_default

BLOCKING = "import time\n\n\nasync def f():\n    time.sleep(1)\n"


def asyncfix(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncfix", "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("")
    (project / "good.py").write_text(BLOCKING)
    return project


def test_files_that_are_not_files(tree: Path) -> None:
    os.mkfifo(tree / "pipe.py")  # reading it would wait for a writer forever
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(str(tree / "sock.py"))
        (tree / "dir.py").mkdir()  # a directory named like a module: walked, not read
        (tree / "dir.py" / "inner.py").write_text(BLOCKING)
        (tree / "dangling.py").symlink_to(tree / "nowhere.py")
        (tree / "linked.py").symlink_to(tree / "dir.py")  # a link to a directory: not followed
        (tree / "loop1.py").symlink_to(tree / "loop2.py")
        (tree / "loop2.py").symlink_to(tree / "loop1.py")
        done = asyncfix(tree, "--write", ".", timeout=60)
    finally:
        listener.close()
    assert done.returncode == 2, done.stderr
    for line in (
        "error: pipe.py: not a regular file (a named pipe); skipped",
        "error: sock.py: not a regular file (a socket); skipped",
        "error: dangling.py: a symbolic link that leads nowhere (dangling, or a loop); skipped",
        "error: loop1.py: a symbolic link that leads nowhere (dangling, or a loop); skipped",
    ):
        assert line in done.stderr
    assert "Traceback" not in done.stderr and "linked.py" not in done.stderr
    # the rest was fixed
    assert "asyncio.sleep(1)" in (tree / "good.py").read_text()
    assert "asyncio.sleep(1)" in (tree / "dir.py" / "inner.py").read_text()
    # named on the command line: the same, without waiting on the pipe
    named = asyncfix(tree, "pipe.py", "good.py", timeout=60)
    assert named.returncode == 2
    assert "pipe.py: not a regular file or a directory (a named pipe); skipped" in named.stderr


def test_a_link_out_of_the_project_is_not_followed(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.py"
    outside.write_text(BLOCKING)
    (tree / "borrowed.py").symlink_to(outside)
    done = asyncfix(tree, "--write", ".")
    assert done.returncode == 0, done.stderr
    assert "warning: borrowed.py: a symbolic link to a file outside the project" in done.stderr
    assert outside.read_text() == BLOCKING  # never written through the link
    # a link within the project is followed (and written through, the link kept)
    (tree / "alias.py").symlink_to(tree / "good.py")
    (tree / "good.py").write_text(BLOCKING)
    done = asyncfix(tree, "alias.py", "--write")
    assert done.returncode == 0 and (tree / "alias.py").is_symlink()
    assert "asyncio.sleep(1)" in (tree / "good.py").read_text()


def test_a_file_name_that_is_not_utf8(tree: Path) -> None:
    odd = os.path.join(os.fsencode(tree), b"caf\xe9.py")
    with open(odd, "wb") as handle:
        handle.write(BLOCKING.encode())
    done = asyncfix(tree, ".")
    assert done.returncode == 2
    assert "error: caf\\xe9.py: the file name is not valid UTF-8; skipped" in done.stderr
    assert "good.py:5:5: AF201" in done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("return 1\n", "syntax error at line 1, column 1: 'return' outside function"),
        (
            "async def f():\n    pass\nawait f()\n",
            "syntax error at line 3, column 1: 'await' outside function",
        ),
        (
            "def f():\n    nonlocal x\n",
            "syntax error at line 2, column 5: no binding for nonlocal 'x' found",
        ),
        ("x = 1  # a\x00b\n", "syntax error at line 1, column 11: source code cannot contain null"),
        (
            'x = 1\ny = "\x00"\n',
            "syntax error at line 2, column 6: source code cannot contain null",
        ),
        (
            "x = " + "(" * 250 + "1" + ")" * 250 + "\n",
            "syntax error at line 1, column 205: too many nested parentheses",
        ),
        (
            "".join("    " * i + "if x:\n" for i in range(120)) + "    " * 120 + "pass\n",
            "syntax error at line 101, column 1: too many levels of indentation",
        ),
        ("x = " + "1 + " * 100_000 + "1\n", "too deeply nested to parse"),
    ],
    ids=["return", "await", "nonlocal", "nul-comment", "nul-string", "parens", "blocks", "chain"],
)
def test_what_python_refuses_is_a_syntax_error(tree: Path, text: str, error: str) -> None:
    """Python refuses each (``compile``); asyncfix says so, where it can, in Python's words --
    whether or not the file holds anything a rule looks for."""
    (tree / "bad.py").write_text(text)
    done = asyncfix(tree, ".")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"error: bad.py: {error}" in done.stderr
    assert "good.py:5:5: AF201" in done.stdout and "Traceback" not in done.stderr


def test_long_lines_and_big_modules_are_checked(tree: Path) -> None:
    """A 1 MB line and a 2 MB module (20 MB is the benchmark's: scripts/stress.py)."""
    (tree / "wide.py").write_text("DATA = [" + "1, " * 350_000 + "]\n" + BLOCKING)
    big = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(60_000))
    (tree / "big.py").write_text(big + BLOCKING)
    done = asyncfix(tree, ".")
    assert done.returncode == 1, done.stderr
    lines = big.count("\n")
    assert f"big.py:{lines + 5}:5: AF201" in done.stdout
    assert "wide.py:6:5: AF201" in done.stdout


def _bound_by_modes() -> None:
    """In a child about to run asyncfix as root: give up the powers that let root read and
    write whatever the mode bits say (dropped from the bounding set, they are gone after
    ``exec``), so the modes bind it as they bind any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _unprivileged(tmp_path: Path) -> dict[str, Any] | None:
    """How to run asyncfix so that file modes bind it: as it is, unless this is root; then
    without root's powers over modes (``_bound_by_modes``), if that can be done here (else
    None)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return {}
    if not sys.platform.startswith("linux"):
        return None
    probe = tmp_path / "probe"
    probe.write_text("")
    probe.chmod(0)
    how = {"preexec_fn": _bound_by_modes}
    try:
        done = subprocess.run(
            [sys.executable, "-c", f"open({str(probe)!r})"], capture_output=True, timeout=60,
            **how,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        probe.unlink()
    return how if b"PermissionError" in done.stderr else None


def test_unreadable_and_read_only(tree: Path, tmp_path: Path) -> None:
    how = _unprivileged(tmp_path)
    if how is None:
        pytest.skip("root, and its powers over file modes cannot be given up here")
    secret = tree / "secret.py"
    secret.write_text(BLOCKING)
    secret.chmod(0)
    locked = tree / "locked"
    locked.mkdir()
    (locked / "fixme.py").write_text(BLOCKING)
    locked.chmod(0o555)  # its files cannot be replaced
    try:
        done = subprocess.run(
            [sys.executable, "-m", "asyncfix", "--no-cache", "--write", "."],
            cwd=tree, capture_output=True, text=True, timeout=120, **how,
        )  # fmt: skip
    finally:
        secret.chmod(0o644)
        locked.chmod(0o755)
    assert done.returncode == 2, done.stderr
    assert "error: secret.py: cannot read: Permission denied; file skipped" in done.stderr
    assert "error: locked/fixme.py: cannot write in " in done.stderr, done.stderr
    assert (locked / "fixme.py").read_text() == BLOCKING
    assert "asyncio.sleep(1)" in (tree / "good.py").read_text()


# -- interrupts -------------------------------------------------------------------------------

MODULE = """\
import asyncio
import time


async def poll_{n}(session):
    time.sleep(0.1)
    asyncio.create_task(session.refresh())
    return await session.get()
"""


def _make_tree(root: Path, count: int) -> dict[str, str]:
    files = {}
    for n in range(count):
        folder = root / f"pkg{n % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"mod{n}.py"
        text = MODULE.format(n=n)
        path.write_text(text)
        files[str(path.relative_to(root))] = text
    return files


def _fixed_tree(tmp_path: Path, count: int) -> dict[str, str]:
    reference = tmp_path / "reference"
    _make_tree(reference, count)
    done = asyncfix(reference, "--write", "--unsafe-fixes", "--jobs", "2", ".")
    assert done.returncode == 0, done.stderr
    return {str(p.relative_to(reference)): p.read_text() for p in reference.rglob("*.py")}


def _interrupt(
    tree: Path, how: signal.Signals, after: float, writing: bool
) -> subprocess.CompletedProcess[str]:
    """A run signalled ``after`` seconds from its start, or, ``writing``, from the moment
    its first file is written (the writes come after all the analysis, and are quick)."""
    sources = list(tree.rglob("*.py"))
    mtimes = [path.stat().st_mtime_ns for path in sources]
    process = subprocess.Popen(
        [sys.executable, "-m", "asyncfix", "--write", "--unsafe-fixes", "--jobs", "2", "."],
        cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=signals_as_by_default,
    )  # fmt: skip
    while writing and process.poll() is None:
        if [path.stat().st_mtime_ns for path in sources] != mtimes:
            break
        time.sleep(0.002)
    time.sleep(after)
    if how == signal.SIGINT:
        os.killpg(process.pid, how)  # Ctrl-C reaches the whole group
    else:
        os.kill(process.pid, how)  # `kill PID`: the main process only
    # the pipes close when every process holding them has ended: a pool's workers too,
    # which end on their own when the main process was killed
    out, err = process.communicate(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.mark.parametrize(
    ("how", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -9)]
)
def test_an_interrupted_write_loses_nothing(
    tmp_path: Path, how: signal.Signals, status: int
) -> None:
    """Interrupted at some moment of a ``--write --jobs 2`` run (first anywhere, then while
    it writes): each file is as it was or wholly fixed, no temporary file is left (after a
    SIGKILL, none once the next run has written), the message is one line, not a traceback
    per worker, and the next run finishes the job."""
    count = 240
    fixed = _fixed_tree(tmp_path, count)
    rng = random.Random(f"{how}")
    for attempt in range(2):
        tree = tmp_path / f"tree-{attempt}"
        original = _make_tree(tree, count)
        writing = attempt == 1
        done = _interrupt(tree, how, rng.uniform(0, 0.03) if writing else 1.0, writing)
        if done.returncode == 0:
            continue  # finished before the signal: nothing to see
        assert done.returncode == status, done.stderr
        if how != signal.SIGKILL:
            assert "Traceback" not in done.stderr, done.stderr
            assert done.stderr.strip().splitlines()[-1] == (
                f"asyncfix: {'interrupted' if how == signal.SIGINT else 'terminated'}; the "
                "files written so far are wholly fixed, the others unchanged"
            )
            # nothing but the sources, and the cache in its folder
            leftovers = [
                p for p in tree.rglob("*")
                if p.is_file() and p.suffix != ".py" and ".asyncfix_cache" not in p.parts
            ]  # fmt: skip
            assert leftovers == []
            cache = tree / ".asyncfix_cache"
            assert not [p for p in cache.rglob("*.tmp")] if cache.exists() else True
        for rel, text in original.items():
            now = (tree / rel).read_text()
            assert now in (text, fixed[rel]), rel
        if how == signal.SIGKILL:  # its temporary file is an orphan once this old
            time.sleep(ORPHAN_AGE)
        again = asyncfix(tree, "--write", "--unsafe-fixes", "--jobs", "2", ".")
        assert again.returncode == 0, again.stderr
        assert {rel: (tree / rel).read_text() for rel in original} == fixed
        assert not list(tree.rglob("*.asyncfix")), again.stderr  # a killed run's swept


def _signal_when_opened(monkeypatch: pytest.MonkeyPatch, how: signal.Signals, suffix: str) -> None:
    """The signal arrives the moment the temporary file (named ``*suffix``) is opened: the
    worst moment, inside the standard library, before the writer holds the file's name."""
    opened = os.open

    def open_then_signal(path: str, *args: object, **kwargs: object) -> int:
        fd = opened(path, *args, **kwargs)  # type: ignore[arg-type]
        if str(path).endswith(suffix):
            monkeypatch.setattr(os, "open", opened)
            os.kill(os.getpid(), how)
        return fd

    monkeypatch.setattr(os, "open", open_then_signal)


@contextlib.contextmanager
def _received_by(elsewhere: bool, how: signal.Signals) -> Iterator[None]:
    """With ``elsewhere``, the system must give ``how`` to another thread (a process pool
    has threads of their own): the main thread blocks it, another waits."""
    if not elsewhere:
        yield
        return
    done = threading.Event()
    other = threading.Thread(target=done.wait)
    other.start()
    signal.pthread_sigmask(signal.SIG_BLOCK, {how})
    try:
        yield
    finally:
        done.set()
        other.join()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {how})


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("elsewhere", [False, True], ids=["main thread", "another thread"])
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_a_write_comes_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: signal.Signals, elsewhere: bool
) -> None:
    """A signal that arrives while a file is written is taken once the file is replaced:
    the file is wholly new, and no temporary file is left beside it (nor beside the
    cache's), whichever thread the system gives the signal to."""
    from asyncfix.cache import write_atomically
    from asyncfix.files import atomic_write

    class Stop(BaseException):
        pass

    def stop(signum: int, frame: object) -> None:
        raise Stop(signum)

    previous = signal.signal(how, stop)
    try:
        source = tmp_path / "mod.py"
        source.write_bytes(b"old\n")
        _signal_when_opened(monkeypatch, how, ".asyncfix")
        with pytest.raises(Stop), _received_by(elsewhere, how):
            atomic_write(source, b"old\n", b"new\n")
        assert source.read_bytes() == b"new\n"
        cache = tmp_path / "cache.json"
        _signal_when_opened(monkeypatch, how, ".tmp")
        with pytest.raises(Stop), _received_by(elsewhere, how):
            write_atomically(cache, b"{}")
        assert cache.read_bytes() == b"{}"
    finally:
        signal.signal(how, previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.json", "mod.py"]


@pytest.mark.skipif(sys.platform == "win32", reason="no locks to tell a live writer by")
def test_a_temporary_file_a_killed_run_left_is_removed(tree: Path) -> None:
    """A ``--write`` run removes the temporary files beside a file it writes that no live
    writer holds and that are older than a moment, and says so; it spares a young one (a
    writer that has just made it), one another process holds, one beside a file it does not
    write, names not of its making, and a check run removes nothing."""
    old = time.time() - 60
    names = {
        "orphan": ".good.py.ab_d1234.asyncfix",
        "young": ".good.py.young123.asyncfix",
        "held": ".good.py.held1234.asyncfix",
        "other file": ".other.py.abcd1234.asyncfix",
        "not ours": ".good.py.notours.asyncfix",
        "a folder": ".good.py.folder12.asyncfix",
    }
    (tree / "other.py").write_text("async def g():\n    return 1\n")
    for what, name in names.items():
        path = tree / name
        path.mkdir() if what == "a folder" else path.write_text("half a file")
        stamp = time.time() + 60 if what == "young" else old  # young whatever the load
        os.utime(path, (stamp, stamp))
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); "
         "print('held', flush=True); sys.stdin.read()",
         str(tree / names["held"])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        checked = asyncfix(tree, ".")
        assert checked.returncode == 1 and "removed" not in checked.stderr
        assert all((tree / name).exists() for name in names.values())
        written = asyncfix(tree, "--write", ".")
    finally:
        holder.communicate("")
    assert written.returncode == 0, written.stderr
    assert "warning: good.py: removed .good.py.ab_d1234.asyncfix, left by an asyncfix run " in (
        written.stderr
    )
    assert written.stderr.count("removed") == 1, written.stderr
    assert sorted(p.name for p in tree.iterdir() if p.name.endswith(".asyncfix")) == sorted(
        name for what, name in names.items() if what != "orphan"
    )


# -- the cache --------------------------------------------------------------------------------


def _cached_tree(tree: Path) -> tuple[Path, str]:
    (tree / "other.py").write_text("async def g():\n    return 1\n")
    first = asyncfix_cached(tree, ".")
    assert first.returncode == 1, first.stderr
    return tree / ".asyncfix_cache", first.stdout


def asyncfix_cached(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncfix", *args], cwd=cwd, capture_output=True, text=True
    )


@pytest.mark.parametrize("damage", ["truncated", "emptied", "garbage", "directories"])
def test_a_damaged_cache_is_rebuilt(tree: Path, damage: str) -> None:
    cache, expected = _cached_tree(tree)
    rng = random.Random(damage)
    names = sorted(p.name for p in cache.glob("*.json"))
    assert len(names) >= 4  # results, depends, run, index, facts, names
    for path in cache.glob("*.json"):
        data = path.read_bytes()
        if damage == "truncated":
            path.write_bytes(data[: rng.randrange(1, len(data))])
        elif damage == "emptied":
            path.write_bytes(b"")
        elif damage == "garbage":
            path.write_bytes(bytes(rng.randrange(256) for _ in range(len(data))))
        else:
            path.unlink()
            path.mkdir()
    again = asyncfix_cached(tree, ".")
    assert (again.returncode, again.stdout) == (1, expected), again.stderr
    assert "Traceback" not in again.stderr and "error:" not in again.stderr
    if damage != "directories":  # rebuilt: the next run takes every result from it
        warm = asyncfix_cached(tree, ".")
        assert warm.stdout == expected and "(2 from cache" in warm.stderr


def test_a_cache_folder_that_cannot_be_written_is_a_note(tree: Path, tmp_path: Path) -> None:
    (tree / ".asyncfix_cache").write_text("not a folder")
    done = asyncfix_cached(tree, ".")
    assert done.returncode == 1 and "good.py:5:5: AF201" in done.stdout
    assert "the cache folder cannot be written" in done.stderr
    assert (tree / ".asyncfix_cache").read_text() == "not a folder"
    # --cache-dir somewhere nothing can be made
    elsewhere = asyncfix_cached(tree, "--cache-dir", "/proc/asyncfix-cannot", ".")
    assert elsewhere.returncode == 1 and "results are not cached" in elsewhere.stderr


def test_two_write_runs_at_once(tmp_path: Path) -> None:
    """Two ``--write`` runs on one tree (and one cache) at once: every file ends wholly
    fixed, written once -- the run that finds a file changed under it skips it with a
    warning -- and a third run finds nothing left, from a cache both wrote."""
    count = 120
    fixed = _fixed_tree(tmp_path, count)
    tree = tmp_path / "tree"
    original = _make_tree(tree, count)
    command = [sys.executable, "-m", "asyncfix", "--write", "--unsafe-fixes", "--jobs", "2", "."]
    runs = [
        subprocess.Popen(
            command, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (_, err) in zip(runs, outputs, strict=True):
        assert run.returncode in (0, 1) and "Traceback" not in err, err
    written = sum(int(re.search(r"(\d+) written", err)[1]) for _, err in outputs)  # type: ignore[index]
    skipped = sum(
        err.count("file changed on disk since it was read; not written") for _, err in outputs
    )
    assert written >= count and written + skipped <= 2 * count
    assert {rel: (tree / rel).read_text() for rel in original} == fixed
    assert not [p for p in tree.rglob("*") if p.is_file() and p.suffix not in (".py", ".json", "")]
    again = asyncfix_cached(tree, "--unsafe-fixes", ".")
    assert again.returncode == 0 and "Traceback" not in again.stderr


def test_the_compilers_warnings_about_the_code_are_not_printed(tree: Path) -> None:
    """Verifying a fix compiles the fixed file: what the compiler warns about in the
    project's own code (an ``is`` with a literal) is not asyncfix's to print."""
    (tree / "warns.py").write_text(
        "import time\nx = [1, 2]\n\n\nasync def f():\n    time.sleep(1)\n"
        '    return x[1, 2] if x is 1 else "\\\\d"\n'
    )
    done = asyncfix(tree, "--diff", "warns.py")
    assert done.returncode == 1 and "+    await asyncio.sleep(1)" in done.stdout
    assert "Warning" not in done.stderr, done.stderr


def test_a_file_too_large_to_fix_is_reported_without_fixes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """LibCST's memory and time grow with the nodes of a file: past a limit its findings
    come without fixes, and a warning says why (scripts/stress.py measures the real one)."""
    from asyncfix.engine import process
    from tests.helpers import run_text

    text = BLOCKING + "".join(f"\n\ndef f{i}():\n    return {i}\n" for i in range(50))
    monkeypatch.setattr(process, "SIZE_CHECKED", 100)
    monkeypatch.setattr(process, "MAX_FIX_NODES", 200)
    result = run_text(text, {"AF201"})
    (finding,) = result.findings
    assert result.fixed is None and finding.fix_safety.value == "none"
    assert finding.message.endswith("(no fix: the file is too large to fix)")
    assert result.partial is not None and "syntax nodes" in result.partial
    monkeypatch.setattr(process, "MAX_FIX_NODES", 2000)
    assert run_text(text, {"AF201"}).fixed is not None


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_a_file_libcst_does_not_reproduce_is_reported_without_fixes(
    tree: Path, newline: str
) -> None:
    """LibCST drops a line holding nothing but a backslash continuation: a fix made on its
    tree would take that line out too (found by ``scripts/fuzz.py --seed 1``: the next run
    then changed the file again). Such a file gets its findings without fixes, and a warning
    naming the line; a file without that line is fixed as before."""
    body = "async def f():\n    time.sleep(1)\n    \\" + newline + "     pass\n"
    odd = tree / "odd.py"
    odd.write_bytes(f"import time\n\n\n{body}".encode())
    done = asyncfix(tree, "--diff", "--unsafe-fixes", "odd.py")
    assert (done.returncode, done.stdout.startswith("---")) == (0, False), done.stdout
    assert "odd.py: LibCST, which makes the fixes, does not reproduce this file exactly " in (
        done.stderr
    )
    assert "(line 6)" in done.stderr, done.stderr
    written = asyncfix(tree, "--write", "--unsafe-fixes", "odd.py")
    assert written.returncode == 1 and odd.read_bytes() == f"import time\n\n\n{body}".encode()
    check = asyncfix(tree, "--output-format", "json", "odd.py")
    ((finding,),) = [file["findings"] for file in json.loads(check.stdout)["files"]]
    assert finding["message"].endswith("(no fix: LibCST cannot reproduce the file)")
    plain = tree / "plain.py"
    plain.write_text("import time\n\n\n" + body.replace("    \\" + newline + " ", ""))
    assert asyncfix(tree, "--diff", "--unsafe-fixes", "plain.py").stdout.startswith("---")


@pytest.mark.parametrize("odd", list("\x0c\x0b\x1c\x1d\x1e\x85\u2028\u2029"))
def test_characters_str_splitlines_breaks_at_are_not_line_ends(tree: Path, odd: str) -> None:
    """Python ends a line at LF, CRLF or CR only; ``str.splitlines`` also at a form feed and
    a few more. Counted its way, every line after one moved: fixes were looked for at the
    wrong line and left out, and the next run fixed them (found by ``scripts/fuzz.py --seed
    2``: a comment holding ``\\x1c``). Finding, message, excerpt, fix and a suppression
    after it stay where they are."""
    text = (
        "import time\n"
        f"{'' if odd == chr(12) else '#'}{odd}\n"  # a page break, as form feeds are used
        f"# {odd} a comment {odd}\n"
        "async def f():\n"
        f"    x = 1  # {odd}\n"
        "    time.sleep(1)\n"
        "    time.sleep(2)  # noqa: AF201\n"
    )
    (tree / "odd.py").write_bytes(text.encode())
    checked = asyncfix(tree, "--output-format", "full", "odd.py")
    assert checked.returncode == 1, checked.stderr
    assert "odd.py:6:5: AF201" in checked.stdout and "odd.py:7" not in checked.stdout
    assert "6 │     time.sleep(1)\n  │     ^^^^^^^^^^^^^ AF201" in checked.stdout
    written = asyncfix(tree, "--write", "odd.py")
    assert written.returncode == 0 and "warning" not in written.stderr, written.stderr
    fixed = (tree / "odd.py").read_bytes().decode()
    assert fixed == text.replace("import time\n", "import asyncio\nimport time\n", 1).replace(
        "    time.sleep(1)", "    await asyncio.sleep(1)"
    )
    again = asyncfix(tree, "--write", "odd.py")
    assert again.returncode == 0 and (tree / "odd.py").read_bytes().decode() == fixed
