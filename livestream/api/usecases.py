"""Live-session use cases, run by the group-commit writer as `fn(uow, clock, ...)`.

The clock is called inside the writer, so commands on one session get times in commit order
(the session refuses facts that run backwards). Every use case answers the session's view as
committed, which the caller also publishes to the room.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from commerce.domain.errors import InvalidTransition, NotFound
from commerce.platform.unit_of_work import UnitOfWork
from commerce.services.access import BUYER, MERCHANT, Principal
from livestream.domain.sessions import LIVE, Coupon, LiveSession

Clock = Callable[[], datetime]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def session_view(session: LiveSession) -> dict[str, Any]:
    """What anyone may see of a session (JSON-ready: strings, no domain objects)."""
    return {
        "id": str(session.id),
        "host_merchant_id": str(session.host_merchant_id),
        "creator_id": None if session.creator_id is None else str(session.creator_id),
        "title": session.title,
        "state": session.status,
        "starts_at": _iso(session.starts_at),
        "started_at": _iso(session.started_at),
        "finished_at": _iso(session.finished_at),
        "pinned": [str(product_id) for product_id in session.pinned],
        "coupons": [coupon_view(c) for c in session.coupons.values()],
        "pins": [
            {
                "product_id": str(p.product_id),
                "pinned_at": _iso(p.pinned_at),
                "unpinned_at": _iso(p.unpinned_at),
            }
            for p in session.pins
        ],
    }


def _hosted(uow: UnitOfWork, session_id: UUID, merchant_id: UUID) -> LiveSession:
    """The merchant's own session; someone else's looks like no session at all."""
    session = uow.get(session_id, LiveSession)
    if session is None or session.host_merchant_id != merchant_id:
        raise NotFound("no such live session", field="session_id")
    return session


def run_by(uow: UnitOfWork, session_id: UUID, principal: Principal) -> LiveSession:
    """The host merchant's session, or one the calling buyer moderates; else none at all."""
    session = uow.get(session_id, LiveSession)
    if session is not None:
        if principal.kind == MERCHANT and session.host_merchant_id == principal.id:
            return session
        if principal.kind == BUYER and principal.id in session.moderator_ids:
            return session
    raise NotFound("no such live session", field="session_id")


def coupon_view(coupon: Coupon) -> dict[str, Any]:
    return {
        "id": str(coupon.coupon_id),
        "amount_fen": coupon.amount_fen,
        "percent_off": coupon.percent_off,
        "quantity": coupon.quantity,
        "per_buyer_limit": coupon.per_buyer_limit,
        "left": coupon.quantity,  # until counted: LivestreamRuntime.with_uses_left
        "issued_at": _iso(coupon.issued_at),
    }


def issue_coupon(
    uow: UnitOfWork,
    clock: Clock,
    principal: Principal,
    session_id: UUID,
    coupon_id: UUID,
    terms: dict[str, Any],
) -> dict[str, Any]:
    """Idempotent by coupon id (from the Idempotency-Key when one is sent)."""
    session = run_by(uow, session_id, principal)
    if coupon_id not in session.coupons:
        session.issue_coupon(coupon_id, clock(), **terms)
    return coupon_view(session.coupons[coupon_id])


def set_moderator(
    uow: UnitOfWork, clock: Clock, merchant_id: UUID, session_id: UUID, user_id: UUID, on: bool
) -> dict[str, Any]:
    """Only the host merchant names or removes moderators."""
    session = _hosted(uow, session_id, merchant_id)
    if on:
        session.add_moderator(user_id, clock())
    else:
        session.remove_moderator(user_id, clock())
    return {"session_id": str(session.id), "moderators": sorted(map(str, session.moderator_ids))}


def require_live(uow: UnitOfWork, clock: Clock, principal: Principal, session_id: UUID) -> dict:
    """Before a deal opens: the caller runs this session and it is live."""
    session = run_by(uow, session_id, principal)
    if session.status != LIVE:
        raise InvalidTransition(f"the session is {session.status}, not live")
    return session_view(session)


def schedule(
    uow: UnitOfWork,
    clock: Clock,
    merchant_id: UUID,
    title: str,
    starts_at: datetime,
    creator_id: UUID | None,
    merchant_creator_ids: tuple[UUID, ...] = (),
) -> dict[str, Any]:
    """`merchant_creator_ids`: the creators (KOLs) linked to the merchant who may present."""
    session = LiveSession.schedule(
        host_merchant_id=merchant_id,
        title=title,
        starts_at=starts_at,
        now=clock(),
        creator_id=creator_id,
        merchant_creator_ids=merchant_creator_ids,
    )
    uow.add(session)
    return session_view(session)


def start(uow: UnitOfWork, clock: Clock, merchant_id: UUID, session_id: UUID) -> dict[str, Any]:
    session = _hosted(uow, session_id, merchant_id)
    session.start(clock())
    return session_view(session)


def end(uow: UnitOfWork, clock: Clock, merchant_id: UUID, session_id: UUID) -> dict[str, Any]:
    session = _hosted(uow, session_id, merchant_id)
    session.end(clock())
    return session_view(session)


def pin(
    uow: UnitOfWork, clock: Clock, principal: Principal, session_id: UUID, product_id: UUID
) -> dict[str, Any]:
    session = run_by(uow, session_id, principal)
    session.pin(product_id, clock())
    return session_view(session)


def unpin(
    uow: UnitOfWork, clock: Clock, principal: Principal, session_id: UUID, product_id: UUID
) -> dict[str, Any]:
    session = run_by(uow, session_id, principal)
    session.unpin(product_id, clock())
    return session_view(session)


def count_audience(
    uow: UnitOfWork, clock: Clock, session_id: UUID, counts: tuple[int, int, int], instance: str
) -> None:
    session = uow.get(session_id, LiveSession)
    if session is not None and session.status == LIVE:
        session.count_audience(*counts, clock(), instance)
