"""A rule's documentation as Markdown, from the rule class (the one source of truth).

Printed by `asyncfix rule CODE` and written to docs/rules/ by scripts/gen_docs.py.
"""

from __future__ import annotations

from asyncfix.codemods import rule_by_code


def rule_doc(code: str) -> str:
    """A rule's documentation as Markdown, from the rule class (the one source of truth)."""
    rule = rule_by_code(code)
    return "\n".join(
        [
            f"# {rule.code} {rule.name}",
            "",
            f"{rule.summary[:1].upper()}{rule.summary[1:]}.",
            "",
            "## Why is this a bug?",
            "",
            rule.why,
            "",
            "## Example",
            "",
            "```python",
            rule.example_before.rstrip("\n"),
            "```",
            "",
            "## Use instead",
            "",
            "```python",
            rule.example_after.rstrip("\n"),
            "```",
            "",
            f"## Fix safety: {rule.fix_safety.value}",
            "",
            rule.fix_safety_note + (TEST_CODE_NOTE if rule.no_fix_in_tests else ""),
            "",
        ]
    )


TEST_CODE_NOTE = (
    " In tests and docs (files under a `tests`, `test`, `docs` or `doc` directory, "
    "`test_*.py`, `*_test.py`, `conftest.py`) the finding is reported without a fix: a fix "
    "must not change what a test measures (a test may hold the event loop, or leave a "
    "resource open, on purpose) nor what an example shows."
)
