"""The result model: plain data shared by the engine and the renderers.

Nothing here holds a syntax tree, so every object crosses process boundaries and
serialises to JSON (see ``docs/json.md`` for the stable schema).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, fields
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


@dataclass(frozen=True)
class Edit:
    """One part of a fix: lines ``line`` to ``end_line - 1`` (1-based; ``line == end_line``
    inserts before ``line``) replaced by ``text`` (whole lines, with their line endings)."""

    line: int
    end_line: int
    text: str


@dataclass(frozen=True)
class Observed:
    """What the runtime-evidence plugin saw at a line of a file (``pytest_plugin``):
    ``kind`` (``never-awaited``, ``slow-callback``, ...), in which test, what Python said."""

    kind: str
    line: int
    test: str
    message: str
    #: what the line is, where that varies (the record's ``where``): ``created``,
    #: ``collected``, ``blocked``, ``suspended``; else ""
    where: str = ""

    def said(self) -> str:
        """The line of evidence a finding it bears out carries."""
        return f"seen at run time: {self.message}" + (f" (in {self.test})" if self.test else "")


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
    #: this finding's fix alone, as edits of the original text (with the preview; for SARIF,
    #: the language server and fixit): empty when not asked for or when it has no fix
    fix_edits: list[Edit] = field(default_factory=list)
    #: facts behind the finding, for the report ("time imported as t at line 3")
    evidence: list[str] = field(default_factory=list)
    #: set by the engine once the fixed file verified and the fix is part of the output
    fixed: bool = False
    #: names this finding's fix across runs (a digest of the rule, message and code): how
    #: ``--validate`` leaves one fix out; "" when there is no fix
    fix_id: str = ""
    #: why the fix is not in the output although it verified: ``--validate`` found that it
    #: breaks the project's tests (the tests and an excerpt of their output)
    reverted: str | None = None

    def fixable(self, unsafe: bool) -> bool:
        return self.fix_safety is Safety.SAFE or (unsafe and self.fix_safety is Safety.UNSAFE)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["fix_safety"] = self.fix_safety.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        """The inverse of ``to_json``; ``ValueError`` (or ``KeyError``/``TypeError``) when
        ``data`` is not one."""
        return cls(
            code=_str(data["code"]),
            name=_str(data["name"]),
            message=_str(data["message"]),
            severity=Severity(data["severity"]),
            span=Span(*(_int(data["span"][key]) for key in ("line", "col", "end_line", "end_col"))),
            fix_safety=Safety(data["fix_safety"]),
            fix_changes=_strings(data["fix_changes"]),
            fix_preview=_strings(data["fix_preview"]),
            fix_edits=[
                Edit(_int(edit["line"]), _int(edit["end_line"]), _str(edit["text"]))
                for edit in data["fix_edits"]
            ],
            evidence=_strings(data["evidence"]),
            fixed=_bool(data["fixed"]),
            fix_id=_str(data["fix_id"]),
            reverted=_optional_str(data["reverted"]),
        )


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
    #: fixes left out because the file did not verify with them (the others were applied):
    #: one warning each
    dropped: list[str] = field(default_factory=list)
    #: the rules that read the stdlib tree did not run: this Python cannot parse the file
    #: (syntax newer than it) though LibCST can -- a warning naming what was not checked
    partial: str | None = None
    #: ``line:col: ...`` for each malformed suppression comment (a warning each)
    notes: list[str] = field(default_factory=list)
    #: ``line:col: ...`` for each suppression comment that suppressed nothing (shown with
    #: ``--warn-unused-suppressions``)
    unused_suppressions: list[str] = field(default_factory=list)
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
    #: how the file is encoded (PEP 263) and whether it starts with a BOM: a diff is written
    #: in the file's own bytes
    encoding: str = "utf-8"
    bom: bool = False
    #: the path a diff names (relative to the top of the git work tree, see
    #: ``files.patch_path``); the display path when unset
    patch_path: str | None = None

    @property
    def worth_keeping(self) -> bool:
        """The caches keep this result as it is (else as "nothing to report")."""
        return bool(
            self.findings
            or self.error
            or self.partial
            or self.fixed is not None
            or self.notes
            or self.unused_suppressions
        )

    @property
    def changed(self) -> bool:
        return self.fixed is not None and self.fixed != self.original

    def to_cache(self) -> dict[str, Any]:
        """Plain data for the results cache (JSON: reading a cache never runs code)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["findings"] = [finding.to_json() for finding in self.findings]
        data["remaining"] = [finding.to_json() for finding in self.remaining]
        data["validation"] = asdict(self.validation) if self.validation is not None else None
        return data

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> FileResult:
        """The inverse of ``to_cache``; ``ValueError``/``KeyError``/``TypeError`` when the
        data is not one (a cache someone edited is discarded, never trusted)."""
        validation = data["validation"]
        return cls(
            path=_str(data["path"]),
            display=_str(data["display"]),
            findings=[Finding.from_json(item) for item in data["findings"]],
            remaining=[Finding.from_json(item) for item in data["remaining"]],
            error=_optional_str(data["error"]),
            internal_error=_optional_str(data["internal_error"]),
            dropped=_strings(data["dropped"]),
            partial=_optional_str(data["partial"]),
            notes=_strings(data["notes"]),
            unused_suppressions=_strings(data["unused_suppressions"]),
            original=_optional_str(data["original"]),
            fixed=_optional_str(data["fixed"]),
            validation=None if validation is None else _validation(validation),
            written=_bool(data["written"]),
            write_skipped=_optional_str(data["write_skipped"]),
            cached=_bool(data["cached"]),
            depends=_strings(data["depends"]),
            content=_optional_str(data["content"]),
            encoding=_str(data["encoding"]),
            bom=_bool(data["bom"]),
            patch_path=_optional_str(data["patch_path"]),
        )


@dataclass
class TestRun:
    """One run of the validation command."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    exit_code: int | None
    seconds: float
    #: the tests it named as failing (pytest's or unittest's summary)
    failing: list[str] = field(default_factory=list)
    #: pytest's closing counts, as it printed them ("118 passed, 2 failed")
    counts: str = ""
    timed_out: bool = False
    #: the end of what it printed
    excerpt: str = ""
    #: ``--validate-evidence``: what the runtime-evidence plugin counted in this run, per
    #: kind, and each perturbed test's failures ("3/40"); None: not asked for, or the
    #: plugin wrote nothing (the command is not pytest, or cannot load the plugin)
    evidence: dict[str, int] | None = None
    perturbation: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def describe(self) -> str:
        if self.timed_out:
            return f"timed out after {self.seconds:.0f} s (killed)"
        state = "passed" if self.exit_code == 0 else f"failed (exit status {self.exit_code})"
        extra = f": {self.counts}" if self.counts else ""
        return f"{state}{extra} in {self.seconds:.1f} s"


@dataclass
class Reverted:
    """A fix the tests rejected."""

    path: str
    line: int
    code: str
    message: str
    fix_id: str
    #: the tests that passed before and failed with it
    tests: list[str]
    excerpt: str


@dataclass
class ValidationReport:
    command: str
    baseline: TestRun | None = None
    #: with every fix written
    with_fixes: TestRun | None = None
    #: after the reverts (None when nothing was reverted: ``with_fixes`` is final)
    final: TestRun | None = None
    reverted: list[Reverted] = field(default_factory=list)
    #: runs of the command in all
    runs: int = 0
    #: why nothing was written, or what could not be told
    note: str = ""

    @property
    def last(self) -> TestRun | None:
        return self.final or self.with_fixes


@dataclass
class RunResult:
    files: list[FileResult]
    mode: str  # "check" | "diff" | "write"
    unsafe_fixes: bool
    #: problems not tied to a file we could read (vanished paths, config problems)
    errors: list[str] = field(default_factory=list)
    #: what ``--validate`` ran and found (None: not asked for)
    validation: ValidationReport | None = None
    #: warnings not tied to a file's result (a file named that is not Python, skipped)
    warnings: list[str] = field(default_factory=list)

    @property
    def findings(self) -> list[tuple[FileResult, Finding]]:
        return [(f, x) for f in self.files for x in f.findings]

    def reported(self, result: FileResult) -> list[Finding]:
        """What the run reports for ``result``: after ``--write``, what is left in the
        written file; else its findings."""
        if self.mode == "write" and result.written:
            return result.remaining
        return result.findings

    @property
    def reported_findings(self) -> list[tuple[FileResult, Finding]]:
        return [(r, f) for r in self.files for f in self.reported(r)]

    def has_errors(self) -> bool:
        return bool(self.errors) or any(f.error or f.internal_error for f in self.files)


def _validation(data: dict[str, Any]) -> Validation:
    recheck = data["recheck"]
    if not isinstance(recheck, dict):
        raise TypeError("recheck")
    return Validation(
        reparse=_optional_bool(data["reparse"]),
        compile=_optional_bool(data["compile"]),
        compile_note=_str(data["compile_note"]),
        recheck={_str(key): _int(value) for key, value in recheck.items()},
        second_run_clean=_optional_bool(data["second_run_clean"]),
        rounds=_int(data["rounds"]),
    )


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _optional_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {type(value).__name__}")
    return value


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else _bool(value)


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return [_str(item) for item in value]
