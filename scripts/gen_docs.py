"""Write docs/rules/<CODE>.md and the index in docs/rules/README.md from the rule classes.

The rule class is the one source of truth; `tests/test_docs.py` fails when these files are
stale. Run: python scripts/gen_docs.py
"""

from __future__ import annotations

from pathlib import Path

from asyncfix.codemods import RULES
from asyncfix.report.ruledoc import rule_doc

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rules"


def expected() -> dict[Path, str]:
    files = {DOCS / f"{rule.code}.md": rule_doc(rule.code) for rule in RULES}
    index = ["# Rules", "", "| code | name | fix | summary |", "|---|---|---|---|"]
    for rule in RULES:
        index.append(
            f"| [{rule.code}]({rule.code}.md) | {rule.name} | {rule.fix_safety.value} | "
            f"{rule.summary} |"
        )
    files[DOCS / "README.md"] = "\n".join(index) + "\n"
    return files


def main() -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    for path, text in expected().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(DOCS.parent.parent)}")


if __name__ == "__main__":
    main()
