"""A flash deal as an aggregate: given events, when a command, then facts (or a refusal that
leaves none). Time is passed in: T0 is when the deal was announced, OPENS when its countdown
ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application

from commerce.domain.errors import (
    Conflict,
    InvalidInput,
    InvalidTransition,
    NotFound,
    OutOfStock,
)
from livestream.domain.deals import CLOSED, COUNTING_DOWN, OPEN, FlashDeal, decide_claim

T0 = datetime(2025, 11, 11, 20, 0, tzinfo=UTC)
COUNTDOWN, DURATION, PAY_WINDOW = 30, 300, 120
OPENS = T0 + timedelta(seconds=COUNTDOWN)
ENDS = OPENS + timedelta(seconds=DURATION)
PAY_BY = OPENS + timedelta(seconds=PAY_WINDOW)
ALICE, BOB = UUID(int=1), UUID(int=2)


def deal_fields(**overrides: object) -> dict:
    fields = {
        "session_id": uuid4(),
        "merchant_id": uuid4(),
        "sku": "SUN-50",
        "warehouse_id": uuid4(),
        "price_fen": 9_900,
        "quantity": 5,
        "per_buyer_limit": 2,
        "announced_at": T0,
        "countdown_seconds": COUNTDOWN,
        "duration_seconds": DURATION,
        "payment_window_seconds": PAY_WINDOW,
    }
    return fields | overrides


def given_deal(*claims: tuple[UUID, int], **overrides: object) -> FlashDeal:
    """A deal opened with `overrides`, and (buyer, quantity) claims made as it opened."""
    deal = FlashDeal.open(**deal_fields(**overrides))
    for number, (buyer, quantity) in enumerate(claims, start=1):
        deal.claim(UUID(int=100 + number), buyer, quantity, OPENS)
    deal.collect_events()  # what is given is history; tests look at what happens next
    return deal


def claim_id(number: int) -> UUID:
    """The id given_deal gave its n-th claim."""
    return UUID(int=100 + number)


def recorded(deal: FlashDeal) -> list[str]:
    return [type(e).__name__ for e in deal.collect_events()]


# -- opening -------------------------------------------------------------------------------------


def test_a_deal_counts_down_then_opens_then_closes_when_its_time_is_up() -> None:
    deal = FlashDeal.open(**deal_fields())
    assert recorded(deal) == ["Opened"]
    assert deal.phase(T0) == COUNTING_DOWN
    assert deal.phase(OPENS) == OPEN
    assert deal.phase(ENDS) == CLOSED
    assert deal.units_left(T0) == 5


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("countdown_seconds", 9),
        ("countdown_seconds", 301),
        ("duration_seconds", 59),
        ("duration_seconds", 1201),
        ("quantity", 0),
        ("per_buyer_limit", 6),
        ("price_fen", 0),
        ("sku", " "),
    ],
)
def test_a_deal_outside_the_platform_limits_is_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        FlashDeal.open(**deal_fields(**{field: value}))
    assert refused.value.field == field


def test_a_deterministic_id_is_kept() -> None:
    wanted = uuid4()
    assert FlashDeal.open(id=wanted, **deal_fields()).id == wanted


# -- claiming ------------------------------------------------------------------------------------


def test_a_claim_holds_units_until_its_payment_deadline() -> None:
    deal = given_deal()
    decision = deal.claim(uuid4(), ALICE, 2, OPENS)
    assert recorded(deal) == ["Claimed"]
    assert (decision.pay_by, decision.units_left_after) == (PAY_BY, 3)
    assert (deal.units_claimed(OPENS), deal.units_left(OPENS), deal.units_of(ALICE, OPENS)) == (
        2,
        3,
        2,
    )


def test_claiming_the_last_unit_records_the_sell_out() -> None:
    deal = given_deal((ALICE, 2), (BOB, 2))
    deal.claim(uuid4(), UUID(int=3), 1, OPENS)
    assert recorded(deal) == ["Claimed", "SoldOut"]
    assert deal.units_left(OPENS) == 0
    assert deal.sold_out_at == [OPENS]


def test_a_claim_beyond_the_units_left_is_refused_and_says_how_many_are_left() -> None:
    deal = given_deal((ALICE, 2), (BOB, 2))
    with pytest.raises(OutOfStock) as refused:
        deal.claim(uuid4(), UUID(int=3), 2, OPENS)
    assert refused.value.extra["units_left"] == 1
    assert recorded(deal) == []


def test_the_per_buyer_limit_counts_live_and_paid_claims() -> None:
    deal = given_deal((ALICE, 1), (ALICE, 1))
    deal.pay(claim_id(1), OPENS)
    deal.collect_events()
    with pytest.raises(Conflict) as refused:
        deal.claim(uuid4(), ALICE, 1, OPENS)
    assert not isinstance(refused.value, OutOfStock)
    assert refused.value.extra["already_claimed"] == 2
    assert recorded(deal) == []


@pytest.mark.parametrize(("when", "why"), [(T0, "opens in 30"), (ENDS, "closed")])
def test_claims_before_the_countdown_ends_or_after_time_is_up_are_refused(
    when: datetime, why: str
) -> None:
    deal = given_deal()
    with pytest.raises(InvalidTransition, match=why):
        deal.claim(uuid4(), ALICE, 1, when)
    assert recorded(deal) == []


def test_claims_after_the_host_closed_the_deal_are_refused() -> None:
    deal = given_deal()
    deal.close(OPENS + timedelta(seconds=10))
    assert recorded(deal) == ["Closed"]
    assert deal.close_reason == "host"
    with pytest.raises(InvalidTransition):
        deal.claim(uuid4(), ALICE, 1, OPENS + timedelta(seconds=11))


def test_a_claim_id_is_used_once() -> None:
    deal = given_deal((ALICE, 1))
    with pytest.raises(Conflict):
        deal.claim(claim_id(1), BOB, 1, OPENS)


def test_deciding_a_claim_records_nothing() -> None:
    deal = given_deal()
    decision = decide_claim(deal, ALICE, 2, OPENS)
    assert (decision.quantity, decision.sells_out) == (2, False)
    assert recorded(deal) == []
    assert deal.units_left(OPENS) == 5
    with pytest.raises(InvalidInput):
        decide_claim(deal, ALICE, 0, OPENS)


# -- lapsing, paying, releasing ------------------------------------------------------------------


def test_an_unpaid_claim_stops_counting_at_its_deadline_without_a_sweeper() -> None:
    deal = given_deal((ALICE, 2), (BOB, 2), (UUID(int=3), 1))
    assert deal.units_left(PAY_BY - timedelta(microseconds=1)) == 0
    assert deal.units_left(PAY_BY) == 5
    assert deal.units_of(ALICE, PAY_BY) == 0
    deal.claim(uuid4(), ALICE, 2, PAY_BY)  # the lapsed units are claimable again
    assert recorded(deal) == ["Claimed"]


def test_the_sweeper_records_a_lapse_without_changing_any_count() -> None:
    deal = given_deal((ALICE, 2))
    deal.expire(claim_id(1), PAY_BY - timedelta(seconds=1))  # not lapsed yet: nothing
    assert recorded(deal) == []
    assert deal.lapsed(PAY_BY) == [claim_id(1)]
    deal.expire(claim_id(1), PAY_BY)
    assert recorded(deal) == ["ClaimExpired"]
    assert (deal.units_left(PAY_BY), deal.lapsed(PAY_BY)) == (5, [])


def test_a_paid_claim_counts_for_good() -> None:
    deal = given_deal((ALICE, 2))
    deal.pay(claim_id(1), PAY_BY - timedelta(seconds=1))
    deal.pay(claim_id(1), PAY_BY)  # the provider's retry records nothing more
    assert recorded(deal) == ["ClaimPaid"]
    later = ENDS + timedelta(hours=1)
    assert (deal.units_paid, deal.units_left(later), deal.units_of(ALICE, later)) == (2, 3, 2)


def test_paying_a_lapsed_claim_is_refused() -> None:
    deal = given_deal((ALICE, 2))
    with pytest.raises(InvalidTransition, match="lapsed"):
        deal.pay(claim_id(1), PAY_BY)
    deal.expire(claim_id(1), PAY_BY)
    with pytest.raises(InvalidTransition, match="expired"):
        deal.pay(claim_id(1), PAY_BY)
    with pytest.raises(NotFound):
        deal.pay(uuid4(), PAY_BY)


def test_a_released_claim_returns_its_units_at_once() -> None:
    deal = given_deal((ALICE, 2), (BOB, 2), (UUID(int=3), 1))
    deal.release(claim_id(2))
    deal.release(claim_id(2))  # twice is once
    assert recorded(deal) == ["ClaimReleased"]
    assert (deal.units_left(OPENS), deal.units_of(BOB, OPENS)) == (2, 0)
    with pytest.raises(InvalidTransition):
        deal.pay(claim_id(2), OPENS)


def test_a_claim_whose_order_was_refused_returns_its_units_and_keeps_why() -> None:
    deal = given_deal((ALICE, 2))
    deal.release(claim_id(1), refused="over the 5,000 CNY single-order limit")
    assert recorded(deal) == ["ClaimReleased"]
    assert deal.units_left(OPENS) == 5
    assert deal.refusals == {claim_id(1): "over the 5,000 CNY single-order limit"}


def test_a_paid_claim_cannot_be_released() -> None:
    deal = given_deal((ALICE, 2))
    deal.pay(claim_id(1), OPENS)
    with pytest.raises(InvalidTransition):
        deal.release(claim_id(1))


def test_claims_made_before_close_may_still_be_paid_after_it() -> None:
    deal = given_deal((ALICE, 1))
    deal.close(OPENS + timedelta(seconds=1))
    deal.pay(claim_id(1), OPENS + timedelta(seconds=2))
    assert recorded(deal) == ["Closed", "ClaimPaid"]


def test_closing_when_time_is_up_says_so_and_closing_twice_is_refused() -> None:
    deal = given_deal()
    deal.close(ENDS)
    assert deal.close_reason == "time_up"
    with pytest.raises(InvalidTransition):
        deal.close(ENDS)


# -- the stored form -----------------------------------------------------------------------------


def test_a_deal_read_back_from_its_events_has_the_same_state() -> None:
    deal = FlashDeal.open(**deal_fields())  # every event kept, from Opened on
    order = {"fingerprint": "f1", "identity": {}, "address": {}, "payment_provider": None}
    for number, buyer in enumerate((ALICE, BOB), start=1):
        deal.claim(claim_id(number), buyer, 2, OPENS, order)
    deal.pay(claim_id(1), OPENS)
    deal.claim(uuid4(), UUID(int=3), 1, OPENS)  # as claims were recorded before they carried it
    deal.release(claim_id(2), refused="annual allowance")
    deal.close(OPENS + timedelta(seconds=5))
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.save(deal)
    copy = app.repository.get(deal.id)
    for now in (OPENS, PAY_BY, ENDS):
        assert copy.units_left(now) == deal.units_left(now)
        assert copy.phase(now) == deal.phase(now)
    assert (copy.units_paid, dict(copy.claims), copy.claimants) == (
        deal.units_paid,
        dict(deal.claims),
        deal.claimants,
    )
    assert (copy.opens_at, copy.ends_at, copy.close_reason) == (OPENS, ENDS, "host")
    assert (copy.requests, copy.refusals, copy.terms) == (deal.requests, deal.refusals, deal.terms)
    assert copy.refusals == {claim_id(2): "annual allowance"}
