"""Scopes and bindings of one module, on the stdlib ``ast`` tree, built in one traversal.

The first layer of the semantic model (``../shared/design/semantic.md``): every scope
(module, class, function, lambda, comprehension) with the names bound directly in it, its
``global``/``nonlocal`` declarations, and for every name that is read, the scope it is read
in. Lookups follow Python's rules as far as the rules need them:

- a name bound anywhere in a function (or lambda, or comprehension) is local to it unless it
  is declared ``global`` or ``nonlocal``;
- a function does not see the names of the class body it is defined in;
- a comprehension's first iterable, a function's defaults, decorators and annotations and a
  class's bases are evaluated in the enclosing scope; a walrus in a comprehension binds in the
  nearest enclosing scope that is not a comprehension;
- otherwise the enclosing functions, then the module, then builtins.

``qualified_name`` answers what a name or dotted attribute refers to through imports
(``t.sleep`` -> ``time.sleep`` after ``import time as t``): only when every binding the name
has in its scope is the same import.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from asyncfix.analysis.uses import CHECKER_BUILTINS

#: the builtins, and what type checkers take for builtins (``reveal_type``)
BUILTINS = frozenset(dir(builtins)) | CHECKER_BUILTINS

ScopeNode = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass(frozen=True)
class Binding:
    #: "import" | "def" | "class" | "assign" | "param" | "other"
    kind: str
    #: the node that binds: the Import/ImportFrom, FunctionDef, ClassDef, arg, or target Name
    node: ast.AST
    #: for imports: the dotted name bound ("time", "time.sleep")
    qualified: str | None = None
    #: for ``name = value`` with one target: the value
    value: ast.expr | None = None


@dataclass(eq=False)
class Scope:
    #: "module" | "class" | "function" | "lambda" | "comprehension"
    kind: str
    node: ast.AST
    parent: Scope | None
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    declared_global: set[str] = field(default_factory=set)
    declared_nonlocal: set[str] = field(default_factory=set)

    def bind(self, name: str, binding: Binding) -> None:
        self.bindings.setdefault(name, []).append(binding)

    def chain(self) -> Iterator[Scope]:
        """This scope, then the ones a lookup from here may reach (class bodies skipped above
        the first)."""
        scope: Scope | None = self
        first = True
        while scope is not None:
            if first or scope.kind != "class":
                yield scope
            first = False
            scope = scope.parent


class Scopes:
    """The scopes of one module and where each name is read."""

    def __init__(self, tree: ast.Module, module: str | None = None) -> None:
        #: the module's dotted name, to make relative imports absolute (None: left relative)
        self.module_name = module
        self.module = Scope("module", tree, None)
        #: the scope each scope node opens, by id
        self.opened: dict[int, Scope] = {id(tree): self.module}
        #: the scope every Name (load, store or del) is evaluated in, by id
        self.where: dict[int, Scope] = {}
        #: the parent of every node, by id (the module has none)
        self.parents: dict[int, ast.AST] = {}
        #: the nodes of each type, in the order of the traversal (the source's, mostly)
        self.by_type: dict[type, list[ast.AST]] = {}
        self._qualified: dict[int, str | None] = {}
        builder = _Builder(self)
        builder.stack.append(tree)
        builder.visit_body(tree.body, self.module)

    # -- questions -----------------------------------------------------------------------

    def scope_of(self, node: ast.AST) -> Scope | None:
        """The scope a Name is evaluated in, or the scope a def/class/lambda/comprehension
        opens."""
        return self.where.get(id(node)) or self.opened.get(id(node))

    def lookup(self, name: str, scope: Scope) -> tuple[Scope, list[Binding]] | None:
        """The scope that binds ``name`` as seen from ``scope``, and its bindings there; None
        for a builtin or an unbound name."""
        for current in scope.chain():
            if name in current.declared_global:
                return self._in_module(name)
            if name in current.declared_nonlocal:
                continue
            if name in current.bindings:
                return current, current.bindings[name]
        return None

    def _in_module(self, name: str) -> tuple[Scope, list[Binding]] | None:
        found = self.module.bindings.get(name)
        return (self.module, found) if found else None

    def resolve(self, node: ast.Name) -> tuple[Scope, list[Binding]] | None:
        scope = self.where.get(id(node))
        return None if scope is None else self.lookup(node.id, scope)

    def qualified_name(self, expr: ast.AST) -> str | None:
        """``time.sleep`` for ``t.sleep`` after ``import time as t``; ``builtins.print`` for
        an unshadowed ``print``; None when the name is not bound by imports alone."""
        key = id(expr)
        if key not in self._qualified:
            self._qualified[key] = self._qualify(expr)
        return self._qualified[key]

    def qualified_name_at(self, expr: ast.AST, scope: Scope) -> str | None:
        """``qualified_name`` of an expression read in ``scope``: one that is not part of
        the tree (the text of a string annotation, parsed), or looked up from elsewhere."""
        if isinstance(expr, ast.Attribute):
            base = self.qualified_name_at(expr.value, scope)
            return f"{base}.{expr.attr}" if base is not None else None
        if not isinstance(expr, ast.Name):
            return None
        return self._imported(expr.id, self.lookup(expr.id, scope))

    def _qualify(self, expr: ast.AST) -> str | None:
        if isinstance(expr, ast.Attribute):
            base = self.qualified_name(expr.value)
            return f"{base}.{expr.attr}" if base is not None else None
        if not isinstance(expr, ast.Name):
            return None
        return self._imported(expr.id, self.resolve(expr))

    def _imported(self, name: str, found: tuple[Scope, list[Binding]] | None) -> str | None:
        if found is None:
            if name in BUILTINS and "*" not in self.module.bindings:
                return f"builtins.{name}"
            return None
        _, bindings = found
        names = {b.qualified for b in bindings if b.kind == "import"}
        if len(names) != 1 or any(b.kind != "import" for b in bindings):
            return None
        return names.pop()


class _Builder:
    """One traversal: opens scopes, records bindings and where every name is evaluated."""

    def __init__(self, scopes: Scopes) -> None:
        self.scopes = scopes
        #: the nodes from the module down to the one being visited
        self.stack: list[ast.AST] = []
        self._methods: dict[type, Callable[[Any, Scope], None] | None] = {}

    def open(self, kind: str, node: ast.AST, parent: Scope) -> Scope:
        scope = Scope(kind, node, parent)
        self.scopes.opened[id(node)] = scope
        return scope

    def visit_body(self, body: Iterable[ast.AST], scope: Scope) -> None:
        for node in body:
            self.visit(node, scope)

    def visit(self, node: ast.AST, scope: Scope) -> None:
        kind = type(node)
        scopes = self.scopes
        stack = self.stack
        scopes.parents[id(node)] = stack[-1]
        nodes = scopes.by_type.get(kind)
        if nodes is None:
            scopes.by_type[kind] = [node]
        else:
            nodes.append(node)
        try:
            method = self._methods[kind]
        except KeyError:
            method = self._methods[kind] = getattr(self, f"visit_{kind.__name__}", None)
        stack.append(node)
        if method is not None:
            method(node, scope)
        else:
            self.generic(node, scope)
        stack.pop()

    def generic(self, node: ast.AST, scope: Scope) -> None:
        # `ast.iter_child_nodes`, inlined (this runs for most nodes of every file); the
        # `Load`/`Store` markers are not visited
        for name in node._fields:
            if name == "ctx":
                continue
            value = getattr(node, name, None)
            if type(value) is list:
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item, scope)
            elif isinstance(value, ast.AST):
                self.visit(value, scope)

    # -- names ---------------------------------------------------------------------------

    def visit_Name(self, node: ast.Name, scope: Scope) -> None:
        self.scopes.where[id(node)] = scope
        if isinstance(node.ctx, ast.Store):
            scope.bind(node.id, Binding("assign", node))
        elif isinstance(node.ctx, ast.Del):
            scope.bind(node.id, Binding("other", node))

    def visit_Global(self, node: ast.Global, scope: Scope) -> None:
        scope.declared_global.update(node.names)

    def visit_Nonlocal(self, node: ast.Nonlocal, scope: Scope) -> None:
        scope.declared_nonlocal.update(node.names)

    def visit_Assign(self, node: ast.Assign, scope: Scope) -> None:
        self.visit(node.value, scope)
        single = len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        for target in node.targets:
            if single and isinstance(target, ast.Name):
                self.scopes.where[id(target)] = scope
                scope.bind(target.id, Binding("assign", target, value=node.value))
            else:
                self.visit(target, scope)

    def visit_AnnAssign(self, node: ast.AnnAssign, scope: Scope) -> None:
        self.visit(node.annotation, scope)
        if node.value is not None:
            self.visit(node.value, scope)
        if isinstance(node.target, ast.Name):
            self.scopes.where[id(node.target)] = scope
            if node.value is not None:
                scope.bind(node.target.id, Binding("assign", node.target, value=node.value))
            elif scope.kind != "class":
                # ``x: int`` alone makes x local to a function, bound or not
                scope.bind(node.target.id, Binding("other", node.target))
        else:
            self.visit(node.target, scope)

    def visit_AugAssign(self, node: ast.AugAssign, scope: Scope) -> None:
        self.visit(node.value, scope)
        if isinstance(node.target, ast.Name):
            self.scopes.where[id(node.target)] = scope
            scope.bind(node.target.id, Binding("other", node.target))
        else:
            self.visit(node.target, scope)

    def visit_NamedExpr(self, node: ast.NamedExpr, scope: Scope) -> None:
        self.visit(node.value, scope)
        target = scope
        while target.kind == "comprehension" and target.parent is not None:
            target = target.parent
        self.scopes.where[id(node.target)] = target
        target.bind(node.target.id, Binding("assign", node.target, value=node.value))

    # -- imports -------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import, scope: Scope) -> None:
        for alias in node.names:
            if alias.asname:
                scope.bind(alias.asname, Binding("import", node, alias.name))
            else:
                first = alias.name.split(".")[0]
                scope.bind(first, Binding("import", node, first))

    def visit_ImportFrom(self, node: ast.ImportFrom, scope: Scope) -> None:
        base = self._absolute(node)
        for alias in node.names:
            if alias.name == "*":
                scope.bind("*", Binding("import", node, f"{base.rstrip('.')}.*"))
                continue
            qualified = f"{base}{alias.name}" if base.endswith(".") else f"{base}.{alias.name}"
            scope.bind(alias.asname or alias.name, Binding("import", node, qualified))

    def _absolute(self, node: ast.ImportFrom) -> str:
        module = node.module or ""
        if not node.level:
            return module
        package = self.scopes.module_name
        if package is None:
            return "." * node.level + module
        parts = package.split(".")
        # a module's own package is its name minus the last part (``__init__`` aside)
        parts = parts[: max(0, len(parts) - node.level)]
        return ".".join([*parts, module] if module else parts)

    # -- definitions ---------------------------------------------------------------------

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator, scope)
        self._arguments_outside(node.args, scope)
        if node.returns is not None:
            self.visit(node.returns, scope)
        scope.bind(node.name, Binding("def", node))
        inner = self.open("function", node, scope)
        self._parameters(node.args, inner)
        self.visit_body(node.body, inner)

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Lambda(self, node: ast.Lambda, scope: Scope) -> None:
        self._arguments_outside(node.args, scope)
        inner = self.open("lambda", node, scope)
        self._parameters(node.args, inner)
        self.visit(node.body, inner)

    def _arguments_outside(self, args: ast.arguments, scope: Scope) -> None:
        """Defaults and annotations are evaluated where the function is defined."""
        for default in [*args.defaults, *args.kw_defaults]:
            if default is not None:
                self.visit(default, scope)
        for arg in _all_args(args):
            if arg.annotation is not None:
                self.visit(arg.annotation, scope)

    def _parameters(self, args: ast.arguments, inner: Scope) -> None:
        for arg in _all_args(args):
            inner.bind(arg.arg, Binding("param", arg))

    def visit_ClassDef(self, node: ast.ClassDef, scope: Scope) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr, scope)
        scope.bind(node.name, Binding("class", node))
        inner = self.open("class", node, scope)
        self.visit_body(node.body, inner)

    def _comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp, scope: Scope
    ) -> None:
        generators = node.generators
        inner = self.open("comprehension", node, scope)
        stack = self.stack
        for index, generator in enumerate(generators):
            self.scopes.parents[id(generator)] = node
            stack.append(generator)
            self.visit(generator.iter, inner if index else scope)  # the first: outside
            self.visit(generator.target, inner)
            for condition in generator.ifs:
                self.visit(condition, inner)
            stack.pop()
        if isinstance(node, ast.DictComp):
            self.visit(node.key, inner)
            self.visit(node.value, inner)
        else:
            self.visit(node.elt, inner)

    visit_ListComp = _comprehension
    visit_SetComp = _comprehension
    visit_DictComp = _comprehension
    visit_GeneratorExp = _comprehension

    # -- other binders -------------------------------------------------------------------

    def visit_ExceptHandler(self, node: ast.ExceptHandler, scope: Scope) -> None:
        if node.type is not None:
            self.visit(node.type, scope)
        if node.name:
            scope.bind(node.name, Binding("other", node))
        self.visit_body(node.body, scope)

    def visit_MatchAs(self, node: ast.MatchAs, scope: Scope) -> None:
        if node.pattern is not None:
            self.visit(node.pattern, scope)
        if node.name:
            scope.bind(node.name, Binding("other", node))

    def visit_MatchStar(self, node: ast.MatchStar, scope: Scope) -> None:
        if node.name:
            scope.bind(node.name, Binding("other", node))

    def visit_MatchMapping(self, node: ast.MatchMapping, scope: Scope) -> None:
        self.generic(node, scope)
        if node.rest:
            scope.bind(node.rest, Binding("other", node))


def _all_args(args: ast.arguments) -> list[ast.arg]:
    found = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    if args.vararg is not None:
        found.append(args.vararg)
    if args.kwarg is not None:
        found.append(args.kwarg)
    return found
