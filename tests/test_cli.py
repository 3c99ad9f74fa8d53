"""The command line end to end: modes, exit codes, formats, configuration, bad input."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result

from asyncfix.cli import main
from asyncfix.codemods import RULES
from tests.helpers import cli_runner

BUGGY = """\
import time


async def poll():
    time.sleep(1)
"""
FIXED = """\
import asyncio


async def poll():
    await asyncio.sleep(1)
"""
UNSAFE_ONLY = """\
class Api:
    async def _get(self):
        return 1

    async def get(self):
        return self._get()
"""
CLEAN = """\
import asyncio


async def poll():
    await asyncio.sleep(1)
"""


def invoke(*args: str) -> Result:
    return cli_runner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "buggy.py").write_text(BUGGY)
    (tmp_path / "pkg" / "clean.py").write_text(CLEAN)
    return tmp_path


def test_check_lists_findings_and_exits_1(project: Path) -> None:
    result = invoke("pkg")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "pkg/buggy.py:5:5: AF201 `time.sleep()` blocks the event loop; "
        "use `await asyncio.sleep()` [*]"
    )
    assert lines[-1] == "Found 1 finding in 1 of 2 files (1 fixable with `--write`)."
    assert (project / "pkg" / "buggy.py").read_text() == BUGGY  # check mode writes nothing


def test_clean_tree_exits_0(project: Path) -> None:
    result = invoke("pkg/clean.py")
    assert result.exit_code == 0
    assert result.stdout == "All checks passed (1 file checked).\n"
    assert result.stderr.startswith("1 file checked in ")


def test_diff_is_git_applyable_and_writes_nothing(project: Path) -> None:
    result = cli_runner().invoke(main, ["--diff", "pkg"])
    assert result.exit_code == 1
    patch = result.stdout
    assert patch.startswith("--- a/pkg/buggy.py\n+++ b/pkg/buggy.py\n")
    assert (project / "pkg" / "buggy.py").read_text() == BUGGY
    subprocess.run(["git", "init", "-q"], check=True)
    (project / "fix.patch").write_text(patch)
    subprocess.run(["git", "apply", "fix.patch"], check=True)
    assert (project / "pkg" / "buggy.py").read_text() == FIXED


def test_diff_without_changes_exits_0(project: Path) -> None:
    result = cli_runner().invoke(main, ["--diff", "pkg/clean.py"])
    assert result.exit_code == 0
    assert result.stdout == ""


def test_write_applies_safe_fixes_then_is_idempotent(project: Path) -> None:
    target = project / "pkg" / "buggy.py"
    result = invoke("--write", "pkg")
    assert result.exit_code == 0
    assert "Fixed pkg/buggy.py:5:5: AF201" in result.output
    assert target.read_text() == FIXED
    again = invoke("--write", "pkg")
    assert again.exit_code == 0
    assert "Fixed 0 findings" in again.output
    assert target.read_text() == FIXED


def test_unsafe_fixes_need_the_flag(project: Path) -> None:
    target = project / "pkg" / "api.py"
    target.write_text(UNSAFE_ONLY)
    result = invoke("--write", "pkg/api.py")
    assert result.exit_code == 1  # a finding is left
    assert "[*unsafe]" in result.output
    assert target.read_text() == UNSAFE_ONLY
    result = invoke("--write", "--unsafe-fixes", "pkg/api.py")
    assert result.exit_code == 0
    assert "return await self._get()" in target.read_text()


def test_diff_and_write_together_is_a_usage_error(project: Path) -> None:
    result = cli_runner().invoke(main, ["--diff", "--write", "pkg"])
    assert result.exit_code == 2
    assert "cannot be used together" in result.output


def test_select_and_ignore(project: Path) -> None:
    assert invoke("--select", "AF1", "pkg").exit_code == 0
    assert invoke("--select", "AF2", "pkg").exit_code == 1
    assert invoke("--ignore", "AF201", "pkg").exit_code == 0
    bad = cli_runner().invoke(main, ["--select", "AF999", "pkg"])
    assert bad.exit_code == 2
    assert "AF999" in bad.output


def test_json_output(project: Path) -> None:
    result = invoke("--output-format", "json", "pkg")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["schema_version"] == 1
    assert data["summary"]["findings"] == 1
    assert data["summary"]["by_code"] == {"AF201": 1}
    (file,) = data["files"]
    assert file["path"] == "pkg/buggy.py"
    (finding,) = file["findings"]
    assert finding["code"] == "AF201"
    assert finding["location"] == {"line": 5, "column": 5, "end_line": 5, "end_column": 18}
    fix_id = finding["fix"].pop("id")
    assert isinstance(fix_id, str) and len(fix_id) == 16
    assert finding["fix"] == {
        "safety": "safe",
        "applicable": True,
        "applied": False,
        "changes": [
            "Replaced `time.sleep(...)` with `await asyncio.sleep(...)`",
            "Added `import asyncio`",
        ],
        "reverted": None,
    }
    assert data["validation"] is None


def test_report_output_utf8_and_ascii(project: Path) -> None:
    result = invoke("--output-format", "report", "pkg")
    assert result.exit_code == 1
    out = result.output
    for section in ("ISSUE IDENTIFIED", "SUGGESTED FIX", "VALIDATION", "ADDITIONAL FINDINGS"):
        assert section in out
    assert "    5 |     time.sleep(1)" in out
    assert "+     await asyncio.sleep(1)" in out
    assert "Re-parse: ok · compile: ok · re-check AF201: 0 findings · second run: no changes" in out
    plain = invoke("--output-format", "report", "--ascii", "pkg").output
    assert plain.isascii()
    assert "Re-parse: ok | compile: ok" in plain


def test_report_after_write_says_fix_applied(project: Path) -> None:
    result = invoke("--write", "--output-format", "report", "pkg")
    assert "FIX APPLIED" in result.output


def test_quiet_prints_findings_only(project: Path) -> None:
    result = invoke("-q", "pkg")
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 1


def test_no_color_when_not_a_tty(project: Path) -> None:
    assert "\x1b[" not in invoke("pkg").output


def test_rules_and_rule_commands() -> None:
    listing = invoke("rules").output
    assert "AF201  blocking-sleep" in listing
    assert len(listing.splitlines()) == len(RULES)
    doc = invoke("rule", "af201").output
    assert doc.startswith("# AF201 blocking-sleep")
    for heading in ("## Why is this a bug?", "## Example", "## Use instead", "## Fix safety: safe"):
        assert heading in doc
    unknown = cli_runner().invoke(main, ["rule", "AF999"])
    assert unknown.exit_code == 2


def test_version() -> None:
    from asyncfix import __version__

    assert invoke("--version").output.strip() == f"asyncfix, version {__version__}"


# -- bad input ------------------------------------------------------------------------------


def test_bad_files_are_reported_skipped_and_the_rest_processed(project: Path) -> None:
    (project / "pkg" / "broken.py").write_text("async def f(:\n    pass\n")
    (project / "pkg" / "latin.py").write_bytes(b"async def f():\n    x = '\xff\xfe'\n")
    result = cli_runner().invoke(main, ["--write", "pkg", "missing.py"])
    assert result.exit_code == 2
    err = result.stderr
    assert "error: missing.py: no such file or directory" in err
    assert "error: pkg/broken.py: syntax error at line 1" in err
    assert "error: pkg/latin.py: cannot decode as utf-8" in err
    assert (project / "pkg" / "buggy.py").read_text() == FIXED  # the good file was still fixed
    assert (project / "pkg" / "broken.py").read_text() == "async def f(:\n    pass\n"


def test_config_unknown_key_is_an_error_naming_file_and_key(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.asyncfix]\nselct = ['AF2']\n")
    result = cli_runner().invoke(main, ["pkg"])
    assert result.exit_code == 2
    assert "pyproject.toml [tool.asyncfix]: unknown key 'selct'" in result.stderr


def test_config_unknown_code_is_an_error(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.asyncfix]\nignore = ['AF777']\n")
    result = cli_runner().invoke(main, ["pkg"])
    assert result.exit_code == 2
    assert "unknown rule code or prefix 'AF777'" in result.stderr


def test_config_invalid_toml(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.asyncfix\n")
    result = cli_runner().invoke(main, ["pkg"])
    assert result.exit_code == 2
    assert "invalid TOML" in result.stderr


DECLARED = """\
from vendor.client import async_fetch
from pkg.hooks import async_notify


async def poll():
    async_fetch()
    async_notify()
"""


def test_configured_coroutine_functions_are_known_but_never_over_the_projects_own(
    project: Path,
) -> None:
    (project / "pkg" / "poll.py").write_text(DECLARED)
    (project / "pkg" / "hooks.py").write_text("def async_notify():\n    pass\n")
    (project / "pkg" / "__init__.py").write_text("")
    (project / "pkg" / "buggy.py").unlink()
    assert invoke("pkg").exit_code == 0  # nothing known of `vendor`: nothing reported
    (project / "pyproject.toml").write_text(
        "[tool.asyncfix]\ncoroutine-functions = ['**.async_*']\n"
    )
    result = invoke("pkg")  # the cached results were made without the declaration
    assert result.exit_code == 1
    # `pkg.hooks.async_notify` matches too, but it is the project's own, and sync
    assert result.stdout.startswith("pkg/poll.py:6:5: AF101 `async_fetch()` is not awaited")
    assert "Found 1 finding" in result.stdout
    shown = json.loads(invoke("--output-format", "json", "pkg").stdout)
    (finding,) = [f for file in shown["files"] for f in file["findings"]]
    assert finding["evidence"] == [
        "`vendor.client.async_fetch` is declared a coroutine function "
        "(`coroutine-functions`: `**.async_*`)"
    ]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        *[
            ("coroutine-functions", value)
            for value in ("'vendor.*'", "['*']", "['**.*']", "['vendor client']", "[1]", "['a..b']")
        ],
        ("offload-functions", "['hass.*']"),  # no patterns there
        ("offload-functions", "'hass.add_job'"),
    ],
)
def test_config_function_lists_must_be_dotted_names(project: Path, key: str, value: str) -> None:
    (project / "pyproject.toml").write_text(f"[tool.asyncfix]\n{key} = {value}\n")
    result = invoke("pkg")
    assert result.exit_code == 2
    assert f"pyproject.toml [tool.asyncfix]: '{key}' must be a list of dotted names" in (
        result.stderr
    )


def test_config_select_per_file_ignores_unsafe_and_excludes(project: Path) -> None:
    (project / "pkg" / "api.py").write_text(UNSAFE_ONLY)
    (project / "gen").mkdir()
    (project / "gen" / "out.py").write_text(BUGGY)
    (project / "pyproject.toml").write_text(
        "[tool.asyncfix]\n"
        "per-file-ignores = { 'pkg/buggy.py' = ['AF2'] }\n"
        "extend-exclude = ['gen']\n"
        "unsafe-fixes = true\n"
    )
    result = invoke("--write", ".")
    assert result.exit_code == 0
    assert (project / "pkg" / "buggy.py").read_text() == BUGGY  # ignored for this file
    assert "return await" in (project / "pkg" / "api.py").read_text()  # unsafe from config
    assert (project / "gen" / "out.py").read_text() == BUGGY  # excluded
    named = invoke("gen/out.py")  # a file named explicitly is still checked ...
    assert named.exit_code == 1
    forced = invoke("--force-exclude", "gen/out.py")  # ... unless excludes are forced
    assert forced.exit_code == 0


def test_gitignored_and_default_excluded_files_are_skipped(project: Path) -> None:
    subprocess.run(["git", "init", "-q"], check=True)
    (project / ".gitignore").write_text("generated/\n")
    for folder in ("generated", ".venv", "node_modules"):
        (project / folder).mkdir()
        (project / folder / "x.py").write_text(BUGGY)
    result = invoke(".")
    assert "generated/x.py" not in result.output
    assert ".venv" not in result.output
    assert "Found 1 finding in 1 of 2 files" in result.output


def test_suppression_comments(project: Path) -> None:
    path = project / "pkg" / "buggy.py"
    for comment in ("# asyncfix: ignore[AF201]", "# asyncfix: ignore", "# noqa: AF201"):
        path.write_text(BUGGY.replace("time.sleep(1)", f"time.sleep(1)  {comment}"))
        assert invoke("pkg/buggy.py").exit_code == 0, comment
    path.write_text(BUGGY.replace("time.sleep(1)", "time.sleep(1)  # asyncfix: ignore[AF101]"))
    assert invoke("pkg/buggy.py").exit_code == 1


# -- bytes that must survive ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (BUGGY.replace("\n", "\r\n").encode(), FIXED.replace("\n", "\r\n").encode()),
        (b"\xef\xbb\xbf" + BUGGY.encode(), b"\xef\xbb\xbf" + FIXED.encode()),
        (
            "# -*- coding: latin-1 -*-\n# caf\xe9\n".encode("latin-1") + BUGGY.encode(),
            "# -*- coding: latin-1 -*-\n# caf\xe9\n".encode("latin-1") + FIXED.encode(),
        ),
        (
            BUGGY.replace("    ", "\t").replace("(1)", "(1)   ").encode(),
            FIXED.replace("    ", "\t").replace("(1)", "(1)   ").encode(),
        ),
    ],
    ids=["crlf", "bom", "latin-1 cookie", "tabs and trailing whitespace"],
)
def test_write_preserves_bytes(project: Path, raw: bytes, expected: bytes) -> None:
    path = project / "pkg" / "buggy.py"
    path.write_bytes(raw)
    assert invoke("--write", "pkg/buggy.py").exit_code == 0
    assert path.read_bytes() == expected


def test_write_keeps_mode_bits_and_leaves_no_temp_files(project: Path) -> None:
    path = project / "pkg" / "buggy.py"
    path.chmod(0o754)
    invoke("--write", "pkg")
    assert stat.S_IMODE(path.stat().st_mode) == 0o754
    assert sorted(p.name for p in (project / "pkg").iterdir()) == ["buggy.py", "clean.py"]


def test_file_changed_on_disk_is_not_written(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asyncfix import engine
    from asyncfix.engine import process as process_module

    path = project / "pkg" / "buggy.py"
    real = engine.process_file

    def edit_after_read(task: engine.Task) -> object:
        result = real(task)
        if task.path.endswith("buggy.py"):
            path.write_text(BUGGY + "# edited meanwhile\n")
        return result

    monkeypatch.setattr(process_module, "process_file", edit_after_read)
    result = cli_runner().invoke(main, ["--write", "pkg"])
    assert result.exit_code == 1  # a warning; the finding is still there
    assert "warning: pkg/buggy.py: file changed on disk since it was read" in result.stderr
    assert path.read_text() == BUGGY + "# edited meanwhile\n"


def test_many_files_through_the_process_pool(project: Path) -> None:
    for index in range(40):
        (project / "pkg" / f"m{index:02}.py").write_text(BUGGY)
    result = invoke("--jobs", "2", "--diff", "pkg")
    assert result.exit_code == 1
    assert result.output.count("+++ b/pkg/m") == 40
    headers = [line for line in result.output.splitlines() if line.startswith("--- a/")]
    assert headers == sorted(headers)


def test_write_through_a_symlink_keeps_the_link(project: Path) -> None:
    real = project / "pkg" / "buggy.py"
    link = project / "link.py"
    link.symlink_to(real)
    assert invoke("--write", "link.py").exit_code == 0
    assert link.is_symlink()
    assert real.read_text() == FIXED


def test_unwritable_directory_is_reported_not_crashed(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    result = cli_runner().invoke(main, ["--write", "pkg"])
    assert result.exit_code == 2
    assert "cannot write in" in result.stderr
    assert (project / "pkg" / "buggy.py").read_text() == BUGGY


def test_gitignored_directory_named_on_the_command_line_is_checked(project: Path) -> None:
    subprocess.run(["git", "init", "-q"], check=True)
    (project / ".gitignore").write_text("vendor/\n")
    (project / "vendor").mkdir()
    (project / "vendor" / "x.py").write_text(BUGGY)
    assert "vendor/x.py" not in invoke(".").output
    assert "vendor/x.py:5:5: AF201" in invoke("vendor").output


def test_closing_statistics_on_stderr(project: Path) -> None:
    first = invoke("pkg")
    assert first.stderr.startswith("2 files checked in ")
    assert "(0 from cache, 0 with errors); findings: AF201 1" in first.stderr
    second = invoke("pkg")
    assert "(2 from cache, 0 with errors); findings: AF201 1" in second.stderr
    assert second.stdout == first.stdout
    fresh = invoke("--no-cache", "pkg")
    assert "(0 from cache," in fresh.stderr
    assert invoke("-q", "pkg").stderr == ""
    assert invoke("--output-format", "json", "pkg").stderr == ""  # machine output only


def test_progress_bar_only_for_a_person_at_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from asyncfix import cli

    monkeypatch.setattr(cli.sys.stderr, "isatty", lambda: True)
    monkeypatch.delenv("CI", raising=False)
    assert cli._wants_progress(quiet=False)
    assert not cli._wants_progress(quiet=True)
    monkeypatch.setenv("CI", "true")
    assert not cli._wants_progress(quiet=False)
    bar = cli._ProgressBar()
    bar(1, 10)
    assert capsys.readouterr().err == ""  # nothing for a run shorter than half a second
    bar.started -= 1
    bar(5, 10)
    assert capsys.readouterr().err == "\r[" + "#" * 15 + "-" * 15 + "] 5/10 files"
    bar.close()
    assert capsys.readouterr().err == "\r\x1b[K"


#: PEP 701 (Python 3.12): the same quotes inside an f-string's replacement field
NEWER_SYNTAX = """\
import asyncio


class Counter:
    def __init__(self):
        self.value = 0

    async def bump(self, names):
        current = self.value
        await asyncio.sleep(0)
        self.value = current + 1
        return f"{names["a"]}"
"""


def test_a_file_this_python_cannot_parse_says_which_rules_did_not_check_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("newer.py").write_text(NEWER_SYNTAX, encoding="utf-8")
    result = cli_runner().invoke(
        main, ["check", "newer.py", "--no-cache", "--output-format", "json"]
    )
    data = json.loads(result.stdout)
    files = {entry["path"]: entry for entry in data["files"]}
    if sys.version_info >= (3, 12):
        # read in full: the race is found, nothing is left unchecked
        assert result.exit_code == 1
        assert [f["code"] for f in files["newer.py"]["findings"]] == ["AF401"]
        assert files["newer.py"]["partial"] is None
        return
    partial = files["newer.py"]["partial"]
    assert "cannot parse this file" in partial and "AF401" in partial
    assert result.exit_code == 0  # nothing found by the rules that could run; not an error
    text = cli_runner().invoke(main, ["check", "newer.py", "--no-cache"])
    assert f"warning: newer.py: {partial}" in text.stderr
    assert "1 only in part: see the warning" in text.stdout
    # a cached result keeps the warning
    cli_runner().invoke(main, ["check", "newer.py"])
    again = cli_runner().invoke(main, ["check", "newer.py"])
    assert "1 from cache" in again.stderr
    assert f"warning: newer.py: {partial}" in again.stderr


def test_a_check_with_nothing_to_fix_never_loads_libcst(tmp_path: Path) -> None:
    """Every rule reads the stdlib tree: LibCST is loaded only to build a fix."""
    (tmp_path / "clean.py").write_text("import asyncio\n\n\nasync def f():\n    await g()\n")
    (tmp_path / "reported.py").write_text(
        "import asyncio\n\n\nasync def f(q):\n    try:\n        await q.get()\n"
        "    except asyncio.CancelledError:\n        pass\n"
    )
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from asyncfix.cli import main\n"
        "result = CliRunner().invoke(main, ['check', '--no-cache', '--jobs', '1', '.'])\n"
        "print(result.exit_code, 'libcst._nodes' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    # one finding (AF305, reported without a fix), and LibCST never loaded
    assert done.stdout.split() == ["1", "False"]


def test_the_program_prints_all_and_exits_with_the_status_of_main(project: Path) -> None:
    """``python -m asyncfix`` (and the console script) end without the interpreter's
    teardown: nothing printed is lost, the status is main's, and a reader that goes away
    early gets no traceback."""
    expected = invoke("pkg")
    done = subprocess.run(
        [sys.executable, "-m", "asyncfix", "pkg"], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout) == (1, expected.stdout)
    assert done.stderr.startswith("2 files checked in")
    usage = subprocess.run(
        [sys.executable, "-m", "asyncfix", "--select", "XX", "pkg"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert usage.returncode == 2 and "unknown rule code" in usage.stderr
    for number in range(300):
        (project / "pkg" / f"more_{number}.py").write_text(BUGGY)
    reader = subprocess.Popen(
        [sys.executable, "-m", "asyncfix", "--jobs", "1", "pkg"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.readline()
    reader.stdout.close()  # `| head -1`
    errors = reader.stderr.read().decode()
    assert reader.wait() in (0, 1)
    assert "Traceback" not in errors


def test_a_run_from_the_cache_never_loads_the_rules(project: Path) -> None:
    """Results that all come from the cache need neither the rules nor the semantic model
    (nor LibCST): a warm run starts faster without them."""
    (project / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from asyncfix.cli import main\n"
        "result = CliRunner().invoke(main, ['check', '--jobs', '1', '.'])\n"
        "loaded = [m for m in ('asyncfix.analysis.model', 'asyncfix.codemods.base', 'libcst')\n"
        "          if m in sys.modules]\n"
        "print(result.exit_code, result.stdout.count(':5:5: AF201'), loaded)\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], cwd=project, capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert runs[0].startswith("1 1 ['asyncfix.analysis.model', 'asyncfix.codemods.base'")
    assert runs[1] == "1 1 []"
