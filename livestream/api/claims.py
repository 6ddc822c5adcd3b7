"""A buyer's claim on a flash deal, as one use case shared by the declared handler and the
route's fast path (livestream.api.claim_fastpath), and where a claim stands afterwards.

The claim is decided by the deal's owner and committed there, carrying what its order needs;
the buyer is answered then, with the claim (state `placing`) and the id its order will have.
The order is placed from the committed claim by a tracked follower
(livestream.engine.placement), usually within milliseconds; `GET .../claims/{claim_id}` says
when it is `placed` (with the order) or `refused` (with why; the units went back to the deal).
Waiting for the order inside the claim put winners' answers at 0.4–3 s in a sale's first
second (BENCHMARKS.md, flash deal).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError
from litestar.concurrency import sync_to_thread
from msgspec import Meta

from commerce.api import schemas
from commerce.api.common import path_uuid
from commerce.domain import ids
from commerce.domain.errors import InvalidInput
from commerce.domain.identity import BuyerIdentity, validate_resident_id
from commerce.domain.orders import Order
from commerce.platform.groupcommit import WriterUnavailable
from commerce.representations import order_view
from commerce.services import ordering
from commerce.services.access import Principal
from commerce.services.idempotency import Answer, Idempotency
from livestream.api.runtime import LivestreamRuntime

MAX_CHECKED_REMEMBERED = 20_000  # claim bodies whose checks passed (checked_once): ~1 KB each
_encode = msgspec.json.Encoder().encode


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


def checked_once(data: ClaimDeal, live: LivestreamRuntime) -> tuple[BuyerIdentity, dict]:
    """`checked`, remembered for a claim body already seen today.

    In a sale a buyer sends the same body again and again, each time with a new key, and
    usually the same body to each deal of a session. Its checks (the resident ID's check digit
    and its peppered hash, the address's fields) were a sixth of a claim's time on the event
    loop in a sale (BENCHMARKS.md, flash deal). The memo is keyed by a hash of the body as
    decoded, never the clear identity, and by the day in China, on which a resident ID's
    checks depend. Refusals are not remembered: they are checked again each time."""
    memo = live.checked_claims
    digest = hashlib.blake2b(_encode(data), digest_size=16).digest()
    key = (digest, ordering.china_today(live.commerce.cfg))
    found = memo.get(key)
    if found is None:
        found = checked(data, live)
        if len(memo) >= MAX_CHECKED_REMEMBERED:
            memo.clear()
        memo[key] = found
    identity, address = found
    return identity, dict(address)


async def claim(
    live: LivestreamRuntime,
    principal: Principal,
    deal_id: str,
    data: ClaimDeal,
    idempotency: Idempotency,
) -> Answer:
    """The claim as committed (201), or for a retried key the claim as first committed, with
    where it stands now (201 whether since paid, lapsed, released or its order refused).
    Refusals record nothing: a retried key that was refused is decided afresh."""
    did = path_uuid(deal_id, "deal")
    identity, address = checked_once(data, live)
    # What the deal's owner already knows it would refuse (sold out, the buyer at the limit) is
    # refused at once, and never shed: only claims that need the writer go through admission.
    claim_id = idempotency.resource_id("claim")
    live.engine.refuse_fast(did, principal.id, claim_id, data.quantity)
    ticket = live.admission.admit()
    if ticket is None:  # this process is not keeping up (livestream.api.admission)
        raise WriterUnavailable("too many claims in progress; retry")
    try:
        return await _claim(live, principal, did, claim_id, data, idempotency, identity, address)
    finally:
        live.admission.done(ticket)


async def _claim(
    live: LivestreamRuntime,
    principal: Principal,
    did: UUID,
    claim_id: UUID,
    data: ClaimDeal,
    idempotency: Idempotency,
    identity: BuyerIdentity,
    address: dict,
) -> Answer:
    order = {  # what the order is placed from; the clear resident id goes to the vault only
        "identity": {
            "name_masked": identity.name_masked,
            "resident_id_masked": identity.resident_id_masked,
            "identity_hash": identity.identity_hash,
        },
        "address": address,
        "fingerprint": idempotency.fingerprint,
        "payment_provider": data.payment_provider,
    }
    result = await live.engine.run(
        did, "claim", claim_id=claim_id, buyer_id=principal.id, quantity=data.quantity, order=order
    )
    deal, claim = result["deal"], result["claim"]
    order_id = ids.claim_order_id(claim_id)
    if not result["new"]:  # a retried key: the claim as first answered, and where it stands
        return Answer(201, await standing(live, did, result, order_id), replayed=True)
    resident_id = validate_resident_id(data.identity.resident_id)
    live.commerce.vault.put_soon(order_id, data.identity.name, resident_id)
    await live.deal_room.claimed(deal, claim["quantity"], identity.name_masked)
    return Answer(201, claim_view(did, claim, "placing", order_id, deal))


def claim_view(
    deal_id: UUID,
    claim: dict[str, Any],
    state: str,
    order_id: UUID,
    deal: dict[str, Any],
    order: dict[str, Any] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "id": claim["id"],
        "deal_id": str(deal_id),
        "quantity": claim["quantity"],
        "pay_by": claim["pay_by"],
        "held_until": claim["held_until"],
        "state": state,
        "reason": reason,
        "order_id": str(order_id),
        "order": order,
        "deal": deal,
    }


async def claim_state(
    live: LivestreamRuntime, principal: Principal, deal_id: str, claim_id: str
) -> dict[str, Any]:
    """The buyer's own claim: `placing` until its order is placed, then `placed` with the
    order; `refused` (with why) if the order was refused; `released` if the claim ended with
    no order (it lapsed first). Someone else's claim looks like no claim at all."""
    did, cid = path_uuid(deal_id, "deal"), path_uuid(claim_id, "claim")
    known = await live.engine.run(did, "claim_state", claim_id=cid, buyer_id=principal.id)
    return await standing(live, did, known, ids.claim_order_id(cid))


async def standing(
    live: LivestreamRuntime, did: UUID, known: dict[str, Any], order_id: UUID
) -> dict[str, Any]:
    """A recorded claim as the deal first answered it (livestream.engine.commands: its id,
    quantity, `pay_by`, `held_until`), with where it stands now: the same for a retried key
    (201) as for `GET .../claims/{claim_id}`."""
    order = await sync_to_thread(_order_of, live, order_id)
    state = "placed" if order is not None else known["state"]
    if state in ("held", "paid"):
        state = "placing"
    return claim_view(
        did, known["claim"], state, order_id, known["deal"], order, known.get("reason")
    )


def _order_of(live: LivestreamRuntime, order_id: UUID) -> dict[str, Any] | None:
    try:
        order = live.commerce.app.repository.get(order_id)
    except AggregateNotFoundError:
        return None
    return order_view(order, live.commerce.cfg.clock()) if isinstance(order, Order) else None
