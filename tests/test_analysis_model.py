"""The semantic model's walk: where a node is (``Place``), what encloses it, and the small
questions rules ask of the stdlib tree; and how a model rule's fix finds its LibCST node."""

from __future__ import annotations

import ast
import textwrap

import libcst as cst

from asyncfix.analysis.model import (
    SemanticModel,
    Walk,
    alone_on_its_line,
    identifiers,
    is_plain_assignment,
    names_in,
)
from asyncfix.engine.apply import _Locate
from asyncfix.model import Span


def _walk(source: str, offload: tuple[str, ...] = ()) -> tuple[Walk, dict[str, ast.Call]]:
    """The walk of ``source`` and its calls by the text of their callee."""
    text = textwrap.dedent(source)
    model = SemanticModel(ast.parse(text), text)
    calls = {
        model.source.segment(node.func): node
        for node in ast.walk(model.tree)
        if isinstance(node, ast.Call)
    }
    return Walk(model, offload), calls


def test_the_body_a_call_is_in() -> None:
    walk, calls = _walk(
        """
        import asyncio
        from typing import TYPE_CHECKING

        @decorate()
        async def main(x=default()):
            body()
            lambda: in_lambda()
            def inner():
                in_def()
            class Local:
                in_class()
            [in_listcomp() for _ in ()]
            sum(in_genexp() for _ in ())
            await asyncio.to_thread(offloaded, argument())
            if TYPE_CHECKING:
                never()
        """
    )
    kinds = {name: walk.place(call).kind for name, call in calls.items()}
    assert kinds == {
        "decorate": "module",  # decorators and defaults run where the def is
        "default": "module",
        "body": "async",
        "in_lambda": "lambda",
        "in_def": "def",
        "in_class": "class",
        "in_listcomp": "async",
        "sum": "async",
        "in_genexp": "async",
        "asyncio.to_thread": "async",
        "argument": "async",  # evaluated on the loop: only the callable is offloaded
        "never": "typecheck",
    }
    assert walk.place(calls["in_genexp"]).genexp
    assert not walk.place(calls["in_listcomp"]).genexp
    assert walk.in_async_body(calls["body"])
    assert not walk.in_async_body(calls["never"])
    assert walk.place(calls["in_def"]).function is not walk.place(calls["body"]).function


def test_the_callable_given_to_a_worker_thread() -> None:
    walk, calls = _walk(
        """
        async def main(loop, hass):
            await loop.run_in_executor(None, lambda: blocking())
            await hass.async_add_executor_job(lambda: helper())
        """,
        offload=("hass.async_add_executor_job",),
    )
    assert walk.place(calls["blocking"]).kind == "lambda"
    lambda_ = walk.model.scopes.parents[id(calls["blocking"])]
    assert walk.place(lambda_).kind == "offload"
    helper_lambda = walk.model.scopes.parents[id(calls["helper"])]
    assert walk.place(helper_lambda).kind == "offload"


def test_the_class_a_method_is_in() -> None:
    walk, calls = _walk(
        """
        class C:
            def method(self):
                direct()
                def nested():
                    in_nested()
            attribute = at_class_level()
        def function():
            outside()
        """
    )
    cls = walk.model.tree.body[0]
    assert walk.enclosing_class(calls["direct"]) is cls
    assert walk.enclosing_class(calls["in_nested"]) is None
    assert walk.enclosing_class(calls["at_class_level"]) is None
    assert walk.enclosing_class(calls["outside"]) is None


def test_names_and_assignments() -> None:
    text = textwrap.dedent(
        """
        import os.path as p
        def f(arg, *rest):
            task = start()
            for loop_var in rest:
                pass
            a, b = pair()
            x.attribute = call(keyword=arg)
            first = second = 1
        """
    )
    tree = ast.parse(text)
    model = SemanticModel(tree, text)
    function = tree.body[1]
    counts = identifiers(function)
    assert counts["arg"] == 2  # the parameter and its use
    assert counts["attribute"] == 0 and counts["keyword"] == 0
    assert {"attribute", "keyword", "os", "path", "p"} <= names_in(tree)
    scope = model.scopes.opened[id(function)]
    plain = {
        name: all(is_plain_assignment(model.scopes, b) for b in bindings)
        for name, bindings in scope.bindings.items()
    }
    assert plain == {
        "arg": False,
        "rest": False,
        "task": True,
        "loop_var": False,
        "a": False,
        "b": False,
        "first": True,
        "second": True,
    }


def test_a_statement_alone_on_its_line() -> None:
    text = textwrap.dedent(
        """
        a = 1  # a comment
        b = 2; c = 3
        if a: d = 4
        e = (
            5
        )
        """
    )
    tree = ast.parse(text)
    model = SemanticModel(tree, text)
    alone = {
        target.id: alone_on_its_line(model, statement)
        for statement in ast.walk(tree)
        if isinstance(statement, ast.Assign)
        for target in statement.targets
        if isinstance(target, ast.Name)
    }
    assert alone == {"a": True, "b": False, "c": False, "d": False, "e": True}


def test_the_module_name_an_import_binds() -> None:
    text = "import time\nimport asyncio as aio\ndef f(): pass\nimport functools\n"
    model = SemanticModel(ast.parse(text), text)
    assert model.module_name_for("asyncio") == "aio"
    assert model.module_name_for("functools") == "functools"
    assert model.module_name_for("functools", leading_only=True) is None
    assert model.module_name_for("os") is None


def test_a_fix_finds_its_node_by_position_through_parentheses_and_wide_characters() -> None:
    text = 'async def f():\n    x = "é" + ((g()))\n'
    tree = ast.parse(text)
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call))
    model = SemanticModel(tree, text)
    line = call.lineno
    span = Span(
        line,
        model.source.column(line, call.col_offset) + 1,
        line,
        model.source.column(line, call.end_col_offset or 0) + 1,
    )
    assert (span.col, span.end_col) == (17, 20)  # characters, not UTF-8 bytes
    module = cst.parse_module(text)
    found = _Locate(module).find(span, cst.Call)
    assert isinstance(found, cst.Call)
    assert isinstance(found.func, cst.Name) and found.func.value == "g"


def test_race_blocks_are_found_by_position_as_libcst_has_them() -> None:
    from asyncfix.analysis.races import Blocks, Line

    text = textwrap.dedent(
        """
        async def f(self, a, b):
            x = 1; y = 2
            z = 3
            if a: p = 1; q = 2
            if a:
                pass
            elif b:
                pass
            else:
                if a:
                    pass
        """
    )
    model = SemanticModel(ast.parse(text), text)
    blocks = Blocks(model)
    function = model.tree.body[0]
    assert isinstance(function, ast.AsyncFunctionDef)
    body = function.body
    x, y, z, one_line_if, chain = body
    assert blocks.is_block(function, body)
    line = blocks.line_of(x, body, True)
    assert isinstance(line, Line) and line.statements == (x, y)
    assert blocks.line_of(y, body, True) is line  # one line, however it is reached
    assert blocks.line_of(z, body, True) is z
    assert [len(getattr(item, "statements", [item])) for item in blocks.lines(body, 0, 3)] == [2, 1]
    assert blocks.line_bounds(body, 1) == (0, 1)
    # `if a: p = 1; q = 2`: a body on the header's line is no indented block
    assert isinstance(one_line_if, ast.If)
    assert not blocks.is_block(one_line_if, one_line_if.body)
    # `elif` is an `if` LibCST keeps in the first one; `else:` holding an `if` is a block
    assert isinstance(chain, ast.If)
    elif_ = chain.orelse[0]
    assert isinstance(elif_, ast.If)
    assert blocks.is_elif(elif_) and not blocks.is_block(chain, chain.orelse)
    nested = elif_.orelse[0]
    assert not blocks.is_elif(nested) and blocks.is_block(elif_, elif_.orelse)
