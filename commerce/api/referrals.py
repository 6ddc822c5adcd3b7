"""Creators (KOLs) and the referral links and promo codes merchants make for them; following a
referral link. Another merchant's creator, link or code answers 404, as a missing one does."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from commerce.api import responses as out
from commerce.api.auth import allow, authenticated
from commerce.api.common import answer, body_uuid, path_uuid
from commerce.api.deps import Caller, IdemKey, Runtime
from commerce.api.schemas import rule
from commerce.api.social import click
from commerce.domain.creators import LINK_CODE, PromoCode, ReferralLink
from commerce.domain.errors import InvalidInput, NotFound
from commerce.domain.journeys import REFERRAL_CLICK
from commerce.services import referrals
from commerce.services.access import ADMIN, BUYER, MERCHANT
from commerce.services.engagement import TOUCH
from commerce.services.social import Touch

Id = Annotated[str, Meta(max_length=100), rule(format="uuid")]
Code = Annotated[str, Meta(max_length=100), rule(pattern="^[A-Za-z0-9_-]{3,32}$")]
RateBp = Annotated[int, rule(minimum=0, maximum=5_000, description="basis points (100 = 1 %)")]
When = Annotated[datetime, Meta(tz=True)]


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class RegisterCreator(Strict):
    user_id: Id
    display_name: Annotated[str, Meta(max_length=1000)] | None = None
    resident_id: Annotated[str, Meta(max_length=64)] | None = None  # hashed, never stored
    merchant_id: Id | None = None  # admins only: a merchant always links to itself
    commission_rate_bp: RateBp | None = None


class NewReferralLink(Strict):
    code: Code
    creator_id: Id
    valid_until: When
    product_id: Id | None = None
    commission_rate_bp: RateBp | None = None  # defaults to the creator's rate with the merchant
    valid_from: When | None = None


class NewPromoCode(Strict):
    code: Code
    creator_id: Id
    percent_off: Annotated[int, rule(minimum=1, maximum=50)]
    valid_until: When
    commission_rate_bp: RateBp | None = None
    valid_from: When | None = None


class CreatorController(Controller):
    path = "/creators"
    tags = ("creators",)

    @post("/", status_code=201, guards=[allow(ADMIN, MERCHANT)])
    async def register(
        self,
        data: JSONBody[RegisterCreator],
        principal: Caller,
        idempotency: IdemKey,
        runtime: Runtime,
    ) -> Response[out.Creator]:
        """Register a buyer account as a creator and link it to a merchant at a commission rate
        (basis points). A merchant links to itself; an admin names the merchant, or none to only
        register. An optional resident ID is kept only as the peppered hash orders use, so a
        creator buying through their own link under another account earns nothing. 201 when the
        creator is new, 200 when an existing creator was (re)linked."""
        merchant = None if data.merchant_id is None else body_uuid(data.merchant_id, "merchant_id")
        if principal.kind == MERCHANT and merchant not in (None, principal.id):
            raise InvalidInput("a merchant links creators to itself only", field="merchant_id")
        result = await runtime.writer.submit(
            referrals.register_creator,
            runtime.cfg,
            idempotency,
            principal,
            body_uuid(data.user_id, "user_id"),
            data.display_name,
            referrals.creator_identity(runtime.cfg, data.resident_id),
            merchant,
            data.commission_rate_bp,
        )
        return answer(result)

    @get("/{creator_id:str}", guards=[allow(ADMIN, MERCHANT)])
    async def get_creator(
        self, creator_id: FromPath[str], principal: Caller, runtime: Runtime
    ) -> out.Creator:
        merchant = principal.id if principal.kind == MERCHANT else None
        cid = path_uuid(creator_id, "creator")
        return await runtime.writer.submit(referrals.get_creator, runtime.cfg, merchant, cid)

    @delete("/{creator_id:str}/link", status_code=204, guards=[allow(MERCHANT)])
    async def unlink(self, creator_id: FromPath[str], principal: Caller, runtime: Runtime) -> None:
        """Stop working with a creator; their promo codes for you stop working at checkout."""
        cid = path_uuid(creator_id, "creator")
        await runtime.writer.submit(referrals.unlink_creator, runtime.cfg, principal.id, cid)


class _Offers(Controller):
    guards = (allow(MERCHANT),)
    kind: type = ReferralLink

    @get("/{code:str}")
    async def get_offer(
        self, code: FromPath[str], principal: Caller, runtime: Runtime
    ) -> out.ReferralLink | out.PromoCode:
        return await runtime.writer.submit(
            referrals.get_offer, runtime.cfg, self.kind, principal.id, self._code(code)
        )

    @post("/{code:str}/revoke", status_code=200)
    async def revoke(
        self, code: FromPath[str], principal: Caller, runtime: Runtime
    ) -> out.ReferralLink | out.PromoCode:
        """Revoke it: from now on it leads nowhere and discounts nothing."""
        return await runtime.writer.submit(
            referrals.revoke_offer, runtime.cfg, self.kind, principal.id, self._code(code)
        )

    def _code(self, code: str) -> str:
        return code if self.kind is ReferralLink else code.upper()


class ReferralLinkController(_Offers):
    path = "/referral-links"
    tags = ("creators",)
    kind = ReferralLink

    @post("/", status_code=201)
    async def create(
        self,
        data: JSONBody[NewReferralLink],
        principal: Caller,
        idempotency: IdemKey,
        runtime: Runtime,
    ) -> Response[out.ReferralLink]:
        """A referral link for one of your creators, optionally to one product; it is followed
        at GET /r/{code}."""
        product = None if data.product_id is None else body_uuid(data.product_id, "product_id")
        terms = {
            "code": data.code,
            "creator_id": body_uuid(data.creator_id, "creator_id"),
            "product_id": product,
            "commission_rate_bp": data.commission_rate_bp,
            "valid_from": data.valid_from,
            "valid_until": data.valid_until,
        }
        result = await runtime.writer.submit(
            referrals.create_offer, runtime.cfg, idempotency, principal.id, terms
        )
        return answer(result)


class PromoCodeController(_Offers):
    path = "/promo-codes"
    tags = ("creators",)
    kind = PromoCode

    @post("/", status_code=201)
    async def create(
        self,
        data: JSONBody[NewPromoCode],
        principal: Caller,
        idempotency: IdemKey,
        runtime: Runtime,
    ) -> Response[out.PromoCode]:
        """A promo code for one of your creators: 1-50 % off the goods at checkout (before tax),
        crediting the creator. Codes are case-insensitive."""
        terms = {
            "code": data.code,
            "creator_id": body_uuid(data.creator_id, "creator_id"),
            "percent_off": data.percent_off,
            "commission_rate_bp": data.commission_rate_bp,
            "valid_from": data.valid_from,
            "valid_until": data.valid_until,
        }
        result = await runtime.writer.submit(
            referrals.create_offer, runtime.cfg, idempotency, principal.id, terms
        )
        return answer(result)


@get("/r/{code:str}", tags=["creators"])
async def follow_referral(code: FromPath[str], request: Request, runtime: Runtime) -> out.Referral:
    """Follow a referral link: where it leads. For a signed-in buyer the click is recorded as a
    `referral_click` touchpoint first (the answer waits for it); anyone else just gets the
    answer. Revoked, expired and unknown links are 404."""
    if not LINK_CODE.fullmatch(code):
        raise NotFound("no such referral link", field="code")
    principal = None
    if request.headers.get("authorization"):
        principal = await authenticated(request, runtime)
    link = await runtime.writer.submit(referrals.follow_referral, runtime.cfg, code)
    touchpoint = None
    if principal is not None and principal.kind == BUYER:
        touch = Touch(REFERRAL_CLICK, code, link["product_id"], link["creator_id"])
        touchpoint = (await click(runtime, TOUCH, principal, None, touch))["id"]
    return link | {
        "product_id": None if link["product_id"] is None else str(link["product_id"]),
        "creator_id": str(link["creator_id"]),
        "merchant_id": str(link["merchant_id"]),
        "touchpoint_id": touchpoint,
    }
