"""The room over a real uvicorn server: a snapshot on join, then reliable events after commits."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from websockets.asyncio.client import connect

from tests.live_api.ws import host_with_live_session, next_message
from tests.servers import ApiServer


async def _scenario(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        host, sid = await host_with_live_session(http, title="Go")
        r = await http.post(
            "/products",
            headers=host,
            json={
                "sku": "SUN-50",
                "title": "Anessa sunscreen",
                "brand": "Anessa",
                "origin_country": "JP",
                "hs_code": "3304990099",
                "category": "beauty",
                "list_price_minor": 3000,
                "weight_grams": 90,
            },
        )
        assert r.status_code == 201, r.text
        product = r.json()["id"]
        r = await http.post("/buyers", json={"display_name": "viewer"})
        buyer_token = r.json()["token"]

        ws_url = url.replace("http://", "ws://") + f"/live/{sid}/ws"
        async with connect(f"{ws_url}?token={buyer_token}") as ws:
            buffer: list[dict[str, Any]] = []
            welcome = await next_message(ws, buffer, "welcome")
            assert welcome["user"]["role"] == "viewer"
            snapshot = await next_message(ws, buffer, "snapshot")
            assert snapshot["data"]["state"] == "live" and snapshot["data"]["pinned"] == []

            r = await http.post(
                f"/live/sessions/{sid}/pins", headers=host, json={"product_id": product}
            )
            assert r.status_code == 200, r.text
            pinned = await next_message(ws, buffer, "product.pinned")
            assert pinned["epoch"] == snapshot["epoch"] and pinned["seq"] == snapshot["seq"] + 1
            assert pinned["data"]["product_id"] == product
            assert pinned["data"]["pinned"] == [product]

        async with connect(f"{ws_url}?token={host['Authorization'].split()[1]}") as ws:
            welcome = await next_message(ws, [], "welcome")
            assert welcome["user"]["role"] == "host"


def test_viewer_sees_snapshot_then_pin(server: ApiServer) -> None:
    asyncio.run(_scenario(server.url))
