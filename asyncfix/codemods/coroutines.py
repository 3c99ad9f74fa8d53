"""Which project class a name in a LibCST tree certainly names (through the index): what
AF501 asks of the index until it moves to the semantic model (``asyncfix.analysis``, where the
coroutine callees, receivers and project functions the other rules ask about now live)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from asyncfix.index import ClassFact

if TYPE_CHECKING:
    from asyncfix.codemods.base import Context, Project


def project_class(ctx: Context, func: cst.BaseExpression) -> ClassFact | None:
    """The project class an expression certainly names (through the index), or None."""
    project = ctx.project
    if project is None:
        return None
    where = _project_name(ctx, project, func, cst.ClassDef)
    if where is None:
        return None
    scope, name = where
    return project.index.class_(name) if scope == "global" else project.module.classes.get(name)


def _project_name(
    ctx: Context, project: Project, func: cst.BaseExpression, definition: type[cst.CSTNode]
) -> tuple[str, str] | None:
    """Where ``func`` points in the project: ("global", "pkg.mod.name") through an import,
    or ("local", "name") for a module-level name bound only by ``definition`` statements
    (``def`` or ``class``)."""
    qualified = ctx.qualified_name(func)
    if qualified is not None:
        target = project.absolute(qualified)
        return ("global", target) if target else None
    if not isinstance(func, cst.Name):
        return None
    found = ctx.lookup(func.value)
    if found is None or not isinstance(found[0], cst.Module):
        return None
    if func.value in project.module.ambiguous:
        return None
    if all(isinstance(binding.node, definition) for binding in found[1]):
        return ("local", func.value)
    return None
