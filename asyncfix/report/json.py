"""The JSON rendering of the result model (schema: docs/json.md)."""

from __future__ import annotations

import json
from typing import Any

from asyncfix import __version__
from asyncfix.model import FileResult, Finding, RunResult, TestRun, ValidationReport

SCHEMA_VERSION = 1


def finding_json(finding: Finding, unsafe: bool) -> dict[str, Any]:
    """One finding as the ``json`` format shows it (docs/json.md)."""
    return {
        "code": finding.code,
        "name": finding.name,
        "message": finding.message,
        "severity": finding.severity.value,
        "location": {
            "line": finding.span.line,
            "column": finding.span.col,
            "end_line": finding.span.end_line,
            "end_column": finding.span.end_col,
        },
        "fix": {
            "safety": finding.fix_safety.value,
            "applicable": finding.fixable(unsafe),
            "applied": finding.fixed,
            "changes": finding.fix_changes,
            "id": finding.fix_id or None,
            "reverted": finding.reverted,
        },
        "evidence": finding.evidence,
    }


def _file(result: FileResult, run: RunResult) -> dict[str, Any]:
    validation = result.validation
    return {
        "path": result.display,
        "findings": [finding_json(f, run.unsafe_fixes) for f in result.findings],
        "remaining": [finding_json(f, run.unsafe_fixes) for f in result.remaining]
        if run.mode == "write"
        else None,
        "error": result.error,
        "internal_error": result.internal_error,
        "changed": result.changed and not result.internal_error,
        "written": result.written,
        "write_skipped": result.write_skipped,
        "partial": result.partial,
        "warnings": [f"{result.display}:{note}" for note in result.notes],
        "unused_suppressions": [f"{result.display}:{n}" for n in result.unused_suppressions],
        "validation": None
        if validation is None
        else {
            "reparse": validation.reparse,
            "compile": validation.compile,
            "compile_note": validation.compile_note or None,
            "recheck": validation.recheck,
            "second_run_clean": validation.second_run_clean,
            "rounds": validation.rounds,
        },
    }


def _test_run(run: TestRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "exit_code": run.exit_code,
        "passed": run.passed,
        "timed_out": run.timed_out,
        "seconds": round(run.seconds, 3),
        "failing": run.failing,
        "counts": run.counts or None,
        "excerpt": run.excerpt,
        "evidence": run.evidence,
        "perturbation": run.perturbation or None,
    }


def _validation(report: ValidationReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "command": report.command,
        "runs": report.runs,
        "baseline": _test_run(report.baseline),
        "with_fixes": _test_run(report.with_fixes),
        "final": _test_run(report.final),
        "reverted": [
            {
                "path": r.path,
                "line": r.line,
                "code": r.code,
                "message": r.message,
                "fix_id": r.fix_id,
                "tests": r.tests,
                "excerpt": r.excerpt,
            }
            for r in report.reverted
        ],
        "note": report.note or None,
    }


def render(run: RunResult) -> str:
    files = [
        r
        for r in run.files
        if r.findings or r.error or r.internal_error or r.write_skipped or r.partial or r.notes
    ]
    counts: dict[str, int] = {}
    for _, finding in run.findings:
        counts[finding.code] = counts.get(finding.code, 0) + 1
    data = {
        "schema_version": SCHEMA_VERSION,
        "asyncfix_version": __version__,
        "mode": run.mode,
        "unsafe_fixes": run.unsafe_fixes,
        "files": [_file(r, run) for r in sorted(files, key=lambda r: r.display)],
        "errors": run.errors,
        "warnings": run.warnings,
        "validation": _validation(run.validation),
        "summary": {
            "files_checked": len(run.files),
            "findings": sum(counts.values()),
            "by_code": dict(sorted(counts.items())),
            "fixable": sum(1 for _, f in run.findings if f.fixable(run.unsafe_fixes)),
            "fixed": sum(1 for _, f in run.findings if f.fixed),
            "files_changed": sum(1 for r in run.files if r.changed and not r.internal_error),
            "errors": len(run.errors) + sum(1 for r in run.files if r.error or r.internal_error),
        },
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
