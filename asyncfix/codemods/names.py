"""Name resolution for rules: what a name is bound to, without LibCST's scope analysis.

LibCST's ScopeProvider and QualifiedNameProvider compute facts for every node of a file,
which costs several times the parse itself. Rules only ask about a few names (the callee
of a candidate call, a receiver, a local), so bindings are collected lazily, once per scope
(module or function) that is actually asked about, by one walk of that scope's statements.

Python's rules, as far as the rules need them: a name bound anywhere in a function is local
to it (unless declared ``global``/``nonlocal``); a function does not see its class's names;
otherwise the enclosing functions, then the module, then builtins.
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import libcst as cst

from asyncfix.codemods.walk import walk

BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True)
class Binding:
    #: "import" | "def" | "class" | "assign" | "param" | "other"
    kind: str
    #: the binding statement: Import/ImportFrom, FunctionDef, ClassDef, Param, or the target Name
    node: cst.CSTNode
    #: for imports: the dotted name bound ("time", "time.sleep")
    qualified: str | None = None
    #: for ``name = value`` with a single target: the value
    value: cst.BaseExpression | None = None


@dataclass
class ScopeBindings:
    bound: dict[str, list[Binding]] = field(default_factory=dict)
    declared_global: set[str] = field(default_factory=set)
    declared_nonlocal: set[str] = field(default_factory=set)

    def add(self, name: str, binding: Binding) -> None:
        self.bound.setdefault(name, []).append(binding)


class _Collector:
    """Bindings made directly in one scope; nested functions/classes/lambdas/comprehensions
    contribute only their own name. ``visit_X`` returns False to skip the node's subtree."""

    def __init__(self, root: cst.CSTNode, out: ScopeBindings) -> None:
        self.root = root
        self.out = out

    def run(self) -> None:
        walk(self.root, self.visit)

    def visit(self, node: cst.CSTNode) -> bool:
        handler = getattr(self, f"visit_{type(node).__name__}", None)
        return handler is None or handler(node) is not False

    # nested scopes: record the name they bind here, do not descend
    def _nested(self, node: cst.CSTNode) -> bool:
        return node is self.root

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        if node is not self.root:
            self.out.add(node.name.value, Binding("def", node))
        return self._nested(node)

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        if node is not self.root:
            self.out.add(node.name.value, Binding("class", node))
        return self._nested(node)

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return self._nested(node)

    def visit_ListComp(self, node: cst.ListComp) -> bool:
        self._walrus_targets(node)
        return self._nested(node)

    def visit_SetComp(self, node: cst.SetComp) -> bool:
        self._walrus_targets(node)
        return self._nested(node)

    def visit_DictComp(self, node: cst.DictComp) -> bool:
        self._walrus_targets(node)
        return self._nested(node)

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> bool:
        self._walrus_targets(node)
        return self._nested(node)

    def _walrus_targets(self, node: cst.CSTNode) -> None:
        for walrus in _find(node, cst.NamedExpr):
            self._targets(walrus.target, "assign")

    # no binding happens inside these
    def visit_Attribute(self, node: cst.Attribute) -> bool:
        return False

    def visit_Call(self, node: cst.Call) -> bool:
        return any(_has_walrus(arg.value) for arg in node.args)

    # bindings
    def visit_Param(self, node: cst.Param) -> None:
        self.out.add(node.name.value, Binding("param", node))

    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            dotted = dotted_name(alias.name)
            if dotted is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.out.add(alias.asname.name.value, Binding("import", node, dotted))
            else:
                top = dotted.split(".", 1)[0]
                self.out.add(top, Binding("import", node, top))
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        if isinstance(node.names, cst.ImportStar):
            self.out.add("*", Binding("import", node))
            return False
        module = dotted_name(node.module) if node.module is not None else ""
        prefix = "." * len(node.relative) + (module or "")
        for alias in node.names:
            name = dotted_name(alias.name)
            if name is None:
                continue
            bound = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                bound = alias.asname.name.value
            separator = "" if prefix.endswith(".") else "."
            self.out.add(bound, Binding("import", node, f"{prefix}{separator}{name}"))
        return False

    def visit_Assign(self, node: cst.Assign) -> None:
        single = len(node.targets) == 1
        for target in node.targets:
            self._targets(target.target, "assign", node.value if single else None)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._targets(node.target, "assign", node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._targets(node.target, "other")

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._targets(node.target, "assign", node.value)

    def visit_For(self, node: cst.For) -> None:
        self._targets(node.target, "other")

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self._targets(node.asname.name, "other")

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name is not None:
            self._targets(node.name.name, "other")

    def visit_Del(self, node: cst.Del) -> None:
        self._targets(node.target, "other")

    def visit_MatchAs(self, node: cst.MatchAs) -> None:
        if node.name is not None:
            self._targets(node.name, "other")

    def visit_MatchStar(self, node: cst.MatchStar) -> None:
        if node.name is not None:
            self._targets(node.name, "other")

    def visit_Global(self, node: cst.Global) -> None:
        self.out.declared_global.update(item.name.value for item in node.names)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        self.out.declared_nonlocal.update(item.name.value for item in node.names)

    def _targets(
        self, target: cst.CSTNode, kind: str, value: cst.BaseExpression | None = None
    ) -> None:
        if isinstance(target, cst.Name):
            self.out.add(target.value, Binding(kind, target, None, value))
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._targets(element.value, "other")
        elif isinstance(target, cst.StarredElement):
            self._targets(target.value, "other")


def bindings_in(node: cst.CSTNode) -> ScopeBindings:
    """The names ``node``'s subtree binds in the scope it belongs to (nested scopes contribute
    their own name only), and what it declares ``global``/``nonlocal``."""
    out = ScopeBindings()
    _Collector(node, out).run()
    return out


def flatten_target(target: cst.BaseExpression) -> list[cst.BaseExpression]:
    """An assignment target and, for ``a, (b, *c) = ...``, every element inside it."""
    if isinstance(target, (cst.Tuple, cst.List)):
        out: list[cst.BaseExpression] = [target]
        for element in target.elements:
            out.extend(flatten_target(element.value))
        return out
    if isinstance(target, cst.StarredElement):
        return flatten_target(target.value)
    return [target]


def dotted_name(node: cst.CSTNode) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr.value}" if base is not None else None
    return None


def _find(node: cst.CSTNode, kind: type[cst.NamedExpr]) -> Iterator[cst.NamedExpr]:
    """Nodes of ``kind`` in ``node``, not looking into nested functions, lambdas or classes."""
    found: list[cst.NamedExpr] = []

    def visit(child: cst.CSTNode) -> bool:
        if isinstance(child, kind):
            found.append(child)
        return child is node or not isinstance(child, (cst.FunctionDef, cst.Lambda, cst.ClassDef))

    walk(node, visit)
    return iter(found)


def _has_walrus(node: cst.CSTNode) -> bool:
    return any(True for _ in _find(node, cst.NamedExpr))


def identifiers(node: cst.CSTNode) -> Counter[str]:
    """How often each identifier occurs in ``node`` (attribute and keyword names excluded)."""
    counts: Counter[str] = Counter()

    def count(child: cst.CSTNode) -> bool:
        if isinstance(child, cst.Name):
            counts[child.value] += 1
        elif isinstance(child, cst.Attribute):
            walk(child.value, count)  # the attribute's own name is not an identifier
            return False
        elif isinstance(child, cst.Arg):
            walk(child.value, count)  # nor is a keyword argument's name
            return False
        return True

    walk(node, count)
    return counts


def reads(node: cst.CSTNode) -> Counter[str]:
    """How often each identifier is read in ``node``: :func:`identifiers` without the names
    that are only assigned (``x = ...``, ``for x in``, ``with ... as x``, ``def x``, imports)."""
    counts = identifiers(node)
    stores: Counter[str] = Counter()

    def store(target: cst.CSTNode) -> None:
        if isinstance(target, cst.Name):
            stores[target.value] += 1
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                store(element.value)
        elif isinstance(target, cst.StarredElement):
            store(target.value)

    def visit(child: cst.CSTNode) -> bool:
        if isinstance(child, cst.Assign):
            for target in child.targets:
                store(target.target)
        elif isinstance(child, (cst.AnnAssign, cst.For, cst.NamedExpr, cst.CompFor)):
            if not isinstance(child, cst.AnnAssign) or child.value is not None:
                store(child.target)
        elif isinstance(child, cst.WithItem) and child.asname is not None:
            store(child.asname.name)
        elif isinstance(child, cst.ExceptHandler) and child.name is not None:
            store(child.name.name)
        elif isinstance(child, (cst.FunctionDef, cst.ClassDef)):
            store(child.name)
        elif isinstance(child, (cst.Import, cst.ImportFrom)):
            for name in bindings_in(child).bound:
                stores[name] += counts[name] and 1
            return False
        return True

    walk(node, visit)
    return counts - stores


class Resolver:
    """Answers "what is this name bound to here" for one module, caching per scope."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self._cache: dict[int, ScopeBindings] = {}
        self._occurrences: dict[int, Counter[str]] = {}
        self._qualified: dict[tuple[int, int], str | None] = {}

    def occurrences(self, scope: cst.CSTNode) -> Counter[str]:
        """Identifier counts in ``scope``'s whole subtree, nested scopes included."""
        key = id(scope)
        if key not in self._occurrences:
            self._occurrences[key] = identifiers(scope)
        return self._occurrences[key]

    def bindings(self, scope: cst.Module | cst.FunctionDef | cst.ClassDef) -> ScopeBindings:
        key = id(scope)
        found = self._cache.get(key)
        if found is None:
            found = ScopeBindings()
            if isinstance(scope, cst.FunctionDef):
                # parameters and their defaults/annotations belong to the function
                _Collector(scope.params, found).run()
                _Collector(scope.body, found).run()
            elif isinstance(scope, cst.ClassDef):
                _Collector(scope.body, found).run()
            else:
                _Collector(scope, found).run()
            self._cache[key] = found
        return found

    def lookup(
        self, name: str, scopes: Sequence[cst.CSTNode]
    ) -> tuple[cst.CSTNode, list[Binding]] | None:
        """The scope that binds ``name`` as seen from the innermost of ``scopes`` (outermost
        first: the module, then classes and functions) and its bindings there; None for a
        builtin or an unbound name."""
        innermost = len(scopes) - 1
        for index in range(innermost, -1, -1):
            scope = scopes[index]
            if isinstance(scope, cst.ClassDef) and index != innermost:
                continue  # a function does not see the names of its class body
            if not isinstance(scope, (cst.Module, cst.FunctionDef, cst.ClassDef)):
                continue
            bound = self.bindings(scope)
            if name in bound.declared_global:
                return self._module_lookup(name)
            if name in bound.bound and name not in bound.declared_nonlocal:
                return scope, bound.bound[name]
        return self._module_lookup(name)

    def _module_lookup(self, name: str) -> tuple[cst.CSTNode, list[Binding]] | None:
        bound = self.bindings(self.module)
        if name in bound.bound:
            return self.module, bound.bound[name]
        return None

    def qualified_name(self, expr: cst.CSTNode, scopes: Sequence[cst.CSTNode]) -> str | None:
        """``time.sleep`` for ``t.sleep`` after ``import time as t``; ``builtins.print`` for an
        unshadowed ``print``; None when the name is not bound by imports alone."""
        # the answer depends on where the name is looked up from (a function's own imports
        # are not seen from the module): the innermost scope is part of the key
        key = (id(expr), id(scopes[-1]) if scopes else 0)
        if key not in self._qualified:
            self._qualified[key] = self._qualify(expr, scopes)
        return self._qualified[key]

    def _qualify(self, expr: cst.CSTNode, scopes: Sequence[cst.CSTNode]) -> str | None:
        if isinstance(expr, cst.Attribute):
            base = self.qualified_name(expr.value, scopes)
            return f"{base}.{expr.attr.value}" if base is not None else None
        if not isinstance(expr, cst.Name):
            return None
        found = self.lookup(expr.value, scopes)
        if found is None:
            star = self.bindings(self.module).bound.get("*")
            if expr.value in BUILTINS and not star:
                return f"builtins.{expr.value}"
            return None
        _, bindings = found
        names = {b.qualified for b in bindings if b.kind == "import"}
        if len(names) != 1 or any(b.kind != "import" for b in bindings):
            return None
        return names.pop()
