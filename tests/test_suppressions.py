"""Suppression comments, parsed strictly: what suppresses, what is a warning instead of a
blanket ignore, what is never a comment, skip-file, and unused suppressions."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result

from asyncfix.cli import main
from asyncfix.codemods import CODES
from asyncfix.suppressions import parse
from tests.helpers import cli_runner

KNOWN = frozenset(CODES)
LINE = "    time.sleep(1)"


def source(comment: str) -> str:
    return f"import time\n\n\nasync def poll():\n{LINE}  {comment}\n"


def invoke(*args: str) -> Result:
    return cli_runner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    "comment",
    [
        "# asyncfix: ignore",
        "# asyncfix: ignore[AF201]",
        "# asyncfix: ignore[AF101, AF201]",
        "# asyncfix:ignore[AF201]",
        "# ASYNCFIX: IGNORE",
        "# noqa",
        "# NOQA",
        "# NoQA: AF201",
        "# noqa:AF201,E501",
        "# noqa: AF201 the sleep is the point",
        "# noqa: ASYNC251",  # flake8-async's code for the same finding
        "# type: ignore  # noqa: AF201",
    ],
)
def test_suppresses(comment: str) -> None:
    found = parse(source(comment), KNOWN)
    assert found.warnings == []
    assert found.suppressing("AF201", ("ASYNC251",), (5,)), comment


@pytest.mark.parametrize(
    ("comment", "warning"),
    [
        ("# asyncfix: ignore[af201]", "codes in capitals"),
        ("# asyncfix: ignore [AF201]", "no space before the bracket"),
        ("# asyncfix: ignore[AF-201]", "expected `ignore`"),
        ("# asyncfix: ignore[]", "expected `ignore`"),
        ("# asyncfix: ignore[AF201] extra", "expected `ignore`"),
        ("# asyncfix: ignore[AF999]", "unknown rule code AF999"),
        ("# asyncfix: ingore", "unknown directive"),
        ("# asyncfix: skip-file", "must be on a line of its own"),
        ("# noqa: af201", "expected codes such as AF101"),
        ("# noqa:AF-201", "expected codes such as AF101"),
        ("# noqa-AF201", "is not a `# noqa` comment"),
    ],
)
def test_malformed_is_a_warning_and_suppresses_nothing(comment: str, warning: str) -> None:
    found = parse(source(comment), KNOWN)
    (text,) = found.warnings
    assert text.startswith("5:20: ") and warning in text, text
    assert not found.suppressing("AF201", (), (5,))
    assert not found.skip_file


@pytest.mark.parametrize(
    "comment",
    ["# noqa: E501", "# asyncfix: ignore[AF101]", "# noqa: AF101", "# not noqa here"],
)
def test_other_codes_leave_the_finding(comment: str) -> None:
    found = parse(source(comment), KNOWN)
    assert not found.suppressing("AF201", (), (5,))


def test_a_string_is_never_a_suppression() -> None:
    text = (
        "import time\n\n\nasync def poll():\n"
        '    time.sleep(len("# noqa"))\n'
        "    time.sleep(len('''\n# asyncfix: skip-file\n'''))\n"
    )
    found = parse(text, KNOWN)
    assert found.by_line == {} and not found.skip_file and found.warnings == []


def test_skip_file_and_unused_suppressions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "poll.py"
    path.write_text("# asyncfix: skip-file\n" + source(""))
    assert invoke("poll.py").exit_code == 0
    path.write_text(source("# asyncfix: ignore[af201]"))
    result = invoke("poll.py")
    assert result.exit_code == 1  # reported: the malformed comment suppresses nothing
    assert "warning: poll.py:5:20: `# asyncfix: ignore[af201]`" in result.stderr
    # unused: a blanket asyncfix ignore, AF codes of enabled rules; not a blanket noqa,
    # nor codes of a rule that did not run
    path.write_text(
        "import asyncio  # asyncfix: ignore\n"
        "x = 1  # noqa: AF201\n"
        "y = 2  # noqa\n"
        "z = 3  # noqa: AF101\n"
        f"async def f():\n{LINE}  # noqa: AF201\n".replace(LINE, "    await asyncio.sleep(1)")
    )
    assert invoke("--select", "AF2", "poll.py").exit_code == 0
    result = invoke("--select", "AF2", "--warn-unused-suppressions", "poll.py")
    assert result.exit_code == 1
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    assert warnings == [
        "warning: poll.py:1:17: unused `# asyncfix: ignore`",
        "warning: poll.py:2:8: unused `# noqa: AF201` (no AF201 finding on this line)",
        "warning: poll.py:6:29: unused `# noqa: AF201` (no AF201 finding on this line)",
    ]
    path.write_text(source("# noqa: AF201"))
    result = invoke("--warn-unused-suppressions", "poll.py")
    assert result.exit_code == 0 and "warning" not in result.stderr


def test_a_file_this_python_cannot_tokenize_still_has_its_suppressions() -> None:
    text = 'x = 1  # noqa: AF201\nprint(1)  # asyncfix: ignore\ny = """\n'
    found = parse(text, KNOWN)
    assert found.suppressing("AF201", (), (1,)) and found.suppressing("AF101", (), (2,))
