"""Flash deals over HTTP: hosts open and close them, buyers claim, anyone looks.

Claims are livestream.api.claims; the claim route's fast path is livestream.api.claim_fastpath.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from uuid import UUID, uuid4

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from commerce.api.auth import allow
from commerce.api.common import answer, body_uuid, path_uuid
from commerce.api.deps import Caller, IdemKey
from commerce.api.schemas import Uuid, rule
from commerce.domain.errors import InvalidInput, NotFound
from commerce.services import deal_orders
from commerce.services.access import BUYER, MERCHANT
from livestream.api import claims, usecases
from livestream.api import responses as out
from livestream.api.claim_fastpath import ClaimFastPath
from livestream.api.claims import ClaimDeal
from livestream.api.runtime import Live
from livestream.domain.deals import (
    COUNTDOWN_SECONDS,
    DURATION_SECONDS,
    PAYMENT_WINDOW_SECONDS,
    FlashDeal,
)
from livestream.engine.commands import deal_view

HOLD_MARGIN = timedelta(minutes=1)  # the deal's stock hold outlives its last claim's grace


Countdown = Annotated[int, rule(minimum=COUNTDOWN_SECONDS[0], maximum=COUNTDOWN_SECONDS[1])]
Duration = Annotated[int, rule(minimum=DURATION_SECONDS[0], maximum=DURATION_SECONDS[1])]
PayWithin = Annotated[
    int, rule(minimum=PAYMENT_WINDOW_SECONDS[0], maximum=PAYMENT_WINDOW_SECONDS[1])
]


class OpenDeal(msgspec.Struct, forbid_unknown_fields=True):
    sku: Annotated[str, Meta(max_length=64)]
    warehouse_id: Uuid
    price_fen: Annotated[
        int, rule(minimum=1, maximum=10**10, description="the deal price, CNY fen")
    ]
    quantity: Annotated[int, rule(minimum=1, maximum=1_000_000)]
    per_buyer_limit: Annotated[int, rule(minimum=1, description="at most the quantity")]
    countdown_seconds: Countdown
    duration_seconds: Duration
    payment_window_seconds: PayWithin = 300


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
    ) -> out.Deal:
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
    async def list_deals(self, session_id: FromPath[str], live: Live) -> out.Deals:
        """Every deal of the session, open or not, soonest first."""
        sid = path_uuid(session_id, "session")
        if await live.host_of(sid) is None:
            raise NotFound("no such live session", field="session_id")
        return {"items": await live.session_deals(sid, open_only=False)}

    @get("/live/deals/{deal_id:str}")
    async def get_deal(self, deal_id: FromPath[str], live: Live) -> out.Deal:
        deal = await live.read_deal(path_uuid(deal_id, "deal"))
        if deal is None:
            raise NotFound("no such flash deal", field="deal_id")
        return deal_view(deal, live.clock())

    @post("/live/deals/{deal_id:str}/close", status_code=200, guards=[allow(MERCHANT, BUYER)])
    async def close_deal(self, deal_id: FromPath[str], principal: Caller, live: Live) -> out.Deal:
        """End a deal early (host or moderator: whoever may open one may close it). Claims
        already made may still be paid."""
        did = path_uuid(deal_id, "deal")
        merchant_id = principal.id
        if principal.kind == BUYER:  # a moderator closes on behalf of the session's host
            merchant_id = await _moderated_deal_merchant(live, did, principal.id)
        deal = await live.engine.run(did, "close", merchant_id=merchant_id)
        await live.deal_room.closed(deal)
        return deal

    @post(
        "/live/deals/{deal_id:str}/claims",
        status_code=201,
        guards=[allow(BUYER)],
        middleware=[ClaimFastPath],
        opt={"idempotency_key": "required"},
        description=(
            "Claim units of an open deal at the deal price; answered once the claim is durably"
            " committed. A retry with the same Idempotency-Key of a claim that won answers 201"
            " with the first answer's id, quantity, pay_by, held_until and order_id, and state,"
            " reason and order as they are now. A refusal (409: sold out, closed, not yet open,"
            " per-buyer limit) records nothing, so its retry is decided afresh."
        ),
    )
    async def claim(
        self,
        deal_id: FromPath[str],
        data: JSONBody[ClaimDeal],
        principal: Caller,
        idempotency: IdemKey,
        live: Live,
    ) -> Response[out.Claim]:
        """Claim units of an open deal at the deal price. Answered once the deal has durably
        committed the claim: state `placing`, with `order_id`, the order that is being placed
        from it (usually within milliseconds; follow it at GET .../claims/{id}), payable until
        `pay_by`. Needs an `Idempotency-Key`; a retry of a claim that won answers 201 with the
        first answer's `id`, `quantity`, `pay_by`, `held_until` and `order_id`, and `state`,
        `reason` and `order` as they are now (as GET .../claims/{id} says; also once paid,
        lapsed, released or refused). Sold out, closed or not yet open → 409; per-buyer limit →
        409; a refusal records nothing, so a retry of a refused claim is decided afresh."""
        if idempotency is None:
            raise InvalidInput("a claim needs an Idempotency-Key header", field="Idempotency-Key")
        return answer(await claims.claim(live, principal, deal_id, data, idempotency))

    @get("/live/deals/{deal_id:str}/claims/{claim_id:str}", guards=[allow(BUYER)])
    async def claim_state(
        self, deal_id: FromPath[str], claim_id: FromPath[str], principal: Caller, live: Live
    ) -> out.Claim:
        """The buyer's own claim: `placing` until its order exists, then `placed` with the
        order (pay it by `pay_by`); `refused` with the reason (e.g. the annual CBEC allowance;
        the units went back to the deal); `released` if it ended before an order was placed."""
        return await claims.claim_state(live, principal, deal_id, claim_id)


async def _moderated_deal_merchant(live: Live, deal_id: UUID, buyer_id: UUID) -> UUID:
    """The deal's merchant if the buyer moderates its session; to anyone else the deal is
    not there, as it is not for another merchant."""
    deal = await live.read_deal(deal_id)
    session = None if deal is None else await live.read(deal.session_id)
    if deal is None or session is None or buyer_id not in session.moderator_ids:
        raise NotFound("no such flash deal", field="deal_id")
    return deal.merchant_id
