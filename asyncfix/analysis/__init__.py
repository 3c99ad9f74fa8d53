"""The semantic model rules are moving to (issue 16, ``../shared/design/semantic.md``): what
names are bound to and, later, what values may be, computed once per module on the stdlib
``ast`` tree. Its first layer, ``scopes``, answers exactly as ``codemods/names.py`` does on
the LibCST tree (``scripts/scopes_check.py`` compares the two on a corpus)."""
