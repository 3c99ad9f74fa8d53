"""AF103 across modules: the override in one module, the base and its callers in another --
and the finding follows the base when it changes (the results cache depends on it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncfix import engine
from asyncfix.config import Config

BASE = """\
class Device:
    def update(self) -> None:
        ...

    def refresh(self) -> None:
        self.update()


class Group(Device):
    def poll(self) -> None:
        self.update()
"""
LIGHT = """\
from app.base import Group


class Light(Group):
    async def update(self) -> None:
        ...
"""


def _run(root: Path) -> list[str]:
    config = Config(path=root / "pyproject.toml", root=root, select=["AF103"])
    result = engine.run([root], config, "check")
    assert not result.has_errors()
    return [f"{Path(file.path).name}:{f.span.line} {f.message}" for file, f in result.findings]


def test_an_override_in_another_module_names_the_inherited_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'fixture'\n")
    package = tmp_path / "app"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text(BASE)
    (package / "light.py").write_text(LIGHT)
    monkeypatch.chdir(tmp_path)
    (found,) = _run(tmp_path)
    assert found.startswith("light.py:5 `Light.update` is an `async def` overriding the sync")
    assert "`Group.poll` and `Device.refresh` call `self.update()` without awaiting it" in found
    # the base's callers await it now: nothing inherited calls it the old way
    (package / "base.py").write_text(
        BASE.replace("        self.update()", "        print(self.update())")
    )
    assert _run(tmp_path) == []
