"""50 buyers race for the last 10 units against real servers: exactly 10 win, never oversold.

Runs on the embedded SQLite store (one server) and on PostgreSQL with one and with two server
processes, where the two writers only agree through the store's (id, version) key.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier
from typing import Any

import httpx
import pytest

from commerce.application import Commerce
from commerce.domain import ids
from commerce.domain.identity import resident_id_check_char
from redcart.wiring import commerce_app, migrate
from tests.conftest import make_settings
from tests.integration.conftest import ADDRESS, ADMIN
from tests.servers import ApiServer, settings_env

BUYERS, UNITS = 50, 10


def resident_id(n: int) -> str:
    body = f"1101051990{1 + n % 12:02d}{1 + n % 28:02d}{n:03d}"[:17]
    return body + resident_id_check_char(body)


def seed(url: str, buyers: int = BUYERS) -> tuple[str, str, list[str], str]:
    """(merchant id, product id, buyers' tokens, merchant's API key)."""
    with httpx.Client(base_url=url, timeout=30) as c:
        m = c.post(
            "/admin/merchants",
            headers=ADMIN,
            json={"name": "Race", "home_country": "JP", "settlement_currency": "JPY"},
        )
        merchant = m.json()
        key = {"Authorization": f"Bearer {merchant['api_key']}"}
        c.put("/admin/fx-rates/JPY", headers=ADMIN, json={"cny_per_unit": "0.05"})
        wh = c.post(
            "/warehouses",
            headers=key,
            json={"name": "Ningbo", "kind": "bonded", "country": "CN", "address": "Meishan"},
        )
        product = c.post(
            "/products",
            headers=key,
            json={
                "sku": "LAST-10",
                "title": "限量 limited",
                "brand": "B",
                "origin_country": "JP",
                "hs_code": "3304990099",
                "category": "beauty",
                "list_price_minor": 1000,
                "weight_grams": 100,
            },
        ).json()
        r = c.post(
            f"/products/{product['id']}/stock/{wh.json()['id']}/receipts",
            headers=key,
            json={"quantity": UNITS},
        )
        assert r.status_code == 201, r.text
        tokens = [
            c.post("/buyers", json={"display_name": f"b{i}"}).json()["token"] for i in range(buyers)
        ]
    return merchant["id"], product["id"], tokens, merchant["api_key"]


def race(
    urls: list[str], merchant_id: str, tokens: list[str], **extra: Any
) -> list[httpx.Response]:
    """Every buyer orders one unit at the same moment (`extra`: more fields of the order)."""
    barrier = Barrier(len(tokens))

    def buy(i: int) -> httpx.Response:
        body = {
            "merchant_id": merchant_id,
            "lines": [{"sku": "LAST-10", "quantity": 1}],
            "identity": {"name": "买家", "resident_id": resident_id(i)},
            "address": ADDRESS,
        } | extra
        with httpx.Client(base_url=urls[i % len(urls)], timeout=60) as c:
            barrier.wait()
            r = c.post("/orders", json=body, headers={"Authorization": f"Bearer {tokens[i]}"})
        assert r.status_code in (201, 409), r.text
        return r

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        return list(pool.map(buy, range(len(tokens))))


def assert_never_oversold(app: Commerce, product_id: str, merchant_id: str) -> None:
    """Replay the stock stream version by version: available never dips below zero."""
    from uuid import UUID

    from commerce.domain.merchants import Merchant

    merchant = app.repository.get(UUID(merchant_id))
    assert isinstance(merchant, Merchant)
    (warehouse_id,) = merchant.warehouse_ids
    stock_id = ids.stock_id(UUID(product_id), warehouse_id)
    final = app.repository.get(stock_id)
    reservations_seen = 0
    for version in range(1, final.version + 1):
        stock = app.repository.get(stock_id, version=version)
        assert stock.on_hand - sum(q for q, _ in stock.reservations.values()) >= 0
        reservations_seen = max(reservations_seen, len(stock.reservations))
    assert final.on_hand == UNITS
    assert reservations_seen == UNITS


@pytest.mark.parametrize(
    ("store", "processes"),
    [
        ("sqlite", 1),
        pytest.param("postgres", 1, marks=pytest.mark.postgres),
        pytest.param("postgres", 2, marks=pytest.mark.postgres),
    ],
)
def test_fifty_buyers_for_the_last_ten_units(
    request: pytest.FixtureRequest, tmp_path: Path, store: str, processes: int
) -> None:
    database_url = request.getfixturevalue("postgres_url") if store == "postgres" else None
    settings = make_settings(database_url, tmp_path / "var")
    migrate(settings)
    servers = [
        ApiServer(settings_env(database_url, tmp_path / "var"), tmp_path / f"s{i}.log")
        for i in range(processes)
    ]
    try:
        for server in servers:
            server.wait_ready()
        merchant_id, product_id, tokens, _ = seed(servers[0].url)
        statuses = [r.status_code for r in race([s.url for s in servers], merchant_id, tokens)]
    finally:
        for server in servers:
            server.stop()
    assert statuses.count(201) == UNITS
    assert statuses.count(409) == BUYERS - UNITS
    app = commerce_app(settings, create_table=False)
    try:
        assert_never_oversold(app, product_id, merchant_id)
    finally:
        app.close()
