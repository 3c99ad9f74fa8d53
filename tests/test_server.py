"""``asyncfix server`` driven by a real LSP client (pygls') over stdio: diagnostics on open,
change and save, code actions that fix, a document with a syntax error, close."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

BUGGY = "import time\n\n\nasync def poll():\n    time.sleep(1)\n"
UNSAFE = """\
class Api:
    async def _get(self):
        return 1

    async def get(self):
        return self._get()
"""


def apply(text: str, edits: list[lsp.TextEdit]) -> str:
    """LSP text edits (UTF-16 columns; these texts are ASCII) applied to ``text``."""
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)

    def offset(position: lsp.Position) -> int:
        return min(offsets[position.line] + position.character, len(text))

    for edit in sorted(edits, key=lambda e: offset(e.range.start), reverse=True):
        text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    return text


class Session:
    """A client with the server it started; diagnostics as they are published."""

    def __init__(self) -> None:
        self.client = LanguageClient("asyncfix-test", "1")
        self.published: dict[str, list[lsp.Diagnostic]] = {}
        self.arrived: asyncio.Queue[str] = asyncio.Queue()

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            self.published[params.uri] = params.diagnostics
            self.arrived.put_nowait(params.uri)

    async def start(self, root: Path) -> None:
        await self.client.start_io(sys.executable, "-m", "asyncfix", "server")
        await self.client.initialize_async(
            lsp.InitializeParams(
                capabilities=lsp.ClientCapabilities(),
                root_uri=root.as_uri(),
                workspace_folders=[lsp.WorkspaceFolder(uri=root.as_uri(), name="project")],
            )
        )
        self.client.initialized(lsp.InitializedParams())

    async def diagnostics_of(self, uri: str) -> list[lsp.Diagnostic]:
        while True:
            got = await asyncio.wait_for(self.arrived.get(), timeout=60)
            if got == uri:
                return self.published[uri]

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


def test_language_server_session(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.asyncfix]\n")
    path = tmp_path / "app.py"
    path.write_text(BUGGY)
    uri = path.as_uri()

    async def session() -> None:
        s = Session()
        await s.start(tmp_path)
        try:
            open_ = lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=BUGGY)
            s.client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=open_))
            (diagnostic,) = await s.diagnostics_of(uri)
            assert diagnostic.code == "AF201" and diagnostic.source == "asyncfix"
            assert diagnostic.range == lsp.Range(lsp.Position(4, 4), lsp.Position(4, 17))
            assert diagnostic.severity == lsp.DiagnosticSeverity.Error
            assert diagnostic.code_description is not None
            assert diagnostic.code_description.href.endswith("/AF201.md")

            actions = await s.client.text_document_code_action_async(
                lsp.CodeActionParams(
                    text_document=lsp.TextDocumentIdentifier(uri=uri),
                    range=diagnostic.range,
                    context=lsp.CodeActionContext(diagnostics=[diagnostic]),
                )
            )
            assert actions is not None
            quick = [a for a in actions if isinstance(a, lsp.CodeAction) and a.kind == "quickfix"]
            (fix,) = quick
            assert fix.is_preferred and fix.title.startswith("Fix AF201")
            assert fix.edit is not None and fix.edit.changes is not None
            fixed = apply(BUGGY, fix.edit.changes[uri])
            assert fixed == BUGGY.replace("import time", "import asyncio").replace(
                "time.sleep(1)", "await asyncio.sleep(1)"
            )

            # an edit that breaks the syntax: one diagnostic, where the parser says
            broken = BUGGY + "def f(:\n"
            s.client.text_document_did_change(
                lsp.DidChangeTextDocumentParams(
                    text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
                    content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=broken)],
                )
            )
            (error,) = await s.diagnostics_of(uri)
            assert error.code is None and "syntax error" in error.message
            assert error.range.start.line == 5

            # the fix applied and saved: nothing left
            s.client.text_document_did_change(
                lsp.DidChangeTextDocumentParams(
                    text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=3),
                    content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=fixed)],
                )
            )
            assert list(await s.diagnostics_of(uri)) == []
            s.client.text_document_did_save(
                lsp.DidSaveTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
            )
            assert list(await s.diagnostics_of(uri)) == []

            # an unsafe fix is offered, not preferred; "fix all" leaves it out (unsafe-fixes
            # is off in the configuration)
            other = (tmp_path / "api.py").as_uri()
            item = lsp.TextDocumentItem(uri=other, language_id="python", version=1, text=UNSAFE)
            s.client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=item))
            (unsafe,) = await s.diagnostics_of(other)
            assert unsafe.code == "AF101"
            actions = await s.client.text_document_code_action_async(
                lsp.CodeActionParams(
                    text_document=lsp.TextDocumentIdentifier(uri=other),
                    range=unsafe.range,
                    context=lsp.CodeActionContext(diagnostics=[unsafe]),
                )
            )
            assert actions is not None
            titles = {a.title: a for a in actions if isinstance(a, lsp.CodeAction)}
            (title,) = titles
            assert title.endswith("(unsafe fix)") and not titles[title].is_preferred

            s.client.text_document_did_close(
                lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
            )
            assert list(await s.diagnostics_of(uri)) == []
        finally:
            await s.stop()

    asyncio.run(session())
