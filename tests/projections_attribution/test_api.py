"""The attribution, commission, dashboard and live-analytics endpoints: who may call them, what
they answer, and 4xx problem+json for bad input. Runs the real app on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.integration.conftest import ADMIN, Shop, bearer, order_body, sign_up

PROBLEM = "application/problem+json"


def assert_problem(r: Any, status: int, field: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body


def eventually(fetch: Any, ready: Any, seconds: float = 10.0) -> Any:
    """The views follow the log a moment behind: poll until `ready(response)`."""
    deadline = time.monotonic() + seconds
    while True:
        r = fetch()
        if ready(r) or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


@pytest.fixture
def sale(client: TestClient) -> dict[str, Any]:
    """Merchant M's creator (a buyer account) with promo code KOL20; another buyer orders with
    it and pays. Merchant N is a stranger."""
    shop = Shop(client, bonded=5, direct=0)
    other = Shop(client, name="Other Shop", bonded=1, direct=0)
    creator_user = client.post("/buyers", json={"display_name": "kol"}).json()
    creator = shop.post("/creators", {"user_id": creator_user["id"], "commission_rate_bp": 1_000})
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    shop.post(
        "/promo-codes",
        {"code": "KOL20", "creator_id": creator["id"], "percent_off": 10,
         "commission_rate_bp": 2_000, "valid_until": until},
    )  # fmt: skip
    buyer = sign_up(client, "buyer")
    r = client.post("/orders", headers=buyer, json=order_body(shop, promo_code="kol20"))
    assert r.status_code == 201, r.text
    order = r.json()
    paid = client.post(
        f"/orders/{order['id']}/mark-paid",
        headers=ADMIN,
        json={"payment_ref": "pay-1", "amount_fen": order["total_fen"]},
    )
    assert paid.status_code == 200, paid.text
    return {
        "shop": shop,
        "other": other,
        "creator": creator["id"],
        "creator_headers": bearer(creator_user["token"]),
        "buyer": buyer,
        "order": order,
    }


def attribution(client: TestClient, sale: dict, headers: dict) -> Any:
    path = f"/orders/{sale['order']['id']}/attribution"
    return eventually(
        lambda: client.get(path, headers=headers),
        lambda r: r.status_code != 404 or r.json().get("type", "").endswith("not_found"),
    )


def test_the_orders_merchant_sees_why_the_code_won(client: TestClient, sale: dict) -> None:
    r = eventually(
        lambda: client.get(
            f"/orders/{sale['order']['id']}/attribution", headers=sale["shop"].headers
        ),
        lambda r: r.status_code == 200 and r.json()["commissions"],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rule"] == "promo_code"
    (winner,) = body["winners"]
    assert winner["creator_id"] == sale["creator"] and winner["source_id"] == "KOL20"
    assert "promo code KOL20" in winner["why"]
    assert body["policy"]["model"] == "last_click"
    assert body["policy"]["click_window_seconds"] == 7 * 86_400
    amounts = body["amounts"]
    assert amounts["commissionable_fen"] == amounts["total_fen"] - amounts["tax_fen"]
    (commission,) = body["commissions"]
    assert commission["state"] == "pending" and commission["lock_at"] is None  # not delivered
    assert commission["amount_fen"] == amounts["commissionable_fen"] * 2_000 // 10_000
    admin = client.get(f"/orders/{sale['order']['id']}/attribution", headers=ADMIN)
    assert admin.status_code == 200 and admin.json()["rule"] == "promo_code"


def test_who_may_not_read_an_orders_attribution(client: TestClient, sale: dict) -> None:
    path = f"/orders/{sale['order']['id']}/attribution"
    attribution(client, sale, sale["shop"].headers)  # wait for the view
    assert_problem(client.get(path, headers=sale["other"].headers), 404, "order_id")
    assert_problem(client.get(path, headers=sale["buyer"]), 403)  # it names creators
    assert_problem(client.get(path), 401)
    assert_problem(client.get("/orders/not-a-uuid/attribution", headers=ADMIN), 404, "order_id")
    unknown = "/orders/00000000-0000-4000-8000-000000000000/attribution"
    assert_problem(client.get(unknown, headers=ADMIN), 404, "order_id")


def test_commissions_by_creator_and_who_sees_them(client: TestClient, sale: dict) -> None:
    path = f"/creators/{sale['creator']}/commissions"
    r = eventually(
        lambda: client.get(path, headers=sale["shop"].headers),
        lambda r: r.status_code == 200 and r.json()["items"],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    (item,) = body["items"]
    assert item["order_id"] == sale["order"]["id"] and item["state"] == "pending"
    assert body["totals"]["pending"] == {"count": 1, "amount_fen": item["amount_fen"]}
    assert body["totals"]["payable"] == {"count": 0, "amount_fen": 0}
    own = client.get(path, headers=sale["creator_headers"])
    assert own.status_code == 200 and own.json()["items"] == body["items"]
    assert client.get(path, headers=ADMIN).json()["items"] == body["items"]
    locked = client.get(path, headers=ADMIN, params={"state": "locked"})
    assert locked.status_code == 200 and locked.json()["items"] == []
    assert_problem(client.get(path, headers=sale["other"].headers), 404, "creator_id")
    assert_problem(client.get(path, headers=sale["buyer"]), 404, "creator_id")
    assert_problem(client.get(path, headers=ADMIN, params={"state": "paid"}), 422, "state")
    assert_problem(client.get(path, headers=ADMIN, params={"limit": 0}), 422, "limit")
    assert_problem(client.get(path, headers=ADMIN, params={"limit": "many"}), 400)
    assert_problem(client.get(path, headers=ADMIN, params={"cursor": "%%%"}), 422, "cursor")
    assert_problem(client.get("/creators/nope/commissions", headers=ADMIN), 404, "creator_id")


def test_the_merchant_dashboard_counts_today(client: TestClient, sale: dict) -> None:
    shop = sale["shop"]
    r = eventually(
        lambda: client.get("/merchants/me/dashboard", headers=shop.headers),
        lambda r: r.status_code == 200 and r.json()["totals"]["paid_orders"],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["days"]) == 30 and body["timezone"] == "Asia/Shanghai"
    totals = body["totals"]
    assert (totals["placed"], totals["paid_orders"], totals["conversion"]) == (1, 1, 1.0)
    assert totals["gmv_fen"] == sale["order"]["total_fen"] == totals["net_gmv_fen"]
    today = body["days"][-1]
    assert today["day"] == body["to"] and today["placed"] == 1
    quiet = client.get("/merchants/me/dashboard", headers=sale["other"].headers).json()
    assert quiet["totals"]["placed"] == 0 and quiet["totals"]["conversion"] is None
    one = client.get(
        "/merchants/me/dashboard",
        headers=shop.headers,
        params={"from": "2026-01-01", "to": "2026-01-01"},
    )
    assert [d["day"] for d in one.json()["days"]] == ["2026-01-01"]


@pytest.mark.parametrize(
    ("params", "field", "status"),
    [
        ({"from": "yesterday"}, "from", 422),
        ({"to": "2026-13-01"}, "to", 422),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "from", 422),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "from", 422),
    ],
)
def test_bad_dashboard_ranges(client: TestClient, params: dict, field: str, status: int) -> None:
    shop = Shop(client, bonded=1, direct=0)
    r = client.get("/merchants/me/dashboard", headers=shop.headers, params=params)
    assert_problem(r, status, field)
    assert_problem(client.get("/merchants/me/dashboard", headers=ADMIN), 403)


def test_live_session_analytics_for_the_host_only(client: TestClient) -> None:
    shop, other = Shop(client, bonded=1, direct=0), Shop(client, name="Other", bonded=1, direct=0)
    starts = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    session = shop.post("/live/sessions", {"title": "Spring sale", "starts_at": starts})
    shop.post(f"/live/sessions/{session['id']}/start", {})
    path = f"/live/sessions/{session['id']}/analytics"
    r = eventually(
        lambda: client.get(path, headers=shop.headers),
        lambda r: r.status_code == 200 and r.json()["status"] == "live",
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["title"] == "Spring sale" and body["deals"] == [] and body["peak_viewers"] == 0
    assert body["sales"] == {"orders": 0, "paid_orders": 0, "gmv_fen": 0, "refunded_fen": 0}
    assert client.get(path, headers=ADMIN).status_code == 200
    assert_problem(client.get(path, headers=other.headers), 404, "session_id")
    assert_problem(client.get(path, headers=sign_up(client)), 403)
    assert_problem(client.get("/live/sessions/xyz/analytics", headers=ADMIN), 404, "session_id")
