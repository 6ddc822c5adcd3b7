"""Moderators named over HTTP get moderator rights in the room (a real server, websockets
client): they delete others' messages; a plain viewer may not."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from websockets.asyncio.client import connect

from tests.integration.conftest import ADMIN, bearer
from tests.live_api.ws import next_message
from tests.servers import ApiServer


async def _scenario(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        r = await http.post(
            "/admin/merchants",
            headers=ADMIN,
            json={"name": "Host", "home_country": "JP", "settlement_currency": "JPY"},
        )
        host = bearer(r.json()["api_key"])
        starts = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        r = await http.post(
            "/live/sessions", headers=host, json={"title": "Q&A", "starts_at": starts}
        )
        sid = r.json()["id"]
        assert (await http.post(f"/live/sessions/{sid}/start", headers=host)).status_code == 200
        mod = (await http.post("/buyers", json={"display_name": "mod"})).json()
        viewer = (await http.post("/buyers", json={"display_name": "viewer"})).json()
        r = await http.put(f"/live/sessions/{sid}/moderators/{mod['id']}", headers=host)
        assert r.status_code == 200, r.text
        stranger = await http.put(f"/live/sessions/{sid}/moderators/{mod['id']}", headers=ADMIN)
        assert stranger.status_code == 403

    ws_url = url.replace("http://", "ws://") + f"/live/{sid}/ws"
    async with (
        connect(f"{ws_url}?token={mod['token']}") as mod_ws,
        connect(f"{ws_url}?token={viewer['token']}") as viewer_ws,
    ):
        mod_buf: list[dict[str, Any]] = []
        viewer_buf: list[dict[str, Any]] = []
        assert (await next_message(mod_ws, mod_buf, "welcome"))["user"]["role"] == "moderator"
        assert (await next_message(viewer_ws, viewer_buf, "welcome"))["user"]["role"] == "viewer"

        await viewer_ws.send(json.dumps({"type": "chat.send", "id": "m1", "text": "spam spam"}))
        message_id = (await next_message(viewer_ws, viewer_buf, "ack"))["data"]["message_id"]

        await viewer_ws.send(
            json.dumps({"type": "mod.delete", "id": "d0", "message_id": message_id})
        )
        refused = await next_message(viewer_ws, viewer_buf, "error")
        assert refused["code"] == "forbidden"

        await mod_ws.send(json.dumps({"type": "mod.delete", "id": "d1", "message_id": message_id}))
        deleted = await next_message(viewer_ws, viewer_buf, "chat.deleted")
        assert deleted["data"]["message_id"] == message_id and "seq" in deleted


def test_a_named_moderator_moderates_the_room_and_a_viewer_cannot(server: ApiServer) -> None:
    asyncio.run(_scenario(server.url))
