"""``asyncfix server``: a language server (LSP, over stdio, with pygls).

It checks a Python document when it is opened, changed (after a pause in typing) and saved,
publishes each finding as a diagnostic (the rule's code, linked to its documentation), and
offers each fix as a code action: the safe fixes as preferred quick fixes, the unsafe ones
(when the configuration does not turn them on, as a plain quick fix the user picks knowingly)
and, when more than one finding has a fix, one action that applies them all. A document
that does not parse gets one diagnostic saying where and why, and no others.

Each document is checked as the file it is (its configuration, per-file ignores, test-code
status), as ``asyncfix -`` does with ``--stdin-filename``: the text in the editor, the rest of
the project read from disk. Nothing is written: the editor applies the edits.
"""

from __future__ import annotations

import asyncio
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import PositionCodec

from asyncfix import __version__
from asyncfix.config import ConfigError, apply_requires_python, find_config, load
from asyncfix.engine.runner import all_codes, run_stdin
from asyncfix.model import Edit, FileResult, Finding, Safety, Severity

SOURCE = "asyncfix"
#: how long typing must pause before a changed document is checked again
DEBOUNCE = 0.3
DOCS = "https://github.com/asyncfix/asyncfix/blob/main/docs/rules/{code}.md"

_SEVERITY = {
    Severity.HIGH: lsp.DiagnosticSeverity.Error,
    Severity.MEDIUM: lsp.DiagnosticSeverity.Warning,
    Severity.LOW: lsp.DiagnosticSeverity.Information,
}


@dataclass
class _Checked:
    """The last check of a document: its version, and what it found."""

    version: int | None
    text: str
    path: Path | None
    result: FileResult
    diagnostics: list[tuple[lsp.Diagnostic, Finding]] = field(default_factory=list)


class AsyncfixServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("asyncfix", __version__)
        self.checked: dict[str, _Checked] = {}
        self.pending: dict[str, asyncio.TimerHandle] = {}


server = AsyncfixServer()


def _path(uri: str) -> Path | None:
    found = to_fs_path(uri)
    return Path(found) if found else None


def check(ls: AsyncfixServer, uri: str) -> None:
    """Check the document now and publish what was found."""
    ls.pending.pop(uri, None)
    document = ls.workspace.get_text_document(uri)
    path = _path(uri)
    text = document.source
    result = _analyse(text, path)
    checked = _Checked(document.version, text, path, result)
    lines = _lines(text)
    codec = document.position_codec
    if result.error or result.internal_error:
        checked.diagnostics = []
        diagnostics = [_error_diagnostic(result, lines, codec)]
    else:
        for finding in result.findings:
            checked.diagnostics.append((_diagnostic(finding, lines, codec), finding))
        diagnostics = [d for d, _ in checked.diagnostics]
    ls.checked[uri] = checked
    ls.text_document_publish_diagnostics(
        lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=document.version)
    )


def _run(text: str, path: Path | None, mode: str) -> FileResult:
    """asyncfix on the text as the file at ``path``: in check mode each finding with its
    own fix as edits, in diff mode the text fixed; a configuration that cannot be read is
    an error result."""
    try:
        config = load(find_config(path or Path.cwd()), all_codes())
        apply_requires_python(config, config.path or path or Path.cwd())
    except ConfigError as exc:
        result = FileResult(path=str(path), display=str(path))
        result.error = f"configuration: {exc}"
        return result
    filename = None
    if path is not None:
        try:
            filename = path.absolute().relative_to(config.root)
        except ValueError:
            filename = path.absolute()
    raw = _as_bytes(text)
    run = run_stdin(raw, filename, config, mode, previews=mode == "check", cwd=config.root)
    return run.files[0]


def _analyse(text: str, path: Path | None) -> FileResult:
    return _run(text, path, "check")


def _as_bytes(text: str) -> bytes:
    """The editor's text in the encoding its coding cookie declares (PEP 263), else UTF-8:
    what asyncfix decodes again."""
    head = text.encode("utf-8", "surrogatepass")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(head).readline)
        return text.encode(encoding)
    except (SyntaxError, LookupError, UnicodeEncodeError):
        return head


def _range(
    lines: list[str], codec: PositionCodec, line: int, col: int, end_line: int, end_col: int
) -> lsp.Range:
    """1-based lines and code-point columns as the client counts them."""
    start = codec.position_to_client_units(lines, lsp.Position(line - 1, col - 1))
    end = codec.position_to_client_units(lines, lsp.Position(end_line - 1, end_col - 1))
    return lsp.Range(start=start, end=end)


def _diagnostic(finding: Finding, lines: list[str], codec: PositionCodec) -> lsp.Diagnostic:
    span = finding.span
    return lsp.Diagnostic(
        range=_range(lines, codec, span.line, span.col, span.end_line, span.end_col),
        message=finding.message,
        severity=_SEVERITY[finding.severity],
        code=finding.code,
        code_description=lsp.CodeDescription(href=DOCS.format(code=finding.code)),
        source=SOURCE,
        data={"fix_id": finding.fix_id, "safety": finding.fix_safety.value},
    )


#: the line a syntax error names ("syntax error at line 6, column 7: ...")
_LINE = re.compile(r"\bline (\d+)")


def _error_diagnostic(result: FileResult, lines: list[str], codec: PositionCodec) -> lsp.Diagnostic:
    """A document asyncfix cannot check: one diagnostic, on the line the parser names."""
    message = result.error or result.internal_error or ""
    named = _LINE.search(message)
    line = max(1, min(int(named[1]), len(lines))) if named else 1
    width = len(lines[line - 1]) + 1 if line - 1 < len(lines) else 1
    return lsp.Diagnostic(
        range=_range(lines, codec, line, 1, line, width),
        message=f"asyncfix cannot check this file: {message}",
        severity=lsp.DiagnosticSeverity.Error,
        source=SOURCE,
    )


def _text_edits(edits: list[Edit], lines: list[str], codec: PositionCodec) -> list[lsp.TextEdit]:
    """Whole-line edits as LSP text edits: from the start of the first line replaced to
    the start of the line after the last (the end of the text when there is none)."""
    out = []
    for edit in edits:
        start = lsp.Position(edit.line - 1, 0)
        if edit.end_line - 1 < len(lines):
            end = lsp.Position(edit.end_line - 1, 0)
        else:
            end = _end_of(lines, codec)
        out.append(lsp.TextEdit(range=lsp.Range(start=start, end=end), new_text=edit.text))
    return out


def _cancel_pending(ls: AsyncfixServer, uri: str) -> None:
    """Forget the check a change scheduled for the document."""
    waiting = ls.pending.pop(uri, None)
    if waiting is not None:
        waiting.cancel()


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: AsyncfixServer, params: lsp.DidOpenTextDocumentParams) -> None:
    check(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: AsyncfixServer, params: lsp.DidSaveTextDocumentParams) -> None:
    check(ls, params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: AsyncfixServer, params: lsp.DidChangeTextDocumentParams) -> None:
    """Check again once typing pauses (a check per keystroke would fall behind)."""
    uri = params.text_document.uri
    _cancel_pending(ls, uri)
    loop = asyncio.get_running_loop()
    ls.pending[uri] = loop.call_later(DEBOUNCE, check, ls, uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: AsyncfixServer, params: lsp.DidCloseTextDocumentParams) -> None:
    uri = params.text_document.uri
    _cancel_pending(ls, uri)
    ls.checked.pop(uri, None)
    ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri=uri, diagnostics=[]))


@server.feature(
    lsp.TEXT_DOCUMENT_CODE_ACTION,
    lsp.CodeActionOptions(
        code_action_kinds=[lsp.CodeActionKind.QuickFix, lsp.CodeActionKind.SourceFixAll]
    ),
)
def code_action(ls: AsyncfixServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    """A quick fix for each finding with a fix in the range; "fix all" for the document."""
    uri = params.text_document.uri
    checked = ls.checked.get(uri)
    document = ls.workspace.get_text_document(uri)
    if checked is None or checked.version != document.version:
        check(ls, uri)
        checked = ls.checked[uri]
    lines = _lines(checked.text)
    codec = document.position_codec
    actions: list[lsp.CodeAction] = []
    wanted = params.context.only
    fixable = [(d, f) for d, f in checked.diagnostics if f.fix_edits]
    if wanted is None or lsp.CodeActionKind.QuickFix in wanted:
        for diagnostic, finding in fixable:
            if not _overlaps(diagnostic.range, params.range):
                continue
            safe = finding.fix_safety is Safety.SAFE
            title = f"Fix {finding.code}: {'; '.join(finding.fix_changes) or finding.name}"
            if not safe:
                title += " (unsafe fix)"
            actions.append(
                lsp.CodeAction(
                    title=title,
                    kind=lsp.CodeActionKind.QuickFix,
                    diagnostics=[diagnostic],
                    is_preferred=safe,
                    edit=lsp.WorkspaceEdit(
                        changes={uri: _text_edits(finding.fix_edits, lines, codec)}
                    ),
                )
            )
    fix_all = _fix_all(checked, uri, lines, codec)
    if fix_all is not None and (
        wanted is None
        or lsp.CodeActionKind.SourceFixAll in wanted
        or (lsp.CodeActionKind.QuickFix in wanted and len(fixable) > 1)
    ):
        actions.append(fix_all)
    return actions


def _fix_all(
    checked: _Checked, uri: str, lines: list[str], codec: PositionCodec
) -> lsp.CodeAction | None:
    """The fixes `asyncfix --write` would make to the document (safe ones, and the unsafe
    ones when the configuration turns them on), verified together, as one edit."""
    result = _fixed(checked.text, checked.path)
    if result is None:
        return None
    whole = lsp.Range(start=lsp.Position(0, 0), end=_end_of(lines, codec))
    return lsp.CodeAction(
        title="Fix all asyncfix findings (the fixes `asyncfix --write` makes here)",
        kind=lsp.CodeActionKind.SourceFixAll,
        edit=lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(range=whole, new_text=result)]}),
    )


def _fixed(text: str, path: Path | None) -> str | None:
    file = _run(text, path, "diff")
    if file.error or not file.changed or file.internal_error or file.fixed is None:
        return None
    return file.fixed


def _lines(text: str) -> list[str]:
    """The text's lines as LSP counts them (``\n``, ``\r\n``, ``\r``; what Python's
    parser counts too), the last one after the final line break included (empty when the
    text ends with one): ``(len - 1, 0)`` is then the end of the text."""
    return re.split(r"\r\n|\r|\n", text)


def _end_of(lines: list[str], codec: PositionCodec) -> lsp.Position:
    """The position after the last character of the text."""
    if not lines:
        return lsp.Position(0, 0)
    end: lsp.Position = codec.position_to_client_units(
        lines, lsp.Position(len(lines) - 1, len(lines[-1]))
    )
    return end


def _overlaps(a: lsp.Range, b: lsp.Range) -> bool:
    def key(position: lsp.Position) -> tuple[int, int]:
        return (position.line, position.character)

    return not (key(a.end) < key(b.start) or key(b.end) < key(a.start))


def serve() -> None:
    """Run the server on stdin/stdout until the client says exit."""
    server.start_io()
