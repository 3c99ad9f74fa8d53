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
            rule.fix_safety_note,
            "",
        ]
    )
