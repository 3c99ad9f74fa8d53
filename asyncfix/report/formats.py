"""Machine formats for CI: GitHub workflow annotations, GitLab's code-quality report, JSON
lines, and SARIF 2.1.0 (GitHub code scanning and other SARIF viewers).

Each takes the ``RunResult`` and returns the whole text for stdout; errors go to stderr as
with every format. Paths are the display paths (relative to the working directory), with
``/`` as the separator.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from asyncfix import __version__
from asyncfix.analysis.source import python_lines
from asyncfix.codemods import RULES, rule_by_code
from asyncfix.model import Edit, FileResult, Finding, RunResult, Severity
from asyncfix.report.json import finding_json
from asyncfix.report.ruledoc import rule_doc

HOMEPAGE = "https://pypi.org/project/asyncfix/"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _posix(path: str) -> str:
    return path.replace(os.sep, "/") if os.sep != "/" else path


# -- GitHub workflow annotations -------------------------------------------------------------

_GITHUB_LEVEL = {Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "notice"}


def _github_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(run: RunResult) -> str:
    """One ``::error file=...,line=...::message`` workflow command per finding (and per file
    that could not be checked), which GitHub Actions shows on the pull request's lines."""
    lines: list[str] = []
    for result in run.files:
        path = _github_property(_posix(result.display))
        if result.error or result.internal_error:
            message = _github_data(result.error or result.internal_error or "")
            lines.append(f"::error title=asyncfix,file={path}::{message}")
        for finding in run.reported(result):
            span = finding.span
            title = _github_property(f"asyncfix ({finding.code})")
            where = (
                f"file={path},line={span.line},col={span.col},"
                f"endLine={span.end_line},endColumn={span.end_col}"
            )
            message = _github_data(
                f"{_posix(result.display)}:{span.line}:{span.col}: {finding.code} {finding.message}"
            )
            level = _GITHUB_LEVEL[finding.severity]
            lines.append(f"::{level} title={title},{where}::{message}")
    return "".join(line + "\n" for line in lines)


# -- GitLab code quality ---------------------------------------------------------------------

_GITLAB_SEVERITY = {Severity.HIGH: "major", Severity.MEDIUM: "minor", Severity.LOW: "info"}


def render_gitlab(run: RunResult) -> str:
    """GitLab's code-quality report (a JSON array; CodeClimate's issue format as GitLab reads
    it). Paths are relative to ``CI_PROJECT_DIR`` when that is set (GitLab CI), else to
    the working directory. Each fingerprint digests the path, the code, the message and
    the how-many-th such finding in the file, not the line: a finding keeps its identity
    when code above it moves."""
    base = os.environ.get("CI_PROJECT_DIR")
    issues: list[dict[str, Any]] = []
    for result in run.files:
        path = _posix(_relative_to(result, base))
        seen: dict[tuple[str, str], int] = {}
        for finding in run.reported(result):
            key = (finding.code, finding.message)
            seen[key] = seen.get(key, 0) + 1
            digest = hashlib.sha256(
                "\0".join([path, finding.code, finding.message, str(seen[key])]).encode()
            ).hexdigest()
            issues.append(
                {
                    "type": "issue",
                    "check_name": f"{finding.code} {finding.name}",
                    "description": f"{finding.code} {finding.message}",
                    "categories": ["Bug Risk"],
                    "severity": _GITLAB_SEVERITY[finding.severity],
                    "fingerprint": digest[:32],
                    "location": {
                        "path": path,
                        "positions": {
                            "begin": {"line": finding.span.line, "column": finding.span.col},
                            "end": {"line": finding.span.end_line, "column": finding.span.end_col},
                        },
                    },
                }
            )
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"


def _relative_to(result: FileResult, base: str | None) -> str:
    if base:
        try:
            return Path(result.path).absolute().relative_to(Path(base).absolute()).as_posix()
        except ValueError:
            pass
    return result.display


# -- JSON lines ------------------------------------------------------------------------------


def render_json_lines(run: RunResult) -> str:
    """One JSON object a line, one line a finding: the ``json`` format's finding object
    with its file's ``path`` (docs/json.md)."""
    out: list[str] = []
    for result in run.files:
        for finding in run.reported(result):
            item = {"path": result.display, **finding_json(finding, run.unsafe_fixes)}
            out.append(json.dumps(item, ensure_ascii=False))
    return "".join(line + "\n" for line in out)


# -- SARIF 2.1.0 -----------------------------------------------------------------------------

_SARIF_LEVEL = {Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note"}


def _sarif_rule(rule: Any) -> dict[str, Any]:
    summary = f"{rule.summary[:1].upper()}{rule.summary[1:]}."
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": rule.why},
        "help": {"text": f"{summary} {rule.why}", "markdown": rule_doc(rule.code)},
        "defaultConfiguration": {"level": _SARIF_LEVEL[rule.severity]},
        "properties": {
            "tags": ["asyncio", rule.kind],
            "fixSafety": rule.fix_safety.value,
            "precision": "high",
        },
    }


def _uri(result: FileResult) -> str:
    return quote(_posix(result.display), safe="/:.-_~")


def _deleted_region(edit: Edit, lines: list[str]) -> dict[str, int]:
    """The lines an edit replaces, as a region from the start of its first line to the start
    of the line after it (its line ending included). Past the last line, the end is the
    file's end."""
    end_line, end_column = edit.end_line, 1
    if edit.end_line > len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
        end_line, end_column = len(lines), len(lines[-1]) + 1
    return {
        "startLine": edit.line,
        "startColumn": 1,
        "endLine": end_line,
        "endColumn": end_column,
    }


def _sarif_fix(result: FileResult, finding: Finding) -> dict[str, Any] | None:
    if not finding.fix_edits or result.original is None:
        return None
    lines = python_lines(result.original, keepends=True)
    description = "; ".join(finding.fix_changes) or f"Fix {finding.code} ({finding.name})"
    return {
        "description": {"text": f"{description} ({finding.fix_safety.value} fix)"},
        "artifactChanges": [
            {
                "artifactLocation": {"uri": _uri(result), "uriBaseId": "%SRCROOT%"},
                "replacements": [
                    {
                        "deletedRegion": _deleted_region(edit, lines),
                        "insertedContent": {"text": edit.text},
                    }
                    for edit in finding.fix_edits
                ],
            }
        ],
    }


def render_sarif(run: RunResult, cwd: Path | None = None) -> str:
    """A SARIF 2.1.0 log with one run: every rule's metadata and help, one result per
    finding, with its fix (the finding's own edits; unsafe ones too, marked so) where it
    has one. Columns count code points (``columnKind``); URIs are relative to
    ``%SRCROOT%``, the working directory."""
    index = {rule.code: position for position, rule in enumerate(RULES)}
    results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for message in run.errors:
        notifications.append({"level": "error", "message": {"text": message}})
    for result in sorted(run.files, key=lambda r: r.display):
        problem = result.error or result.internal_error
        location = {"artifactLocation": {"uri": _uri(result), "uriBaseId": "%SRCROOT%"}}
        if problem:
            notifications.append(
                {
                    "level": "error",
                    "message": {"text": f"{result.display}: {problem}; file skipped"},
                    "locations": [{"physicalLocation": location}],
                }
            )
        for finding in run.reported(result):
            span = finding.span
            item: dict[str, Any] = {
                "ruleId": finding.code,
                "ruleIndex": index[finding.code],
                "level": _SARIF_LEVEL[finding.severity],
                "message": {"text": finding.message},
                "locations": [
                    {
                        "physicalLocation": {
                            **location,
                            "region": {
                                "startLine": span.line,
                                "startColumn": span.col,
                                "endLine": span.end_line,
                                "endColumn": span.end_col,
                            },
                        }
                    }
                ],
                "properties": {"fixSafety": finding.fix_safety.value},
            }
            fix = _sarif_fix(result, finding)
            if fix is not None:
                item["fixes"] = [fix]
            results.append(item)
    root = (cwd or Path.cwd()).absolute().as_uri().rstrip("/") + "/"
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "asyncfix",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": HOMEPAGE,
                        "rules": [_sarif_rule(rule_by_code(rule.code)) for rule in RULES],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": root}},
                "columnKind": "unicodeCodePoints",
                "invocations": [
                    {
                        "executionSuccessful": not run.has_errors(),
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"
