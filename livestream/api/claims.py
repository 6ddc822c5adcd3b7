"""A buyer's claim on a flash deal, as one use case shared by the declared handler and the
route's fast path (livestream.api.claim_fastpath).

The claim is decided by the deal's owner and committed there; then its order is committed in
the commerce store; only then is the buyer answered. If the order is refused (the buyer's
annual CBEC allowance, say), the claim is released before the refusal is answered.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any
from uuid import UUID

import msgspec
from msgspec import Meta

from commerce.api import schemas
from commerce.api.common import path_uuid
from commerce.domain import ids
from commerce.domain.errors import InvalidInput
from commerce.domain.identity import BuyerIdentity, validate_resident_id
from commerce.platform.groupcommit import WriterUnavailable
from commerce.services import deal_orders, ordering
from commerce.services.access import Principal
from commerce.services.idempotency import Answer, Idempotency
from livestream.api.runtime import LivestreamRuntime

MAX_CLAIMS_IN_FLIGHT = 256  # per process: about what one process commits in a second


class ClaimDeal(msgspec.Struct, forbid_unknown_fields=True):
    identity: schemas.Identity
    address: schemas.Address
    quantity: int = 1
    payment_provider: Annotated[str, Meta(max_length=32)] | None = None


def checked(data: ClaimDeal, live: LivestreamRuntime) -> tuple[BuyerIdentity, dict]:
    """The claim's own checks, before anything is asked of the deal (raise InvalidInput)."""
    if not 1 <= data.quantity <= 999:
        raise InvalidInput("must be from 1 to 999", field="quantity")
    identity = ordering.identify(live.commerce.cfg, data.identity.name, data.identity.resident_id)
    address = {f: getattr(data.address, f) for f in data.address.__struct_fields__}
    ordering.validate_address(address)
    return identity, address


async def claim(
    live: LivestreamRuntime,
    principal: Principal,
    deal_id: str,
    data: ClaimDeal,
    idempotency: Idempotency,
) -> tuple[Answer, dict[str, Any]]:
    """The placed order's answer and what the claim adds to it (the claim and the deal)."""
    did = path_uuid(deal_id, "deal")
    identity, address = checked(data, live)
    # What the deal's owner already knows it would refuse (sold out, the buyer at the limit) is
    # refused at once, and never shed: only claims that need the writer count against the cap.
    claim_id = idempotency.resource_id("claim")
    live.engine.refuse_fast(did, principal.id, claim_id, data.quantity)
    if live.claims_in_flight >= MAX_CLAIMS_IN_FLIGHT:
        # shed load early: past this, answers arrive after the buyer's client gave up
        raise WriterUnavailable("too many claims in progress; retry")
    live.claims_in_flight += 1
    try:
        return await _claim(live, principal, did, claim_id, data, idempotency, identity, address)
    finally:
        live.claims_in_flight -= 1


async def _claim(
    live: LivestreamRuntime,
    principal: Principal,
    did: UUID,
    claim_id: UUID,
    data: ClaimDeal,
    idempotency: Idempotency,
    identity: BuyerIdentity,
    address: dict,
) -> tuple[Answer, dict[str, Any]]:
    cfg = live.commerce.cfg
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
    return placed, {"claim": claim, "deal": deal}
