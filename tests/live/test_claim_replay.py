"""A retried claim (the same Idempotency-Key, so the same claim id) on the deal's side: given
the deal's events, a claim that won answers as it first did, whatever happened to it since
(paid, lapsed, released, its order refused), and says where it stands now. No database: the
deal is read back from its events in memory before each retry, as an owner that restarted
would read it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application

from commerce.domain.errors import Conflict, IdempotencyKeyReused, OutOfStock
from livestream.domain.deals import FlashDeal
from livestream.engine import commands
from livestream.engine.knowledge import DealKnowledge
from tests.live.test_deals import deal_fields

T0 = datetime(2025, 11, 11, 20, 0, tzinfo=UTC)
COUNTDOWN, DURATION, PAY_WINDOW, GRACE = 30, 300, 120, 30
OPENS = T0 + timedelta(seconds=COUNTDOWN)
ENDS = OPENS + timedelta(seconds=DURATION)
CLAIMED_AT = OPENS + timedelta(seconds=5)
PAY_BY = CLAIMED_AT + timedelta(seconds=PAY_WINDOW)  # the buyer's deadline
HELD_UNTIL = PAY_BY + timedelta(seconds=GRACE)  # the units stay the claim's until then
ALICE, BOB = UUID(int=1), UUID(int=2)
CLAIM = UUID(int=101)
REQUEST = {"fingerprint": "POST /live/deals/…/claims {alice's body}"}


class Uow:
    """What a deal command sees of the store: here, the one deal."""

    def __init__(self, deal: FlashDeal) -> None:
        self.deal = deal

    def get(self, aggregate_id: UUID, kind: type | None = None) -> FlashDeal | None:
        return self.deal if aggregate_id == self.deal.id else None


def given_deal(**overrides: Any) -> FlashDeal:
    terms = {
        "quantity": 2,
        "announced_at": T0,
        "countdown_seconds": COUNTDOWN,
        "duration_seconds": DURATION,
        "payment_window_seconds": PAY_WINDOW,
        "settle_grace_seconds": GRACE,
    }
    return FlashDeal.open(**deal_fields(**(terms | overrides)))


def read_back(deal: FlashDeal) -> FlashDeal:
    """The deal as rebuilt from its events alone."""
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.save(deal)
    return app.repository.get(deal.id)


def claim(
    deal: FlashDeal,
    at: datetime,
    *,
    claim_id: UUID = CLAIM,
    buyer: UUID = ALICE,
    quantity: int = 2,
    request: dict | None = None,
) -> dict[str, Any]:
    """The claim command as the deal's writer runs it (livestream.engine.commands)."""
    return commands.claim(
        Uow(deal), lambda: at, deal.id, claim_id, buyer, quantity, request or REQUEST
    )


def paid(deal: FlashDeal) -> None:
    deal.pay(CLAIM, PAY_BY - timedelta(seconds=1))


def lapsed_unrecorded(deal: FlashDeal) -> None:
    """Nothing recorded: the claim's deadline simply passes (the retry comes later)."""


def lapsed_and_swept(deal: FlashDeal) -> None:
    deal.expire(CLAIM, HELD_UNTIL)


def released(deal: FlashDeal) -> None:  # its order was cancelled before payment
    deal.release(CLAIM)


def order_refused(deal: FlashDeal) -> None:
    deal.release(CLAIM, refused="over the 5,000 CNY single-order limit")


def left_alone(deal: FlashDeal) -> None:
    """Still held, unpaid."""


@pytest.mark.parametrize(
    ("since", "retried_at", "state", "reason"),
    [
        (left_alone, PAY_BY - timedelta(seconds=1), "held", None),
        (paid, ENDS + timedelta(hours=1), "paid", None),  # long after the deal closed
        (lapsed_unrecorded, HELD_UNTIL, "released", None),
        (lapsed_and_swept, HELD_UNTIL + timedelta(minutes=5), "released", None),
        (released, PAY_BY - timedelta(seconds=1), "released", None),
        (order_refused, CLAIMED_AT + timedelta(seconds=1), "refused", "single-order limit"),
    ],
)
def test_a_retried_claim_that_won_answers_its_first_terms_and_where_it_stands(
    since: Callable[[FlashDeal], None], retried_at: datetime, state: str, reason: str | None
) -> None:
    deal = given_deal()
    first = claim(deal, CLAIMED_AT)
    assert first["new"] and first["claim"]["pay_by"] == PAY_BY.isoformat()
    assert first["claim"]["held_until"] == HELD_UNTIL.isoformat()
    since(deal)
    deal = read_back(deal)

    retried = claim(deal, retried_at)

    assert retried["new"] is False
    assert retried["claim"] == first["claim"]  # id, quantity, pay_by, held_until
    assert retried["state"] == state
    assert (retried["reason"] is None) if reason is None else (reason in retried["reason"])
    assert deal.collect_events() == []  # a retry records nothing
    seen = commands.claim_state(Uow(deal), lambda: retried_at, deal.id, CLAIM, ALICE)
    assert seen == retried  # the retry and GET .../claims/{id} say the same


def test_a_retry_after_units_came_back_is_the_first_claim_not_a_second_one() -> None:
    deal = given_deal()
    first = claim(deal, CLAIMED_AT)
    released(deal)
    deal = read_back(deal)
    retried = claim(deal, CLAIMED_AT + timedelta(seconds=2))
    assert (retried["new"], retried["claim"]) == (False, first["claim"])
    assert deal.units_left(CLAIMED_AT + timedelta(seconds=2)) == 2  # the units stay the deal's


def test_another_buyer_or_another_request_with_a_claims_key_is_still_refused() -> None:
    deal = given_deal()
    claim(deal, CLAIMED_AT)
    paid(deal)
    deal = read_back(deal)
    later = ENDS + timedelta(minutes=1)
    with pytest.raises(Conflict) as other_buyer:
        claim(deal, later, buyer=BOB)
    assert other_buyer.value.field == "claim_id"
    with pytest.raises(IdempotencyKeyReused):
        claim(deal, later, request={"fingerprint": "POST … quantity 1"})


def test_a_refused_claim_records_nothing_and_its_retry_is_decided_afresh() -> None:
    deal = given_deal()
    claim(deal, CLAIMED_AT, claim_id=uuid4(), buyer=BOB)  # both units
    with pytest.raises(OutOfStock):
        claim(deal, CLAIMED_AT + timedelta(seconds=1))
    assert CLAIM not in deal.claimants and [type(e).__name__ for e in deal.collect_events()] == [
        "Opened",
        "Claimed",
        "SoldOut",
    ]
    retried = claim(deal, HELD_UNTIL)  # Bob's claim lapsed meanwhile: the retry wins
    held_until = HELD_UNTIL + timedelta(seconds=PAY_WINDOW + GRACE)
    assert retried["new"] and retried["claim"]["held_until"] == held_until.isoformat()


def test_what_a_process_knows_never_answers_a_retried_claim_in_the_deals_place() -> None:
    """The owner refuses from memory what the deal would refuse; a claim id it has seen win
    still goes to the deal, also once that claim was released and the deal sold out again, so
    the retry is answered from the deal's events, as above."""
    deal = given_deal()
    knowledge = DealKnowledge(lambda: CLAIMED_AT + timedelta(seconds=3))
    knowledge.add_recorded(deal.id, set(), {}, deal.ends_at)
    alices = {"claim_id": CLAIM, "buyer_id": ALICE, "quantity": 2}
    knowledge.answered(deal.id, "claim", alices, claim(deal, CLAIMED_AT))
    released(deal)
    knowledge.answered(deal.id, "release", {"claim_id": CLAIM}, commands.deal_view(deal, OPENS))
    bobs = {"claim_id": uuid4(), "buyer_id": BOB, "quantity": 2}
    won = claim(deal, CLAIMED_AT, claim_id=bobs["claim_id"], buyer=BOB)
    knowledge.answered(deal.id, "claim", bobs, won)
    refusal = OutOfStock("SUN-50: 2 requested, 0 left", sku="SUN-50", units_left=0, until=None)
    knowledge.sold_out(deal.id, refusal)
    with pytest.raises(OutOfStock):  # a new claim of Alice's: refused from memory
        knowledge.refuse(deal.id, ALICE, uuid4(), 2)
    knowledge.refuse(deal.id, ALICE, CLAIM, 2)  # her retry is not: it goes to the deal
    assert claim(deal, CLAIMED_AT + timedelta(seconds=3))["state"] == "released"
