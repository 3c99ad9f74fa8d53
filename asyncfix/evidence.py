"""Reading the runtime-evidence file the pytest plugin writes (``docs/evidence.md``) for
``asyncfix --evidence``: what was seen, by the file and line it was seen at.

The file is data (JSON), read as data: nothing in it runs. A file that is not one the plugin
wrote is an error naming what is wrong with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from asyncfix.model import Observed

EVIDENCE_FORMAT = 1
DEFAULT = Path(".asyncfix_cache") / "evidence.json"


class EvidenceError(Exception):
    """The evidence file cannot be read or is not one the plugin wrote."""


def load_evidence(path: Path) -> dict[str, tuple[Observed, ...]]:
    """The observations of ``path`` by the resolved path of the file they were seen in."""
    try:
        data: Any = json.loads(path.read_bytes())
    except OSError as exc:
        raise EvidenceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, RecursionError):
        raise EvidenceError(f"{path}: not JSON") from None
    if not isinstance(data, dict) or data.get("format") != EVIDENCE_FORMAT:
        raise EvidenceError(
            f"{path}: not an evidence file of format {EVIDENCE_FORMAT} (written by "
            "`pytest -p asyncfix.pytest_plugin`)"
        )
    records = data.get("records")
    if not isinstance(records, list):
        raise EvidenceError(f"{path}: 'records' must be a list")
    found: dict[str, list[Observed]] = {}
    for number, record in enumerate(records):
        observed = _record(record)
        if observed is None:
            raise EvidenceError(f"{path}: record {number} is not one the plugin writes")
        file, seen = observed
        if file is not None:
            found.setdefault(file, []).append(seen)
    return {file: tuple(seen) for file, seen in found.items()}


def _record(record: Any) -> tuple[str | None, Observed] | None:
    if not isinstance(record, dict):
        return None
    kind, test, message, site = (record.get(k) for k in ("kind", "test", "message", "site"))
    where = record.get("where", "")  # absent from the first files the plugin wrote
    if not (isinstance(kind, str) and isinstance(test, str) and isinstance(message, str)):
        return None
    if not isinstance(where, str):
        return None
    if site is None:
        return None, Observed(kind, 0, test, message, where)
    if not isinstance(site, dict):
        return None
    path, line = site.get("path"), site.get("line")
    if not isinstance(path, str) or not isinstance(line, int) or isinstance(line, bool):
        return None
    return str(Path(path).resolve()), Observed(kind, line, test, message, where)
