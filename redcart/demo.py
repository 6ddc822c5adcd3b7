"""Demo data for `make run`: enough for a newcomer to call every endpoint at once."""

from __future__ import annotations

import json
from decimal import Decimal
from uuid import UUID, uuid4

from commerce import credentials
from commerce.domain import ids
from commerce.services import catalog
from commerce.services.access import Principal
from commerce.services.idempotency import Idempotency
from redcart.demo_social import run_social_demo
from redcart.settings import Settings
from redcart.wiring import build_commerce

DEMO_ID = "11010519491231002X"  # a well-known valid sample resident ID (check digit X)
MERCHANTS = [
    ("Sakura Beauty KK", "JP", "JPY", ("Tokyo DC", "direct_mail", "JP", "1-2-3 Koto, Tokyo")),
    ("Seoul Glow Co", "KR", "KRW", ("Incheon DC", "direct_mail", "KR", "45 Songdo-ro, Incheon")),
]
PRODUCTS = {
    "Sakura Beauty KK": [
        (
            "SK-SUN-50",
            "资生堂 安热沙 小金瓶防晒霜 Anessa Perfect UV Sunscreen 60ml",
            "Anessa",
            "JP",
            "3304990099",
            "beauty",
            3280,
            90,
        ),
        (
            "SK-LOT-150",
            "雪肌精 化妆水 Sekkisei Lotion 200ml",
            "Sekkisei",
            "JP",
            "3304990099",
            "beauty",
            5500,
            260,
        ),
        (
            "SK-VITC-60",
            "DHC 维生素C Vitamin C 60 days",
            "DHC",
            "JP",
            "2106909090",
            "health",
            480,
            50,
        ),
    ],
    "Seoul Glow Co": [
        (
            "SG-MASK-10",
            "Mediheal 面膜 N.M.F Aquaring Ampoule Mask x10",
            "Mediheal",
            "KR",
            "3304990099",
            "beauty",
            25000,
            300,
        ),
        (
            "SG-CUSH-01",
            "Laneige 气垫 Neo Cushion Matte",
            "Laneige",
            "KR",
            "3304990099",
            "beauty",
            42000,
            120,
        ),
    ],
}
ADDRESS = {
    "recipient": "王小红",
    "mobile": "13800138000",
    "province": "上海市",
    "city": "上海市",
    "district": "黄浦区",
    "street": "南京东路 100 号",
    "postcode": "200001",
}


def load_demo(settings: Settings, *, once: bool = False) -> dict:
    runtime = build_commerce(settings)
    writer, cfg = runtime.writer.start(), runtime.cfg
    admin = Principal("admin")
    try:
        first = ids.keyed_id("merchant", admin.name, "demo:merchant:0")
        already = runtime.app.repository.__contains__(first)
        if not (already and once):
            _load_catalogue(writer, cfg, admin, already)
        live = _open_demo_live(settings, runtime)
    finally:
        writer.stop()
        runtime.store.close()
        runtime.app.close()
    social = run_social_demo(settings, _order_body())
    state = "already loaded" if already and once else "loaded"
    return {"demo": state, **_summary(settings, social, live)}


def _load_catalogue(writer, cfg, admin: Principal, already: bool) -> None:  # type: ignore[no-untyped-def]
    for rate in (("JPY", "0.0478"), ("KRW", "0.0052"), ("USD", "7.12")):
        writer.execute(catalog.set_fx_rate, cfg, rate[0], Decimal(rate[1]), "demo")
    for n, (name, country, currency, (wname, kind, wcountry, addr)) in enumerate(MERCHANTS):
        merchant = writer.execute(
            catalog.onboard_merchant, cfg, _key(admin, f"merchant:{n}"), name, country, currency
        ).body
        mid = UUID(merchant["id"])
        bonded = writer.execute(
            catalog.open_warehouse,
            cfg,
            _key(Principal("merchant", mid), "bonded"),
            mid,
            "Ningbo Bonded Zone",
            "bonded",
            "CN",
            "Meishan Bonded Port, Ningbo, Zhejiang",
        ).body
        overseas = writer.execute(
            catalog.open_warehouse,
            cfg,
            _key(Principal("merchant", mid), "overseas"),
            mid,
            wname,
            kind,
            wcountry,
            addr,
        ).body
        for sku, title, brand, origin, hs, cat, price, grams in PRODUCTS[name]:
            fields = {
                "sku": sku,
                "title": title,
                "brand": brand,
                "origin_country": origin,
                "hs_code": hs,
                "category": cat,
                "list_price_minor": price,
                "weight_grams": grams,
                "vat_rate": Decimal("0.13"),
                "consumption_tax_rate": Decimal("0"),
            }
            product = writer.execute(
                catalog.list_product, cfg, _key(Principal("merchant", mid), sku), mid, fields
            ).body
            pid = UUID(product["id"])
            if not already:
                writer.execute(catalog.receive_stock, cfg, mid, pid, UUID(bonded["id"]), 40)
                writer.execute(catalog.receive_stock, cfg, mid, pid, UUID(overseas["id"]), 200)
    writer.execute(catalog.sign_up_buyer, cfg, _key(admin, "buyer"), "小红 (demo)")


def _order_body() -> dict:
    """A fresh unpaid order on every start, so there is always one to pay within its TTL."""
    merchant_id = ids.keyed_id("merchant", Principal("admin").name, "demo:merchant:0")
    return {
        "merchant_id": str(merchant_id),
        "lines": [{"sku": "SK-SUN-50", "quantity": 2}, {"sku": "SK-VITC-60", "quantity": 1}],
        "identity": {"name": "王小红", "resident_id": DEMO_ID},
        "address": ADDRESS,
    }


def _open_demo_live(settings: Settings, runtime) -> dict:  # type: ignore[no-untyped-def]
    """A live session on air with a flash deal, fresh on every start: the deal counts down
    for 30 s, then sells up to 30 cushions at 99 CNY for 20 minutes."""
    from datetime import timedelta

    from commerce.services import deal_orders
    from livestream.api import usecases
    from livestream.engine import commands
    from redcart.wiring import build_livestream

    live = build_livestream(settings, runtime)
    writer, clock = live.writer.start(), live.clock
    admin = Principal("admin").name
    host = ids.keyed_id("merchant", admin, "demo:merchant:1")
    try:
        session = writer.execute(
            usecases.schedule, clock, host, "首尔直播 Seoul Glow live: 气垫 flash deal",
            clock() + timedelta(seconds=5), None,
        )  # fmt: skip
        sid = UUID(session["id"])
        writer.execute(usecases.start, clock, host, sid)
        cushion = ids.product_id(host, "SG-CUSH-01")
        writer.execute(usecases.pin, clock, Principal("merchant", host), sid, cushion)
        coupon = writer.execute(
            usecases.issue_coupon, clock, Principal("merchant", host), sid, uuid4(),
            {"amount_fen": 1000, "percent_off": None, "quantity": 50, "per_buyer_limit": 1},
        )  # fmt: skip
        merchant = runtime.app.repository.get(host)
        stocks = [
            runtime.app.repository.get(ids.stock_id(cushion, w)) for w in merchant.warehouse_ids
        ]
        best = max(stocks, key=lambda stock: stock.available(clock()))  # earlier runs hold some
        bonded, units = best.warehouse_id, min(30, best.available(clock()))
        terms = {
            "sku": "SG-CUSH-01",
            "price_fen": 9900,
            "quantity": units,
            "per_buyer_limit": 2,
            "countdown_seconds": 30,
            "duration_seconds": 20 * 60,
            "payment_window_seconds": 15 * 60,
        }
        deal_id = uuid4()
        until = clock() + timedelta(seconds=30 + 20 * 60 + 15 * 60 + 120)
        runtime.writer.execute(
            deal_orders.set_aside, runtime.cfg, host, "SG-CUSH-01", bonded, deal_id, units, until
        )
        fields = terms | {
            "warehouse_id": bonded,
            "session_id": sid,
            "merchant_id": host,
            "settle_grace_seconds": settings.settle_grace_seconds,
        }
        writer.execute(commands.open_deal, clock, deal_id, fields)
        return {"session_id": str(sid), "deal_id": str(deal_id), "coupon_id": coupon["id"]}
    finally:
        writer.stop()
        live.app.close()


def _key(principal: Principal, key: str) -> Idempotency:
    return Idempotency(principal.name, f"demo:{key}", f"demo:{key}")


def _summary(settings: Settings, social: dict, live: dict) -> dict:
    secret = settings.secret_key.encode()
    admin = Principal("admin").name
    merchants = []
    for n, (name, *_rest) in enumerate(MERCHANTS):
        mid = ids.keyed_id("merchant", admin, f"demo:merchant:{n}")
        key = credentials.issue(credentials.MERCHANT_PREFIX, mid, secret)
        merchants.append({"name": name, "id": str(mid), "api_key": key})
    buyer_id = ids.keyed_id("buyer", admin, "demo:buyer")
    base = f"http://{settings.host}:{settings.port}"
    buyer_token = credentials.issue(credentials.BUYER_PREFIX, buyer_id, secret)
    order_id = social["order_id"]
    claim_body = {"identity": {"name": "王小红", "resident_id": DEMO_ID}, "address": ADDRESS}
    merchant_auth = f"-H 'Authorization: Bearer {merchants[0]['api_key']}'"
    return {
        "admin_key": settings.admin_key,
        "merchants": merchants,
        "buyer": {"id": str(buyer_id), "token": buyer_token},
        "demo_order": str(order_id),
        "live": live,
        "notes": social["notes"],
        "try": [
            f"curl {base}/products/{social['product_id']}/page   # product page with its notes",
            f"curl '{base}/search?q=防晒'   # search, Chinese works",
            f"curl '{base}/feed/trending?kind=note'",
            f"curl {base}/products/{social['product_id']}/notes   # every note tagging it",
            f"curl {merchant_auth} {base}/orders/{order_id}/attribution"
            f"   # the demo order came through referral link {social['referral_code']}: why",
            f"websocat ws://{settings.host}:{settings.port}/live/{live['session_id']}/ws"
            "   # the live room: snapshot, then deal events (any websocket client)",
            f"curl {base}/live/sessions/{live['session_id']}"
            "   # the session: pinned product, a 10 CNY coupon and how many of its uses are left",
            f"curl -X POST -H 'Authorization: Bearer {buyer_token}' -H 'Idempotency-Key: "
            f"claim-{live['deal_id'][:8]}' -H 'Content-Type: application/json' -d "
            f"'{json.dumps(claim_body, ensure_ascii=False)}' {base}/live/deals/"
            f"{live['deal_id']}/claims   # after the 30 s countdown",
            f"curl -H 'Authorization: Bearer {buyer_token}' {base}/live/deals/{live['deal_id']}"
            "/claims/CLAIM_ID   # the claim's id from its answer: placing, then placed (order)",
            f"curl -H 'Authorization: Bearer {buyer_token}' {base}/orders/{order_id}",
            f"curl -X POST -H 'Authorization: Bearer {buyer_token}' -H 'Content-Type: "
            f'application/json\' -d \'{{"provider": "alipay"}}\' {base}/orders/{order_id}'
            "/payments   # then open sandbox_pay_page and approve (or provider wechatpay)",
            f"open {base}/schema",
        ],
    }
