"""Every rule is documented, and the generated docs are up to date."""

from __future__ import annotations

import pytest

from asyncfix.codemods import RULES
from asyncfix.codemods.base import Rule
from scripts.gen_docs import expected

DOC_FIELDS = (
    "code",
    "name",
    "summary",
    "why",
    "example_before",
    "example_after",
    "fix_safety_note",
)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_rule_is_documented(rule: type[Rule]) -> None:
    for field in DOC_FIELDS:
        value = getattr(rule, field, "")
        assert isinstance(value, str) and value.strip(), f"{rule.code} has no {field}"
    assert rule.example_before != rule.example_after
    compile(rule.example_before, f"{rule.code} example", "exec")
    compile(rule.example_after, f"{rule.code} example", "exec")


def test_generated_docs_are_current() -> None:
    stale = [
        str(path)
        for path, text in expected().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"run `python scripts/gen_docs.py`: stale {stale}"


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_example_before_is_found_and_fixed_into_after(rule: type[Rule]) -> None:
    from tests.helpers import fixed_text, run_text

    result = run_text(rule.example_before, {rule.code})
    assert [f.code for f in result.findings] == [rule.code]
    if rule.fix_safety.value != "none":
        assert fixed_text(result) == rule.example_after
