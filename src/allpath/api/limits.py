"""A bound on the request head inside uvicorn's HTTP parser, for `allpath serve`.

`RequestLimitsMiddleware` refuses an oversized head with 431, but only once the server has read
all of it: an 8 MB header would be buffered first. `bounded_http_protocol(max_head_bytes)` gives
uvicorn an HTTP protocol (httptools when installed, else h11 with its own limit) that answers 431
and closes the connection as soon as the head of a request passes the limit, reading no further.
"""

from __future__ import annotations

from typing import Any

_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\nconnection: close\r\n"


def _body(limit: int) -> bytes:
    return (
        b'{"error": "request headers too large", "details": [{"field": "headers", "problem": "must total at most '
        + str(limit).encode("ascii")
        + b' bytes"}]}'
    )


def bounded_http_protocol(max_head_bytes: int, *, by_name: bool = False) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` that bound the request head to `max_head_bytes`.

    `by_name`: name the protocol by import string (worker processes import it themselves; a class
    cannot be sent to them), and set the bound for this process with `set_head_limit`; each worker
    sets it again when it builds its app.
    """
    if BoundedHttpToolsProtocol is None:  # no httptools: h11 enforces the bound itself
        return {"http": "h11", "h11_max_incomplete_event_size": max_head_bytes}
    set_head_limit(max_head_bytes)
    if by_name:
        return {"http": f"{__name__}:BoundedHttpToolsProtocol"}
    return {"http": BoundedHttpToolsProtocol}


def set_head_limit(max_head_bytes: int) -> None:
    """The bound every `BoundedHttpToolsProtocol` of this process applies."""
    global _max_head_bytes
    _max_head_bytes = max_head_bytes


_max_head_bytes = 32 * 1024

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is in the web extra
    BoundedHttpToolsProtocol: Any = None
else:

    class BoundedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[no-redef]
        """Counts the bytes received while a request head is incomplete; over the limit: 431, close."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = True
            self._head_bytes = 0

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                self._head_bytes += len(data)
            super().data_received(data)
            limit = _max_head_bytes
            if self._in_head and self._head_bytes > limit and not self.transport.is_closing():
                body = _body(limit)
                self.transport.write(_431 + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                self.transport.close()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._head_bytes = 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head = True
            self._head_bytes = 0
