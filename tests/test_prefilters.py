"""The pre-filters (text needles and the stdlib-``ast`` tests in ``codemods/prefilters.py``)
spare most files a LibCST parse; they must never hide a finding. Each case here is a small
project whose findings depend on a shape a pre-filter has to see through (an alias, an import
inside a function, a class named through its module, a race through another method,
type-parameter syntax), analysed with the pre-filters on and off."""

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
            for rule in RULES:
                patch.setattr(rule, "may_apply_to_ast", classmethod(lambda *a: True))
            analysis = engine.analyse(text, RULES, (3, 10), project)
    return [(analysis.span(hit).line, hit.rule.code) for hit in analysis.hits]


@pytest.mark.parametrize("case", sorted(CASES))
def test_prefilters_see_through(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="ast parses PEP 695 itself")
def test_parse_ast_still_rejects_what_is_not_python() -> None:
    with pytest.raises(SyntaxError):
        parse_ast("class Box[T](\n")
    with pytest.raises(SyntaxError):
        parse_ast("def f[\n    T,\n](x): ...\n")  # across lines: left to LibCST
    with pytest.raises(SyntaxError):
        parse_ast("type X = = 1\n")


POSITION_CASES = [
    "# header comment\n\nimport os; import sys\n\n\n@decorator(\n    1,\n)\nasync def f(x):\n"
    "    if x: return os.sep\n    return [\n        sys.argv,\n    ]\n",
    "class A:\n    '''doc'''\n\n    x = 1; y = 2\n\n    async def m(self):\n"
    "        await g(\n            self.x,\n        )\n# trailing comment\n",
    "type Alias = int\n\n\nclass Box[T]:\n    def get[U](self, x: U) -> U:\n"
    "        return x  # comment\n\n\nif True:\n    pass\nelse:\n    y = (\n        1\n    )\n",
    "\ufeffx = 'é'; z = \"ü\" + 'ö'\nasync def h():\n    return  f'{x}'\n",
]


@pytest.mark.parametrize("number", range(len(POSITION_CASES)))
def test_positions_by_statement_are_the_module_positions(number: int) -> None:
    _assert_positions(POSITION_CASES[number].lstrip("\ufeff"))


def test_positions_by_statement_on_every_fixture() -> None:
    root = Path(__file__).parent.parent
    sources = [*(root / "tests" / "fixtures").rglob("*.py"), *(root / "examples").rglob("*.py")]
    for source in sorted(sources):
        _assert_positions(source.read_text(encoding="utf-8"))


def _assert_positions(text: str) -> None:
    """Every node's span from the statement-by-statement path equals LibCST's whole-module
    positions."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    from asyncfix.codemods.walk import children

    module = cst.parse_module(text)
    tree = engine._ast_parse(text)
    assert tree is not None
    wanted: dict[int, cst.CSTNode] = {}
    stack: list[cst.CSTNode] = list(module.body)
    while stack:
        node = stack.pop()
        wanted[id(node)] = node
        stack.extend(children(node))
    fast = engine._spans_by_statement(module, tree, wanted)
    assert fast is not None
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    assert fast == {key: engine._span(positions[node]) for key, node in wanted.items()}
