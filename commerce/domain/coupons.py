"""Live coupons as an order uses them: how many are taken, and by whom.

A host issues a coupon in a live session (livestream.domain.sessions.Coupon: an amount or a
percent off, a quantity, a per-buyer limit). The session is the Livestream application's; an
order is Commerce's. So that an order and the use of its coupon commit together, each coupon
used at checkout gets a `CouponUses` aggregate here, opened with the coupon's terms the first
time a buyer names it.

Uses behave like stock reservations: an unpaid order's use lapses with its reservation (an
expired order gives the coupon back at once, sweeper or not), payment confirms it, and a
cancelled order releases it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from commerce.domain.errors import Conflict, InvalidTransition
from commerce.domain.holds import Holds

# A coupon issued in a session may be used while the session is live and for this long after
# it ends: viewers often check out after the stream, and an hour's window is usual.
REDEEMABLE_AFTER_END = timedelta(hours=24)


@dataclass(frozen=True)
class CouponTerms:
    """A live coupon as checkout sees it; `usable_until` is None while its session is live."""

    coupon_id: UUID
    session_id: UUID
    merchant_id: UUID
    amount_fen: int | None
    percent_off: int | None
    quantity: int
    per_buyer_limit: int
    usable_until: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.usable_until is None or now < self.usable_until


class CouponUses(Aggregate):
    TOPIC = "commerce.CouponUses"
    id: UUID  # declared so callers may pass deterministic ids (see commerce.domain.ids)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.CouponUses.Created"

    @event("Opened", topic="commerce.CouponUses.Opened")
    def __init__(
        self, coupon_id: UUID, session_id: UUID, quantity: int, per_buyer_limit: int
    ) -> None:
        self.coupon_id = coupon_id
        self.session_id = session_id
        self.quantity = quantity
        self.per_buyer_limit = per_buyer_limit
        self.uses = Holds()  # order id -> (1, deadline or None once paid)
        self.by_buyer: dict[UUID, Holds] = {}
        self.buyer_of: dict[UUID, UUID] = {}  # order id -> buyer id

    def left(self, now: datetime) -> int:
        return self.quantity - self.uses.live_total(now)

    def take(self, order_id: UUID, buyer_id: UUID, until: datetime, now: datetime) -> None:
        """The order `order_id` uses the coupon until `until`, unless it is paid by then."""
        if self.left(now) <= 0:
            raise Conflict("this coupon is all used up", field="coupon", reason="used_up")
        mine = self.by_buyer.get(buyer_id)
        if mine is not None and mine.live_total(now) >= self.per_buyer_limit:
            times = "once" if self.per_buyer_limit == 1 else f"{self.per_buyer_limit} times"
            raise Conflict(
                f"a buyer may use this coupon {times}", field="coupon", reason="per_buyer_limit"
            )
        self._taken(order_id, buyer_id, until)

    def confirm(self, order_id: UUID, now: datetime) -> None:
        held = self.uses.get(order_id)
        if held and held[1] is not None and held[1] <= now:
            raise InvalidTransition("the coupon's hold lapsed before payment")
        if held:
            self._confirmed(order_id)

    def release(self, order_id: UUID) -> None:
        if order_id in self.uses:
            self._released(order_id)

    @event("Taken", topic="commerce.CouponUses.Taken")
    def _taken(self, order_id: UUID, buyer_id: UUID, until: datetime) -> None:
        self.uses[order_id] = (1, until)
        self.by_buyer.setdefault(buyer_id, Holds())[order_id] = (1, until)
        self.buyer_of[order_id] = buyer_id

    @event("Confirmed", topic="commerce.CouponUses.Confirmed")
    def _confirmed(self, order_id: UUID) -> None:
        self.uses[order_id] = (1, None)
        self.by_buyer[self.buyer_of[order_id]][order_id] = (1, None)

    @event("Released", topic="commerce.CouponUses.Released")
    def _released(self, order_id: UUID) -> None:
        del self.uses[order_id]
        del self.by_buyer[self.buyer_of.pop(order_id)][order_id]
