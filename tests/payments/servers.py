"""Real loopback HTTP servers for the payments tests.

Apps run under uvicorn in a background thread on a socket bound to 127.0.0.1 port 0, so the port
is free by construction and nothing listens beyond loopback. ``MerchantNotifyReceiver`` stands in
for the merchant's notification endpoint: it records the raw requests the sandbox sends and answers
with whatever the test queued (the provider's acknowledgement by default).
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import uvicorn
from litestar import Litestar, Request, Response, route
from litestar.params import FromPath


class LoopbackServer:
    def __init__(self, app: Any) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def start(self, timeout: float = 10.0) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes


class MerchantNotifyReceiver:
    """Records every POST under ``/notify/<channel>`` and replies from a queue of answers."""

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self._answers: dict[str, deque[tuple[int, bytes]]] = {}
        self._lock = threading.Lock()

        @route("/notify/{channel:str}", http_method=["POST"])
        async def receive(request: Request, channel: FromPath[str]) -> Response[bytes]:
            body = await request.body()
            with self._lock:
                self.requests.append(ReceivedRequest(channel, dict(request.headers.items()), body))
                queue = self._answers.get(channel)
                status, answer = queue.popleft() if queue else (200, b"success")
            return Response(answer, status_code=status, media_type="text/plain")

        self.app = Litestar(route_handlers=[receive])

    def answer_next(self, channel: str, *answers: tuple[int, bytes]) -> None:
        with self._lock:
            self._answers.setdefault(channel, deque()).extend(answers)

    def received(self, channel: FromPath[str]) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == channel]

    def wait_for(self, channel: str, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received(channel)
            if len(got) >= count:
                return got
            time.sleep(0.01)
        raise AssertionError(
            f"expected {count} notifications on {channel!r}, got {len(self.received(channel))}"
        )
