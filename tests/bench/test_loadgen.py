"""The benchmarks' load generator reads HTTP/1.1 answers correctly, or says it cannot.

A load generator that miscounts a response would report latencies of the wrong requests, so its
reading is pinned here against a tiny server that answers with fixed bytes.
"""

from __future__ import annotations

import asyncio

import pytest
from benchmarks.loadgen import Connection, ProtocolError, request


async def _exchange(answers: list[bytes], requests: int) -> tuple[list[tuple[int, bytes]], list[bytes]]:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            head = await reader.readuntil(b"\r\n\r\n")
            length = [int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")]
            received.append(head + (await reader.readexactly(length[0]) if length else b""))
            writer.write(answer)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connection = Connection("127.0.0.1", port)
    try:
        got = [await connection.send(request("r", "POST", "/x", "h", {"A": "b"}, {"k": i})) for i in range(requests)]
    finally:
        connection.close()
        server.close()
    return got, received


def test_two_answers_on_one_connection_are_read_by_their_lengths() -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope",
    ]
    got, received = asyncio.run(_exchange(answers, 2))
    assert got == [(200, b"ok"), (404, b"nope")]
    assert received[1].startswith(b"POST /x HTTP/1.1\r\nHost: h\r\nA: b\r\n") and received[1].endswith(b'{"k": 1}')


def test_a_chunked_answer_is_joined() -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    got, _ = asyncio.run(_exchange([answer], 1))
    assert got == [(200, b"abcde")]


def test_an_answer_that_is_not_http_is_an_error() -> None:
    with pytest.raises(ProtocolError, match=r"not an HTTP/1\.x status line"):
        asyncio.run(_exchange([b"SSH-2.0-OpenSSH\r\n\r\n"], 1))
