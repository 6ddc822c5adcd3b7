"""A merchant's unsold deal units go back on sale when the deal closes, closed by the host or by
its time, while every claim that may still be paid keeps its unit."""

from __future__ import annotations

import time

from litestar.testing import TestClient

from tests.integration.conftest import ADMIN, Shop, sign_up
from tests.live_api.conftest import Clock
from tests.live_api.test_deals_http import claimed_order, live_session, open_deal, wait_for_deal


def _until_available(shop: Shop, units: int, why: str) -> None:
    """The stock's `available` reaches `units` (the claims' follower gives back in the
    background, as it places orders)."""
    deadline = time.monotonic() + 10
    while shop.available() != units:
        assert time.monotonic() < deadline, f"{why}: available {shop.available()}"
        time.sleep(0.05)


def test_closing_a_deal_puts_its_unsold_units_back_on_sale(
    client: TestClient, clock: Clock
) -> None:
    shop = Shop(client, bonded=10, direct=0)
    deal = open_deal(client, shop, live_session(client, shop), quantity=5)
    assert shop.available() == 5
    clock.advance(11)
    paid_by, unpaid_by = sign_up(client, "pays"), sign_up(client, "waits")
    paying = claimed_order(client, deal["id"], paid_by, "p1")
    claimed_order(client, deal["id"], unpaid_by, "w1")

    r = client.post(f"/live/deals/{deal['id']}/close", headers=shop.headers)
    assert r.status_code == 200 and r.json()["units_left"] == 3, r.text
    _until_available(shop, 8, "the three unsold units never came back")

    paid = {"payment_ref": "unsold-1", "amount_fen": paying["total_fen"]}
    r = client.post(f"/orders/{paying['id']}/mark-paid", headers=ADMIN, json=paid)
    assert r.status_code == 200, r.text  # a claim made before the close is still paid
    stock = client.get(f"/products/{shop.product}/stock", headers=shop.headers).json()
    bonded = stock["warehouses"][0]
    assert (bonded["available"], bonded["reserved"]) == (8, 2)  # one paid, one payable
    # the deal hears of the payment in the background; a clock moved on before that would make
    # the news late, and a late payment is refunded (livestream.engine.settlement)
    wait_for_deal(client, deal["id"], "units_paid", 1, "the deal never heard of the payment")
    clock.advance(3600)  # the unpaid claim and the hold lapse
    assert shop.available() == 9


def test_a_deal_whose_time_is_up_puts_its_unsold_units_back_on_sale(
    client: TestClient, clock: Clock
) -> None:
    shop = Shop(client, bonded=10, direct=0)
    deal = open_deal(client, shop, live_session(client, shop), quantity=4, duration_seconds=60)
    clock.advance(11)
    claimed_order(client, deal["id"], sign_up(client), "t1")
    clock.advance(60)  # the deal's time is up; the sweeper records it
    client.blocking_portal.call(client.app.state.live.deal_room.sweep)
    assert client.get(f"/live/deals/{deal['id']}").json()["phase"] == "closed"
    _until_available(shop, 9, "the three unsold units never came back")
