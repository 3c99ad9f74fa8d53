"""Odd paths and files (issue 21): each gets a clear message naming it, the other files are
processed, and the exit status says so -- never a hang, a traceback or a write outside the
project."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert "Traceback" not in done.stderr
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


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes whatever the mode says")
def test_unreadable_and_read_only(tree: Path) -> None:
    secret = tree / "secret.py"
    secret.write_text(BLOCKING)
    secret.chmod(0)
    locked = tree / "locked"
    locked.mkdir()
    (locked / "fixme.py").write_text(BLOCKING)
    locked.chmod(0o555)  # its files cannot be replaced
    try:
        done = asyncfix(tree, "--write", ".")
    finally:
        secret.chmod(0o644)
        locked.chmod(0o755)
    assert done.returncode == 2
    assert "secret.py" in done.stderr and "Permission denied" in done.stderr
    assert "fixme.py" in done.stderr
    assert (locked / "fixme.py").read_text() == BLOCKING
    assert "asyncio.sleep(1)" in (tree / "good.py").read_text()
