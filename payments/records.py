"""Payments as event streams: one stream per payment attempt, keyed by its out_trade_no.

The order's own receipt (commerce) decides whether an order is paid; this stream keeps the
payment side of the story — what was asked of which gateway, what it answered, what was closed
or refunded and why — so reconciliation and support can read it without the gateway.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from commerce.platform.replay import EventSourcedApplication


def payment_id(out_trade_no: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"redcart:payment:{out_trade_no}")


class Payment(Aggregate):
    TOPIC = "payments.Payment"
    id: UUID

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "payments.Payment.Created"

    @event("Requested", topic="payments.Payment.Requested")
    def __init__(
        self,
        order_id: UUID,
        provider: str,
        method: str,
        amount_fen: int,
        currency: str,
        out_trade_no: str,
        next_action: dict,
        provider_ref: str | None = None,
    ) -> None:
        self.order_id = order_id
        self.provider = provider
        self.method = method
        self.amount_fen = amount_fen
        self.currency = currency
        self.out_trade_no = out_trade_no
        self.next_action = next_action
        self.provider_ref = provider_ref
        self.status = "pending"
        self.refunds: dict[str, int] = {}
        self.flags: list[str] = []

    @event("Succeeded", topic="payments.Payment.Succeeded")
    def succeed(self, provider_event_id: str, outcome: str) -> None:
        self.status = "succeeded"

    @event("Flagged", topic="payments.Payment.Flagged")
    def flag(self, reason: str, provider_event_id: str) -> None:
        self.flags.append(reason)

    @event("Closed", topic="payments.Payment.Closed")
    def close(self, reason: str) -> None:
        self.status = "closed"

    @event("Refunded", topic="payments.Payment.Refunded")
    def refund(self, out_refund_no: str, amount_fen: int, reason: str) -> None:
        self.refunds[out_refund_no] = amount_fen
        if sum(self.refunds.values()) >= self.amount_fen:
            self.status = "refunded"


def gateway_ref(payment: Payment) -> str:
    """How the provider names this payment in query/close/refund calls: our out_trade_no for
    Alipay and WeChat Pay, the PaymentIntent id for Stripe (ours travels in its metadata)."""
    if payment.provider == "stripe" and payment.provider_ref:
        return payment.provider_ref
    return payment.out_trade_no


class Payments(EventSourcedApplication):
    name = "Payments"
