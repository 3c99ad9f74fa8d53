"""All rules together, on every fixture and on the example service: fixes from different
rules in one file must verify together and reach a fixpoint."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from asyncfix.cli import main
from asyncfix.codemods import RULES
from tests.helpers import cli_runner, run_text

ROOT = Path(__file__).resolve().parent.parent
ALL = {rule.code for rule in RULES}
FIXTURES = sorted((ROOT / "tests" / "fixtures").rglob("*.py"))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fixture_with_every_rule_verifies(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    result = run_text(text, ALL)
    assert result.error is None
    assert result.internal_error is None
    if result.fixed is not None:
        again = run_text(result.fixed, ALL)
        assert again.fixed in (None, result.fixed)
        compile(result.fixed, str(path), "exec")


def test_example_service_is_fixed_completely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the home-automation service (examples/runtime is the runtime-evidence example)
    shutil.copytree(
        ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("runtime")
    )
    monkeypatch.chdir(tmp_path)
    first = cli_runner().invoke(main, ["--write", "--unsafe-fixes", "examples"])
    assert first.exit_code == 1, first.output  # report-only findings stay
    assert "Fixed 22 findings in 3 files; 7 remaining" in first.output
    second = cli_runner().invoke(main, ["examples"])
    assert second.exit_code == 1
    left = sorted(line.split(" ")[1] for line in second.stdout.splitlines()[:-1])
    # `__del__`, a `with open()` block to restructure, a deadlock to redesign,
    # a protocol callback to make sync
    assert left == ["AF102", "AF103", "AF203", "AF302", "AF405", "AF502", "AF503"]
    for path in (tmp_path / "examples").rglob("*.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")


def test_the_registry_names_every_rule_as_it_is() -> None:
    """The registry is a table (the rules load when first asked for): it names every rule
    class of the package, under its own code, and knows which ones need the index."""
    import importlib
    import inspect
    import pkgutil

    import asyncfix.codemods as package
    from asyncfix.codemods import CODES, NEEDS_INDEX, rule_by_code
    from asyncfix.codemods.base import Rule

    classes = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for _, value in inspect.getmembers(module, inspect.isclass):
            own = value.__module__ == module.__name__ and "code" in vars(value)
            if own and issubclass(value, Rule):
                classes.add(value)
    assert {rule_by_code(code) for code in CODES} == classes
    assert all(rule_by_code(code).code == code for code in CODES)
    needing = {code for code in CODES if rule_by_code(code).needs_index}
    assert needing == NEEDS_INDEX
    assert [rule.code for rule in RULES] == list(CODES)
