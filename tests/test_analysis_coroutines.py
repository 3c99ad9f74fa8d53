"""The semantic model's coroutine layer: is a call's callee a coroutine function? (the values
layer answers for receivers and callbacks)"""

from __future__ import annotations

import ast
import textwrap

from asyncfix.analysis.catalogue import CoroutineFunctions
from asyncfix.analysis.coroutines import Coroutines
from asyncfix.analysis.model import SemanticModel


def known(
    source: str, library: frozenset[str] = frozenset(), declared: tuple[str, ...] = ()
) -> dict[str, bool]:
    """``"line: call"`` -> whether its callee is known to be a coroutine function."""
    text = textwrap.dedent(source)
    tree = ast.parse(text)
    semantic = SemanticModel(tree, text)
    model = Coroutines(
        semantic.scopes,
        semantic.classes,
        semantic.values,
        semantic.source,
        None,
        CoroutineFunctions(library, declared),
    )
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            spelled = ast.get_source_segment(text, node)
            key = f"{node.lineno}: {spelled}"
            found.append((node.lineno, node.col_offset, key, model.callee(node) is not None))
    return {key: yes for _, _, key, yes in sorted(found)}


def test_module_async_defs_and_what_shadows_them() -> None:
    assert known(
        """
        async def fetch(): ...
        def sync(): ...
        async def main():
            fetch()
            sync()
        def other(fetch):
            fetch()
        """
    ) == {"5: fetch()": True, "6: sync()": False, "8: fetch()": False}


def test_a_name_bound_twice_or_decorated_is_not_known() -> None:
    assert known(
        """
        import functools
        async def twice(): ...
        twice = functools.partial(twice)
        @functools.lru_cache
        async def cached(): ...
        @staticmethod
        async def kept(): ...
        async def main():
            twice()
            cached()
            kept()
        """
    ) == {
        "4: functools.partial(twice)": False,
        "10: twice()": False,
        "11: cached()": False,
        "12: kept()": True,
    }


def test_the_library_catalogue() -> None:
    found = known(
        """
        import asyncio as aio
        from asyncio import sleep
        async def main():
            aio.sleep(1)
            sleep(2)
            aio.get_running_loop()
        """,
        library=frozenset({"asyncio.sleep"}),
    )
    assert found == {
        "5: aio.sleep(1)": True,
        "6: sleep(2)": True,
        "7: aio.get_running_loop()": False,
    }


def test_declared_coroutine_functions() -> None:
    """``coroutine-functions``: imported names only, matched whole (``*`` any characters);
    a name of the module, a method of an unknown receiver, a builtin: never."""
    found = known(
        """
        import vendor.api
        from vendor.client import fetch, fetch_all, fetcher
        from other import async_thing
        from lib.async_client import Controller
        from deep.er.down import go
        def async_local(): ...
        async def main(client):
            fetch()
            fetch_all()
            fetcher()
            vendor.api.async_get()
            vendor.api.get()
            async_thing()
            Controller()
            go()
            async_local()
            client.async_get()
            print()
        """,
        declared=(
            "vendor.client.fetch",
            "vendor.*.async_*",
            "lib.async_*",
            "deep.**.go",
            "*.print",
        ),
    )
    assert found == {
        "9: fetch()": True,
        "10: fetch_all()": False,  # a whole name, not a prefix
        "11: fetcher()": False,
        "12: vendor.api.async_get()": True,
        "13: vendor.api.get()": False,
        "14: async_thing()": False,
        "15: Controller()": False,  # `*` stays within a part
        "16: go()": True,  # `**`: any parts
        "17: async_local()": False,
        "18: client.async_get()": False,
        "19: print()": False,
    }


def test_methods_of_the_enclosing_class_by_the_mro() -> None:
    found = known(
        """
        class Base:
            async def close(self): ...
            def name(self): ...
        class Sync:
            def close(self): ...
        class Child(Base):
            async def run(self):
                self.close()
                self.name()
                def inner(self):
                    self.close()
                other = self
                other.close()
            @staticmethod
            async def helper(self):
                self.close()
        class Mixed(Sync, Base):
            async def stop(self):
                self.close()
        class Elsewhere(Imported):
            async def go(self):
                self.close()
        """
    )
    assert found == {
        "9: self.close()": True,  # Base.close, through the MRO
        "10: self.name()": False,
        "12: self.close()": False,  # a nested function's self is not the method's
        "14: other.close()": False,
        "17: self.close()": False,  # a staticmethod has no self
        "20: self.close()": False,  # Sync.close comes first
        "23: self.close()": False,  # a base from elsewhere (no index here)
    }


def test_a_class_attribute_or_a_conditional_def_makes_a_method_unknown() -> None:
    found = known(
        """
        import sys
        class C:
            close = None
            if sys.version_info >= (3, 11):
                async def stop(self): ...
            async def run(self):
                self.close()
                self.stop()
        """
    )
    assert found == {"8: self.close()": False, "9: self.stop()": False}


def test_receivers_of_known_classes() -> None:
    found = known(
        """
        from typing import Optional
        class Client:
            async def connect(self): ...
            def close(self): ...
        class Twin:
            def connect(self): ...
        class Service:
            primary: Client
            def __init__(self, backup: "Client", twin: Twin, flaky) -> None:
                self.backup = backup
                self.twin = twin
                self.session: Optional[Client] = None
                self.flaky = flaky
            async def run(self, given: Client | None, other):
                self.primary.connect()
                self.backup.connect()
                self.session.connect()
                self.twin.connect()
                self.flaky.connect()
                given.connect()
                given.close()
                local = Client()
                local.connect()
                other.connect()
                mixed = Client()
                mixed = Twin()
                mixed.connect()
        """
    )
    assert {key: yes for key, yes in found.items() if "connect()" in key or "close" in key} == {
        "16: self.primary.connect()": True,  # a class-level annotation
        "17: self.backup.connect()": True,  # an annotated __init__ parameter, stored
        "18: self.session.connect()": True,  # Optional[Client], None until connected
        "19: self.twin.connect()": False,  # a sync method of the same name
        "20: self.flaky.connect()": False,  # nothing says what it is
        "21: given.connect()": True,
        "22: given.close()": False,
        "24: local.connect()": True,
        "25: other.connect()": False,
        "28: mixed.connect()": False,  # two classes: unknown
    }


def test_async_callbacks_by_their_annotations() -> None:
    found = known(
        """
        from collections.abc import Awaitable, Callable
        class Service:
            def __init__(self, on_change: Callable[[], Awaitable[None]], plain: Callable[[], None]):
                self.on_change = on_change
                self.plain = plain
            async def run(self, on_ready: Callable[[], Awaitable[None]] | None, done: Callable):
                self.on_change("x")
                self.plain()
                on_ready("x")
                done()
        """
    )
    assert {key: yes for key, yes in found.items() if "(" in key and "Callable" not in key} == {
        '8: self.on_change("x")': True,
        "9: self.plain()": False,
        '10: on_ready("x")': True,
        "11: done()": False,
    }


def kept(source: str) -> dict[str, str | None]:
    """``"line: call"`` of each call of a class -> the store of the coroutine its instance
    alone keeps (``kept_by_instance``), or None."""
    text = textwrap.dedent(source)
    tree = ast.parse(text)
    semantic = SemanticModel(tree, text)
    model = Coroutines(semantic.scopes, semantic.classes, semantic.values, semantic.source)
    found = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        if node.func.id[0].isupper():
            result = model.kept_by_instance(node)
            store = ast.get_source_segment(text, result[1]) if result else None
            found[f"{node.lineno}: {ast.get_source_segment(text, node)}"] = store
    return found


def test_a_coroutine_only_an_instance_keeps() -> None:
    assert kept(
        """
        async def fetch(): ...
        class Plain:
            def __init__(self, key):
                self.key = key
                self.reply = fetch()
        class Reads:
            def __init__(self):
                self.reply = fetch()
                print(self.reply)
        class Nested:
            def __init__(self):
                self.reply = fetch()
                self.done = lambda: self.reply
        class Slotted:
            __slots__ = ("reply",)
            def __init__(self):
                self.reply = fetch()
        class Hooked:
            def __init__(self):
                self.reply = fetch()
            def __setattr__(self, name, value): ...
        class Unknown:
            def __init__(self):
                self.reply = other()
        Plain(1)
        Reads()
        Nested()
        Slotted()
        Hooked()
        Unknown()
        """
    ) == {
        "26: Plain(1)": "self.reply = fetch()",
        "27: Reads()": None,
        "28: Nested()": None,
        "29: Slotted()": "self.reply = fetch()",
        "30: Hooked()": None,
        "31: Unknown()": None,
    }
