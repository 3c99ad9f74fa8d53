"""A short round of scripts/fuzz.py (its long run, 10,000 programs, is a benchmark): generated
programs with asyncio antipatterns injected, through the analysis, the fixes and the command
line, with nothing crashing and every fix verified."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

pytest.importorskip("hypothesmith")

from scripts import fuzz


def test_a_short_fuzz_round(tmp_path: Path) -> None:
    counts = fuzz.run(40, seed=7, batch=40, out=tmp_path / "failures", say=lambda _: None)
    assert counts["failures"] == 0, sorted(
        p.read_text() for p in (tmp_path / "failures").glob("*.txt")
    )
    assert counts["composed"] >= 30 and counts["fixed"] >= 20


def test_the_checks_can_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each check fails on what it is there to catch."""
    text = fuzz.compose("x = 1\n", random.Random(0))
    assert text is not None
    good = fuzz.check_text(text)
    assert good.fixed and good.findings and good.problems == []
    assert fuzz.check_batch([text], tmp_path) == []
    real = fuzz._process

    def drifting(source: str) -> fuzz.FileResult:  # a fix that changes again on a rerun
        result = real(source)
        result.fixed = source + "# again\n"
        return result

    monkeypatch.setattr(fuzz, "_process", drifting)
    assert "not idempotent" in fuzz.check_text(text).problems[0]

    def crashing(source: str) -> fuzz.FileResult:
        result = real(source)
        result.internal_error = "boom"
        return result

    monkeypatch.setattr(fuzz, "_process", crashing)
    assert fuzz.check_text(text).problems[0] == "internal error: boom"


def test_composed_programs_compile_and_hold_the_antipatterns() -> None:
    rng = random.Random(3)
    for program in ("", "x = 1\n", "class A:\n    pass\n", "from __future__ import annotations\n"):
        text = fuzz.compose(program, rng)
        assert text is not None
        compile(text, "<t>", "exec")
        assert "async def handler" in text
    assert fuzz.compose("def f(:\n", rng) is None


CORPUS_FILE = """\
import asyncio


class Client:
    def __init__(self, session):
        self.session = session
        self.total = 0

    async def fetch(self, url):
        response = await self.session.get(url)
        return response

    async def close(self):
        await self.session.close()
"""


def test_mutated_files_keep_their_bytes(tmp_path: Path) -> None:
    """scripts/fuzz.py --corpus on a small corpus: antipatterns inserted into its coroutines,
    each file then CRLF, BOM, tabs or latin-1 at random; every check passes."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for number in range(12):
        (folder / f"m{number}.py").write_text(CORPUS_FILE.replace("Client", f"Client{number}"))
    counts = fuzz.corpus(folder, 12, seed=1, batch=12, out=tmp_path / "out", say=lambda _: None)
    assert counts["failures"] == 0, sorted(p.read_text() for p in (tmp_path / "out").glob("*.txt"))
    assert counts["mutated"] == 12 and counts["fixed"] >= 6
    variants = {
        fuzz.mutate(CORPUS_FILE.encode(), random.Random(seed)) for seed in range(40)
    }  # every variant comes up
    assert any(v and v.startswith(b"\xef\xbb\xbf") for v in variants)
    assert any(v and b"\r\n" in v for v in variants)
    assert any(v and v.startswith(b"# -*- coding: latin-1") for v in variants)
    assert any(v and b"\n\t\tresponse" in v for v in variants)


def test_the_bytes_check_can_fail() -> None:
    crlf = b"import time\r\nx = 1\r\n"
    assert fuzz.kept_bytes(crlf, crlf + b"y = 2\r\n") is None
    assert "line ending" in (fuzz.kept_bytes(crlf, crlf + b"y = 2\n") or "")
    assert "BOM" in (fuzz.kept_bytes(b"\xef\xbb\xbf" + crlf, crlf) or "")
    cookie = b"# -*- coding: latin-1 -*-\nx = 1\n"
    assert "cookie" in (fuzz.kept_bytes(cookie, b"x = 1\n") or "")
    assert fuzz.kept_bytes(cookie + b"import time\n", cookie) is None  # the line after it may go
