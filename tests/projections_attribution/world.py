"""A Commerce (and Livestream) log built with the real aggregates, for projections to read.

Creators, links, codes, journeys and orders are made by the domain classes' own methods and
saved in call order, so the log reads like production: touchpoints first, then the order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from commerce.application import Commerce
from commerce.domain import ids
from commerce.domain.creators import Creator, PromoCode, ReferralLink
from commerce.domain.journeys import Journey, touchpoint
from commerce.domain.orders import Order
from commerce.platform.eventstore import event_store_env
from livestream.application import Livestream
from projections import runner as projection_runner
from projections.batching import BatchRunner
from projections.sqlstore import SqlStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)  # orders are placed at T0 unless said otherwise
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
BUYER_HASH = "h-buyer"
TOTAL, TAX = 11_300, 1_300  # commissionable: 10,000 fen


class World:
    def __init__(self, database_url: str | None, var_dir: Path) -> None:
        env = event_store_env(database_url, var_dir, Commerce.name, create_table=True)
        self.commerce = Commerce(env=env)
        live_env = event_store_env(database_url, var_dir, Livestream.name, create_table=True)
        self.live = Livestream(env=live_env)
        self.store = SqlStore.open(database_url, var_dir)
        self.merchant = uuid4()
        self.product = str(uuid4())
        self.journeys: dict[UUID, Journey] = {}

    def close(self) -> None:
        self.store.close()
        self.commerce.close()
        self.live.close()

    # -- creators, links, codes ----------------------------------------------------------------
    def creator(
        self,
        name: str,
        rate_bp: int | None = 1_000,
        hashes: tuple[str, ...] = (),
        user_id: UUID | None = None,
    ) -> str:
        user = user_id or uuid4()
        creator = Creator(
            id=ids.creator_id(user),
            user_id=user,
            display_name=name,
            identity_hashes=list(hashes),
            at=T0 - 30 * DAY,
        )
        if rate_bp is not None:
            creator.link(self.merchant, rate_bp, T0 - 30 * DAY)
        self.commerce.save(creator)
        return str(creator.id)

    def link(self, creator: str, code: str, rate_bp: int, **kw: Any) -> ReferralLink:
        link = ReferralLink(
            id=ids.referral_link_id(code),
            product_id=kw.pop("product_id", None),
            **self._offer(creator, code, rate_bp, **kw),
        )
        self.commerce.save(link)
        return link

    def promo(self, creator: str, code: str, rate_bp: int, percent_off: int = 10) -> PromoCode:
        promo = PromoCode(
            id=ids.promo_code_id(code),
            percent_off=percent_off,
            **self._offer(creator, code, rate_bp),
        )
        self.commerce.save(promo)
        return promo

    def _offer(self, creator: str, code: str, rate_bp: int, **kw: Any) -> dict:
        return {
            "code": code,
            "creator_id": UUID(creator),
            "merchant_id": kw.get("merchant_id", self.merchant),
            "commission_rate_bp": rate_bp,
            "valid_from": kw.get("valid_from", T0 - 60 * DAY),
            "valid_until": kw.get("valid_until", T0 + 300 * DAY),
            "at": T0 - 60 * DAY,
        }

    def revoke(self, offer: ReferralLink | PromoCode, at: datetime) -> None:
        offer.revoke(at)
        self.commerce.save(offer)

    # -- journeys and orders -------------------------------------------------------------------
    def touch(
        self,
        buyer: UUID,
        kind: str,
        creator: str,
        source: str,
        at: datetime,
        product: str | None = None,
    ) -> str:
        journey = self.journeys.get(buyer)
        if journey is None:
            journey = Journey(id=ids.journey_id(buyer), buyer_id=buyer, at=at)
            self.journeys[buyer] = journey
        tid = uuid4()
        creator_id = UUID(creator) if creator else None
        product_id = UUID(product) if product else None
        journey.record([touchpoint(tid, kind, creator_id, source, product_id, at)])
        self.commerce.save(journey)
        return str(tid)

    def order(
        self,
        buyer: UUID,
        at: datetime = T0,
        total: int = TOTAL,
        tax: int = TAX,
        identity_hash: str = BUYER_HASH,
        attribution: dict | None = None,
    ) -> Order:
        order = Order(
            id=uuid4(),
            merchant_id=self.merchant,
            buyer_id=buyer,
            lines=[{"sku": "SUN-50", "product_id": self.product, "quantity": 1}],
            quote={
                "goods_fen": total - tax - 800,
                "freight_fen": 800,
                "tax_fen": tax,
                "total_fen": total,
            },
            identity={"identity_hash": identity_hash},
            address={},
            fx_rates={},
            placed_at=at,
            expires_at=at + timedelta(minutes=15),
            stock_ids=[],
            quota_id=uuid4(),
            attribution=attribution,
        )
        self.commerce.save(order)
        return order

    def pay(self, order: Order, at: datetime | None = None) -> None:
        order.mark_paid(f"pay-{order.id}", order.total_fen, at or order.placed_at + HOUR / 6)
        self.commerce.save(order)

    def deliver(self, order: Order, at: datetime) -> None:
        order.declare_customs("decl-1", at - 3 * HOUR)
        order.clear_customs(at - 2 * HOUR)
        order.ship("SF", "SF123", at - HOUR)
        order.deliver(at)
        self.commerce.save(order)

    def refund(self, order: Order, amount: int, at: datetime) -> None:
        order.refund(f"refund-{len(order.refunds)}", amount, "returned", at)
        self.commerce.save(order)

    def cancel(self, order: Order, at: datetime) -> None:
        order.cancel("changed mind", "buyer", at)
        self.commerce.save(order)

    # -- projecting ----------------------------------------------------------------------------
    def project(self, projection: Any, app: Any = None, fast: bool = False, batch: int = 1000):
        """Migrate `projection` and catch it up; `fast` uses the batch runner's decoder."""
        projection_runner.migrate(self.store, projection)
        kind = BatchRunner if fast else projection_runner.ProjectionRunner
        runner = kind(app or self.commerce, self.store, projection, batch_size=batch)
        runner.catch_up()
        return runner
