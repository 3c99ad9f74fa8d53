"""The semantic model (issue 16, ``../shared/design/semantic.md``): what names are bound to
and what values may be, computed once per module on the stdlib ``ast`` tree, and what the
rules (``codemods.base.Rule``) ask.

- ``scopes``: scopes, bindings and qualified names, built in the one traversal of the tree
  (which also records every node's parent and the nodes of each type);
- ``classes``: the module's classes and the methods their names find by the MRO;
- ``values``: what a value may be (the class of a receiver, an async callback);
- ``coroutines``: is a callee a coroutine function, which project function a call calls;
- ``catalogue``: the library coroutine APIs; ``resources``: which values are async resources;
- ``races``: shared state across an ``await`` (reads, tests and writes around suspensions,
  locks held), for AF401-AF406; ``extract``: whether a ``with`` block can move into a
  nested function (AF203's fix);
- ``flow``: local value flow -- where a function's local goes (awaited, handed on, tested,
  dropped...) and whether every path from its binding uses it; ``uses``: what one read does
  with a value, the classification the project index's function summaries share;
- ``source``: the module's text, to spell nodes as written;
- ``model``: ``SemanticModel`` (the layers of one module) and ``Walk`` (how rules are called
  on it, and where a node is).
"""
