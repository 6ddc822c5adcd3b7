"""What live-session handlers and the room need, built once per process by redcart.wiring."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from litestar import Router
from litestar.concurrency import sync_to_thread
from litestar.types import ASGIApp, Receive, Scope, Send

from commerce.api.runtime import CommerceRuntime
from commerce.platform.groupcommit import GroupCommitWriter
from commerce.services.access import MERCHANT
from livestream.api.usecases import session_view
from livestream.application import Livestream
from livestream.domain.sessions import CANCELLED, ENDED, LIVE, SCHEDULED, LiveSession
from livestream.room import Principal, Role, RoomEvent, RoomHub, RoomNotFound, room_routes

# The room's `authenticate(token)` is not told which room it signs into; the socket's path is.
_ROOM_PATH = re.compile(r"^/live/([^/]+)/ws/?$")
_room_id: ContextVar[str | None] = ContextVar("live_room_id", default=None)

_STATE_BY_TOPIC = {
    "livestream.LiveSession.Scheduled": SCHEDULED,
    "livestream.LiveSession.Started": LIVE,
    "livestream.LiveSession.Ended": ENDED,
    "livestream.LiveSession.Cancelled": CANCELLED,
}


@dataclass
class SessionIndex:
    """Session id → state, caught up from the Livestream notification log on each read.

    In process memory (rebuilt from the log at the first read after a start); correct across
    processes because every read first catches up with the shared log. Fine for thousands of
    sessions; a projection table replaces it when that stops being true.
    """

    app: Livestream
    states: dict[UUID, str] = field(default_factory=dict)
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
                self.position = notes[-1].id
            return dict(self.states)


class LivestreamRuntime:
    """A plain class (not a dataclass) so Litestar passes it through dependency injection as is."""

    def __init__(
        self,
        app: Livestream,
        writer: GroupCommitWriter,
        commerce: CommerceRuntime,
        clock: Callable[[], datetime],
    ) -> None:
        self.app = app
        self.writer = writer
        self.commerce = commerce
        self.clock = clock
        self.hub = RoomHub(self.snapshot)
        self.index = SessionIndex(self.app)

    # -- reading -------------------------------------------------------------------------------
    async def read(self, session_id: UUID) -> LiveSession | None:
        try:
            session = await sync_to_thread(self.app.repository.get, session_id)
        except AggregateNotFoundError:
            return None
        return session if isinstance(session, LiveSession) else None

    async def list(self, state: str, limit: int) -> list[dict[str, Any]]:
        states = await sync_to_thread(self.index.catch_up)
        ids = [sid for sid, s in states.items() if s == state]
        views = []
        for session_id in ids:
            session = await self.read(session_id)
            if session is not None and session.status == state:
                views.append(session_view(session))
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
        view = session_view(session)
        return {"session": view, "state": view["state"], "pinned": view["pinned"]}

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
        return Principal(str(principal.id), role)

    def routes(self) -> Router:
        """`GET /live/{session_id}/ws`, knowing which room a token signs into."""
        return Router(
            path="/",
            route_handlers=room_routes(self.hub, self.authenticate),
            middleware=[_remember_room],
        )


def _remember_room(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        match = _ROOM_PATH.match(scope.get("path", ""))
        token = _room_id.set(match.group(1) if match else None)
        try:
            await app(scope, receive, send)
        finally:
            _room_id.reset(token)

    return middleware
