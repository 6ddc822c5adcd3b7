"""Room tests over a real server: a host with a live session, and reading a room socket (frames
carry one or more JSON messages, one per line)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from tests.integration.conftest import ADMIN, bearer


async def next_message(
    ws: ClientConnection, buffer: list[dict[str, Any]], *types: str, timeout: float = 10
) -> dict[str, Any]:
    """The next message of one of `types`, skipping others; `buffer` keeps what a frame
    brought beyond it for the next call."""
    while True:
        while buffer:
            message = buffer.pop(0)
            if message["type"] in types:
                return message
        frame = await asyncio.wait_for(ws.recv(), timeout)
        buffer.extend(json.loads(line) for line in str(frame).split("\n"))


async def host_with_live_session(
    http: httpx.AsyncClient, title: str = "Last call"
) -> tuple[dict[str, str], str]:
    """A new merchant's headers and a session of theirs, started, over a real server."""
    r = await http.post(
        "/admin/merchants",
        headers=ADMIN,
        json={"name": "Sakura", "home_country": "JP", "settlement_currency": "JPY"},
    )
    assert r.status_code == 201, r.text
    host = bearer(r.json()["api_key"])
    starts = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    body = {"title": title, "starts_at": starts}
    r = await http.post("/live/sessions", headers=host, json=body)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert (await http.post(f"/live/sessions/{sid}/start", headers=host)).status_code == 200
    return host, sid
