"""The end of a show over a real server: viewers hear `session.ended`, then close 4010; a viewer
who comes later is closed with 4010 at once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.live_api.ws import host_with_live_session, next_message
from tests.servers import ApiServer

ROOM_CLOSED = 4010


async def _closed_with(ws: Any) -> tuple[int | None, str]:
    """Read until the server closes; the close code and reason it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), timeout=10)
    received = closed.value.rcvd
    assert received is not None, "the server closed without a close frame"
    return received.code, received.reason


async def _scenario(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        host, sid = await host_with_live_session(http)
        ws_url = url.replace("http://", "ws://") + f"/live/{sid}/ws"
        async with connect(ws_url) as ws:
            buffer: list[dict[str, Any]] = []
            snapshot = await next_message(ws, buffer, "snapshot")
            assert snapshot["data"]["state"] == "live"
            r = await http.post(f"/live/sessions/{sid}/end", headers=host)
            assert r.status_code == 200, r.text
            ended = await next_message(ws, buffer, "session.ended")
            assert ended["seq"] == snapshot["seq"] + 1 and ended["data"]["state"] == "ended"
            assert (await _closed_with(ws)) == (ROOM_CLOSED, "live session ended")

        async with connect(ws_url) as late:
            code, _ = await _closed_with(late)
            assert code == ROOM_CLOSED

        again = await http.post(f"/live/sessions/{sid}/end", headers=host)
        assert again.status_code == 409 and again.headers["content-type"].startswith(
            "application/problem+json"
        )


def test_viewers_hear_the_show_end_then_are_closed_4010(server: ApiServer) -> None:
    asyncio.run(_scenario(server.url))
