"""Reviews: only the buyer of a delivered order, once per product; bad input is a 4xx problem."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from tests.projections.conftest import Shop, deliver, order_body, sign_up


def test_the_buyer_of_a_delivered_order_reviews_it_once(client: TestClient) -> None:
    shop = Shop(client)
    buyer = sign_up(client)
    oid = deliver(client, shop, buyer)
    body = {"product_id": shop.product, "stars": 4, "text": "  物流很快  "}
    first = client.post(f"/orders/{oid}/reviews", headers=buyer, json=body)
    assert first.status_code == 201, first.text
    assert first.json()["stars"] == 4 and first.json()["text"] == "物流很快"
    again = client.post(f"/orders/{oid}/reviews", headers=buyer, json=body)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    other = client.post(f"/orders/{oid}/reviews", headers=buyer, json=body | {"stars": 1})
    assert other.status_code == 409 and other.json()["field"] == "product_id"


def test_who_may_review_what(client: TestClient) -> None:
    shop = Shop(client)
    buyer, stranger = sign_up(client), sign_up(client, "stranger")
    placed = client.post("/orders", headers=buyer, json=order_body(shop)).json()["id"]
    body = {"product_id": shop.product, "stars": 5}
    r = client.post(f"/orders/{placed}/reviews", headers=buyer, json=body)
    assert r.status_code == 409 and r.json()["field"] == "order_id"  # not delivered yet
    oid = deliver(client, shop, buyer)
    assert client.post(f"/orders/{oid}/reviews", headers=stranger, json=body).status_code == 404
    assert client.post(f"/orders/{oid}/reviews", headers=shop.headers, json=body).status_code == 403
    assert client.post(f"/orders/{oid}/reviews", json=body).status_code == 401
    missing = "00000000-0000-0000-0000-000000000000"
    assert client.post(f"/orders/{missing}/reviews", headers=buyer, json=body).status_code == 404
    r = client.post(f"/orders/{oid}/reviews", headers=buyer, json=body | {"product_id": missing})
    assert r.status_code == 422 and r.json()["field"] == "product_id"


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"stars": 0}, 422, "stars"),
        ({"stars": 6}, 422, "stars"),
        ({"stars": "five"}, 400, "stars"),
        ({"text": "好" * 1001}, 400, "text"),
        ({"product_id": "nope"}, 422, "product_id"),
        ({"extra": 1}, 400, None),
    ],
)
def test_bad_reviews_are_problems(client: TestClient, change: dict, status: int, field) -> None:
    shop = Shop(client)
    buyer = sign_up(client)
    oid = deliver(client, shop, buyer)
    r = client.post(f"/orders/{oid}/reviews", headers=buyer,
                    json={"product_id": shop.product, "stars": 3} | change)  # fmt: skip
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if field:
        assert r.json()["field"] == field
