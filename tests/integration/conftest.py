"""An API client over a freshly migrated store, with helpers that speak the API like a user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from redcart.app import create_app
from redcart.wiring import migrate
from tests.conftest import ADMIN_KEY, make_settings

VALID_ID = "11010519491231002X"
ADDRESS = {
    "recipient": "王小红",
    "mobile": "13800138000",
    "province": "上海市",
    "city": "上海市",
    "district": "黄浦区",
    "street": "南京东路 100 号",
    "postcode": "200001",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ADMIN = bearer(ADMIN_KEY)


class Shop:
    """A merchant with a bonded and a direct-mail warehouse, one product, an FX rate."""

    def __init__(
        self,
        client: TestClient,
        name: str = "Sakura Beauty",
        bonded: int = 5,
        direct: int = 20,
        price_jpy: int = 3000,
    ) -> None:
        self.client = client
        r = client.post(
            "/admin/merchants",
            headers=ADMIN,
            json={"name": name, "home_country": "JP", "settlement_currency": "JPY"},
        )
        assert r.status_code == 201, r.text
        self.id, self.key = r.json()["id"], r.json()["api_key"]
        self.headers = bearer(self.key)
        client.put("/admin/fx-rates/JPY", headers=ADMIN, json={"cny_per_unit": "0.05"})
        self.bonded = self.post(
            "/warehouses",
            {"name": "Ningbo", "kind": "bonded", "country": "CN", "address": "Meishan"},
        )["id"]
        self.direct = self.post(
            "/warehouses",
            {"name": "Tokyo", "kind": "direct_mail", "country": "JP", "address": "Koto"},
        )["id"]
        self.product = self.post(
            "/products",
            {
                "sku": "SUN-50",
                "title": "安热沙 Anessa sunscreen",
                "brand": "Anessa",
                "origin_country": "JP",
                "hs_code": "3304990099",
                "category": "beauty",
                "list_price_minor": price_jpy,
                "weight_grams": 90,
            },
        )["id"]
        if bonded:
            self.receive(self.bonded, bonded)
        if direct:
            self.receive(self.direct, direct)

    def post(self, path: str, body: dict, **headers: str) -> dict:
        r = self.client.post(path, headers=self.headers | headers, json=body)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def receive(self, warehouse: str, quantity: int) -> dict:
        return self.post(
            f"/products/{self.product}/stock/{warehouse}/receipts", {"quantity": quantity}
        )

    def available(self) -> int:
        r = self.client.get(f"/products/{self.product}/stock", headers=self.headers)
        assert r.status_code == 200, r.text
        return r.json()["available"]


def sign_up(client: TestClient, name: str = "buyer") -> dict[str, str]:
    r = client.post("/buyers", json={"display_name": name})
    assert r.status_code == 201, r.text
    return bearer(r.json()["token"])


def order_body(shop: Shop, quantity: int = 1, resident_id: str = VALID_ID, **extra: Any) -> dict:
    return {
        "merchant_id": shop.id,
        "lines": [{"sku": "SUN-50", "quantity": quantity}],
        "identity": {"name": "王小红", "resident_id": resident_id},
        "address": ADDRESS,
    } | extra


@pytest.fixture
def client(store_url: str | None, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(store_url, tmp_path / "var")
    migrate(settings)
    with TestClient(app=create_app(settings, env={"REDCART_PAYMENTS": "off"})) as test_client:
        yield test_client
