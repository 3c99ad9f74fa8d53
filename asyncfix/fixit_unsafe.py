"""asyncfix's rules as fixit lint rules, with their unsafe fixes as well as the safe ones
(``enable = ["asyncfix.fixit_unsafe"]``): an unsafe fix is right in the common case but may
change what callers see (``asyncfix rules`` says which). See ``asyncfix.fixit``."""

from __future__ import annotations

from asyncfix._fixit import rule_classes

globals().update(rule_classes(unsafe=True))
