"""The product page through the API, on both stores: one read shows the product, its landed
price, stock per warehouse, offers by other merchants, notes, rating, live sessions, sales."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from litestar.testing import TestClient

from projections.api.pages import REUSE_AT_MOST, reusable_until
from tests.projections.conftest import Shop, deliver, eventually, order_body, sign_up


def page(client: TestClient, product_id: str) -> dict:
    r = client.get(f"/products/{product_id}/page")
    assert r.status_code == 200, r.text
    return r.json()


def test_a_product_page_shows_everything_one_read_can(client: TestClient) -> None:
    shop = Shop(client, bonded=5, direct=20)
    rival = Shop(client, name="Osaka Drug", bonded=0, direct=3, price_jpy=2500)
    buyer = sign_up(client)
    oid = deliver(client, shop, buyer, quantity=2)
    r = client.post(f"/orders/{oid}/reviews", headers=buyer,
                    json={"product_id": shop.product, "stars": 5, "text": "好用"})  # fmt: skip
    assert r.status_code == 201, r.text
    note = client.post(
        "/notes",
        headers=buyer,
        json={
            "title": "夏天必备防晒",
            "body": "安热沙真的好用 #防晒",
            "product_ids": [shop.product],
        },
    )
    assert note.status_code == 201, note.text
    held = client.post("/orders", headers=sign_up(client, "b2"), json=order_body(shop, quantity=1))
    assert held.status_code == 201

    def shown() -> dict:
        p = page(client, shop.product)
        assert p["units_sold"] == 2 and p["rating"]["count"] == 1 and p["notes"]
        assert p["available"] == 25 - 2 - 1
        return p

    p = eventually(shown)
    assert p["product"]["title"] == "安热沙 Anessa sunscreen"
    assert p["product"]["merchant_name"] == "Sakura Beauty"
    assert p["cross_border"] == {"mode": "bonded", "customs_mode": "1210", "label": "保税仓发货"}
    kinds = {w["kind"]: w for w in p["warehouses"]}
    assert kinds["bonded"]["available"] == 5 - 2 - 1 and kinds["direct_mail"]["available"] == 20
    assert kinds["bonded"]["delivery"]["min_days"] == 2
    # 3000 JPY at 0.05 = 150 CNY, freight 8 + 2 CNY (90 g bonded), tax 9.1% of 160 CNY
    assert p["landed_price"] == {"goods_fen": 15000, "freight_fen": 1000, "tax_fen": 1456,
                                 "total_fen": 17456}  # fmt: skip
    assert p["rating"]["histogram"] == [0, 0, 0, 0, 1] and p["rating"]["average"] == 5.0
    assert 1 < p["rating"]["stars_lower_bound"] < 5
    assert p["notes"][0]["title"] == "夏天必备防晒" and p["notes"][0]["verified_buyer"] is True
    offers = p["offers"]
    assert [o["merchant_name"] for o in offers] == ["Sakura Beauty", "Osaka Drug"]
    assert offers[1]["ships_from"] == "direct_mail" and offers[1]["in_stock"]
    assert offers[0]["landed_price"]["total_fen"] == 17456
    assert page(client, rival.product)["offers"] == offers


def test_live_sessions_featuring_the_product(client: TestClient) -> None:
    shop = Shop(client)
    starts = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    body = {"title": "开播", "starts_at": starts}
    s = client.post("/live/sessions", headers=shop.headers, json=body)
    assert s.status_code == 201, s.text
    sid = s.json()["id"]

    def scheduled() -> None:
        upcoming = page(client, shop.product)["live_sessions"]["from_this_merchant"]
        assert [(x["id"], x["state"]) for x in upcoming] == [(sid, "scheduled")]

    eventually(scheduled)
    assert client.post(f"/live/sessions/{sid}/start", headers=shop.headers).status_code == 200
    pin = {"product_id": shop.product}
    r = client.post(f"/live/sessions/{sid}/pins", headers=shop.headers, json=pin)
    assert r.status_code == 200, r.text

    def featured() -> None:
        live = page(client, shop.product)["live_sessions"]
        assert [x["id"] for x in live["featuring_now"]] == [sid]
        assert live["featuring_now"][0]["state"] == "live"
        assert live["from_this_merchant"] == []

    eventually(featured)
    assert client.post(f"/live/sessions/{sid}/end", headers=shop.headers).status_code == 200
    eventually(lambda: _none(page(client, shop.product)["live_sessions"]))


def _none(live: dict) -> None:
    assert live == {"featuring_now": [], "from_this_merchant": []}


def test_bad_product_ids_are_problems_not_crashes(client: TestClient) -> None:
    for path, status in (("/products/not-a-uuid/page", 404),
                         ("/products/00000000-0000-0000-0000-000000000000/page", 404)):  # fmt: skip
        r = client.get(path)
        assert r.status_code == status
        assert r.headers["content-type"].startswith("application/problem+json")


def test_projection_status_is_for_admins(client: TestClient) -> None:
    from tests.integration.conftest import ADMIN

    r = client.get("/projections/status", headers=ADMIN)
    assert r.status_code == 200, r.text
    names = {row["projection"] for row in r.json()["projections"]}
    assert {"product_page_g1", "product_page_live_g1", "search_g1", "trending_g1"} <= names
    assert client.get("/projections/status").status_code == 401
    buyer = sign_up(client)
    assert client.get("/projections/status", headers=buyer).status_code == 403


def test_a_rendered_page_is_reused_for_a_second_unless_asked_fresh(client: TestClient) -> None:
    shop = Shop(client, bonded=5, direct=0)

    def stocked() -> None:
        assert page(client, shop.product)["available"] == 5

    eventually(stocked)
    assert client.get(f"/products/{shop.product}/page").headers["cache-control"] == (
        "public, max-age=1"
    )
    shop.receive(shop.bonded, 3)

    def fresh() -> None:
        r = client.get(f"/products/{shop.product}/page", headers={"Cache-Control": "no-cache"})
        assert r.json()["available"] == 5 + 3

    eventually(fresh)


def test_a_reused_page_is_the_same_answer_until_its_second_is_up(client: TestClient) -> None:
    shop = Shop(client, bonded=5, direct=0)
    url = f"/products/{shop.product}/page"

    def stocked() -> None:
        assert page(client, shop.product)["available"] == 5

    eventually(stocked)
    first = client.get(url, headers={"Cache-Control": "no-cache"})  # rendered and remembered
    again = client.get(url)  # answered from the cache, before the handler
    assert again.status_code == 200 and again.content == first.content
    assert {k: again.headers[k] for k in ("content-type", "cache-control")} == {
        "content-type": "application/json",
        "cache-control": "public, max-age=1",
    }
    assert first.headers["content-type"] == "application/json"
    shop.receive(shop.bonded, 2)

    def moved_on() -> None:
        later = client.get(url)
        assert later.json()["as_of"] != first.json()["as_of"]
        assert later.json()["available"] == 7

    eventually(moved_on)
    assert client.get(url.replace(shop.product, "nope")).status_code == 404


def test_an_unchanged_page_is_renewed_on_postgresql_and_a_change_still_shows(
    client: TestClient, store_url: str | None
) -> None:
    shop = Shop(client, bonded=5, direct=0)
    url = f"/products/{shop.product}/page"

    def stocked() -> None:
        assert page(client, shop.product)["available"] == 5

    eventually(stocked)
    first = client.get(url, headers={"Cache-Control": "no-cache"}).json()
    time.sleep(1.3)  # past the second a rendered page is reused for unconditionally
    later = page(client, shop.product)
    if store_url is None:
        assert later["as_of"] != first["as_of"]  # SQLite: read and rendered again
    else:
        assert later == first  # PostgreSQL: its rows' versions are unchanged, so renewed

    time.sleep(1.3)  # renewed again meanwhile (in the background on PostgreSQL)
    assert page(client, shop.product)["as_of"] == later["as_of"] or store_url is None
    shop.receive(shop.bonded, 2)  # a change shows within about a second of its projection
    eventually(lambda: _assert_available(client, shop.product, 7), timeout=5)


def _assert_available(client: TestClient, product_id: str, units: int) -> None:
    assert page(client, product_id)["available"] == units


def test_an_unchanged_page_is_right_only_until_its_next_hold_lapses() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    at = now.timestamp()
    holds = {"pending": [[at - 5, 1], [at + 3, 2], [at + 7, 1]]}
    doc = {"warehouses": [holds, {"pending": []}]}
    offers = [{"modes": {"bonded": {"pending": [[at + 2, 1]]}}}]
    row = (json.dumps(doc), json.dumps(offers), None, None)
    assert reusable_until(row, now) == at + 2
    assert reusable_until((json.dumps({"warehouses": []}), None, None, None), now) == (
        at + REUSE_AT_MOST
    )
