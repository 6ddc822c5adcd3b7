"""Live coupons at checkout: an amount off split over the order's lines, and a coupon's uses,
which lapse, confirm and release like stock holds. No database: plain objects and events."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from commerce.domain.coupons import CouponUses
from commerce.domain.errors import Conflict, InvalidTransition
from commerce.domain.pricing import (
    CbecPolicy,
    FreightRates,
    InvalidQuoteInput,
    LineInput,
    ShipmentInput,
    quote_order,
)

T0 = datetime(2026, 11, 11, 20, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)
FX = {"USD": Decimal("7.1")}


def line(sku: str, price: int, quantity: int = 1) -> LineInput:
    return LineInput(sku, quantity, price, "USD", Decimal("0.13"), Decimal(0), 500)


def quote(*shipments: list[LineInput], **off: int):  # type: ignore[no-untyped-def]
    made = [ShipmentInput("bonded", f"wh-{i}", tuple(s)) for i, s in enumerate(shipments)]
    return quote_order(made, FX, FreightRates(), CbecPolicy(), **off)


@given(
    prices=st.lists(st.lists(st.integers(1, 50_000), min_size=1, max_size=4), min_size=1,
                    max_size=3),
    amount=st.integers(1, 3_000_000),
)  # fmt: skip
def test_an_amount_off_is_split_over_the_lines_and_never_exceeds_the_goods(
    prices: list[list[int]], amount: int
) -> None:
    shipments = [[line(f"S{i}{j}", p) for j, p in enumerate(s)] for i, s in enumerate(prices)]
    full, off = quote(*shipments), quote(*shipments, amount_off_fen=amount)
    assert off.discount_fen == min(amount, full.goods_fen)
    assert off.goods_fen == full.goods_fen - off.discount_fen
    for before, after in zip(full.shipments, off.shipments, strict=True):
        for a, b in zip(before.lines, after.lines, strict=True):
            # a line's tax may still rise: freight is shared by goods, and the shares move
            assert 0 <= b.goods_fen <= a.goods_fen
    assert off.total_fen == off.goods_fen + off.freight_fen + off.tax_fen


def test_a_quote_takes_a_percent_or_an_amount_off_not_both() -> None:
    with pytest.raises(InvalidQuoteInput):
        quote([line("S", 1000)], percent_off=10, amount_off_fen=100)


def uses(quantity: int = 2, per_buyer: int = 1) -> CouponUses:
    return CouponUses(
        id=uuid4(), coupon_id=uuid4(), session_id=uuid4(), quantity=quantity,
        per_buyer_limit=per_buyer,
    )  # fmt: skip


def test_a_coupon_is_used_up_and_each_buyer_keeps_to_the_limit() -> None:
    coupon, alice, bob = uses(quantity=2), uuid4(), uuid4()
    coupon.take(uuid4(), alice, T0 + TTL, T0)
    with pytest.raises(Conflict) as refused:
        coupon.take(uuid4(), alice, T0 + TTL, T0)
    assert refused.value.extra["reason"] == "per_buyer_limit"
    coupon.take(uuid4(), bob, T0 + TTL, T0)
    with pytest.raises(Conflict) as refused:
        coupon.take(uuid4(), uuid4(), T0 + TTL, T0)
    assert refused.value.extra["reason"] == "used_up"


def test_an_unpaid_use_lapses_a_paid_one_stays_and_a_released_one_returns() -> None:
    coupon, alice = uses(quantity=1), uuid4()
    first = uuid4()
    coupon.take(first, alice, T0 + TTL, T0)
    assert coupon.left(T0) == 0 and coupon.left(T0 + TTL) == 1
    with pytest.raises(InvalidTransition):
        coupon.confirm(first, T0 + TTL)  # paid too late: the use had lapsed
    second = uuid4()
    coupon.take(second, alice, T0 + 2 * TTL, T0 + TTL)
    coupon.confirm(second, T0 + TTL)
    assert coupon.left(T0 + 10 * TTL) == 0
    coupon.release(second)
    assert coupon.left(T0 + 10 * TTL) == 1
    events = coupon.collect_events()
    assert [type(e).__name__ for e in events] == ["Opened", "Taken", "Taken", "Confirmed",
                                                  "Released"]  # fmt: skip


class CouponUsesMachine(RuleBasedStateMachine):
    """Any mix of takes, payments, cancellations and time passing: live uses never exceed the
    quantity, nor any buyer's the per-buyer limit."""

    def __init__(self) -> None:
        super().__init__()
        self.coupon = uses(quantity=3, per_buyer=2)
        self.now = T0
        self.buyers = [uuid4() for _ in range(3)]
        self.orders: list[tuple[UUID, UUID]] = []

    @rule(buyer=st.integers(0, 2))
    def take(self, buyer: int) -> None:
        order = uuid4()
        try:
            self.coupon.take(order, self.buyers[buyer], self.now + TTL, self.now)
        except Conflict:
            return
        self.orders.append((order, self.buyers[buyer]))

    @rule(pick=st.integers(0, 100))
    def pay(self, pick: int) -> None:
        if self.orders:
            with contextlib.suppress(InvalidTransition):  # paid too late: refused, as it should
                self.coupon.confirm(self.orders[pick % len(self.orders)][0], self.now)

    @rule(pick=st.integers(0, 100))
    def cancel(self, pick: int) -> None:
        if self.orders:
            self.coupon.release(self.orders.pop(pick % len(self.orders))[0])

    @rule(minutes=st.integers(1, 20))
    def wait(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @invariant()
    def within_limits(self) -> None:
        live = self.coupon.uses.live_total(self.now)
        assert 0 <= live <= 3 and self.coupon.left(self.now) == 3 - live
        for buyer in self.buyers:
            held = self.coupon.by_buyer.get(buyer)
            assert held is None or held.live_total(self.now) <= 2


TestCouponUses = CouponUsesMachine.TestCase
