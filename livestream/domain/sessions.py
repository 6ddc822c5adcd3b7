"""A live shopping session: scheduled, live, then ended (or cancelled before it starts).

The host is a merchant; a KOL creator may present for them (the cross-border model: the brand
pays, the creator sells). During the session the host pins products, issues coupons and names
moderators. Pins keep both ends of their time span so a replay can jump to the moment a product
was on screen (Taobao's 看点, research/livestream.md §1). Flash deals are their own aggregates
(livestream.domain.deals) because they are hot; the session only names what happened on stage.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from commerce.domain.errors import Conflict, InvalidInput, InvalidTransition, NotFound

SCHEDULED, LIVE, ENDED, CANCELLED = "scheduled", "live", "ended", "cancelled"
MAX_PINNED = 3  # products featured at once (Bambuser highlights up to 3)


@dataclass
class PinSpan:
    """A product on screen from `pinned_at` until `unpinned_at` (None while still pinned)."""

    product_id: UUID
    pinned_at: datetime
    unpinned_at: datetime | None = None


@dataclass(frozen=True)
class Coupon:
    """An in-stream coupon: a fixed amount off (fen) or a percentage off, never both."""

    coupon_id: UUID
    amount_fen: int | None
    percent_off: int | None
    quantity: int
    per_buyer_limit: int
    issued_at: datetime


class LiveSession(Aggregate):
    TOPIC = "livestream.LiveSession"
    id: UUID  # declared so callers may pass deterministic ids (see commerce.domain.ids)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "livestream.LiveSession.Created"

    @event("Scheduled", topic="livestream.LiveSession.Scheduled")
    def __init__(
        self,
        host_merchant_id: UUID,
        creator_id: UUID | None,
        title: str,
        starts_at: datetime,
        scheduled_at: datetime,
    ) -> None:
        self.host_merchant_id = host_merchant_id
        self.creator_id = creator_id
        self.title = title
        self.starts_at = starts_at
        self.scheduled_at = scheduled_at
        self.status = SCHEDULED
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None  # when it ended or was cancelled
        self.pins: list[PinSpan] = []  # every pin, in order: the replay's chapter list
        self.pinned: dict[UUID, int] = {}  # product id -> index of its open span in pins
        self.coupons: dict[UUID, Coupon] = {}
        self.moderator_ids: set[UUID] = set()
        self.peak_viewers = 0  # the highest audience sample of any one process
        self.last_at = scheduled_at  # time of the latest fact: later commands may not precede it

    @classmethod
    def schedule(
        cls,
        *,
        host_merchant_id: UUID,
        title: str,
        starts_at: datetime,
        now: datetime,
        creator_id: UUID | None = None,
        merchant_creator_ids: Collection[UUID] = (),
        id: UUID | None = None,
    ) -> LiveSession:
        """Validate, then record `Scheduled`. `merchant_creator_ids` are the creators the
        merchant works with; any other creator looks missing, so ids do not leak."""
        if not title.strip() or len(title) > 200:
            raise InvalidInput("must be 1 to 200 characters", field="title")
        if starts_at < now:
            raise InvalidInput("must not be in the past", field="starts_at")
        if creator_id is not None and creator_id not in merchant_creator_ids:
            raise NotFound("no such creator working with this merchant", field="creator_id")
        fields = {
            "host_merchant_id": host_merchant_id,
            "creator_id": creator_id,
            "title": title.strip(),
            "starts_at": starts_at,
            "scheduled_at": now,
        }
        return cls(id=uuid4() if id is None else id, **fields)

    # -- reading -------------------------------------------------------------------------------
    def replay_marks(self) -> list[tuple[UUID, float, float | None]]:
        """(product id, seconds from the start it was pinned, seconds it was unpinned or None)."""
        if self.started_at is None:
            return []
        start = self.started_at

        def offset(moment: datetime | None) -> float | None:
            return None if moment is None else (moment - start).total_seconds()

        return [
            (p.product_id, (p.pinned_at - start).total_seconds(), offset(p.unpinned_at))
            for p in self.pins
        ]

    # -- deciding ------------------------------------------------------------------------------
    def start(self, now: datetime) -> None:
        """Hosts may go live a little early or late; only the status decides."""
        if self.status != SCHEDULED:
            raise InvalidTransition(f"a {self.status} session cannot start")
        self._require_in_order(now)
        self._started(now)

    def pin(self, product_id: UUID, now: datetime) -> None:
        self._require_live(now)
        if product_id in self.pinned:
            raise InvalidTransition("the product is already pinned")
        if len(self.pinned) >= MAX_PINNED:
            raise Conflict(f"at most {MAX_PINNED} products pinned at once; unpin one first")
        self._pinned(product_id, now)

    def unpin(self, product_id: UUID, now: datetime) -> None:
        self._require_live(now)
        if product_id not in self.pinned:
            raise InvalidTransition("the product is not pinned")
        self._unpinned(product_id, now)

    def issue_coupon(
        self,
        coupon_id: UUID,
        now: datetime,
        *,
        quantity: int,
        per_buyer_limit: int,
        amount_fen: int | None = None,
        percent_off: int | None = None,
    ) -> None:
        self._require_live(now)
        if coupon_id in self.coupons:
            raise Conflict("this coupon id was already used", field="coupon_id")
        if (amount_fen is None) == (percent_off is None):
            raise InvalidInput("give either amount_fen or percent_off", field="amount_fen")
        if amount_fen is not None and not 1 <= amount_fen <= 10**8:
            raise InvalidInput("must be from 1 to 100000000 fen", field="amount_fen")
        if percent_off is not None and not 1 <= percent_off <= 99:
            raise InvalidInput("must be from 1 to 99", field="percent_off")
        if not 1 <= quantity <= 1_000_000:
            raise InvalidInput("must be from 1 to 1000000", field="quantity")
        if not 1 <= per_buyer_limit <= quantity:
            raise InvalidInput("must be from 1 to the quantity", field="per_buyer_limit")
        self._coupon_issued(coupon_id, amount_fen, percent_off, quantity, per_buyer_limit, now)

    def add_moderator(self, user_id: UUID, now: datetime) -> None:
        """Moderators may be named ahead of the show or during it; naming one twice is a no-op."""
        self._require_not_over(now)
        if user_id not in self.moderator_ids:
            self._moderator_added(user_id, now)

    def remove_moderator(self, user_id: UUID, now: datetime) -> None:
        self._require_not_over(now)
        if user_id in self.moderator_ids:
            self._moderator_removed(user_id, now)

    def count_audience(
        self, viewers: int, peak_viewers: int, likes: int, now: datetime, instance: str = ""
    ) -> None:
        """A sample of the room's audience (viewer counts are coalesced in the room hub, never
        one event per viewer). `instance` names the API process that counted its own sockets:
        across processes, the figures of the latest sample of each instance add up."""
        if self.status != LIVE:
            raise InvalidTransition(f"the session is {self.status}, not live")
        if min(viewers, peak_viewers, likes) < 0 or peak_viewers < viewers:
            raise InvalidInput(
                "counts must be non-negative, peak at least current", field="viewers"
            )
        self._audience_counted(viewers, peak_viewers, likes, now, instance)

    def end(self, now: datetime) -> None:
        self._require_live(now)
        self._ended(now)

    def cancel(self, now: datetime) -> None:
        """A session that never started is cancelled, not ended: it has no replay."""
        if self.status != SCHEDULED:
            raise InvalidTransition(f"a {self.status} session cannot be cancelled")
        self._require_in_order(now)
        self._cancelled(now)

    def _require_live(self, now: datetime) -> None:
        if self.status != LIVE:
            raise InvalidTransition(f"the session is {self.status}, not live")
        self._require_in_order(now)

    def _require_not_over(self, now: datetime) -> None:
        if self.status in (ENDED, CANCELLED):
            raise InvalidTransition(f"the session is {self.status}")
        self._require_in_order(now)

    def _require_in_order(self, now: datetime) -> None:
        """Spans and replay offsets must not run backwards."""
        if now < self.last_at:
            raise InvalidInput(f"is before the latest recorded fact ({self.last_at})", field="now")

    # -- facts ---------------------------------------------------------------------------------
    @event("Started", topic="livestream.LiveSession.Started")
    def _started(self, at: datetime) -> None:
        self.last_at = at
        self.status = LIVE
        self.started_at = at

    @event("ProductPinned", topic="livestream.LiveSession.ProductPinned")
    def _pinned(self, product_id: UUID, at: datetime) -> None:
        self.last_at = at
        self.pinned[product_id] = len(self.pins)
        self.pins.append(PinSpan(product_id, at))

    @event("ProductUnpinned", topic="livestream.LiveSession.ProductUnpinned")
    def _unpinned(self, product_id: UUID, at: datetime) -> None:
        self.last_at = at
        self.pins[self.pinned.pop(product_id)].unpinned_at = at

    @event("CouponIssued", topic="livestream.LiveSession.CouponIssued")
    def _coupon_issued(
        self,
        coupon_id: UUID,
        amount_fen: int | None,
        percent_off: int | None,
        quantity: int,
        per_buyer_limit: int,
        at: datetime,
    ) -> None:
        self.last_at = at
        self.coupons[coupon_id] = Coupon(
            coupon_id, amount_fen, percent_off, quantity, per_buyer_limit, at
        )

    @event("ModeratorAdded", topic="livestream.LiveSession.ModeratorAdded")
    def _moderator_added(self, user_id: UUID, at: datetime) -> None:
        self.last_at = at
        self.moderator_ids.add(user_id)

    @event("ModeratorRemoved", topic="livestream.LiveSession.ModeratorRemoved")
    def _moderator_removed(self, user_id: UUID, at: datetime) -> None:
        self.last_at = at
        self.moderator_ids.discard(user_id)

    @event("AudienceCounted", topic="livestream.LiveSession.AudienceCounted")
    def _audience_counted(
        self, viewers: int, peak_viewers: int, likes: int, at: datetime, instance: str
    ) -> None:
        """Not a stage fact: it does not move `last_at`, as samples from other processes may
        carry slightly earlier clocks."""
        self.peak_viewers = max(self.peak_viewers, peak_viewers)

    @event("Ended", topic="livestream.LiveSession.Ended")
    def _ended(self, at: datetime) -> None:
        """Whatever is still pinned comes off screen when the stream ends."""
        self.last_at = at
        for index in self.pinned.values():
            self.pins[index].unpinned_at = at
        self.pinned.clear()
        self.status = ENDED
        self.finished_at = at

    @event("Cancelled", topic="livestream.LiveSession.Cancelled")
    def _cancelled(self, at: datetime) -> None:
        self.last_at = at
        self.status = CANCELLED
        self.finished_at = at
