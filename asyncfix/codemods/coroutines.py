"""Is this call a call of a coroutine function? Shared by AF101 and AF102.

``coroutine_callee`` answers for one call during the walk, from what is certain: the
module's own ``async def``s, the enclosing class and its bases (this module, or other modules
through the project index), receivers of known classes (``receivers.py``), async callback
parameters, and the library catalogue. ``may_call_coroutine`` is the cheap stdlib-ast
pre-filter in front of it: it may say yes wrongly, never no.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

from asyncfix.analysis.catalogue import LIBRARY_FACTORIES, LIBRARY_FUNCTIONS, LIBRARY_METHODS
from asyncfix.analysis.coroutines import shown
from asyncfix.codemods.base import (
    ast_facts,
    ast_memo,
    ast_of_type,
    is_coroutine_function,
    source_of,
)
from asyncfix.index import SAME_TYPE, ClassFact, FunctionFact, ast_dotted_name

if TYPE_CHECKING:
    from asyncfix.codemods.base import Context, Project

Evidence = tuple[str, cst.CSTNode | None]

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


def coroutine_callee(ctx: Context, node: cst.Call) -> tuple[str, list[Evidence]] | None:
    """How the callee is spelled and why it is known to be a coroutine function."""
    func = node.func
    qualified = ctx.qualified_name(func)
    if qualified in LIBRARY_FUNCTIONS:
        return source_of(func), [(f"`{qualified}` is a library coroutine function", None)]
    project = ctx.project
    if qualified is not None and project is not None:
        target = project.absolute(qualified)
        fact = project.index.function(target) if target else None
        if fact is not None and fact.is_coroutine:
            where = f"{shown(fact.path)}:{fact.line}"
            return source_of(func), [(f"`{fact.qualified}` is an `async def` ({where})", None)]
    if isinstance(func, cst.Name):
        definition = _module_coroutine(ctx, func)
        if definition is not None:
            return func.value, [
                (f"`{func.value}` is defined with `async def` at line {{line}}", definition)
            ]
    if isinstance(func, cst.Name):
        annotation = _awaitable_callable_param(ctx, func)
        if annotation is not None:
            text = f"`{func.value}` is annotated `{source_of(annotation)}`"
            return func.value, [(text, None)]
    if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
        method = _own_method_coroutine(ctx, func.value, func.attr.value)
        if isinstance(method, cst.FunctionDef):
            text = f"`{func.attr.value}` is an `async def` method at line {{line}}"
            return source_of(func), [(text, method)]
        if isinstance(method, FunctionFact):
            where = f"{shown(method.path)}:{method.line}"
            text = f"`{method.qualified}` is an inherited `async def` method ({where})"
            return source_of(func), [(text, None)]
    if (
        isinstance(func, cst.Attribute)
        and isinstance(func.value, cst.Name)
        and ctx.is_self(func.value)
        and (cls := ctx.enclosing_class()) is not None
        and ctx.receivers.is_awaitable_callable_attribute(cls, func.attr.value)
    ):
        text = f"`{source_of(func)}` is annotated as an async callback (`Callable[..., Awaitable]`)"
        return source_of(func), [(text, None)]
    if isinstance(func, cst.Attribute):
        receiver = ctx.receivers.type_of(func.value)
        found = receiver.coroutine_method(ctx, func.attr.value) if receiver else None
        if receiver is not None and found is not None:
            spelled = source_of(func.value)
            text = f"`{spelled}` is a `{receiver.name}`, whose `{func.attr.value}` is a coroutine"
            if isinstance(found, cst.FunctionDef):
                return source_of(func), [(text + " (line {line})", found)]
            if isinstance(found, FunctionFact):
                text += f" ({shown(found.path)}:{found.line})"
            return source_of(func), [(text, None)]
    return None


def _module_coroutine(ctx: Context, name: cst.Name) -> cst.FunctionDef | None:
    """The ``async def`` at module level that is the only binding of ``name``."""
    found = ctx.lookup(name.value)
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
    ctx: Context, receiver: cst.Name, method: str
) -> cst.FunctionDef | FunctionFact | None:
    """The ``async def`` that ``self.method`` / ``cls.method`` of the enclosing class is: in
    this module, or (through the project index) in a base class of another module."""
    cls = ctx.enclosing_class()
    if cls is None or not ctx.is_self(receiver):
        return None
    facts = ctx.class_facts(cls)
    if facts is None:
        return None
    definitions = ctx.lookup_method(facts, method)
    if definitions is None:
        return _inherited_coroutine(ctx, cls, method)
    if not definitions or not all(is_coroutine_function(d) for d in definitions):
        return None
    return definitions[-1]


def _inherited_coroutine(ctx: Context, cls: cst.ClassDef, method: str) -> FunctionFact | None:
    project = ctx.project
    if project is None:
        return None
    fact = project.index.class_(f"{project.module.name}.{cls.name.value}")
    found = project.index.method(fact, method) if fact is not None else None
    return found if found is not None and found.is_coroutine else None


def _awaitable_callable_param(ctx: Context, name: cst.Name) -> cst.BaseExpression | None:
    """The annotation when ``name`` is a parameter annotated ``Callable[..., Awaitable[...]]``
    (an async callback: calling it makes a coroutine)."""
    found = ctx.lookup(name.value)
    if found is None or found[0] is not ctx.enclosing_function() or len(found[1]) != 1:
        return None
    param = found[1][0].node
    if not isinstance(param, cst.Param) or param.annotation is None:
        return None
    annotation = param.annotation.annotation
    return annotation if ctx.receivers.is_awaitable_callable(annotation) else None


@dataclass(frozen=True)
class _Candidates:
    #: names a called function must have to possibly be a coroutine function
    functions: frozenset[str]
    #: names a called method ``x.m()`` must have to possibly be a coroutine method
    methods: frozenset[str]
    #: ``self.m()`` of a method the index cannot find may still be an async callback stored
    #: on the object: attributes annotated with ``Awaitable``/``Coroutine`` or assigned an
    #: async callback parameter (all of them when ``self`` is annotated)
    callback_attributes: frozenset[str]
    annotated_self: bool
    #: bound name -> what the file's imports bind it to (``.api.Client``), at any depth
    imports: dict[str, frozenset[str]]
    #: the project classes the file names (``Client``, ``api.Client``, in a string too):
    #: the only ones a receiver can be known to be an instance of
    classes: tuple[ClassFact, ...] = ()
    #: names ``ctx.is_self`` may take: ``self``, ``cls`` and the first parameter of every
    #: method
    self_names: frozenset[str] = frozenset({"self", "cls"})
    #: local name -> what every value the file gives a name of that name could be an
    #: instance of (``receivers._local``: ``x = Client()``, ``x: Client``), as names
    receiver_types: dict[str, frozenset[str]] = field(default_factory=dict)
    #: attribute -> the same for every ``<obj>.attribute`` the file assigns or annotates
    #: (``receivers.self_attribute``)
    attribute_types: dict[str, frozenset[str]] = field(default_factory=dict)
    #: the coroutine method names of the classes a set of names can mean
    methods_for: Callable[[frozenset[str]], frozenset[str]] | None = None


def _candidate_names(tree: ast.Module, project: Project | None) -> _Candidates:
    result: _Candidates = ast_memo(
        tree, "candidate-names", lambda: _compute_candidate_names(tree, project)
    )
    return result


def _compute_candidate_names(tree: ast.Module, project: Project | None) -> _Candidates:
    """Names a called function, and names a called method, must have to possibly be
    coroutines (``coroutine_callee`` decides each call; this must never say no where it
    could say yes).

    A function call ``f()`` is one only when ``f`` is bound by an ``async def``, by an
    import of a library coroutine (``LIBRARY_FUNCTIONS``) or of a project coroutine, or is
    a parameter annotated as an async callback. A method call ``x.m()`` (``x`` not ``self``)
    is one only if ``receivers`` knows the class of ``x``: it is built by a call of the class
    (``Client(...)``, ``await connect(...)`` of a library factory) or named in an annotation
    -- so only the coroutine methods of classes the file calls or names in annotations (or
    in strings, which may be annotations) count.
    """
    functions: set[str] = set()
    #: last names and dotted names of what the file calls or annotates with
    typed: set[str] = set()
    mentioned: set[str] = set()
    awaitable_hint = False
    imports: dict[str, set[str]] = {}

    def name_of(node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            typed.add(node.id)
        elif isinstance(node, ast.Attribute):
            typed.add(node.attr)
            dotted = ast_dotted_name(node)
            if dotted is not None:
                typed.add(dotted)

    for call, *_ in ast_facts(tree).calls:
        name_of(call.func)
    annotations: list[ast.expr] = []
    for node in ast_of_type(tree, ast.arg):
        assert isinstance(node, ast.arg)
        if node.annotation is not None:
            annotations.append(node.annotation)
    for node in ast_of_type(tree, ast.AnnAssign):
        assert isinstance(node, ast.AnnAssign)
        annotations.append(node.annotation)
    for annotation in annotations:
        for node in ast.walk(annotation):
            name_of(node)
    for node in ast_of_type(tree, ast.Constant):
        assert isinstance(node, ast.Constant)
        if isinstance(node.value, str):
            words = node.value.replace("[", " ").replace("]", " ").replace(",", " ").split()
            typed.update(words)
            typed.update(part for word in words for part in word.split("."))
    # what `Awaitable`/`Coroutine` are called here (`from typing import Awaitable as A`)
    awaitable = {"Awaitable", "Coroutine"}
    for node in ast_of_type(tree, ast.ImportFrom):
        assert isinstance(node, ast.ImportFrom)
        awaitable.update(a.asname for a in node.names if a.asname and a.name in awaitable)
    for node in ast_of_type(tree, ast.Name):
        assert isinstance(node, ast.Name)
        if node.id in awaitable:
            awaitable_hint = True
    for node in ast_of_type(tree, ast.Attribute):
        assert isinstance(node, ast.Attribute)
        if node.attr in awaitable:
            awaitable_hint = True
    # `_module_coroutine`: an `async def` counts where the module's scope binds it (one in a
    # function or class is reached through another scope's name)
    for statement in _scope_statements(tree.body):
        if isinstance(statement, ast.AsyncFunctionDef):
            functions.add(statement.name)
    for node in ast_of_type(tree, ast.Import, ast.ImportFrom):
        assert isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names:
            mentioned.add(alias.name)
            if alias.name == "*":
                functions |= _LIBRARY_FUNCTION_NAMES  # `from asyncio import *`
                continue
            bound = alias.asname or alias.name.split(".", 1)[0]
            if isinstance(node, ast.ImportFrom):
                prefix = "." * node.level + (node.module or "")
                separator = "" if prefix.endswith(".") else "."
                target = f"{prefix}{separator}{alias.name}"
            else:
                target = alias.name if alias.asname else bound
            imports.setdefault(bound, set()).add(target)
            if project is None or _import_may_be_coroutine(node, alias, project):
                functions.add(bound)
    callbacks: set[str] = set()
    annotated_self = False
    for node in ast_of_type(tree, ast.arg):
        assert isinstance(node, ast.arg)
        if node.annotation is not None:
            if node.arg in ("self", "cls"):
                annotated_self = True
            if awaitable_hint and _names_awaitable(node.annotation, awaitable):
                functions.add(node.arg)  # an async callback parameter
    if awaitable_hint:
        for node in ast_of_type(tree, ast.AnnAssign):
            assert isinstance(node, ast.AnnAssign)
            if _names_awaitable(node.annotation, awaitable):
                assigned = node.target
                if isinstance(assigned, ast.Name):
                    callbacks.add(assigned.id)
                elif isinstance(assigned, ast.Attribute):
                    callbacks.add(assigned.attr)
        for node in ast_of_type(tree, ast.Assign):
            assert isinstance(node, ast.Assign)
            if isinstance(node.value, ast.Name) and node.value.id in functions:
                callbacks.update(t.attr for t in node.targets if isinstance(t, ast.Attribute))
    local_classes: dict[str, set[str]] = {}
    self_names = {"self", "cls"}
    for cls in ast_of_type(tree, ast.ClassDef):
        assert isinstance(cls, ast.ClassDef)
        local_classes.setdefault(cls.name, set()).update(
            s.name for s in cls.body if isinstance(s, ast.AsyncFunctionDef)
        )
        for statement in _scope_statements(cls.body):
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                params = [*statement.args.posonlyargs, *statement.args.args]
                if params:
                    self_names.add(params[0].arg)
    frozen_imports = {name: frozenset(targets) for name, targets in imports.items()}
    classes = _named_classes(project, typed, imports) if project is not None else ()
    memo: dict[frozenset[str], frozenset[str]] = {}

    def methods_for(names: frozenset[str]) -> frozenset[str]:
        """The coroutine methods of the classes ``names`` can mean here: classes of this
        file (their own ``async def`` methods; a class inside a function is not in the
        index), library classes and factories (by last name), project classes."""
        found = memo.get(names)
        if found is not None:
            return found
        methods: set[str] = set()
        for name, own in local_classes.items():
            if name in names:
                methods |= own
        for name, coroutine_methods in LIBRARY_METHODS.items():
            if name.rsplit(".", 1)[1] in names:
                methods |= coroutine_methods
        for factory, name in LIBRARY_FACTORIES.items():
            if factory.rsplit(".", 1)[1] in names:
                methods |= LIBRARY_METHODS[name]
        if project is not None:
            for fact in classes if names is all_typed else _named_classes(project, names, imports):
                methods |= project.index.coroutine_methods(fact)
        found = memo[names] = frozenset(methods)
        return found

    all_typed = frozenset(typed)
    methods = methods_for(all_typed)
    if project is None:
        # without the index every function and method may be one
        return _Candidates(
            frozenset(functions | _LIBRARY_FUNCTION_NAMES),
            frozenset(methods | typed | mentioned),
            frozenset(callbacks),
            True,
            frozen_imports,
        )
    receivers, attributes = _receiver_types(tree)
    return _Candidates(
        frozenset(functions),
        methods,
        frozenset(callbacks),
        annotated_self,
        frozen_imports,
        classes,
        frozenset(self_names),
        receivers,
        attributes,
        methods_for,
    )


def _scope_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of a block and of the blocks nested in it, up to (and including) the
    nested ``def``/``class`` statements: those of one scope."""
    stack = list(reversed(body))
    while stack:
        statement = stack.pop()
        yield statement
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        inner: list[ast.stmt] = []
        for name in ("body", "orelse", "finalbody"):
            inner.extend(getattr(statement, name, ()))
        for handler in getattr(statement, "handlers", ()):
            inner.extend(handler.body)
        for case in getattr(statement, "cases", ()):
            inner.extend(case.body)
        stack.extend(reversed(inner))


#: last names of the library classes an attribute, method or operator can keep
#: (``receivers._same_type``: ``path.parent``, ``folder / "x"``)
_SAME_TYPE_NAMES = frozenset(name.rsplit(".", 1)[-1] for name in SAME_TYPE)


def _type_names(node: ast.AST) -> set[str]:
    """Names an annotation (or a called class) may name a class by: ``Client``,
    ``api.Client`` and ``Client`` of it, words of strings."""
    names: set[str] = set()
    for inner in ast.walk(node):
        if isinstance(inner, ast.Name):
            names.add(inner.id)
        elif isinstance(inner, ast.Attribute):
            names.add(inner.attr)
            dotted = ast_dotted_name(inner)
            if dotted is not None:
                names.add(dotted)
        elif isinstance(inner, ast.Constant) and isinstance(inner.value, str):
            words = inner.value.replace("[", " ").replace("]", " ").replace(",", " ").split()
            names.update(words)
            names.update(part for word in words for part in word.split("."))
    return names


def _value_types(value: ast.expr | None) -> set[str]:
    """Names of the classes ``receivers._value`` may give a value: the class called, a
    library factory awaited, or a library class kept by an attribute, method or ``/``."""
    if isinstance(value, ast.Call):
        names = (
            _type_names(value.func) if isinstance(value.func, (ast.Name, ast.Attribute)) else set()
        )
        if isinstance(value.func, ast.Attribute):
            names |= _SAME_TYPE_NAMES
        return names
    if isinstance(value, ast.Await) and isinstance(value.value, ast.Call):
        func = value.value.func
        return _type_names(func) if isinstance(func, (ast.Name, ast.Attribute)) else set()
    if isinstance(value, ast.Attribute) or (
        isinstance(value, ast.BinOp) and isinstance(value.op, ast.Div)
    ):
        return set(_SAME_TYPE_NAMES)
    return set()


def _receiver_types(
    tree: ast.Module,
) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """What ``receivers`` could find a local name (``x.m()``) or an attribute of ``self``
    (``self.x.m()``) to be an instance of, as names, over the whole file: a superset of
    what it finds in any one function or class. A name bound only in other ways (``for``,
    ``with``, an import) gets nothing: ``receivers`` knows no type for it."""
    locals_: dict[str, set[str]] = {}
    attributes: dict[str, set[str]] = {}
    annotated_args: dict[str, set[str]] = {}
    for node in ast_of_type(tree, ast.arg):
        assert isinstance(node, ast.arg)
        if node.annotation is not None:
            names = _type_names(node.annotation)
            locals_.setdefault(node.arg, set()).update(names)
            annotated_args.setdefault(node.arg, set()).update(names)

    def assigned(target: ast.expr, value: ast.expr | None, annotation: ast.expr | None) -> None:
        if isinstance(target, ast.Name) and value is not None:
            locals_.setdefault(target.id, set()).update(_value_types(value))
        elif isinstance(target, ast.Attribute):
            names = attributes.setdefault(target.attr, set())
            if annotation is not None:
                names.update(_type_names(annotation))
            if isinstance(value, ast.Name):
                names.update(annotated_args.get(value.id, ()))
            else:
                names.update(_value_types(value))

    for node in ast_of_type(tree, ast.Assign):
        assert isinstance(node, ast.Assign)
        for target in node.targets:
            if len(node.targets) == 1 or isinstance(target, ast.Attribute):
                assigned(target, node.value, None)
    for node in ast_of_type(tree, ast.AnnAssign):
        assert isinstance(node, ast.AnnAssign)
        target = node.target
        if isinstance(target, ast.Name):
            # a class-level `client: Client` is how `self.client` is annotated
            attributes.setdefault(target.id, set()).update(_type_names(node.annotation))
        assigned(target, node.value, node.annotation)
    for node in ast_of_type(tree, ast.NamedExpr):
        assert isinstance(node, ast.NamedExpr)
        assigned(node.target, node.value, None)
    return (
        {name: frozenset(names) for name, names in locals_.items()},
        {name: frozenset(names) for name, names in attributes.items()},
    )


def _names_awaitable(annotation: ast.expr, names: set[str]) -> bool:
    """The annotation mentions ``Awaitable``/``Coroutine`` (under one of ``names``)."""
    for node in ast.walk(annotation):
        if (isinstance(node, ast.Name) and node.id in names) or (
            isinstance(node, ast.Attribute) and node.attr in names
        ):
            return True
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and any(name in node.value for name in names)
        ):
            return True
    return False


def _named_classes(
    project: Project, names: Collection[str], imports: dict[str, set[str]]
) -> tuple[ClassFact, ...]:
    """The project classes that names (``Client``, ``api.Client``) point to in this file:
    through the module's own bindings (as ``receivers.class_named`` resolves them) or an
    import anywhere in the file (one in a function too). Only a name the module binds (a
    class, an import, or anything when it star-imports) can resolve, so only those are
    looked up."""
    module = project.module
    index = project.index
    found: dict[str, ClassFact] = {}
    for name in names:
        root, _, rest = name.partition(".")
        if module.star_imports or root in module.classes or root in module.imports:
            fact = index.class_(f"{module.name}.{name}")
            if fact is not None:
                found[fact.qualified] = fact
        for target in imports.get(root, ()):
            absolute = project.absolute(target)
            fact = index.class_(f"{absolute}.{rest}" if rest else absolute) if absolute else None
            if fact is not None:
                found[fact.qualified] = fact
    return tuple(found.values())


def _import_may_be_coroutine(
    node: ast.Import | ast.ImportFrom, alias: ast.alias, project: Project
) -> bool:
    """Could the name this import binds be called as a coroutine function, as
    ``coroutine_callee`` knows them: a library coroutine, or a project ``async def``?
    (``from .helpers import format_state`` of a sync project function, ``from typing import
    cast`` of a library the catalogue does not list, a class: no.)"""
    if not isinstance(node, ast.ImportFrom):
        return True
    prefix = "." * node.level + (node.module or "")
    separator = "" if prefix.endswith(".") else "."
    spelled = f"{prefix}{separator}{alias.name}"
    if spelled in LIBRARY_FUNCTIONS:
        return True
    target = project.absolute(spelled)
    if target is None:
        return True
    if target in LIBRARY_FUNCTIONS:
        return True
    found = project.index.function(target)
    return found is not None and found.is_coroutine


def _method_may_be_coroutine(
    func: ast.Attribute, owner: str | None, candidates: _Candidates, project: Project | None
) -> bool:
    receiver = func.value
    if isinstance(receiver, (ast.Name, ast.Attribute)) and _is_module_function(
        func, project, candidates.imports
    ):
        return True
    methods_for = candidates.methods_for
    if methods_for is None:  # no index: every name may be one
        if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls"):
            return True
        return func.attr in candidates.methods
    if isinstance(receiver, ast.Name):
        if receiver.id in candidates.self_names and _own_method_may_be_coroutine(
            func, owner, candidates, project
        ):
            return True
        # `x.m()`: `x` is a local whose class `receivers` may know
        names = candidates.receiver_types.get(receiver.id, frozenset())
    elif (
        isinstance(receiver, ast.Attribute)
        and isinstance(receiver.value, ast.Name)
        and receiver.value.id in candidates.self_names
    ):
        # `self.client.m()`
        names = candidates.attribute_types.get(receiver.attr, frozenset()) | _SAME_TYPE_NAMES
    else:
        # `Client().m()`, `(await connect()).m()`, `path.parent.m()`
        names = frozenset(_value_types(receiver))
    return bool(names) and func.attr in methods_for(names)


def _own_method_may_be_coroutine(
    func: ast.Attribute, owner: str | None, candidates: _Candidates, project: Project | None
) -> bool:
    """``self.m()``: a coroutine method of the class (or a base), or an async callback
    stored on the object."""
    if project is not None and owner is not None:
        fact = project.index.class_(f"{project.module.name}.{owner}")
        if fact is not None:
            found = project.index.method_lookup(fact, func.attr)
            if isinstance(found, FunctionFact):
                return found.is_coroutine
            if found == "missing":
                # not a method: an attribute holding a callable (an async callback only if
                # annotated as one), or `self` is annotated with another class
                return func.attr in candidates.callback_attributes or candidates.annotated_self
            return True
    return True


_LIBRARY_FUNCTION_NAMES = frozenset(name.rsplit(".", 1)[1] for name in LIBRARY_FUNCTIONS)
#: every name a library coroutine function or method has
_LIBRARY_NAMES = _LIBRARY_FUNCTION_NAMES.union(*LIBRARY_METHODS.values())


def _is_module_function(
    func: ast.Attribute, project: Project | None, imports: dict[str, frozenset[str]]
) -> bool:
    """``asyncio.sleep`` / ``api.fetch_state``: a coroutine function reached through a name
    an import binds (anywhere in the file): a library one, or one the index knows."""
    dotted = ast_dotted_name(func.value)
    if dotted is None:
        return False
    head, _, rest = dotted.partition(".")
    for target in imports.get(head, ()):
        spelled = ".".join(part for part in (target, rest, func.attr) if part)
        if spelled in LIBRARY_FUNCTIONS or project is None:
            return True
        absolute = project.absolute(spelled)
        if absolute is None or absolute in LIBRARY_FUNCTIONS:
            return True
        found = project.index.function(absolute)
        if found is not None and found.is_coroutine:
            return True
    # anything else is a method call on an object (`LOGGER.info`, `vol.Schema`): the
    # caller's method test decides it
    return False


def may_call_blocking_helper(tree: ast.Module, project: Project | None) -> bool:
    """AF205's pre-filter: a call under an ``async def`` that ``project_function`` could
    resolve to a sync project function that blocks -- by its name (``load_config()``),
    through a module (``helpers.load_config()``), as a method of the enclosing class
    (``self.load()``) or of a project class the file names (``client.load()``)."""
    if project is None:
        return False
    index = project.index
    names = index.blocking_names()
    candidates: _Candidates | None = None

    def blocks(fact: FunctionFact | str | None) -> bool:
        return (
            isinstance(fact, FunctionFact)
            and not fact.is_coroutine
            and index.blocking_chain(fact) is not None
        )

    for node, _, under_async, _, owner in ast_facts(tree).calls:
        func = node.func
        if not under_async:
            continue
        if isinstance(func, ast.Name):
            if func.id in names:
                return True
            index.passed_over("blocking", func.id)
            continue
        if not isinstance(func, ast.Attribute):
            continue
        if func.attr not in names:
            index.passed_over("blocking", func.attr)
            continue
        if candidates is None:
            candidates = _candidate_names(tree, project)
        receiver = func.value
        if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls") and owner is None:
            return True
        if isinstance(receiver, ast.Name) and owner is not None:
            # `self.load()` (whatever the method calls its first parameter)
            fact = index.class_(f"{project.module.name}.{owner}")
            if fact is None or blocks(index.method_lookup(fact, func.attr)):
                return True
        dotted = ast_dotted_name(receiver)
        if dotted is not None:
            head, _, rest = dotted.partition(".")
            target = project.module.imports.get(head)
            if target is None and head in candidates.imports:
                return True  # a module imported inside a function
            absolute = project.absolute(target) if target is not None else None
            if target is not None and absolute is None:
                return True
            if absolute is not None:
                qualified = ".".join(part for part in (absolute, rest, func.attr) if part)
                if blocks(index.function(qualified)):
                    return True
        if any(blocks(index.method_lookup(cls, func.attr)) for cls in candidates.classes):
            return True
    return False


def project_function(ctx: Context, node: cst.Call) -> FunctionFact | None:
    """The project function or method a call certainly calls (through the index), or None."""
    project = ctx.project
    if project is None:
        return None
    func = node.func
    where = _project_name(ctx, project, func, cst.FunctionDef)
    if where is not None:
        scope, name = where
        if scope == "global":
            return project.index.function(name)
        return project.module.functions.get(name)
    if isinstance(func, cst.Name) or ctx.qualified_name(func) is not None:
        return None
    if isinstance(func, cst.Attribute):
        receiver = func.value
        cls = ctx.enclosing_class()
        if isinstance(receiver, cst.Name) and cls is not None and ctx.is_self(receiver):
            fact = project.index.class_(f"{project.module.name}.{cls.name.value}")
            return project.index.method(fact, func.attr.value)
        kind = ctx.receivers.type_of(receiver)
        if kind is not None and kind.kind == "project":
            return project.index.method(kind.project, func.attr.value)
        if kind is not None and kind.kind == "local":
            fact = project.index.class_(f"{project.module.name}.{kind.name}")
            return project.index.method(fact, func.attr.value)
    return None


def project_class(ctx: Context, func: cst.BaseExpression) -> ClassFact | None:
    """The project class an expression certainly names (through the index), or None."""
    project = ctx.project
    if project is None:
        return None
    where = _project_name(ctx, project, func, cst.ClassDef)
    if where is None:
        return None
    scope, name = where
    return project.index.class_(name) if scope == "global" else project.module.classes.get(name)


def _project_name(
    ctx: Context, project: Project, func: cst.BaseExpression, definition: type[cst.CSTNode]
) -> tuple[str, str] | None:
    """Where ``func`` points in the project: ("global", "pkg.mod.name") through an import,
    or ("local", "name") for a module-level name bound only by ``definition`` statements
    (``def`` or ``class``)."""
    qualified = ctx.qualified_name(func)
    if qualified is not None:
        target = project.absolute(qualified)
        return ("global", target) if target else None
    if not isinstance(func, cst.Name):
        return None
    found = ctx.lookup(func.value)
    if found is None or not isinstance(found[0], cst.Module):
        return None
    if func.value in project.module.ambiguous:
        return None
    if all(isinstance(binding.node, definition) for binding in found[1]):
        return ("local", func.value)
    return None
