"""The social half of the demo, driven through the real API in-process (notes, a KOL with a
referral link, a referral click, then the demo order), so `make run` shows product pages with
notes, Chinese search, a trending feed and an attribution explanation for the demo order.

Safe to run on every start: creating calls carry Idempotency-Keys, and what cannot be
repeated (a second like by the same buyer) changes nothing.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from commerce import credentials
from commerce.domain import ids
from commerce.services.access import Principal
from redcart.settings import Settings

NOTES = [
    (
        "SK-SUN-50",
        "小金瓶防晒真的不油 #防晒 #安热沙",
        "海边暴晒一整天没晒黑，成膜快，不搓泥。Anessa sunscreen, works under makeup too. #防晒",
    ),
    (
        "SK-LOT-150",
        "雪肌精化妆水回购第三瓶 #护肤",
        "湿敷十分钟，第二天上妆很服帖。Sekkisei lotion, my third bottle. #护肤",
    ),
    (
        "SG-CUSH-01",
        "兰芝气垫直播间抢到了 #气垫 #直播",
        "哑光不闷痘，持妆一整天。Laneige cushion from the live room flash deal. #气垫",
    ),
]


def run_social_demo(settings: Settings, order_body: dict[str, Any]) -> dict[str, Any]:
    """Returns the demo order (placed after a referral click) and what to try."""
    from litestar.testing import TestClient

    from redcart.app import create_app

    admin = Principal("admin").name
    secret = settings.secret_key.encode()
    buyer_id = ids.keyed_id("buyer", admin, "demo:buyer")
    merchant_id = ids.keyed_id("merchant", admin, "demo:merchant:0")
    buyer = _bearer(credentials.issue(credentials.BUYER_PREFIX, buyer_id, secret))
    merchant = _bearer(credentials.issue(credentials.MERCHANT_PREFIX, merchant_id, secret))
    env = {"REDCART_PAYMENTS": "off"}
    with TestClient(app=create_app(settings, env=env)) as api:
        product_ids = {
            item["sku"]: item["id"] for item in _ok(api.get("/products", headers=merchant))["items"]
        }
        product_ids |= _other_merchant_products(api, settings)
        fans = [_ok(api.post("/buyers", json={"display_name": f"粉丝{n}"})) for n in range(3)]
        notes = []
        for n, (sku, title, body) in enumerate(NOTES):
            note = _ok(
                api.post(
                    "/notes",
                    headers=buyer | {"Idempotency-Key": f"demo-note-{n}"},
                    json={"title": title, "body": body, "product_ids": [product_ids[sku]]},
                )
            )
            notes.append(note["id"])
            for fan in fans[: 3 - n]:  # the first note is the most liked and saved
                token = _bearer(fan["token"])
                api.post(f"/notes/{note['id']}/like", headers=token)
                if n == 0:
                    api.post(f"/notes/{note['id']}/save", headers=token)
        kol = fans[0]
        creator = _ok(
            api.post(
                "/creators",
                headers=merchant | {"Idempotency-Key": f"demo-creator-{kol['id']}"},
                json={
                    "user_id": kol["id"],
                    "display_name": "小红薯 KOL",
                    "commission_rate_bp": 800,
                },
            )
        )
        code = f"XHS{datetime.now(UTC):%m%d%H%M%S}"  # a fresh link per start: codes are unique
        _ok(
            api.post(
                "/referral-links",
                headers=merchant,
                json={
                    "code": code,
                    "creator_id": creator["id"],
                    "product_id": product_ids["SK-SUN-50"],
                    "valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
                },
            )
        )
        _ok(api.get(f"/r/{code}", headers=buyer))  # the buyer follows the KOL's link…
        run = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        order = _ok(  # …and buys: the order is attributed to the link
            api.post(
                "/orders", headers=buyer | {"Idempotency-Key": f"demo-order-{run}"}, json=order_body
            )
        )
        _wait_for(api, f"/orders/{order['id']}/attribution", merchant)
        _wait_for(api, f"/products/{product_ids['SK-SUN-50']}/page", {})
    return {"order_id": UUID(order["id"]), "notes": notes, "referral_code": code,
            "product_id": product_ids["SK-SUN-50"]}  # fmt: skip


def _other_merchant_products(api: Any, settings: Settings) -> dict[str, str]:
    admin = Principal("admin").name
    mid = ids.keyed_id("merchant", admin, "demo:merchant:1")
    token = _bearer(
        credentials.issue(credentials.MERCHANT_PREFIX, mid, settings.secret_key.encode())
    )
    return {item["sku"]: item["id"] for item in _ok(api.get("/products", headers=token))["items"]}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ok(response: Any) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(f"demo call failed: {response.status_code} {response.text}")
    return response.json() if response.content else None


def _wait_for(api: Any, path: str, headers: dict[str, str], seconds: float = 15.0) -> None:
    """The read models catch up in the background (in-process runners)."""
    deadline = time.monotonic() + seconds
    while api.get(path, headers=headers).status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(f"demo read model never answered {path}")
        time.sleep(0.1)
