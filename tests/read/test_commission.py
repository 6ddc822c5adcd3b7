"""Commission states and refund clawback: before the lock it claws back, after it only notes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.read.attribution import (
    AttributionConfig,
    OrderFacts,
    Touchpoint,
    TouchpointKind,
    attribute,
)
from projections.read.commission import (
    Commission,
    CommissionState,
    CommissionStateError,
    open_commissions,
)

PLACED = datetime(2026, 11, 11, 20, 0, tzinfo=UTC)
LOCK_AT = PLACED + timedelta(days=15)
BEFORE_LOCK = PLACED + timedelta(days=3)
AFTER_LOCK = LOCK_AT + timedelta(hours=1)


def commission(original: int = 1_000, base: int = 10_000) -> Commission:
    return Commission("o-1", "alice", base, original, original, LOCK_AT)


# (case id, refunds as (fen, at), lock first?, amount after, state after, adjustments noted)
REFUNDS = [
    ("partial refund before lock", [(2_500, BEFORE_LOCK)], False, 750, "pending", 0),
    (
        "two partial refunds before lock add up",
        [(2_500, BEFORE_LOCK), (2_500, BEFORE_LOCK)],
        False,
        500,
        "pending",
        0,
    ),
    ("full refund before lock reverses", [(10_000, BEFORE_LOCK)], False, 0, "reversed", 0),
    (
        "partial then the rest reverses",
        [(3_000, BEFORE_LOCK), (7_000, BEFORE_LOCK)],
        False,
        0,
        "reversed",
        0,
    ),
    (
        "refund after lock time claws nothing back",
        [(5_000, AFTER_LOCK)],
        False,
        1_000,
        "pending",
        1,
    ),
    ("full refund after locking is only noted", [(10_000, AFTER_LOCK)], True, 1_000, "locked", 1),
    (
        "partial before, partial after locking",
        [(2_000, BEFORE_LOCK), (2_000, AFTER_LOCK)],
        False,
        800,
        "pending",
        1,
    ),
]


@pytest.mark.parametrize(
    ("refunds", "lock_first", "amount", "state", "adjustments"),
    [pytest.param(*case[1:], id=case[0]) for case in REFUNDS],
)
def test_refund_table(refunds, lock_first, amount, state, adjustments):
    current = commission()
    if lock_first:
        current = current.lock_if_due(LOCK_AT)
    for fen, at in refunds:
        current = current.refund(fen, at)
    assert (current.amount_fen, current.state.value, len(current.adjustments)) == (
        amount,
        state,
        adjustments,
    )


def test_adjustment_records_what_was_not_recovered():
    locked = commission().lock_if_due(LOCK_AT)
    after = locked.refund(4_000, AFTER_LOCK)
    assert after.amount_fen == 1_000 and after.refunded_fen == 4_000
    (adjustment,) = after.adjustments
    assert (adjustment.refunded_fen, adjustment.unrecovered_fen) == (4_000, 400)
    assert "no clawback" in adjustment.note


def test_pending_locks_only_when_due_then_becomes_payable():
    pending = commission()
    assert pending.lock_if_due(LOCK_AT - timedelta(seconds=1)) is pending
    locked = pending.lock_if_due(LOCK_AT)
    assert locked.state is CommissionState.LOCKED
    assert locked.make_payable().state is CommissionState.PAYABLE
    with pytest.raises(CommissionStateError):
        pending.make_payable()
    reversed_ = pending.refund(10_000, BEFORE_LOCK)
    assert reversed_.lock_if_due(AFTER_LOCK).state is CommissionState.REVERSED
    with pytest.raises(CommissionStateError):
        reversed_.refund(0, AFTER_LOCK)


def test_refunds_cannot_exceed_the_order():
    with pytest.raises(ValueError, match="exceed"):
        commission().refund(6_000, BEFORE_LOCK).refund(4_001, BEFORE_LOCK)
    with pytest.raises(ValueError, match="negative"):
        commission().refund(-1, BEFORE_LOCK)


def test_open_commissions_follow_the_decision():
    touchpoints = [
        Touchpoint("a", TouchpointKind.NOTE_CLICK, "alice", PLACED - timedelta(days=1)),
    ]
    facts = OrderFacts("o-9", "buyer", PLACED, paid_fen=20_000, tax_fen=2_000)
    decision = attribute(touchpoints, facts, AttributionConfig())
    (opened,) = open_commissions(decision)
    assert (opened.creator_id, opened.base_fen, opened.amount_fen) == ("alice", 18_000, 1_800)
    assert opened.state is CommissionState.PENDING and opened.lock_at == LOCK_AT
    delivered = PLACED + timedelta(days=6)
    (relocked,) = open_commissions(decision, lock_at=delivered + timedelta(days=7))
    assert relocked.lock_at == PLACED + timedelta(days=13)


@given(
    original=st.integers(0, 100_000),
    base=st.integers(1, 1_000_000),
    cuts=st.lists(st.integers(0, 100), max_size=6),
    lock_after=st.integers(0, 6),
)
def test_clawback_never_grows_and_stops_at_the_lock(original, base, cuts, lock_after):
    current = Commission("o", "c", base, original, original, LOCK_AT)
    for step, cut in enumerate(cuts):
        fen = min(base * cut // 100, base - current.refunded_fen)
        at = BEFORE_LOCK if step < lock_after else AFTER_LOCK
        before = current
        if current.state is CommissionState.REVERSED:
            break
        current = current.refund(fen, at)
        assert 0 <= current.amount_fen <= before.amount_fen
        if at >= LOCK_AT:
            assert current.amount_fen == before.amount_fen
        else:
            assert current.amount_fen == original * (base - current.refunded_fen) // base
