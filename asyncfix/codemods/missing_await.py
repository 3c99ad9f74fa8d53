"""AF101 missing-await: a coroutine function is called and its coroutine never awaited."""

from __future__ import annotations

import ast
import os

import libcst as cst

from asyncfix.codemods.base import (
    Fix,
    Project,
    Rule,
    await_expression,
    is_coroutine_function,
    source_of,
)
from asyncfix.codemods.receivers import LIBRARY_FACTORIES, LIBRARY_FUNCTIONS, LIBRARY_METHODS
from asyncfix.index import FunctionFact
from asyncfix.model import Safety, Severity

Evidence = tuple[str, cst.CSTNode | None]

_LIBRARY_LAST_NAMES = frozenset(
    {name.rsplit(".", 1)[1] for name in LIBRARY_FUNCTIONS}
    | {method for methods in LIBRARY_METHODS.values() for method in methods}
)
#: parents (stdlib ast) of a call that ``_dropped_context`` may flag; a superset on purpose
_AST_CONTEXTS = (
    ast.Expr,
    ast.If,
    ast.While,
    ast.IfExp,
    ast.comprehension,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.BinOp,
    ast.Attribute,
    ast.Subscript,
    ast.keyword,
    ast.Starred,
    ast.FormattedValue,
    ast.Return,
)
#: builtins that use the value of their argument (a coroutine there is a bug)
VALUE_CONSUMERS = frozenset(
    {
        "print",
        "str",
        "repr",
        "len",
        "bool",
        "int",
        "float",
        "list",
        "tuple",
        "set",
        "dict",
        "sorted",
        "sum",
        "min",
        "max",
        "any",
        "all",
        "format",
    }
)


class MissingAwait(Rule):
    code = "AF101"
    name = "missing-await"
    summary = "a coroutine function is called without `await`"
    why = (
        "Calling a coroutine function only creates a coroutine object; its body runs when the "
        "coroutine is awaited. Without `await` the work silently never happens (Python at best "
        "prints 'coroutine ... was never awaited' when it is garbage-collected), and where the "
        "result is used as a value — `if client.is_connected():`, `not f()`, `cb and cb(x)` — a "
        "coroutine object is always truthy, so the test is always true."
    )
    example_before = """\
class Agent:
    async def connect(self):
        ...

    async def start(self):
        self.connect()
"""
    example_after = """\
class Agent:
    async def connect(self):
        ...

    async def start(self):
        await self.connect()
"""
    fix_safety = Safety.SAFE
    fix_safety_note = (
        "Safe: the coroutine now runs where it was evidently meant to run. The callee must be "
        "known to be a coroutine function: a same-module `async def` (undecorated or with a "
        "decorator known to keep it a coroutine function), a method of the enclosing class or "
        "its same-module bases, or a well-known library coroutine; anything else is not "
        "reported. `return f()` from an `async def` gets an unsafe fix (a caller may await the "
        "returned coroutine itself). Inside a generator expression no fix is offered."
    )
    severity = Severity.HIGH
    kind = "Coroutine never awaited"
    needles = ("async",)

    needs_index = True

    @classmethod
    def may_apply_to_ast(cls, tree: ast.Module, project: Project | None) -> bool:
        """Could ``visit_Call`` report anything here? A call under an ``async def``, in a context
        ``_dropped_context`` may flag, whose callee might resolve to a coroutine function: a
        name bound to an ``async def``, a library coroutine, an async callback parameter or an
        import of a project coroutine; ``self.m()`` where the class's ``m`` is a coroutine; or
        ``x.m()`` where ``m`` is the name of a coroutine method somewhere. Never wrongly False.
        """
        functions, methods = _candidate_names(tree, project)
        stack: list[tuple[ast.AST, ast.AST | None, bool, str | None]] = [(tree, None, False, None)]
        while stack:
            node, parent, in_async, owner = stack.pop()
            in_async = in_async or isinstance(node, ast.AsyncFunctionDef)
            if isinstance(node, ast.ClassDef) and not in_async:
                owner = node.name
            if in_async and isinstance(node, ast.Call) and _ast_context(node, parent):
                func = node.func
                if isinstance(func, ast.Name) and func.id in functions:
                    return True
                if isinstance(func, ast.Attribute) and _method_may_be_coroutine(
                    func, owner, methods, project
                ):
                    return True
            stack.extend((child, node, in_async, owner) for child in ast.iter_child_nodes(node))
        return False

    def visit_Call(self, node: cst.Call) -> None:
        if not self.ctx.in_async_body():
            return
        context = self._dropped_context(node)
        if context is None:
            return
        found = self._coroutine_callee(node)
        if found is None:
            return
        callee, evidence = found
        message = f"`{callee}()` is not awaited: the coroutine is {context}"
        if self.ctx.in_generator_expression():
            self.report(node, message + " (no fix inside a generator expression)", None, evidence)
            return
        safety = Safety.UNSAFE if context == "returned" else Safety.SAFE
        fix = Fix(
            safety=safety,
            changes=[f"Inserted `await` before `{source_of(node.func)}(...)`"],
            replace={node: await_expression(node, node, self.ctx.parent())},
        )
        self.report(node, message, fix, evidence)

    # -- is the coroutine used wrongly? ------------------------------------------------

    def _dropped_context(self, node: cst.BaseExpression) -> str | None:
        """How the coroutine is misused here, or None when this use may be legitimate.

        A new context here needs its stdlib-ast parent in ``_AST_CONTEXTS`` too."""
        parent = self.ctx.parent(node)
        if isinstance(parent, cst.Expr):
            return "dropped"
        if isinstance(parent, (cst.If, cst.While)) and parent.test is node:
            return "used as a condition (always true)"
        if isinstance(parent, (cst.IfExp, cst.CompIf)) and parent.test is node:
            return "used as a condition (always true)"
        if isinstance(parent, cst.UnaryOperation):
            return (
                "negated (always false)"
                if isinstance(parent.operator, cst.Not)
                else "used as a number"
            )
        if isinstance(parent, cst.BooleanOperation):
            if parent.left is node:
                return "used as a truth value (always true)"
            # the right operand is the result: misused only where the whole is misused
            return self._dropped_context(parent)
        if isinstance(parent, cst.Comparison) and not self._awaited(parent):
            return "compared"
        if isinstance(parent, cst.ComparisonTarget):
            grand = self.ctx.parent(parent)
            return "compared" if grand is not None and not self._awaited(grand) else None
        if isinstance(parent, cst.BinaryOperation) and not self._awaited(parent):
            return "used in arithmetic"
        if isinstance(parent, cst.Attribute) and parent.value is node:
            return "used as an object (attribute access)"
        if isinstance(parent, cst.Subscript) and parent.value is node:
            return "subscripted"
        if isinstance(parent, cst.Arg):
            call = self.ctx.parent(parent)
            if isinstance(call, cst.Call) and self.ctx.qualified_name(call.func) in {
                f"builtins.{name}" for name in VALUE_CONSUMERS
            }:
                return f"passed to `{source_of(call.func)}()` as a value"
            return None
        if isinstance(parent, cst.FormattedStringExpression):
            return "formatted into a string"
        if isinstance(parent, cst.Return):
            return "returned"
        return None

    def _awaited(self, node: cst.CSTNode) -> bool:
        return isinstance(self.ctx.parent(node), cst.Await)

    # -- is the callee a coroutine function? -------------------------------------------

    def _coroutine_callee(self, node: cst.Call) -> tuple[str, list[Evidence]] | None:
        """How the callee is spelled and why it is known to be a coroutine function."""
        func = node.func
        qualified = self.ctx.qualified_name(func)
        if qualified in LIBRARY_FUNCTIONS:
            return source_of(func), [(f"`{qualified}` is a library coroutine function", None)]
        project = self.ctx.project
        if qualified is not None and project is not None:
            target = project.absolute(qualified)
            fact = project.index.function(target) if target else None
            if fact is not None and fact.is_coroutine:
                where = f"{_shown(fact.path)}:{fact.line}"
                return source_of(func), [(f"`{fact.qualified}` is an `async def` ({where})", None)]
        if isinstance(func, cst.Name):
            definition = self._module_coroutine(func)
            if definition is not None:
                return func.value, [
                    (f"`{func.value}` is defined with `async def` at line {{line}}", definition)
                ]
        if isinstance(func, cst.Name):
            annotation = self._awaitable_callable_param(func)
            if annotation is not None:
                text = f"`{func.value}` is annotated `{source_of(annotation)}`"
                return func.value, [(text, None)]
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            method = self._own_method_coroutine(func.value, func.attr.value)
            if isinstance(method, cst.FunctionDef):
                text = f"`{func.attr.value}` is an `async def` method at line {{line}}"
                return source_of(func), [(text, method)]
            if isinstance(method, FunctionFact):
                where = f"{_shown(method.path)}:{method.line}"
                text = f"`{method.qualified}` is an inherited `async def` method ({where})"
                return source_of(func), [(text, None)]
        if isinstance(func, cst.Attribute):
            receiver = self.ctx.receivers.type_of(func.value)
            found = receiver.coroutine_method(self.ctx, func.attr.value) if receiver else None
            if receiver is not None and found is not None:
                spelled = source_of(func.value)
                text = (
                    f"`{spelled}` is a `{receiver.name}`, whose `{func.attr.value}` is a coroutine"
                )
                if isinstance(found, cst.FunctionDef):
                    return source_of(func), [(text + " (line {line})", found)]
                if isinstance(found, FunctionFact):
                    text += f" ({_shown(found.path)}:{found.line})"
                return source_of(func), [(text, None)]
        return None

    def _module_coroutine(self, name: cst.Name) -> cst.FunctionDef | None:
        """The ``async def`` at module level that is the only binding of ``name``."""
        found = self.ctx.lookup(name.value)
        if found is None or not isinstance(found[0], cst.Module):
            return None
        definitions = []
        for binding in found[1]:
            definition = binding.node
            if not isinstance(definition, cst.FunctionDef) or not is_coroutine_function(definition):
                return None
            definitions.append(definition)
        return definitions[-1] if definitions else None

    def _own_method_coroutine(
        self, receiver: cst.Name, method: str
    ) -> cst.FunctionDef | FunctionFact | None:
        """The ``async def`` that ``self.method`` / ``cls.method`` of the enclosing class is: in
        this module, or (through the project index) in a base class of another module."""
        cls = self.ctx.enclosing_class()
        function = self.ctx.enclosing_function()
        if cls is None or function is None:
            return None
        params = [*function.params.posonly_params, *function.params.params]
        if not params or params[0].name.value != receiver.value:
            return None
        decorators = {source_of(d.decorator) for d in function.decorators}
        if "staticmethod" in decorators:
            return None
        found = self.ctx.lookup(receiver.value)
        if found is None or found[0] is not function or len(found[1]) != 1:
            return None  # the receiver is reassigned in the method
        facts = self.ctx.class_facts(cls)
        if facts is None:
            return None
        definitions = self.ctx.lookup_method(facts, method)
        if definitions is None:
            return self._inherited_coroutine(cls, method)
        if not definitions or not all(is_coroutine_function(d) for d in definitions):
            return None
        return definitions[-1]

    def _inherited_coroutine(self, cls: cst.ClassDef, method: str) -> FunctionFact | None:
        project = self.ctx.project
        if project is None:
            return None
        fact = project.index.class_(f"{project.module.name}.{cls.name.value}")
        found = project.index.method(fact, method) if fact is not None else None
        return found if found is not None and found.is_coroutine else None

    def _awaitable_callable_param(self, name: cst.Name) -> cst.BaseExpression | None:
        """The annotation when ``name`` is a parameter annotated ``Callable[..., Awaitable[...]]``
        (an async callback: calling it makes a coroutine)."""
        found = self.ctx.lookup(name.value)
        if found is None or found[0] is not self.ctx.enclosing_function() or len(found[1]) != 1:
            return None
        param = found[1][0].node
        if not isinstance(param, cst.Param) or param.annotation is None:
            return None
        annotation = param.annotation.annotation
        return annotation if self.ctx.receivers.is_awaitable_callable(annotation) else None


def _shown(path: str) -> str:
    """A path as the user would write it: relative to the working directory when below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _candidate_names(tree: ast.Module, project: Project | None) -> tuple[set[str], set[str]]:
    """Names a called function, and names a called method, must have to possibly be coroutines.

    A method call ``x.m()`` is a coroutine call only if ``x`` is an instance of a known class,
    and that class has to be named in this file (a constructor, an annotation) or be this
    file's own; so only the coroutine methods of classes this file mentions count.
    """
    functions = {name.rsplit(".", 1)[1] for name in LIBRARY_FUNCTIONS}
    methods: set[str] = set()
    mentioned: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            mentioned.add(node.id)
        elif isinstance(node, ast.Attribute):
            mentioned.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            mentioned.update(
                node.value.replace("[", " ").replace("]", " ").replace(".", " ").split()
            )
        elif isinstance(node, ast.AsyncFunctionDef):
            functions.add(node.name)
            methods.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".", 1)[0]
                if project is None or not _import_is_known_sync(node, alias, project):
                    functions.add(bound)
        elif isinstance(node, ast.arg) and node.annotation is not None:
            spelled = ast.dump(node.annotation)
            if "Awaitable" in spelled or "Coroutine" in spelled:
                functions.add(node.arg)  # an async callback parameter
    for name, coroutine_methods in LIBRARY_METHODS.items():
        if name.rsplit(".", 1)[1] in mentioned:
            methods |= coroutine_methods
    for factory, name in LIBRARY_FACTORIES.items():
        if factory.rsplit(".", 1)[1] in mentioned:
            methods |= LIBRARY_METHODS[name]
    if project is None:
        return functions, methods | mentioned  # without the index every method may be one
    for name in mentioned:
        fact = project.index.class_(f"{project.module.name}.{name}")
        if fact is not None:
            methods |= project.index.coroutine_methods(fact)
    return functions, methods


def _import_is_known_sync(
    node: ast.Import | ast.ImportFrom, alias: ast.alias, project: Project
) -> bool:
    """``from .helpers import format_state`` of a project function that is not a coroutine."""
    if not isinstance(node, ast.ImportFrom) or alias.name == "*":
        return False
    prefix = "." * node.level + (node.module or "")
    separator = "" if prefix.endswith(".") else "."
    target = project.absolute(f"{prefix}{separator}{alias.name}")
    if target is None:
        return False
    found = project.index.function(target)
    if found is not None:
        return not found.is_coroutine
    return project.index.class_(target) is not None  # calling a class makes an instance


def _ast_context(node: ast.Call, parent: ast.AST | None) -> bool:
    """The stdlib-ast mirror of ``_dropped_context``, widened where it cannot tell."""
    if isinstance(parent, ast.Call):
        consumer = parent.func
        return (
            node in parent.args
            and isinstance(consumer, ast.Name)
            and consumer.id in VALUE_CONSUMERS
        )
    return isinstance(parent, _AST_CONTEXTS)


def _method_may_be_coroutine(
    func: ast.Attribute, owner: str | None, methods: set[str], project: Project | None
) -> bool:
    receiver = func.value
    if isinstance(receiver, (ast.Name, ast.Attribute)) and _is_module_function(func, project):
        return True
    if func.attr not in methods and not (
        isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")
    ):
        return False
    if (
        project is not None
        and owner is not None
        and isinstance(receiver, ast.Name)
        and receiver.id in ("self", "cls")
    ):
        fact = project.index.class_(f"{project.module.name}.{owner}")
        if fact is not None:
            found = project.index.method(fact, func.attr)
            return found is None or found.is_coroutine  # None: a base outside the project
    return True


_LIBRARY_FUNCTION_NAMES = frozenset(name.rsplit(".", 1)[1] for name in LIBRARY_FUNCTIONS)


def _is_module_function(func: ast.Attribute, project: Project | None) -> bool:
    """``asyncio.sleep`` / ``api.fetch_state``: a function reached through a module name."""
    if func.attr in _LIBRARY_FUNCTION_NAMES:
        return True
    if project is None:
        return True
    dotted = _ast_dotted(func.value)
    if dotted is None:
        return False
    head, _, rest = dotted.partition(".")
    target = project.module.imports.get(head)
    if target is None:
        return False
    absolute = project.absolute(target)
    if absolute is None:
        return True
    qualified = ".".join(part for part in (absolute, rest, func.attr) if part)
    found = project.index.function(qualified)
    return found is None or found.is_coroutine


def _ast_dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _ast_dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None
