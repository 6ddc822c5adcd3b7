"""One live room served by two API processes on PostgreSQL: what the host does through one
process reaches viewers connected to the other (LISTEN/NOTIFY backplane), in the same order,
and the end of the show closes the room in both."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from redcart.wiring import migrate
from tests.conftest import make_settings
from tests.integration.conftest import ADMIN, bearer
from tests.servers import ApiServer, settings_env

pytestmark = pytest.mark.postgres


async def _events(ws: ClientConnection, n: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while len(seen) < n:
        frame = await asyncio.wait_for(ws.recv(), 10)
        for line in str(frame).split("\n"):
            message = json.loads(line)
            if message["type"].startswith("product."):
                seen.append(message)
    return seen


async def _ended(ws: ClientConnection) -> dict[str, Any]:
    """`session.ended`, then the server's close: what a viewer gets when the show ends."""
    ended: dict[str, Any] = {}
    with pytest.raises(ConnectionClosed):
        while True:
            frame = await asyncio.wait_for(ws.recv(), 10)
            for line in str(frame).split("\n"):
                message = json.loads(line)
                if message["type"] == "session.ended":
                    ended = message
    return ended


async def _scenario(a: str, b: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(
            a + "/admin/merchants",
            headers=ADMIN,
            json={"name": "Two", "home_country": "JP", "settlement_currency": "JPY"},
        )
        host = bearer(r.json()["api_key"])
        products = []
        for n in range(3):
            r = await http.post(
                a + "/products",
                headers=host,
                json={
                    "sku": f"P{n}",
                    "title": f"商品 {n}",
                    "brand": "B",
                    "origin_country": "JP",
                    "hs_code": "3304990099",
                    "category": "beauty",
                    "list_price_minor": 1000,
                    "weight_grams": 90,
                },
            )
            products.append(r.json()["id"])
        starts = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        r = await http.post(
            a + "/live/sessions", headers=host, json={"title": "x", "starts_at": starts}
        )
        sid = r.json()["id"]
        assert (await http.post(f"{a}/live/sessions/{sid}/start", headers=host)).status_code == 200

        rooms = [u.replace("http://", "ws://") + f"/live/{sid}/ws" for u in (a, b)]
        async with connect(rooms[0]) as on_a, connect(rooms[1]) as on_b:
            for ws in (on_a, on_b):  # welcome and snapshot first
                await asyncio.wait_for(ws.recv(), 10)
            for n, product in enumerate(products):
                target = (a, b)[n % 2]  # the host's calls land on either process
                r = await http.post(
                    f"{target}/live/sessions/{sid}/pins", headers=host, json={"product_id": product}
                )
                assert r.status_code == 200, r.text
            seen_a, seen_b = await _events(on_a, 3), await _events(on_b, 3)
            r = await http.post(f"{a}/live/sessions/{sid}/end", headers=host)
            assert r.status_code == 200, r.text
            for ws in (on_a, on_b):  # the viewer on the other process is told and closed too
                ended = await _ended(ws)
                assert ended["data"]["state"] == "ended" and ws.close_code == 4010
    for seen in (seen_a, seen_b):
        assert [m["data"]["product_id"] for m in seen] == products
        seqs = [m["seq"] for m in seen]
        assert seqs == list(range(seqs[0], seqs[0] + 3))


def test_a_room_spans_two_api_processes(postgres_url: str, tmp_path: Path) -> None:
    settings = make_settings(postgres_url, tmp_path / "var")
    migrate(settings)
    env = settings_env(postgres_url, tmp_path / "var") | {"REDCART_PAYMENTS": "off"}
    servers = [ApiServer(env, tmp_path / f"s{i}.log") for i in range(2)]
    try:
        for server in servers:
            server.wait_ready()
        asyncio.run(_scenario(servers[0].url, servers[1].url))
    finally:
        for server in servers:
            server.stop()
