"""Tells flash deals what happened to their orders: paid (the claim counts for good) or
cancelled (its units return to the deal at once). Expiry needs no message: an unpaid claim stops
counting at its deadline by itself.

A tracked follower of the commerce log, like the payment process: the position advances only
after an order's news reached its deal, and telling a deal twice changes nothing. One process at
a time runs it (a PostgreSQL advisory lease). Claims keep their units a grace period past the
buyer's deadline, so a payment taken in time is normally recorded here before the units could
go to anyone else; if this process was down for longer than that, the deal refuses the late
news and the order is refunded in full, automatically (stock was never at risk: a paid order
draws its units from the deal's hold, which cannot give more than it holds).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from litestar.concurrency import sync_to_thread

from commerce.api.runtime import CommerceRuntime
from commerce.domain.errors import DomainError
from commerce.domain.orders import Order
from commerce.services.access import ADMIN, Principal
from commerce.services.fulfilment import refund_order
from livestream.engine.router import DealEngine
from projections.follow import TrackedFollower

log = logging.getLogger("redcart.livestream.settlement")
NAME = "deal_settlement"
TOPICS = ("commerce.Order.Paid", "commerce.Order.Cancelled")


class DealSettlement(TrackedFollower):
    NAME = NAME

    def __init__(
        self,
        commerce: CommerceRuntime,
        engine: DealEngine,
        lease: Callable[[], bool] = lambda: True,
        poll_interval: float = 0.5,
        release: Callable[[], None] = lambda: None,
        units_changed: Callable[[dict[str, Any]], None] = lambda deal: None,
    ) -> None:
        """`units_changed(deal)`: the deal's room hears its new count (DealRoom.units_changed)."""
        super().__init__(commerce.store, log, lease, poll_interval, release)
        self.commerce, self.engine, self.units_changed = commerce, engine, units_changed

    async def catch_up(self) -> int:
        done = 0
        app = self.commerce.app
        while True:
            start = await sync_to_thread(self._position)
            notes = await sync_to_thread(
                app.recorder.select_notifications, start, 200, None, TOPICS,
                inclusive_of_start=False,
            )  # fmt: skip
            if not notes:
                return done
            for note in notes:
                await self.settle(note.originator_id, note.topic.endswith(".Paid"))
                done += 1
            await sync_to_thread(self._advance, notes[-1].id)

    async def settle(self, order_id: UUID, paid: bool) -> None:
        try:
            order = await sync_to_thread(self.commerce.app.repository.get, order_id)
        except AggregateNotFoundError:
            return
        if not isinstance(order, Order) or order.drawn_from is None:
            return
        claim_id = UUID(order.attribution["claim_id"])  # type: ignore[index]
        if not paid:
            deal = await self.engine.run(order.drawn_from, "release", claim_id=claim_id)
            self.units_changed(deal)  # viewers see the unit back, not a stale "sold out"
            return
        answer = await self.engine.run(order.drawn_from, "pay", claim_id=claim_id)
        if not answer["accepted"]:
            log.warning("deal refused late payment of order %s: refunding it", order.id)
            await self._refund(order, answer.get("reason", "claim lapsed"))

    async def _refund(self, order: Order, reason: str) -> None:
        try:
            await self.commerce.writer.submit(
                refund_order,
                self.commerce.cfg,
                Principal(ADMIN),
                order.id,
                f"deal-lapsed-{order.id}",
                order.total_fen - order.refunded_fen,
                f"flash deal claim lapsed before its payment was settled: {reason}",
            )
        except DomainError as exc:  # already refunded, or nothing left: nothing to do
            log.info("refund of order %s not needed: %s", order.id, exc.detail)
