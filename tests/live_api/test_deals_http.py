"""Flash deals over HTTP on both stores: open, claim, sell out, expire, pay, cancel, refuse.

The server's clock is shifted by the test (deals count down at least 10 s before they open, and
claims lapse minutes later), so these scenarios take no real waiting.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import msgspec
import pytest
from litestar.testing import TestClient

from livestream.api import responses as out
from tests.integration.conftest import ADDRESS, ADMIN, VALID_ID, Shop, sign_up
from tests.live_api.conftest import Clock

PROBLEM = "application/problem+json"


def live_session(client: TestClient, shop: Shop) -> str:
    starts = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    r = client.post(
        "/live/sessions", headers=shop.headers, json={"title": "双11", "starts_at": starts}
    )
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert client.post(f"/live/sessions/{sid}/start", headers=shop.headers).status_code == 200
    return sid


def deal_terms(shop: Shop, **overrides: Any) -> dict[str, Any]:
    return {
        "sku": "SUN-50",
        "warehouse_id": shop.bonded,
        "price_fen": 9900,
        "quantity": 3,
        "per_buyer_limit": 1,
        "countdown_seconds": 10,
        "duration_seconds": 60,
        "payment_window_seconds": 120,
    } | overrides


def claim(client: TestClient, deal_id: str, buyer: dict, key: str, **extra: Any):
    body = {"identity": {"name": "王小红", "resident_id": VALID_ID}, "address": ADDRESS} | extra
    return client.post(
        f"/live/deals/{deal_id}/claims", headers=buyer | {"Idempotency-Key": key}, json=body
    )


def settled(client: TestClient, claimed: dict, buyer: dict) -> dict:
    """The claim once its order is placed or refused (that happens after the claim's answer,
    in the background: livestream.engine.placement)."""
    url = f"/live/deals/{claimed['deal_id']}/claims/{claimed['id']}"
    deadline = time.monotonic() + 10
    while True:
        seen = client.get(url, headers=buyer)
        assert seen.status_code == 200, seen.text
        if seen.json()["state"] != "placing":
            return seen.json()
        assert time.monotonic() < deadline, "the claim's order was never placed"
        time.sleep(0.02)


def claimed_order(client: TestClient, deal_id: str, buyer: dict, key: str, **extra: Any) -> dict:
    """Claim, then the order placed from the claim."""
    r = claim(client, deal_id, buyer, key, **extra)
    assert r.status_code == 201, r.text
    placed = settled(client, r.json(), buyer)
    assert placed["state"] == "placed", placed
    return placed["order"]


@contextmanager
def writer_busy(client: TestClient) -> Iterator[None]:
    """As if the process were not keeping up (a claim in flight for longer than it may wait): a
    claim that needs the deal's writer is shed (503), so only what the owner refuses on its own
    is answered 409."""
    admission = client.app.state.live.admission
    ticket, clock = admission.admit(), admission.clock
    admission.clock = lambda: clock() + admission.max_wait_s + 1
    try:
        yield
    finally:
        admission.clock = clock
        admission.done(ticket)


def wait_for_deal(client: TestClient, deal_id: str, field: str, value: Any, why: str) -> None:
    """Until the deal shows `value` in `field` (settlement tells the deal in the background)."""
    deadline = time.monotonic() + 10
    while client.get(f"/live/deals/{deal_id}").json()[field] != value:
        assert time.monotonic() < deadline, why
        time.sleep(0.05)


def open_deal(client: TestClient, shop: Shop, sid: str, **overrides: Any) -> dict:
    r = client.post(
        f"/live/sessions/{sid}/deals", headers=shop.headers, json=deal_terms(shop, **overrides)
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_buyers_claim_a_deal_until_it_sells_out(client: TestClient, clock: Clock) -> None:
    shop = Shop(client, bonded=5, direct=0)
    sid = live_session(client, shop)
    deal = open_deal(client, shop, sid)
    assert (deal["phase"], deal["units_left"]) == ("counting_down", 3)
    assert shop.available() == 2  # the deal's units are set aside at once

    buyers = [sign_up(client, f"b{i}") for i in range(4)]
    early = claim(client, deal["id"], buyers[0], "k0")
    assert early.status_code == 409 and early.headers["content-type"] == PROBLEM

    clock.advance(11)
    claims = []
    for i, buyer in enumerate(buyers[:3]):
        r = claim(client, deal["id"], buyer, f"k{i}")
        assert r.status_code == 201, r.text
        claims.append(r.json())
    first = claims[0]
    assert (first["state"], first["order"], first["deal"]["id"]) == ("placing", None, deal["id"])
    placed = settled(client, first, buyers[0])
    for answer in (first, placed):  # exactly the documented shape: no field missing or unknown
        assert msgspec.json.decode(json.dumps(answer), type=out.Claim) is not None
    order = placed["order"]
    assert placed["state"] == "placed" and order["id"] == first["order_id"]
    assert order["status"] == "placed" and order["lines"][0]["unit_price_minor"] == 9900
    assert order["total_fen"] > 9900  # freight and CBEC tax on top of the deal price
    assert order["attribution"]["deal_id"] == deal["id"]
    assert order["attribution"]["session_id"] == sid
    assert order["attribution"]["claim_id"] == first["id"]
    assert first["pay_by"] == order["pay_before"]
    url = f"/live/deals/{deal['id']}/claims/{first['id']}"
    assert client.get(url, headers=buyers[1]).status_code == 404  # not someone else's to see
    for bad, headers, status in (
        (url.replace(first["id"], "not-a-uuid"), buyers[0], 404),
        (url.replace(first["id"], str(uuid4())), buyers[0], 404),  # no such claim
        (url.replace(deal["id"], str(uuid4())), buyers[0], 404),  # no such deal
        (url, shop.headers, 403),  # claims are buyers'
        (url, {}, 401),
    ):
        r = client.get(bad, headers=headers)
        assert (r.status_code, r.headers["content-type"]) == (status, PROBLEM), (bad, r.text)

    sold_out = claim(client, deal["id"], buyers[3], "k3")
    assert sold_out.status_code == 409, sold_out.text
    assert sold_out.json()["units_left"] == 0

    limit = claim(client, deal["id"], buyers[0], "another-key")
    assert limit.status_code == 409 and "per buyer" in limit.json()["detail"]

    again = claim(client, deal["id"], buyers[0], "k0")
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert (again.json()["id"], again.json()["order_id"]) == (first["id"], order["id"])

    other = claim(client, deal["id"], buyers[0], "k0", quantity=2)
    assert other.status_code == 422  # same key, different request

    seen = client.get(f"/live/deals/{deal['id']}").json()
    assert (seen["units_left"], seen["phase"]) == (0, "open")
    assert shop.available() == 2  # nothing sold beyond the deal's own units


@pytest.mark.parametrize("ending", ["the host closes it", "its time is up"])
def test_a_sold_out_deal_that_ended_refuses_claims_as_closed(
    client: TestClient, clock: Clock, ending: str
) -> None:
    """Also when its time is up before the owner's sweep records the end: the owner's fast
    refusals (sold out; at the limit) already say so."""
    shop = Shop(client, bonded=5, direct=0)
    deal = open_deal(client, shop, live_session(client, shop), quantity=1)
    buyers = [sign_up(client, f"sc{i}") for i in range(2)]
    clock.advance(11)
    assert claim(client, deal["id"], buyers[0], "won").status_code == 201
    assert claim(client, deal["id"], buyers[1], "late").json()["units_left"] == 0  # learnt
    if ending == "the host closes it":
        closed = client.post(f"/live/deals/{deal['id']}/close", headers=shop.headers)
        assert closed.status_code == 200 and closed.json()["phase"] == "closed"
    else:
        clock.advance(60)  # the deal lasts 60 s (deal_terms)
    for buyer, key in ((buyers[1], "after"), (buyers[0], "again")):  # sold out; at the limit
        r = claim(client, deal["id"], buyer, key)
        assert r.status_code == 409 and r.json()["detail"] == "the deal is closed", r.text


def test_an_unpaid_claim_lapses_and_its_unit_returns_to_the_deal(
    client: TestClient, clock: Clock
) -> None:
    shop = Shop(client, bonded=5, direct=0)
    deal = open_deal(client, shop, live_session(client, shop), quantity=1, duration_seconds=600)
    clock.advance(11)
    first, second = sign_up(client, "a"), sign_up(client, "b")
    assert claim(client, deal["id"], first, "a1").status_code == 201
    assert claim(client, deal["id"], second, "b1").status_code == 409
    clock.advance(120 + 30)  # the payment window, then the settlement grace
    assert client.get(f"/live/deals/{deal['id']}").json()["units_left"] == 1
    r = claim(client, deal["id"], second, "b2")
    assert r.status_code == 201, r.text


def test_a_paid_claim_takes_its_unit_from_the_deal_for_good(
    client: TestClient, clock: Clock
) -> None:
    shop = Shop(client, bonded=5, direct=0)
    deal = open_deal(client, shop, live_session(client, shop), quantity=2)
    clock.advance(11)
    buyer = sign_up(client)
    order = claimed_order(client, deal["id"], buyer, "pay-me")
    r = client.post(
        f"/orders/{order['id']}/mark-paid",
        headers=ADMIN,
        json={"payment_ref": "test-pay-1", "amount_fen": order["total_fen"]},
    )
    assert r.status_code == 200, r.text
    wait_for_deal(client, deal["id"], "units_paid", 1, "the deal never heard of the payment")
    clock.advance(3600)  # long after every deadline: the paid unit is still sold
    seen = client.get(f"/live/deals/{deal['id']}").json()
    assert (seen["units_paid"], seen["units_left"], seen["phase"]) == (1, 1, "closed")
    stock = client.get(f"/products/{shop.product}/stock", headers=shop.headers).json()
    assert stock["available"] == 4  # the deal's hold lapsed; the paid unit stays reserved


def test_cancelling_a_claimed_order_returns_the_unit_at_once(
    client: TestClient, clock: Clock
) -> None:
    shop = Shop(client, bonded=5, direct=0)
    deal = open_deal(client, shop, live_session(client, shop), quantity=1)
    clock.advance(11)
    buyer = sign_up(client)
    order = claimed_order(client, deal["id"], buyer, "c1")
    r = client.post(f"/orders/{order['id']}/cancel", headers=buyer, json={"reason": "oops"})
    assert r.status_code == 200, r.text
    wait_for_deal(client, deal["id"], "units_left", 1, "the cancelled claim's unit never came back")
    again = claim(client, deal["id"], buyer, "c1")  # the same key: the first claim, as it stands
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true", again.text
    assert (again.json()["order_id"], again.json()["pay_by"]) == (order["id"], order["pay_before"])
    assert again.json()["order"]["status"] == "cancelled"
    assert client.get(f"/live/deals/{deal['id']}").json()["units_left"] == 1  # not a second claim


def test_the_room_hears_when_a_cancelled_order_returns_its_unit(
    client: TestClient, clock: Clock
) -> None:
    shop = Shop(client, bonded=5, direct=0)
    sid = live_session(client, shop)
    deal = open_deal(client, shop, sid, quantity=1)
    clock.advance(11)
    buyer = sign_up(client)
    order = claimed_order(client, deal["id"], buyer, "room-c1")
    with client.websocket_connect(f"/live/{sid}/ws") as ws:
        messages: list[dict[str, Any]] = []
        snapshot = heard(ws, messages, lambda m: m["type"] == "snapshot")
        assert [d["units_left"] for d in snapshot["data"]["deals"]] == [0]
        r = client.post(f"/orders/{order['id']}/cancel", headers=buyer, json={"reason": "oops"})
        assert r.status_code == 200, r.text
        back = heard(ws, messages, lambda m: bool(units_left(m)))
        assert back["data"] == {"deal_id": deal["id"], "units_left": 1}


def test_after_a_cancelled_claim_the_owner_still_refuses_without_its_writer(
    client: TestClient, clock: Clock
) -> None:
    shop = Shop(client, bonded=5, direct=0)
    deal = open_deal(client, shop, live_session(client, shop), quantity=1)
    a, b, c = (sign_up(client, f"cc{i}") for i in range(3))
    clock.advance(11)
    order = claimed_order(client, deal["id"], a, "a1")
    assert client.post(f"/orders/{order['id']}/cancel", headers=a, json={}).status_code == 200
    wait_for_deal(client, deal["id"], "units_left", 1, "the cancelled claim's unit never came back")
    assert claim(client, deal["id"], b, "b1").status_code == 201  # the unit a gave back
    assert claim(client, deal["id"], c, "c1").json()["units_left"] == 0  # sold out again

    with writer_busy(client):
        answers = {who: claim(client, deal["id"], buyer, f"{who}2") for who, buyer in
                   (("a", a), ("b", b), ("c", c))}  # fmt: skip
    assert {who: r.status_code for who, r in answers.items()} == {"a": 409, "b": 409, "c": 409}
    assert answers["a"].json()["units_left"] == 0  # a's released claim no longer counts for a
    assert "per buyer" in answers["b"].json()["detail"]
    assert answers["c"].json()["units_left"] == 0


def test_a_payment_leaves_a_sold_out_deal_refused_without_its_writer(
    client: TestClient, clock: Clock
) -> None:
    shop = Shop(client, bonded=5, direct=0)
    deal = open_deal(client, shop, live_session(client, shop), quantity=1)
    a, b = sign_up(client, "pa"), sign_up(client, "pb")
    clock.advance(11)
    order = claimed_order(client, deal["id"], a, "a1")
    assert claim(client, deal["id"], b, "b1").json()["units_left"] == 0  # learnt: sold out
    paid = {"payment_ref": "test-pay-2", "amount_fen": order["total_fen"]}
    assert client.post(f"/orders/{order['id']}/mark-paid", headers=ADMIN, json=paid).is_success
    wait_for_deal(client, deal["id"], "units_paid", 1, "the deal never heard of the payment")

    with writer_busy(client):
        again = claim(client, deal["id"], b, "b2")  # a paid unit never comes back
    assert again.status_code == 409 and again.json()["units_left"] == 0, again.text


def test_an_order_refused_after_the_claim_returns_the_units_and_says_why(
    client: TestClient, clock: Clock
) -> None:
    shop = Shop(client, bonded=5, direct=0)
    # two units at 3,000 CNY make one order over the CBEC single-order limit (5,000 CNY)
    terms = {"quantity": 2, "per_buyer_limit": 2, "price_fen": 300_000}
    sid = live_session(client, shop)
    deal = open_deal(client, shop, sid, **terms)
    buyer = sign_up(client, "big")
    clock.advance(11)
    with client.websocket_connect(f"/live/{sid}/ws") as ws:
        messages: list[dict[str, Any]] = []
        heard(ws, messages, lambda m: m["type"] == "snapshot")
        r = claim(client, deal["id"], buyer, "two", quantity=2)
        assert r.status_code == 201 and r.json()["state"] == "placing", r.text
        back = heard(ws, messages, lambda m: units_left(m) == 2)
        assert back["data"]["deal_id"] == deal["id"]  # the room hears the units came back
    refused = settled(client, r.json(), buyer)
    assert (refused["state"], refused["order"]) == ("refused", None)
    assert "single-order limit" in refused["reason"], refused["reason"]
    wait_for_deal(client, deal["id"], "units_left", 2, "the refused claim's units never came back")
    assert client.get(f"/orders/{r.json()['order_id']}", headers=buyer).status_code == 404
    again = claim(client, deal["id"], buyer, "two", quantity=2)  # the same key: the same claim
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true", again.text
    assert again.json() | {"deal": None} == refused | {"deal": None}  # refused, and why
    assert (again.json()["pay_by"], again.json()["held_until"]) == (
        r.json()["pay_by"],
        r.json()["held_until"],
    )
    one = claimed_order(client, deal["id"], buyer, "one", quantity=1)  # within the limit
    assert one["lines"][0]["quantity"] == 1


def test_a_deal_needs_the_stock_and_a_live_session_it_names(client: TestClient) -> None:
    shop = Shop(client, bonded=2, direct=0)
    sid = live_session(client, shop)
    too_many = client.post(
        f"/live/sessions/{sid}/deals", headers=shop.headers, json=deal_terms(shop, quantity=3)
    )
    assert too_many.status_code == 409 and too_many.headers["content-type"] == PROBLEM
    assert shop.available() == 2  # nothing half-written
    for field, value in [("countdown_seconds", 5), ("duration_seconds", 5), ("price_fen", 0)]:
        r = client.post(
            f"/live/sessions/{sid}/deals",
            headers=shop.headers,
            json=deal_terms(shop, **{field: value}),
        )
        assert r.status_code == 422 and r.json()["field"] == field, r.text
    stranger = Shop(client, name="Other", bonded=0, direct=0)
    r = client.post(f"/live/sessions/{sid}/deals", headers=stranger.headers, json=deal_terms(shop))
    assert r.status_code == 404
    assert client.get(f"/live/sessions/{sid}/deals").json()["items"] == []


def test_claims_refuse_bad_requests_with_problems(client: TestClient, clock: Clock) -> None:
    shop = Shop(client, bonded=5, direct=0)
    deal = open_deal(client, shop, live_session(client, shop))
    clock.advance(11)
    buyer = sign_up(client)
    url = f"/live/deals/{deal['id']}/claims"
    body = {"identity": {"name": "王小红", "resident_id": VALID_ID}, "address": ADDRESS}
    cases = [
        (client.post(url, headers=buyer, json=body), 422),  # no Idempotency-Key
        (client.post(url, headers=buyer | {"Idempotency-Key": "x"}, content=b"{"), 400),
        (
            claim(client, deal["id"], buyer, "bad-id", identity={"name": "王", "resident_id": "1"}),
            422,
        ),
        (claim(client, deal["id"], buyer, "q", quantity=0), 422),
        (claim(client, "not-a-uuid", buyer, "u"), 404),
        (claim(client, "00000000-0000-0000-0000-000000000001", buyer, "n"), 404),
        (claim(client, deal["id"], shop.headers, "m"), 403),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == PROBLEM
    assert client.get(f"/live/deals/{deal['id']}").json()["units_left"] == 3


def test_moderators_open_deals_and_issue_coupons(client: TestClient) -> None:
    shop = Shop(client, bonded=5, direct=0)
    sid = live_session(client, shop)
    signed_up = client.post("/buyers", json={"display_name": "mod"}).json()
    mod, mod_id = {"Authorization": f"Bearer {signed_up['token']}"}, signed_up["id"]
    body = {"quantity": 100, "per_buyer_limit": 1, "percent_off": 10}
    assert client.post(f"/live/sessions/{sid}/coupons", headers=mod, json=body).status_code == 404
    r = client.put(f"/live/sessions/{sid}/moderators/{mod_id}", headers=shop.headers)
    assert r.status_code == 200 and r.json()["moderators"] == [mod_id]
    r = client.post(f"/live/sessions/{sid}/coupons", headers=mod, json=body)
    assert r.status_code == 201 and r.json()["percent_off"] == 10
    both = body | {"amount_fen": 500}
    bad = client.post(f"/live/sessions/{sid}/coupons", headers=mod, json=both)
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    r = client.post(f"/live/sessions/{sid}/deals", headers=mod, json=deal_terms(shop))
    assert r.status_code == 201, r.text
    assert client.get(f"/live/sessions/{sid}").json()["coupons"][0]["percent_off"] == 10


def test_a_linked_creator_presents_and_claims_are_attributed_to_them(
    client: TestClient, clock: Clock
) -> None:
    shop = Shop(client, bonded=5, direct=0)
    kol = client.post("/buyers", json={"display_name": "KOL"}).json()
    r = client.post(
        "/creators",
        headers=shop.headers | {"Idempotency-Key": "kol"},
        json={"user_id": kol["id"], "display_name": "小红薯", "commission_rate_bp": 800},
    )
    assert r.status_code == 201, r.text
    creator_id = r.json()["id"]
    starts = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    body = {"title": "KOL live", "starts_at": starts, "creator_id": creator_id}
    stranger = Shop(client, name="Other", bonded=0, direct=0)
    assert client.post("/live/sessions", headers=stranger.headers, json=body).status_code == 404
    r = client.post("/live/sessions", headers=shop.headers, json=body)
    assert r.status_code == 201 and r.json()["creator_id"] == creator_id
    sid = r.json()["id"]
    assert client.post(f"/live/sessions/{sid}/start", headers=shop.headers).status_code == 200
    deal = open_deal(client, shop, sid)
    clock.advance(11)
    order = claimed_order(client, deal["id"], sign_up(client), "kol-1")
    assert order["attribution"]["creator_id"] == creator_id
    assert order["attribution"]["host_merchant_id"] == shop.id


def test_the_room_hears_when_an_unpaid_claim_returns_its_unit(
    client: TestClient, clock: Clock
) -> None:
    shop = Shop(client, bonded=5, direct=0)
    sid = live_session(client, shop)
    deal = open_deal(client, shop, sid, quantity=1, duration_seconds=600)
    clock.advance(11)
    assert claim(client, deal["id"], sign_up(client), "lapse-1").status_code == 201
    with client.websocket_connect(f"/live/{sid}/ws") as ws:
        messages: list[dict[str, Any]] = []
        snapshot = heard(ws, messages, lambda m: m["type"] == "snapshot")
        assert [d["units_left"] for d in snapshot["data"]["deals"]] == [0]
        clock.advance(120 + 30)  # past the claim's deadline and the settlement grace
        back = heard(ws, messages, lambda m: bool(units_left(m)))
        assert back["data"] == {"deal_id": deal["id"], "units_left": 1}


def units_left(message: dict[str, Any]) -> int | None:
    return message["data"]["units_left"] if message["type"] == "deal.units_left" else None


def heard(ws: Any, messages: list[dict[str, Any]], wanted: Any) -> dict[str, Any]:
    """The first room message `wanted` accepts, within 10 s (frames may batch several)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        while messages:
            message = messages.pop(0)
            if wanted(message):
                return message
        frame = ws.receive_text(timeout=deadline - time.monotonic())
        messages.extend(json.loads(line) for line in frame.split("\n"))
    raise AssertionError("the room never said so")
