"""The semantic model rules are moving to (issue 16, ``../shared/design/semantic.md``): what
names are bound to and what values may be, computed once per module on the stdlib ``ast``
tree. So far: ``scopes`` (scopes, bindings, qualified names; answers exactly as
``codemods/names.py`` does on the LibCST tree, ``scripts/scopes_check.py``) and
``coroutines`` (is a callee a coroutine function, from the catalogue, the index, the module's
``async def``s and the enclosing class; never more than ``codemods/coroutines.py`` knows,
``scripts/coroutines_check.py``). No rule asks them yet."""
