"""Data for `redcart bench flash-deal`: the seed, the deals over HTTP, the after-run checks."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

SKU = "FLASH-1"
PRICE_FEN = 990  # 9.90 CNY: far below every CBEC limit, one claim per buyer and deal
PER_BUYER_LIMIT = 1
COUNTDOWN_S = 10  # the shortest the deal allows
PAYMENT_WINDOW_S = 300  # no claim lapses during a run


@dataclass(frozen=True)
class Seed:
    merchant_id: UUID
    merchant_key: str
    warehouse_id: UUID
    product_id: UUID
    buyers: tuple[tuple[UUID, str, str], ...]  # (id, bearer token, resident ID)


def prepare(env: dict[str, str], buyers: int, stock: int) -> Seed:
    """`redcart migrate`, then one merchant, warehouse, product, stock and the buyers through
    the use cases (in-process, before the server starts; the deals go over HTTP)."""
    from redcart.settings import Settings
    from redcart.wiring import migrate

    settings = Settings.from_env(env)
    migrate(settings)
    return _seed(settings, buyers, stock)


def _seed(settings: Any, buyers: int, stock: int) -> Seed:
    from bench.orders import resident_id
    from commerce import credentials
    from commerce.domain import ids
    from commerce.platform.groupcommit import GroupCommitWriter
    from commerce.services import catalog
    from commerce.services.access import Principal
    from commerce.services.idempotency import Idempotency
    from redcart.wiring import commerce_app

    cfg = settings.commerce_config()
    app = commerce_app(settings, create_table=False)
    writer = GroupCommitWriter(app).start()
    admin = Principal("admin")

    def key(who: Any, name: str) -> Idempotency:
        return Idempotency(who.name, f"bench:{name}", f"bench:{name}")

    try:
        run: Callable[..., Any] = writer.execute
        run(catalog.set_fx_rate, cfg, "JPY", Decimal("0.0478"), "bench")
        merchant = run(
            catalog.onboard_merchant, cfg, key(admin, "merchant"), "Flash KK", "JP", "JPY"
        ).body
        mid = UUID(merchant["id"])
        seller = Principal("merchant", mid)
        bonded = run(
            catalog.open_warehouse, cfg, key(seller, "bonded"), mid, "Ningbo Bonded Zone",
            "bonded", "CN", "Meishan Bonded Port, Ningbo",
        ).body  # fmt: skip
        warehouse_id = UUID(bonded["id"])
        fields = {
            "sku": SKU,
            "title": "秒杀 cushion",
            "brand": "Bench",
            "origin_country": "JP",
            "hs_code": "3304990099",
            "category": "beauty",
            "list_price_minor": 3000,
            "weight_grams": 100,
            "vat_rate": Decimal("0.13"),
            "consumption_tax_rate": Decimal("0"),
        }
        run(catalog.list_product, cfg, key(seller, SKU), mid, fields)
        product_id = ids.product_id(mid, SKU)
        run(catalog.receive_stock, cfg, mid, product_id, warehouse_id, stock)

        def sign_up(i: int) -> tuple[UUID, str, str]:
            body = run(catalog.sign_up_buyer, cfg, key(admin, f"buyer:{i}"), f"fan {i}").body
            bid = UUID(body["id"])
            token = credentials.issue(credentials.BUYER_PREFIX, bid, cfg.secret_key)
            return bid, token, resident_id(i, 0)

        with ThreadPoolExecutor(32) as pool:  # concurrent sign-ups share group commits
            people = tuple(pool.map(sign_up, range(buyers)))
    finally:
        writer.stop()
        app.close()
    merchant_key = credentials.issue(credentials.MERCHANT_PREFIX, mid, cfg.secret_key)
    return Seed(mid, merchant_key, warehouse_id, product_id, people)


def open_deals(base_url: str, seed: Seed, quantities: list[int], duration_s: int) -> list[dict]:
    """A live session (scheduled, started), then one deal per quantity, over HTTP as its host."""
    import httpx

    auth = {"Authorization": f"Bearer {seed.merchant_key}"}
    with httpx.Client(base_url=base_url, timeout=30, headers=auth) as c:
        starts = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        r = c.post("/live/sessions", json={"title": "秒杀 bench", "starts_at": starts})
        r.raise_for_status()
        sid = r.json()["id"]
        c.post(f"/live/sessions/{sid}/start").raise_for_status()
        deals = []
        for i, quantity in enumerate(quantities):
            r = c.post(
                f"/live/sessions/{sid}/deals",
                headers={"Idempotency-Key": f"bench-deal-{i}"},
                json={
                    "sku": SKU,
                    "warehouse_id": str(seed.warehouse_id),
                    "price_fen": PRICE_FEN,
                    "quantity": quantity,
                    "per_buyer_limit": PER_BUYER_LIMIT,
                    "countdown_seconds": COUNTDOWN_S,
                    "duration_seconds": duration_s,
                    "payment_window_seconds": PAYMENT_WINDOW_S,
                },
            )
            if r.status_code != 201:
                raise RuntimeError(f"opening a deal answered {r.status_code}: {r.text[:300]}")
            deals.append(r.json())
    return deals


def _pct(values: list[float], q: float) -> float | None:
    return round(values[min(len(values) - 1, int(q * len(values)))], 1) if values else None


def wait_for_orders(db_url: str, env: dict[str, str], timeout: float = 120.0) -> float:
    """Until every committed claim has its order placed (or refused): the claim is answered
    first and its order follows (livestream.engine.placement). Seconds waited."""
    import psycopg

    from livestream.engine.placement import NAME, TOPICS
    from redcart.settings import Settings
    from redcart.wiring import livestream_app

    live = livestream_app(Settings.from_env(env), create_table=False)
    start = time.monotonic()
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            while time.monotonic() - start < timeout:
                row = conn.execute(
                    "SELECT position FROM projection_tracking WHERE name = %s", (NAME,)
                ).fetchone()
                position = int(row[0]) if row else 0
                ahead = live.recorder.select_notifications(
                    position, 1, None, TOPICS, inclusive_of_start=False
                )
                if not ahead:
                    break
                time.sleep(0.1)
    finally:
        live.close()
    return round(time.monotonic() - start, 2)


def check(
    env: dict[str, str], seed: Seed, deal_id: UUID, won: int, unanswered: int = 0
) -> dict[str, Any]:
    """What the stores say after the run: the deal's claims against its quantity and the 201s
    answered, one order per claim, the stock hold intact, no buyer over the per-buyer limit.
    An attempt the client gave up on (timeout) may still have been claimed: `unanswered`."""
    from commerce.domain import ids
    from commerce.domain.inventory import Stock
    from commerce.domain.orders import Order
    from livestream.domain.deals import FlashDeal
    from redcart.settings import Settings
    from redcart.wiring import commerce_app, livestream_app

    settings = Settings.from_env(env)
    live = livestream_app(settings, create_table=False)
    commerce = commerce_app(settings, create_table=False)
    try:
        deal = live.repository.get(deal_id)
        assert isinstance(deal, FlashDeal)
        now = datetime.now(UTC)
        recorded = len(deal.claimants)
        released = recorded - len(deal.claims)  # released (or expired) claims return units
        held = deal.units_claimed(now)
        over_limit = sum(
            1 for holds in deal.by_buyer.values() if holds.live_total(now) > deal.per_buyer_limit
        )
        ever = Counter(deal.claimants.values())  # all claims ever, released ones too

        def order(claim_id: UUID) -> Any:
            try:
                return commerce.repository.get(ids.claim_order_id(claim_id))
            except Exception:  # AggregateNotFoundError: a claim without its order
                return None

        with ThreadPoolExecutor(8) as pool:
            orders = list(pool.map(order, list(deal.claims)))
        good = [o for o in orders if isinstance(o, Order) and o.drawn_from == deal.id]
        order_units = sum(int(o.lines[0]["quantity"]) for o in good)

        def claimed_at(o: Order) -> datetime:  # its deadline, less the window and the grace
            held_until = deal.terms[UUID(o.attribution["claim_id"])][1]  # type: ignore[index]
            return held_until - deal.payment_window - deal.settle_grace

        # how long after its claim's commit each order was placed (off the claim's path)
        lag_ms = sorted((o.placed_at - claimed_at(o)).total_seconds() * 1000 for o in good)
        stock = commerce.repository.get(ids.stock_id(seed.product_id, seed.warehouse_id))
        assert isinstance(stock, Stock)
        hold = stock.reservations.get(deal.id)
        # A claim is released when its order is refused, after its 201; nothing here is (the
        # price is within every CBEC limit), so neither the units held, nor the 201s, nor the
        # orders may exceed the quantity.
        oversold = max(0, held - deal.quantity, won - deal.quantity, order_units - deal.quantity)
        return {
            "deal_id": str(deal.id),
            "quantity": deal.quantity,
            "claims_recorded": recorded,
            "claims_released": released,
            "units_claimed": held,
            "http_201": won,
            "orders_for_live_claims": len(good),
            "order_units": order_units,
            "claims_without_order": len(deal.claims) - len(good),
            "stock_hold_units": None if hold is None else hold[0],
            "stock_on_hand": stock.on_hand,
            "stock_available": stock.available(now),
            "oversold": oversold,
            "order_lag_ms": {
                "p50": _pct(lag_ms, 0.50),
                "p99": _pct(lag_ms, 0.99),
                "max": lag_ms[-1] if lag_ms else None,
            },
            "per_buyer_violations": over_limit,
            "buyers_with_more_claims_than_limit_ever": sum(
                1 for n in ever.values() if n > deal.per_buyer_limit
            ),
            "unanswered_attempts": unanswered,
            "claimed_without_answer": held - won,
            "consistent": held == order_units
            and recorded == held + released
            and won <= held <= won + unanswered
            and hold is not None
            and hold[0] == deal.quantity,
        }
    finally:
        live.close()
        commerce.close()
