"""The commerce API as merchants, buyers and admins use it, on SQLite and on PostgreSQL."""

from __future__ import annotations

from litestar.testing import TestClient

from tests.integration.conftest import ADMIN, Shop, bearer, order_body, sign_up


def test_a_buyer_orders_from_bonded_stock_first_and_the_split_goes_to_direct_mail(
    client: TestClient,
) -> None:
    shop = Shop(client, bonded=2, direct=10)
    buyer = sign_up(client)
    r = client.post("/orders", headers=buyer, json=order_body(shop, quantity=3))
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "placed"
    allocations = order["lines"][0]["allocations"]
    assert allocations == [
        {"warehouse_id": shop.bonded, "quantity": 2},
        {"warehouse_id": shop.direct, "quantity": 1},
    ]
    modes = {s["mode"]: s["customs_mode"] for s in order["quote"]["shipments"]}
    assert modes == {"bonded": "1210", "direct_mail": "9610"}
    quote = order["quote"]
    assert quote["goods_fen"] == 3 * 3000 * 5  # 3 x 3,000 JPY at 0.05 CNY/JPY, in fen
    assert quote["total_fen"] == quote["goods_fen"] + quote["freight_fen"] + quote["tax_fen"]
    assert order["identity"] == {"name": "王**", "resident_id": "110105********002X"}
    assert shop.available() == 12 - 3


def test_the_whole_life_of_an_order_from_payment_to_delivery(client: TestClient) -> None:
    shop = Shop(client)
    buyer = sign_up(client)
    order = client.post("/orders", headers=buyer, json=order_body(shop, quantity=2)).json()
    oid, total = order["id"], order["total_fen"]
    paid = client.post(
        f"/orders/{oid}/mark-paid",
        headers=ADMIN,
        json={"payment_ref": "pay_1", "amount_fen": total},
    )
    assert paid.json()["status"] == "paid"
    again = client.post(
        f"/orders/{oid}/mark-paid",
        headers=ADMIN,
        json={"payment_ref": "pay_1", "amount_fen": total},
    )
    assert again.status_code == 200 and again.json()["version"] == paid.json()["version"]
    steps = [
        (f"/orders/{oid}/customs/declare", ADMIN, {"declaration_ref": "D-1"}),
        (f"/orders/{oid}/customs/clear", ADMIN, None),
        (f"/orders/{oid}/ship", shop.headers, {"carrier": "SF", "tracking_no": "SF123"}),
        (f"/orders/{oid}/deliver", shop.headers, None),
    ]
    for path, headers, body in steps:
        r = client.post(path, headers=headers, json=body)
        assert r.status_code == 200, (path, r.text)
    final = client.get(f"/orders/{oid}", headers=buyer).json()
    assert final["status"] == "delivered"
    assert [h["status"] for h in final["history"]] == [
        "placed",
        "paid",
        "customs_declared",
        "customs_cleared",
        "shipped",
        "delivered",
    ]
    stock = client.get(f"/products/{shop.product}/stock", headers=shop.headers).json()
    assert sum(w["on_hand"] for w in stock["warehouses"]) == 25 - 2
    assert stock["available"] == 25 - 2


def test_cancelling_an_unpaid_order_returns_its_stock_at_once(client: TestClient) -> None:
    shop = Shop(client)
    buyer = sign_up(client)
    oid = client.post("/orders", headers=buyer, json=order_body(shop, quantity=4)).json()["id"]
    assert shop.available() == 21
    r = client.post(f"/orders/{oid}/cancel", headers=buyer, json={"reason": "changed my mind"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert shop.available() == 25
    again = client.post(f"/orders/{oid}/cancel", headers=buyer, json={})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


def test_a_full_refund_before_shipment_returns_the_stock(client: TestClient) -> None:
    shop = Shop(client)
    buyer = sign_up(client)
    order = client.post("/orders", headers=buyer, json=order_body(shop, quantity=3)).json()
    client.post(
        f"/orders/{order['id']}/mark-paid",
        headers=ADMIN,
        json={"payment_ref": "p", "amount_fen": order["total_fen"]},
    )
    assert shop.available() == 22
    r = client.post(
        f"/orders/{order['id']}/refunds",
        headers=shop.headers,
        json={"refund_ref": "r1", "amount_fen": order["total_fen"]},
    )
    assert r.status_code == 200 and r.json()["status"] == "refunded"
    assert shop.available() == 25


def test_the_same_idempotency_key_and_body_answer_the_same_order_once(client: TestClient) -> None:
    shop = Shop(client)
    buyer = sign_up(client)
    key = {"Idempotency-Key": "order-7f3a"}
    first = client.post("/orders", headers=buyer | key, json=order_body(shop))
    second = client.post("/orders", headers=buyer | key, json=order_body(shop))
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers.get("idempotent-replayed") == "true"
    assert shop.available() == 24
    other = client.post("/orders", headers=buyer | key, json=order_body(shop, quantity=2))
    assert other.status_code == 422
    assert other.json()["type"].endswith("idempotency_key_reused")
    assert shop.available() == 24


def test_lists_page_newest_first_with_a_cursor(client: TestClient) -> None:
    shop = Shop(client)
    buyer = sign_up(client)
    ids = [
        client.post("/orders", headers=buyer, json=order_body(shop)).json()["id"] for _ in range(5)
    ]
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/orders", headers=buyer, params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    merchant_view = client.get("/orders", headers=shop.headers).json()["items"]
    assert {item["id"] for item in merchant_view} == set(ids)
    other_buyer = sign_up(client, "someone else")
    assert client.get("/orders", headers=other_buyer).json()["items"] == []


def test_merchants_see_and_change_only_their_own_resources(client: TestClient) -> None:
    mine, theirs = Shop(client, "Mine"), Shop(client, "Theirs")
    buyer = sign_up(client)
    oid = client.post("/orders", headers=buyer, json=order_body(theirs)).json()["id"]
    attempts = [
        client.get(f"/products/{theirs.product}", headers=mine.headers),
        client.get(f"/warehouses/{theirs.bonded}", headers=mine.headers),
        client.post(
            f"/products/{theirs.product}/stock/{theirs.bonded}/receipts",
            headers=mine.headers,
            json={"quantity": 5},
        ),
        client.patch(
            f"/products/{theirs.product}", headers=mine.headers, json={"list_price_minor": 1}
        ),
        client.get(f"/orders/{oid}", headers=mine.headers),
        client.post(f"/orders/{oid}/cancel", headers=mine.headers, json={}),
        client.get(f"/orders/{oid}", headers=sign_up(client, "stranger")),
    ]
    for r in attempts:
        assert r.status_code == 404, r.text
        assert r.headers["content-type"] == "application/problem+json"
    assert theirs.available() == 24
    assert (
        client.get(f"/products/{theirs.product}", headers=theirs.headers).json()["list_price_minor"]
        == 3000
    )


def test_a_merchant_api_key_is_shown_once_and_checked(client: TestClient) -> None:
    shop = Shop(client)
    me = client.get("/merchants/me", headers=shop.headers).json()
    assert me["id"] == shop.id and "api_key" not in me
    forged = shop.key[:-4] + "AAAA"
    assert client.get("/merchants/me", headers=bearer(forged)).status_code == 401
    assert client.get("/admin/merchants", headers=shop.headers).status_code == 403
    listed = client.get("/admin/merchants", headers=ADMIN).json()["items"]
    assert [m["id"] for m in listed] == [shop.id]


def test_health_and_readiness_and_the_openapi_schema(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    schema = client.get("/schema/openapi.json").json()
    assert "/orders" in schema["paths"] and "/admin/merchants" in schema["paths"]


def test_answers_match_the_documented_response_shapes(client: TestClient) -> None:
    import msgspec

    from commerce.api import responses as out

    shop = Shop(client)
    buyer = sign_up(client)
    order = client.post("/orders", headers=buyer, json=order_body(shop))
    checks = [
        (order, out.Order),
        (client.get(f"/orders/{order.json()['id']}", headers=buyer), out.Order),
        (client.get("/orders", headers=buyer), out.OrderPage),
        (client.get(f"/products/{shop.product}", headers=shop.headers), out.Product),
        (client.get(f"/products/{shop.product}/stock", headers=shop.headers), out.ProductStock),
        (client.get(f"/warehouses/{shop.bonded}", headers=shop.headers), out.Warehouse),
        (client.get("/merchants/me", headers=shop.headers), out.Merchant),
        (client.get("/fx-rates/JPY"), out.FxRate),
        (client.post("/buyers", json={"display_name": "x"}), out.Buyer),
        (
            client.post(
                "/admin/merchants",
                headers=ADMIN,
                json={"name": "N", "home_country": "KR", "settlement_currency": "KRW"},
            ),
            out.OnboardedMerchant,
        ),
    ]
    for response, shape in checks:
        assert response.status_code in (200, 201), response.text
        msgspec.json.decode(response.content, type=shape)


def test_a_retried_stock_receipt_counts_the_goods_once(client: TestClient) -> None:
    shop = Shop(client, bonded=0, direct=0)
    path = f"/products/{shop.product}/stock/{shop.bonded}/receipts"
    key = {"Idempotency-Key": "asn-2026-11-001"}
    first = client.post(path, headers=shop.headers | key, json={"quantity": 30})
    retry = client.post(path, headers=shop.headers | key, json={"quantity": 30})
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert shop.available() == 30
    client.post(path, headers=shop.headers, json={"quantity": 5})
    assert shop.available() == 35
