"""The results cache: what is re-analysed after an edit, and that nothing else changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncfix import engine
from asyncfix.cache import FORMAT
from asyncfix.config import Config
from asyncfix.engine import process as process_module
from asyncfix.model import RunResult

CLIENT = """\
import asyncio


async def fetch(url):
    await asyncio.sleep(0)
    return url


def helper():
    return 1
"""

HANDLERS = """\
from app import client


async def handle(url):
    client.fetch(url)  # AF101: never awaited
    return client.helper()
"""

OTHER = """\
import time


async def slow():
    time.sleep(1)  # AF201
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "client.py").write_text(CLIENT)
    (app / "handlers.py").write_text(HANDLERS)
    (app / "other.py").write_text(OTHER)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(root: Path, mode: str = "check", **options: object) -> RunResult:
    config = Config(path=root / "pyproject.toml", root=root, unsafe_fixes=True)
    return engine.run([root], config, mode, **options)  # type: ignore[arg-type]


def _analysed(run: RunResult) -> set[str]:
    return {Path(f.path).name for f in run.files if not f.cached}


def _shown(run: RunResult) -> list[tuple[str, str, int, str]]:
    return [(f.display, x.code, x.span.line, x.message) for f, x in run.findings]


def _without_snapshot(root: Path) -> None:
    """The last run's snapshot removed: the next run reads the index and results caches."""
    for path in (root / engine.INDEX_CACHE).glob("run-*.json"):
        path.unlink()


def test_warm_run_analyses_nothing_and_reports_the_same(project: Path) -> None:
    cold = _run(project)
    assert _analysed(cold) == {"__init__.py", "client.py", "handlers.py", "other.py"}
    warm = _run(project)  # from the snapshot
    assert _analysed(warm) == set()
    assert _shown(warm) == _shown(cold)
    assert {code for _, code, _, _ in _shown(cold)} == {"AF101", "AF201"}
    _without_snapshot(project)
    from_results = _run(project)  # from the index and results caches
    assert _analysed(from_results) == set()
    assert _shown(from_results) == _shown(cold)


def test_the_snapshot_holds_only_while_nothing_it_came_from_changed(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm run of a whole project takes the last run's results as they are (no index,
    no results cache read) while its files, their stamps and the settings are the same;
    a file touched, added or removed, or other settings, and it goes the usual way."""
    from asyncfix.engine import project as project_module

    builds: list[int] = []
    real = project_module.build_index

    def counting(*args: object, **kwargs: object) -> object:
        builds.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    from asyncfix.engine import runner as runner_module

    monkeypatch.setattr(runner_module, "build_index", counting)
    cold = _run(project)
    assert len(builds) == 1
    (snapshot,) = (project / engine.INDEX_CACHE).glob("run-*.json")
    assert _shown(_run(project)) == _shown(cold)
    assert len(builds) == 1  # taken from the snapshot
    other = project / "app" / "other.py"
    other.touch()  # the same text, a new time: the usual way (the results cache has it)
    assert _analysed(_run(project)) == set() and len(builds) == 2
    assert _shown(_run(project)) == _shown(cold) and len(builds) == 2
    (project / "app" / "new.py").write_text("x = 1\n")  # a file more
    assert _analysed(_run(project)) == {"new.py"} and len(builds) == 3
    (project / "app" / "new.py").unlink()  # a file less
    assert _analysed(_run(project)) == set() and len(builds) == 4
    only = _run(project, select=["AF201"])  # other settings (no rule needs the index)
    assert {code for _, code, _, _ in _shown(only)} == {"AF201"}
    assert _analysed(only) == {"__init__.py", "client.py", "handlers.py", "other.py"}
    assert _shown(_run(project)) == _shown(cold) and len(builds) == 5  # the last was AF201's
    assert _shown(_run(project)) == _shown(cold) and len(builds) == 5
    snapshot.write_text('{"format": 1}')  # not one asyncfix wrote: ignored
    assert _shown(_run(project)) == _shown(cold) and len(builds) == 6
    written = _run(project, "write")  # a write keeps none, and reads none
    assert any(f.written for f in written.files) and len(builds) == 7
    assert "AF201" not in {code for _, code, _, _ in _shown(_run(project))}
    # some files of a project: the index reads the others too, which no snapshot stamps
    config = Config(path=project / "pyproject.toml", root=project, unsafe_fixes=True)
    for _ in range(2):
        engine.run([project / "app" / "handlers.py"], config, "check")
    assert len(builds) == 10


def test_a_coroutine_made_sync_rechecks_its_callers_only(project: Path) -> None:
    _run(project)
    client = project / "app" / "client.py"
    client.write_text(CLIENT.replace("async def fetch", "def fetch").replace("    await", "   "))
    after = _run(project)
    assert _analysed(after) == {"client.py", "handlers.py"}
    assert "AF101" not in {code for _, code, _, _ in _shown(after)}
    assert _shown(after) == _shown(_run(project, use_cache=False))


def test_a_comment_edited_rechecks_that_file_only(project: Path) -> None:
    _run(project)
    (depends,) = (project / engine.INDEX_CACHE).glob("depends-*.json")
    lists = depends.read_bytes()
    client = project / "app" / "client.py"
    client.write_text(CLIENT + "# a comment\n")
    assert _analysed(_run(project)) == {"client.py"}
    assert depends.read_bytes() == lists  # the same dependencies: the file is not written
    # which it still holds, under the new content: facts changed elsewhere, nothing to redo
    (project / "app" / "other.py").write_text(OTHER + "\n\ndef more():\n    pass\n")
    assert _analysed(_run(project)) == {"other.py"}


def test_a_new_module_rechecks_the_files_that_import_it(project: Path) -> None:
    (project / "app" / "uses.py").write_text(
        "from app.extra import go\n\n\nasync def run():\n    go()\n"
    )
    first = _run(project)
    assert "AF101" not in {code for f, code, _, _ in _shown(first) if f.endswith("uses.py")}
    (project / "app" / "extra.py").write_text("async def go():\n    pass\n")
    second = _run(project)
    assert _analysed(second) == {"extra.py", "uses.py"}
    assert ("app/uses.py", "AF101") in {(f, code) for f, code, _, _ in _shown(second)}


def test_dependencies_are_read_only_when_some_facts_changed(project: Path) -> None:
    """While no module's facts change, an entry needs its content and settings alone (the
    index's state is the one it was checked against): the depends file is not read. When
    some facts change, each entry is checked against its dependencies once, and stamped
    with the new state."""
    folder = project / engine.INDEX_CACHE
    cold = _run(project)
    (depends,) = folder.glob("depends-*.json")
    depends.unlink()
    _without_snapshot(project)  # the results cache itself
    assert _analysed(_run(project)) == set()  # the same state: no list needed
    assert not depends.exists()  # nothing new to save
    (project / "app" / "client.py").write_text(CLIENT + "\n\nasync def more():\n    pass\n")
    # the lists are gone: every entry with dependencies is analysed again (__init__.py has none)
    assert _analysed(_run(project)) == {"client.py", "handlers.py", "other.py"}
    (project / "app" / "client.py").write_text(CLIENT + "\n\nasync def other():\n    pass\n")
    # checked against its dependencies: other.py does not import client.py
    assert _analysed(_run(project)) == {"client.py", "handlers.py"}
    depends.unlink()
    _without_snapshot(project)
    assert _analysed(_run(project)) == set()  # stamped with the state it was checked in
    assert _shown(_run(project, use_cache=False)) == _shown(cold)


PASSED_OVER = {
    # `c.refresh_state()` is ruled out by name: no project coroutine is called so
    "AF101": (
        "async def main(c: Client):\n    c.refresh_state()\n",
        "    async def refresh_state(self):\n        return 1\n",
    ),
    # `c.load_config()` is ruled out by name: no project function that blocks is called so
    "AF205": (
        "async def main(c: Client):\n    c.load_config()\n",
        "    def load_config(self):\n        time.sleep(1)\n",
    ),
    # `c = Client()` is ruled out by name: no resource class is called `Client`
    "AF501": (
        "async def main():\n    c = Client()\n    await c.fetch()\n",
        "    async def fetch(self):\n        return 1\n\n"
        "    async def aclose(self):\n        await asyncio.sleep(0)\n\n"
        "    async def __aenter__(self):\n        return self\n\n"
        "    async def __aexit__(self, *exc):\n        await self.aclose()\n",
    ),
}


@pytest.mark.parametrize("code", sorted(PASSED_OVER))
def test_a_name_a_pre_filter_passed_over_rechecks_its_callers_only(
    project: Path, code: str
) -> None:
    """The method is added to a base class, in a module the caller does not import: only
    the project-wide name sets connect them."""
    use, base = PASSED_OVER[code]
    app = project / "app"
    (app / "base.py").write_text("import asyncio\nimport time\n\n\nclass Base:\n    pass\n")
    (app / "api.py").write_text("from app.base import Base\n\n\nclass Client(Base):\n    pass\n")
    (app / "use.py").write_text(f"from app.api import Client\n\n\n{use}")
    first = _run(project, select=[code])
    assert not any(f.endswith("use.py") for f, _, _, _ in _shown(first))
    (app / "base.py").write_text(f"import asyncio\nimport time\n\n\nclass Base:\n{base}")
    second = _run(project, select=[code])
    # api.py imports base.py; use.py only calls a name that is now a coroutine's or a
    # resource class's; the other files call none
    assert _analysed(second) == {"base.py", "api.py", "use.py"}
    assert ("app/use.py", code) in {(f, c) for f, c, _, _ in _shown(second)}
    assert _shown(second) == _shown(_run(project, select=[code], use_cache=False))


def test_settings_are_part_of_the_key(project: Path) -> None:
    _run(project)
    config = Config(path=project / "pyproject.toml", root=project, unsafe_fixes=True)
    only = engine.run([project], config, "check", select=["AF201"])
    assert _analysed(only) == {"__init__.py", "client.py", "handlers.py", "other.py"}
    assert {code for _, code, _, _ in _shown(only)} == {"AF201"}


def test_no_cache_reads_and_writes_nothing(project: Path) -> None:
    run = _run(project, use_cache=False)
    assert len(_analysed(run)) == 4
    assert not list((project / engine.INDEX_CACHE).glob("results-*"))


def test_diff_and_write_from_the_cache(project: Path) -> None:
    cold = _run(project, "diff")
    warm = _run(project, "diff")
    assert _analysed(warm) == set()
    assert [f.fixed for f in warm.files] == [f.fixed for f in cold.files]
    written = _run(project, "write")
    assert _analysed(written) == set()
    assert any(f.written for f in written.files)
    text = (project / "app" / "handlers.py").read_text()
    assert "await client.fetch(url)" in text
    # the same settings again: only the files whose text the write changed
    assert _analysed(_run(project, "diff")) == {"handlers.py", "other.py"}


def test_a_corrupt_or_foreign_cache_is_discarded(project: Path) -> None:
    cold = _run(project)
    (stored,) = (project / engine.INDEX_CACHE).glob("results-*.json")
    assert stored.name == f"{FORMAT}.json"
    stored.write_bytes(b"\x80\x04garbage")
    _without_snapshot(project)
    again = _run(project)
    assert len(_analysed(again)) == 4
    assert _shown(again) == _shown(cold)
    foreign = stored.with_name("results-0.0.0-0000000000000000.pickle")
    foreign.write_bytes(b"anything")
    (project / "app" / "other.py").write_text(OTHER + "# edited\n")
    _run(project)
    assert not foreign.exists()  # another version's cache is removed when the cache is saved


@pytest.mark.parametrize("mode", ["check", "diff"])
def test_jobs_and_cache_do_not_change_results(
    project: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # enough files for the process pool to be used
    for number in range(40):
        (project / "app" / f"extra_{number}.py").write_text(OTHER + HANDLERS)
    monkeypatch.setattr(process_module, "POOL_THRESHOLD", 4)
    one = _run(project, mode, jobs=1, use_cache=False)
    two = _run(project, mode, jobs=2, use_cache=False)
    cold = _run(project, mode, jobs=2)
    warm = _run(project, mode, jobs=1)
    assert _analysed(warm) == set()
    expected = (_shown(one), [f.fixed for f in one.files])
    for other in (two, cold, warm):
        assert (_shown(other), [f.fixed for f in other.files]) == expected


def test_facts_made_in_another_process_do_not_look_changed(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cold run indexes in a process pool; a later edit re-indexes one file in the main
    process: a comment added must still re-check that file alone."""
    monkeypatch.setattr(process_module, "POOL_THRESHOLD", 1)
    _run(project, jobs=2)
    (project / "app" / "client.py").write_text(CLIENT + "# a comment\n")
    assert _analysed(_run(project, jobs=1)) == {"client.py"}


class _Payload:
    """Unpickling this runs ``open(marker, "w")``: what a crafted cache would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def test_a_crafted_cache_never_runs_code(project: Path, tmp_path: Path) -> None:
    """A repository may ship its own `.asyncfix_cache/` (the bot runs on repositories it does
    not own): a pickle under every name the caches use is never loaded, let alone run, and a
    JSON cache whose entries or stored results are not what asyncfix writes is discarded."""
    import pickle

    cold = _run(project)
    folder = project / engine.INDEX_CACHE
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))
    for path in folder.iterdir():
        if path.suffix == ".json":
            path.write_bytes(payload)
            path.with_suffix(".pickle").write_bytes(payload)
            path.with_suffix(".marshal").write_bytes(payload)
    again = _run(project)
    assert not marker.exists()
    assert _shown(again) == _shown(cold)
    assert len(_analysed(again)) == 4
    # well-formed JSON, but a stored result that is not one: a miss, never trusted
    (stored,) = folder.glob("results-*.json")
    data = json.loads(stored.read_text())
    for entry in data["entries"].values():
        if entry[5] is not None:
            entry[5]["findings"] = [{"code": ["not", "a", "string"]}]
    stored.write_text(json.dumps(data))
    tampered = _run(project)
    assert _shown(tampered) == _shown(cold)
    assert not marker.exists()
    # dependencies that are no module names, or name no key: misses too, once the facts
    # changed (the entries must be checked against their dependencies); a file that depends
    # on nothing needs no list
    _run(project)  # makes again the entries dropped with the tampered result
    assert _analysed(_run(project)) == set()
    (depends,) = folder.glob("depends-*.json")
    data = json.loads(depends.read_text())
    for number, entry in enumerate(data["entries"].values()):
        entry[1] = [[1], "x", -1, 10**6, True][number % 5]
    depends.write_text(json.dumps(data))
    (project / "app" / "client.py").write_text(CLIENT + "\n\nasync def more():\n    pass\n")
    again = _run(project)
    assert _analysed(again) == {"client.py", "handlers.py", "other.py"}
    assert _shown(again) == _shown(cold)
    assert not marker.exists()


LOADER = """\
class Loader:
    async def config(self, source):
        if not self.loaded:
            self.data = await source.read()
            self.loaded = True
        return self.data
"""


def test_a_subclass_added_elsewhere_rechecks_a_class_that_would_get_an_init(
    project: Path,
) -> None:
    """A new `__init__` is offered only for a class nothing subclasses: a subclass added in
    another module (one the class's module never imports) re-checks that file."""
    (project / "app" / "loader.py").write_text(LOADER)
    cold = _run(project, "diff")
    loader = next(f for f in cold.files if f.display.endswith("loader.py"))
    assert loader.fixed is not None and "def __init__" in loader.fixed
    (project / "app" / "files.py").write_text(
        "from app.loader import Loader\n\n\nclass FileLoader(Loader):\n"
        "    def __init__(self):\n        self.loaded = False\n"
    )
    warm = _run(project, "diff")
    assert "loader.py" in _analysed(warm)
    loader = next(f for f in warm.files if f.display.endswith("loader.py"))
    assert not loader.changed
    assert "has subclasses" in loader.findings[0].message


def test_dependencies_worked_out_at_once_are_what_each_asked_alone_gives(project: Path) -> None:
    config = Config(path=project / "pyproject.toml", root=project)
    keys = [
        "app.client",  # a module
        "app.client.fetch",  # a dotted name that is no module
        "app.missing",
        "coroutine:fetch",  # a name of the project-wide sets, there or not
        "coroutine:absent",
        "blocking:helper",
        "resource:Session",
        "subclassed:Base",
        "unknown:kind",
    ]
    alone = engine.build_index([], config, 1)
    expected = [alone.dependency_digest(key) for key in keys]
    assert expected[0] and expected[1:3] == ["", ""] and expected[3] == "named"
    primed = engine.build_index([], config, 1)
    primed.prime_dependencies(set(keys))
    assert primed.dependency_digests(keys) == expected
    assert engine.build_index([], config, 1).dependency_digests(keys) == expected


def test_the_depends_file_keeps_every_list_when_a_few_are_added(tmp_path: Path) -> None:
    """A few new entries add their keys at the end of the table (the other entries keep
    their positions); many new ones make the table again. Either way every entry's list
    reads back as it was written, checked against the digests of its dependencies."""
    from asyncfix.cache import ResultCache
    from asyncfix.model import FileResult

    digests = {f"mod{n}": f"d{n}" for n in range(20)}

    def digest_of(keys: list[str]) -> list[str]:
        return [digests.get(key, "") for key in keys]

    def lists(count: int, shift: int) -> dict[str, list[str]]:
        return {
            f"/p/f{n}.py": [f"mod{(n + shift + k) % 20}" for k in range(3)] for n in range(count)
        }

    def cache(state: str) -> ResultCache:
        return ResultCache(tmp_path, state, digest_of)

    first = cache("s1")
    written = lists(12, 0)
    for path, keys in written.items():
        first.put(path, "c", "s", keys, FileResult(path=path, display=path))
    first.save()
    second = cache("s1")
    written["/p/f3.py"] = ["mod19", "new.key", "mod0"]  # one entry replaced, a new key
    written["/p/extra.py"] = ["another.key"]
    for path in ("/p/f3.py", "/p/extra.py"):
        second.put(path, "c", "s", written[path], FileResult(path=path, display=path))
    second.save()
    (depends,) = tmp_path.glob("depends-*.json")
    table = json.loads(depends.read_text())["keys"]
    assert table[:3] == ["mod0", "mod1", "mod2"] and table[-2:] == ["new.key", "another.key"]
    # another state: every entry is checked against its own list
    third = cache("s2")
    assert all(third.get(path, "c", "s") is not None for path in written)
    digests["mod19"] = "changed"
    fourth = cache("s3")
    missed = {path for path in written if fourth.get(path, "c", "s") is None}
    assert missed == {path for path, keys in written.items() if "mod19" in keys}
    # a table naming a key twice (not what asyncfix writes) is made again on the next save
    data = json.loads(depends.read_text())
    data["keys"].append(data["keys"][0])
    depends.write_text(json.dumps(data))
    fifth = cache("s4")
    fifth.put("/p/f0.py", "c2", "s", ["mod5"], FileResult(path="/p/f0.py", display="/p/f0.py"))
    fifth.save()
    keys = json.loads(depends.read_text())["keys"]
    assert len(keys) == len(set(keys))
    sixth = cache("s5")
    assert sixth.get("/p/f0.py", "c2", "s") is not None
    assert sixth.get("/p/f1.py", "c", "s") is not None


EDITS = [
    # a comment: no facts change
    ("app/client.py", CLIENT + "# a comment\n"),
    # a coroutine added: the client's facts and the coroutine names change
    ("app/client.py", CLIENT + "\n\nasync def refresh():\n    pass\n"),
    # a helper that now blocks: the blocking sets change, handlers calls it
    ("app/client.py", CLIENT.replace("    return 1", "    import time\n    time.sleep(1)")),
    # a new module others do not import, then one that imports the client
    ("app/extra.py", "def nothing():\n    return 1\n"),
    ("app/more.py", "from app import client\n\n\nasync def go():\n    client.helper()\n"),
    # a module removed
    ("app/extra.py", None),
    # the coroutine made sync again
    ("app/client.py", CLIENT.replace("async def fetch", "def fetch").replace("    await", "   ")),
]


def test_what_changed_since_the_last_run_decides_as_the_digests_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an edit, entries checked against the previous index are decided by the keys
    that changed since (``ProjectIndex.changed_since``) without working out every digest:
    the same files are analysed again, with the same findings, as when every entry's
    dependencies are compared digest by digest."""
    from asyncfix import cache as cache_module
    from asyncfix.engine import runner as runner_module

    roots = []
    for name in ("by_keys", "by_digests"):
        root = tmp_path / name
        (root / "app").mkdir(parents=True)
        (root / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
        for file, text in (("__init__.py", ""), ("client.py", CLIENT), ("handlers.py", HANDLERS)):
            (root / "app" / file).write_text(text)
        (root / "app" / "other.py").write_text(OTHER)
        roots.append(root)
    real_cache = cache_module.ResultCache
    real_clear = cache_module._DependsFile.clear_of
    decided: list[str] = []

    def by_digests(*args: object, **kwargs: object) -> object:
        return real_cache(*args[:4])  # type: ignore[arg-type]

    def clear_of(self: object, path: str, *args: object) -> object:
        decided.append(Path(path).name)
        return real_clear(self, path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(cache_module._DependsFile, "clear_of", clear_of)

    def run(root: Path, by_keys: bool) -> tuple[set[str], list[tuple[str, str, int, str]]]:
        with monkeypatch.context() as patch:
            patch.chdir(root)
            if not by_keys:
                patch.setattr(runner_module, "ResultCache", by_digests)
            result = _run(root)
        return _analysed(result), [(Path(f).name, c, n, m) for f, c, n, m in _shown(result)]

    for root, by_keys in zip(roots, (True, False), strict=True):
        run(root, by_keys)
    for file, text in EDITS:
        for root in roots:
            target = root / file
            if text is None:
                target.unlink()
            else:
                target.write_text(text)
        decided.clear()
        assert run(roots[0], True) == run(roots[1], False), file
        if file == "app/client.py" and "comment" not in text:
            assert "other.py" in decided  # kept without a digest worked out
