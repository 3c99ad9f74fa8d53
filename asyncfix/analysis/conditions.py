"""Conditions the module decides by itself: ``if x is None:`` after ``x = None``,
``type(x) == int`` after ``x = int(5)``, ``if enabled():`` where ``enabled`` is ``return
True``.

``Conditions.truth(test)`` is True or False when the test has that outcome on every run,
None when it cannot tell. It reads only what is certain: a function's locals bound once (and
read in that function, not a nested one) to a constant, a builtin constructor's call, a call
of one of the module's classes that has no bases, or a ``def``; module functions whose whole
body is ``return <constant>``. Module-level names are not read (a test may patch them). A
branch a condition rules out holds no path (the value flow) and no finding (AF101, AF102):
``dead(node)``."""

from __future__ import annotations

import ast

from asyncfix.analysis.scopes import Binding, Scopes
from asyncfix.analysis.values import Values

#: builtin constructors whose call makes an instance of exactly that builtin
_CONSTRUCTORS = frozenset(
    {"int", "float", "complex", "str", "bytes", "bool", "list", "tuple", "dict", "set"}
)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.Module)
#: what a value is, for ``type(x) == T`` and ``is None``: ("builtins.int"), ("class", node),
#: ("function",), ("none",)
Kind = tuple[object, ...]


class Conditions:
    def __init__(self, scopes: Scopes, values: Values) -> None:
        self.scopes = scopes
        self.values = values

    def truth(self, test: ast.expr, depth: int = 0) -> bool | None:
        if depth > 8:
            return None
        if isinstance(test, ast.Constant):
            return bool(test.value)
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            inner = self.truth(test.operand, depth + 1)
            return None if inner is None else not inner
        if isinstance(test, ast.BoolOp):
            values = [self.truth(v, depth + 1) for v in test.values]
            stop = isinstance(test.op, ast.Or)  # `or` stops at a true operand, `and` at a false one
            for value in values:
                if value is stop:
                    return stop
                if value is None:
                    return None
            return not stop
        if isinstance(test, ast.Name):
            kind = self._kind(test)
            if kind is None:
                return None
            if kind[0] == "none":
                return False
            if kind[0] in ("class", "function"):
                return True if kind[0] == "function" or not _defines_truth(kind[1]) else None
            if kind[0] == "constant":
                return bool(kind[1])
            return None
        if isinstance(test, ast.Call):
            return self._constant_call(test)
        if isinstance(test, ast.Compare) and len(test.ops) == 1:
            return self._compare(test.left, test.ops[0], test.comparators[0])
        return None

    def dead(self, node: ast.AST) -> bool:
        """``node`` is in a branch a decided condition rules out (of ``if``, ``while``, or
        ``a if c else b``), within its function."""
        parents = self.scopes.parents
        child: ast.AST = node
        parent = parents.get(id(node))
        while parent is not None and not isinstance(parent, _SCOPES):
            if isinstance(parent, (ast.If, ast.While, ast.IfExp)) and child is not parent.test:
                in_body = (
                    child is parent.body
                    if isinstance(parent, ast.IfExp)
                    else any(child is s for s in parent.body)
                )
                truth = self.truth(parent.test)
                if truth is not None and truth is not in_body:
                    return True
            child, parent = parent, parents.get(id(parent))
        return False

    # -- comparisons ---------------------------------------------------------------------

    def _compare(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> bool | None:
        if isinstance(op, (ast.Is, ast.IsNot)) and _is_none(right):
            kind = self._kind(left) if isinstance(left, ast.Name) else None
            if kind is None:
                return None
            answer = kind[0] == "none"
            return answer if isinstance(op, ast.Is) else not answer
        if isinstance(op, (ast.Eq, ast.Is, ast.NotEq, ast.IsNot)):
            same = self._same_type(left, right)
            if same is None and isinstance(left, ast.Name) and isinstance(right, ast.Name):
                same = self._same_instance(left, right, op)
            if same is None:
                return None
            return same if isinstance(op, (ast.Eq, ast.Is)) else not same
        return None

    def _same_type(self, left: ast.expr, right: ast.expr) -> bool | None:
        """``type(x) == T``: whether x's class is T, when both are known."""
        if not (
            isinstance(left, ast.Call)
            and self.scopes.qualified_name(left.func) == "builtins.type"
            and len(left.args) == 1
            and not left.keywords
            and isinstance(left.args[0], ast.Name)
        ):
            return None
        kind = self._kind(left.args[0])
        if kind is None or kind[0] == "none":
            return None
        named = self._named_type(right)
        if named is None:
            return None
        if kind[0] == "constant":
            return named == f"builtins.{type(kind[1]).__name__}"
        if kind[0] == "builtin":
            return named == kind[1]
        if kind[0] == "function":
            return named == "types.FunctionType"
        if kind[0] == "class":
            return named == ("class", id(kind[1]))
        return None

    def _named_type(self, node: ast.expr) -> object:
        qualified = self.scopes.qualified_name(node)
        if qualified is not None:
            return qualified
        cls = self._module_class(node) if isinstance(node, ast.Name) else None
        return ("class", id(cls)) if cls is not None else None

    def _same_instance(self, left: ast.Name, right: ast.Name, op: ast.cmpop) -> bool | None:
        """``x is y`` (or ``x == y`` of a class with the default ``__eq__``) for two names
        bound to two calls of one of the module's classes: never the same object."""
        first = self._binding(left)
        second = self._binding(right)
        if first is None or second is None or first is second:
            return None
        kinds = [self._kind_of(b) for b in (first, second)]
        if any(k is None or k[0] != "class" for k in kinds):
            return None
        if isinstance(op, (ast.Eq, ast.NotEq)) and any(
            _defines_eq(k[1]) for k in kinds if k is not None
        ):
            return None
        return False

    # -- what a name is ------------------------------------------------------------------

    def _binding(self, name: ast.Name) -> Binding | None:
        found = self.scopes.resolve(name)
        if found is None or len(found[1]) != 1:
            return None
        scope, (binding,) = found
        if scope.kind == "module" and binding.kind == "def":
            return binding if name.id not in self.values.global_names() else None
        if scope.kind != "function" or self.scopes.scope_of(name) is not scope:
            return None  # a module name (a test may patch it), or read in a nested function
        if name.id in scope.declared_global or name.id in scope.declared_nonlocal:
            return None
        return binding

    def _kind(self, name: ast.Name) -> Kind | None:
        binding = self._binding(name)
        return self._kind_of(binding) if binding is not None else None

    def _kind_of(self, binding: Binding) -> Kind | None:
        if binding.kind == "def" and isinstance(
            binding.node, ast.FunctionDef | ast.AsyncFunctionDef
        ):
            return ("function",) if not binding.node.decorator_list else None
        if binding.kind != "assign":
            return None
        value = binding.value
        if isinstance(value, ast.Constant):
            return ("none",) if value.value is None else ("constant", value.value)
        if isinstance(value, ast.Call):
            qualified = self.scopes.qualified_name(value.func) or ""
            if qualified.startswith("builtins.") and qualified[len("builtins.") :] in _CONSTRUCTORS:
                return ("builtin", qualified)
            cls = self._module_class(value.func) if isinstance(value.func, ast.Name) else None
            if cls is not None and not cls.bases and not cls.keywords:
                return ("class", cls)
        return None

    def _module_class(self, name: ast.expr) -> ast.ClassDef | None:
        """The module's class ``name`` names (``Values.class_named``)."""
        scope = self.scopes.scope_of(name) if isinstance(name, ast.Name) else None
        named = self.values.class_named(name, scope) if scope is not None else None
        if named is None or named.kind != "local" or named.local is None:
            return None
        return named.local.node

    def _constant_call(self, call: ast.Call) -> bool | None:
        """``enabled()`` where ``enabled`` is a module-level ``def`` (no decorators) whose
        body, after a docstring, is ``return <constant>``."""
        if call.args or call.keywords or not isinstance(call.func, ast.Name):
            return None
        binding = self._binding(call.func)
        node = binding.node if binding is not None and binding.kind == "def" else None
        if not isinstance(node, ast.FunctionDef) or node.decorator_list:
            return None
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        if len(body) != 1 or not isinstance(body[0], ast.Return):
            return None
        value = body[0].value
        return bool(value.value) if isinstance(value, ast.Constant) else None


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _defines(cls: object, names: frozenset[str]) -> bool:
    assert isinstance(cls, ast.ClassDef)
    for statement in cls.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if statement.name in names:
                return True
        elif not isinstance(statement, (ast.Expr, ast.Pass)):
            return True  # an assignment may bind one: not known
    return False


def _defines_truth(cls: object) -> bool:
    return _defines(cls, frozenset({"__bool__", "__len__"}))


def _defines_eq(cls: object) -> bool:
    return _defines(cls, frozenset({"__eq__", "__ne__"}))
