"""A second listener per API process, on a port of its own, for commands forwarded to it.

Why: with `redcart serve --workers N` every worker shares one public port, so a claim forwarded
to "the owner of this deal" through that port would land on any worker. Each process therefore
also serves the same app on its own (by default ephemeral) port and advertises that address as
the place to reach it. Forwarded commands travel on websockets whose handshake carries an HMAC
of the secret key, so exposing the listener is harmless, but it is meant for the private
network (REDCART_INTERNAL_HOST).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from litestar import Litestar


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the public server owns the process's signal handling


class InternalListener:
    def __init__(self, app: Litestar, bind_host: str, advertised_host: str, port: int) -> None:
        self.app = app
        self.bind_host, self.advertised_host, self.port = bind_host, advertised_host, port
        self._server: _Server | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> str:
        """Bind and serve; answers the URL other processes should use."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.bind_host, self.port))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            # forwarded deal commands arrive as small frames on one long-lived websocket per
            # process (livestream.engine.channel): the implementation the public server uses,
            # without per-message deflate
            ws="websockets-sansio",
            ws_per_message_deflate=False,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)
        return f"http://{self.advertised_host}:{port}"

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
