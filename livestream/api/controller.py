"""HTTP endpoints for live sessions: merchants schedule and run them; anyone may look."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter
from msgspec import Meta

from commerce.api.auth import allow
from commerce.api.common import MAX_PAGE, PageLimit, body_uuid, path_uuid
from commerce.api.deps import Caller, IdemKey
from commerce.api.schemas import Name, Uuid, rule
from commerce.domain.accounts import Buyer
from commerce.domain.creators import Creator
from commerce.domain.errors import InvalidInput, NotFound
from commerce.domain.merchants import Product
from commerce.services.access import BUYER, MERCHANT
from livestream.api import responses as out
from livestream.api import usecases
from livestream.api.runtime import Live
from livestream.api.usecases import session_view
from livestream.domain.sessions import LIVE, SCHEDULED
from livestream.room import RoomEvent

STATES = {"live": LIVE, "upcoming": SCHEDULED}


class ScheduleSession(msgspec.Struct, forbid_unknown_fields=True):
    title: Name
    starts_at: Annotated[datetime, Meta(tz=True)]
    creator_id: Uuid | None = None


class PinProduct(msgspec.Struct, forbid_unknown_fields=True):
    product_id: Uuid


class IssueCoupon(msgspec.Struct, forbid_unknown_fields=True):
    """Either `amount_fen` or `percent_off`."""

    quantity: Annotated[int, rule(minimum=1, maximum=1_000_000)]
    per_buyer_limit: Annotated[int, rule(minimum=1, description="at most the quantity")]
    amount_fen: Annotated[int, rule(minimum=1, maximum=10**8)] | None = None
    percent_off: Annotated[int, rule(minimum=1, maximum=99)] | None = None


class LiveSessionController(Controller):
    path = "/live/sessions"
    tags = ("live",)

    @post("/", status_code=201, guards=[allow(MERCHANT)])
    async def schedule(
        self, data: JSONBody[ScheduleSession], principal: Caller, live: Live
    ) -> out.Session:
        """Schedule a session hosted by the calling merchant."""
        creator = None if data.creator_id is None else body_uuid(data.creator_id, "creator_id")
        linked: tuple[UUID, ...] = ()
        if creator is not None:
            kol = await live.commerce.read(creator, Creator)
            linked = (creator,) if kol is not None and principal.id in kol.merchants else ()
        view = await live.writer.submit(
            usecases.schedule, live.clock, principal.id, data.title, data.starts_at, creator, linked
        )
        return await live.with_uses_left(view)

    @get("/")
    async def list_sessions(
        self,
        live: Live,
        wanted: Annotated[
            str, QueryParameter(name="state", schema_extra={"enum": list(STATES)})
        ] = "live",
        limit: PageLimit = 50,
    ) -> out.Sessions:
        """Sessions live now, or upcoming (soonest first)."""
        if wanted not in STATES:
            raise InvalidInput("must be live or upcoming", field="state")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"must be from 1 to {MAX_PAGE}", field="limit")
        return {"items": await live.list(STATES[wanted], limit)}

    @get("/{session_id:str}")
    async def get_session(self, session_id: FromPath[str], live: Live) -> out.Session:
        session = await live.read(path_uuid(session_id, "session"))
        if session is None:
            raise NotFound("no such live session", field="session_id")
        return await live.with_uses_left(session_view(session))

    @post("/{session_id:str}/start", status_code=200, guards=[allow(MERCHANT)])
    async def start(self, session_id: FromPath[str], principal: Caller, live: Live) -> out.Session:
        sid = path_uuid(session_id, "session")
        view = await live.writer.submit(usecases.start, live.clock, principal.id, sid)
        await live.announce("session.started", view, started_at=view["started_at"])
        return await live.with_uses_left(view)

    @post("/{session_id:str}/end", status_code=200, guards=[allow(MERCHANT)])
    async def end(self, session_id: FromPath[str], principal: Caller, live: Live) -> out.Session:
        sid = path_uuid(session_id, "session")
        view = await live.writer.submit(usecases.end, live.clock, principal.id, sid)
        await live.announce("session.ended", view, finished_at=view["finished_at"])
        await live.hub.close_room(view["id"])  # after session.ended, in every API process
        return await live.with_uses_left(view)

    @post("/{session_id:str}/pins", status_code=200, guards=[allow(MERCHANT, BUYER)])
    async def pin(
        self, session_id: FromPath[str], data: JSONBody[PinProduct], principal: Caller, live: Live
    ) -> out.Session:
        """Feature one of the host's own products (at most 3 at once). Host or moderator."""
        sid = path_uuid(session_id, "session")
        product_id = body_uuid(data.product_id, "product_id")
        host = await live.host_of(sid)
        product = await live.commerce.read(product_id, Product)
        if host is None or product is None or product.merchant_id != host[0]:
            raise NotFound("no such product", field="product_id")
        view = await live.writer.submit(usecases.pin, live.clock, principal, sid, product_id)
        await live.announce("product.pinned", view, product_id=str(product_id))
        return await live.with_uses_left(view)

    @delete(
        "/{session_id:str}/pins/{product_id:str}", status_code=200, guards=[allow(MERCHANT, BUYER)]
    )
    async def unpin(
        self, session_id: FromPath[str], product_id: FromPath[str], principal: Caller, live: Live
    ) -> Response[out.Session]:
        sid = path_uuid(session_id, "session")
        pid: UUID = path_uuid(product_id, "product")
        view = await live.writer.submit(usecases.unpin, live.clock, principal, sid, pid)
        await live.announce("product.unpinned", view, product_id=str(pid))
        return Response(await live.with_uses_left(view), status_code=200)

    @post("/{session_id:str}/coupons", status_code=201, guards=[allow(MERCHANT, BUYER)])
    async def issue_coupon(
        self,
        session_id: FromPath[str],
        data: JSONBody[IssueCoupon],
        principal: Caller,
        idempotency: IdemKey,
        live: Live,
    ) -> out.Coupon:
        """Issue an in-stream coupon (amount or percent off; quantity; per-buyer limit)."""
        sid = path_uuid(session_id, "session")
        coupon_id = idempotency.resource_id("coupon") if idempotency else uuid4()
        terms = {f: getattr(data, f) for f in data.__struct_fields__}
        coupon = await live.writer.submit(
            usecases.issue_coupon, live.clock, principal, sid, coupon_id, terms
        )
        await live.hub.publish(str(sid), RoomEvent("coupon.issued", coupon))
        return coupon

    @put("/{session_id:str}/moderators/{user_id:str}", status_code=200, guards=[allow(MERCHANT)])
    async def add_moderator(
        self, session_id: FromPath[str], user_id: FromPath[str], principal: Caller, live: Live
    ) -> out.Moderators:
        """Name a signed-up user (a buyer account) moderator of the host's session."""
        return await self._moderator(live, principal, session_id, user_id, True)

    @delete("/{session_id:str}/moderators/{user_id:str}", status_code=200, guards=[allow(MERCHANT)])
    async def remove_moderator(
        self, session_id: FromPath[str], user_id: FromPath[str], principal: Caller, live: Live
    ) -> Response[out.Moderators]:
        view = await self._moderator(live, principal, session_id, user_id, False)
        return Response(view, status_code=200)

    async def _moderator(self, live: Live, principal, session_id: str, user_id: str, on: bool):  # type: ignore[no-untyped-def]
        sid, uid = path_uuid(session_id, "session"), path_uuid(user_id, "user")
        if on and await live.commerce.read(uid, Buyer) is None:
            raise NotFound("no such user", field="user_id")
        view = await live.writer.submit(
            usecases.set_moderator, live.clock, principal.id, sid, uid, on
        )
        return await live.with_uses_left(view)
