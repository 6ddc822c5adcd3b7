"""How many uses each live coupon has left, for the session's views and its room.

Uses are counted where they are taken, at checkout in the Commerce context
(commerce.domain.coupons.CouponUses); the session only knows the coupon's terms. A viewer deciding
whether to hurry wants "12 of 50 left", so the session's state, the room's snapshot and a
reliable `coupon.left` event after each change carry it. A coupon no order has named yet has all
its uses; a use held by an unpaid order counts as taken until the order is paid, cancelled or
lapses (and the room hears of the lapse when the expiry sweeper records it).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from commerce.api.runtime import CommerceRuntime
from commerce.domain import ids
from commerce.domain.coupons import CouponUses


async def uses_of(commerce: CommerceRuntime, coupon_id: UUID) -> CouponUses | None:
    return await commerce.read(ids.coupon_uses_id(coupon_id), CouponUses)


async def with_uses_left(commerce: CommerceRuntime, view: dict[str, Any]) -> dict[str, Any]:
    """The session `view` (usecases.session_view) with `left` set on each of its coupons."""
    now = commerce.cfg.clock()
    for coupon in view.get("coupons", ()):
        uses = await uses_of(commerce, UUID(coupon["id"]))
        coupon["left"] = coupon["quantity"] if uses is None else max(uses.left(now), 0)
    return view


async def coupon_left_event(commerce: CommerceRuntime, coupon_id: UUID) -> tuple[str, dict] | None:
    """(room id, data of the `coupon.left` event) for a coupon whose uses changed."""
    uses = await uses_of(commerce, coupon_id)
    if uses is None:
        return None
    left = max(uses.left(commerce.cfg.clock()), 0)
    data = {"coupon_id": str(coupon_id), "left": left, "quantity": uses.quantity}
    return str(uses.session_id), data
