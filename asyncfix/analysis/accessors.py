"""Lost updates through async accessors (AF401): a value read with an awaited getter, another
``await``, then written back with the matching awaited setter on the same key --

    config = await self.store.get_config(ROOM)
    await self.api.notify(config)
    config["count"] += 1
    await self.store.set_config(ROOM, config)

-- while another function of the same class (or module) does its own read-modify-write of
that key through the same pair. Whatever the other function writes between this one's read
and its write is overwritten with a value computed from the older read. The state lives
behind the accessors (a database, a device, a config API), so the attribute rules cannot see
it; the shape is recognised by the pair instead:

- the getter's name has a ``get``/``read``/``load`` part and the setter's the matching
  ``set``/``write``/``save`` in its place (``async_get_config``/``async_set_config``);
- one receiver, spelled the same and shared: the instance (``self.store``, ``self``) or a
  module-level name the function does not bind; the same key arguments, and the setter's
  one more argument is computed from what the getter returned (through locals);
- an ``await`` of the function's own between the two: something else runs there;
- two or more functions of the class or module do it to the same receiver and key. One
  function alone may be called by one task at a time; two that update one key are the
  shape the bug reports show, and what the shared lock of the fix serialises.

An update made inside ``async with`` of a name or an attribute (a lock, a semaphore; also
the old ``with (await lock):``) is guarded: it is not reported, but it still counts in its
group -- the others race with it unless they take the same lock, and the fix offers a lock
only when it is that one (a fix applied to one member in an earlier round, or a lock the
code already takes in some of them).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from asyncfix.analysis.classes import self_name
from asyncfix.analysis.model import in_order, is_plain_assignment
from asyncfix.analysis.races import (
    NAME_KEY,
    Function,
    Mark,
    Race,
    Races,
    entered_lock,
    lock_spelling,
    names_read,
)
from asyncfix.index import ast_dotted_name

#: a getter's name part and the setter's part that takes its place
PAIRS = {"get": "set", "read": "write", "load": "save"}


def setter_for(getter: str) -> str | None:
    """``async_set_config`` for ``async_get_config``: the first ``get``/``read``/``load``
    part replaced; None when the name has none."""
    parts = getter.split("_")
    for position, part in enumerate(parts):
        if part in PAIRS:
            return "_".join([*parts[:position], PAIRS[part], *parts[position + 1 :]])
    return None


@dataclass(frozen=True)
class Accessor:
    """One read-modify-write through an accessor pair, for the message and the fix."""

    receiver: str
    getter: str
    setter: str
    #: the key arguments (``ROOM``, or empty), compared as the parser reads them
    key: str
    #: the getter's call as written (``self.store.get_config(ROOM)``)
    read: str
    #: the local the value was read into
    local: str
    #: the other functions that update the same key through the pair
    others: tuple[str, ...]
    #: every function of the group (this one too): the lock is taken in each
    group: tuple[str, ...]


@dataclass(frozen=True)
class _Site:
    function: Function
    #: ``self`` of a method, None in a module function
    instance: str | None
    receiver: str
    getter: str
    setter: str
    key: str
    local: str
    read: ast.stmt
    write: ast.stmt
    suspension: ast.Await
    #: the lock an ``async with`` around the update takes (``self._lock``), if any
    guard: str | None


def _key(args: Sequence[ast.expr], keywords: Sequence[ast.keyword] = ()) -> str:
    """Key arguments as one string (positional and keyword)."""
    parts = [ast.unparse(a) for a in args]
    parts.extend(f"{k.arg}={ast.unparse(k.value)}" for k in keywords)
    return ", ".join(parts)


def _accessor_call(node: ast.AST) -> tuple[str, str, ast.Call] | None:
    """``await R.name(...)``: (R as written, name, the call)."""
    if not (
        isinstance(node, ast.Await)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
    ):
        return None
    receiver = ast_dotted_name(node.value.func.value)
    if receiver is None:
        return None
    return receiver, node.value.func.attr, node.value


class AccessorRaces:
    """The module's lost updates through accessor pairs, as AF401 races."""

    def __init__(self, races: Races) -> None:
        self.races = races
        self.model = races.model

    def found(self) -> list[Race]:
        groups: dict[tuple[int, str, str, str], list[_Site]] = defaultdict(list)
        for node in self.model.scopes.by_type.get(ast.AsyncFunctionDef, ()):
            assert isinstance(node, ast.AsyncFunctionDef)
            if not self.races.suspends(node):
                continue
            owner = self._owner(node)
            if owner is None:
                continue
            receiver = self_name(node) if isinstance(owner, ast.ClassDef) else None
            for site in self._sites(node, receiver):
                groups[(id(owner), site.receiver, site.getter, site.key)].append(site)
        races: list[Race] = []
        for sites in groups.values():
            functions = sorted({site.function.name for site in sites})
            if len(functions) < 2:
                continue
            guards = sorted({site.guard for site in sites if site.guard is not None})
            for site in sites:
                if site.guard is not None:
                    continue
                others = tuple(name for name in functions if name != site.function.name)
                accessor = Accessor(
                    site.receiver,
                    site.getter,
                    site.setter,
                    site.key,
                    self.model.source.segment(site.read.value.value),  # type: ignore[attr-defined]
                    site.local,
                    others,
                    tuple(functions),
                )
                state = self._state(site)
                races.append(
                    Race(
                        "AF401",
                        state,
                        site.function,
                        Mark(site.read, 0, frozenset()),
                        site.write,
                        site.suspension,
                        accessor=accessor,
                        unfixable=_other_lock(guards, site, state),
                    )
                )
        return races

    def _owner(self, function: ast.AsyncFunctionDef) -> ast.AST | None:
        """The class a method belongs to, or the module for a module-level function; None
        for a nested function."""
        parent = self.model.scopes.parents.get(id(function))
        if isinstance(parent, ast.ClassDef):
            return parent if self.model.scopes.parents.get(id(parent)) is self.model.tree else None
        return parent if parent is self.model.tree else None

    def _state(self, site: _Site) -> str:
        """What the lock is named after: the receiver's attribute (``store`` for
        ``self.store``), the getter's subject for ``self`` (``config`` for
        ``self.async_get_config``), or the module name."""
        root, _, rest = site.receiver.partition(".")
        if site.instance == root:
            if rest:
                return rest.replace(".", "_")
            parts = [p for p in site.getter.split("_") if p and p not in PAIRS and p != "async"]
            return "_".join(parts) or "state"
        return NAME_KEY + site.receiver.replace(".", "_")

    def _shared(self, receiver: str, function: ast.AsyncFunctionDef, instance: str | None) -> bool:
        """The receiver is the instance (``instance``, a method's ``self``) or a module-level
        variable the function does not bind."""
        root = receiver.partition(".")[0]
        if root == instance:
            return True
        scopes = self.model.scopes
        local = scopes.opened.get(id(function))
        if local is None or root in local.bindings:
            return False
        bindings = scopes.module.bindings.get(root) or []
        return bool(bindings) and all(is_plain_assignment(scopes, b) for b in bindings)

    def _sites(self, function: ast.AsyncFunctionDef, instance: str | None) -> list[_Site]:
        """The read-modify-writes of ``function``: ``x = await R.get(K)``, an ``await``,
        then ``await R.set(K, <from x>)``."""
        awaits = self.races.awaits(function.body)
        found: list[_Site] = []
        for statement in in_order(function.body):
            if not (
                isinstance(statement, ast.Assign)
                and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
            ):
                continue
            called = _accessor_call(statement.value)
            if called is None:
                continue
            receiver, getter, call = called
            setter = setter_for(getter)
            if setter is None or not self._shared(receiver, function, instance):
                continue
            guard = self._guard(statement, function)
            between: ast.Await | None = None
            for later in awaits:
                if _before(later, statement.value):
                    continue  # the getter's own await, or one in its arguments
                written = _accessor_call(later)
                if written is None or written[:2] != (receiver, setter):
                    between = between or later
                    continue
                holder = self._statement_of(later)
                if (
                    between is not None
                    and holder is not None
                    and _key(call.args, call.keywords) == _value_key(written[2])
                    and self._guard(holder, function) == guard
                ):
                    site = _Site(
                        function,
                        instance,
                        receiver,
                        getter,
                        setter,
                        _key(call.args, call.keywords),
                        statement.targets[0].id,
                        statement,
                        holder,
                        between,
                        guard,
                    )
                    if self._written_from_read(site, written[2]):
                        found.append(site)
                break  # the first matching setter after the read decides
        return found

    def _written_from_read(self, site: _Site, setter: ast.Call) -> bool:
        """The setter's value is computed from what the getter returned: it reads the local,
        or a local assigned (between the two) from an expression that does."""
        derived = {site.local}
        for node in in_order(site.function.body):
            if not isinstance(node, ast.Assign):
                continue
            between = _position(site.read) < _position(node) < _position(site.write)
            if between and names_read(node.value) & derived:
                derived.update(t.id for t in node.targets if isinstance(t, ast.Name))
        return bool(names_read(setter.args[-1]) & derived)

    def _statement_of(self, node: ast.AST) -> ast.stmt | None:
        parents = self.model.scopes.parents
        current: ast.AST | None = node
        while current is not None and not isinstance(current, ast.stmt):
            current = parents.get(id(current))
        return current

    def _guard(self, statement: ast.stmt, function: ast.AST) -> str | None:
        """The innermost lock an ``async with`` (or ``with (await ...)``) of a name or an
        attribute around ``statement`` takes (a lock, a semaphore), as spelled."""
        parents = self.model.scopes.parents
        current = parents.get(id(statement))
        while current is not None and current is not function:
            if isinstance(current, (ast.AsyncWith, ast.With)):
                for item in current.items:
                    taken = entered_lock(item.context_expr, isinstance(current, ast.AsyncWith))
                    if isinstance(taken, (ast.Name, ast.Attribute, ast.Subscript)):
                        spelled = lock_spelling(taken)
                        if spelled is not None:
                            return spelled
            current = parents.get(id(current))
        return None


def _other_lock(guards: list[str], site: _Site, state: str) -> str | None:
    """Why the fix is withheld when other members of the group already take a lock that is
    not the one the fix would take (``self._<state>_lock``, or the module's
    ``_<name>_lock``)."""
    if not guards:
        return None
    if state.startswith(NAME_KEY):
        wanted = f"_{state[len(NAME_KEY) :].lower().lstrip('_')}_lock"
    else:
        wanted = f"{site.instance}._{state.lstrip('_')}_lock"
    if guards == [wanted]:
        return None
    taken = ", ".join(f"`{guard}`" for guard in guards)
    return f"other updates of it take {taken}: take that lock here too"


def _value_key(call: ast.Call) -> str | None:
    """The key arguments of ``R.set(K, value)``: all but the last positional one (None when
    there is no positional value or a keyword is passed)."""
    if not call.args or call.keywords:
        return None
    return _key(call.args[:-1])


def _position(node: ast.AST) -> tuple[int, int]:
    return (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))


def _before(node: ast.AST, other: ast.AST) -> bool:
    """``node`` starts before ``other`` ends (it is read before ``other`` completes)."""
    end = (getattr(other, "end_lineno", 0) or 0, getattr(other, "end_col_offset", 0) or 0)
    return _position(node) < end
