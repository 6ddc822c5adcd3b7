"""Creators (KOLs), their links to merchants, referral links and promo codes: use cases run by
the group-commit writer as `fn(uow, cfg, ...)`, plus the promo code's part in a checkout."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from commerce.config import CHINA, CommerceConfig
from commerce.domain import ids
from commerce.domain.accounts import Buyer
from commerce.domain.creators import (
    Creator,
    PromoCode,
    ReferralLink,
    link_code,
    promo_code,
    validate_rate,
    validate_window,
)
from commerce.domain.errors import Conflict, InvalidInput, NotFound
from commerce.domain.identity import InvalidResidentId, identity_hash, validate_resident_id
from commerce.domain.journeys import PROMO_CODE, touchpoint
from commerce.domain.merchants import Merchant, Product
from commerce.platform.unit_of_work import UnitOfWork
from commerce.services.access import MERCHANT, Principal
from commerce.services.idempotency import Answer, Idempotency, once
from commerce.services.social import iso, journey


def creator_view(creator: Creator, merchant_id: UUID | None = None) -> dict:
    """A merchant sees only its own link; an admin sees them all."""
    links = [
        {"merchant_id": str(m), "commission_rate_bp": rate}
        for m, rate in creator.merchants.items()
        if merchant_id is None or m == merchant_id
    ]
    return {
        "id": str(creator.id),
        "user_id": str(creator.user_id),
        "display_name": creator.display_name,
        "identity_registered": bool(creator.identity_hashes),
        "merchants": links,
    }


def offer_view(offer: ReferralLink | PromoCode, now: datetime) -> dict:
    view = {
        "code": offer.code,
        "creator_id": str(offer.creator_id),
        "merchant_id": str(offer.merchant_id),
        "commission_rate_bp": offer.commission_rate_bp,
        "valid_from": iso(offer.valid_from),
        "valid_until": iso(offer.valid_until),
        "revoked_at": iso(offer.revoked_at),
        "usable": offer.refusal(now) is None,
    }
    if isinstance(offer, ReferralLink):
        pid = offer.product_id
        return view | {"product_id": str(pid) if pid else None, "url": f"/r/{offer.code}"}
    return view | {"percent_off": offer.percent_off}


# -- creators ---------------------------------------------------------------------------------
def creator_identity(cfg: CommerceConfig, resident_id: str | None) -> str | None:
    """The same peppered hash as an order's identity, computed outside the writer like
    ordering.identify; the resident ID itself goes no further."""
    if resident_id is None:
        return None
    today = cfg.clock().astimezone(CHINA).date()
    try:
        return identity_hash(validate_resident_id(resident_id, today=today), cfg.identity_pepper)
    except InvalidResidentId as exc:
        raise InvalidInput(exc.reason, field="resident_id") from None


def register_creator(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    idem: Idempotency | None,
    by: Principal,
    user_id: UUID,
    display_name: str | None,
    identity: str | None,
    merchant_id: UUID | None,
    rate_bp: int | None,
) -> Answer:
    """Register a buyer account as a creator (once) and link it to the merchant. A merchant
    always links to itself; an admin may name a merchant or only register."""

    def create() -> Answer:
        buyer = uow.get(user_id, Buyer)
        if buyer is None:
            raise NotFound("no such buyer account", field="user_id")
        merchant = by.id if by.kind == MERCHANT else merchant_id
        if merchant is not None and uow.get(merchant, Merchant) is None:
            raise NotFound("no such merchant", field="merchant_id")
        if merchant is not None and rate_bp is None:
            raise InvalidInput(
                "a creator works with a merchant at a rate", field="commission_rate_bp"
            )
        if rate_bp is not None:
            validate_rate(rate_bp)
        name = (display_name if display_name is not None else buyer.display_name).strip()
        if not 0 < len(name) <= 64:
            raise InvalidInput("must be 1 to 64 characters", field="display_name")
        now = cfg.clock()
        creator = uow.get(ids.creator_id(user_id), Creator)
        status = 200
        if creator is None:
            hashes = [identity] if identity else []
            creator = Creator(
                id=ids.creator_id(user_id),
                user_id=user_id,
                display_name=name,
                identity_hashes=hashes,
                at=now,
            )
            uow.add(creator)
            status = 201
        creator.identify(identity, now)
        if merchant is not None and rate_bp is not None:
            creator.link(merchant, rate_bp, now)
        return Answer(status, creator_view(creator, merchant if by.kind == MERCHANT else None))

    return once(uow, idem, create)


def _creator(uow: UnitOfWork, creator_id: UUID, merchant_id: UUID | None) -> Creator:
    """`merchant_id` None is an admin, who sees every creator."""
    creator = uow.get(creator_id, Creator)
    if creator is None:
        raise NotFound("no such creator", field="creator_id")
    if merchant_id is not None:
        creator.rate_with(merchant_id)
    return creator


def get_creator(
    uow: UnitOfWork, cfg: CommerceConfig, merchant_id: UUID | None, creator_id: UUID
) -> dict:
    return creator_view(_creator(uow, creator_id, merchant_id), merchant_id)


def unlink_creator(
    uow: UnitOfWork, cfg: CommerceConfig, merchant_id: UUID, creator_id: UUID
) -> None:
    _creator(uow, creator_id, merchant_id).unlink(merchant_id, cfg.clock())


# -- referral links and promo codes -------------------------------------------------------------
def create_offer(
    uow: UnitOfWork,
    cfg: CommerceConfig,
    idem: Idempotency | None,
    merchant_id: UUID,
    terms: dict,
) -> Answer:
    """A referral link (`terms` has `product_id`) or a promo code (`percent_off`) for one of
    the merchant's creators. The rate defaults to the creator's rate with the merchant."""

    def create() -> Answer:
        is_link = "product_id" in terms
        code = link_code(terms["code"]) if is_link else promo_code(terms["code"])
        creator = _creator(uow, terms["creator_id"], merchant_id)
        rate = terms.get("commission_rate_bp")
        rate = validate_rate(creator.rate_with(merchant_id) if rate is None else rate)
        now = cfg.clock()
        valid_from = terms.get("valid_from") or now
        validate_window(valid_from, terms["valid_until"], now)
        offer_id = ids.referral_link_id(code) if is_link else ids.promo_code_id(code)
        if uow.get(offer_id) is not None:
            raise Conflict("this code is taken", field="code")
        common = {
            "id": offer_id,
            "code": code,
            "creator_id": creator.id,
            "merchant_id": merchant_id,
            "commission_rate_bp": rate,
            "valid_from": valid_from,
            "valid_until": terms["valid_until"],
            "at": now,
        }
        if is_link:
            product_id = terms["product_id"]
            product = None if product_id is None else uow.get(product_id, Product)
            if product_id is not None and (product is None or product.merchant_id != merchant_id):
                raise NotFound("no such product", field="product_id")
            offer = uow.add(ReferralLink(product_id=product_id, **common))
        else:
            percent = PromoCode.validate_percent_off(terms["percent_off"])
            offer = uow.add(PromoCode(percent_off=percent, **common))
        return Answer(201, offer_view(offer, now))  # type: ignore[arg-type]

    return once(uow, idem, create)


def _offer(uow: UnitOfWork, kind: type, code: str, merchant_id: UUID) -> ReferralLink | PromoCode:
    what = "referral link" if kind is ReferralLink else "promo code"
    offer_id = ids.referral_link_id(code) if kind is ReferralLink else ids.promo_code_id(code)
    offer = uow.get(offer_id, kind)
    if offer is None:
        raise NotFound(f"no such {what}", field="code")
    offer.require_owner(merchant_id, what)
    return offer


def get_offer(
    uow: UnitOfWork, cfg: CommerceConfig, kind: type, merchant_id: UUID, code: str
) -> dict:
    return offer_view(_offer(uow, kind, code, merchant_id), cfg.clock())


def revoke_offer(
    uow: UnitOfWork, cfg: CommerceConfig, kind: type, merchant_id: UUID, code: str
) -> dict:
    offer, now = _offer(uow, kind, code, merchant_id), cfg.clock()
    offer.revoke(now)
    return offer_view(offer, now)


def follow_referral(uow: UnitOfWork, cfg: CommerceConfig, code: str) -> dict:
    """Where a usable link leads, as anyone clicking it sees it; revoked or expired looks like
    no link at all."""
    link = uow.get(ids.referral_link_id(code), ReferralLink)
    if link is None or link.refusal(cfg.clock()) is not None or not _still_linked(uow, link):
        raise NotFound("no such referral link", field="code")
    return {
        "code": link.code,
        "merchant_id": link.merchant_id,
        "product_id": link.product_id,
        "creator_id": link.creator_id,
    }


def _still_linked(uow: UnitOfWork, offer: ReferralLink | PromoCode) -> bool:
    """A creator the merchant stopped working with earns nothing more from its links or codes."""
    creator = uow.get(offer.creator_id, Creator)
    return creator is not None and offer.merchant_id in creator.merchants


def redeemable_promo(uow: UnitOfWork, code: str, merchant_id: UUID, now: datetime) -> PromoCode:
    """The promo code a checkout names, or InvalidInput naming `promo_code`."""
    normalised = promo_code(code, field="promo_code")
    promo = uow.get(ids.promo_code_id(normalised), PromoCode)
    if promo is None or promo.merchant_id != merchant_id:
        raise InvalidInput("no such promo code for this merchant", field="promo_code")
    refusal = promo.refusal(now)
    if refusal is None and not _still_linked(uow, promo):
        refusal = "is no longer offered: its creator left this merchant"
    if refusal is not None:
        raise InvalidInput(f"this promo code {refusal}", field="promo_code")
    return promo


def redeem_promo(
    uow: UnitOfWork, promo: PromoCode, buyer_id: UUID, discount_fen: int, now: datetime
) -> dict:
    """The order's attribution, with the buyer's `promo_code` touchpoint recorded in the same
    transaction as the order, so attribution never sees one without the other."""
    tp = touchpoint(uuid4(), PROMO_CODE, promo.creator_id, promo.code, None, now)
    journey(uow, buyer_id, now).record([tp])
    return {
        "promo_code": promo.code,
        "creator_id": str(promo.creator_id),
        "percent_off": promo.percent_off,
        "discount_fen": discount_fen,
    }
