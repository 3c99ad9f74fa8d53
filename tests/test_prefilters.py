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
from typing import Any

import pytest

from asyncfix import engine
from asyncfix.codemods import RULES
from asyncfix.codemods.base import Project, Rule
from asyncfix.config import Config
from asyncfix.engine import detect as detect_module
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


POSITION_CASES = [
    "# header comment\n\nimport os; import sys\n\n\n@decorator(\n    1,\n)\nasync def f(x):\n"
    "    if x: return os.sep\n    return [\n        sys.argv,\n    ]\n",
    "class A:\n    '''doc'''\n\n    x = 1; y = 2\n\n    async def m(self):\n"
    "        await g(\n            self.x,\n        )\n# trailing comment\n",
    "type Alias = int\n\n\nclass Box[T]:\n    def get[U](self, x: U) -> U:\n"
    "        return x  # comment\n\n\nif True:\n    pass\nelse:\n    y = (\n        1\n    )\n",
    "\ufeffx = 'é'; z = \"ü\" + 'ö'\nasync def h():\n    return  f'{x}'\n",
    # nested blocks with their own indentation, tabs, CRLF, continuation lines, strings
    "class Outer:\r\n  class Inner:\r\n     async def m(self):  # c\r\n         async with a(\r\n"
    " 1) as b:\r\n          x = '''\r\nline'''; y = b\r\n         # footer\r\n"
    "  @property\r\n  def p(self): return 1\r\ndef t():\r\n\tif x:\r\n\t\treturn 1\r\n",
    "def f():\n    try:\n        pass\n    except E as e:\n        g(e)\n    else:\n"
    "        for i in x:\n            while i:\n                if i: h(\n   i)\n"
    "                elif j: k()\n                else:\n                    m()\n"
    "    finally:\n        async def n():\n            async for z in w:\n"
    "                await z\n",
]


@pytest.mark.parametrize("number", range(len(POSITION_CASES)))
def test_positions_by_statement_are_the_module_positions(number: int) -> None:
    _assert_positions(POSITION_CASES[number].lstrip("\ufeff"))


def test_positions_write_out_only_the_innermost_statement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import libcst as cst

    text = POSITION_CASES[-1]
    module = cst.parse_module(text)
    tree = detect_module._ast_parse(text)
    assert tree is not None
    written: list[cst.CSTNode] = []
    real = detect_module._positions

    def spy(module: cst.Module, statement: cst.BaseStatement, indents: tuple[str, ...]) -> Any:
        written.append(statement)
        return real(module, statement, indents)

    monkeypatch.setattr(detect_module, "_positions", spy)
    awaited = [node for node in _nodes(module) if isinstance(node, cst.SimpleStatementLine)]
    statement = next(node for node in awaited if isinstance(node.body[0].value, cst.Await))
    wanted = {id(node): node for node in _nodes(statement)}
    spans = detect_module._spans_by_statement(module, tree, wanted)
    assert written == [statement]
    assert spans is not None
    assert (spans[id(statement)].line, spans[id(statement)].col) == (17, 17)


def _nodes(root: Any) -> list[Any]:
    from asyncfix.codemods.walk import children

    found, stack = [], [root]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(children(node))
    return found


def test_positions_by_statement_on_every_fixture() -> None:
    root = Path(__file__).parent.parent
    sources = [*(root / "tests" / "fixtures").rglob("*.py"), *(root / "examples").rglob("*.py")]
    for source in sorted(sources):
        _assert_positions(source.read_text(encoding="utf-8"))


def _assert_positions(text: str) -> None:
    """Every node's span from the statement-by-statement path equals LibCST's whole-module
    positions: with every node wanted at once, and with only the nodes of one statement
    (at any depth: the path then writes out only the innermost statements) at a time."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    from asyncfix.codemods.walk import children

    def subtree(root: cst.CSTNode) -> dict[int, cst.CSTNode]:
        found: dict[int, cst.CSTNode] = {}
        stack = [root]
        while stack:
            node = stack.pop()
            found[id(node)] = node
            stack.extend(children(node))
        return found

    module = cst.parse_module(text)
    tree = detect_module._ast_parse(text)
    assert tree is not None
    positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    everything = subtree(module)
    del everything[id(module)]
    statements = [node for node in everything.values() if isinstance(node, cst.BaseStatement)]
    for wanted in [everything, *(subtree(statement) for statement in statements)]:
        fast = detect_module._spans_by_statement(module, tree, wanted)
        assert fast is not None
        assert fast == {key: detect_module._span(positions[node]) for key, node in wanted.items()}
