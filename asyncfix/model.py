"""The result model: plain data shared by the engine and the renderers.

Nothing here holds a syntax tree, so every object crosses process boundaries and
serialises to JSON (see ``docs/json.md`` for the stable schema).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Safety(str, enum.Enum):
    """How sure a fix is. ``--write`` applies SAFE; ``--unsafe-fixes`` adds UNSAFE."""

    SAFE = "safe"
    UNSAFE = "unsafe"
    NONE = "none"


class Severity(str, enum.Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class Span:
    """1-based lines, 1-based columns (as editors show them); end is inclusive of the last line."""

    line: int
    col: int
    end_line: int
    end_col: int


@dataclass
class Finding:
    code: str
    name: str
    message: str
    severity: Severity
    span: Span
    #: safety of the fix this finding offers (NONE: report only)
    fix_safety: Safety = Safety.NONE
    #: one line per change the fix makes, for the report ("Replaced ... with ...")
    fix_changes: list[str] = field(default_factory=list)
    #: the lines this finding's fix removes ("- ...") and adds ("+ ..."), for the report
    fix_preview: list[str] = field(default_factory=list)
    #: facts behind the finding, for the report ("time imported as t at line 3")
    evidence: list[str] = field(default_factory=list)
    #: set by the engine once the fixed file verified and the fix is part of the output
    fixed: bool = False

    def fixable(self, unsafe: bool) -> bool:
        return self.fix_safety is Safety.SAFE or (unsafe and self.fix_safety is Safety.UNSAFE)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["fix_safety"] = self.fix_safety.value
        return data


@dataclass
class Validation:
    """What the engine actually ran on a fixed file; ``None`` means not run."""

    reparse: bool | None = None
    #: True: compiled; False: failed; None: not run (file uses syntax newer than this Python)
    compile: bool | None = None
    compile_note: str = ""
    #: fixable findings left after the fixpoint, per applied rule code (0 everywhere = idempotent)
    recheck: dict[str, int] = field(default_factory=dict)
    #: True when a second fix pass over the output changed nothing
    second_run_clean: bool | None = None
    rounds: int = 0


@dataclass
class FileResult:
    path: str
    #: display path (relative to the working directory when possible)
    display: str
    findings: list[Finding] = field(default_factory=list)
    #: findings left in the fixed output (write mode reports these)
    remaining: list[Finding] = field(default_factory=list)
    #: per-file problem (syntax error, undecodable, unreadable): file left untouched
    error: str | None = None
    #: a fix that failed verification (internal error); file left untouched
    internal_error: str | None = None
    original: str | None = None
    fixed: str | None = None
    validation: Validation | None = None
    #: set by the writer
    written: bool = False
    #: the file changed on disk after it was read, so the fix was not written (a warning: the
    #: findings stay, the exit status says so); a failed write is an ``error``
    write_skipped: str | None = None
    #: the result came from the results cache: the file was not analysed again
    cached: bool = False
    #: the project modules the analysis used (for the results cache)
    depends: list[str] = field(default_factory=list)
    #: SHA-256 of the bytes analysed (for the results cache)
    content: str | None = None

    @property
    def changed(self) -> bool:
        return self.fixed is not None and self.fixed != self.original


@dataclass
class RunResult:
    files: list[FileResult]
    mode: str  # "check" | "diff" | "write"
    unsafe_fixes: bool
    #: problems not tied to a file we could read (vanished paths, config problems)
    errors: list[str] = field(default_factory=list)

    @property
    def findings(self) -> list[tuple[FileResult, Finding]]:
        return [(f, x) for f in self.files for x in f.findings]

    def has_errors(self) -> bool:
        return bool(self.errors) or any(f.error or f.internal_error for f in self.files)
