"""Template environment and the HTML-to-PDF step, kept apart from routing so tests can render pages directly."""

from __future__ import annotations

from contextvars import ContextVar
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from allpath.explain.labels import CATEGORY_LABELS, SEVERITY_LABELS, STRENGTH_LABELS
from allpath.web.i18n import LANGUAGE_NAMES, gettext_for

STATIC_FILES = ("allpath.css", "family.css")


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("allpath.web", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = lambda name: f"/static/{name}"
    # Display words shared with the text plan and CDS cards (allpath.explain.labels).
    env.globals["category_labels"] = CATEGORY_LABELS
    env.globals["strength_labels"] = STRENGTH_LABELS
    env.globals["severity_labels"] = SEVERITY_LABELS
    # `_` reads the language of the render under way (a context variable, set by `render`), so
    # imported macros translate too and concurrent renders in two languages never mix.
    env.globals["_"] = translate
    env.globals["lang"] = "en"
    env.globals["language_names"] = LANGUAGE_NAMES
    return env


def render(template: str, *, lang: str = "en", **context: Any) -> str:
    """Render in a language: `_` in the templates is that language's gettext."""
    token = _LANG.set(lang)
    try:
        return environment().get_template(template).render(lang=lang, **context)
    finally:
        _LANG.reset(token)


_LANG: ContextVar[str] = ContextVar("allpath_render_lang", default="en")


def translate(message: str, **values: Any) -> str:
    return gettext_for(_LANG.get())(message, **values)


def static_text(name: str) -> str:
    if name not in STATIC_FILES:
        raise KeyError(name)
    return (resources.files("allpath.web") / "static" / name).read_text(encoding="utf-8")


def html_to_pdf(html: str, *, variant: str | None = None) -> bytes:
    """Render with WeasyPrint, using the same stylesheet as the page (its print rules apply).

    `variant="pdf/ua-1"` makes a tagged PDF/UA document, which screen readers can read.
    """
    from weasyprint import CSS, HTML

    css = [CSS(string=static_text(name)) for name in STATIC_FILES]
    options = {"pdf_variant": variant} if variant else {}
    pdf = HTML(string=html, base_url=None).write_pdf(stylesheets=css, **options)
    assert isinstance(pdf, bytes)  # write_pdf without a target returns the document's bytes
    return pdf
