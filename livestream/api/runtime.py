"""What live-session handlers and the room need, built once per process by redcart.wiring."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from litestar import Router
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.types import ASGIApp, Receive, Scope, Send

from commerce.api.runtime import CommerceRuntime
from commerce.domain.coupons import REDEEMABLE_AFTER_END, CouponTerms
from commerce.platform.groupcommit import GroupCommitWriter
from commerce.services.access import MERCHANT
from livestream.api import usecases
from livestream.api.admission import ClaimAdmission
from livestream.api.coupon_uses import coupon_left_event, with_uses_left
from livestream.api.deal_room import DealRoom
from livestream.api.usecases import session_view
from livestream.application import Livestream
from livestream.domain.deals import CLOSED, FlashDeal
from livestream.domain.sessions import CANCELLED, ENDED, LIVE, SCHEDULED, LiveSession
from livestream.engine.commands import deal_view
from livestream.engine.router import DealEngine
from livestream.room import (
    Backplane,
    Principal,
    Role,
    RoomEnded,
    RoomEvent,
    RoomHub,
    RoomNotFound,
    room_routes,
)

# The room's `authenticate(token)` is not told which room it signs into; the socket's path is.
_ROOM_PATH = re.compile(r"^/live/([^/]+)/ws/?$")
_room_id: ContextVar[str | None] = ContextVar("live_room_id", default=None)

_DEAL_OPENED, _DEAL_CLOSED = "livestream.FlashDeal.Opened", "livestream.FlashDeal.Closed"
_STATE_BY_TOPIC = {
    "livestream.LiveSession.Scheduled": SCHEDULED,
    "livestream.LiveSession.Started": LIVE,
    "livestream.LiveSession.Ended": ENDED,
    "livestream.LiveSession.Cancelled": CANCELLED,
}


@dataclass
class SessionIndex:
    """Session id → state, and deals not yet closed → their session, caught up from the
    Livestream notification log on each read.

    In process memory (rebuilt from the log at the first read after a start); correct across
    processes because every read first catches up with the shared log. Fine for thousands of
    sessions; a projection table replaces it when that stops being true.
    """

    app: Livestream
    states: dict[UUID, str] = field(default_factory=dict)
    open_deals: dict[UUID, UUID] = field(default_factory=dict)
    by_session: dict[UUID, list[UUID]] = field(default_factory=dict)
    position: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def catch_up(self) -> dict[UUID, str]:
        with self._lock:
            recorder = self.app.recorder
            newest = recorder.max_notification_id() or 0
            while self.position < newest:
                notes = recorder.select_notifications(
                    self.position, limit=1000, stop=newest, inclusive_of_start=False
                )
                if not notes:
                    break
                for note in notes:
                    state = _STATE_BY_TOPIC.get(note.topic)
                    if state is not None:
                        self.states[note.originator_id] = state  # type: ignore[index]
                    elif note.topic == _DEAL_OPENED:
                        opened = self.app.mapper.to_domain_event(note)
                        self.open_deals[note.originator_id] = opened.session_id  # type: ignore
                        deals = self.by_session.setdefault(opened.session_id, [])
                        deals.append(note.originator_id)  # type: ignore[arg-type]
                    elif note.topic == _DEAL_CLOSED:
                        self.open_deals.pop(note.originator_id, None)  # type: ignore[arg-type]
                self.position = notes[-1].id
            return dict(self.states)

    def all_deals(self, session_id: UUID) -> list[UUID]:
        self.catch_up()
        with self._lock:
            return list(self.by_session.get(session_id, ()))

    def deals(self) -> dict[UUID, UUID]:
        self.catch_up()
        with self._lock:
            return dict(self.open_deals)


class LivestreamRuntime:
    """A plain class (not a dataclass) so Litestar passes it through dependency injection as is."""

    def __init__(
        self,
        app: Livestream,
        writer: GroupCommitWriter,
        commerce: CommerceRuntime,
        clock: Callable[[], datetime],
        engine: DealEngine,
        backplane: Backplane | None = None,
        settle_grace_seconds: int = 30,
    ) -> None:
        self.app = app
        self.writer = writer
        self.commerce = commerce
        self.clock = clock
        self.engine = engine
        self.settle_grace_seconds = settle_grace_seconds
        self.admission = ClaimAdmission()  # which claims are taken on in a burst, which shed
        # claim bodies whose checks passed, by a hash of the body and the day (claims.checked_once)
        self.checked_claims: dict[tuple[bytes, Any], tuple[Any, dict]] = {}
        self.backplane = backplane
        self.hub = RoomHub(self.snapshot, backplane=backplane)
        self.hub.listen_units(engine.units_seen)  # units back: other processes' refusals stop
        self.index = SessionIndex(self.app)
        self.deal_room = DealRoom(self.hub, engine, self.index.deals)
        self._hosts: dict[UUID, tuple[UUID, UUID | None]] = {}

    # -- reading -------------------------------------------------------------------------------
    async def read(self, session_id: UUID) -> LiveSession | None:
        try:
            session = await sync_to_thread(self.app.repository.get, session_id)
        except AggregateNotFoundError:
            return None
        return session if isinstance(session, LiveSession) else None

    async def coupon_terms(self, session_id: UUID, coupon_id: UUID) -> CouponTerms | None:
        """A coupon issued in the session, as checkout uses it (commerce.domain.coupons)."""
        session = await self.read(session_id)
        coupon = session.coupons.get(coupon_id) if session else None
        if session is None or coupon is None:
            return None
        until = None
        if session.status != LIVE:
            until = (session.finished_at or coupon.issued_at) + REDEEMABLE_AFTER_END
        return CouponTerms(
            coupon_id=coupon_id,
            session_id=session_id,
            merchant_id=session.host_merchant_id,
            amount_fen=coupon.amount_fen,
            percent_off=coupon.percent_off,
            quantity=coupon.quantity,
            per_buyer_limit=coupon.per_buyer_limit,
            usable_until=until,
        )

    async def host_of(self, session_id: UUID) -> tuple[UUID, UUID | None] | None:
        """(host merchant, creator) of a session: fixed at scheduling, so cached for claims."""
        known = self._hosts.get(session_id)
        if known is None:
            session = await self.read(session_id)
            if session is None:
                return None
            known = self._hosts[session_id] = (session.host_merchant_id, session.creator_id)
        return known

    async def read_deal(self, deal_id: UUID) -> FlashDeal | None:
        try:
            deal = await sync_to_thread(self.app.repository.get, deal_id)
        except AggregateNotFoundError:
            return None
        return deal if isinstance(deal, FlashDeal) else None

    async def session_deals(self, session_id: UUID, *, open_only: bool) -> list[dict[str, Any]]:
        if open_only:
            open_deals = await sync_to_thread(self.index.deals)
            deal_ids = [d for d, s in open_deals.items() if s == session_id]
        else:
            deal_ids = await sync_to_thread(self.index.all_deals, session_id)
        now, views = self.clock(), []
        for deal_id in deal_ids:
            deal = await self.read_deal(deal_id)
            if deal is None or deal.session_id != session_id:
                continue
            view = deal_view(deal, now)
            if not open_only or view["phase"] != CLOSED:
                views.append(view)
        views.sort(key=lambda v: (v["opens_at"], v["id"]))
        return views

    async def count_audiences_forever(self, every: float = 10.0, sample: float = 1.0) -> None:
        """Sample this process's viewers each second; record each live room's audience about
        every 10 s (livestream.LiveSession.AudienceCounted) for the live analytics."""
        peaks: dict[UUID, int] = {}
        ticks = 0
        while True:
            await asyncio.sleep(sample)
            ticks += 1
            states = await sync_to_thread(self.index.catch_up)
            for session_id, state in states.items():
                if state == LIVE:
                    viewers = self.hub.viewer_count(str(session_id))
                    peaks[session_id] = max(peaks.get(session_id, 0), viewers)
            if ticks * sample < every:
                continue
            ticks = 0
            for session_id, peak in list(peaks.items()):
                viewers = self.hub.viewer_count(str(session_id))
                room = self.hub._rooms.get(str(session_id))
                likes = 0 if room is None else room.likes_total
                if peak or likes:
                    counts = (viewers, max(peak, viewers), likes)
                    with contextlib.suppress(Exception):
                        await self.writer.submit(
                            usecases.count_audience, self.clock, session_id, counts,
                            self.hub.instance_id,
                        )  # fmt: skip
            peaks.clear()

    async def list(self, state: str, limit: int) -> list[dict[str, Any]]:
        states = await sync_to_thread(self.index.catch_up)
        ids = [sid for sid, s in states.items() if s == state]
        views = []
        for session_id in ids:
            session = await self.read(session_id)
            if session is not None and session.status == state:
                views.append(await self.with_uses_left(session_view(session)))
        views.sort(key=lambda v: (v["starts_at"], v["id"]))
        return views[:limit]

    # -- the room ------------------------------------------------------------------------------
    async def snapshot(self, room_id: str) -> dict[str, Any]:
        """The hub's snapshot provider: the session as stored now."""
        try:
            session_id = UUID(room_id)
        except ValueError:
            raise RoomNotFound(room_id) from None
        session = await self.read(session_id)
        if session is None:
            raise RoomNotFound(room_id)
        if session.status in (ENDED, CANCELLED):
            raise RoomEnded(room_id)
        view = await self.with_uses_left(session_view(session))
        deals = await self.session_deals(session_id, open_only=True)
        return {"session": view, "state": view["state"], "pinned": view["pinned"], "deals": deals}

    async def with_uses_left(self, view: dict[str, Any]) -> dict[str, Any]:
        """A session view whose coupons say how many uses they have left (coupon_uses)."""
        return await with_uses_left(self.commerce, view)

    async def coupon_moved(self, coupon_id: UUID) -> None:
        """Commerce's hook: an order took or gave back one of the coupon's uses."""
        found = await coupon_left_event(self.commerce, coupon_id)
        if found is not None:
            await self.hub.publish(found[0], RoomEvent("coupon.left", found[1]))

    async def announce(self, kind: str, view: dict[str, Any], **extra: Any) -> None:
        """After a commit: a reliable room event carrying the session's absolute state."""
        data = {"session_id": view["id"], "state": view["state"], "pinned": view["pinned"]}
        await self.hub.publish(view["id"], RoomEvent(kind, data | extra))

    async def authenticate(self, token: str) -> Principal | None:
        """Buyers (and other merchants) watch as viewers; the session's host merchant hosts."""
        principal = await self.commerce.authenticate(token)
        if principal is None or principal.id is None:
            return None
        role = Role.VIEWER
        room_id = _room_id.get()
        if principal.kind == MERCHANT and room_id is not None:
            try:
                session = await self.read(UUID(room_id))
            except ValueError:
                session = None
            if session is not None and session.host_merchant_id == principal.id:
                role = Role.HOST
        elif room_id is not None:
            try:
                session = await self.read(UUID(room_id))
            except ValueError:
                session = None
            if session is not None and principal.id in session.moderator_ids:
                role = Role.MODERATOR
        return Principal(str(principal.id), role)

    def routes(self) -> Router:
        """`GET /live/{session_id}/ws`, knowing which room a token signs into."""
        return Router(
            path="/",
            route_handlers=room_routes(self.hub, self.authenticate),
            middleware=[_remember_room],
        )


Live: TypeAlias = NamedDependency[LivestreamRuntime]
"""How handlers ask for the runtime (the app's `live` dependency)."""


def _remember_room(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        match = _ROOM_PATH.match(scope.get("path", ""))
        token = _room_id.set(match.group(1) if match else None)
        try:
            await app(scope, receive, send)
        finally:
            _room_id.reset(token)

    return middleware
