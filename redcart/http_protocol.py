"""uvicorn's httptools protocol, with each response's head and body leaving in one write.

uvicorn writes a response's status line and headers as soon as `http.response.start` is sent,
then the body on `http.response.body`. uvloop sends each write at once while the socket's
buffer is empty, so every small answer costs two send(2) calls; on loopback each also wakes
the reader. In a flash sale's first second the event loop spent about a fifth of its time in
those two writes (py-spy, BENCHMARKS.md stop 16). Here the head is held until the body's
first write and both go out together. A head whose body is not written in the same turn of
the loop (a stream that waits first, `100 Continue`) is sent on the loop's next turn.

Used by `redcart serve` and the benchmarks' API servers (uvicorn `--http HTTP_PROTOCOL`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeadWithBody:
    """A response's view of its connection: holds the first write (the head) until the next
    one, or until the loop's next turn, whichever comes first. Everything else is the
    connection's own."""

    __slots__ = ("_held", "_loop", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        if not self._started:
            self._started = True
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
            return
        if self._held is not None:
            data, self._held = self._held + data, None
        self._transport.write(data)

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before:  # a request, not an upgrade
            cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]


HTTP_PROTOCOL = f"{__name__}:{HttpProtocol.__name__}"  # uvicorn's `--http` / `http=`
# uvicorn closes a keep-alive connection after 5 idle seconds by default. A client (or a load
# balancer's pool) that sends just as it closes gets a reset, not an answer: 7 claims of one
# flash-deal run failed so, 5 s after the sale's connection burst. Load balancers keep idle
# upstream connections for 60 s (AWS ALB) to 75 s (nginx): the server must outlast them.
KEEP_ALIVE_SECONDS = 75
