"""The stdlib semantic model's first layer: scopes, bindings and qualified names."""

from __future__ import annotations

import ast
import textwrap

import pytest

from asyncfix.analysis.scopes import Scopes


def calls(source: str, module: str | None = None) -> dict[str, str | None]:
    """Each call's source text -> the qualified name of its callee."""
    text = textwrap.dedent(source)
    tree = ast.parse(text)
    scopes = Scopes(tree, module)
    found: list[tuple[int, int, str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            spelled = ast.get_source_segment(text, node)
            assert spelled is not None
            key = f"{node.lineno}: {spelled}"
            found.append((node.lineno, node.col_offset, key, scopes.qualified_name(node.func)))
    return {key: name for _, _, key, name in sorted(found)}  # in source order


def test_imports_aliases_and_attributes() -> None:
    found = calls(
        """
        import time as t
        import os.path
        from asyncio import sleep as nap
        t.sleep(1)
        os.path.join("a")
        nap(1)
        open("f")
        """
    )
    assert found == {
        "5: t.sleep(1)": "time.sleep",
        '6: os.path.join("a")': "os.path.join",
        "7: nap(1)": "asyncio.sleep",
        '8: open("f")': "builtins.open",
    }


def test_a_local_import_hides_the_modules() -> None:
    found = calls(
        """
        from pathlib import Path
        async def f(name):
            from trio import Path
            return Path(name)
        def g(name):
            return Path(name)
        """
    )
    assert list(found.values()) == ["trio.Path", "pathlib.Path"]


def test_a_name_bound_anywhere_in_a_function_is_local_there() -> None:
    found = calls(
        """
        import time
        def f():
            time.sleep(1)
            time = None
        def g():
            global time
            time.sleep(1)
            time = None
        """
    )
    assert list(found.values()) == [None, "time.sleep"]


def test_nonlocal_reaches_the_enclosing_function() -> None:
    found = calls(
        """
        import time
        def outer():
            import asyncio as time
            def inner():
                nonlocal time
                time.sleep(1)
            return inner
        """
    )
    assert list(found.values()) == ["asyncio.sleep"]


def test_methods_do_not_see_their_class_body() -> None:
    found = calls(
        """
        import time
        class C:
            import asyncio as time
            def m(self):
                return time.sleep(1)
            helper = time.sleep(0)
        """
    )
    assert found == {"6: time.sleep(1)": "time.sleep", "7: time.sleep(0)": "asyncio.sleep"}


def test_comprehensions_have_their_own_scope() -> None:
    found = calls(
        """
        import time
        def f(items):
            a = [time() for time in items]
            b = [time.sleep(x) for x in items]
            return a, b
        """
    )
    assert list(found.values()) == [None, "time.sleep"]


def test_a_walrus_in_a_comprehension_binds_outside_it() -> None:
    tree = ast.parse("def f(xs):\n    [(y := x) for x in xs]\n    return y\n")
    scopes = Scopes(tree)
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    assert "y" in scopes.opened[id(function)].bindings
    read = function.body[-1]
    assert isinstance(read, ast.Return) and isinstance(read.value, ast.Name)
    found = scopes.resolve(read.value)
    assert found is not None and found[0] is scopes.opened[id(function)]


def test_defaults_and_decorators_are_evaluated_outside() -> None:
    found = calls(
        """
        import functools
        def f(functools=functools.partial(print)):
            @functools.wraps(f)
            def g():
                pass
            return g
        """
    )
    assert found == {
        "3: functools.partial(print)": "functools.partial",  # the default: the module's
        "4: functools.wraps(f)": None,  # in the body: the parameter named functools
    }


def test_parameters_exceptions_and_loops_bind() -> None:
    found = calls(
        """
        import json
        def f(json):
            json.loads("x")
        def g():
            try:
                pass
            except Exception as json:
                json.loads("y")
        def h(items):
            for json in items:
                json.loads("z")
        def k():
            return json.loads("w")
        """
    )
    assert list(found.values()) == [None, None, None, "json.loads"]


def test_a_name_bound_twice_by_different_imports_is_unknown() -> None:
    found = calls(
        """
        try:
            import ujson as json
        except ImportError:
            import json
        json.loads("x")
        """
    )
    assert list(found.values()) == [None]


def test_a_star_import_hides_builtins() -> None:
    assert list(calls("from trio import *\nopen('x')\n").values()) == [None]


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (None, "from . import client\nclient.get()\n", ".client.get"),
        (None, "from .client import get\nget()\n", ".client.get"),
        ("pkg.sub.mod", "from . import client\nclient.get()\n", "pkg.sub.client.get"),
        ("pkg.sub.mod", "from ..base import get\nget()\n", "pkg.base.get"),
    ],
)
def test_relative_imports(module: str | None, source: str, expected: str) -> None:
    assert list(calls(source, module).values()) == [expected]
