"""A lean HTTP/1.1 keep-alive client for the open-loop load benchmarks.

Hand-rolled on purpose. The benchmarks share the machine's cores with the server they measure, so
the load generator's own CPU cost decides whether the figure is the server's or the client's. httpx
(the project's client everywhere else) cost about 7 ms of CPU per request on the 2026-12-02 machine:
at 200 requests/s it saturated its core before the server did, and the run charged the client's
queueing to the server. This client prebuilds each request's bytes, reads one response by its
`Content-Length` (or chunked body) on a connection it keeps, and nothing else: tens of microseconds
per request. It speaks only to the loopback server the benchmark started.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


class ProtocolError(Exception):
    """The server's answer is not an HTTP/1.1 response this client can read."""


@dataclass(frozen=True)
class Request:
    """A request's bytes, ready to write on a keep-alive connection."""

    name: str
    data: bytes


def request(
    name: str, method: str, path: str, host: str, headers: dict[str, str] | None = None, body: Any = None
) -> Request:
    """A request for `path` on `host`; a `body` is sent as JSON."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    payload = b""
    if body is not None:
        payload = json.dumps(body).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    elif method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: 0")
    return Request(name, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)


class Connection:
    """One keep-alive connection; `send` writes a request and returns (status, body)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def send(self, req: Request) -> tuple[int, bytes]:
        if self.writer is None or self.writer.is_closing():
            await self._open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(req.data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        headers = {}
        for line in header_lines:
            if line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunked()
        else:
            raise ProtocolError("a response with neither Content-Length nor chunked encoding")
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(parts[1]), body

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        out = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # no trailers from our server
                return bytes(out)
            out += await self.reader.readexactly(size + 2)
            del out[-2:]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
