"""Test harness: a real uvicorn server on 127.0.0.1 (own thread, own loop) serving the room
routes, and a ``websockets`` client helper that understands newline-batched frames."""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
import uvicorn
from litestar import Litestar
from websockets.asyncio.client import ClientConnection, connect

from livestream.room import Principal, Role, RoomHub, RoomHubConfig, RoomNotFound, room_routes
from redcart.http_protocol import HTTP_PROTOCOL


@dataclass
class FakeSessions:
    """Snapshot provider backed by a dict; ``gate`` lets a test hold a snapshot read open."""

    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    gate: asyncio.Event | None = None
    calls: int = 0

    async def __call__(self, room_id: str) -> dict[str, Any]:
        self.calls += 1
        if room_id not in self.states:
            raise RoomNotFound(room_id)
        if self.gate is not None:
            await self.gate.wait()
        return dict(self.states[room_id])


async def authenticate(token: str) -> Principal | None:
    """Test tokens look like ``alice:viewer``; anything else is rejected."""
    user_id, _, role = token.partition(":")
    try:
        return Principal(user_id, Role(role))
    except ValueError:
        return None


class LiveServer:
    def __init__(self, hub: RoomHub, sessions: FakeSessions, direct_writes: bool = True) -> None:
        self.hub = hub
        self.sessions = sessions
        self.loop: asyncio.AbstractEventLoop | None = None
        started = threading.Event()

        def capture_loop() -> None:
            self.loop = asyncio.get_running_loop()
            started.set()

        app = Litestar(
            route_handlers=room_routes(hub, authenticate, direct_writes=direct_writes),
            on_startup=[capture_loop],
            on_shutdown=[hub.stop],
        )
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            http=HTTP_PROTOCOL,  # as `redcart serve`: upgrades go through it
            ws="websockets-sansio",
            ws_per_message_deflate=False,
            lifespan="on",
            log_level="warning",
            timeout_graceful_shutdown=3,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("uvicorn did not start")
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.01)

    def url(self, session_id: str, **query: Any) -> str:
        qs = f"?{urlencode(query)}" if query else ""
        return f"ws://127.0.0.1:{self.port}/live/{session_id}/ws{qs}"

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run a hub coroutine on the server's loop (the hub is single-loop by design)."""
        assert self.loop is not None
        future = asyncio.run_coroutine_threadsafe(fn(*args), self.loop)
        return await asyncio.wrap_future(future)

    async def run(self, fn: Callable[[], Any]) -> Any:
        """Run a plain function on the server's loop (e.g. to read hub state)."""

        async def wrapper() -> Any:
            return fn()

        return await self.call(wrapper)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def live_server() -> Iterator[ServerFactory]:
    servers: list[LiveServer] = []

    def start(
        config: RoomHubConfig | None = None, direct_writes: bool = True, **states: dict[str, Any]
    ) -> LiveServer:
        sessions = FakeSessions(states=states or {"s1": {"status": "live", "deals": []}})
        server = LiveServer(RoomHub(sessions, config=config), sessions, direct_writes)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class Viewer:
    """A websocket client that splits batched frames into messages and buffers them."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.buffer: collections.deque[dict[str, Any]] = collections.deque()

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        while not self.buffer:
            frame = await asyncio.wait_for(self.ws.recv(), timeout)
            self.buffer.extend(json.loads(line) for line in str(frame).split("\n"))
        return self.buffer.popleft()

    async def next_of(self, *types: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next message of one of ``types``; messages of other types are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self.next(max(0.01, deadline - time.monotonic()))
            if message["type"] in types:
                return message

    async def collect(self, seconds: float, *types: str) -> list[dict[str, Any]]:
        """Every message of ``types`` (all if empty) arriving within ``seconds``."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = await self.next(left)
            except TimeoutError:
                break
            if not types or message["type"] in types:
                out.append(message)
        return out

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def request(self, **message: Any) -> dict[str, Any]:
        """Send a request with an id and return the reply (ack / error / rate_limited)."""
        await self.send(**message)
        while True:
            reply = await self.next_of("ack", "error", "rate_limited")
            if reply.get("id") == message.get("id"):
                return reply


@pytest.fixture
def open_viewer() -> Callable[..., Any]:
    """``async with open_viewer(url) as viewer`` with fan-out friendly client settings."""
    import contextlib

    @contextlib.asynccontextmanager
    async def opener(url: str, **kwargs: Any) -> AsyncIterator[Viewer]:
        options: dict[str, Any] = {"compression": None, "proxy": None, "max_size": 4 << 20}
        options.update(kwargs)
        async with connect(url, **options) as ws:
            yield Viewer(ws)

    return opener
