"""The attribution policy, case by case (a table), then its invariants (hypothesis)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.read.attribution import (
    AttributionConfig,
    Model,
    OrderFacts,
    Outcome,
    Touchpoint,
    TouchpointKind,
    attribute,
)

PLACED = datetime(2026, 11, 11, 20, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def tp(tid: str, kind: str, creator: str, ago: timedelta, source: str = "") -> Touchpoint:
    """A touchpoint `ago` before the order (negative `ago`: after it)."""
    return Touchpoint(tid, TouchpointKind(kind), creator, PLACED - ago, source)


def order(paid: int = 10_000, tax: int = 0) -> OrderFacts:
    return OrderFacts(
        order_id="o-1",
        buyer_id="buyer",
        placed_at=PLACED,
        paid_fen=paid,
        tax_fen=tax,
        buyer_identity_hashes=frozenset({"phone:138"}),
        creator_identity_hashes={"sock": frozenset({"phone:138"}), "alice": frozenset({"x"})},
    )


# (case id, model, touchpoints, expected {creator: share_fen}, expected {touchpoint: outcome})
CASES = [
    ("nothing to attribute", Model.LAST_CLICK, [], {}, {}),
    (
        "last click wins over an earlier click",
        Model.LAST_CLICK,
        [tp("a", "note_click", "alice", 3 * DAY), tp("b", "referral_click", "bob", DAY)],
        {"bob": 10_000},
        {"a": Outcome.SUPERSEDED_BY_LATER, "b": Outcome.WON_CLICK},
    ),
    (
        "click exactly at the 7-day edge still counts",
        Model.LAST_CLICK,
        [tp("a", "note_click", "alice", 7 * DAY)],
        {"alice": 10_000},
        {"a": Outcome.WON_CLICK},
    ),
    (
        "click one second past 7 days is outside the window",
        Model.LAST_CLICK,
        [tp("a", "note_click", "alice", 7 * DAY + timedelta(seconds=1))],
        {},
        {"a": Outcome.OUTSIDE_WINDOW},
    ),
    (
        "a view counts when there is no click",
        Model.LAST_CLICK,
        [tp("v", "note_view", "alice", 20 * HOUR)],
        {"alice": 10_000},
        {"v": Outcome.WON_VIEW},
    ),
    (
        "a view older than the 1-day view window",
        Model.LAST_CLICK,
        [tp("v", "note_view", "alice", 2 * DAY)],
        {},
        {"v": Outcome.OUTSIDE_WINDOW},
    ),
    (
        "an older click beats a fresher view",
        Model.LAST_CLICK,
        [tp("c", "note_click", "alice", 3 * DAY), tp("v", "live_join", "bob", HOUR)],
        {"alice": 10_000},
        {"c": Outcome.WON_CLICK, "v": Outcome.VIEW_VS_CLICK},
    ),
    (
        "a live cart click beats joining a live session",
        Model.LAST_CLICK,
        [tp("j", "live_join", "bob", 2 * HOUR), tp("k", "live_click", "carol", 3 * HOUR)],
        {"carol": 10_000},
        {"j": Outcome.VIEW_VS_CLICK, "k": Outcome.WON_CLICK},
    ),
    (
        "a promo code overrides a later click",
        Model.LAST_CLICK,
        [tp("p", "promo_code", "carol", 2 * HOUR), tp("c", "note_click", "alice", HOUR)],
        {"carol": 10_000},
        {"p": Outcome.WON_PROMO_CODE, "c": Outcome.OVERRIDDEN_BY_PROMO_CODE},
    ),
    (
        "a promo code has no window and overrides views too",
        Model.LINEAR,
        [tp("p", "promo_code", "carol", 30 * DAY), tp("v", "note_view", "bob", HOUR)],
        {"carol": 10_000},
        {"p": Outcome.WON_PROMO_CODE, "v": Outcome.OVERRIDDEN_BY_PROMO_CODE},
    ),
    (
        "of two promo codes the later one wins",
        Model.FIRST_CLICK,
        [tp("p1", "promo_code", "carol", 2 * HOUR), tp("p2", "promo_code", "dave", HOUR)],
        {"dave": 10_000},
        {"p1": Outcome.SUPERSEDED_BY_LATER, "p2": Outcome.WON_PROMO_CODE},
    ),
    (
        "first click keeps the credit",
        Model.FIRST_CLICK,
        [tp("a", "note_click", "alice", 3 * DAY), tp("b", "note_click", "bob", DAY)],
        {"alice": 10_000},
        {"a": Outcome.WON_CLICK, "b": Outcome.SUPERSEDED_BY_EARLIER},
    ),
    (
        "linear splits evenly; the odd fen goes to the earliest",
        Model.LINEAR,
        [
            tp("a1", "note_click", "alice", 3 * DAY),
            tp("b", "note_click", "bob", 2 * DAY),
            tp("a2", "live_click", "alice", DAY),
        ],
        {"alice": 3_334 + 3_333, "bob": 3_333},
        {"a1": Outcome.WON_CLICK, "b": Outcome.WON_CLICK, "a2": Outcome.WON_CLICK},
    ),
    (
        "position based 40/20/40 over three",
        Model.POSITION_BASED,
        [
            tp("a", "note_click", "alice", 3 * DAY),
            tp("b", "note_click", "bob", 2 * DAY),
            tp("c", "note_click", "carol", DAY),
        ],
        {"alice": 4_000, "bob": 2_000, "carol": 4_000},
        {"a": Outcome.WON_CLICK, "b": Outcome.WON_CLICK, "c": Outcome.WON_CLICK},
    ),
    (
        "position based shares the middle 20 over four",
        Model.POSITION_BASED,
        [
            tp("a", "note_click", "alice", 4 * DAY),
            tp("b", "note_click", "bob", 3 * DAY),
            tp("c", "note_click", "carol", 2 * DAY),
            tp("d", "note_click", "dave", DAY),
        ],
        {"alice": 4_000, "bob": 1_000, "carol": 1_000, "dave": 4_000},
        {
            "a": Outcome.WON_CLICK,
            "b": Outcome.WON_CLICK,
            "c": Outcome.WON_CLICK,
            "d": Outcome.WON_CLICK,
        },
    ),
    (
        "position based with two touchpoints is half and half",
        Model.POSITION_BASED,
        [tp("a", "note_click", "alice", 2 * DAY), tp("b", "note_click", "bob", DAY)],
        {"alice": 5_000, "bob": 5_000},
        {"a": Outcome.WON_CLICK, "b": Outcome.WON_CLICK},
    ),
    (
        "the buyer's own link earns nothing; the earlier real referrer wins",
        Model.LAST_CLICK,
        [tp("a", "note_click", "alice", 2 * DAY), tp("s", "referral_click", "buyer", HOUR)],
        {"alice": 10_000},
        {"a": Outcome.WON_CLICK, "s": Outcome.SELF_REFERRAL},
    ),
    (
        "a sock puppet sharing the buyer's phone hash is self-referral",
        Model.LAST_CLICK,
        [tp("s", "promo_code", "sock", HOUR)],
        {},
        {"s": Outcome.SELF_REFERRAL},
    ),
    (
        "touchpoints after the order never count",
        Model.LAST_CLICK,
        [tp("a", "note_click", "alice", DAY), tp("late", "note_click", "bob", -HOUR)],
        {"alice": 10_000},
        {"a": Outcome.WON_CLICK, "late": Outcome.AFTER_ORDER},
    ),
]


@pytest.mark.parametrize(
    ("model", "touchpoints", "shares", "outcomes"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_attribution_table(model, touchpoints, shares, outcomes):
    decision = attribute(touchpoints, order(), AttributionConfig(model=model))

    assert {s.creator_id: s.share_fen for s in decision.shares} == shares
    assert {v.touchpoint.id: v.outcome for v in decision.verdicts} == outcomes
    assert all(s.commission_fen == s.share_fen // 10 for s in decision.shares)  # default 10 %


def test_explanation_says_who_beat_whom_and_under_which_window():
    touchpoints = [
        tp("old", "note_click", "alice", 9 * DAY),
        tp("a", "note_click", "alice", 3 * DAY),
        tp("v", "note_view", "carol", HOUR),
        tp("b", "referral_click", "bob", DAY, source="link-b"),
    ]
    decision = attribute(touchpoints, order(), AttributionConfig())
    by_id = {v.touchpoint.id: v for v in decision.verdicts}

    assert decision.rule == "last_click"
    assert [v.touchpoint.id for v in decision.verdicts] == ["old", "a", "b", "v"]  # time order
    assert [w.touchpoint.id for w in decision.winners] == ["b"]
    assert by_id["b"].window == 7 * DAY and by_id["b"].touchpoint.at == PLACED - DAY
    assert by_id["old"].outcome is Outcome.OUTSIDE_WINDOW and by_id["old"].beaten_by is None
    assert (by_id["a"].outcome, by_id["a"].beaten_by) == (Outcome.SUPERSEDED_BY_LATER, "b")
    assert (by_id["v"].outcome, by_id["v"].beaten_by, by_id["v"].window) == (
        Outcome.VIEW_VS_CLICK,
        "b",
        DAY,
    )
    payload = decision.as_dict()
    assert payload["policy_version"] == "attribution-v1"
    assert [v["outcome"] for v in payload["verdicts"]] == [
        "outside_window",
        "superseded_by_later",
        "won_click",
        "view_vs_click",
    ]


def test_commission_is_on_the_paid_amount_without_tax_at_the_link_or_creator_rate():
    config = AttributionConfig(
        model=Model.LINEAR, rates_bp={"link-x": 2_000, "alice": 1_500}, default_rate_bp=500
    )
    touchpoints = [
        tp("a", "note_click", "alice", 3 * DAY),
        tp("b", "referral_click", "bob", 2 * DAY, source="link-x"),
        tp("c", "note_click", "carol", DAY),
    ]
    decision = attribute(touchpoints, order(paid=11_300, tax=1_300), config)

    assert decision.commissionable_fen == 10_000
    assert {s.creator_id: (s.share_fen, s.commission_fen) for s in decision.shares} == {
        "alice": (3_334, 500),  # 15 % of 3,334 is 500.1: rounding never overpays
        "bob": (3_333, 666),  # link rate 20 %
        "carol": (3_333, 166),  # default 5 %
    }
    assert decision.lock_at == PLACED + timedelta(days=15)


def test_self_referral_is_flagged_on_the_decision():
    touchpoints = [tp("s", "note_click", "sock", HOUR), tp("t", "note_click", "buyer", HOUR)]
    decision = attribute(touchpoints, order(), AttributionConfig())
    assert decision.self_referral_creators == ("sock", "buyer")
    assert decision.shares == () and decision.rule == "unattributed"


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="unique"):
        attribute([tp("a", "note_click", "x", HOUR)] * 2, order(), AttributionConfig())
    with pytest.raises(ValueError, match="tax"):
        attribute([], order(paid=100, tax=200), AttributionConfig())
    with pytest.raises(ValueError, match="basis points"):
        attribute(
            [tp("a", "note_click", "x", HOUR)], order(), AttributionConfig(default_rate_bp=10_001)
        )


creators = st.sampled_from(["alice", "bob", "carol", "buyer", "sock"])
touchpoint_lists = st.lists(
    st.tuples(
        st.sampled_from(list(TouchpointKind)),
        creators,
        st.integers(-2 * 24 * 60, 10 * 24 * 60).map(lambda m: timedelta(minutes=m)),
    ),
    max_size=12,
).map(lambda rows: [tp(f"t{i}", k.value, c, ago) for i, (k, c, ago) in enumerate(rows)])


@settings(max_examples=300, deadline=None)
@given(
    touchpoints=touchpoint_lists,
    model=st.sampled_from(list(Model)),
    paid=st.integers(0, 50_000_000),
    tax_share=st.integers(0, 100),
    rates=st.dictionaries(creators, st.integers(0, 10_000)),
)
def test_attribution_invariants(touchpoints, model, paid, tax_share, rates):
    facts = order(paid=paid, tax=paid * tax_share // 100)
    config = AttributionConfig(model=model, rates_bp=rates)
    decision = attribute(touchpoints, facts, config)
    base = facts.commissionable_fen

    counts = Counter(v.touchpoint.id for v in decision.verdicts)
    assert counts == Counter(t.id for t in touchpoints)  # every touchpoint explained once
    share_sum = sum(s.share_fen for s in decision.shares)
    assert share_sum == (base if decision.winners else 0)
    for share in decision.shares:
        rate = rates.get(share.creator_id, config.default_rate_bp)
        assert share.commission_fen <= rate * share.share_fen // 10_000
        assert share.creator_id not in {"buyer", "sock"}
    max_rate = max([config.default_rate_bp, *rates.values()])
    assert decision.total_commission_fen <= max_rate * base // 10_000
    for verdict in decision.winners:
        assert verdict.touchpoint.at <= PLACED
        assert verdict.window is None or PLACED - verdict.touchpoint.at <= verdict.window
    if any(v.outcome is Outcome.WON_VIEW for v in decision.verdicts):
        assert not any(v.touchpoint.kind.value.endswith("click") for v in decision.winners)
