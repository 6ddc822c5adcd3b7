"""A creator's commission on one order: pending → locked → payable, with refund clawback.

A commission stays `pending` through the refund window (research/commerce.md §2.5). A refund
inside the window claws back pro rata, and a full refund reverses the commission. Once the
commission is locked its amount is final: a later refund changes nothing here and only records
an adjustment, which a person settles in a later payout (impact.com calls this a "make-good").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from projections.read.attribution import AttributionDecision


class CommissionState(StrEnum):
    PENDING = "pending"
    LOCKED = "locked"
    PAYABLE = "payable"
    REVERSED = "reversed"


class CommissionStateError(ValueError):
    pass


@dataclass(frozen=True)
class Adjustment:
    """A refund that came after locking: `unrecovered_fen` is what a clawback would have taken."""

    at: datetime
    refunded_fen: int
    unrecovered_fen: int
    note: str


@dataclass(frozen=True)
class Commission:
    order_id: str
    creator_id: str
    base_fen: int  # the order's commissionable amount: paid, after discounts, without tax
    original_fen: int
    amount_fen: int
    lock_at: datetime
    state: CommissionState = CommissionState.PENDING
    refunded_fen: int = 0  # refunded so far, of `base_fen`
    adjustments: tuple[Adjustment, ...] = ()

    def refund(self, refunded_fen: int, at: datetime) -> Commission:
        """Apply one refund of `refunded_fen` (without tax) issued at `at`."""
        if refunded_fen < 0 or self.refunded_fen + refunded_fen > self.base_fen:
            raise ValueError("a refund cannot be negative or exceed what remains of the order")
        refunded = self.refunded_fen + refunded_fen
        clawed = self._amount_after(refunded)
        if self.state is CommissionState.PENDING and at < self.lock_at:
            fully = refunded == self.base_fen
            state = CommissionState.REVERSED if fully else CommissionState.PENDING
            return replace(self, amount_fen=clawed, refunded_fen=refunded, state=state)
        if self.state is CommissionState.REVERSED:
            raise CommissionStateError("a reversed commission has nothing left to refund")
        adjustment = Adjustment(
            at=at,
            refunded_fen=refunded_fen,
            unrecovered_fen=self.amount_fen - clawed,
            note="refund after lock: no clawback; settle as an adjustment in a later payout",
        )
        return replace(self, refunded_fen=refunded, adjustments=(*self.adjustments, adjustment))

    def lock_if_due(self, now: datetime) -> Commission:
        if self.state is CommissionState.PENDING and now >= self.lock_at:
            return replace(self, state=CommissionState.LOCKED)
        return self

    def make_payable(self) -> Commission:
        if self.state is not CommissionState.LOCKED:
            raise CommissionStateError(
                f"only a locked commission can become payable, not {self.state}"
            )
        return replace(self, state=CommissionState.PAYABLE)

    def _amount_after(self, refunded_fen: int) -> int:
        """Pro rata on the original amount, so several partial refunds never drift."""
        if self.base_fen == 0:
            return 0
        return self.original_fen * (self.base_fen - refunded_fen) // self.base_fen


def open_commissions(
    decision: AttributionDecision, lock_at: datetime | None = None
) -> tuple[Commission, ...]:
    """One pending commission per credited creator; pass `lock_at` to lock from delivery instead."""
    return tuple(
        Commission(
            order_id=decision.order_id,
            creator_id=share.creator_id,
            base_fen=decision.commissionable_fen,
            original_fen=share.commission_fen,
            amount_fen=share.commission_fen,
            lock_at=lock_at or decision.lock_at,
        )
        for share in decision.shares
    )
