"""An API over a freshly migrated store, with the read models kept in process, and helpers to
walk an order to delivery and to wait for the (eventually consistent) read models."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from redcart.app import create_app
from redcart.wiring import migrate
from tests.conftest import make_settings
from tests.integration.conftest import ADMIN, Shop, order_body, sign_up

__all__ = ["ADMIN", "Shop", "deliver", "eventually", "order_body", "sign_up"]


@pytest.fixture
def client(store_url: str | None, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(store_url, tmp_path / "var")
    migrate(settings)
    with TestClient(app=create_app(settings, env={"REDCART_PAYMENTS": "off"})) as test_client:
        yield test_client


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Retry `check` until it stops failing an assertion: read models follow the log."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def deliver(client: TestClient, shop: Shop, buyer: dict, quantity: int = 1) -> str:
    """Place, pay, clear, ship and deliver one order; returns its id."""
    r = client.post("/orders", headers=buyer, json=order_body(shop, quantity=quantity))
    assert r.status_code == 201, r.text
    oid, total = r.json()["id"], r.json()["total_fen"]
    steps = [
        (f"/orders/{oid}/mark-paid", ADMIN, {"payment_ref": f"pay-{oid}", "amount_fen": total}),
        (f"/orders/{oid}/customs/declare", ADMIN, {"declaration_ref": f"D-{oid}"}),
        (f"/orders/{oid}/customs/clear", ADMIN, None),
        (f"/orders/{oid}/ship", shop.headers, {"carrier": "SF", "tracking_no": "SF1"}),
        (f"/orders/{oid}/deliver", shop.headers, None),
    ]
    for path, headers, body in steps:
        r = client.post(path, headers=headers, json=body)
        assert r.status_code == 200, (path, r.text)
    return oid
