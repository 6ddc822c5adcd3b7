"""HTTP endpoints for live sessions: merchants schedule and run them; anyone may look."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeAlias
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from msgspec import Meta

from commerce.api.auth import allow
from commerce.api.common import MAX_PAGE, body_uuid, path_uuid
from commerce.api.deps import Caller
from commerce.domain.errors import InvalidInput, NotFound
from commerce.domain.merchants import Product
from commerce.services.access import MERCHANT
from livestream.api import usecases
from livestream.api.runtime import LivestreamRuntime
from livestream.api.usecases import session_view
from livestream.domain.sessions import LIVE, SCHEDULED

Live: TypeAlias = NamedDependency[LivestreamRuntime]

STATES = {"live": LIVE, "upcoming": SCHEDULED}


class ScheduleSession(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, Meta(max_length=1000)]
    starts_at: Annotated[datetime, Meta(tz=True)]
    creator_id: str | None = None


class PinProduct(msgspec.Struct, forbid_unknown_fields=True):
    product_id: str


class LiveSessionController(Controller):
    path = "/live/sessions"
    tags = ("live",)

    @post("/", status_code=201, guards=[allow(MERCHANT)])
    async def schedule(
        self, data: JSONBody[ScheduleSession], principal: Caller, live: Live
    ) -> dict[str, Any]:
        """Schedule a session hosted by the calling merchant."""
        creator = None if data.creator_id is None else body_uuid(data.creator_id, "creator_id")
        return await live.writer.submit(
            usecases.schedule, live.clock, principal.id, data.title, data.starts_at, creator
        )

    @get("/")
    async def list_sessions(
        self,
        live: Live,
        wanted: Annotated[str, QueryParameter(name="state")] = "live",
        limit: FromQuery[int] = 50,
    ) -> dict[str, Any]:
        """Sessions live now, or upcoming (soonest first)."""
        if wanted not in STATES:
            raise InvalidInput("must be live or upcoming", field="state")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"must be from 1 to {MAX_PAGE}", field="limit")
        return {"items": await live.list(STATES[wanted], limit)}

    @get("/{session_id:str}")
    async def get_session(self, session_id: FromPath[str], live: Live) -> dict[str, Any]:
        session = await live.read(path_uuid(session_id, "session"))
        if session is None:
            raise NotFound("no such live session", field="session_id")
        return session_view(session)

    @post("/{session_id:str}/start", status_code=200, guards=[allow(MERCHANT)])
    async def start(self, session_id: FromPath[str], principal: Caller, live: Live) -> dict:
        sid = path_uuid(session_id, "session")
        view = await live.writer.submit(usecases.start, live.clock, principal.id, sid)
        await live.announce("session.started", view, started_at=view["started_at"])
        return view

    @post("/{session_id:str}/end", status_code=200, guards=[allow(MERCHANT)])
    async def end(self, session_id: FromPath[str], principal: Caller, live: Live) -> dict:
        sid = path_uuid(session_id, "session")
        view = await live.writer.submit(usecases.end, live.clock, principal.id, sid)
        await live.announce("session.ended", view, finished_at=view["finished_at"])
        return view

    @post("/{session_id:str}/pins", status_code=200, guards=[allow(MERCHANT)])
    async def pin(
        self, session_id: FromPath[str], data: JSONBody[PinProduct], principal: Caller, live: Live
    ) -> dict:
        """Feature one of the host's own products (at most 3 at once)."""
        sid = path_uuid(session_id, "session")
        product_id = body_uuid(data.product_id, "product_id")
        product = await live.commerce.read(product_id, Product)
        if product is None or product.merchant_id != principal.id:
            raise NotFound("no such product", field="product_id")
        view = await live.writer.submit(usecases.pin, live.clock, principal.id, sid, product_id)
        await live.announce("product.pinned", view, product_id=str(product_id))
        return view

    @delete("/{session_id:str}/pins/{product_id:str}", status_code=200, guards=[allow(MERCHANT)])
    async def unpin(
        self, session_id: FromPath[str], product_id: FromPath[str], principal: Caller, live: Live
    ) -> Response[dict]:
        sid = path_uuid(session_id, "session")
        pid: UUID = path_uuid(product_id, "product")
        view = await live.writer.submit(usecases.unpin, live.clock, principal.id, sid, pid)
        await live.announce("product.unpinned", view, product_id=str(pid))
        return Response(view, status_code=200)
