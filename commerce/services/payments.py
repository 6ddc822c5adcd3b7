"""What the order side does when a payment provider reports money moving."""

from __future__ import annotations

from uuid import UUID

from commerce import representations
from commerce.config import CommerceConfig
from commerce.domain import ids
from commerce.domain.accounts import PaymentReceipt
from commerce.domain.errors import InvalidInput, NotFound
from commerce.domain.orders import PLACED, Order
from commerce.platform.unit_of_work import UnitOfWork
from commerce.services.fulfilment import can_draw, confirm_holds


def record_payment(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    provider: str,
    provider_event_id: str,
    order_id: UUID,
    payment_ref: str,
    amount_fen: int,
    currency: str,
) -> dict:
    """Apply a verified payment notification exactly once.

    Outcomes: "paid" (the order is now paid), "duplicate" (this notification was applied
    before), "already_paid" (another notification of the same payment got there first),
    "refund_due" (the order had expired, was cancelled, was paid by another payment, or was a
    flash-deal order whose deal allocation no longer holds its units: the
    money goes back, which the payment process manager does on seeing this receipt). A payment
    whose amount or currency does not match the order is refused and nothing is recorded.
    """
    receipt_id = ids.receipt_id(provider, provider_event_id)
    existing = uow.get(receipt_id, PaymentReceipt)
    if existing is not None:
        return {"outcome": "duplicate", "order_id": str(existing.order_id)}
    order = uow.get(order_id, Order)
    if order is None:
        raise NotFound("no such order", field="out_trade_no")
    if currency != "CNY" or amount_fen != order.total_fen:
        raise InvalidInput(
            f"paid {amount_fen} {currency} but the order totals {order.total_fen} CNY fen",
            field="amount",
        )
    now = cfg.clock()
    if order.payment_ref == payment_ref:
        outcome = "already_paid"
    elif order.status(now) == PLACED and can_draw(uow, order, now):
        order.mark_paid(payment_ref, amount_fen, now)
        confirm_holds(uow, order, now)
        outcome = "paid"
    else:
        outcome = "refund_due"  # expired, cancelled, or paid by another payment
    uow.add(
        PaymentReceipt(
            id=receipt_id,
            provider=provider,
            provider_event_id=provider_event_id,
            order_id=order.id,
            payment_ref=payment_ref,
            amount_fen=amount_fen,
            outcome=outcome,
        )
    )
    return {"outcome": outcome, "order": representations.order_view(order, now)}
