"""Flash-deal commands, run by the Livestream group-commit writer as `fn(uow, clock, ...)`.

Only the process that owns a deal runs them (livestream.engine.ownership), so the deal stays
cached in that writer and thousands of claims a second are decided in memory and committed in
batches (research/eventsourcing.md §4.3). Every answer is plain JSON, because a claim that
reached another process is forwarded here over HTTP and its answer travels back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from commerce.domain.errors import (
    Conflict,
    IdempotencyKeyReused,
    InvalidTransition,
    NotFound,
    OutOfStock,
)
from commerce.platform.unit_of_work import UnitOfWork
from livestream.domain.deals import OPEN, FlashDeal

Clock = Callable[[], datetime]


def deal_view(deal: FlashDeal, now: datetime) -> dict[str, Any]:
    """What anyone may see of a deal: the room snapshot and the HTTP answers use it."""
    return {
        "id": str(deal.id),
        "session_id": str(deal.session_id),
        "merchant_id": str(deal.merchant_id),
        "sku": deal.sku,
        "warehouse_id": str(deal.warehouse_id),
        "price_fen": deal.price_fen,
        "quantity": deal.quantity,
        "per_buyer_limit": deal.per_buyer_limit,
        "phase": deal.phase(now),
        "opens_at": deal.opens_at.isoformat(),
        "ends_at": deal.ends_at.isoformat(),
        "units_left": max(0, deal.units_left(now)),
        "units_paid": deal.units_paid,
        "payment_window_seconds": int(deal.payment_window.total_seconds()),
        "closed_at": None if deal.closed_at is None else deal.closed_at.isoformat(),
        "close_reason": deal.close_reason,
    }


def next_release(deal: FlashDeal, now: datetime) -> datetime | None:
    """The earliest moment a unit held by an unpaid claim could come back to the deal."""
    return next((until for until, _ in deal.claims._deadlines if until > now), None)


def _deal(uow: UnitOfWork, deal_id: UUID) -> FlashDeal:
    deal = uow.get(deal_id, FlashDeal)
    if deal is None:
        raise NotFound("no such flash deal", field="deal_id")
    return deal


def open_deal(uow: UnitOfWork, clock: Clock, deal_id: UUID, fields: dict) -> dict[str, Any]:
    """Idempotent by deal id: a retried open answers the deal as it stands."""
    existing = uow.get(deal_id, FlashDeal)
    if existing is None:
        existing = uow.add(FlashDeal.open(id=deal_id, announced_at=clock(), **fields))
    return deal_view(existing, clock())


def claim(
    uow: UnitOfWork,
    clock: Clock,
    deal_id: UUID,
    claim_id: UUID,
    buyer_id: UUID,
    quantity: int,
    order: dict | None = None,
) -> dict[str, Any]:
    """A retried claim id (the buyer's Idempotency-Key) answers the claim already recorded, if
    it comes with the same request (`order["fingerprint"]`): see `_replayed`."""
    deal, now = _deal(uow, deal_id), clock()
    if claim_id in deal.claimants:
        return _replayed(deal, now, claim_id, buyer_id, order)
    try:
        decision = deal.claim(claim_id, buyer_id, quantity, now, order)
    except OutOfStock as exc:  # tell the owner until when no unit can come back
        release = next_release(deal, now)
        exc.extra["until"] = None if release is None else release.isoformat()
        raise
    order_pay_by = decision.order_pay_by or decision.pay_by
    return _claimed(deal, now, claim_id, quantity, decision.pay_by, order_pay_by, True)


def _claimed(
    deal: FlashDeal,
    now: datetime,
    claim_id: UUID,
    quantity: int,
    pay_by: datetime,
    order_pay_by: datetime,
    new: bool,
) -> dict[str, Any]:
    return {
        "deal": deal_view(deal, now),
        "claim": {
            "id": str(claim_id),
            "quantity": quantity,
            "pay_by": order_pay_by.isoformat(),
            "held_until": pay_by.isoformat(),
        },
        "new": new,
        "sold_out": deal.units_left(now) <= 0,
    }


def _replayed(
    deal: FlashDeal, now: datetime, claim_id: UUID, buyer_id: UUID, order: dict | None = None
) -> dict[str, Any]:
    """A won claim's retry: its first answer, and where it stands now.

    The claim's terms are rebuilt from what `Claimed` recorded (`deal.terms`: the quantity and
    when its hold ends; the buyer's deadline is that less the deal's settle grace, as when it
    was decided), so they are the first answer's whether the claim has since been paid, lapsed,
    released or its order refused; `state` and `reason` say which. Only another buyer's claim
    id (a conflict) or the same key with another request is refused."""
    if deal.claimants[claim_id] != buyer_id:
        raise Conflict("this claim id was already used", field="claim_id")
    first = deal.requests.get(claim_id)
    if order is not None and first is not None and first != order["fingerprint"]:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with a different request", field="Idempotency-Key"
        )
    return _as_recorded(deal, now, claim_id)


def _as_recorded(deal: FlashDeal, now: datetime, claim_id: UUID) -> dict[str, Any]:
    """A recorded claim as first answered, with its state now: `held` (unpaid, its units still
    its own), `paid`, `released` (lapsed, given up or its order cancelled) or `refused` (its
    order was, `reason` says why)."""
    quantity, held_until = deal.terms[claim_id]
    held = deal.claims.get(claim_id)
    if claim_id in deal.refusals:
        state = "refused"
    elif held is None or (held[1] is not None and held[1] <= now):
        state = "released"
    else:
        state = "paid" if held[1] is None else "held"
    pay_by = held_until - deal.settle_grace
    return _claimed(deal, now, claim_id, quantity, held_until, pay_by, False) | {
        "state": state,
        "reason": deal.refusals.get(claim_id),
    }


def release(
    uow: UnitOfWork, clock: Clock, deal_id: UUID, claim_id: UUID, refused: str | None = None
) -> dict[str, Any]:
    """The order behind the claim was cancelled or refused: the units return at once."""
    deal = _deal(uow, deal_id)
    if not deal.is_paid(claim_id):
        deal.release(claim_id, refused)
    return deal_view(deal, clock())


def claim_state(
    uow: UnitOfWork, clock: Clock, deal_id: UUID, claim_id: UUID, buyer_id: UUID
) -> dict[str, Any]:
    """Where a buyer's claim stands on the deal's side (its order is asked of commerce)."""
    deal, now = _deal(uow, deal_id), clock()
    if deal.claimants.get(claim_id) != buyer_id:
        raise NotFound("no such claim", field="claim_id")
    return _as_recorded(deal, now, claim_id)


def pay(uow: UnitOfWork, clock: Clock, deal_id: UUID, claim_id: UUID) -> dict[str, Any]:
    """The claim's order was paid. Refused only when the claim lapsed past its grace, in which
    case the caller refunds the order (its units may already be someone else's)."""
    deal, now = _deal(uow, deal_id), clock()
    try:
        deal.pay(claim_id, now)
    except (InvalidTransition, NotFound) as exc:
        return {"deal": deal_view(deal, now), "accepted": False, "reason": exc.detail}
    return {"deal": deal_view(deal, now), "accepted": True}


def tick(uow: UnitOfWork, clock: Clock, deal_id: UUID) -> dict[str, Any]:
    """The owner's sweep: record lapsed claims and a deal whose time is up. Counts do not
    change (they are derived at read time); the room is told what the sweep recorded."""
    deal, now = _deal(uow, deal_id), clock()
    expired = deal.lapsed(now)
    for claim_id in expired:
        deal.expire(claim_id, now)
    closed = False
    if deal.closed_at is None and now >= deal.ends_at:
        deal.close(now)
        closed = True
    return {"deal": deal_view(deal, now), "expired": len(expired), "closed": closed}


def close(uow: UnitOfWork, clock: Clock, deal_id: UUID, merchant_id: UUID) -> dict[str, Any]:
    deal = _deal(uow, deal_id)
    if deal.merchant_id != merchant_id:
        raise NotFound("no such flash deal", field="deal_id")
    deal.close(clock())
    return deal_view(deal, clock())


def view(uow: UnitOfWork, clock: Clock, deal_id: UUID) -> dict[str, Any]:
    return deal_view(_deal(uow, deal_id), clock())


COMMANDS: dict[str, Callable[..., dict[str, Any]]] = {
    "open": open_deal,
    "claim": claim,
    "release": release,
    "pay": pay,
    "tick": tick,
    "close": close,
    "view": view,
    "claim_state": claim_state,
}
"""What may be run on a deal's owner, by name (the forwarding endpoint takes a name)."""

__all__ = ["COMMANDS", "OPEN", "deal_view", "open_deal"]
