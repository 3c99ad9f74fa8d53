"""Fixes a maintainer can merge: what the engine knows about a file (test code, the target
Python) and how it keeps a wrong fix out of the output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import Result

from asyncfix.cli import main
from asyncfix.config import target_from_requires
from asyncfix.files import is_test_path
from tests.helpers import cli_runner

BLOCKING = """\
import time


async def poll():
    time.sleep(1)
"""


def invoke(*args: str) -> Result:
    return cli_runner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    return tmp_path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tests/test_api.py", True),
        ("tests/helpers.py", True),
        ("src/pkg/test/fixtures.py", True),
        ("test_api.py", True),
        ("pkg/api_test.py", True),
        ("conftest.py", True),
        ("pkg/sub/conftest.py", True),
        ("pkg/testing.py", False),
        ("pkg/contest.py", False),
        ("pkg/latest_api.py", False),
        ("pkg/attest/api.py", False),
        ("docs/snippets/why/cancellation.py", True),
        ("doc/example.py", True),
        ("pkg/docstring.py", False),
        ("examples/service.py", False),
    ],
)
def test_test_code_is_known_by_where_it_lives(path: str, expected: bool) -> None:
    assert is_test_path(path) is expected


def test_blocking_fixes_are_not_offered_in_test_code(project: Path) -> None:
    """The same sleep: fixed in the package, reported without a fix in its tests (measured
    relative to the project root, so a project that itself lives under a `tests` folder is
    not all test code)."""
    (project / "pkg").mkdir()
    (project / "pkg" / "poll.py").write_text(BLOCKING)
    (project / "tests").mkdir()
    (project / "tests" / "test_poll.py").write_text(BLOCKING)
    result = invoke("--write", "--unsafe-fixes", ".")
    assert result.exit_code == 1, result.output
    assert "await asyncio.sleep(1)" in (project / "pkg" / "poll.py").read_text()
    assert (project / "tests" / "test_poll.py").read_text() == BLOCKING
    assert "no fix in tests and docs" in result.output


def test_a_project_under_a_tests_folder_is_not_all_test_code(tmp_path: Path) -> None:
    root = tmp_path / "tests" / "demo"
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (root / "poll.py").write_text(BLOCKING)
    result = cli_runner().invoke(main, ["--write", str(root)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "await asyncio.sleep(1)" in (root / "poll.py").read_text()


LAZY_INIT = """\
class Client:
    def __init__(self, connector):
        self._connector = connector
        self._connection = None

    async def connect(self):
        if self._connection is None:
            self._connection = await self._connector()
        return self._connection
"""


@pytest.mark.parametrize(
    ("files", "options", "fixed"),
    [
        ({"pyproject.toml": '[project]\nname = "d"\nrequires-python = ">=3.9"\n'}, [], False),
        ({"setup.cfg": "[options]\npython_requires = >=3.8\n"}, [], False),
        ({"pyproject.toml": '[project]\nname = "d"\nrequires-python = ">=3.10"\n'}, [], True),
        ({"pyproject.toml": '[project]\nname = "d"\n'}, [], True),
        (
            {"pyproject.toml": '[project]\nname = "d"\nrequires-python = ">=3.9"\n'},
            ["--target-version", "py311"],
            True,
        ),
        (
            {
                "pyproject.toml": '[project]\nname = "d"\nrequires-python = ">=3.9"\n'
                '[tool.asyncfix]\ntarget-version = "py312"\n'
            },
            [],
            True,
        ),
    ],
    ids=["requires-python 3.9", "setup.cfg 3.8", "3.10", "none", "option wins", "config wins"],
)
def test_target_version_comes_from_requires_python(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str],
    options: list[str],
    fixed: bool,
) -> None:
    """A lock made in `__init__` is offered only when the project runs on 3.10+ (before, it
    binds to the loop of whatever thread builds the object)."""
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "client.py").write_text(LAZY_INIT)
    result = invoke("--write", "--unsafe-fixes", *options, "client.py")
    changed = (tmp_path / "client.py").read_text() != LAZY_INIT
    assert changed is fixed, result.output
    if not fixed and not options:
        assert "before Python 3.10" in result.output


@pytest.mark.parametrize(
    ("spec", "target"),
    [
        (">=3.9", "py39"),
        ("~=3.8", "py38"),
        (">= 3.10", "py310"),
        (">=3.8,<4.0", "py38"),
        ("^3.11", "py311"),
        ("==3.12.*", "py312"),
        (">=3.6", "py38"),
        (">=3.15", "py314"),
        ("<4", None),
        (">=3.10, !=3.11.1", "py310"),
    ],
)
def test_target_from_requires_python(spec: str, target: str | None) -> None:
    assert target_from_requires(spec) == target


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (
            b"# -*- coding: latin-1 -*-\n" + BLOCKING.encode() + b"    print('d\xe9j\xe0 vu')\n",
            "latin1",
        ),
        (b"\xef\xbb\xbf" + BLOCKING.encode() + "    print('déjà')\n".encode(), "bom"),
        (BLOCKING.replace("\n", "\r\n").encode(), "crlf"),
        (BLOCKING.rstrip("\n").encode(), "no final newline"),
        # a bare CR ends a line for Python, not for git: found by scripts/fuzz.py
        (b"x = (1,\r 2)\n" + BLOCKING.encode() + b"    y = \\\r    3\n", "bare CR"),
        (b"x = 1\r" + BLOCKING.rstrip("\n").encode() + b"\r", "bare CR at the end"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_diff_applies_with_git_apply_in_the_files_own_bytes(
    project: Path, raw: bytes, name: str
) -> None:
    """The diff is in the file's bytes (its encoding, BOM and line endings), so `git apply`
    gives exactly what `--write` writes."""
    subprocess.run(["git", "init", "-q"], check=True)
    (project / "pkg").mkdir()
    target = project / "pkg" / "poll.py"
    target.write_bytes(raw)
    diff = cli_runner().invoke(main, ["--diff", "pkg"], catch_exceptions=False)
    assert diff.exit_code == 1, diff.output
    patch = diff.stdout_bytes
    assert patch.startswith(b"--- a/pkg/poll.py\n+++ b/pkg/poll.py\n")
    (project / "fix.patch").write_bytes(patch)
    subprocess.run(["git", "apply", "--check", "fix.patch"], check=True)
    subprocess.run(["git", "apply", "fix.patch"], check=True)
    applied = target.read_bytes()
    target.write_bytes(raw)
    assert invoke("--write", "pkg").exit_code == 0
    assert applied == target.read_bytes()
    assert applied != raw
    # only the fixed line changed: the last line break (or its absence) is the file's own
    assert applied.endswith(b"\r") == raw.endswith(b"\r")
    assert applied.endswith(b"\n") == raw.endswith(b"\n")


def test_diff_paths_are_relative_to_the_work_tree_from_a_subdirectory(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subprocess.run(["git", "init", "-q"], check=True)
    (project / "pkg").mkdir()
    (project / "pkg" / "poll.py").write_text(BLOCKING)
    (project / "docs").mkdir()
    monkeypatch.chdir(project / "docs")
    diff = invoke("--diff", "../pkg/poll.py")
    assert diff.stdout.startswith("--- a/pkg/poll.py\n+++ b/pkg/poll.py\n")
    (project / "fix.patch").write_bytes(diff.stdout_bytes)
    monkeypatch.chdir(project)
    subprocess.run(["git", "apply", "fix.patch"], check=True)
    assert "await asyncio.sleep(1)" in (project / "pkg" / "poll.py").read_text()


TWO_SLEEPS_AND_A_REQUEST = """\
import time

import requests


async def poll():
    time.sleep(1)


async def wait():
    time.sleep(2)


async def fetch(url):
    return requests.get(url)
"""


def test_the_report_says_only_what_happened(project: Path) -> None:
    """In check mode nothing is fixed: the other findings are "fixable", not "fixed"; an
    unsafe suggestion shows the lines it would change; after --write "fixed" means written."""
    (project / "app.py").write_text(TWO_SLEEPS_AND_A_REQUEST)
    checked = invoke("--output-format", "report", "app.py").output
    assert "  fixed" not in checked
    assert "app.py:11  AF201  fixable with --write" in checked
    assert "SUGGESTED FIX - not applied: unsafe" in checked.replace("—", "-")
    assert "    +     return await asyncio.to_thread(requests.get, url)" in checked
    written = invoke("--write", "--output-format", "report", "app.py").output
    assert "app.py:11  AF201  fixed" in written
    assert "suggested (unsafe: --unsafe-fixes)" not in written  # AF202 has no twin here
    assert (project / "app.py").read_text() != TWO_SLEEPS_AND_A_REQUEST
