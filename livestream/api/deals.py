"""Flash deals over HTTP: hosts open and close them, buyers claim, anyone looks.

A claim is answered only after it is durably committed on the deal's owner and its order is
committed in the commerce store. If the order cannot be placed (the buyer's annual CBEC
allowance, say), the claim is released before the refusal is answered.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Annotated, Any, TypeAlias
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from commerce.api import schemas
from commerce.api.auth import allow
from commerce.api.common import answer, body_uuid, path_uuid
from commerce.api.deps import Caller, IdemKey
from commerce.domain import ids
from commerce.domain.errors import InvalidInput, NotFound
from commerce.domain.identity import validate_resident_id
from commerce.platform.groupcommit import WriterUnavailable
from commerce.services import deal_orders, ordering
from commerce.services.access import BUYER, MERCHANT, Principal
from commerce.services.idempotency import Idempotency
from livestream.api import usecases
from livestream.api.runtime import LivestreamRuntime
from livestream.domain.deals import FlashDeal
from livestream.engine.commands import deal_view
from livestream.engine.router import AUTH_HEADER

Live: TypeAlias = NamedDependency[LivestreamRuntime]
HOLD_MARGIN = timedelta(minutes=1)  # the deal's stock hold outlives its last claim's grace
MAX_CLAIMS_IN_FLIGHT = 256  # per process: about what one process commits in a second


class OpenDeal(msgspec.Struct, forbid_unknown_fields=True):
    sku: Annotated[str, Meta(max_length=64)]
    warehouse_id: str
    price_fen: int
    quantity: int
    per_buyer_limit: int
    countdown_seconds: int
    duration_seconds: int
    payment_window_seconds: int = 300


class ClaimDeal(msgspec.Struct, forbid_unknown_fields=True):
    identity: schemas.Identity
    address: schemas.Address
    quantity: int = 1
    payment_provider: Annotated[str, Meta(max_length=32)] | None = None


class DealController(Controller):
    tags = ("live",)

    @post("/live/sessions/{session_id:str}/deals", status_code=201, guards=[allow(MERCHANT, BUYER)])
    async def open_deal(
        self,
        session_id: FromPath[str],
        data: JSONBody[OpenDeal],
        principal: Caller,
        idempotency: IdemKey,
        live: Live,
    ) -> dict[str, Any]:
        """Open a flash deal in a live session (host or moderator): its units are set aside
        from the warehouse's stock at once; claims start after the countdown."""
        sid = path_uuid(session_id, "session")
        warehouse_id = body_uuid(data.warehouse_id, "warehouse_id")
        fields = {f: getattr(data, f) for f in data.__struct_fields__}
        FlashDeal.validate(**fields)
        session = await live.writer.submit(usecases.require_live, live.clock, principal, sid)
        merchant_id = UUID(session["host_merchant_id"])
        deal_id = idempotency.resource_id("deal") if idempotency else uuid4()
        grace = live.settle_grace_seconds
        ends = live.clock() + timedelta(seconds=data.countdown_seconds + data.duration_seconds)
        until = ends + timedelta(seconds=data.payment_window_seconds + grace) + HOLD_MARGIN
        commerce = live.commerce
        await commerce.writer.submit(
            deal_orders.set_aside, commerce.cfg, merchant_id, data.sku, warehouse_id, deal_id,
            data.quantity, until,
        )  # fmt: skip
        fields |= {"warehouse_id": warehouse_id, "settle_grace_seconds": grace}
        fields |= {"session_id": sid, "merchant_id": merchant_id}
        try:
            # a new deal needs no owner yet: the (id, version) key makes a retried open create
            # it once; its first claim decides which process owns it
            deal = await live.engine.local(deal_id, "open", {"fields": fields})
        except BaseException:
            await commerce.writer.submit(
                deal_orders.give_back, merchant_id, data.sku, warehouse_id, deal_id
            )
            raise
        await live.deal_room.opened(deal)
        return deal

    @get("/live/sessions/{session_id:str}/deals")
    async def list_deals(self, session_id: FromPath[str], live: Live) -> dict[str, Any]:
        """Every deal of the session, open or not, soonest first."""
        sid = path_uuid(session_id, "session")
        if await live.host_of(sid) is None:
            raise NotFound("no such live session", field="session_id")
        return {"items": await live.session_deals(sid, open_only=False)}

    @get("/live/deals/{deal_id:str}")
    async def get_deal(self, deal_id: FromPath[str], live: Live) -> dict[str, Any]:
        deal = await live.read_deal(path_uuid(deal_id, "deal"))
        if deal is None:
            raise NotFound("no such flash deal", field="deal_id")
        return deal_view(deal, live.clock())

    @post("/live/deals/{deal_id:str}/close", status_code=200, guards=[allow(MERCHANT)])
    async def close_deal(self, deal_id: FromPath[str], principal: Caller, live: Live) -> dict:
        """End a deal early (host merchant). Claims already made may still be paid."""
        did = path_uuid(deal_id, "deal")
        deal = await live.engine.run(did, "close", merchant_id=principal.id)
        await live.deal_room.closed(deal)
        return deal

    @post("/live/deals/{deal_id:str}/claims", status_code=201, guards=[allow(BUYER)])
    async def claim(
        self,
        deal_id: FromPath[str],
        data: JSONBody[ClaimDeal],
        principal: Caller,
        idempotency: IdemKey,
        live: Live,
    ) -> Response:
        """Claim units of an open deal at the deal price: an order awaiting payment until
        `pay_before`. Needs an `Idempotency-Key`; a retry answers the first claim's order.
        Sold out, closed or not yet open → 409; per-buyer limit → 409."""
        if idempotency is None:
            raise InvalidInput("a claim needs an Idempotency-Key header", field="Idempotency-Key")
        if live.claims_in_flight >= MAX_CLAIMS_IN_FLIGHT:
            # shed load early: past this, answers arrive after the buyer's client gave up
            raise WriterUnavailable("too many claims in progress; retry")
        live.claims_in_flight += 1
        try:
            return await _claim(deal_id, data, principal, idempotency, live)
        finally:
            live.claims_in_flight -= 1

    @post("/internal/deals/{deal_id:str}/{op:str}", include_in_schema=False)
    async def forwarded(
        self, deal_id: FromPath[str], op: FromPath[str], request: Request, live: Live
    ) -> Response:
        """A deal command forwarded by another API process to this one, the deal's owner."""
        body = await request.body()
        if not live.engine.verify(request.url.path, body, request.headers.get(AUTH_HEADER)):
            raise NotFound("no such endpoint")
        status, payload = await live.engine.serve_forwarded(path_uuid(deal_id, "deal"), op, body)
        return Response(payload, status_code=status)


async def _claim(
    deal_id: str,
    data: ClaimDeal,
    principal: Principal,
    idempotency: Idempotency,
    live: LivestreamRuntime,
) -> Response:
    did = path_uuid(deal_id, "deal")
    if not 1 <= data.quantity <= 999:
        raise InvalidInput("must be from 1 to 999", field="quantity")
    cfg = live.commerce.cfg
    identity = ordering.identify(cfg, data.identity.name, data.identity.resident_id)
    address = {f: getattr(data.address, f) for f in data.address.__struct_fields__}
    ordering.validate_address(address)
    claim_id = idempotency.resource_id("claim")
    result = await live.engine.run(
        did, "claim", claim_id=claim_id, buyer_id=principal.id, quantity=data.quantity
    )
    deal, claim = result["deal"], result["claim"]
    host = await live.host_of(UUID(deal["session_id"]))
    attribution = {
        "source": "live",
        "session_id": deal["session_id"],
        "host_merchant_id": deal["merchant_id"],
        "creator_id": None if host is None or host[1] is None else str(host[1]),
        "deal_id": deal["id"],
        "claim_id": claim["id"],
    }
    try:
        quota = ids.quota_id(identity.identity_hash, cfg.quota_year(cfg.clock()))
        placed = await live.commerce.writer.submit(
            deal_orders.place_claim_order, cfg, claim, deal, principal.id, identity, address,
            attribution, idempotency.fingerprint, data.payment_provider,
            probe=(ids.claim_order_id(claim_id), quota),  # usually new: checked per batch
        )  # fmt: skip
    except Exception:  # refused, or the store failed: the claim must not hold a unit for nothing
        if result["new"]:
            with contextlib.suppress(Exception):  # else it lapses at its deadline anyway
                await live.engine.run(did, "release", claim_id=claim_id)
        raise
    if not placed.replayed:
        order_id = UUID(placed.body["id"])
        resident_id = validate_resident_id(data.identity.resident_id)
        live.commerce.vault.put_soon(order_id, data.identity.name, resident_id)
    if result["new"]:
        await live.deal_room.claimed(deal, claim["quantity"], identity.name_masked)
    return answer(placed, claim=claim, deal=deal)
