"""A pytest plugin for scripts/realproj.py: each test's outcome, by node id, as JSON lines.

Loaded with ``-p realproj_plugin`` (this folder on ``PYTHONPATH``). Each outcome is appended to
the file named by ``REALPROJ_OUTCOMES`` as soon as it is known (on the xdist controller only,
which sees every worker's reports), so a run killed because it hung still tells which tests
finished. Outcomes: passed, failed, error (setup or teardown failed), skipped, xfailed,
xpassed; a module that fails to import is one ``error`` under its own path. A failure's line
also holds the end of its output.
"""

from __future__ import annotations

import json
import os
from typing import Any

_config: Any = None


def pytest_configure(config: Any) -> None:
    global _config
    _config = config


def _write(nodeid: str, outcome: str, report: Any) -> None:
    if _config is not None and hasattr(_config, "workerinput"):
        return  # an xdist worker: the controller writes
    target = os.environ.get("REALPROJ_OUTCOMES")
    if not target:
        return
    line: dict[str, str] = {"test": nodeid, "outcome": outcome}
    if outcome in ("failed", "error"):
        text = str(getattr(report, "longreprtext", "") or "")
        line["excerpt"] = "\n".join(text.splitlines()[-25:])
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def pytest_runtest_logreport(report: Any) -> None:
    if hasattr(report, "wasxfail"):
        if report.when == "call" or report.skipped:
            _write(report.nodeid, "xfailed" if report.skipped else "xpassed", report)
        return
    if report.when == "call":
        _write(report.nodeid, report.outcome, report)
    elif report.failed:
        _write(report.nodeid, "error", report)
    elif report.skipped:
        _write(report.nodeid, "skipped", report)


def pytest_collectreport(report: Any) -> None:
    if report.failed:
        _write(report.nodeid or "<collection>", "error", report)
