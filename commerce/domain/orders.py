"""A cross-border order: its lifecycle from placement to delivery, cancellation, expiry or refund.

The order is one stream; stock and the buyer's annual quota are others, changed in the same
transaction by the use cases in commerce.services. Status is derived at read time for expiry:
an unpaid order past its reservation deadline *is* expired whether or not the sweeper has
recorded it yet.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from commerce.domain.errors import Conflict, InvalidInput, InvalidTransition

PLACED, PAID, EXPIRED, CANCELLED = "placed", "paid", "expired", "cancelled"
CUSTOMS_DECLARED, CUSTOMS_CLEARED, CUSTOMS_REJECTED = (
    "customs_declared",
    "customs_cleared",
    "customs_rejected",
)
SHIPPED, DELIVERED, REFUNDED = "shipped", "delivered", "refunded"
REFUNDABLE = {PAID, CUSTOMS_DECLARED, CUSTOMS_CLEARED, CUSTOMS_REJECTED, SHIPPED, DELIVERED}
BEFORE_SHIPMENT = {PAID, CUSTOMS_DECLARED, CUSTOMS_CLEARED, CUSTOMS_REJECTED}


class Order(Aggregate):
    TOPIC = "commerce.Order"
    id: UUID  # declared so callers may pass deterministic ids (see commerce.domain.ids)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.Order.Created"

    @event("Placed", topic="commerce.Order.Placed")
    def __init__(
        self,
        merchant_id: UUID,
        buyer_id: UUID,
        lines: list[dict],
        quote: dict,
        identity: dict,
        address: dict,
        fx_rates: dict,
        placed_at: datetime,
        expires_at: datetime,
        stock_ids: list[UUID],
        quota_id: UUID,
        attribution: dict | None,
        fingerprint: str | None = None,
        payment_provider: str | None = None,
        drawn_from: UUID | None = None,
        coupon_id: UUID | None = None,
    ) -> None:
        self.merchant_id = merchant_id
        self.buyer_id = buyer_id
        self.lines = lines
        self.quote = quote
        self.identity = identity
        self.address = address
        self.fx_rates = fx_rates
        self.placed_at = placed_at
        self.expires_at = expires_at
        self.stock_ids = stock_ids
        self.quota_id = quota_id
        self.attribution = attribution
        self.fingerprint = fingerprint  # of the request that placed it, for Idempotency-Key replays
        self.payment_provider = payment_provider  # chosen at checkout: payment requested at once
        # a flash-deal order's units sit in the deal's stock hold until it is paid for
        self.drawn_from = drawn_from
        self.coupon_id = coupon_id  # a live coupon's id: its use is held like the stock
        self.recorded_status = PLACED
        self.payment_ref: str | None = None
        self.paid_at: datetime | None = None
        self.customs: dict = {}
        self.shipment: dict = {}
        self.refunds: dict[str, int] = {}
        self.history: list[tuple[str, datetime]] = [(PLACED, placed_at)]

    @property
    def total_fen(self) -> int:
        return int(self.quote["total_fen"])

    @property
    def refunded_fen(self) -> int:
        return sum(self.refunds.values())

    def status(self, now: datetime) -> str:
        if self.recorded_status == PLACED and now >= self.expires_at:
            return EXPIRED
        return self.recorded_status

    def _require(self, now: datetime, *allowed: str, action: str) -> None:
        current = self.status(now)
        if current not in allowed:
            raise InvalidTransition(
                f"cannot {action} an order that is {current}", status=current, action=action
            )

    # -- payment -------------------------------------------------------------------------------
    def mark_paid(self, payment_ref: str, amount_fen: int, now: datetime) -> bool:
        """Idempotent: the same payment reported again changes nothing and returns False."""
        if not payment_ref.strip():
            raise InvalidInput("must not be empty", field="payment_ref")
        if self.payment_ref == payment_ref:
            return False
        if self.payment_ref is not None:
            raise Conflict(f"order is already paid by payment {self.payment_ref}")
        self._require(now, PLACED, action="mark paid")
        if amount_fen != self.total_fen:
            raise InvalidInput(
                f"paid {amount_fen} fen but the order totals {self.total_fen} fen",
                field="amount_fen",
            )
        self._paid(payment_ref, amount_fen, now)
        return True

    @event("Paid", topic="commerce.Order.Paid")
    def _paid(self, payment_ref: str, amount_fen: int, at: datetime) -> None:
        self.payment_ref = payment_ref
        self.paid_at = at
        self._moved(PAID, at)

    # -- ending before payment -----------------------------------------------------------------
    def cancel(self, reason: str, by: str, now: datetime) -> None:
        self._require(now, PLACED, action="cancel")
        self._cancelled(reason, by, now)

    @event("Cancelled", topic="commerce.Order.Cancelled")
    def _cancelled(self, reason: str, by: str, at: datetime) -> None:
        self._moved(CANCELLED, at)

    def expire(self, now: datetime) -> bool:
        if self.recorded_status != PLACED or now < self.expires_at:
            return False
        self._expired(now)
        return True

    @event("Expired", topic="commerce.Order.Expired")
    def _expired(self, at: datetime) -> None:
        self._moved(EXPIRED, at)

    # -- customs and fulfilment ----------------------------------------------------------------
    def declare_customs(self, declaration_ref: str, now: datetime) -> None:
        self._require(now, PAID, CUSTOMS_REJECTED, action="declare to customs")
        self._customs_declared(declaration_ref, now)

    @event("CustomsDeclared", topic="commerce.Order.CustomsDeclared")
    def _customs_declared(self, declaration_ref: str, at: datetime) -> None:
        self.customs = {"declaration_ref": declaration_ref, "declared_at": at.isoformat()}
        self._moved(CUSTOMS_DECLARED, at)

    def clear_customs(self, now: datetime) -> None:
        self._require(now, CUSTOMS_DECLARED, action="clear customs for")
        self._customs_cleared(now)

    @event("CustomsCleared", topic="commerce.Order.CustomsCleared")
    def _customs_cleared(self, at: datetime) -> None:
        self.customs = {**self.customs, "cleared_at": at.isoformat()}
        self._moved(CUSTOMS_CLEARED, at)

    def reject_customs(self, reason: str, now: datetime) -> None:
        self._require(now, CUSTOMS_DECLARED, action="reject customs for")
        if not reason.strip():
            raise InvalidInput("say why customs rejected the order", field="reason")
        self._customs_rejected(reason, now)

    @event("CustomsRejected", topic="commerce.Order.CustomsRejected")
    def _customs_rejected(self, reason: str, at: datetime) -> None:
        self.customs = {**self.customs, "rejected_at": at.isoformat(), "reason": reason}
        self._moved(CUSTOMS_REJECTED, at)

    def ship(self, carrier: str, tracking_no: str, now: datetime) -> None:
        self._require(now, CUSTOMS_CLEARED, action="ship")
        if not carrier.strip() or not tracking_no.strip():
            raise InvalidInput("carrier and tracking number are required", field="tracking_no")
        self._shipped(carrier, tracking_no, now)

    @event("Shipped", topic="commerce.Order.Shipped")
    def _shipped(self, carrier: str, tracking_no: str, at: datetime) -> None:
        self.shipment = {"carrier": carrier, "tracking_no": tracking_no, "at": at.isoformat()}
        self._moved(SHIPPED, at)

    def deliver(self, now: datetime) -> None:
        self._require(now, SHIPPED, action="deliver")
        self._delivered(now)

    @event("Delivered", topic="commerce.Order.Delivered")
    def _delivered(self, at: datetime) -> None:
        self._moved(DELIVERED, at)

    # -- refunds -------------------------------------------------------------------------------
    def refund(self, refund_ref: str, amount_fen: int, reason: str, now: datetime) -> bool:
        """Idempotent by refund_ref. True when stock should return: full refund, unshipped."""
        if refund_ref in self.refunds:
            return False
        self._require(now, *REFUNDABLE, action="refund")
        left = self.total_fen - self.refunded_fen
        if not 0 < amount_fen <= left:
            raise InvalidInput(f"must be from 1 to {left} fen", field="amount_fen")
        was_shipped = self.recorded_status in {SHIPPED, DELIVERED}
        self._refunded(refund_ref, amount_fen, reason, now, amount_fen == left)
        return amount_fen == left and not was_shipped

    @event("Refunded", topic="commerce.Order.Refunded")
    def _refunded(
        self, refund_ref: str, amount_fen: int, reason: str, at: datetime, full: bool
    ) -> None:
        self.refunds[refund_ref] = amount_fen
        if full:
            self._moved(REFUNDED, at)

    def _moved(self, status: str, at: datetime) -> None:
        self.recorded_status = status
        self.history.append((status, at))
