"""Search through the API on both stores: Chinese, English and mixed queries (a two-character
Chinese brand inside a longer title too), facets, pages, and bad input as problem+json."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from tests.projections.conftest import Shop, eventually, sign_up

CATALOGUE = [
    # sku, title, brand, category, origin, stock
    ("KAO-EYE", "日本花王蒸汽眼罩12片装", "花王", "personal_care", "JP", 10),
    ("ANS-CRM", "资生堂安热沙防晒霜 SPF50+", "Anessa", "sunscreen", "JP", 0),
    ("SWS-TNR", "雪花秀滋盈肌本润颜水", "Sulwhasoo", "toner", "KR", 4),
    ("LRP-SPR", "La Roche-Posay 理肤泉 防晒喷雾", "La Roche-Posay", "sunscreen", "FR", 2),
]


@pytest.fixture
def shop(client: TestClient) -> Shop:
    shop = Shop(client, bonded=0, direct=0)  # its own product: "安热沙 Anessa sunscreen"
    shop.skus = {}
    for sku, title, brand, category, origin, stock in CATALOGUE:
        body = {"sku": sku, "title": title, "brand": brand, "origin_country": origin,
                "hs_code": "3304990099", "category": category, "list_price_minor": 1000,
                "weight_grams": 100}  # fmt: skip
        pid = shop.post("/products", body)["id"]
        shop.skus[sku] = pid
        if stock:
            shop.post(f"/products/{pid}/stock/{shop.direct}/receipts", {"quantity": stock})
    note = {"title": "夏天必备防晒清单", "body": "安热沙小金瓶真的好用 #防晒",
            "product_ids": [shop.skus["ANS-CRM"]]}  # fmt: skip
    r = client.post("/notes", headers=sign_up(client), json=note)
    assert r.status_code == 201, r.text
    shop.note = r.json()["id"]
    eventually(lambda: _hits(client, q="防晒清单"))
    eventually(lambda: _hits(client, q="雪花秀", in_stock="true"))
    return shop


def _hits(client: TestClient, **params: str) -> list[str]:
    r = client.get("/search", params=params)
    assert r.status_code == 200, r.text
    hits = [hit["id"] for hit in r.json()["items"]]
    assert hits, params
    return hits


def search(client: TestClient, **params: str) -> list[str]:
    r = client.get("/search", params=params)
    assert r.status_code == 200, r.text
    return [hit["id"] for hit in r.json()["items"]]


def test_chinese_english_and_mixed_queries(client: TestClient, shop: Shop) -> None:
    ids = shop.skus
    assert search(client, q="花王") == [ids["KAO-EYE"]]  # two characters inside a longer title
    assert search(client, q="蒸汽眼罩") == [ids["KAO-EYE"]]
    assert search(client, q="防晒霜") == [ids["ANS-CRM"]]
    assert set(search(client, q="anessa")) == {ids["ANS-CRM"], shop.product}
    assert search(client, q="Anessa 防晒") == [ids["ANS-CRM"]]
    assert search(client, q="La Roche 防晒") == [ids["LRP-SPR"]]
    assert search(client, q="#防晒", kind="note") == [shop.note]
    assert search(client, q="兰蔻") == []


def test_facets_and_pages(client: TestClient, shop: Shop) -> None:
    ids = shop.skus
    assert set(search(client, q="防晒", kind="product")) == {ids["ANS-CRM"], ids["LRP-SPR"]}
    assert search(client, q="防晒", in_stock="true") == [ids["LRP-SPR"]]
    assert search(client, category="toner") == [ids["SWS-TNR"]]
    assert search(client, origin="KR") == [ids["SWS-TNR"]]
    assert search(client, brand="花王", in_stock="true") == [ids["KAO-EYE"]]
    first = client.get("/search", params={"q": "防晒", "limit": 1}).json()
    second = client.get("/search", params={"q": "防晒", "limit": 1, "cursor": first["next_cursor"]})
    assert second.status_code == 200 and second.json()["items"]
    assert second.json()["items"][0]["id"] != first["items"][0]["id"]


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"q": "防晒", "kind": "live"}, 422, "kind"),
        ({"origin": "japan"}, 422, "origin"),
        ({"q": "x" * 201}, 422, "q"),
        ({"q": "防晒", "limit": "0"}, 422, "limit"),
        ({"q": "防晒", "limit": "many"}, 400, None),
        ({"q": "防晒", "in_stock": "maybe"}, 400, None),
        ({"q": "防晒", "cursor": "not-a-cursor"}, 422, "cursor"),
        ({"q": "  "}, 422, "q"),
    ],
)
def test_bad_search_input_is_a_problem(client: TestClient, params, status, field) -> None:
    r = client.get("/search", params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if field:
        assert r.json()["field"] == field


def test_bad_feed_input_is_a_problem(client: TestClient) -> None:
    for params in ({"kind": "live"}, {"limit": "1000"}, {"limit": "x"}):
        r = client.get("/feed/trending", params=params)
        assert 400 <= r.status_code < 500
        assert r.headers["content-type"].startswith("application/problem+json")
