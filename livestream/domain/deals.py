"""A flash deal: a limited quantity of one SKU at a deal price, claimed by buyers during a live
session after a countdown (TikTok LIVE Flash Sale: countdown 10–300 s, 1–20 min, total and
per-buyer limits; research/livestream.md §1, §3).

One stream per deal keeps the hot stream short (research/eventsourcing.md §4.7), and a single
writer applies claims to the deal in memory (§4.3), so the claim path must cost O(log n), never a
scan of the claims: running totals (`SweptHolds`) for the deal and for each buyer, and a dict of
claim ids. An unpaid claim holds its units until its payment deadline and stops counting the
moment that passes, whether or not `expire` has recorded it (research/livestream.md §3.2:
`sold + reserved ≤ allocated`, reservations return to the pool).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, event

from commerce.domain.errors import Conflict, InvalidInput, InvalidTransition, NotFound, OutOfStock
from livestream.domain.lapsing import SweptHolds

COUNTDOWN_SECONDS = (10, 300)
DURATION_SECONDS = (60, 20 * 60)
PAYMENT_WINDOW_SECONDS = (30, 60 * 60)
DEFAULT_PAYMENT_WINDOW_SECONDS = 5 * 60
COUNTING_DOWN, OPEN, CLOSED = "counting_down", "open", "closed"
CLOSED_BY_HOST, TIME_UP = "host", "time_up"


@dataclass(frozen=True)
class Decision:
    """What an accepted claim will record; computed before any event, so a refusal leaves none."""

    buyer_id: UUID
    quantity: int
    pay_by: datetime  # the claim holds its units until then: the order's deadline plus grace
    units_left_after: int
    order_pay_by: datetime | None = None  # the buyer must pay by then (None: same as pay_by)

    @property
    def sells_out(self) -> bool:
        return self.units_left_after == 0


class FlashDeal(Aggregate):
    TOPIC = "livestream.FlashDeal"
    id: UUID  # declared so callers may pass deterministic ids (see commerce.domain.ids)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "livestream.FlashDeal.Created"

    @event("Opened", topic="livestream.FlashDeal.Opened")
    def __init__(
        self,
        session_id: UUID,
        merchant_id: UUID,
        sku: str,
        warehouse_id: UUID,
        price_fen: int,
        quantity: int,
        per_buyer_limit: int,
        announced_at: datetime,
        countdown_seconds: int,
        duration_seconds: int,
        payment_window_seconds: int = DEFAULT_PAYMENT_WINDOW_SECONDS,
        settle_grace_seconds: int = 0,
    ) -> None:
        self.session_id = session_id
        self.merchant_id = merchant_id
        self.sku = sku
        self.warehouse_id = warehouse_id
        self.price_fen = price_fen
        self.quantity = quantity
        self.per_buyer_limit = per_buyer_limit
        self.announced_at = announced_at
        self.opens_at = announced_at + timedelta(seconds=countdown_seconds)
        self.ends_at = self.opens_at + timedelta(seconds=duration_seconds)
        self.payment_window = timedelta(seconds=payment_window_seconds)
        # A claim keeps its units this long after the buyer's deadline, so a payment taken just
        # in time is recorded here before the units can go to someone else (the order is paid
        # in another context and the news travels through a process manager).
        self.settle_grace = timedelta(seconds=settle_grace_seconds)
        self.closed_at: datetime | None = None
        self.close_reason: str | None = None
        self.sold_out_at: list[datetime] = []  # units may come back, so it can sell out again
        self.units_paid = 0
        # claim id -> (quantity, payment deadline or None once paid): live and paid claims only
        self.claims = SweptHolds()
        self.by_buyer: dict[UUID, SweptHolds] = {}  # the same claims, per buyer
        self.claimants: dict[UUID, UUID] = {}  # every claim id ever recorded -> its buyer
        # claim id -> the request's fingerprint: a retried key with another request is refused
        self.requests: dict[UUID, str] = {}
        self.terms: dict[UUID, tuple[int, datetime]] = {}  # every claim -> (quantity, held until)
        self.refusals: dict[UUID, str] = {}  # claim id -> why its order was refused

    @classmethod
    def open(cls, *, id: UUID | None = None, **fields: object) -> FlashDeal:
        """Validate, then record `Opened`; takes the keyword arguments of `__init__`."""
        cls.validate(**fields)  # type: ignore[arg-type]
        return cls(id=uuid4() if id is None else id, **fields)

    @staticmethod
    def validate(
        *,
        sku: str,
        price_fen: int,
        quantity: int,
        per_buyer_limit: int,
        countdown_seconds: int,
        duration_seconds: int,
        payment_window_seconds: int = DEFAULT_PAYMENT_WINDOW_SECONDS,
        settle_grace_seconds: int = 0,
        **_: object,
    ) -> None:
        def within(name: str, value: int, low: int, high: int, unit: str) -> None:
            if not low <= value <= high:
                raise InvalidInput(f"must be from {low} to {high} {unit}", field=name)

        if not sku.strip():
            raise InvalidInput("must name the SKU on sale", field="sku")
        within("price_fen", price_fen, 1, 10**10, "fen")
        within("quantity", quantity, 1, 1_000_000, "units")
        within("per_buyer_limit", per_buyer_limit, 1, quantity, "units (at most the quantity)")
        within("countdown_seconds", countdown_seconds, *COUNTDOWN_SECONDS, "seconds")
        within("duration_seconds", duration_seconds, *DURATION_SECONDS, "seconds")
        within("payment_window_seconds", payment_window_seconds, *PAYMENT_WINDOW_SECONDS, "seconds")
        within("settle_grace_seconds", settle_grace_seconds, 0, 300, "seconds")

    # -- reading -------------------------------------------------------------------------------
    def phase(self, now: datetime) -> str:
        if self.closed_at is not None or now >= self.ends_at:
            return CLOSED
        return OPEN if now >= self.opens_at else COUNTING_DOWN

    def units_claimed(self, now: datetime) -> int:
        """Units in live (unpaid, not lapsed) claims plus units paid for."""
        return self.claims.live_total(now)

    def units_left(self, now: datetime) -> int:
        return self.quantity - self.units_claimed(now)

    def units_of(self, buyer_id: UUID, now: datetime) -> int:
        """What counts against the buyer's limit: their live and paid claims."""
        held = self.by_buyer.get(buyer_id)
        return held.live_total(now) if held is not None else 0

    def lapsed(self, now: datetime) -> list[UUID]:
        """Claims past their deadline whose expiry is not yet recorded (for a sweeper)."""
        return self.claims.lapsed(now)

    def is_paid(self, claim_id: UUID) -> bool:
        return claim_id in self.claims and self.claims[claim_id][1] is None

    # -- deciding ------------------------------------------------------------------------------
    def claim(
        self,
        claim_id: UUID,
        buyer_id: UUID,
        quantity: int,
        now: datetime,
        order: dict | None = None,
    ) -> Decision:
        """`order`: what the claim's order is placed from (livestream.engine.placement), kept
        in the fact itself so that the order follows from the committed claim alone."""
        if claim_id in self.claimants:
            raise Conflict("this claim id was already used", field="claim_id")
        decision = decide_claim(self, buyer_id, quantity, now)
        self._claimed(claim_id, buyer_id, quantity, decision.pay_by, order)
        if decision.sells_out:
            self._sold_out(now)
        return decision

    def pay(self, claim_id: UUID, now: datetime) -> None:
        """Payment arrived. After the deadline the units may be someone else's: refused."""
        if claim_id not in self.claimants:
            raise NotFound("no such claim")
        if self.is_paid(claim_id):
            return  # the payment provider's retry: already recorded
        if claim_id not in self.claims:
            raise InvalidTransition("the claim was released or expired before payment")
        if self.claims[claim_id][1] <= now:  # type: ignore[operator]
            raise InvalidTransition("the claim lapsed before payment")
        self._paid(claim_id)

    def release(self, claim_id: UUID, refused: str | None = None) -> None:
        """The buyer gave up before paying, or the claim's order was refused (`refused` says
        why, for the buyer who asks): the units return at once."""
        if self.is_paid(claim_id):
            raise InvalidTransition("a paid claim is refunded, not released")
        if claim_id in self.claims:
            self._released(claim_id, refused)

    def expire(self, claim_id: UUID, now: datetime) -> None:
        """Record a lapse that has already happened (a sweeper's job); it changes no count."""
        held = self.claims.get(claim_id)
        if held is not None and held[1] is not None and held[1] <= now:
            self._expired(claim_id)

    def close(self, now: datetime) -> None:
        """The host ends the deal early, or a timer records that its time is up."""
        if self.closed_at is not None:
            raise InvalidTransition("the deal is already closed")
        self._closed(now, TIME_UP if now >= self.ends_at else CLOSED_BY_HOST)

    # -- facts ---------------------------------------------------------------------------------
    @event("Claimed", topic="livestream.FlashDeal.Claimed")
    def _claimed(
        self,
        claim_id: UUID,
        buyer_id: UUID,
        quantity: int,
        pay_by: datetime,
        order: dict | None = None,
    ) -> None:
        self.claimants[claim_id] = buyer_id
        self.terms[claim_id] = (quantity, pay_by)
        if order is not None:
            self.requests[claim_id] = order["fingerprint"]
        self.claims[claim_id] = (quantity, pay_by)
        self.by_buyer.setdefault(buyer_id, SweptHolds())[claim_id] = (quantity, pay_by)

    @event("SoldOut", topic="livestream.FlashDeal.SoldOut")
    def _sold_out(self, at: datetime) -> None:
        self.sold_out_at.append(at)

    @event("ClaimPaid", topic="livestream.FlashDeal.ClaimPaid")
    def _paid(self, claim_id: UUID) -> None:
        quantity = self.claims[claim_id][0]
        self.claims[claim_id] = (quantity, None)
        self.by_buyer[self.claimants[claim_id]][claim_id] = (quantity, None)
        self.units_paid += quantity

    @event("ClaimReleased", topic="livestream.FlashDeal.ClaimReleased")
    def _released(self, claim_id: UUID, refused: str | None = None) -> None:
        if refused is not None:
            self.refusals[claim_id] = refused
        self._forget(claim_id)

    @event("ClaimExpired", topic="livestream.FlashDeal.ClaimExpired")
    def _expired(self, claim_id: UUID) -> None:
        self._forget(claim_id)

    @event("Closed", topic="livestream.FlashDeal.Closed")
    def _closed(self, at: datetime, reason: str) -> None:
        self.closed_at = at
        self.close_reason = reason

    def _forget(self, claim_id: UUID) -> None:
        del self.claims[claim_id]
        buyer_claims = self.by_buyer[self.claimants[claim_id]]
        del buyer_claims[claim_id]
        if not buyer_claims:
            del self.by_buyer[self.claimants[claim_id]]


def decide_claim(deal: FlashDeal, buyer_id: UUID, quantity: int, now: datetime) -> Decision:
    """Accept or refuse a claim without changing the deal. Cheapest refusals first; the deal's
    own total is read last and only by claims that passed every other check."""
    if quantity < 1:
        raise InvalidInput("must be at least 1", field="quantity")
    phase = deal.phase(now)
    if phase == COUNTING_DOWN:
        seconds = (deal.opens_at - now).total_seconds()
        raise InvalidTransition(f"the deal opens in {seconds:g} s", opens_at=deal.opens_at)
    if phase == CLOSED:
        raise InvalidTransition("the deal is closed")
    already = deal.units_of(buyer_id, now)
    if already + quantity > deal.per_buyer_limit:
        raise Conflict(
            f"at most {deal.per_buyer_limit} per buyer; {already} already claimed",
            field="quantity",
            per_buyer_limit=deal.per_buyer_limit,
            already_claimed=already,
        )
    left = deal.units_left(now)
    if quantity > left:
        raise OutOfStock(
            f"{deal.sku}: {quantity} requested, {left} left", sku=deal.sku, units_left=left
        )
    order_pay_by = now + deal.payment_window
    return Decision(
        buyer_id, quantity, order_pay_by + deal.settle_grace, left - quantity, order_pay_by
    )
