"""The runtime-evidence plugin on real projects' test suites: what it costs, what it sees,
whether it changes any test's outcome, and what ``asyncfix --evidence`` makes of it.

For each project of ``scripts/realproj.toml`` (the environments ``scripts/realproj.py``
builds and caches), in a fresh copy of its sdist:

1. the test suite as released, timed;
2. the same suite under ``-p asyncfix.pytest_plugin`` (asyncfix from this checkout on
   ``PYTHONPATH``), timed, with its evidence file; a test that passed in (1) and not here
   is listed (the plugin must not change what a suite says);
3. ``asyncfix --evidence <file> --output-format json`` on the copy: the findings made from
   the evidence alone (their message says "when the tests ran") and the findings it bears
   out (their evidence says "seen at run time").

    python scripts/realproj_evidence.py [PROJECT ...] [--cache DIR] [--perturb N]

Prints one row per project and the totals; writes ``<cache>/evidence/<project>.json`` (the
evidence file) and ``<cache>/evidence/report.md`` (every record's kind, test and message;
every finding made from it). Exit status 1 when the plugin changed a test's outcome.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.realproj import (
    DEFAULT_CACHE,
    ROOT,
    Project,
    Suite,
    check_import,
    fresh_copy,
    load_projects,
    pristine,
    run_suite,
    venv,
)


def run_project(
    project: Project, cache: Path, perturb: int
) -> tuple[Suite, Suite, dict[str, Any], list[dict[str, Any]]]:
    python = venv(project, cache)
    source = pristine(project, cache)
    plain = fresh_copy(source, cache / "work" / project.name / "evidence-plain")
    check_import(project, python, plain)
    before = run_suite(project, python, plain)
    copy = fresh_copy(source, cache / "work" / project.name / "evidence")
    target = cache / "evidence" / f"{project.name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    extra: tuple[str, ...] = ("-p", "asyncfix.pytest_plugin", "--asyncfix-evidence", str(target))
    if perturb:
        extra += ("--asyncfix-perturb", str(perturb))
    watched = run_suite(project, python, copy, extra=extra, more_path=(str(ROOT),))
    data: dict[str, Any] = (
        json.loads(target.read_text(encoding="utf-8")) if target.exists() else {"records": []}
    )
    findings: list[dict[str, Any]] = []
    if target.exists():
        done = subprocess.run(
            [sys.executable, "-m", "asyncfix", "--no-cache", "--evidence", str(target),
             "--output-format", "json", "."],
            cwd=copy, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode not in (0, 1):
            raise RuntimeError(f"{project.name}: asyncfix --evidence: {done.stderr[-800:]}")
        for file in json.loads(done.stdout)["files"]:
            for finding in file["findings"]:
                findings.append({**finding, "path": file["path"]})
    shutil.rmtree(plain, ignore_errors=True)
    return before, watched, data, findings


def changed(before: Suite, after: Suite) -> list[str]:
    """Tests that passed as released and did not under the plugin (perturbed runs aside)."""
    return sorted(
        test
        for test, outcome in before.outcomes.items()
        if outcome == "passed" and after.outcomes.get(test, "missing") not in ("passed",)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("projects", nargs="*", help="names from realproj.toml (default: all)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--perturb", type=int, default=0, help="--asyncfix-perturb N")
    args = parser.parse_args()
    projects = [p for p in load_projects() if not args.projects or p.name in args.projects]
    header = (
        f"{'project':<15} {'tests':>6} {'plain s':>8} {'plugin s':>9} {'changed':>8}  "
        "seen | from evidence | borne out"
    )
    print(header)
    lines = ["# The runtime-evidence plugin on real projects", ""]
    totals: Counter[str] = Counter()
    status = 0
    for project in projects:
        try:
            before, watched, data, findings = run_project(project, args.cache, args.perturb)
        except RuntimeError as exc:
            print(f"{project.name:<15} error: {exc}")
            status = 1
            continue
        kinds = Counter(record["kind"] for record in data["records"])
        made = [f for f in findings if "when the tests ran" in f["message"]]
        borne = [f for f in findings if any("seen at run time" in e for e in f["evidence"])]
        broken = changed(before, watched) if not args.perturb else []
        status |= bool(broken or watched.problem)
        seen = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())) or "-"
        print(
            f"{project.name:<15} {len(before.outcomes):>6} {before.seconds:>8.1f} "
            f"{watched.seconds:>9.1f} {len(broken):>8}  {seen} | "
            f"{', '.join(f['code'] for f in made) or '-'} | {len(borne)}"
            + (f"  ({watched.problem.splitlines()[0]})" if watched.problem else "")
        )
        totals.update(kinds)
        totals["tests"] += len(before.outcomes)
        totals["plain seconds"] += round(before.seconds)
        totals["plugin seconds"] += round(watched.seconds)
        totals["changed"] += len(broken)
        totals["from evidence"] += len(made)
        totals["borne out"] += len(borne)
        lines += [f"## {project.name} {project.version}", ""]
        lines += [f"- changed by the plugin: `{test}`" for test in broken]
        for record in data["records"]:
            site = record.get("site") or {}
            place = f"{Path(site.get('path', '?')).name}:{site.get('line', '?')}"
            message = record["message"].splitlines()[0]
            lines.append(f"- {record['kind']} at {place} in `{record['test']}`: {message}")
        for finding in made:
            where = f"{finding['path']}:{finding['location']['line']}"
            lines.append(f"- **{finding['code']}** {where}: {finding['message']}")
        lines.append("")
    print("totals: " + ", ".join(f"{key} {value}" for key, value in totals.items()))
    report = args.cache / "evidence" / "report.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"report: {report}")
    return status


if __name__ == "__main__":
    sys.exit(main())
