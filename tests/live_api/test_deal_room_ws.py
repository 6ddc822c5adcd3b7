"""A deal as viewers see it in the room, over a real uvicorn server and the websockets client:
opened (reliable), in the snapshot of a late joiner, units left (reliable, coalesced per tick),
purchases as social proof, sold out and closed (reliable), every reliable event in seq order."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.integration.conftest import ADDRESS, ADMIN, VALID_ID, bearer
from tests.servers import ApiServer


class Viewer:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.buffer, self.seqs = ws, [], []  # type: ignore[var-annotated]

    async def next(self, *types: str, timeout: float = 15) -> dict[str, Any]:
        while True:
            while self.buffer:
                message = self.buffer.pop(0)
                if "seq" in message and message["type"] != "snapshot" and "epoch" in message:
                    self.seqs.append(message["seq"])
                if message["type"] in types:
                    return message
            frame = await asyncio.wait_for(self.ws.recv(), timeout)
            self.buffer.extend(json.loads(line) for line in str(frame).split("\n"))


async def _seed(http: httpx.AsyncClient) -> tuple[dict, str, str]:
    r = await http.post(
        "/admin/merchants",
        headers=ADMIN,
        json={"name": "Seoul", "home_country": "KR", "settlement_currency": "KRW"},
    )
    host = bearer(r.json()["api_key"])
    wh = (
        await http.post(
            "/warehouses",
            headers=host,
            json={"name": "Ningbo", "kind": "bonded", "country": "CN", "address": "Meishan"},
        )
    ).json()["id"]
    product = (
        await http.post(
            "/products",
            headers=host,
            json={
                "sku": "CUSHION",
                "title": "气垫 cushion",
                "brand": "B",
                "origin_country": "KR",
                "hs_code": "3304990099",
                "category": "beauty",
                "list_price_minor": 20000,
                "weight_grams": 90,
            },
        )
    ).json()["id"]
    r = await http.post(
        f"/products/{product}/stock/{wh}/receipts", headers=host, json={"quantity": 5}
    )
    assert r.status_code == 201, r.text
    starts = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    sid = (
        await http.post("/live/sessions", headers=host, json={"title": "Go", "starts_at": starts})
    ).json()["id"]
    assert (await http.post(f"/live/sessions/{sid}/start", headers=host)).status_code == 200
    return host, sid, wh


async def _scenario(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        host, sid, wh = await _seed(http)
        ws_url = url.replace("http://", "ws://") + f"/live/{sid}/ws"
        async with connect(ws_url) as early_ws:
            early = Viewer(early_ws)
            await early.next("snapshot")
            r = await http.post(
                f"/live/sessions/{sid}/deals",
                headers=host,
                json={
                    "sku": "CUSHION",
                    "warehouse_id": wh,
                    "price_fen": 9900,
                    "quantity": 2,
                    "per_buyer_limit": 1,
                    "countdown_seconds": 10,
                    "duration_seconds": 120,
                },
            )
            assert r.status_code == 201, r.text
            deal = r.json()
            opened = await early.next("deal.opened")
            assert opened["data"]["id"] == deal["id"] and opened["data"]["units_left"] == 2

            async with connect(ws_url) as late_ws:
                snapshot = await Viewer(late_ws).next("snapshot")
                (listed,) = snapshot["data"]["deals"]
                assert (listed["id"], listed["phase"]) == (deal["id"], "counting_down")

            opens = datetime.fromisoformat(deal["opens_at"])
            await asyncio.sleep((opens - datetime.now(UTC)).total_seconds() + 0.2)
            for i in range(2):
                buyer = (await http.post("/buyers", json={"display_name": f"b{i}"})).json()
                r = await http.post(
                    f"/live/deals/{deal['id']}/claims",
                    headers=bearer(buyer["token"]) | {"Idempotency-Key": f"k{i}"},
                    json={
                        "identity": {"name": "王小红", "resident_id": VALID_ID},
                        "address": ADDRESS,
                    },
                )
                assert r.status_code == 201, r.text

            # Three paths (at once, the next tick, the next proof flush), so any order; a tick or
            # a flush may fall between the two claims and tell of the first one alone.
            sold_out, units_left, bought, buyers = None, None, 0, []
            while sold_out is None or units_left != 0 or bought < 2:
                message = await early.next("deal.sold_out", "deal.units_left", "deal.bought")
                data = message["data"]
                if message["type"] == "deal.sold_out":
                    sold_out = data
                elif message["type"] == "deal.units_left":
                    assert data["deal_id"] == deal["id"]
                    assert message["epoch"] == opened["epoch"] and message["seq"] > opened["seq"]
                    units_left = data["units_left"]
                else:
                    bought, buyers = bought + data["units"], buyers + data["buyers"]
            assert sold_out["units_left"] == 0 and (bought, len(buyers)) == (2, 2)
            assert all("王" in name and "小红" not in name for name in buyers)

            r = await http.post(f"/live/deals/{deal['id']}/close", headers=host)
            assert r.status_code == 200, r.text
            closed = await early.next("deal.closed")
            assert closed["data"]["phase"] == "closed"
            assert early.seqs == sorted(early.seqs)
            assert early.seqs == list(range(early.seqs[0], early.seqs[0] + len(early.seqs)))


def test_viewers_follow_a_deal_from_opening_to_sell_out(server: ApiServer) -> None:
    asyncio.run(_scenario(server.url))


async def _claim(http: httpx.AsyncClient, deal_id: str, token: str, key: str, n: int) -> dict:
    r = await http.post(
        f"/live/deals/{deal_id}/claims",
        headers=bearer(token) | {"Idempotency-Key": key},
        json={
            "identity": {"name": "王小红", "resident_id": VALID_ID},
            "address": ADDRESS,
            "quantity": n,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


async def _told(viewer: Viewer, timeout: float = 15) -> list[dict[str, Any]]:
    """Every `claim.*` message a viewer gets until `timeout` passes with nothing more."""
    told = []
    try:
        while True:
            told.append(await viewer.next("claim.placed", "claim.refused", timeout=timeout))
            timeout = 1.0
    except TimeoutError:
        return told


async def _buyers_hear_of_their_orders(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=20) as http:
        host, sid, wh = await _seed(http)
        ws_url = url.replace("http://", "ws://") + f"/live/{sid}/ws"
        # 3,000 CNY a unit: one unit is an order; two are over the single-order limit (5,000 CNY)
        terms = {"sku": "CUSHION", "warehouse_id": wh, "price_fen": 300_000, "quantity": 3}
        terms |= {"per_buyer_limit": 2, "countdown_seconds": 10, "duration_seconds": 120}
        r = await http.post(f"/live/sessions/{sid}/deals", headers=host, json=terms)
        assert r.status_code == 201, r.text
        deal = r.json()
        alice, bob = [(await http.post("/buyers", json={"display_name": n})).json() for n in "ab"]
        async with (
            connect(f"{ws_url}?token={alice['token']}") as alice_ws,
            connect(f"{ws_url}?token={bob['token']}") as bob_ws,
            connect(ws_url) as anonymous_ws,
        ):
            watching = [Viewer(ws) for ws in (alice_ws, bob_ws, anonymous_ws)]
            for viewer in watching:
                await viewer.next("snapshot")
            opens = datetime.fromisoformat(deal["opens_at"])
            await asyncio.sleep((opens - datetime.now(UTC)).total_seconds() + 0.2)
            one = await _claim(http, deal["id"], alice["token"], "alice-1", 1)
            two = await _claim(http, deal["id"], bob["token"], "bob-2", 2)
            heard_by_alice, heard_by_bob = [await _told(viewer) for viewer in watching[:2]]
            heard_by_anyone = await _told(watching[2], timeout=1.0)  # both were told by now

    (placed,) = heard_by_alice
    assert placed["type"] == "claim.placed" and "seq" not in placed  # outside the stream
    assert placed["data"]["claim_id"] == one["id"] and placed["data"]["order_id"] == one["order_id"]
    assert (placed["data"]["state"], placed["data"]["pay_by"]) == ("placed", one["pay_by"])
    assert placed["data"]["total_fen"] >= 300_000 and placed["data"]["reason"] is None
    (refused,) = heard_by_bob
    assert refused["type"] == "claim.refused" and refused["data"]["claim_id"] == two["id"]
    assert "single-order limit" in refused["data"]["reason"], refused
    assert heard_by_anyone == []


def test_a_buyer_watching_the_room_hears_whether_their_order_was_placed(
    server: ApiServer,
) -> None:
    asyncio.run(_buyers_hear_of_their_orders(server.url))
