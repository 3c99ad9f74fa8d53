"""LibCST, loaded on first use.

Every rule reads the stdlib tree; LibCST is needed only to build a fix (or to tell a syntax
error from syntax newer than this Python). Modules write ``from asyncfix.lazy import libcst
as cst`` and use ``cst`` as the module: a check with nothing to fix never loads it (a third of
a warm run's time). ``importlib.util.LazyLoader`` does not do here: every later ``import
libcst`` asks the module for its ``__spec__``, which loads it.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any


class _Lazy:
    """A module's attributes, imported when the first is asked for (then kept on the
    instance, so later lookups are plain attribute reads)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        if self._module is None:
            self._module = importlib.import_module(self._name)
        value = getattr(self._module, attribute)
        setattr(self, attribute, value)
        return value


if TYPE_CHECKING:
    import libcst as libcst
else:
    libcst = _Lazy("libcst")
