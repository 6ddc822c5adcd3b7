"""The dashboard and live-analytics projections over real logs, and the batch path's equivalence:
however a log is cut into batches, and whichever runner decodes it, the tables come out the same.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from uuid import uuid4

from bench.projections import Log
from livestream.domain.deals import FlashDeal
from livestream.domain.sessions import LiveSession
from projections.api.dashboards import day_figures, deal_figures
from projections.attribution_view import AttributionView
from projections.dashboards import DAILY, LiveAnalytics, MerchantDashboard
from tests.projections_attribution.world import DAY, HOUR, T0, World

MINUTE = timedelta(minutes=1)


def daily(world: World, view: MerchantDashboard) -> dict[str, dict]:
    rows = world.store.query(f"SELECT day, {', '.join(DAILY)} FROM {view.t['daily']}")
    return {row[0]: day_figures(row[0], dict(zip(DAILY, row[1:], strict=True))) for row in rows}


def test_merchant_days_in_shanghai_time(world: World) -> None:
    late = datetime.fromisoformat("2026-11-01T17:00:00+00:00")  # 01:00 on the 2nd in Shanghai
    buyer = uuid4()
    paid_next_day = world.order(buyer, at=T0)
    world.pay(paid_next_day, T0 + 14 * MINUTE)
    refunded = world.order(buyer, at=late)
    world.pay(refunded, late + MINUTE)
    world.refund(refunded, 3_000, late + DAY)
    world.order(buyer, at=T0 + HOUR)  # left to expire
    expired = world.order(buyer, at=T0 + 2 * HOUR)
    expired.expire(T0 + 3 * HOUR)
    world.commerce.save(expired)
    cancelled = world.order(buyer, at=T0 + 2 * HOUR)
    world.cancel(cancelled, T0 + 2 * HOUR + MINUTE)
    view = MerchantDashboard(tz="Asia/Shanghai")
    world.project(view, fast=world.store.dialect == "postgres")

    days = daily(world, view)
    first, second, third = days["2026-11-01"], days["2026-11-02"], days["2026-11-03"]
    assert (first["placed"], first["paid_of_placed"], first["paid_orders"]) == (4, 1, 1)
    assert (first["expired"], first["cancelled"], first["conversion"]) == (1, 1, 0.25)
    assert first["gmv_fen"] == 11_300
    assert (second["placed"], second["paid_orders"], second["conversion"]) == (1, 1, 1.0)
    assert (third["refunds"], third["refunded_fen"], third["net_gmv_fen"]) == (1, 3_000, -3_000)


def test_live_session_peak_claims_and_sell_through(world: World) -> None:
    host = world.merchant
    session = LiveSession.schedule(
        host_merchant_id=host, title="Double 11", starts_at=T0, now=T0 - HOUR
    )
    session.start(T0)
    session.count_audience(100, 120, 5, T0 + MINUTE, "api-1")
    session.count_audience(300, 310, 9, T0 + MINUTE, "api-2")  # peak: 100 + 310
    session.count_audience(50, 60, 7, T0 + 2 * MINUTE, "api-1")  # now 50 + 300
    deal = FlashDeal.open(
        session_id=session.id,
        merchant_id=host,
        sku="SUN-50",
        warehouse_id=uuid4(),
        price_fen=9_900,
        quantity=10,
        per_buyer_limit=3,
        announced_at=T0,
        countdown_seconds=10,
        duration_seconds=600,
    )
    opens = T0 + timedelta(seconds=10)
    claims = [uuid4() for _ in range(4)]
    for claim in claims:
        deal.claim(claim, uuid4(), 2, opens)
    deal.pay(claims[0], opens + MINUTE)
    deal.pay(claims[1], opens + MINUTE)
    deal.release(claims[2])
    deal.expire(claims[3], opens + HOUR)
    deal.close(opens + 5 * MINUTE)
    world.live.save(session, deal)
    order = world.order(
        uuid4(),
        attribution={
            "source": "live",
            "session_id": str(session.id),
            "host_merchant_id": str(host),
            "creator_id": None,
            "deal_id": str(deal.id),
            "claim_id": str(claims[0]),
        },
    )
    world.pay(order)
    live, sales = LiveAnalytics(), MerchantDashboard()
    world.project(live, app=world.live, fast=True)
    world.project(sales)

    (body,) = [row[0] for row in world.store.query(f"SELECT body FROM {live.t['live_sessions']}")]
    assert '"peak_viewers":410' in body
    ((deal_id, deal_body),) = world.store.query(f"SELECT id, body FROM {live.t['live_deals']}")
    figures = deal_figures(deal_id, json.loads(deal_body))
    assert (figures["claims"], figures["units_claimed"], figures["units_paid"]) == (4, 8, 4)
    assert (figures["units_released"], figures["units_expired"]) == (2, 2)
    assert figures["sell_through"] == 0.4 and figures["deal_gmv_fen"] == 4 * 9_900
    (row,) = world.store.query(
        f"SELECT orders, paid_orders, gmv_fen FROM {sales.t['session_sales']} WHERE id = %s",
        (str(session.id),),
    )
    assert tuple(row) == (1, 1, 11_300)


def dump(world: World, view: object) -> dict[str, list]:
    out = {}
    for table in view.tables:  # type: ignore[attr-defined]
        out[table.rsplit("_g", 1)[0]] = sorted(
            map(tuple, world.store.query(f"SELECT * FROM {table}"))
        )
    return out


class Gen:
    def __init__(self, number: int) -> None:
        self.number = number

    def name(self, base: str) -> str:
        return f"{base}_g{self.number}"


def test_batches_and_decoders_do_not_change_the_result(world: World) -> None:
    """One event per transaction, odd batch sizes, and msgspec decoding: the same tables."""
    Log(world.commerce, world.live, random.Random(3)).write(2_500)
    results = []
    for number, (batch, fast) in enumerate([(1, False), (7, True), (1000, False), (1000, True)]):
        gen = Gen(number + 1)
        views = [AttributionView(gen), MerchantDashboard(gen)]
        for view in views:
            world.project(view, fast=fast, batch=batch)
        live = LiveAnalytics(gen)
        world.project(live, app=world.live, fast=fast, batch=batch)
        results.append([dump(world, v) for v in [*views, live]])
    assert all(r == results[0] for r in results[1:])
    attribution = results[0][0]
    assert len(attribution["attr_orders"]) > 300 and len(attribution["attr_commissions"]) > 100
