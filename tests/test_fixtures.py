"""Fixture folders are the spec of each rule.

``tests/fixtures/<CODE>/``:
- ``<case>.before.py`` + ``<case>.after.py``: the fix, exact text (unsafe fixes enabled);
- ``<case>.nofix.py``: reported, but left unchanged (no fix is offered);
- ``<case>.py``: a look-alike: no finding of CODE at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from asyncfix.codemods import RULES
from asyncfix.config import TARGET_VERSIONS
from asyncfix.model import Safety
from tests.helpers import fixed_text, run_text

FIXTURES = Path(__file__).parent / "fixtures"


def _cases(kind: str) -> list[tuple[str, Path]]:
    cases = []
    for folder in sorted(FIXTURES.iterdir()):
        for path in sorted(folder.glob("*.py")):
            name = path.name
            if _kind(name) == kind:
                cases.append((folder.name, path))
    return cases


def _kind(name: str) -> str:
    if name.endswith(".before.py"):
        return "pair"
    if name.endswith(".nofix.py"):
        return "nofix"
    return "lookalike" if name.count(".") == 1 else "other"


def _id(case: tuple[str, Path]) -> str:
    return f"{case[0]}/{case[1].name}"


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def _options(text: str) -> dict[str, Any]:
    """Settings a fixture asks for on its first line, e.g.
    ``# fixture: target-version=py38 offload-functions=hass.async_add_executor_job``;
    ``test-code`` analyses it as a file of the project's tests."""
    first = text.split("\n", 1)[0]
    if not first.startswith("# fixture:"):
        return {}
    options: dict[str, Any] = {}
    for item in first.removeprefix("# fixture:").split():
        key, _, value = item.partition("=")
        if key == "target-version":
            options["target"] = TARGET_VERSIONS[value]
        elif key == "offload-functions":
            options["offload"] = tuple(value.split(","))
        elif key == "coroutine-functions":
            options["coroutine_functions"] = tuple(value.split(","))
        elif key == "test-code":
            options["test_code"] = True
        else:
            raise ValueError(f"unknown fixture option {key!r}")
    return options


@pytest.mark.parametrize("case", _cases("pair"), ids=_id)
def test_fix_matches_after(case: tuple[str, Path]) -> None:
    code, before = case
    after = before.with_name(before.name.replace(".before.py", ".after.py"))
    assert after.exists(), f"{before.name} has no {after.name}"
    result = run_text(_read(before), {code}, **_options(_read(before)))
    assert any(f.code == code for f in result.findings), f"{before.name}: no {code} finding"
    assert all(f.fixed for f in result.findings if f.fix_safety is not Safety.NONE)
    assert fixed_text(result) == _read(after)


@pytest.mark.parametrize("case", _cases("pair"), ids=_id)
def test_after_is_a_fixpoint(case: tuple[str, Path]) -> None:
    code, before = case
    after = before.with_name(before.name.replace(".before.py", ".after.py"))
    text = _read(after)
    result = run_text(text, {code}, **_options(text))
    assert not [f for f in result.findings if f.fix_safety is not Safety.NONE]
    assert fixed_text(result) == text
    compile(text, str(after), "exec")


@pytest.mark.parametrize("case", _cases("nofix"), ids=_id)
def test_reported_without_fix(case: tuple[str, Path]) -> None:
    code, path = case
    text = _read(path)
    result = run_text(text, {code}, **_options(text))
    ours = [f for f in result.findings if f.code == code]
    assert ours, f"{path.name}: no {code} finding"
    assert all(f.fix_safety is Safety.NONE for f in ours)
    assert fixed_text(result) == text


@pytest.mark.parametrize("case", _cases("lookalike"), ids=_id)
def test_lookalike_not_flagged(case: tuple[str, Path]) -> None:
    code, path = case
    result = run_text(_read(path), {code}, **_options(_read(path)))
    assert result.error is None
    assert [f"{f.span.line}: {f.message}" for f in result.findings] == []


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_every_rule_has_fixtures(rule: type) -> None:
    folder = FIXTURES / rule.code
    assert folder.is_dir(), f"{rule.code} has no fixture folder"
    names = [p.name for p in folder.glob("*.py")]
    assert any(n.count(".") == 1 for n in names), f"{rule.code} has no look-alike fixture"
    if rule.fix_safety is not Safety.NONE:
        assert any(n.endswith(".before.py") for n in names), f"{rule.code} has no before/after pair"
    else:
        assert any(n.endswith(".nofix.py") for n in names), f"{rule.code} has no report fixture"


def test_every_fixture_folder_is_a_rule() -> None:
    codes = {rule.code for rule in RULES}
    assert {p.name for p in FIXTURES.iterdir() if p.is_dir()} <= codes


def test_offload_functions_config_is_what_silences_the_helpers() -> None:
    """The look-alike relies on its ``offload-functions`` line: without it, the calls handed
    to ``hass.async_add_executor_job`` and ``run_blocking`` are findings."""
    path = FIXTURES / "AF203" / "offload_helpers.py"
    text = _read(path)
    result = run_text(text, {"AF203"})
    lines = sorted(f.span.line for f in result.findings)
    assert lines == [19, 23, 27], lines
    assert not run_text(text, {"AF203"}, **_options(text)).findings
