"""The conditions a module decides by itself (``analysis/conditions.py``), and the branches
they rule out."""

from __future__ import annotations

import ast
import textwrap

import pytest

from asyncfix.analysis.model import SemanticModel

PRELUDE = """
import types

class Plain:
    def __init__(self, name):
        self.name = name

class Sized:
    def __len__(self):
        return 0

class Equal:
    def __eq__(self, other):
        return True

def yes():
    return True

def no():
    \"\"\"A docstring first.\"\"\"
    return False

def maybe(flag):
    return flag

FLAG = False
"""


def _truth(setup: str, test: str) -> bool | None:
    body = textwrap.indent(f"{setup}\nif {test}:\n    pass\n", "    ")
    text = f"{PRELUDE}\nasync def main(param):\n{body}"
    model = SemanticModel(ast.parse(text), text)
    function = model.tree.body[-1]
    assert isinstance(function, ast.AsyncFunctionDef)
    statement = function.body[-1]
    assert isinstance(statement, ast.If)
    return model.conditions.truth(statement.test)


@pytest.mark.parametrize(
    ("setup", "test", "expected"),
    [
        ("x = None", "x is None", True),
        ("x = None", "x is not None", False),
        ("x = None", "x", False),
        ("x = None", "not x", True),
        ("x = 0", "x", False),
        ("x = 'a'", "x", True),
        ("x = int(5)", "type(x) == int", True),
        ("x = int(5)", "type(x) == str", False),
        ("x = str('a')", "type(x) == str and type(x) is str", True),
        ("x = 5", "type(x) == int", True),
        ("x = Plain('a')", "type(x) == Plain", True),
        ("x = Plain('a')", "x is None", False),
        ("x = Plain('a')", "x", True),
        ("def x():\n    return -1", "type(x) == types.FunctionType", True),
        ("x = Plain('a')\ny = Plain('a')", "x is y", False),
        ("x = Plain('a')\ny = Plain('a')", "x == y", False),  # the default `__eq__`
        ("pass", "yes()", True),
        ("pass", "no()", False),
        ("pass", "yes() or param", True),
        ("pass", "no() and param", False),
        ("pass", "True", True),
        # not decided
        ("x = Sized()", "x", None),  # `__len__` decides
        ("x = Equal()\ny = Equal()", "x == y", None),
        ("pass", "maybe(True)", None),
        ("pass", "FLAG", None),  # a module name: a test may patch it
        ("pass", "param is None", None),
        ("x = None\nx = param", "x is None", None),  # two bindings
        ("x = object()", "x is None", None),
        ("pass", "no() or param", None),
    ],
)
def test_what_a_condition_is_on_every_run(setup: str, test: str, expected: bool | None) -> None:
    assert _truth(setup, test) is expected


def test_a_branch_a_condition_rules_out_is_dead() -> None:
    text = textwrap.dedent(
        """
        async def main(param):
            x = None
            if x:
                first()
            else:
                second()
            y = third() if x is not None else fourth()
            while x:
                fifth()
            if param:
                sixth()
        """
    )
    model = SemanticModel(ast.parse(text), text)
    calls = {
        node.func.id: node
        for node in ast.walk(model.tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    dead = {name for name, call in calls.items() if model.conditions.dead(call)}
    assert dead == {"first", "third", "fifth"}
