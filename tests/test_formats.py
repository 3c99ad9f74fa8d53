"""The CI output formats end to end: SARIF (validated against the SARIF 2.1.0 schema, its
fixes applied back to the files), GitHub annotations, GitLab code quality, JSON lines, the
``full`` listing and the Markdown summary (rendered by a CommonMark renderer)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from click.testing import Result

from asyncfix.cli import main
from asyncfix.codemods import RULES
from tests.helpers import cli_runner

SCHEMA = (
    Path(__file__).parent
    / "contract"
    / "node_modules"
    / "@microsoft"
    / "jest-sarif"
    / "lib"
    / "schemas"
    / "sarif-2.1.0-rtm.5.json"
)

SLEEPY = """\
import time


async def poll():
    time.sleep(1)
"""
# two identical findings in one file, an unsafe fix, and a message with `<`
TWICE = """\
import time


async def a():
    time.sleep(1)


async def b():
    time.sleep(1)


class Api:
    async def _get(self):
        return 1

    async def get(self):
        return self._get()
"""


def invoke(*args: str) -> Result:
    return cli_runner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("NO_COLOR", "FORCE_COLOR", "CI_PROJECT_DIR", "ASYNCFIX_OUTPUT_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "sleepy.py").write_text(SLEEPY)
    (tmp_path / "pkg" / "twice.py").write_text(TWICE)
    (tmp_path / "pkg" / "broken.py").write_text("def f(:\n")
    return tmp_path


def _apply(text: str, replacements: list[dict[str, object]]) -> str:
    """SARIF replacements (line/column regions) applied to ``text``, last first."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(line: int, column: int) -> int:
        return offsets[line - 1] + column - 1

    edits = []
    for replacement in replacements:
        region = replacement["deletedRegion"]
        inserted = replacement["insertedContent"]
        assert isinstance(region, dict) and isinstance(inserted, dict)
        start = offset(region["startLine"], region["startColumn"])
        end = offset(region["endLine"], region["endColumn"])
        edits.append((start, end, inserted["text"]))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def test_sarif_validates_against_the_schema_and_its_fixes_apply(project: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMA.is_file():
        pytest.fail(f"{SCHEMA} is missing: run the README's set-up (npm ci in tests/contract)")
    result = invoke("--output-format", "sarif", "pkg")
    assert result.exit_code == 2  # broken.py
    log = json.loads(result.stdout)
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(schema).validate(log)
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert [rule["id"] for rule in driver["rules"]] == [rule.code for rule in RULES]
    for rule in driver["rules"]:
        assert rule["help"]["markdown"].startswith(f"# {rule['id']} {rule['name']}")
        assert rule["shortDescription"]["text"]
    by_file: dict[str, list[dict[str, object]]] = {}
    for item in run["results"]:
        location = item["locations"][0]["physicalLocation"]
        by_file.setdefault(location["artifactLocation"]["uri"], []).append(item)
        assert driver["rules"][item["ruleIndex"]]["id"] == item["ruleId"]
    assert sorted(by_file) == ["pkg/sleepy.py", "pkg/twice.py"]
    assert [r["ruleId"] for r in by_file["pkg/twice.py"]] == ["AF201", "AF201", "AF101"]
    # the file that could not be parsed is a notification, and the run did not succeed
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert "pkg/broken.py" in note["message"]["text"]
    # each fix, applied alone to its file, is that finding's fix: the file re-parses and the
    # finding's line is what --write makes of it
    (sleepy,) = by_file["pkg/sleepy.py"]
    (fix,) = sleepy["fixes"]  # type: ignore[misc]
    (change,) = fix["artifactChanges"]
    assert _apply(SLEEPY, change["replacements"]) == SLEEPY.replace(
        "import time", "import asyncio"
    ).replace("time.sleep(1)", "await asyncio.sleep(1)")
    unsafe = by_file["pkg/twice.py"][2]
    assert unsafe["properties"] == {"fixSafety": "unsafe"}
    (fix,) = unsafe["fixes"]  # type: ignore[misc]
    assert "unsafe fix" in fix["description"]["text"]
    fixed = _apply(TWICE, fix["artifactChanges"][0]["replacements"])
    ast.parse(fixed)
    assert "return await self._get()" in fixed
    assert fixed.count("time.sleep(1)") == 2  # only its own fix


def test_sarif_region_past_the_last_line_without_a_newline(project: Path) -> None:
    """A fix that reaches the end of a file without a final newline ends its region at the
    end of the last line (the line after it does not exist)."""
    (project / "pkg" / "sleepy.py").write_text(SLEEPY.rstrip("\n"))
    log = json.loads(invoke("--output-format", "sarif", "pkg/sleepy.py").stdout)
    (item,) = log["runs"][0]["results"]
    replacements = item["fixes"][0]["artifactChanges"][0]["replacements"]
    assert replacements[-1]["deletedRegion"] == {
        "startLine": 5,
        "startColumn": 1,
        "endLine": 5,
        "endColumn": len("    time.sleep(1)") + 1,
    }
    fixed = _apply(SLEEPY.rstrip("\n"), replacements)
    assert fixed.endswith("    await asyncio.sleep(1)")


GITHUB = re.compile(
    r"::(?P<level>error|warning|notice) title=asyncfix \((?P<code>AF\d{3})\),"
    r"file=(?P<file>[^,]+),line=(?P<line>\d+),col=\d+,endLine=\d+,endColumn=\d+::(?P<msg>.*)"
)


def test_github_annotations(project: Path) -> None:
    (project / "pkg" / "a,b%.py").write_text(SLEEPY)
    result = invoke("--output-format", "github", "pkg")
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    parsed = [GITHUB.fullmatch(line) for line in lines]
    errors = [line for line, match in zip(lines, parsed, strict=True) if match is None]
    # the file that could not be parsed is an error annotation on the file
    assert errors == ["::error title=asyncfix,file=pkg/broken.py::" + errors[0].split("::")[-1]]
    assert "syntax error" in errors[0]
    found = [m for m in parsed if m is not None]
    assert [(m["file"], m["code"]) for m in found] == [
        ("pkg/a%2Cb%25.py", "AF201"),
        ("pkg/sleepy.py", "AF201"),
        ("pkg/twice.py", "AF201"),
        ("pkg/twice.py", "AF201"),
        ("pkg/twice.py", "AF101"),
    ]
    assert found[0]["msg"].startswith("pkg/a,b%25.py:5:5: AF201 ")
    levels = {"high": "error", "medium": "warning", "low": "notice"}
    severity = {rule.code: rule.severity.value for rule in RULES}
    assert all(m["level"] == levels[severity[m["code"]]] for m in found)


def test_gitlab_code_quality(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke("--output-format", "gitlab", "pkg")
    issues = json.loads(result.stdout)
    assert len(issues) == 4
    for issue in issues:
        assert set(issue) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["severity"] in {"info", "minor", "major", "critical", "blocker"}
        assert issue["location"]["positions"]["begin"]["line"] >= 1
    # two findings alike in one file still have fingerprints of their own
    assert len({issue["fingerprint"] for issue in issues}) == 4
    # code moving down keeps a finding's fingerprint
    (project / "pkg" / "sleepy.py").write_text("\n\n" + SLEEPY)
    moved = json.loads(invoke("--output-format", "gitlab", "pkg").stdout)
    assert {i["fingerprint"] for i in moved} == {i["fingerprint"] for i in issues}
    # paths relative to the project in GitLab CI
    monkeypatch.setenv("CI_PROJECT_DIR", str(project / "pkg"))
    paths = {i["location"]["path"] for i in json.loads(invoke("--output-format", "gitlab").stdout)}
    assert paths == {"sleepy.py", "twice.py"}


def test_json_lines(project: Path) -> None:
    result = invoke("--output-format", "json-lines", "pkg")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["path"], row["code"]) for row in rows] == [
        ("pkg/sleepy.py", "AF201"),
        ("pkg/twice.py", "AF201"),
        ("pkg/twice.py", "AF201"),
        ("pkg/twice.py", "AF101"),
    ]
    assert rows[0]["location"] == {"line": 5, "column": 5, "end_line": 5, "end_column": 18}
    assert rows[0]["fix"]["safety"] == "safe"
    assert "Found" not in result.stdout


def test_full_shows_the_source_with_the_columns_underlined(project: Path) -> None:
    result = invoke("--output-format", "full", "--ascii", "pkg/sleepy.py")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        "pkg/sleepy.py:5:5: AF201 `time.sleep()` blocks the event loop; use "
        "`await asyncio.sleep()` [*]",
        "  |",
        "5 |     time.sleep(1)",
        "  |     ^^^^^^^^^^^^^ AF201",
        "  |",
    ]
    assert lines[-1].startswith("Found 1 finding")


def test_markdown_summary_renders_as_commonmark(project: Path) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    (project / "pkg" / "html.py").write_text(
        "import time\n\n\nasync def f():\n    time.sleep(1)  # <b>not html</b>\n"
    )
    result = invoke("--output-format", "markdown", "--unsafe-fixes", "pkg")
    assert result.exit_code == 2
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(result.stdout)
    assert "<h2>asyncfix</h2>" in html
    rows = re.findall(r"<tr>\s*<td>(AF\d+)</td>\s*<td>([^<]+)</td>", html)
    assert rows == [("AF101", "missing-await"), ("AF201", "blocking-sleep")]
    assert html.count('<code class="language-diff">') == 5
    assert "+     await asyncio.sleep(1)" in html
    assert "<h3>Errors</h3>" in html and "pkg/broken.py" in html
    assert "<b>" not in html  # text from the code is never raw HTML


def test_markdown_summary_without_findings(project: Path) -> None:
    (project / "pkg" / "sleepy.py").write_text("import asyncio\n")
    result = invoke("--output-format", "markdown", "pkg/sleepy.py")
    assert result.exit_code == 0
    assert result.stdout == "## asyncfix\n\nNo findings in 1 file.\n"


def test_output_format_from_the_environment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCFIX_OUTPUT_FORMAT", "json-lines")
    rows = [json.loads(line) for line in invoke("pkg/sleepy.py").stdout.splitlines()]
    assert [row["code"] for row in rows] == ["AF201"]
