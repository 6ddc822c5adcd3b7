"""The end of a show over a real server: viewers hear `session.ended`, then close 4010; a viewer
who comes later is closed with 4010 at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.integration.conftest import ADMIN, bearer
from tests.live_api.ws import next_message
from tests.servers import ApiServer

ROOM_CLOSED = 4010


async def _host_and_live_session(http: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    r = await http.post(
        "/admin/merchants",
        headers=ADMIN,
        json={"name": "Sakura", "home_country": "JP", "settlement_currency": "JPY"},
    )
    assert r.status_code == 201, r.text
    host = bearer(r.json()["api_key"])
    starts = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    body = {"title": "Last call", "starts_at": starts}
    r = await http.post("/live/sessions", headers=host, json=body)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert (await http.post(f"/live/sessions/{sid}/start", headers=host)).status_code == 200
    return host, sid


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
        host, sid = await _host_and_live_session(http)
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
