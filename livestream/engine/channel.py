"""Deal commands between API processes: one websocket from a process to each deal owner.

Why not an HTTP request per command: in a sale every claim reaching a process that does not own
the deal is forwarded, and with httpx that process spent about 1.3 ms of CPU on each, most of
it in the client's connection pool (which rescans and polls its connections for every request;
encode/httpcore#1035), more than the claim costs the owner. Here one long-lived websocket per
owner carries commands and their answers as small JSON frames matched by number, as many in
flight at once as there are claims waiting.

The connection is authenticated once, at its handshake (an HMAC over a timestamp), and opened
again by the next command after it drops. A command whose connection drops, or whose answer
takes longer than the timeout, fails with ChannelLost and its caller asks again, taking the
deal over if the owner has died; a command that reached the owner before the drop runs again
harmlessly, since the deal answers a known claim id as it first decided it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

CHANNEL_PATH = "/internal/deals/ws"
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class ChannelLost(ConnectionError):
    """The owner could not be reached, or stopped answering: ask again (it may have died)."""


@dataclass
class _Link:
    socket: ClientConnection
    waiting: dict[int, asyncio.Future] = field(default_factory=dict)
    reader: asyncio.Task | None = None


class OwnerChannel:
    """Commands to one owner (`url`: where it listens, http://host:port)."""

    def __init__(
        self, url: str, handshake: Callable[[], dict[str, str]], timeout: float = 10.0
    ) -> None:
        self.url = "ws" + url.removeprefix("http").rstrip("/") + CHANNEL_PATH
        self.handshake, self.timeout = handshake, timeout
        self._link: _Link | None = None
        self._connecting = asyncio.Lock()
        self._numbers = itertools.count()

    async def call(self, deal_id: UUID, op: str, args: dict[str, Any]) -> tuple[int, dict]:
        """The owner's (status, answer) for one command, as `DealEngine.serve_forwarded`."""
        link = await self._connected()
        number = next(self._numbers)
        answer = asyncio.get_running_loop().create_future()
        link.waiting[number] = answer
        try:
            await link.socket.send(_encode([number, deal_id, op, args]))
            return await asyncio.wait_for(answer, self.timeout)
        except (ConnectionClosed, OSError) as exc:
            raise ChannelLost(f"connection to the deal's owner lost: {exc}") from None
        except TimeoutError:
            raise ChannelLost("the deal's owner did not answer in time") from None
        finally:
            link.waiting.pop(number, None)

    async def connect(self) -> None:
        """Open the connection now, not with the first command."""
        await self._connected()

    async def _connected(self) -> _Link:
        link = self._link
        if link is not None:
            return link
        async with self._connecting:
            if self._link is None:
                try:
                    socket = await connect(
                        self.url,
                        additional_headers=self.handshake(),
                        open_timeout=5,
                        compression=None,
                        max_size=2**22,
                    )
                except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                    raise ChannelLost(f"cannot reach the deal's owner: {exc}") from None
                link = _Link(socket)
                link.reader = asyncio.create_task(self._read(link))
                self._link = link
            return self._link

    async def _read(self, link: _Link) -> None:
        try:
            async for frame in link.socket:
                number, status, payload = _decode(frame)
                answer = link.waiting.get(number)
                if answer is not None and not answer.done():
                    answer.set_result((status, payload))
        except (ConnectionClosed, msgspec.DecodeError, ValueError):
            pass
        finally:
            if self._link is link:
                self._link = None
            for answer in link.waiting.values():
                if not answer.done():
                    answer.set_exception(ChannelLost("connection to the deal's owner lost"))
            await link.socket.close()

    async def aclose(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            await link.socket.close()
            if link.reader is not None:
                await asyncio.gather(link.reader, return_exceptions=True)
