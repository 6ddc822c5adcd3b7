"""Who is asking, and what they may touch."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from commerce.domain.errors import NotFound

ADMIN, MERCHANT, BUYER = "admin", "merchant", "buyer"


@dataclass(frozen=True)
class Principal:
    kind: str
    id: UUID | None = None

    @property
    def name(self) -> str:
        """Stable string for scoping idempotency keys and recording who did what."""
        return self.kind if self.id is None else f"{self.kind}:{self.id}"


def require_order_access(principal: Principal, merchant_id: UUID, buyer_id: UUID) -> None:
    """Buyers see their own orders, merchants theirs; anything else looks like no order at all."""
    if principal.kind == ADMIN:
        return
    if principal.kind == MERCHANT and principal.id == merchant_id:
        return
    if principal.kind == BUYER and principal.id == buyer_id:
        return
    raise NotFound("no such order", field="order_id")
