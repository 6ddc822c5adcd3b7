"""A flash deal driven by hypothesis through any order of claims, payments, releases, sweeps,
closing and the clock moving on, against a plain model of what each claim should do.

The model is deliberately naive (it sums every claim on each step); the deal must agree with it
while keeping its own totals incrementally. Every few steps the deal is saved and read back from
its events, and the run carries on with the copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from commerce.domain.errors import Conflict, InvalidTransition, OutOfStock
from livestream.domain.deals import CLOSED, COUNTING_DOWN, OPEN, FlashDeal

T0 = datetime(2025, 11, 11, 20, 0, tzinfo=UTC)
BUYERS = [UUID(int=n) for n in range(1, 4)]


@dataclass
class ModelClaim:
    buyer: UUID
    quantity: int
    pay_by: datetime
    paid: bool = False
    gone: bool = False  # released or expired

    def counts(self, now: datetime) -> bool:
        return not self.gone and (self.paid or self.pay_by > now)


class FlashDealMachine(RuleBasedStateMachine):
    claim_ids = Bundle("claim_ids")

    @initialize(
        quantity=st.integers(1, 8),
        limit_share=st.floats(0, 1),
        countdown=st.integers(10, 60),
        duration=st.integers(60, 180),
        pay_window=st.integers(30, 120),
    )
    def open_deal(
        self, quantity: int, limit_share: float, countdown: int, duration: int, pay_window: int
    ) -> None:
        self.now = T0
        self.deal = FlashDeal.open(
            session_id=uuid4(),
            merchant_id=uuid4(),
            sku="SUN-50",
            warehouse_id=uuid4(),
            price_fen=9_900,
            quantity=quantity,
            per_buyer_limit=max(1, round(quantity * limit_share)),
            announced_at=T0,
            countdown_seconds=countdown,
            duration_seconds=duration,
            payment_window_seconds=pay_window,
        )
        self.pay_window = timedelta(seconds=pay_window)
        self.claims: dict[UUID, ModelClaim] = {}
        self.closed = False
        self.app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})

    # -- the model -----------------------------------------------------------------------------
    def model_phase(self) -> str:
        if self.closed or self.now >= self.deal.ends_at:
            return CLOSED
        return OPEN if self.now >= self.deal.opens_at else COUNTING_DOWN

    def model_claimed(self, buyer: UUID | None = None) -> int:
        return sum(
            c.quantity
            for c in self.claims.values()
            if c.counts(self.now) and buyer in (None, c.buyer)
        )

    def refused(self, error: type[Exception], command, *args) -> None:  # type: ignore[no-untyped-def]
        """The command must raise `error` (exactly, for Conflict) and record nothing."""
        event(f"{command.__name__} refused: {error.__name__}")
        before = len(self.deal.pending_events)
        with pytest.raises(error) as raised:
            command(*args)
        if error is Conflict:
            assert type(raised.value) is Conflict
        assert len(self.deal.pending_events) == before

    # -- rules ---------------------------------------------------------------------------------
    @rule(seconds=st.integers(0, 30))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule()
    def the_countdown_ends(self) -> None:
        self.now = max(self.now, self.deal.opens_at)

    @rule(claim_id=claim_ids)
    def a_payment_deadline_arrives(self, claim_id: UUID) -> None:
        """Jump to exactly a claim's deadline: the instant it stops counting."""
        claim = self.claims[claim_id]
        if claim.pay_by > self.now:
            self.now = claim.pay_by

    @rule(target=claim_ids, buyer=st.sampled_from(BUYERS), quantity=st.integers(1, 3))
    def claim(self, buyer: UUID, quantity: int) -> MultipleResults[UUID]:
        """Accepted claims join the bundle the other rules draw from; refused ones do not."""
        claim_id = uuid4()
        args = (claim_id, buyer, quantity, self.now)
        left = self.deal.quantity - self.model_claimed()
        if self.model_phase() != OPEN:
            self.refused(InvalidTransition, self.deal.claim, *args)
        elif self.model_claimed(buyer) + quantity > self.deal.per_buyer_limit:
            self.refused(Conflict, self.deal.claim, *args)
        elif quantity > left:
            self.refused(OutOfStock, self.deal.claim, *args)
        else:
            event("claim accepted" + (", sells out" if quantity == left else ""))
            decision = self.deal.claim(*args)
            assert decision.units_left_after == left - quantity
            self.claims[claim_id] = ModelClaim(buyer, quantity, self.now + self.pay_window)
            return multiple(claim_id)
        return multiple()

    @rule(claim_id=claim_ids)
    def pay(self, claim_id: UUID) -> None:
        claim = self.claims[claim_id]
        if claim.gone or (not claim.paid and claim.pay_by <= self.now):
            self.refused(InvalidTransition, self.deal.pay, claim_id, self.now)
        else:
            event("pay accepted")
            self.deal.pay(claim_id, self.now)
            claim.paid = True

    @rule(claim_id=claim_ids)
    def release(self, claim_id: UUID) -> None:
        claim = self.claims[claim_id]
        if claim.paid:
            self.refused(InvalidTransition, self.deal.release, claim_id)
            return
        if not claim.gone:
            event("release accepted")
        self.deal.release(claim_id)
        claim.gone = True

    @rule(claim_id=claim_ids)
    def its_order_is_refused(self, claim_id: UUID) -> None:
        """After the claim's answer, its order is refused (livestream.engine.placement)."""
        claim, why = self.claims[claim_id], "over the CBEC annual allowance"
        if claim.paid:
            self.refused(InvalidTransition, self.deal.release, claim_id, why)
            return
        self.deal.release(claim_id, why)
        if not claim.gone:
            event("order refused after the claim")
            assert self.deal.refusals[claim_id] == why
        claim.gone = True

    @rule(claim_id=claim_ids)
    def sweep(self, claim_id: UUID) -> None:
        claim = self.claims[claim_id]
        lapsed = not claim.gone and not claim.paid and claim.pay_by <= self.now
        assert (claim_id in self.deal.lapsed(self.now)) == lapsed
        self.deal.expire(claim_id, self.now)
        if lapsed:
            event("sweep expired a claim")
            claim.gone = True

    @rule(chance=st.integers(0, 4))
    def close(self, chance: int) -> None:
        """Rarer than the other rules, or most runs would close before anything happens."""
        if chance:
            return
        if self.closed:
            self.refused(InvalidTransition, self.deal.close, self.now)
        else:
            self.deal.close(self.now)
            self.closed = True

    @rule()
    def read_back_from_events(self) -> None:
        self.app.save(self.deal)
        copy = self.app.repository.get(self.deal.id)
        assert copy.version == self.deal.version
        assert dict(copy.claims) == dict(self.deal.claims)
        assert copy.units_left(self.now) == self.deal.units_left(self.now)
        self.deal = copy

    # -- invariants ----------------------------------------------------------------------------
    @invariant()
    def units_are_all_accounted_for(self) -> None:
        claimed, left = self.deal.units_claimed(self.now), self.deal.units_left(self.now)
        assert claimed + left == self.deal.quantity
        assert 0 <= left <= self.deal.quantity
        assert claimed == self.model_claimed()  # a lapsed claim's units are back in the deal

    @invariant()
    def units_sold_never_exceed_the_quantity(self) -> None:
        paid = sum(c.quantity for c in self.claims.values() if c.paid)
        assert 0 <= self.deal.units_paid == paid <= self.deal.quantity

    @invariant()
    def each_buyer_stays_within_the_limit(self) -> None:
        for buyer in BUYERS:
            held = self.deal.units_of(buyer, self.now)
            assert 0 <= held == self.model_claimed(buyer) <= self.deal.per_buyer_limit

    @invariant()
    def the_phase_follows_the_clock(self) -> None:
        assert self.deal.phase(self.now) == self.model_phase()


FlashDealMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestFlashDeal = FlashDealMachine.TestCase
