"""A buyer retries a claim that won, with the same Idempotency-Key, after it was paid or after
it lapsed: 201 again, with the first answer's claim (id, quantity, pay_by, held_until,
order_id) and where the claim stands now, as GET .../claims/{id} says.

The server's clock is shifted by the test (tests.live_api.conftest), so a lapse takes no real
waiting.
"""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from tests.integration.conftest import ADMIN, Shop, sign_up
from tests.live_api.conftest import Clock
from tests.live_api.test_deals_http import claim, live_session, open_deal, settled, wait_for_deal

FIRST_ANSWER = ("id", "deal_id", "quantity", "pay_by", "held_until", "order_id")


@pytest.mark.parametrize("since", ["paid", "lapsed"])
def test_a_retried_claim_answers_201_with_its_first_terms_after_it_was_paid_or_lapsed(
    client: TestClient, clock: Clock, since: str
) -> None:
    shop = Shop(client, bonded=5, direct=0)
    deal = open_deal(client, shop, live_session(client, shop), quantity=1, duration_seconds=600)
    buyer = sign_up(client, f"replay-{since}")
    clock.advance(11)
    first = claim(client, deal["id"], buyer, "lost-answer")
    assert first.status_code == 201, first.text
    placed = settled(client, first.json(), buyer)
    assert placed["state"] == "placed", placed
    order = placed["order"]
    if since == "paid":
        paid = {"payment_ref": "replay-pay-1", "amount_fen": order["total_fen"]}
        r = client.post(f"/orders/{order['id']}/mark-paid", headers=ADMIN, json=paid)
        assert r.status_code == 200, r.text
        wait_for_deal(client, deal["id"], "units_paid", 1, "the deal never heard of the payment")
    clock.advance(120 + 30 + 1)  # past the payment window and the settlement grace
    units_left = client.get(f"/live/deals/{deal['id']}").json()["units_left"]
    assert units_left == (0 if since == "paid" else 1)  # sold for good, or back to the deal

    again = claim(client, deal["id"], buyer, "lost-answer")

    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    retried, claimed = again.json(), first.json()
    assert {f: retried[f] for f in FIRST_ANSWER} == {f: claimed[f] for f in FIRST_ANSWER}
    assert retried["pay_by"] == order["pay_before"] and retried["pay_by"] < retried["held_until"]
    url = f"/live/deals/{deal['id']}/claims/{claimed['id']}"
    seen = client.get(url, headers=buyer).json()
    status = "paid" if since == "paid" else "expired"
    for answer in (retried, seen):  # where the claim stands: the retry says what GET says
        assert (answer["state"], answer["reason"]) == ("placed", None), answer
        assert (answer["order"]["id"], answer["order"]["status"]) == (order["id"], status)
    assert retried["deal"]["units_left"] == units_left  # the deal as it is now
