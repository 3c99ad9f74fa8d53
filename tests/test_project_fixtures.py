"""Project fixtures: a folder under ``tests/fixtures/<CODE>/`` is a small project.

In it, ``<module>.before.py`` is materialised as ``<module>.py`` and must read
``<module>.after.py`` after ``asyncfix --write --unsafe-fixes``; every other ``.py`` file is
context and must not change. A second run changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncfix import engine
from asyncfix.config import Config
from asyncfix.engine import project as project_module

FIXTURES = Path(__file__).parent / "fixtures"
PROJECTS = sorted(p for p in FIXTURES.glob("*/*") if p.is_dir())


def _materialise(project: Path, into: Path) -> dict[Path, str]:
    """Copy the project, returning each module's expected text."""
    expected: dict[Path, str] = {}
    for source in sorted(project.rglob("*.py")):
        relative = source.relative_to(project)
        name = source.name
        if name.endswith(".after.py"):
            continue
        text = source.read_text(encoding="utf-8")
        if name.endswith(".before.py"):
            target = into / relative.with_name(name.replace(".before.py", ".py"))
            after = source.with_name(name.replace(".before.py", ".after.py"))
            expected[target] = after.read_text(encoding="utf-8")
        else:
            target = into / relative
            expected[target] = text
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return expected


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_project_fixture(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = project.parent.name
    expected = _materialise(project, tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'fixture'\n")
    assert any(p.read_text() != text for p, text in expected.items()), "no module changes"
    monkeypatch.chdir(tmp_path)
    config = Config(root=tmp_path, select=[code], unsafe_fixes=True)
    first = engine.run([tmp_path], config, "write")
    assert not first.has_errors(), [(f.display, f.error, f.internal_error) for f in first.files]
    assert any(f.code == code for _, f in first.findings)
    for path, text in expected.items():
        assert path.read_text(encoding="utf-8") == text, path.relative_to(tmp_path)
    second = engine.run(
        [tmp_path], Config(root=tmp_path, select=[code], unsafe_fixes=True), "write"
    )
    assert not any(f.changed for f in second.files)


def test_named_file_still_sees_the_rest_of_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = FIXTURES / "AF101" / "imported_coroutine"
    _materialise(project, tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'fixture'\n")
    monkeypatch.chdir(tmp_path)
    handlers = tmp_path / "app" / "handlers.py"
    run = engine.run([handlers], Config(root=tmp_path, select=["AF101"]), "check")
    assert len(run.findings) == 4


def test_index_cache_is_reused_and_survives_corruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _materialise(FIXTURES / "AF101" / "imported_coroutine", tmp_path)
    monkeypatch.chdir(tmp_path)
    config = Config(path=tmp_path / "pyproject.toml", root=tmp_path, select=["AF101"])
    first = engine.build_index([], config, 1)
    cache = tmp_path / engine.INDEX_CACHE
    assert (cache / ".gitignore").read_text().endswith("*\n")
    calls: list[object] = []
    real = project_module._index_one
    monkeypatch.setattr(project_module, "_index_one", lambda item: calls.append(item) or real(item))
    second = engine.build_index([], config, 1)
    assert calls == []  # everything came from the cache
    assert set(second.modules) == set(first.modules) == {"app", "app.client", "app.handlers"}
    (index_file,) = cache.glob("index-*.json")
    assert len(list(cache.glob("names-*.json"))) == 1
    facts_files = sorted(cache.glob("facts-*.json"))
    assert 1 <= len(facts_files) <= 3  # the files that hold the three modules
    index_file.write_bytes(b"not a cache")
    third = engine.build_index([], config, 1)
    assert set(third.modules) == set(first.modules)
    assert len(calls) == 3  # rebuilt from the files, the broken cache ignored
    # the facts file broken (or rewritten by another run): a module's facts come from its
    # source again, the moment a rule asks for them
    for facts_file in facts_files:
        facts_file.write_bytes(b"not a cache either")
    fourth = engine.build_index([], config, 1)
    assert len(calls) == 3
    client = fourth.modules.find("app.client")
    expected = first.modules.find("app.client")
    assert client is not None and expected is not None
    assert client.functions == expected.functions


def test_without_a_project_marker_only_named_files_are_indexed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _materialise(FIXTURES / "AF101" / "imported_coroutine", tmp_path)
    monkeypatch.chdir(tmp_path)
    handlers = tmp_path / "app" / "handlers.py"
    index = engine.build_index([handlers], Config(root=tmp_path), 1)
    assert set(index.modules) == {"app.handlers"}


def test_needles_never_hide_a_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fixture and example module, analysed as part of a project (index and all), finds
    exactly what it finds with the rules' text needles switched off."""
    from asyncfix.codemods import RULES
    from asyncfix.codemods.base import Project, Rule

    root = Path(__file__).parent.parent
    sources = sorted((root / "tests" / "fixtures").rglob("*.py"))
    sources += sorted((root / "examples").rglob("*.py"))
    copies = []
    for index, source in enumerate(sources):
        copy = tmp_path / f"m{index}.py"
        copy.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
        copies.append(copy)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.chdir(tmp_path)
    project_index = engine.build_index(copies, Config(root=tmp_path), 1)

    def findings(path: Path, prefilter: bool) -> list[tuple[int, str]]:
        module = project_index.module_of(str(path))
        assert module is not None
        project = Project(project_index, module)
        if not prefilter:
            monkeypatch.setattr(Rule, "may_apply", classmethod(lambda cls, text: True))
        try:
            analysis = engine.analyse(path.read_text(), RULES, (3, 10), project)
        finally:
            monkeypatch.undo()
            monkeypatch.chdir(tmp_path)
        return [(analysis.span(hit).line, hit.rule.code) for hit in analysis.hits]

    for copy, source in zip(copies, sources, strict=True):
        assert findings(copy, True) == findings(copy, False), source


def test_index_knows_async_context_managers_across_modules(tmp_path: Path) -> None:
    from asyncfix.index import ProjectIndex, facts_from_source

    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    sources = {
        "base.py": "class Resource:\n    async def __aenter__(self): ...\n"
        "    async def __aexit__(self, *exc): ...\n",
        "session.py": "from .base import Resource\n\n\nclass Session(Resource):\n    pass\n\n\n"
        "class Plain:\n    def __enter__(self): ...\n    def __exit__(self, *exc): ...\n",
    }
    facts = []
    for name, text in sources.items():
        (package / name).write_text(text)
        fact = facts_from_source(text, package / name)
        assert fact is not None
        facts.append(fact)
    index = ProjectIndex(facts)
    session, plain = index.class_("pkg.session.Session"), index.class_("pkg.session.Plain")
    assert session is not None and plain is not None
    assert index.is_async_context_manager(session)
    assert not index.is_async_context_manager(plain)
