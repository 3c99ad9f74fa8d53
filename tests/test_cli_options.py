"""The command line's ruff-style options: rule selection layers, exit-status switches,
statistics, the fix listing, the output file, colour, the cache directory, the settings
shown, stdin, asyncfix.toml, and ``rules --output-format json``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result

from asyncfix.cli import main
from asyncfix.codemods import RULES
from tests.helpers import cli_runner

SLEEPY = """\
import time


async def poll():
    time.sleep(1)
"""
FIXED = """\
import asyncio


async def poll():
    await asyncio.sleep(1)
"""
# AF201 (a safe fix) and AF101 on `return self._get()` (an unsafe one)
MIXED = """\
import time


class Api:
    async def _get(self):
        time.sleep(1)
        return 1

    async def get(self):
        return self._get()
"""


def invoke(*args: str, stdin: bytes | None = None) -> Result:
    return cli_runner().invoke(main, list(args), input=stdin, catch_exceptions=False)


def codes(result: Result) -> list[str]:
    return [line.split()[1] for line in result.stdout.splitlines() if line.startswith("pkg/")]


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("NO_COLOR", "FORCE_COLOR", "ASYNCFIX_OUTPUT_FORMAT", "ASYNCFIX_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mixed.py").write_text(MIXED)
    return tmp_path


def configure(project: Path, text: str) -> None:
    (project / "pyproject.toml").write_text(f"[tool.asyncfix]\n{text}")


# -- selection -------------------------------------------------------------------------------


def test_command_line_select_overrides_a_configured_ignore(project: Path) -> None:
    configure(project, 'ignore = ["AF2"]\n')
    assert codes(invoke("pkg")) == ["AF101"]
    assert codes(invoke("--select", "AF201", "pkg")) == ["AF201"]
    # --ignore adds to the configured one
    assert codes(invoke("--ignore", "AF101", "pkg")) == []


@pytest.mark.parametrize(
    ("select", "ignore", "expected"),
    [
        ('["AF2"]', '["AF201"]', []),
        ('["AF201"]', '["AF2"]', ["AF201"]),  # the more specific selector wins
        ('["ALL"]', '["AF1"]', ["AF201"]),
        ('["AF1", "AF201"]', '["AF101"]', ["AF201"]),
        ('["AF201"]', '["AF201"]', []),  # at one specificity, ignore wins
    ],
)
def test_a_more_specific_selector_wins(
    project: Path, select: str, ignore: str, expected: list[str]
) -> None:
    configure(project, f"select = {select}\nignore = {ignore}\n")
    assert codes(invoke("pkg")) == expected


def test_extend_select_and_extend_ignore(project: Path) -> None:
    configure(project, 'select = ["AF1"]\n')
    assert codes(invoke("pkg")) == ["AF101"]
    assert codes(invoke("--extend-select", "AF201", "pkg")) == ["AF201", "AF101"]
    assert codes(invoke("--extend-select", "AF2", "--extend-ignore", "AF101", "pkg")) == ["AF201"]
    configure(project, 'select = ["AF1"]\nextend-select = ["AF201"]\n')
    assert codes(invoke("pkg")) == ["AF201", "AF101"]


@pytest.mark.parametrize("option", ["--select", "--ignore", "--extend-select"])
def test_an_empty_selector_is_an_error(project: Path, option: str) -> None:
    result = invoke(option, "", "pkg")
    assert result.exit_code == 2
    assert f"{option} needs rule codes" in result.stderr


def test_per_file_ignores_on_the_command_line(project: Path) -> None:
    configure(project, '[tool.asyncfix.per-file-ignores]\n"pkg/*" = ["AF101"]\n')
    assert codes(invoke("pkg")) == ["AF201"]
    # --per-file-ignores replaces the table, --extend-per-file-ignores adds to it
    assert codes(invoke("--per-file-ignores", "other/*:AF2", "pkg")) == ["AF201", "AF101"]
    assert codes(invoke("--extend-per-file-ignores", "pkg/mixed.py:AF2", "pkg")) == []
    bad = invoke("--per-file-ignores", "AF101", "pkg")
    assert bad.exit_code == 2 and "expected PATTERN:CODES" in bad.stderr


# -- exit status -----------------------------------------------------------------------------


def test_exit_zero_but_not_on_errors(project: Path) -> None:
    assert invoke("--exit-zero", "pkg").exit_code == 0
    (project / "pkg" / "broken.py").write_text("def f(:\n")
    assert invoke("--exit-zero", "pkg").exit_code == 2


def test_exit_non_zero_on_fix(project: Path) -> None:
    (project / "pkg" / "mixed.py").write_text(SLEEPY)
    assert invoke("--write", "--exit-non-zero-on-fix", "pkg").exit_code == 1
    assert (project / "pkg" / "mixed.py").read_text() == FIXED
    # nothing fixed this time
    assert invoke("--write", "--exit-non-zero-on-fix", "pkg").exit_code == 0
    (project / "pkg" / "mixed.py").write_text(SLEEPY)
    assert invoke("--write", "pkg").exit_code == 0


def test_fix_only_writes_and_reports_nothing_left(project: Path) -> None:
    result = invoke("--fix-only", "pkg")
    assert result.exit_code == 0  # AF101's unsafe fix is left, and not reported
    assert "await asyncio.sleep(1)" in (project / "pkg" / "mixed.py").read_text()
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Fixed pkg/mixed.py:6:9: AF201")
    assert not any("AF101" in line for line in lines)
    assert invoke("--fix-only", "--exit-non-zero-on-fix", "pkg").exit_code == 0  # done before


def test_fix_only_with_diff_writes_nothing(project: Path) -> None:
    result = invoke("--fix-only", "--diff", "pkg")
    assert result.exit_code == 0
    assert "+        await asyncio.sleep(1)" in result.stdout
    assert (project / "pkg" / "mixed.py").read_text() == MIXED


# -- what is printed -------------------------------------------------------------------------


def test_statistics(project: Path) -> None:
    (project / "pkg" / "two.py").write_text(SLEEPY.replace("(1)", "(1)\n    time.sleep(2)"))
    result = invoke("--statistics", "pkg")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[:2] == [
        "3\tAF201\t[*] blocking-sleep",
        "1\tAF101\t    missing-await",
    ]
    rows = json.loads(invoke("--statistics", "--output-format", "json", "pkg").stdout)
    assert rows == [
        {"code": "AF201", "name": "blocking-sleep", "count": 3, "fixable": 3},
        {"code": "AF101", "name": "missing-await", "count": 1, "fixable": 0},
    ]


def test_show_fixes(project: Path) -> None:
    result = invoke("--show-fixes", "pkg")
    assert "Would fix 1 finding (with --write):\n- pkg/mixed.py:\n" in result.stdout
    result = invoke("--write", "--unsafe-fixes", "--show-fixes", "--ascii", "pkg")
    assert result.exit_code == 0
    assert (
        "Fixed 2 findings:\n- pkg/mixed.py:\n    1 x AF101 (missing-await)\n"
        "    1 x AF201 (blocking-sleep)\n"
    ) in result.stdout


def test_output_file(project: Path) -> None:
    result = invoke("--output-file", "out/report.txt", "--color", "always", "pkg")
    assert result.exit_code == 2  # the folder does not exist
    assert "--output-file out/report.txt" in result.stderr
    result = invoke("-o", "report.txt", "--color", "always", "pkg")
    assert result.exit_code == 1
    assert result.stdout == ""
    written = (project / "report.txt").read_text()
    assert written.startswith("pkg/mixed.py:6:9: AF201 ")
    assert "\x1b[" not in written  # no colour in a file


def test_color_always_never_and_the_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "\x1b[" in invoke("--color", "always", "pkg").stdout
    assert "\x1b[" not in invoke("--color", "never", "pkg").stdout
    assert "\x1b[" not in invoke("pkg").stdout  # not a terminal
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[" in invoke("pkg").stdout
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in invoke("pkg").stdout


def test_cache_dir(project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (project / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    invoke("--cache-dir", "caches", ".")
    assert not (project / ".asyncfix_cache").exists()
    (folder,) = (project / "caches").iterdir()  # one folder for this project
    assert any(folder.glob("*.json"))
    monkeypatch.setenv("ASYNCFIX_CACHE_DIR", str(project / "elsewhere"))
    second = subprocess.run(
        [sys.executable, "-m", "asyncfix", "."], cwd=project, capture_output=True, text=True
    )
    assert second.returncode == 1
    assert (project / "elsewhere").is_dir() and not (project / ".asyncfix_cache").exists()


def test_show_settings(project: Path) -> None:
    configure(project, 'ignore = ["AF4"]\ntarget-version = "py39"\n')
    result = invoke("--show-settings", "--extend-select", "AF401", "pkg/mixed.py")
    assert result.exit_code == 0
    text = result.stdout
    rows = dict(re.findall(r"^  ([a-z -]+):\s+(.*)$", text, re.MULTILINE))
    assert rows["configuration"] == str(project / "pyproject.toml")
    assert rows["target-version"] == "py39 (from pyproject.toml [tool.asyncfix] target-version)"
    assert rows["command line"] == "extend-select AF401"
    assert rows["coroutine-functions"] == "(none)"
    # the values in one column, after the longest label
    widths = {len(label) for label in re.findall(r"^  [a-z -]+:\s+", text, re.MULTILINE)}
    assert widths == {len("  coroutine-functions: ")}
    assert "    AF401  lost-update" in text and "AF402" not in text


def test_rules_as_json() -> None:
    rows = json.loads(invoke("rules", "--output-format", "json").stdout)
    assert [row["code"] for row in rows] == [rule.code for rule in RULES]
    assert rows[0]["explanation"].startswith("# AF101 missing-await")
    assert {row["fix_safety"] for row in rows} == {"safe", "unsafe", "none"}


def test_shell_completion_script() -> None:
    """``_ASYNCFIX_COMPLETE=bash_source asyncfix`` prints the completion script (README)."""
    env = {"_ASYNCFIX_COMPLETE": "bash_source", "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "asyncfix")], env=env, capture_output=True, text=True
    )
    assert "complete -o nosort -F _asyncfix_completion asyncfix" in done.stdout


# -- stdin -----------------------------------------------------------------------------------


def test_stdin_check(project: Path) -> None:
    result = invoke("-", stdin=SLEEPY.encode())
    assert result.exit_code == 1
    assert result.stdout.startswith("-:5:5: AF201 ")
    named = invoke("-", "--stdin-filename", "pkg/poll.py", stdin=SLEEPY.encode())
    assert named.stdout.startswith("pkg/poll.py:5:5: AF201 ")
    # its per-file ignores apply, and --stdin-filename alone means stdin
    configure(project, '[tool.asyncfix.per-file-ignores]\n"pkg/*" = ["AF2"]\n')
    assert invoke("--stdin-filename", "pkg/poll.py", stdin=SLEEPY.encode()).exit_code == 0


def test_stdin_write_prints_the_fixed_source(project: Path) -> None:
    source = SLEEPY.replace("\n", "\r\n").encode()
    result = invoke("--write", "-", stdin=source)
    assert result.exit_code == 0
    assert result.stdout_bytes == FIXED.replace("\n", "\r\n").encode()
    left = invoke("--write", "-", stdin=MIXED.encode())
    assert left.exit_code == 1
    assert "await asyncio.sleep(1)" in left.stdout
    assert left.stderr.startswith("-:10:16: AF101 ")


def test_stdin_write_gives_back_what_it_cannot_check(project: Path) -> None:
    broken = b"def f(:\n    \xff\n"
    result = invoke("--write", "-", stdin=broken)
    assert result.exit_code == 2
    assert result.stdout_bytes == broken
    assert "error: -:" in result.stderr


def test_stdin_diff(project: Path) -> None:
    result = invoke("--diff", "-", "--stdin-filename", "pkg/poll.py", stdin=SLEEPY.encode())
    assert result.exit_code == 1
    assert result.stdout.startswith("--- a/pkg/poll.py\n+++ b/pkg/poll.py\n")


def test_stdin_cannot_be_mixed_with_paths(project: Path) -> None:
    assert invoke("-", "pkg").exit_code == 2
    assert invoke("--stdin-filename", "x.py", "pkg").exit_code == 2


# -- configuration files ---------------------------------------------------------------------


def test_asyncfix_toml_is_found_and_comes_first(project: Path) -> None:
    configure(project, 'ignore = ["AF1"]\n')
    (project / "asyncfix.toml").write_text('ignore = ["AF2"]\n')
    assert codes(invoke("pkg")) == ["AF101"]
    (project / ".asyncfix.toml").write_text('select = ["AF201"]\n')
    assert codes(invoke("pkg")) == ["AF201"]
    bad = (project / ".asyncfix.toml").write_text('selct = ["AF201"]\n')
    del bad
    result = invoke("pkg")
    assert result.exit_code == 2 and ".asyncfix.toml: unknown key 'selct'" in result.stderr


def test_config_without_asyncfix_settings_is_an_error(project: Path) -> None:
    (project / "other.toml").write_text("[tool.ruff]\nline-length = 80\n")
    (project / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    result = invoke("--config", "pyproject.toml", "pkg")
    assert result.exit_code == 2 and "no [tool.asyncfix] table" in result.stderr
    # another file name holds its settings at the top level: `tool` is not one of them
    result = invoke("--config", "other.toml", "pkg")
    assert result.exit_code == 2 and "unknown key 'tool'" in result.stderr


def test_a_file_named_that_is_not_python_is_skipped_with_a_warning(project: Path) -> None:
    (project / "README.md").write_text("# time.sleep(1)\n")
    (project / "tool").write_text("#!/usr/bin/env python3\n" + SLEEPY)
    (project / "stub.pyi").write_text("async def poll() -> None: ...\n")
    result = invoke("README.md", "tool", "stub.pyi")
    assert result.exit_code == 1  # the script's finding; the text file is no error
    assert "warning: README.md: not a Python file" in result.stderr
    assert result.stdout.startswith("tool:6:5: AF201 ")
    assert "Found 1 finding in 1 of 2 files" in result.stdout


def test_ascii_output_is_ascii(project: Path) -> None:
    (project / "pkg" / "caf\u00e9.py").write_text("# caf\u00e9 \u2014 \u2192\n" + SLEEPY)
    for output_format in ("concise", "full", "report", "markdown"):
        result = invoke("--ascii", "--output-format", output_format, "pkg")
        assert result.exit_code == 1
        assert result.stdout.isascii() and result.stderr.isascii(), output_format
        assert "pkg/caf\\xe9.py" in result.stdout
    # a diff stays the file's own bytes
    diff = invoke("--ascii", "--diff", "pkg/caf\u00e9.py")
    assert "# caf\u00e9 \u2014 \u2192" in diff.stdout


def test_the_closing_line_counts_the_errors_shown(project: Path) -> None:
    (project / "pkg" / "broken.py").write_text("def f(:\n")
    result = invoke("pkg", "missing.py")
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: missing.py: no such file or directory",
        "error: pkg/broken.py: syntax error at line 1, column 7: invalid syntax; file skipped",
    ]
    assert result.stdout.splitlines()[-1].endswith("2 errors (see above); exit status 2.")


def test_json_says_which_files_named_were_skipped_and_which_comments_are_malformed(
    project: Path,
) -> None:
    (project / "notes.txt").write_text("hello\n")
    (project / "pkg" / "mixed.py").write_text(MIXED.replace("(1)\n", "(1)  # noqa: af201\n", 1))
    data = json.loads(invoke("--output-format", "json", "notes.txt", "pkg").stdout)
    assert data["warnings"] == [
        "notes.txt: not a Python file (.py, .pyi, a python script); skipped"
    ]
    (file,) = data["files"]
    (warning,) = file["warnings"]
    assert warning.startswith("pkg/mixed.py:6:24: `# noqa: af201`")
