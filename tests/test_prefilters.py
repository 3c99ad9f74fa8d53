"""The rules' text needles (``Rule.needles``) spare most files the semantic model; they must
never hide a finding. Each case here is a small project whose findings depend on a shape a
needle has to see through (an alias, an import inside a function, a class named through its
module, a race through another method, type-parameter syntax), analysed with the needles on
and off. And ``index.parse_ast``: the stdlib tree of type-parameter syntax on older Pythons."""

from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

import pytest

from asyncfix import engine
from asyncfix.codemods import RULES
from asyncfix.codemods.base import Project, Rule
from asyncfix.config import Config
from asyncfix.index import parse_ast

CASES: dict[str, tuple[dict[str, str], dict[str, list[str]]]] = {
    "coroutine of a module imported inside the function": (
        {
            "app/api.py": """
                async def fetch():
                    return 1
            """,
            "app/use.py": """
                async def main():
                    from app import api

                    api.fetch()
            """,
        },
        {"app/use.py": ["AF101"]},
    ),
    "coroutine method of a class named through its module": (
        {
            "app/api.py": """
                class Client:
                    async def get(self):
                        return 1
            """,
            "app/use.py": """
                from app import api


                async def main():
                    client = api.Client()
                    client.get()
            """,
        },
        {"app/use.py": ["AF101"]},
    ),
    "self under another name, in a class the file never calls": (
        {
            "app/agent.py": """
                class Agent:
                    async def connect(this):
                        return 1

                    async def start(this):
                        this.connect()
            """,
        },
        {"app/agent.py": ["AF101"]},
    ),
    "receivers typed by a class-level annotation, a walrus and a sync caller": (
        {
            "app/api.py": """
                class Client:
                    async def get(self):
                        return 1
            """,
            "app/attribute.py": """
                from app.api import Client


                class Service:
                    client: "Client"

                    async def run(self):
                        self.client.get()
            """,
            "app/walrus.py": """
                from app.api import Client


                async def main():
                    if (c := Client()) is not None:
                        c.get()
            """,
            "app/sync.py": """
                from app.api import Client


                def sync():
                    other = Client()
                    other.get()
            """,
        },
        {"app/attribute.py": ["AF101"], "app/walrus.py": ["AF101"], "app/sync.py": ["AF102"]},
    ),
    "async def the module binds inside an if": (
        {
            "app/mod.py": """
                import sys

                if sys.version_info >= (3, 11):
                    async def fetch():
                        return 1
                else:
                    def fetch():
                        return 1


                async def helper():
                    async def fetch():
                        return 2
                    return await fetch()


                async def main():
                    fetch()
            """,
        },
        {"app/mod.py": []},
    ),
    "async def the module binds inside a try": (
        {
            "app/mod.py": """
                try:
                    async def fetch():
                        return 1
                finally:
                    pass


                async def main():
                    fetch()
            """,
        },
        {"app/mod.py": ["AF101"]},
    ),
    "coroutine methods of receivers typed by annotation and by attribute": (
        {
            "app/api.py": """
                class Client:
                    async def get(self):
                        return 1
            """,
            "app/annotated.py": """
                from app.api import Client


                async def main(client: "Client"):
                    client.get()
            """,
            "app/attribute.py": """
                from app import api


                class Service:
                    def __init__(self):
                        self.client = api.Client()

                    async def run(self):
                        self.client.get()
            """,
        },
        {"app/annotated.py": ["AF101"], "app/attribute.py": ["AF101"]},
    ),
    "library coroutine through a module imported under another name": (
        {
            "app/files.py": """
                async def clean(path):
                    from aiofiles import os as aos

                    aos.remove(path)
            """,
        },
        {"app/files.py": ["AF101"]},
    ),
    "async callback annotated through an alias": (
        {
            "app/hooks.py": """
                from collections.abc import Callable
                from typing import Awaitable as Aw


                class Hooks:
                    def __init__(self, on_stop: Callable[[], Aw[None]]) -> None:
                        self.on_stop = on_stop

                    async def stop(self):
                        self.on_stop()
            """,
        },
        {"app/hooks.py": ["AF101"]},
    ),
    "async callback stored on self": (
        {
            "app/hooks.py": """
                from collections.abc import Awaitable, Callable


                class Hooks:
                    def __init__(self, on_stop: Callable[[], Awaitable[None]]) -> None:
                        self.on_stop = on_stop

                    async def stop(self):
                        self.on_stop()
            """,
        },
        {"app/hooks.py": ["AF101"]},
    ),
    "CancelledError under another name": (
        {
            "app/loop.py": """
                import asyncio
                from asyncio import CancelledError as Stopped


                async def run(queue):
                    while True:
                        try:
                            await queue.get()
                        except Stopped:
                            print("stopped")
            """,
        },
        {"app/loop.py": ["AF305"]},
    ),
    "race through an awaited method": (
        {
            "app/cache.py": """
                import asyncio


                class Cache:
                    def __init__(self):
                        self.token = None

                    async def refresh(self):
                        await asyncio.sleep(0)
                        self.token = "new"

                    async def get(self):
                        if self.token is None:
                            await self.refresh()
                        return self.token
            """,
        },
        {"app/cache.py": ["AF402"]},
    ),
    "race on a module dictionary": (
        {
            "app/store.py": """
                CACHE = {}


                async def get(key, load):
                    if key not in CACHE:
                        CACHE[key] = await load(key)
                    return CACHE[key]
            """,
        },
        {"app/store.py": ["AF402"]},
    ),
    "update across an await of a global": (
        {
            "app/count.py": """
                TOTAL = 0


                async def add(source):
                    global TOTAL
                    TOTAL = TOTAL + await source()
            """,
        },
        {"app/count.py": ["AF403"]},
    ),
    "blocking calls under other names": (
        {
            "app/io.py": """
                from pathlib import Path as P
                from requests import get as fetch
                from time import sleep as pause


                async def work(url, folder: P):
                    fetch(url, timeout=5)
                    folder.read_text()
                    pause(1)
            """,
        },
        {"app/io.py": ["AF201", "AF202", "AF203"]},
    ),
    "blocking project helpers through a module, a base class and an instance": (
        {
            "app/helpers.py": """
                import json


                def load_config(path):
                    with open(path) as handle:
                        return json.load(handle)


                class Store:
                    def read(self, path):
                        return load_config(path)
            """,
            "app/by_self.py": """
                from app import helpers


                class Base(helpers.Store):
                    pass


                class Thing(Base):
                    async def get(this, path):
                        return this.read(path)
            """,
            "app/by_instance.py": """
                from app import helpers


                async def main(path):
                    store = helpers.Store()
                    store.read(path)
            """,
            "app/by_module.py": """
                async def main(path):
                    from app import helpers

                    helpers.load_config(path)
            """,
        },
        {
            "app/by_self.py": ["AF205"],
            "app/by_instance.py": ["AF205"],
            "app/by_module.py": ["AF205"],
        },
    ),
    "locks made under other names": (
        {
            "app/locks.py": """
                import asyncio
                from asyncio import Lock as AsyncLock
                from threading import RLock as ThreadLock


                class Store:
                    def __init__(self):
                        self._lock = AsyncLock()
                        self._guard = ThreadLock()

                    async def save(self):
                        async with self._lock:
                            await self.flush()

                    async def flush(self):
                        async with self._lock:
                            await asyncio.sleep(0)

                    async def read(self):
                        with self._guard:
                            await asyncio.sleep(0)
            """,
        },
        {"app/locks.py": ["AF405", "AF406"]},
    ),
    "loop-bound object under another name": (
        {
            "app/session.py": """
                from aiohttp import ClientSession as Session

                SESSION = Session()
            """,
        },
        {"app/session.py": ["AF502"]},
    ),
    "type-parameter syntax (Python 3.12)": (
        {
            "app/generic.py": """
                import time

                type Pair[T] = tuple[T, T]


                class Box[T]:
                    async def wait(self) -> None:
                        time.sleep(1)


                def first[T](pair: Pair[T]) -> T:
                    return pair[0]
            """,
        },
        {"app/generic.py": ["AF201"]},
    ),
}


def _findings(path: Path, project: Project, prefilter: bool) -> list[tuple[int, str]]:
    text = path.read_text(encoding="utf-8")
    if prefilter:
        analysis = engine.analyse(text, RULES, (3, 10), project)
    else:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Rule, "may_apply", classmethod(lambda cls, text: True))
            analysis = engine.analyse(text, RULES, (3, 10), project)
    return [(analysis.span(hit).line, hit.rule.code) for hit in analysis.hits]


@pytest.mark.parametrize("case", sorted(CASES))
def test_needles_see_through(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files, expected = CASES[case]
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    paths = [tmp_path / "app" / "__init__.py"]
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        paths.append(path)
    monkeypatch.chdir(tmp_path)
    index = engine.build_index(paths, Config(root=tmp_path), 1)
    for name, codes in expected.items():
        path = tmp_path / name
        module = index.module_of(str(path))
        assert module is not None
        project = Project(index, module)
        unfiltered = _findings(path, project, prefilter=False)
        assert sorted({code for _, code in unfiltered}) == codes  # the case is what it says
        assert _findings(path, project, prefilter=True) == unfiltered


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="ast parses PEP 695 itself")
def test_parse_ast_takes_type_parameters_and_keeps_lines() -> None:
    text = textwrap.dedent(
        """\
        type Alias = int
        type Pair[T] = tuple[T, T]
        class Box[T: (int, str)](Base[T]):
            async def get[U](self, x: U) -> U: ...
        def first[T](pair): return pair
        type = 3
        print(type(type))
        """
    )
    tree = parse_ast(text)
    lines = {
        getattr(node, "name", None) or ast.unparse(node): node.lineno
        for node in tree.body
        if not isinstance(node, ast.Expr)
    }
    assert lines == {"Alias = int": 1, "Pair = tuple[T, T]": 2, "Box": 3, "first": 5, "type = 3": 6}
    box = tree.body[2]
    assert isinstance(box, ast.ClassDef) and box.body[0].lineno == 4
    # every other node is where the text has it: the rules report and fix by these positions
    source = text.splitlines()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Call, ast.arg, ast.Subscript)):
            line = source[node.lineno - 1]
            assert line[node.col_offset : node.end_col_offset] == ast.unparse(node), line


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="ast parses PEP 695 itself")
def test_parse_ast_takes_type_parameters_across_lines() -> None:
    text = textwrap.dedent(
        """        class Entity[
            _DataT: Coordinator,  # a comment
        ](Base[_DataT], Mixin):
            async def refresh[
                T
            ](self, x: T = default()) -> T:
                return await fetch(x)
        class Plain[
            T,
        ]:
            pass
        """
    )
    tree = parse_ast(text)
    entity, plain = tree.body
    assert isinstance(entity, ast.ClassDef) and isinstance(plain, ast.ClassDef)
    assert [ast.unparse(base) for base in entity.bases] == ["Base[_DataT]", "Mixin"]
    assert plain.bases == [] and plain.body[0].lineno == 11
    refresh = entity.body[0]
    assert isinstance(refresh, ast.AsyncFunctionDef) and refresh.lineno == 4
    call = next(
        n for n in ast.walk(refresh) if isinstance(n, ast.Call) and ast.unparse(n) == "fetch(x)"
    )
    assert (call.lineno, call.col_offset) == (7, 21)
    assert [a.arg for a in refresh.args.args] == ["self", "x"]


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="ast parses PEP 695 itself")
def test_a_string_that_fools_the_quick_cut_is_cut_carefully() -> None:
    from asyncfix.index import _quick_without_type_parameters

    text = 'NOTE = "def f[ is how a generic starts"\nclass Box[T]:\n    size: int = 1\n'
    assert _quick_without_type_parameters(text) is None  # the scan cannot tell: no guess
    tree = parse_ast(text)
    box = tree.body[1]
    assert isinstance(box, ast.ClassDef) and box.name == "Box" and box.lineno == 2
    assert isinstance(tree.body[0], ast.Assign)
    assert tree.body[0].value.value == "def f[ is how a generic starts"  # type: ignore[attr-defined]


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="ast parses PEP 695 itself")
def test_parse_ast_still_rejects_what_is_not_python() -> None:
    with pytest.raises(SyntaxError):
        parse_ast("class Box[T](\n")
    with pytest.raises(SyntaxError):
        parse_ast("type X[\n    T,\n] = list[T]\n")  # an alias's list across lines
    with pytest.raises(SyntaxError):
        parse_ast("type X = = 1\n")
