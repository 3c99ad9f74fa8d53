"""The semantic model's local value flow (``analysis/flow.py``): where a local's value goes,
and whether every path from its binding uses it."""

from __future__ import annotations

import ast
import textwrap

import pytest

from asyncfix.analysis.flow import Local
from asyncfix.analysis.model import SemanticModel
from asyncfix.analysis.uses import HANDED_ON


def _local(source: str, name: str = "x") -> tuple[SemanticModel, Local | None]:
    """The flow of the first binding of ``name`` (an assignment target or a parameter)."""
    text = textwrap.dedent(source)
    model = SemanticModel(ast.parse(text), text)
    for node in ast.walk(model.tree):
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store):
            return model, model.flow.local(node)
    raise AssertionError(f"no binding of {name}")


def _kinds(source: str, name: str = "x") -> list[str]:
    _, local = _local(source, name)
    assert local is not None
    return [use.kind for use in local.uses]


@pytest.mark.parametrize(
    ("line", "kinds"),
    [
        ("await x", ["awaited"]),
        ("return x", ["returned"]),
        ("yield x", ["yielded"]),
        ("x", ["dropped"]),
        ("if x: pass", ["tested"]),
        ("while not x: pass", ["tested"]),
        ("assert x", ["tested"]),
        ("y = x and 1", ["tested"]),
        ("y = 1 and x", ["aliased"]),
        ("if x is None: pass", ["compared"]),
        ("y = x + 1", ["arithmetic"]),
        ("x.status", ["attribute"]),
        ("x[0]", ["subscripted"]),
        ("for y in x: pass", ["iterated"]),
        ("a, b = x", ["iterated"]),
        ("f(*x)", ["iterated"]),
        ("print(f'{x}')", ["formatted"]),
        ("print(x)", ["value"]),
        ("str(x)", ["value"]),
        ("y = x", ["aliased"]),
        ("self.y = x", ["stored"]),
        ("d['k'] = x", ["stored"]),
        ("y = [x]", ["contained"]),
        ("y = {'k': x}", ["contained"]),
        ("f(x)", ["passed"]),
        ("f(key=x)", ["passed"]),
        ("x()", ["called"]),
        ("asyncio.gather(x)", ["scheduled"]),
        ("asyncio.create_task(x)", ["scheduled"]),
        ("tg.create_task(x)", ["scheduled"]),
        ("asyncio.wait_for(x, 1)", ["scheduled"]),
        ("async with x: pass", ["entered"]),
        ("raise x", ["raised"]),
        ("x += 1", ["arithmetic"]),
        ("del x", ["other"]),
        ("g = lambda: x", ["captured"]),
    ],
)
def test_each_read_is_classified_by_what_it_does_with_the_value(line: str, kinds: list[str]):
    source = f"import asyncio\nasync def main(f, self, d, tg):\n    x = f()\n    {line}\n"
    assert _kinds(source) == kinds


def test_reads_of_a_nested_function_are_captures_and_its_own_locals_are_not_reads():
    source = """
    async def main(f):
        x = f()
        def inner():
            return x
        def other():
            x = 2
            return x
        return inner, other
    """
    _, local = _local(source)
    assert local is not None
    assert [use.kind for use in local.uses] == ["captured"]
    assert isinstance(local.uses[0].node, ast.FunctionDef) and local.uses[0].node.name == "inner"


def test_a_read_in_a_part_that_may_not_run_is_conditional():
    source = """
    async def main(f, c):
        x = f()
        y = (await x) if c else None
        z = c or await x
        w = [await x for _ in c]
    """
    _, local = _local(source)
    assert local is not None
    assert [(use.kind, use.conditional) for use in local.uses] == [
        ("awaited", True),
        ("awaited", True),
        ("awaited", True),
    ]


@pytest.mark.parametrize(
    "source",
    [
        "x = 1\ndef f():\n    return x\n",  # a module name
        "def f():\n    global x\n    x = 1\n",
        "def f():\n    x = 1\n    def g():\n        nonlocal x\n        x = 2\n",
        "class C:\n    x = 1\n",
    ],
)
def test_only_a_functions_own_locals_have_a_flow(source: str):
    text = textwrap.dedent(source)
    model = SemanticModel(ast.parse(text), text)
    targets = [
        node
        for node in ast.walk(model.tree)
        if isinstance(node, ast.Name) and node.id == "x" and isinstance(node.ctx, ast.Store)
    ]
    # the nonlocal case: the outer `x` has a flow, the inner one is not a local of `g`
    inner = targets[-1]
    assert model.flow.local(inner) is None


EVERY_PATH = frozenset({"awaited"})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("await x", True),
        ("y = 1\n    await x", True),
        ("if c:\n        await x\n    else:\n        await x", True),
        ("if c:\n        await x", False),
        ("if c:\n        return\n    await x", False),
        ("if c:\n        raise ValueError\n    await x", True),  # leaving by an exception
        ("pass", False),
        ("try:\n        await x\n    finally:\n        pass", True),
        ("try:\n        pass\n    finally:\n        await x", True),
        ("try:\n        await x\n    except E:\n        pass", None),  # where did it stop?
        ("with c:\n        await x", True),
        ("for i in c:\n        await x", None),  # zero iterations: not followed
        ("while c:\n        pass\n    await x", True),
        ("if True:\n        await x", True),  # a decided condition: one branch runs
        ("if False:\n        await x", False),
        ("y = (await x) if c else 1", False),
        ("return await x", True),
        ("async def g():\n        await x\n    await g()", None),  # captured
    ],
)
def test_every_path_from_the_binding(body: str, expected: bool | None):
    source = f"async def main(f, c):\n    x = f()\n    {body}\n"
    model, local = _local(source)
    assert local is not None
    assert model.flow.on_every_path(local, EVERY_PATH) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # bound in a block: the paths go on after the block
        ("async def main(f, c):\n    if c:\n        x = f()\n    await x\n", True),
        ("async def main(f, c):\n    if c:\n        x = f()\n    return\n", False),
        # bound in a loop: the next round is not followed
        ("async def main(f, c):\n    for i in c:\n        x = f()\n    await x\n", None),
        # in a try body, the else and finally run next
        (
            "async def main(f, c):\n    try:\n        x = f()\n    except E:\n        return\n"
            "    else:\n        await x\n",
            True,
        ),
        # two bindings: which value is used is not followed
        ("async def main(f, c):\n    x = f()\n    x = f()\n    await x\n", None),
        # a walrus in a test: not followed
        ("async def main(f, c):\n    if (x := f()):\n        await x\n", None),
    ],
)
def test_every_path_from_a_binding_inside_a_block(source: str, expected: bool | None):
    model, local = _local(source)
    assert local is not None
    assert model.flow.on_every_path(local, EVERY_PATH) is expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("if x is None:\n        return\n    await x", True),
        ("if x is not None:\n        await x", True),
        ("if x:\n        await x", True),
        ("if not x:\n        return\n    await x", True),
        ("if x is None:\n        await x", False),  # awaited only where it is None
        ("if x is None:\n        return\n    print(x)", False),
        ("if c:\n        return\n    await x", False),  # a test of something else
        ("if x == None:\n        return\n    await x", False),  # `==` may be overloaded
    ],
)
def test_every_path_of_a_value_that_may_be_none(body: str, expected: bool | None):
    """A value that is None or always true: the branch where a test says it is None holds
    nothing to use."""
    source = f"async def main(f, c):\n    x = f()\n    {body}\n"
    model, local = _local(source)
    assert local is not None
    assert model.flow.on_every_path(local, EVERY_PATH, optional=True) is expected
    if expected:  # without the knowledge, the path where it is None counts
        assert model.flow.on_every_path(local, EVERY_PATH) is not True


def test_a_parameter_has_a_flow_of_its_reads():
    text = "async def main(x, f):\n    f(x)\n    await x\n"
    model = SemanticModel(ast.parse(text), text)
    function = model.tree.body[0]
    assert isinstance(function, ast.AsyncFunctionDef)
    read = next(n for n in ast.walk(function) if isinstance(n, ast.Name) and n.id == "x")
    local = model.flow.local(read)
    assert local is not None
    assert [b.kind for b in local.bindings] == ["param"]
    assert [use.kind for use in local.uses] == ["passed", "awaited"]
    assert {"passed", "awaited"} <= HANDED_ON
    # a parameter has no one binding statement: the paths are not followed from it
    assert model.flow.on_every_path(local, EVERY_PATH) is None
