"""Whoever may open a flash deal may close it: the host merchant, or a moderator of its session
(a buyer the host named). To anyone else the deal is not there."""

from __future__ import annotations

from litestar.testing import TestClient

from tests.integration.conftest import Shop, sign_up
from tests.live_api.test_deals_http import deal_terms, live_session, open_deal


def test_a_moderator_closes_a_deal_and_nobody_else_but_the_host_may(client: TestClient) -> None:
    shop = Shop(client, bonded=6, direct=0)  # two deals of 3
    sid = live_session(client, shop)
    deal = open_deal(client, shop, sid)
    signed_up = client.post("/buyers", json={"display_name": "mod"}).json()
    mod, mod_id = {"Authorization": f"Bearer {signed_up['token']}"}, signed_up["id"]
    stranger = sign_up(client, "stranger")
    other_shop = Shop(client, name="Other", bonded=0, direct=0)

    for outsider in (mod, stranger, other_shop.headers):  # not yet a moderator: no such deal
        r = client.post(f"/live/deals/{deal['id']}/close", headers=outsider)
        assert r.status_code == 404, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"/live/deals/{deal['id']}").json()["phase"] == "counting_down"

    r = client.put(f"/live/sessions/{sid}/moderators/{mod_id}", headers=shop.headers)
    assert r.status_code == 200, r.text
    r = client.post(f"/live/deals/{deal['id']}/close", headers=mod)
    assert r.status_code == 200, r.text
    assert (r.json()["phase"], r.json()["close_reason"]) == ("closed", "host")
    assert client.get(f"/live/deals/{deal['id']}").json()["phase"] == "closed"

    second = client.post(f"/live/sessions/{sid}/deals", headers=mod, json=deal_terms(shop))
    assert second.status_code == 201, second.text
    refused = client.post(f"/live/deals/{second.json()['id']}/close", headers=stranger)
    assert refused.status_code == 404, refused.text
