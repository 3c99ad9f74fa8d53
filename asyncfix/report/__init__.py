"""Renderers over RunResult. None of them recomputes analysis."""
