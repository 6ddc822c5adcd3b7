"""The API's HTTP protocol (redcart.http_protocol) against a real uvicorn server and raw
sockets: a response's head and body leave in one write, and nothing waits on that: a head
whose body comes later, `100 Continue` and keep-alive all behave as plain httptools."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from redcart.http_protocol import HTTP_PROTOCOL, HeadWithBody

HEAD_SENT = threading.Event()  # set by the test once it has read a streamed response's head


async def app(scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/stream":  # the head first; the body only once the client saw it
        start = {"type": "http.response.start", "status": 200, "headers": []}
        await send({**start, "headers": [(b"transfer-encoding", b"chunked")]})
        while not HEAD_SENT.is_set():
            await asyncio.sleep(0.005)
        await send({"type": "http.response.body", "body": b"late", "more_body": False})
        return
    answer = b'{"echo":"%s"}' % body
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=HTTP_PROTOCOL, loop="uvloop", log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield sock.getsockname()[1]
    srv.should_exit = True
    thread.join(5)


def _read_until(conn: socket.socket, marker: bytes, have: bytes = b"") -> bytes:
    while marker not in have:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed; got {have!r}"
        have += chunk
    return have


def _exchange(conn: socket.socket, body: bytes) -> bytes:
    conn.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return _read_until(conn, b"}")


def test_a_json_answer_arrives_whole_and_the_connection_is_kept_alive(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=5) as conn:
        first = _exchange(conn, b"one")
        second = _exchange(conn, b"two")
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b'{"echo":"one"}')
    assert second.startswith(b"HTTP/1.1 200 OK\r\n") and second.endswith(b'{"echo":"two"}')


def test_a_head_whose_body_waits_is_sent_without_waiting_for_it(server: int) -> None:
    HEAD_SENT.clear()
    with socket.create_connection(("127.0.0.1", server), timeout=5) as conn:
        conn.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        head = _read_until(conn, b"\r\n\r\n")  # times out if the head waited for the body
        HEAD_SENT.set()
        rest = _read_until(conn, b"0\r\n\r\n", head)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"late" in rest


def test_a_client_expecting_100_continue_is_told_to_go_on(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=5) as conn:
        conn.sendall(
            b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        go_on = _read_until(conn, b"\r\n\r\n")  # times out if `100 Continue` were held
        assert go_on.startswith(b"HTTP/1.1 100 Continue")
        conn.sendall(b"body")
        answer = _read_until(conn, b"}", go_on)
    assert answer.endswith(b'{"echo":"body"}')


class _Recorded:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def test_head_and_body_leave_in_one_write() -> None:
    transport = _Recorded()
    response = HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    response.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    response.write(b"{}")
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    await asyncio.sleep(0)  # the fallback flush finds nothing held
    assert len(transport.writes) == 1


async def test_a_closed_response_still_sends_its_head() -> None:
    transport = _Recorded()
    response = HeadWithBody(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    response.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    response.close()
    assert transport.writes == [b"HTTP/1.1 204 No Content\r\n\r\n"] and transport.closed
