"""Places the order of every committed flash-deal claim, off the claim's path.

Why not in the claim: in a sale's first second a thousand winners arrive together, and each
order costs its checkout (quote, CBEC allowance, the order's events, a commit) on the same
event loop and GIL as the next claims. Waiting for it put a winner's answer at 0.4–3 s
(BENCHMARKS.md). So a claim is answered once the deal has durably committed it, and carries
what its order needs (identity masked and hashed, address, the request's fingerprint); this
tracked follower of the Livestream log places the order from the committed claim. It also
hands a closed deal's unsold units back to the warehouse's stock (`give_back`), so that they
are on sale again at once rather than when the deal's hold lapses.

Idempotent by claim (the order id derives from the claim id), so a claim placed twice after a
crash yields one order. An order refused here (the buyer's annual CBEC allowance, say) releases
its claim with the reason, which the buyer reads from the claim (GET .../claims/{claim_id});
the units return to the deal at once. One process at a time runs it (a PostgreSQL advisory
lease); the position advances only past claims whose order is placed or whose refusal is
recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

from litestar.concurrency import sync_to_thread

from commerce.domain import ids
from commerce.domain.errors import DomainError
from commerce.domain.identity import BuyerIdentity
from commerce.services import deal_orders
from livestream.domain.deals import FlashDeal
from projections.burst import BurstHold
from projections.follow import TrackedFollower, wait_out

log = logging.getLogger("redcart.livestream.placement")
NAME = "claim_orders"
CLAIMED, CLOSED = "livestream.FlashDeal.Claimed", "livestream.FlashDeal.Closed"
TOPICS = (CLAIMED, CLOSED)
BATCH = 500  # claims read at once; their orders go to the commerce writer together
MAX_DEALS_REMEMBERED = 1_000


class ClaimOrders(TrackedFollower):
    NAME = NAME

    def __init__(
        self,
        live: Any,  # LivestreamRuntime (not imported: it imports this module's neighbours)
        lease: Callable[[], bool] = lambda: True,
        poll_interval: float = 0.5,
        release: Callable[[], None] = lambda: None,
        hold: BurstHold | None = None,
    ) -> None:
        super().__init__(live.commerce.store, log, lease, poll_interval, release, hold)
        self.live, self.commerce = live, live.commerce
        self._deals: dict[UUID, dict[str, Any]] = {}  # a deal's fixed terms, as claims need them

    def head(self) -> int:
        return self.live.app.recorder.max_notification_id() or 0

    async def catch_up(self) -> int:
        """Every claim committed since the last position gets its order (or its refusal)."""
        done, app = 0, self.live.app
        while True:
            start = await sync_to_thread(self._position)
            notes = await sync_to_thread(
                app.recorder.select_notifications, start, BATCH, None, TOPICS,
                inclusive_of_start=False,
            )  # fmt: skip
            if not notes:
                return done
            events = [(note.topic, app.mapper.to_domain_event(note)) for note in notes]
            # all at once: the commerce writer commits them in a few batches
            await asyncio.gather(
                *(self.place(e) if topic == CLAIMED else self.give_back(e) for topic, e in events)
            )
            await sync_to_thread(self._advance, notes[-1].id)
            done += len(notes)
            if self.hold is not None:  # a sale's claims still coming: let them pass first
                await wait_out(self.hold, self.head)

    async def place(self, claimed: Any) -> None:
        """One claim's order. A refusal releases the claim; a failure of the store raises, so
        that the position stays and the claim is tried again."""
        order = getattr(claimed, "order", None)
        if order is None:  # recorded before claims carried their order: placed by their claim
            return
        deal = await self._deal(claimed.originator_id)
        cfg = self.commerce.cfg
        if claimed.pay_by <= cfg.clock():  # lapsed before its order (this was down that long)
            log.warning("claim %s lapsed before its order was placed", claimed.claim_id)
            return
        claim = {
            "id": str(claimed.claim_id),
            "quantity": claimed.quantity,
            "pay_by": (claimed.pay_by - deal["settle_grace"]).isoformat(),
        }
        host = await self.live.host_of(UUID(deal["session_id"]))
        attribution = {
            "source": "live",
            "session_id": deal["session_id"],
            "host_merchant_id": deal["merchant_id"],
            "creator_id": None if host is None or host[1] is None else str(host[1]),
            "deal_id": deal["id"],
            "claim_id": claim["id"],
        }
        identity = BuyerIdentity(**order["identity"])
        quota = ids.quota_id(identity.identity_hash, cfg.quota_year(cfg.clock()))
        try:
            placed = await self.commerce.writer.submit(
                deal_orders.place_claim_order, cfg, claim, deal, claimed.buyer_id, identity,
                order["address"], attribution, order["fingerprint"], order["payment_provider"],
                probe=(ids.claim_order_id(claimed.claim_id), quota),
            )  # fmt: skip
        except DomainError as exc:
            log.info("order of claim %s refused: %s", claimed.claim_id, exc.detail)
            view = await self.live.engine.run(
                claimed.originator_id, "release", claim_id=claimed.claim_id, refused=exc.detail
            )
            self.live.deal_room.units_changed(view)  # the room hears the units came back
            await self._tell(deal, claimed, claim, "refused", reason=exc.detail)
            return
        await self._tell(deal, claimed, claim, "placed", total_fen=placed.body["total_fen"])

    async def give_back(self, closed: Any) -> None:
        """A closed deal's unsold units go back to the warehouse's stock now. Counted from the
        deal as it stands: what is neither paid nor in a claim that may still be paid."""
        deal_id = closed.originator_id
        deal = await sync_to_thread(self.live.app.repository.get, deal_id)
        unsold = deal.units_left(self.commerce.cfg.clock())
        try:
            await self.commerce.writer.submit(
                deal_orders.give_back_unsold, self.commerce.cfg, deal.merchant_id, deal.sku,
                deal.warehouse_id, deal_id, unsold,
            )  # fmt: skip
        except DomainError as exc:  # the stock is gone: its hold lapses, nothing else waits
            log.warning("unsold units of deal %s not given back: %s", deal_id, exc.detail)

    async def _tell(
        self, deal: dict[str, Any], claimed: Any, claim: dict[str, Any], state: str, **more: Any
    ) -> None:
        """The buyer, if watching the room, hears at once that the order is placed (to pay by
        `pay_by`) or refused, without asking GET .../claims/{claim_id}. Best effort: the claim
        answers the same, and a lost message must not hold back the next orders."""
        data = {
            "deal_id": deal["id"],
            "claim_id": claim["id"],
            "order_id": str(ids.claim_order_id(claimed.claim_id)),
            "state": state,
            "quantity": claim["quantity"],
            "pay_by": claim["pay_by"],
            "total_fen": None,
            "reason": None,
            **more,
        }
        try:
            await self.live.hub.tell_user(
                deal["session_id"], str(claimed.buyer_id), f"claim.{state}", data
            )
        except Exception as exc:  # the backplane is down: the claim still says where it stands
            log.warning("could not tell buyer of claim %s (%s)", claim["id"], type(exc).__name__)

    async def _deal(self, deal_id: UUID) -> dict[str, Any]:
        """The deal's terms as first opened (they never change), read once per deal."""
        known = self._deals.get(deal_id)
        if known is None:
            opened = await sync_to_thread(self.live.app.repository.get, deal_id, version=1)
            assert isinstance(opened, FlashDeal)
            if len(self._deals) >= MAX_DEALS_REMEMBERED:
                self._deals.clear()
            known = self._deals[deal_id] = {
                "id": str(opened.id),
                "session_id": str(opened.session_id),
                "merchant_id": str(opened.merchant_id),
                "sku": opened.sku,
                "warehouse_id": str(opened.warehouse_id),
                "price_fen": opened.price_fen,
                "settle_grace": opened.settle_grace,  # the claim's hold past the order's deadline
            }
        return known
