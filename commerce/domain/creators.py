"""Creators (KOLs), the merchants they work with, and their referral links and promo codes.

A creator is a buyer account with a role, so one person never has two creator ids
(`ids.creator_id(user_id)`). Their identity hashes are the same peppered HMAC as an order's, so
the attribution projection can refuse credit when a creator buys through their own link or code
under another account (research/commerce.md §2.4). Rates are basis points, snapshotted on each
link and code: a later change to the creator's rate never rewrites what was promised.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from commerce.domain.errors import Conflict, InvalidInput, NotFound

MAX_RATE_BP = 5_000  # 50 %: beyond that it is not a commission but a resale
MAX_WINDOW = timedelta(days=366)
LINK_CODE = re.compile(r"[A-Za-z0-9_-]{3,32}", re.ASCII)
PROMO_CODE = re.compile(r"[A-Z0-9_-]{3,32}", re.ASCII)


def validate_rate(rate_bp: int, field: str = "commission_rate_bp") -> int:
    if isinstance(rate_bp, bool) or not 0 <= rate_bp <= MAX_RATE_BP:
        raise InvalidInput(f"must be from 0 to {MAX_RATE_BP} basis points", field=field)
    return rate_bp


def validate_window(valid_from: datetime, valid_until: datetime, now: datetime) -> None:
    if valid_until <= valid_from:
        raise InvalidInput("must be after valid_from", field="valid_until")
    if valid_until <= now:
        raise InvalidInput("must be in the future", field="valid_until")
    if valid_until - valid_from > MAX_WINDOW:
        raise InvalidInput("a validity window is at most 366 days", field="valid_until")


def link_code(code: str) -> str:
    """Referral link codes sit in URLs and are matched exactly, as URL paths are."""
    if not LINK_CODE.fullmatch(code):
        raise InvalidInput("3 to 32 letters, digits, '_' or '-'", field="code")
    return code


def promo_code(code: str, field: str = "code") -> str:
    """Promo codes are typed by buyers, so any case finds the code; stored upper-case."""
    normalised = code.strip().upper()
    if not PROMO_CODE.fullmatch(normalised):
        raise InvalidInput("3 to 32 letters, digits, '_' or '-'", field=field)
    return normalised


class Creator(Aggregate):
    TOPIC = "commerce.Creator"
    id: UUID  # ids.creator_id(user_id)

    class Created(Aggregate.Created):  # unused; the library wants every event class named
        TOPIC = "commerce.Creator.Created"

    @event("Registered", topic="commerce.Creator.Registered")
    def __init__(
        self, user_id: UUID, display_name: str, identity_hashes: list[str], at: datetime
    ) -> None:
        self.user_id = user_id
        self.display_name = display_name
        self.identity_hashes = list(identity_hashes)
        self.merchants: dict[UUID, int] = {}  # merchant id → commission rate (bp)

    def rate_with(self, merchant_id: UUID) -> int:
        """The creator as a given merchant sees them: not linked looks like no creator at all."""
        if merchant_id not in self.merchants:
            raise NotFound("no such creator", field="creator_id")
        return self.merchants[merchant_id]

    def link(self, merchant_id: UUID, commission_rate_bp: int, now: datetime) -> bool:
        validate_rate(commission_rate_bp)
        if self.merchants.get(merchant_id) == commission_rate_bp:
            return False
        self._linked(merchant_id, commission_rate_bp, now)
        return True

    @event("LinkedToMerchant", topic="commerce.Creator.LinkedToMerchant")
    def _linked(self, merchant_id: UUID, commission_rate_bp: int, at: datetime) -> None:
        self.merchants[merchant_id] = commission_rate_bp

    def unlink(self, merchant_id: UUID, now: datetime) -> None:
        self.rate_with(merchant_id)
        self._unlinked(merchant_id, now)

    @event("UnlinkedFromMerchant", topic="commerce.Creator.UnlinkedFromMerchant")
    def _unlinked(self, merchant_id: UUID, at: datetime) -> None:
        del self.merchants[merchant_id]

    def identify(self, identity_hash: str | None, now: datetime) -> bool:
        """Add the identity a creator registered without; never swap one that self-referral
        checks already rely on."""
        if not identity_hash or identity_hash in self.identity_hashes:
            return False
        if self.identity_hashes:
            raise Conflict(
                "this creator is registered with a different identity", field="resident_id"
            )
        self._identified(identity_hash, now)
        return True

    @event("IdentityAdded", topic="commerce.Creator.IdentityAdded")
    def _identified(self, identity_hash: str, at: datetime) -> None:
        self.identity_hashes.append(identity_hash)


class _Offer:
    """What links and codes share: an owner, a creator, a rate and a validity window (a mixin,
    not an aggregate: each has its own stream and topics)."""

    def refusal(self, now: datetime) -> str | None:
        """Why the offer cannot be used now, or None."""
        if self.revoked_at is not None:
            return "has been revoked"
        if now < self.valid_from:
            return "is not valid yet"
        if now >= self.valid_until:
            return "has expired"
        return None

    def require_owner(self, merchant_id: UUID, what: str) -> None:
        if self.merchant_id != merchant_id:
            raise NotFound(f"no such {what}", field="code")

    def revoke(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        self._revoked(now)
        return True

    def _revoked(self, at: datetime) -> None:
        raise NotImplementedError


class ReferralLink(_Offer, Aggregate):
    TOPIC = "commerce.ReferralLink"
    id: UUID  # ids.referral_link_id(code)

    @event("Created", topic="commerce.ReferralLink.Created")
    def __init__(
        self,
        code: str,
        creator_id: UUID,
        merchant_id: UUID,
        product_id: UUID | None,
        commission_rate_bp: int,
        valid_from: datetime,
        valid_until: datetime,
        at: datetime,
    ) -> None:
        self.code = code
        self.creator_id = creator_id
        self.merchant_id = merchant_id
        self.product_id = product_id
        self.commission_rate_bp = commission_rate_bp
        self.valid_from = valid_from
        self.valid_until = valid_until
        self.created_at = at
        self.revoked_at = None

    @event("Revoked", topic="commerce.ReferralLink.Revoked")
    def _revoked(self, at: datetime) -> None:
        self.revoked_at = at


class PromoCode(_Offer, Aggregate):
    TOPIC = "commerce.PromoCode"
    id: UUID  # ids.promo_code_id(code)

    @event("Created", topic="commerce.PromoCode.Created")
    def __init__(
        self,
        code: str,
        creator_id: UUID,
        merchant_id: UUID,
        percent_off: int,
        commission_rate_bp: int,
        valid_from: datetime,
        valid_until: datetime,
        at: datetime,
    ) -> None:
        self.code = code
        self.creator_id = creator_id
        self.merchant_id = merchant_id
        self.percent_off = percent_off
        self.commission_rate_bp = commission_rate_bp
        self.valid_from = valid_from
        self.valid_until = valid_until
        self.created_at = at
        self.revoked_at = None

    @staticmethod
    def validate_percent_off(percent_off: int) -> int:
        if isinstance(percent_off, bool) or not 1 <= percent_off <= 50:
            raise InvalidInput("must be from 1 to 50", field="percent_off")
        return percent_off

    @event("Revoked", topic="commerce.PromoCode.Revoked")
    def _revoked(self, at: datetime) -> None:
        self.revoked_at = at
