"""asyncfix's rules as fixit lint rules, with their safe fixes: ``enable =
["asyncfix.fixit"]`` in ``[tool.fixit]`` (or one rule: ``"asyncfix.fixit:MissingAwait"``).
Each rule is named after asyncfix's (``missing-await`` -> ``MissingAwait``) and reports
asyncfix's finding, its code first (``AF101 ...``); ``asyncfix.fixit_unsafe`` offers the
unsafe fixes too. How the two fit together: ``asyncfix/_fixit.py``."""

from __future__ import annotations

from asyncfix._fixit import rule_classes

globals().update(rule_classes(unsafe=False))
