"""After placement: payment, cancellation, expiry, customs, shipment, delivery and refunds,
with the order's stock and CBEC quota holds kept in step."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from commerce import representations
from commerce.config import CommerceConfig
from commerce.domain import ids
from commerce.domain.coupons import CouponUses
from commerce.domain.errors import InvalidInput, NotFound
from commerce.domain.inventory import BuyerAnnualQuota, Stock
from commerce.domain.orders import Order
from commerce.platform.unit_of_work import UnitOfWork
from commerce.services.access import ADMIN, MERCHANT, Principal, require_order_access


def load_order(uow: UnitOfWork, order_id: UUID, principal: Principal) -> Order:
    order = uow.get(order_id, Order)
    if order is None:
        raise NotFound("no such order", field="order_id")
    require_order_access(principal, order.merchant_id, order.buyer_id)
    return order


def _holds(uow: UnitOfWork, order: Order) -> tuple[list[Stock], BuyerAnnualQuota | None]:
    stocks = [s for s in (uow.get(sid, Stock) for sid in order.stock_ids) if s is not None]
    return stocks, uow.get(order.quota_id, BuyerAnnualQuota)


def _require(principal: Principal, *kinds: str) -> None:
    if principal.kind not in kinds:
        raise NotFound("no such order", field="order_id")


def mark_paid(
    uow: UnitOfWork, cfg: CommerceConfig, principal: Principal, order_id: UUID, ref: str, fen: int
) -> dict:
    """Idempotent by payment reference: the same payment reported twice is recorded once."""
    _require(principal, ADMIN)
    order, now = load_order(uow, order_id, principal), cfg.clock()
    if order.mark_paid(ref, fen, now):
        confirm_holds(uow, order, now)
    return representations.order_view(order, now)


def confirm_holds(uow: UnitOfWork, order: Order, now: datetime) -> None:
    """A paid order's stock and quota holds no longer lapse. A flash-deal order's units are
    drawn from the deal's hold now: until payment they were the deal's to give."""
    stocks, quota = _holds(uow, order)
    for stock in stocks:
        if order.drawn_from is None:
            stock.confirm(order.id, now)
        else:
            stock.draw(order.drawn_from, order.id, order.lines[0]["quantity"], now)
    if quota:
        quota.confirm(order.id, now)
    if uses := _coupon_uses(uow, order):
        uses.confirm(order.id, now)


def can_draw(uow: UnitOfWork, order: Order, now: datetime) -> bool:
    """Whether a flash-deal order's units are still in its deal's hold; if not (the deal's
    allocation lapsed, which a timely claim never sees), its payment goes back."""
    if order.drawn_from is None:
        return True
    stocks, _ = _holds(uow, order)
    wanted = order.lines[0]["quantity"]
    for stock in stocks:
        held = stock.reservations.get(order.drawn_from)
        drawn = order.id in stock.reservations
        if not drawn and (
            held is None or held[0] < wanted or order.drawn_from in stock.lapsed(now)
        ):
            return False
    return True


def cancel_order(
    uow: UnitOfWork, cfg: CommerceConfig, principal: Principal, order_id: UUID, reason: str
) -> dict:
    order, now = load_order(uow, order_id, principal), cfg.clock()
    order.cancel(reason.strip()[:200] or "no reason given", principal.name, now)
    _release(uow, order)
    return representations.order_view(order, now)


def expire_order(uow: UnitOfWork, cfg: CommerceConfig, order_id: UUID) -> bool:
    """Records an expiry that has already happened in effect; run by the sweeper."""
    order, now = uow.get(order_id, Order), cfg.clock()
    if order is None or not order.expire(now):
        return False
    stocks, quota = _holds(uow, order)
    for stock in stocks:
        stock.expire(order.id, now)
    if quota:
        quota.release(order.id)
    if uses := _coupon_uses(uow, order):
        uses.release(order.id)
    return True


def _release(uow: UnitOfWork, order: Order) -> None:
    stocks, quota = _holds(uow, order)
    for stock in stocks:
        stock.release(order.id)
    if quota:
        quota.release(order.id)
    if uses := _coupon_uses(uow, order):
        uses.release(order.id)


def _coupon_uses(uow: UnitOfWork, order: Order) -> CouponUses | None:
    coupon = getattr(order, "coupon_id", None)  # orders placed before coupons have none
    return uow.get(ids.coupon_uses_id(coupon), CouponUses) if coupon else None


def declare_customs(
    uow: UnitOfWork, cfg: CommerceConfig, principal: Principal, order_id: UUID, ref: str
) -> dict:
    _require(principal, MERCHANT, ADMIN)
    order, now = load_order(uow, order_id, principal), cfg.clock()
    if not 0 < len(ref.strip()) <= 64:
        raise InvalidInput("must be 1 to 64 characters", field="declaration_ref")
    order.declare_customs(ref.strip(), now)
    return representations.order_view(order, now)


def clear_customs(
    uow: UnitOfWork, cfg: CommerceConfig, principal: Principal, order_id: UUID
) -> dict:
    _require(principal, ADMIN)
    order, now = load_order(uow, order_id, principal), cfg.clock()
    order.clear_customs(now)
    return representations.order_view(order, now)


def reject_customs(
    uow: UnitOfWork, cfg: CommerceConfig, principal: Principal, order_id: UUID, reason: str
) -> dict:
    _require(principal, ADMIN)
    order, now = load_order(uow, order_id, principal), cfg.clock()
    order.reject_customs(reason.strip()[:500], now)
    return representations.order_view(order, now)


def ship_order(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    principal: Principal,
    order_id: UUID,
    carrier: str,
    tracking_no: str,
) -> dict:
    _require(principal, MERCHANT, ADMIN)
    order, now = load_order(uow, order_id, principal), cfg.clock()
    order.ship(carrier.strip()[:64], tracking_no.strip()[:64], now)
    stocks, _ = _holds(uow, order)
    for stock in stocks:
        stock.commit(order.id, now)
    return representations.order_view(order, now)


def deliver_order(
    uow: UnitOfWork, cfg: CommerceConfig, principal: Principal, order_id: UUID
) -> dict:
    _require(principal, MERCHANT, ADMIN)
    order, now = load_order(uow, order_id, principal), cfg.clock()
    order.deliver(now)
    return representations.order_view(order, now)


def refund_order(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    principal: Principal,
    order_id: UUID,
    refund_ref: str,
    amount_fen: int,
    reason: str,
) -> dict:
    """Idempotent by refund reference. A full refund before shipment returns the stock."""
    _require(principal, MERCHANT, ADMIN)
    order, now = load_order(uow, order_id, principal), cfg.clock()
    if not 0 < len(refund_ref.strip()) <= 64:
        raise InvalidInput("must be 1 to 64 characters", field="refund_ref")
    if order.refund(refund_ref.strip(), amount_fen, reason.strip()[:200], now):
        _release(uow, order)
    return representations.order_view(order, now)
