"""A coupon issued in a live room, used at checkout: its amount or percent comes off the goods
before tax, and its quantity and per-buyer limit hold; a cancelled or lapsed order gives it back."""

from __future__ import annotations

import json
import time
from typing import Any

from litestar.testing import TestClient

from tests.integration.conftest import ADMIN, Shop, order_body, sign_up
from tests.live_api.conftest import Clock
from tests.live_api.test_deals_http import PROBLEM, live_session


def issue(client: TestClient, shop: Shop, sid: str, **terms: Any) -> dict:
    r = client.post(f"/live/sessions/{sid}/coupons", headers=shop.headers, json=terms)
    assert r.status_code == 201, r.text
    return r.json()


def order(client: TestClient, shop: Shop, buyer: dict, sid: str, coupon: str, **extra: Any):
    ref = {"session_id": sid, "coupon_id": coupon}
    return client.post("/orders", headers=buyer, json=order_body(shop, coupon=ref, **extra))


def refused(response: Any, status: int, reason: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["field"] == "coupon"
    if reason is not None:
        assert body["reason"] == reason


def test_an_amount_off_coupon_prices_the_order_and_keeps_to_its_limits(
    client: TestClient,
) -> None:
    shop = Shop(client, bonded=10, direct=0)
    sid = live_session(client, shop)
    coupon = issue(client, shop, sid, amount_fen=500, quantity=2, per_buyer_limit=1)["id"]
    alice, bob, carol = (sign_up(client, n) for n in ("alice", "bob", "carol"))
    full = client.post("/orders", headers=carol, json=order_body(shop)).json()["quote"]

    first = order(client, shop, alice, sid, coupon)
    assert first.status_code == 201, first.text
    quote = first.json()["quote"]
    assert quote["discount_fen"] == 500 and first.json()["coupon_id"] == coupon
    assert quote["goods_fen"] == full["goods_fen"] - 500
    assert quote["tax_fen"] < full["tax_fen"]  # tax is on what the buyer pays for the goods
    assert quote["total_fen"] == quote["goods_fen"] + quote["freight_fen"] + quote["tax_fen"]

    refused(order(client, shop, alice, sid, coupon), 409, "per_buyer_limit")
    assert order(client, shop, bob, sid, coupon).status_code == 201
    refused(order(client, shop, carol, sid, coupon), 409, "used_up")

    r = client.post(f"/orders/{first.json()['id']}/cancel", headers=alice, json={"reason": "x"})
    assert r.status_code == 200, r.text
    assert order(client, shop, carol, sid, coupon).status_code == 201  # alice's use came back


def test_a_lapsed_unpaid_order_gives_its_coupon_back_and_a_paid_one_keeps_it(
    client: TestClient, clock: Clock
) -> None:
    shop = Shop(client, bonded=10, direct=0)
    sid = live_session(client, shop)
    coupon = issue(client, shop, sid, percent_off=10, quantity=1, per_buyer_limit=1)["id"]
    alice, bob = sign_up(client, "alice"), sign_up(client, "bob")
    placed = order(client, shop, alice, sid, coupon)
    assert placed.status_code == 201, placed.text
    full = client.post("/orders", headers=bob, json=order_body(shop)).json()["quote"]
    assert placed.json()["quote"]["goods_fen"] == round(full["goods_fen"] * 0.9)
    refused(order(client, shop, bob, sid, coupon), 409, "used_up")

    clock.advance(16 * 60)  # past the order's payment window: its hold on the coupon lapses
    taken = order(client, shop, bob, sid, coupon)
    assert taken.status_code == 201, taken.text
    paid = client.post(
        f"/orders/{taken.json()['id']}/mark-paid",
        headers=ADMIN,
        json={"payment_ref": "p-1", "amount_fen": taken.json()["total_fen"]},
    )
    assert paid.status_code == 200, paid.text
    clock.advance(60 * 60)  # paid: the use stays taken for good
    refused(order(client, shop, alice, sid, coupon), 409, "used_up")


def test_coupons_refuse_what_they_do_not_cover(client: TestClient, clock: Clock) -> None:
    shop, other = Shop(client, bonded=10, direct=0), Shop(client, name="Other", direct=0)
    sid = live_session(client, shop)
    coupon = issue(client, shop, sid, amount_fen=300, quantity=5, per_buyer_limit=5)["id"]
    buyer = sign_up(client, "buyer")
    ref = {"session_id": sid, "coupon_id": coupon}
    cases = [
        (client.post("/orders", headers=buyer, json=order_body(other, coupon=ref)), 422),
        (order(client, shop, buyer, sid, "not-a-uuid"), 422),
        (order(client, shop, buyer, sid, "00000000-0000-4000-8000-000000000000"), 422),
        (order(client, shop, buyer, "00000000-0000-4000-8000-000000000000", coupon), 422),
        (order(client, shop, buyer, sid, coupon, promo_code="KOL20"), 422),
        (client.post("/orders", headers=buyer, json=order_body(shop, coupon={"id": 1})), 400),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == PROBLEM
    assert client.post(f"/live/sessions/{sid}/end", headers=shop.headers).status_code == 200
    assert order(client, shop, buyer, sid, coupon).status_code == 201  # just after the show
    clock.advance(25 * 60 * 60)
    refused(order(client, shop, buyer, sid, coupon), 409, "expired")
    mine = client.get("/orders", headers=buyer).json()["items"]
    assert len(mine) == 1  # nothing refused above left an order behind


class Room:
    """The messages of one room socket (TestClient's websocket), read up to the one wanted."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.messages = ws, []  # type: ignore[var-annotated]

    def until(self, wanted: Any, seconds: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            while self.messages:
                message = self.messages.pop(0)
                if wanted(message):
                    return message
            frame = self.ws.receive_text(timeout=deadline - time.monotonic())
            self.messages.extend(json.loads(line) for line in frame.split("\n"))
        raise AssertionError("the room never said so")

    def left(self) -> int:
        return self.until(lambda m: m["type"] == "coupon.left")["data"]["left"]


def uses_left(session: dict, coupon_id: str) -> int:
    (coupon,) = [c for c in session["coupons"] if c["id"] == coupon_id]
    return coupon["left"]


def test_the_room_and_the_session_say_how_many_uses_are_left(
    client: TestClient, clock: Clock
) -> None:
    shop = Shop(client, bonded=10, direct=0)
    sid = live_session(client, shop)
    coupon = issue(client, shop, sid, amount_fen=300, quantity=2, per_buyer_limit=1)
    assert coupon["left"] == 2
    alice, bob = sign_up(client, "alice"), sign_up(client, "bob")

    def state() -> int:
        return uses_left(client.get(f"/live/sessions/{sid}").json(), coupon["id"])

    with client.websocket_connect(f"/live/{sid}/ws") as ws:
        room = Room(ws)
        snapshot = room.until(lambda m: m["type"] == "snapshot")
        assert uses_left(snapshot["data"]["session"], coupon["id"]) == 2

        first = order(client, shop, alice, sid, coupon["id"])
        assert first.status_code == 201, first.text
        told = room.until(lambda m: m["type"] == "coupon.left")
        assert told["data"] == {"coupon_id": coupon["id"], "left": 1, "quantity": 2}
        assert "seq" in told and state() == 1  # reliable, so a resume replays it

        assert order(client, shop, bob, sid, coupon["id"]).status_code == 201
        assert room.left() == 0 and state() == 0
        refused(order(client, shop, sign_up(client, "carol"), sid, coupon["id"]), 409, "used_up")

        r = client.post(f"/orders/{first.json()['id']}/cancel", headers=alice, json={"reason": "x"})
        assert r.status_code == 200, r.text
        assert room.left() == 1 and state() == 1

        clock.advance(16 * 60)  # bob's order lapses unpaid; the sweeper records it
        assert state() == 2  # the session counts the lapse at once
        assert room.left() == 2  # the room hears once the expiry is recorded

    with client.websocket_connect(f"/live/{sid}/ws") as ws:
        snapshot = Room(ws).until(lambda m: m["type"] == "snapshot")
        assert uses_left(snapshot["data"]["session"], coupon["id"]) == 2
