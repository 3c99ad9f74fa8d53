"""The project-wide name sets: what blocks is what a function reaches, whatever is asked
first; each module's part is kept between runs and made again only when it could change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncfix import engine
from asyncfix.config import Config
from asyncfix.engine import names as names_module
from asyncfix.index import ProjectIndex

# f and g call each other; g also calls h, which sleeps; k calls f
A = """\
from app import b


def f():
    b.g()


def k():
    f()


def quiet():
    return 1
"""

B = """\
import time

from app import a


def g():
    a.f()
    h()


def h():
    time.sleep(1)
"""

C = """\
from app import a


class Session:
    async def close(self):
        self.closed = True

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


def uses():
    a.quiet()
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "a.py").write_text(A)
    (app / "b.py").write_text(B)
    (app / "c.py").write_text(C)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _index(root: Path) -> ProjectIndex:
    return engine.build_index([], Config(path=root / "pyproject.toml", root=root), 1)


def _chains(index: ProjectIndex, order: list[str]) -> dict[str, tuple[str, ...] | None]:
    found = {}
    for name in order:
        fact = index.function(name)
        assert fact is not None
        found[name] = index.blocking_chain(fact)
    return found


def test_what_blocks_does_not_depend_on_what_is_asked_first(project: Path) -> None:
    """A call cycle (f -> g -> f) once left the function asked second without a chain."""
    order = ["app.a.f", "app.b.g", "app.a.k", "app.b.h", "app.a.quiet"]
    forward = _chains(_index(project), order)
    backward = _chains(_index(project), order[::-1])
    assert forward == backward
    assert forward == {
        "app.a.f": ("f", "g", "h", "time.sleep"),
        "app.b.g": ("g", "h", "time.sleep"),
        "app.a.k": ("k", "f", "g", "h", "time.sleep"),
        "app.b.h": ("h", "time.sleep"),
        "app.a.quiet": None,
    }
    index = _index(project)
    assert {"f", "g", "h", "k"} <= index.blocking_names()
    assert "quiet" not in index.blocking_names()
    assert index.resource_names() == {"Session"}


def _names_afresh(root: Path) -> tuple[list[str], ...]:
    for path in (root / engine.INDEX_CACHE).glob("*"):
        path.unlink()
    return _index(root).names()


def _count_parts_made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the modules whose part is made from now on, as they are made."""
    made: list[str] = []
    real = ProjectIndex.contribution

    def counting(self: ProjectIndex, module: object) -> object:
        made.append(module.name)  # type: ignore[attr-defined]
        return real(self, module)  # type: ignore[arg-type]

    monkeypatch.setattr(ProjectIndex, "contribution", counting)
    return made


def test_each_module_part_is_made_again_only_when_it_could_change(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _index(project)
    made = _count_parts_made(monkeypatch)
    # h no longer blocks: b changes, and a, which looked b's functions up, is made again
    (project / "app" / "b.py").write_text(B.replace("time.sleep(1)", "return 1"))
    again = _index(project)
    assert sorted(made) == ["app.a", "app.b"]
    assert not {"f", "g", "h", "k"} & again.blocking_names()
    assert again.names() == _names_afresh(project)
    # a new module: made, and those that looked its name up before it was there
    made.clear()
    _index(project)
    made.clear()
    (project / "app" / "d.py").write_text("import time\n\n\ndef slow():\n    time.sleep(1)\n")
    assert "slow" in _index(project).blocking_names()
    assert made == ["app.d"]
    # quiet now blocks: c, which calls it, is made again too and its caller blocks
    made.clear()
    (project / "app" / "a.py").write_text(A.replace("return 1", "time.sleep(1)") + "import time\n")
    index = _index(project)
    assert sorted(made) == ["app.a", "app.b", "app.c"]
    assert {"quiet", "uses"} <= index.blocking_names()
    assert index.names() == _names_afresh(project)


def test_a_names_file_that_is_not_one_is_made_again(project: Path) -> None:
    expected = _index(project).names()
    (names,) = (project / engine.INDEX_CACHE).glob("names-*.json")
    data = json.loads(names.read_text())
    # a list of calls that is no list of positions of pairs of names, or of modules looked
    # up that is no list (a well-formed file is what asyncfix wrote: its names are taken as
    # they are, as the index cache's)
    for where, bad in (
        (5, [0]),
        (5, "x"),
        (5, [-1, 0]),
        (5, [10**6, 0]),
        (5, [1.5, 0]),
        (6, 7),
        (6, [[1]]),
        (6, [-3]),
    ):
        for item in data["modules"].values():
            item[where] = bad
        names.write_text(json.dumps(data))
        more = f"\n\ndef more_{where}_{abs(hash(repr(bad)))}():\n    pass\n"
        (project / "app" / "c.py").write_text(C + more)
        assert _index(project).names() == _names_afresh(project)
    assert expected[3] == _index(project).names()[3]


def test_names_hold_when_every_part_made_again_is_what_it_was(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A function that changes no set (it calls nothing, blocks nowhere) changes the
    module's facts, not its part: the sets hold, and the names file is not written again
    until enough such modules wait (their parts are made again meanwhile)."""
    expected = _index(project).names()
    (names,) = (project / engine.INDEX_CACHE).glob("names-*.json")
    written = names.read_bytes()
    made = _count_parts_made(monkeypatch)
    for number in range(2):
        made.clear()
        (project / "app" / "c.py").write_text(C + f"\n\ndef more_{number}():\n    return 1\n")
        assert _index(project).names() == expected
        assert names.read_bytes() == written  # nothing to write: the part is the same
        assert made == ["app.c"]  # and it is made again while the file has its old digest
    monkeypatch.setattr(names_module, "STALE", 0)
    (project / "app" / "c.py").write_text(C + "\n\ndef third():\n    return 3\n")
    assert _index(project).names() == expected
    assert names.read_bytes() != written  # the new digest written
    made.clear()
    assert _index(project).names() == expected
    assert made == []
    assert expected == _names_afresh(project)


def test_sets_another_run_found_for_other_parts_are_not_taken(project: Path) -> None:
    """The index cache's sets are taken as they are only when the names file says its
    parts give them (two runs at once may each write one of the files)."""
    expected = _index(project).names()
    (cached,) = (project / engine.INDEX_CACHE).glob("index-*.json")
    data = json.loads(cached.read_text())
    data["names"] = [["other"], [], [], [], []]  # well formed, and not what the parts give
    cached.write_text(json.dumps(data))
    (project / "app" / "c.py").write_text(C + "\n\ndef other():\n    return 2\n")
    assert _index(project).names() == expected
