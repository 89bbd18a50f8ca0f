"""Interface strings in English and Spanish: gettext catalogs (Babel) and language negotiation.

The Spanish catalog's source, `locale/es/LC_MESSAGES/messages.po`, is read with Babel when the
first page in that language is rendered and compiled in memory (`babel.messages.mofile`), so there
is no compiled `.mo` to build or to forget: the `.po` in the repository is what runs. English is
the source language (the msgids). `make i18n-extract` refreshes the `.pot` template from the
templates and code with `pybabel extract` (docs/family.md).

The language of a request: the account's preference, else the `allpath_lang` cookie (set by the
switch on every page), else the best match in `Accept-Language`, else English.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from allpath.course.companion import LANGUAGES, Lang

LANG_COOKIE = "allpath_lang"
DEFAULT_LANG: Lang = "en"
LANGUAGE_NAMES: dict[Lang, str] = {"en": "English", "es": "Español"}


@cache
def translations(lang: str) -> gettext.NullTranslations:
    if lang == DEFAULT_LANG or lang not in LANGUAGES:
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    po = resources.files("allpath.web") / "locale" / lang / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@cache
def gettext_for(lang: str) -> Callable[..., str]:
    """`_("text")`, or `_("For %(name)s.", name=...)`: the named values are filled in after translation."""
    t = translations(lang)

    def _(message: str, **values: Any) -> str:
        text = t.gettext(message)
        return text % values if values else text

    return _


def as_lang(value: str | None) -> Lang | None:
    if value in LANGUAGES:
        return value
    return None


def from_accept_language(header: str | None) -> Lang | None:
    """The best of our languages in an `Accept-Language` header (RFC 9110 q-values), or None.

    Hand-rolled (20 lines): Babel negotiates among parsed locales but does not parse the header,
    and Starlette has no helper for it."""
    if not header:
        return None
    best: tuple[float, int, Lang] | None = None
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            key, _, value = p.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = as_lang(tag.strip().lower().split("-")[0])
        if primary is not None and q > 0 and (best is None or (q, -position) > (best[0], best[1])):
            best = (q, -position, primary)
    return best[2] if best else None


def negotiate(account: str | None, cookie: str | None, accept_language: str | None) -> Lang:
    return as_lang(account) or as_lang(cookie) or from_accept_language(accept_language) or DEFAULT_LANG


def N_(message: str) -> str:  # noqa: N802 (the name gettext tools look for)
    """Marks a string for the catalog whose value reaches `_` at run time (pybabel extracts N_)."""
    return message


# Strings the templates translate by value: the maintenance medicines' names.
DYNAMIC_MESSAGES = (N_("mercaptopurine"), N_("methotrexate"))
