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

from commerce.domain.errors import NotFound
from commerce.platform.unit_of_work import UnitOfWork
from livestream.domain.sessions import LiveSession

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


def schedule(
    uow: UnitOfWork,
    clock: Clock,
    merchant_id: UUID,
    title: str,
    starts_at: datetime,
    creator_id: UUID | None,
) -> dict[str, Any]:
    # Merchants have no creator roster yet: any creator id is reported as not working with them.
    session = LiveSession.schedule(
        host_merchant_id=merchant_id,
        title=title,
        starts_at=starts_at,
        now=clock(),
        creator_id=creator_id,
        merchant_creator_ids=(),
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
    uow: UnitOfWork, clock: Clock, merchant_id: UUID, session_id: UUID, product_id: UUID
) -> dict[str, Any]:
    session = _hosted(uow, session_id, merchant_id)
    session.pin(product_id, clock())
    return session_view(session)


def unpin(
    uow: UnitOfWork, clock: Clock, merchant_id: UUID, session_id: UUID, product_id: UUID
) -> dict[str, Any]:
    session = _hosted(uow, session_id, merchant_id)
    session.unpin(product_id, clock())
    return session_view(session)
