"""A creator's commission on one order: pending → locked → payable, with refund clawback.

A commission stays `pending` through the refund window (research/commerce.md §2.5). A refund
inside the window claws back pro rata, and a full refund reverses the commission. Once the
commission is locked its amount is final: a later refund changes nothing here and only records
an adjustment, which a person settles in a later payout (impact.com calls this a "make-good").

Locking and payability are moments in time, not events: nothing is recorded when a window
closes. A read model stores `lock_at` and `payable_at` and derives the state when it is read
(`state_at`), as the commerce domain derives an order's expiry from its deadline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, tzinfo
from enum import StrEnum

from projections.read.attribution import AttributionDecision


class CommissionState(StrEnum):
    PENDING = "pending"
    LOCKED = "locked"
    PAYABLE = "payable"
    REVERSED = "reversed"


class CommissionStateError(ValueError):
    pass


# Before delivery the after-sales window has not started, so nothing can lock yet.
NOT_YET = datetime.max.replace(tzinfo=UTC)


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


def refunded_base(base_fen: int, total_fen: int, refunded_total_fen: int) -> int:
    """How much of the commissionable base `refunded_total_fen` (tax included) gave back.

    Pro rata on the running total, so partial refunds never drift and a full refund returns
    exactly the whole base.
    """
    if total_fen <= 0:
        return 0
    return base_fen * min(refunded_total_fen, total_fen) // total_fen


def payable_from(lock_at: datetime, payout_day: int, tz: tzinfo = UTC) -> datetime:
    """The first payout date (day `payout_day` of a month, midnight in `tz`) at or after the lock.

    Creators are paid in monthly runs (impact.com: "paid on the 15th"), so a locked commission
    waits for the next run instead of becoming payable the moment it locks.
    """
    if not 1 <= payout_day <= 28:
        raise ValueError("payout_day must be from 1 to 28, so every month has it")
    if lock_at >= NOT_YET:
        return NOT_YET
    local = lock_at.astimezone(tz)
    run = datetime.combine(local.date().replace(day=payout_day), time(), tz)
    if run < local:
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        run = run.replace(year=year, month=month)
    return run


def state_at(
    recorded: CommissionState, lock_at: datetime, payable_at: datetime, now: datetime
) -> CommissionState:
    """The state as of `now`: a pending commission is locked once its lock time has passed and
    payable from the payout date on; a reversed one stays reversed."""
    if recorded is not CommissionState.PENDING or now < lock_at:
        return recorded
    return CommissionState.PAYABLE if now >= payable_at else CommissionState.LOCKED


def to_record(c: Commission) -> dict:
    """A JSON-ready record of the commission, for a read model's row."""
    return {
        "base_fen": c.base_fen,
        "original_fen": c.original_fen,
        "amount_fen": c.amount_fen,
        "refunded_fen": c.refunded_fen,
        "state": c.state.value,
        "lock_at": None if c.lock_at >= NOT_YET else c.lock_at.isoformat(),
        "adjustments": [
            {
                "at": a.at.isoformat(),
                "refunded_fen": a.refunded_fen,
                "unrecovered_fen": a.unrecovered_fen,
                "note": a.note,
            }
            for a in c.adjustments
        ],
    }


def from_record(order_id: str, creator_id: str, r: dict) -> Commission:
    return Commission(
        order_id=order_id,
        creator_id=creator_id,
        base_fen=r["base_fen"],
        original_fen=r["original_fen"],
        amount_fen=r["amount_fen"],
        lock_at=NOT_YET if r["lock_at"] is None else datetime.fromisoformat(r["lock_at"]),
        state=CommissionState(r["state"]),
        refunded_fen=r["refunded_fen"],
        adjustments=tuple(
            Adjustment(
                datetime.fromisoformat(a["at"]), a["refunded_fen"], a["unrecovered_fen"], a["note"]
            )
            for a in r["adjustments"]
        ),
    )


def refund_record(
    order_id: str, creator_id: str, r: dict, total_fen: int, before: int, after: int, at: datetime
) -> dict:
    """Apply a refund that took the order's refunded total (tax included) from `before` to
    `after`: the commissionable part of it claws back, or is noted once the lock has passed."""
    current = from_record(order_id, creator_id, r)
    base = current.base_fen
    delta = refunded_base(base, total_fen, after) - refunded_base(base, total_fen, before)
    return r | to_record(current.refund(delta, at))
