"""What a process knows a flash deal would refuse, so that it can refuse on the event loop.

In a sale nearly every claim after the first second is refused: the deal sold out, or the buyer
already holds the per-buyer limit. Asking the deal's writer (or, from another process, its
owner) for each of those put thousands of needless trips a second in front of the claims that
could still win. So each process keeps, per deal, what the deal's own answers told it: sold out
until the first unpaid claim could lapse, the buyers at the limit, when the deal's time is up,
and every claim id recorded, so that a retried claim still reaches the deal and is answered as
first decided. Until a deal's recorded claims are known, nothing is refused early.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from commerce.domain import errors
from livestream.domain.deals import FlashDeal

_FOREVER = datetime.max.replace(tzinfo=UTC)
MAX_DEALS = 10_000
ENDED_GRACE = timedelta(minutes=1)  # a late claim is still answered "closed" on the spot


def recorded_claims(uow: Any, deal_id: UUID) -> tuple[set[UUID], dict[UUID, dict[str, Any]], Any]:
    """A writer command: every claim id the deal recorded, each buyer one of whose live or
    paid claims alone holds the per-buyer limit (shaped as a claim's answer), and when the
    deal's time is up."""
    deal = uow.get(deal_id, FlashDeal)
    if deal is None:
        return set(), {}, None
    limit, holders = deal.per_buyer_limit, {}
    for claim_id, (quantity, until) in deal.claims.items():
        if quantity >= limit:
            held_until = (until or _FOREVER).isoformat()
            claim = {"id": str(claim_id), "quantity": quantity, "held_until": held_until}
            holders[deal.claimants[claim_id]] = {"deal": {"per_buyer_limit": limit}, "claim": claim}
    return set(deal.claimants), holders, deal.ends_at


class DealKnowledge:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self._sold_out: dict[UUID, tuple[datetime, dict[str, Any]]] = {}  # until, refusal
        self._at_limit: dict[UUID, dict[UUID, dict[str, Any]]] = {}  # by deal, then buyer
        self._known_claims: dict[UUID, set[UUID]] = {}  # by deal
        self._learnt: set[UUID] = set()  # deals whose recorded claims are known
        self._ends_at: dict[UUID, datetime] = {}  # when each deal's time is up
        self._units_back_at: dict[UUID, float] = {}  # when units were last seen coming back

    # -- learning ------------------------------------------------------------------------------
    def learnt(self, deal_id: UUID) -> bool:
        return deal_id in self._learnt

    def deals(self) -> set[UUID]:
        return self._learnt | set(self._sold_out)

    def add_recorded(
        self,
        deal_id: UUID,
        recorded: set[UUID],
        holders: dict[UUID, dict[str, Any]],
        ends_at: datetime | None,
    ) -> None:
        if ends_at is not None:
            self._ends_at.setdefault(deal_id, ends_at)
        self._known_claims.setdefault(deal_id, set()).update(recorded)
        at_limit = self._at_limit.setdefault(deal_id, {})
        for buyer_id, held in holders.items():
            at_limit.setdefault(buyer_id, held)
        self._learnt.add(deal_id)

    def sold_out(self, deal_id: UUID, refusal: errors.OutOfStock) -> None:
        until = refusal.extra.get("until")
        until_at = datetime.fromisoformat(until) if until else _FOREVER
        self._sold_out[deal_id] = (until_at, refusal.extra)

    def answered(self, deal_id: UUID, op: str, args: dict[str, Any], result: Any) -> None:
        """What a deal's answer (its own writer's, or its owner's) tells of later claims."""
        if deal_id not in self._ends_at and "ends_at" in (result.get("deal") or ()):
            self._ends_at[deal_id] = datetime.fromisoformat(result["deal"]["ends_at"])
        if _units_may_be_back(op, result):
            self._sold_out.pop(deal_id, None)
        if op == "claim" and result["new"]:
            self._at_limit.setdefault(deal_id, {})[args["buyer_id"]] = result
            self._known_claims.setdefault(deal_id, set()).add(args["claim_id"])
        if op == "release":
            self._released(deal_id, args["claim_id"])
        elif op == "close" or (op == "tick" and result["closed"]):
            self.forget(deal_id)  # a closed deal refuses as closed, which the writer words

    def _released(self, deal_id: UUID, claim_id: UUID) -> None:
        """A released claim frees its buyer's place under the limit. The rest still holds:
        forgetting all of it here left the deal without fast refusals for the rest of the sale
        (every refusal through the writer, and shed with 503s when the writer was busy)."""
        claim, buyers = str(claim_id), self._at_limit.get(deal_id, {})
        for buyer in [b for b, held in buyers.items() if held["claim"]["id"] == claim]:
            del buyers[buyer]

    def units_back(self, deal_id: UUID) -> None:
        """Units came back to a deal this process does not decide: what it knew may be stale."""
        if len(self._units_back_at) >= MAX_DEALS:
            self._units_back_at.clear()
        self._units_back_at[deal_id] = time.monotonic()
        self.forget(deal_id)

    def units_back_since(self, deal_id: UUID, moment: float) -> bool:
        return self._units_back_at.get(deal_id, -1.0) >= moment

    def forget_ended(self, now: datetime) -> None:
        """Forget deals whose time has been up for a while. The owner forgets a deal when it
        closes it; another process hears of no close, and a sale's claims are thousands of
        entries per deal."""
        for deal_id, ends_at in list(self._ends_at.items()):
            if now >= ends_at + ENDED_GRACE:
                self.forget(deal_id)

    def forget(self, deal_id: UUID) -> None:
        self._ends_at.pop(deal_id, None)
        self._sold_out.pop(deal_id, None)
        self._at_limit.pop(deal_id, None)
        self._known_claims.pop(deal_id, None)
        self._learnt.discard(deal_id)

    # -- refusing ------------------------------------------------------------------------------
    def refuse(self, deal_id: UUID, buyer_id: UUID, claim_id: UUID, quantity: int) -> None:
        """Raise the refusal the deal would give, if it is known; worded as the deal words it
        (decide_claim): closed once its time is up (even before the owner's sweep records it),
        then the buyer at the limit, then sold out."""
        if deal_id not in self._learnt or claim_id in self._known_claims.get(deal_id, ()):
            return
        now = self.clock()
        ends_at = self._ends_at.get(deal_id)
        if ends_at is not None and now >= ends_at:
            raise errors.InvalidTransition("the deal is closed")
        held = self._at_limit.get(deal_id, {}).get(buyer_id)
        if held is not None:
            deal, claim = held["deal"], held["claim"]
            holding = now < datetime.fromisoformat(claim["held_until"])
            if holding and claim["quantity"] >= deal["per_buyer_limit"]:
                raise errors.Conflict(
                    f"at most {deal['per_buyer_limit']} per buyer; {claim['quantity']} already"
                    " claimed",
                    field="quantity",
                    per_buyer_limit=deal["per_buyer_limit"],
                    already_claimed=claim["quantity"],
                )
        sold_out = self._sold_out.get(deal_id)
        if sold_out is not None and now < sold_out[0]:
            extra = sold_out[1]
            raise errors.OutOfStock(f"{extra['sku']}: {quantity} requested, 0 left", **extra)


def _units_may_be_back(op: str, result: dict[str, Any]) -> bool:
    """Whether a sold-out deal may have units again. Not after a payment (a paid unit is sold
    for good), nor after a tick of the owner's sweep (twice a second) that recorded nothing:
    forgetting there sent the next refusal to the writer, where a busy sale shed it with a 503
    instead of answering 409."""
    if op == "tick":
        return bool(result["expired"] or result["closed"])
    return op == "release" or (op == "claim" and bool(result["deal"]["units_left"]))
