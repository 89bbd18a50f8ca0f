"""Keep calendar-link secrets out of the access log.

A private calendar link carries its secret in the path (calendar apps subscribe to a plain URL),
and uvicorn's access log writes every path. This filter, put on the `uvicorn.access` logger by
`allpath.web.install`, replaces the secret with `***` before the line is written."""

from __future__ import annotations

import logging
import re

_SECRET_PATH = re.compile(r"(/calendar/)[^/?\s]+(\.ics)")


def redact(text: str) -> str:
    return _SECRET_PATH.sub(r"\1***\2", text)


class CalendarSecretFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_filter() -> None:
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, CalendarSecretFilter) for f in logger.filters):
        logger.addFilter(CalendarSecretFilter())
