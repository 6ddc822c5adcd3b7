"""What a process learns from a deal's answers, and refuses with on its own (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from commerce.domain import errors
from livestream.engine.knowledge import ENDED_GRACE, DealKnowledge

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ENDS = NOW + timedelta(minutes=5)
DEAL, ALICE, BOB = uuid4(), uuid4(), uuid4()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def won(claim_id: object, buyer: object) -> tuple[dict, dict]:
    """The arguments and the answer of a claim that took the deal's last unit."""
    args = {"claim_id": claim_id, "buyer_id": buyer, "quantity": 1}
    answer = {
        "deal": {"ends_at": ENDS.isoformat(), "per_buyer_limit": 1, "units_left": 0},
        "claim": {"id": str(claim_id), "quantity": 1, "held_until": ENDS.isoformat()},
        "new": True,
    }
    return args, answer


def sold_out() -> errors.OutOfStock:
    return errors.OutOfStock("SKU: 1 requested, 0 left", sku="SKU", units_left=0, until=None)


def refusal(knowledge: DealKnowledge, buyer: object, claim_id: object = None) -> str:
    try:
        knowledge.refuse(DEAL, buyer, claim_id or uuid4(), 1)  # type: ignore[arg-type]
    except errors.DomainError as exc:
        return exc.detail
    return ""


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def knowing(clock: Clock) -> tuple[DealKnowledge, object]:
    """A process that knows the deal's claims, saw Alice take the last unit, then a refusal."""
    knowledge = DealKnowledge(clock)
    knowledge.add_recorded(DEAL, set(), {}, ENDS)
    claim_id = uuid4()
    knowledge.answered(DEAL, "claim", *won(claim_id, ALICE))
    knowledge.sold_out(DEAL, sold_out())
    return knowledge, claim_id


def test_a_sold_out_deal_is_refused_as_the_deal_words_it(knowing: tuple) -> None:
    knowledge, alices_claim = knowing
    assert refusal(knowledge, BOB) == "SKU: 1 requested, 0 left"
    assert refusal(knowledge, ALICE) == "at most 1 per buyer; 1 already claimed"
    assert refusal(knowledge, ALICE, alices_claim) == ""  # a retry goes to the deal


def test_nothing_is_refused_before_the_deals_claims_are_known(clock: Clock) -> None:
    knowledge = DealKnowledge(clock)
    knowledge.sold_out(DEAL, sold_out())
    assert refusal(knowledge, BOB) == ""


def test_units_coming_back_end_what_was_known(knowing: tuple) -> None:
    knowledge, _ = knowing
    knowledge.units_back(DEAL)
    assert refusal(knowledge, BOB) == "" and refusal(knowledge, ALICE) == ""


def test_a_deal_is_closed_once_its_time_is_up_and_forgotten_a_while_later(
    knowing: tuple, clock: Clock
) -> None:
    knowledge, _ = knowing
    clock.now = ENDS
    knowledge.forget_ended(clock.now)
    assert refusal(knowledge, BOB) == "the deal is closed"
    clock.now = ENDS + ENDED_GRACE
    knowledge.forget_ended(clock.now)
    assert refusal(knowledge, BOB) == "" and knowledge.deals() == set()
