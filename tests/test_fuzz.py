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
