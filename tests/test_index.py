"""What the project index knows about a class that holds something to close (AF501/AF503)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncfix.analysis.resources import is_value_annotation
from asyncfix.index import ProjectIndex, facts_from_source, from_raw, to_raw

SOURCE = '''
class OwnClose:
    async def __aenter__(self):
        """Hand the client out."""
        return self

    async def __aexit__(self, *exc_info):
        await self.close()

    async def close(self) -> None:
        self.closed = True


class HeldClose:
    async def __aenter__(self):
        await self.connect()
        return self

    async def __aexit__(self, *exc_info):
        if self.session is not None:
            await self.session.close()

    async def close(self) -> bool:
        return True  # an API call, not the cleanup


class Inherits(OwnClose):
    pass


class EmptyClose:
    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.close()

    async def close(self):
        pass


class SyncClose:
    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        self.close()

    def close(self):
        self.closed = True


class NotEntered:
    async def close(self):
        self.closed = True
'''


@pytest.fixture(params=["facts", "cached"])
def index(request: pytest.FixtureRequest) -> ProjectIndex:
    facts = facts_from_source(SOURCE, Path("app.py"))
    assert facts is not None
    if request.param == "cached":  # what a later run reads back from the index cache
        return ProjectIndex(raws=[to_raw(facts)])
    return ProjectIndex([facts])


@pytest.mark.parametrize(
    ("name", "closes"),
    [
        ("OwnClose", ("close",)),
        ("HeldClose", ("session.close",)),
        ("Inherits", ("close",)),
        ("EmptyClose", ()),
        ("SyncClose", ()),
        ("NotEntered", ()),
    ],
)
def test_how_a_class_is_closed(index: ProjectIndex, name: str, closes: tuple[str, ...]) -> None:
    cls = index.class_(f"app.{name}")
    assert cls is not None
    assert index.resource_close(cls) == closes


def test_resource_names(index: ProjectIndex) -> None:
    assert index.resource_names() == {"OwnClose", "HeldClose", "Inherits"}


def test_aenter_that_only_returns_self(index: ProjectIndex) -> None:
    own = index.method(index.class_("app.OwnClose"), "__aenter__")
    held = index.method(index.class_("app.HeldClose"), "__aenter__")
    assert own is not None and own.returns_self_only
    assert held is not None and not held.returns_self_only


def test_return_annotation_kept() -> None:
    facts = facts_from_source(SOURCE, Path("app.py"))
    assert facts is not None
    restored = from_raw(to_raw(facts))
    assert restored.classes["HeldClose"].methods["close"].returns == "bool"
    assert restored.classes["EmptyClose"].methods["close"].empty


@pytest.mark.parametrize(
    ("annotation", "plain"),
    [
        ("dict[str, Any]", True),
        ("list[str] | None", True),
        ("Optional[Dict[str, int]]", True),
        ("typing.List[bytes]", True),
        ("bool", True),
        ("Any", False),  # could be anything, the response itself included
        ("", False),  # not annotated
        ("ClientResponse", False),
        ("'Stream'", False),  # a forward reference to a class
        ("list[Record]", False),
        ("aiohttp.ClientResponse", False),
    ],
)
def test_plain_data_annotations(annotation: str, plain: bool) -> None:
    assert is_value_annotation(annotation) is plain
