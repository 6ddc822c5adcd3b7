"""The order, product and merchant lists are rebuilt blue/green like every other view: the API
keeps answering from the old generation while the new one is built, then from the new one,
with read-your-writes and order expiry working on it. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from projections.sqlstore import SqlStore
from redcart.app import create_app
from redcart.wiring import build_commerce, migrate, rebuild_projection
from tests.conftest import make_settings
from tests.integration.conftest import Shop, order_body, sign_up
from tests.live_api.conftest import Clock


@pytest.fixture
def shop_app(store_url: str | None, tmp_path: Path) -> Iterator[tuple[TestClient, Any, Clock]]:
    settings = make_settings(store_url, tmp_path / "var")
    migrate(settings)
    runtime = build_commerce(settings)
    clock = Clock()
    runtime.cfg = dataclasses.replace(runtime.cfg, clock=clock)
    with TestClient(app=create_app(settings, runtime, env={"REDCART_PAYMENTS": "off"})) as client:
        yield client, settings, clock


def ids(client: TestClient, path: str, headers: dict) -> list[str]:
    r = client.get(path, headers=headers)
    assert r.status_code == 200, r.text
    return [item["id"] for item in r.json()["items"]]


def rows(settings: Any, sql: str) -> list[tuple]:
    store = SqlStore.open(settings.database_url, settings.var_dir)
    try:
        return store.query(sql)
    finally:
        store.close()


def table_exists(settings: Any, table: str) -> bool:
    try:
        rows(settings, f"SELECT 1 FROM {table} LIMIT 1")
        return True
    except Exception:
        return False


def test_lists_rebuilt_blue_green_keep_serving_and_following(shop_app: tuple) -> None:
    client, settings, clock = shop_app
    shop = Shop(client, bonded=10, direct=0)
    buyer = sign_up(client, "buyer")
    placed = [client.post("/orders", headers=buyer, json=order_body(shop)) for _ in range(2)]
    assert all(r.status_code == 201 for r in placed)
    orders = ids(client, "/orders", buyer)
    products = ids(client, "/products", shop.headers)
    assert len(orders) == 2 and products

    done = rebuild_projection(settings, "commerce_lists", grace_seconds=0)
    assert (done["from_generation"], done["generation"]) == (1, 2)
    assert done["events_applied"] > 0
    assert table_exists(settings, "list_orders_g2")
    assert not table_exists(settings, "list_orders_g1")

    assert ids(client, "/orders", buyer) == orders  # the same answers, from generation 2
    assert ids(client, "/products", shop.headers) == products
    third = client.post("/orders", headers=buyer, json=order_body(shop))
    assert third.status_code == 201, third.text
    listed = ids(client, "/orders", buyer)  # read-your-writes on the new generation
    assert listed == [third.json()["id"], *orders]

    clock.advance(16 * 60)  # every order lapses unpaid: the sweeper finds them in generation 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stored = rows(settings, "SELECT status FROM list_orders_g2")
        if {status for (status,) in stored} == {"expired"}:
            break
        time.sleep(0.1)
    assert sorted(stored) == [("expired",)] * 3
