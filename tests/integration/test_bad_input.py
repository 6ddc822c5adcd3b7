"""Bad input gets a 4xx problem+json that names the field or rule, and writes nothing."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from tests.integration.conftest import ADMIN, Shop, order_body, sign_up

PROBLEM = "application/problem+json"


def events_written(client: TestClient) -> int:
    return client.get("/readyz").json()["events"]


def assert_problem(r, status: int, field: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body


@pytest.fixture
def shop(client: TestClient) -> Shop:
    return Shop(client, bonded=3, direct=0)


@pytest.fixture
def buyer(client: TestClient) -> dict[str, str]:
    return sign_up(client)


def test_malformed_json_is_a_400_problem(client: TestClient, shop: Shop, buyer: dict) -> None:
    before = events_written(client)
    r = client.post(
        "/orders",
        headers=buyer | {"content-type": "application/json"},
        content=b'{"merchant_id": "x", "lines": [',
    )
    assert_problem(r, 400)
    assert events_written(client) == before


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"lines": [{"sku": "SUN-50", "quantity": "two"}]}, "lines[0].quantity"),
        ({"lines": "SUN-50"}, "lines"),
        ({"identity": {"name": "王小红"}}, "identity"),
        ({"surprise": 1}, None),
    ],
)
def test_wrong_types_and_unknown_fields_name_the_field(
    client: TestClient, shop: Shop, buyer: dict, patch: dict, field: str | None
) -> None:
    before = events_written(client)
    body = assert_problem(client.post("/orders", headers=buyer, json=order_body(shop) | patch), 400)
    if field:
        assert body["field"].startswith(field), body
    assert events_written(client) == before


@pytest.mark.parametrize(
    ("resident_id", "why"),
    [
        ("110105194912310021", "check digit"),
        ("11010519491231002", "18"),
        ("110105194913310028", "date"),
    ],
)
def test_a_bad_resident_id_is_refused_and_never_echoed(
    client: TestClient, shop: Shop, buyer: dict, resident_id: str, why: str
) -> None:
    before = events_written(client)
    r = client.post("/orders", headers=buyer, json=order_body(shop, resident_id=resident_id))
    body = assert_problem(r, 422, "identity.resident_id")
    assert why in body["detail"]
    assert resident_id not in r.text
    assert events_written(client) == before
    assert shop.available() == 3


def test_unknown_ids_are_404_problems(client: TestClient, shop: Shop, buyer: dict) -> None:
    for path in ("/orders/not-a-uuid", "/orders/6f1d3b0e-1c2a-4f5e-9a7b-0c1d2e3f4a5b"):
        assert_problem(client.get(path, headers=buyer), 404)
    assert_problem(client.get("/products/123", headers=shop.headers), 404)
    assert_problem(client.get("/no/such/route"), 404)
    r = client.post(
        "/orders",
        headers=buyer,
        json=order_body(shop) | {"merchant_id": "6f1d3b0e-1c2a-4f5e-9a7b-0c1d2e3f4a5b"},
    )
    assert_problem(r, 404, "merchant_id")
    r = client.post(
        "/orders",
        headers=buyer,
        json=order_body(shop) | {"lines": [{"sku": "NOPE", "quantity": 1}]},
    )
    assert_problem(r, 422, "lines[0].sku")


def test_the_single_order_limit_is_a_422_naming_the_rule(client: TestClient, buyer: dict) -> None:
    shop = Shop(client, bonded=100, direct=0, price_jpy=40_000)  # 2,000 CNY each
    before = events_written(client)
    r = client.post("/orders", headers=buyer, json=order_body(shop, quantity=3))
    body = assert_problem(r, 422, "lines")
    assert body["rule"] == "cbec_order_limit" and "5,000.00 CNY" in body["detail"]
    assert events_written(client) == before
    assert shop.available() == 100


def test_the_annual_limit_counts_every_order_of_one_identity(client: TestClient) -> None:
    shop = Shop(client, bonded=100, direct=0, price_jpy=90_000)  # 4,500 CNY each
    buyers = [sign_up(client, f"b{i}") for i in range(7)]
    statuses = [
        client.post("/orders", headers=b, json=order_body(shop)).status_code for b in buyers
    ]
    assert statuses[:5] == [201] * 5  # 5 x ~4,5xx CNY fits under 26,000 CNY
    r = client.post("/orders", headers=buyers[6], json=order_body(shop))
    body = assert_problem(r, 422, "lines")
    assert body["rule"] == "cbec_annual_limit"


def test_out_of_stock_is_a_409_with_what_is_left(
    client: TestClient, shop: Shop, buyer: dict
) -> None:
    before = events_written(client)
    body = assert_problem(
        client.post("/orders", headers=buyer, json=order_body(shop, quantity=4)),
        409,
        "lines[0].quantity",
    )
    assert body["available"] == 3
    assert events_written(client) == before


def test_missing_or_wrong_credentials_are_401_and_wrong_roles_403(
    client: TestClient, shop: Shop, buyer: dict
) -> None:
    assert_problem(client.get("/orders"), 401)
    assert_problem(client.get("/orders", headers={"Authorization": "Bearer nope"}), 401)
    assert_problem(client.get("/orders", headers={"Authorization": "Basic abc"}), 401)
    assert_problem(client.post("/orders", headers=shop.headers, json=order_body(shop)), 403)
    assert_problem(client.post("/warehouses", headers=buyer, json={}), 403)
    assert_problem(
        client.put("/admin/fx-rates/JPY", headers=buyer, json={"cny_per_unit": "1"}), 403
    )


def test_oversized_payloads_are_413(client: TestClient, shop: Shop, buyer: dict) -> None:
    body = order_body(shop) | {"address": {"street": "x" * 200_000}}
    assert_problem(client.post("/orders", headers=buyer, json=body), 413)


def test_domain_rules_name_their_field(client: TestClient, shop: Shop, buyer: dict) -> None:
    cases = [
        (
            client.post(
                "/warehouses",
                headers=shop.headers,
                json={"name": "X", "kind": "bonded", "country": "JP", "address": "a"},
            ),
            "country",
        ),
        (
            client.post(
                "/products",
                headers=shop.headers,
                json={
                    "sku": "B@D",
                    "title": "t",
                    "brand": "b",
                    "origin_country": "JP",
                    "hs_code": "3304990099",
                    "category": "c",
                    "list_price_minor": 1,
                    "weight_grams": 1,
                },
            ),
            "sku",
        ),
        (
            client.post(
                f"/products/{shop.product}/stock/{shop.bonded}/receipts",
                headers=shop.headers,
                json={"quantity": 0},
            ),
            "quantity",
        ),
        (
            client.post(
                f"/products/{shop.product}/stock/{shop.bonded}/adjustments",
                headers=shop.headers,
                json={"delta": -1, "reason": " "},
            ),
            "reason",
        ),
        (client.put("/admin/fx-rates/JPY", headers=ADMIN, json={"cny_per_unit": "-1"}), "rate"),
        (
            client.post(
                "/orders",
                headers=buyer,
                json=order_body(shop)
                | {"address": order_body(shop)["address"] | {"mobile": "12345"}},
            ),
            "address.mobile",
        ),
        (client.get("/orders", headers=buyer, params={"cursor": "!!"}), "cursor"),
        (client.get("/orders", headers=buyer, params={"limit": 0}), "limit"),
    ]
    for r, field in cases:
        assert_problem(r, 422, field)


def test_an_adjustment_cannot_take_stock_below_what_is_reserved(
    client: TestClient, shop: Shop, buyer: dict
) -> None:
    assert (
        client.post("/orders", headers=buyer, json=order_body(shop, quantity=2)).status_code == 201
    )
    r = client.post(
        f"/products/{shop.product}/stock/{shop.bonded}/adjustments",
        headers=shop.headers,
        json={"delta": -2, "reason": "damaged"},
    )
    assert_problem(r, 409, "delta")
    assert shop.available() == 1
