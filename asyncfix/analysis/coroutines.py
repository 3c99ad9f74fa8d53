"""Is this call a call of a coroutine function? The semantic model's answer, from what is
certain: the library catalogue, the project index, the module's own ``async def``s, the
methods of the enclosing class (in this module by the MRO as far as it shows it, then through
the index for bases elsewhere), async callback parameters and attributes, and receivers of
known classes (``values``); and which project function a call certainly calls.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

from asyncfix.analysis.catalogue import LIBRARY_FUNCTIONS, LIBRARY_METHODS, CoroutineFunctions
from asyncfix.analysis.classes import Classes, Function, function_scope, is_coroutine_function
from asyncfix.analysis.scopes import Scopes
from asyncfix.analysis.source import SourceText, shown
from asyncfix.analysis.values import Values
from asyncfix.index import FunctionFact

if TYPE_CHECKING:
    from asyncfix.codemods.base import Project


#: every name a coroutine method of a catalogued library class has
LIBRARY_METHOD_NAMES: frozenset[str] = frozenset().union(*LIBRARY_METHODS.values())


@dataclass(frozen=True)
class Callee:
    """A callee known to be a coroutine function: as spelled, and why it is known."""

    spelled: str
    evidence: str
    #: a sync function that returns the coroutine on some paths and None on the others: the
    #: call's value may be None, so `await` is no fix
    optional: bool = False


class Coroutines:
    """``callee(call)``: the call's callee when it is known to be a coroutine function."""

    def __init__(
        self,
        scopes: Scopes,
        classes: Classes,
        values: Values,
        source: SourceText,
        project: Project | None = None,
        library: CoroutineFunctions | None = None,
    ) -> None:
        self.scopes = scopes
        self.classes = classes
        self.values = values
        self.source = source
        self.project = project
        self.library = library or CoroutineFunctions(LIBRARY_FUNCTIONS)
        #: an async callback is known only by an annotation that names one of these, or an
        #: alias of one that the module imports from the project
        self._mentions_awaitable = (
            "Awaitable" in source.text
            or "Coroutine" in source.text
            or (project is not None and self._imports_callback_alias(project))
        )
        self._module_async_names = frozenset(
            statement.name
            for shape in classes.shapes.values()
            for statement in shape.node.body
            if isinstance(statement, ast.AsyncFunctionDef)
        )

    @staticmethod
    def _imports_callback_alias(project: Project) -> bool:
        """The module imports a name some project module binds to an async callback type
        (by name only: ``values`` checks what it is)."""
        names = project.index.coroutine_names()
        return any(target.rsplit(".", 1)[-1] in names for target in project.module.imports.values())

    def callee(self, call: ast.Call) -> Callee | None:
        found = self._callee(call)
        if found is None and self.project is not None and self._may_hand_out(call.func):
            found = self._handed_out(call)
        return found

    def _may_hand_out(self, func: ast.expr) -> bool:
        """Could the callee be a project function that returns a coroutine? (By its name,
        as ``_may_be_coroutine_method``: most calls are ruled out before any lookup.)"""
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        project = self.project
        if name is None or project is None:
            return False
        if name in project.index.coroutine_names():
            return True
        if isinstance(func, ast.Attribute):
            # a method of a receiver's class, which may live in a module this one does not
            # import: the result depends on no project function getting this name (a name
            # is defined here or imported, and those modules are dependencies already)
            project.index.passed_over("coroutine", name)
        return False

    def _handed_out(self, call: ast.Call) -> Callee | None:
        """``g()`` where ``g`` is a sync project function whose every return is the
        coroutine of a coroutine function's call (or None: ``optional``)."""
        project = self.project
        fact = self.project_function(call)
        if project is None or fact is None or fact.is_coroutine or not fact.may_return_coroutine:
            return None
        found = project.index.hands_out_coroutine(fact, self.library)
        if found is None:
            return None
        inner, always = found
        spelled = self.source.segment(call.func)
        where = f"{shown(fact.path)}:{fact.line}"
        if always:
            text = f"`{fact.qualified}` ({where}) returns the coroutine of `{inner}()`"
        else:
            text = f"`{fact.qualified}` ({where}) returns the coroutine of `{inner}()`, or None"
        return Callee(spelled, text, optional=not always)

    def _callee(self, call: ast.Call) -> Callee | None:
        func = call.func
        spelled = self.source.segment(func)
        qualified = self.scopes.qualified_name(func)
        if qualified in self.library:
            return Callee(spelled, f"`{qualified}` is a library coroutine function")
        project = self.project
        if qualified is not None and project is not None:
            target = project.absolute(qualified)
            fact = project.index.function(target) if target else None
            if fact is not None and fact.is_coroutine:
                where = f"{shown(fact.path)}:{fact.line}"
                return Callee(spelled, f"`{fact.qualified}` is an `async def` ({where})")
        if qualified is not None:
            declared = self._declared(qualified)
            if declared is not None:
                return Callee(spelled, declared)
        if isinstance(func, ast.Name):
            definition = self._module_coroutine(func)
            if definition is not None:
                return Callee(
                    func.id, f"`{func.id}` is defined with `async def` at line {definition.lineno}"
                )
            annotation = self._awaitable_callable_param(func)
            if annotation is not None:
                text = f"`{func.id}` is annotated `{self.source.segment(annotation)}`"
                return Callee(func.id, text)
            attribute = self._awaitable_callable_local(func)
            if attribute is not None:
                text = (
                    f"`{func.id}` is `{self.source.segment(attribute)}`, annotated as an async "
                    "callback (`Callable[..., Awaitable]`)"
                )
                return Callee(func.id, text)
            inner = self._lambda_coroutine(func)
            if inner is not None:
                text = (
                    f"`{func.id}` is a lambda that returns the coroutine of `{inner.spelled}()`: "
                    f"{inner.evidence}"
                )
                return Callee(func.id, text)
        if not isinstance(func, ast.Attribute):
            return None
        receiver = func.value
        cls = self.classes.method_class(receiver) if isinstance(receiver, ast.Name) else None
        if cls is not None:
            found_method = self._method_callee(cls, func.attr, spelled, func.attr)
            if found_method is not None:
                return found_method
            if self._mentions_awaitable and self.values.is_awaitable_callable_attribute(
                cls, func.attr
            ):
                text = f"`{spelled}` is annotated as an async callback (`Callable[..., Awaitable]`)"
                return Callee(spelled, text)
        scope = self.scopes.scope_of(receiver) if isinstance(receiver, ast.Name) else None
        named = self.values.class_named(receiver, scope) if scope is not None else None
        if named is not None and named.kind == "local" and named.local is not None:
            # `Client.connect(...)` on the module's class itself (a static method, or a
            # method given its instance)
            return self._method_callee(named.local.node, func.attr, spelled, spelled)
        if not self._may_be_coroutine_method(func.attr):
            return None
        owner = self.values.type_of(receiver)
        found = self.values.coroutine_method(owner, func.attr) if owner is not None else None
        if owner is None or found is None:
            return None
        text = (
            f"`{self.source.segment(receiver)}` is a `{owner.name}`, whose `{func.attr}` is a "
            "coroutine"
        )
        if isinstance(found, FunctionFact):
            text += f" ({shown(found.path)}:{found.line})"
        elif not isinstance(found, str):
            text += f" (line {found.lineno})"
        return Callee(spelled, text)

    def _declared(self, qualified: str) -> str | None:
        """Why an imported name is a coroutine function the configuration declares, or None
        (what the project defines, the index knows)."""
        if not self.library.patterns:
            return None
        project = self.project
        name = project.absolute(qualified) if project is not None else qualified
        if name is None:
            return None
        if project is not None:
            pattern = project.index.declared_coroutine(name, self.library)
        else:
            pattern = self.library.declared(name)
        if pattern is None:
            return None
        return f"`{name}` is declared a coroutine function (`coroutine-functions`: `{pattern}`)"

    def makes_coroutine(self, callable_: ast.expr) -> Callee | None:
        """Calling ``callable_`` makes a coroutine: it names a coroutine function (``fetch``,
        ``self.fetch``), or is a lambda that returns one's call (``lambda: fetch(1)``)."""
        if isinstance(callable_, ast.Lambda):
            body = callable_.body
            return self.callee(body) if isinstance(body, ast.Call) else None
        if not isinstance(callable_, (ast.Name, ast.Attribute)):
            return None
        # what a call of it would be: the same callee, asked as a call
        probe = ast.Call(func=callable_, args=[], keywords=[])
        return self.callee(probe)

    def kept_by_instance(self, call: ast.Call) -> tuple[Callee, ast.Assign] | None:
        """``D()`` where ``D`` is a class of this module whose ``__init__`` stores a
        coroutine on the new instance (``self.pending = fetch()``) and lets nothing else see
        the instance or the coroutine: the coroutine can only be reached through the
        instance, so dropping the instance loses it. Only a plain class: no bases, metaclass
        or decorators; no ``__new__``, ``__del__`` or ``__setattr__``, and no class attribute
        (a property) of the stored name; an undecorated ``__init__`` that uses
        ``self`` only to store attributes, none of them read there."""
        func = call.func
        if not isinstance(func, ast.Name):
            return None
        shape = self.classes.shapes.get(func.id)
        found = self.scopes.resolve(func)
        if shape is None or found is None or found[0] is not self.scopes.module:
            return None
        node = shape.node
        if [binding.node for binding in found[1]] != [node]:
            return None
        if node.bases or node.keywords or node.decorator_list:
            return None
        others = {"__new__", "__del__", "__setattr__"}  # may see the instance, or keep it
        if others & shape.methods.keys() or (others | {"__init__"}) & shape.attributes:
            return None
        inits = shape.methods.get("__init__", [])
        if len(inits) != 1 or not isinstance(inits[0], ast.FunctionDef):
            return None
        init = inits[0]
        params = [*init.args.posonlyargs, *init.args.args]
        if init.decorator_list or not params:
            return None
        this = params[0].arg
        stores: set[int] = set()  # the `self` of each `self.name = ...` in the body
        for statement in init.body:
            if isinstance(statement, ast.Assign):
                for target in statement.targets:
                    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                        stores.add(id(target.value))
        for sub in ast.walk(init):
            if isinstance(sub, ast.Name) and sub.id == this and id(sub) not in stores:
                return None  # `self` read, or rebound: it may be handed on
        for statement in init.body:
            if not isinstance(statement, ast.Assign) or len(statement.targets) != 1:
                continue
            target, value = statement.targets[0], statement.value
            if not isinstance(target, ast.Attribute) or not isinstance(value, ast.Call):
                continue
            if not isinstance(target.value, ast.Name) or target.value.id != this:
                continue
            if target.attr in shape.methods or target.attr in shape.attributes:
                return None  # a property or descriptor of the class may take the value
            callee = self.callee(value)
            if callee is not None and not callee.optional:
                return callee, statement
        return None

    def project_function(self, call: ast.Call) -> FunctionFact | None:
        """The project function or method a call certainly calls (through the index): a
        name imported from the project or a module-level ``def`` of this module,
        ``self.method()``, a method of a receiver of a known project or module class."""
        project = self.project
        if project is None:
            return None
        func = call.func
        where = project_name(self.scopes, project, func, "def")
        if where is not None:
            scope, name = where
            if scope == "global":
                return project.index.function(name)
            return project.module.functions.get(name)
        if isinstance(func, ast.Name) or self.scopes.qualified_name(func) is not None:
            return None
        if not isinstance(func, ast.Attribute):
            return None
        receiver = func.value
        cls = self.classes.method_class(receiver) if isinstance(receiver, ast.Name) else None
        if cls is not None:
            fact = project.index.class_(f"{project.module.name}.{cls.name}")
            return project.index.method(fact, func.attr)
        owner = self.values.type_of(receiver)
        if owner is not None and owner.kind == "project":
            return project.index.method(owner.project, func.attr)
        if owner is not None and owner.kind == "local":
            fact = project.index.class_(f"{project.module.name}.{owner.name}")
            return project.index.method(fact, func.attr)
        return None

    def _may_be_coroutine_method(self, name: str) -> bool:
        """Could a method of this name be a coroutine on any class a receiver can be known to
        be: a library class, a class of this module, a class of the project? (Most method
        calls are ruled out by their name, before their receiver is looked at.) When the
        project has none so named, the file's result depends on that staying so: recorded
        for the results cache."""
        if name in LIBRARY_METHOD_NAMES or name in self._module_async_names:
            return True
        project = self.project
        if project is None:
            return False
        if name in project.index.coroutine_names():
            return True
        project.index.passed_over("coroutine", name)
        return False

    def _module_coroutine(self, name: ast.Name) -> Function | None:
        """The module-level ``async def`` that is every binding of ``name``."""
        found = self.scopes.resolve(name)
        if found is None or found[0] is not self.scopes.module:
            return None
        definitions: list[Function] = []
        for binding in found[1]:
            if not is_coroutine_function(binding.node):
                return None
            assert isinstance(binding.node, ast.AsyncFunctionDef)
            definitions.append(binding.node)
        return definitions[-1] if definitions else None

    def _method_callee(
        self, cls: ast.ClassDef, method: str, spelled: str, named: str
    ) -> Callee | None:
        """``cls``'s ``method`` when it is an ``async def`` (its own or inherited)."""
        found = self._own_method(cls, method)
        if isinstance(found, FunctionFact):
            where = f"{shown(found.path)}:{found.line}"
            return Callee(
                spelled, f"`{found.qualified}` is an inherited `async def` method ({where})"
            )
        if found is not None:
            return Callee(spelled, f"`{named}` is an `async def` method at line {found.lineno}")
        return None

    def _lambda_coroutine(self, name: ast.Name) -> Callee | None:
        """``name`` is bound once, to ``lambda ...: f(...)`` where ``f`` is a coroutine
        function: calling it makes that coroutine."""
        found = self.scopes.resolve(name)
        if found is None or len(found[1]) != 1:
            return None
        scope, (binding,) = found
        if name.id in scope.declared_global or name.id in scope.declared_nonlocal:
            return None
        value = binding.value
        if binding.kind != "assign" or not isinstance(value, ast.Lambda):
            return None
        body = value.body
        return self.callee(body) if isinstance(body, ast.Call) else None

    def _awaitable_callable_param(self, name: ast.Name) -> ast.expr | None:
        """The annotation when ``name`` is a parameter of the function it is read in,
        annotated ``Callable[..., Awaitable[...]]`` (calling it makes a coroutine)."""
        scope = self.scopes.scope_of(name)
        function = function_scope(scope)
        if scope is None or function is None:
            return None
        found = self.scopes.lookup(name.id, scope)
        if found is None or found[0] is not function or len(found[1]) != 1:
            return None
        param = found[1][0].node
        if not isinstance(param, ast.arg) or param.annotation is None:
            return None
        annotation = param.annotation
        return annotation if self.values.is_awaitable_callable(annotation) else None

    def _awaitable_callable_local(self, name: ast.Name) -> ast.Attribute | None:
        """``name`` is a local of the function it is read in, bound once, to
        ``self.<attribute>`` where every value that attribute gets is an async callback
        (``handler = self._handler`` before ``if handler: handler(event)``)."""
        if not self._mentions_awaitable:
            return None
        scope = self.scopes.scope_of(name)
        function = function_scope(scope)
        if scope is None or function is None:
            return None
        found = self.scopes.lookup(name.id, scope)
        if found is None or found[0] is not function or len(found[1]) != 1:
            return None
        value = found[1][0].value
        if found[1][0].kind != "assign" or not isinstance(value, ast.Attribute):
            return None
        receiver = value.value
        cls = self.classes.method_class(receiver) if isinstance(receiver, ast.Name) else None
        if cls is None or not self.values.is_awaitable_callable_attribute(cls, value.attr):
            return None
        return value

    def _own_method(self, cls: ast.ClassDef, method: str) -> Function | FunctionFact | None:
        """The ``async def`` that ``self.method`` of ``cls`` is: in this module, or (through
        the project index) in a base class of another module."""
        shape = self.classes.shape(cls)
        if shape is None:
            return None
        definitions = self.classes.lookup_method(shape, method)
        if definitions is None:
            return self._inherited(cls, method)
        if not definitions or not all(is_coroutine_function(d) for d in definitions):
            return None
        return definitions[-1]

    def _inherited(self, cls: ast.ClassDef, method: str) -> FunctionFact | None:
        project = self.project
        if project is None:
            return None
        fact = project.index.class_(f"{project.module.name}.{cls.name}")
        found = project.index.method(fact, method) if fact is not None else None
        return found if found is not None and found.is_coroutine else None


def project_name(
    scopes: Scopes, project: Project, func: ast.expr, kind: str
) -> tuple[str, str] | None:
    """Where ``func`` points in the project: ("global", "pkg.mod.name") through an import,
    or ("local", "name") for a module-level name bound only by ``kind`` statements ("def" or
    "class") and not ambiguous in the index."""
    qualified = scopes.qualified_name(func)
    if qualified is not None:
        target = project.absolute(qualified)
        return ("global", target) if target else None
    if not isinstance(func, ast.Name):
        return None
    found = scopes.resolve(func)
    if found is None or found[0] is not scopes.module or func.id in project.module.ambiguous:
        return None
    if all(binding.kind == kind for binding in found[1]):
        return "local", func.id
    return None
