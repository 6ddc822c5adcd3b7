"""Deterministic ids: the aggregate a business key names can be found without an index.

uuid5 of a namespaced key is eventsourcing's own idiom (Aggregate.create_id); a duplicate
create then collides on the (originator_id, version) key instead of writing twice.
"""

from __future__ import annotations

from uuid import UUID, uuid5

NAMESPACE = UUID("5b0e4f8e-3a55-4c55-9a39-6f2b0b4c7a10")


def product_id(merchant_id: UUID, sku: str) -> UUID:
    return uuid5(NAMESPACE, f"product:{merchant_id}:{sku}")


def stock_id(product_id_: UUID, warehouse_id: UUID) -> UUID:
    return uuid5(NAMESPACE, f"stock:{product_id_}:{warehouse_id}")


def fx_rate_id(currency: str) -> UUID:
    return uuid5(NAMESPACE, f"fx:{currency}")


def quota_id(identity_hash: str, year: int) -> UUID:
    return uuid5(NAMESPACE, f"quota:{identity_hash}:{year}")


def idempotency_id(principal: str, key: str) -> UUID:
    return uuid5(NAMESPACE, f"idempotency:{principal}:{key}")


def keyed_id(kind: str, principal: str, key: str) -> UUID:
    """Id of a resource created under an Idempotency-Key, so a replay names the same resource."""
    return uuid5(NAMESPACE, f"{kind}:{principal}:{key}")


def receipt_id(provider: str, provider_event_id: str) -> UUID:
    return uuid5(NAMESPACE, f"receipt:{provider}:{provider_event_id}")


def customs_filing_id(order_id: UUID) -> UUID:
    return uuid5(NAMESPACE, f"customs:{order_id}")


def claim_order_id(claim_id: UUID) -> UUID:
    """The order a flash-deal claim creates: found again from the claim on a retry."""
    return uuid5(NAMESPACE, f"claim-order:{claim_id}")


def creator_id(user_id: UUID) -> UUID:
    """A creator is a buyer account with a role: one creator per account, found by the account."""
    return uuid5(NAMESPACE, f"creator:{user_id}")


def referral_link_id(code: str) -> UUID:
    return uuid5(NAMESPACE, f"referral-link:{code}")


def promo_code_id(code: str) -> UUID:
    """`code` as stored: upper-case, so any spelling a buyer types finds the same code."""
    return uuid5(NAMESPACE, f"promo-code:{code}")


def journey_id(buyer_id: UUID) -> UUID:
    return uuid5(NAMESPACE, f"journey:{buyer_id}")


def review_id(order_id: UUID, product_id: UUID) -> UUID:
    """One review per product per order: posting twice names the same stream."""
    return uuid5(NAMESPACE, f"review:{order_id}:{product_id}")


def coupon_uses_id(coupon_id: UUID) -> UUID:
    """Where a live coupon's uses at checkout are counted (commerce.domain.coupons)."""
    return uuid5(NAMESPACE, f"coupon-uses:{coupon_id}")
