"""Plain-language rendering of plans (Jinja2 templates), for patients, families and clinicians."""

from allpath.explain.text import render_text

__all__ = ["render_text"]
