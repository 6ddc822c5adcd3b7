"""Notes, creators, links, codes and journeys as pure aggregates: given events, when a command,
then the new events (no database, no writer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commerce.domain import ids
from commerce.domain.creators import Creator, PromoCode, ReferralLink, link_code, promo_code
from commerce.domain.errors import Conflict, InvalidInput, NotFound
from commerce.domain.journeys import NOTE_VIEW, Journey, touchpoint
from commerce.domain.notes import Note, extract_hashtags, validate_content
from commerce.domain.pricing import CbecPolicy, FreightRates, LineInput, ShipmentInput, quote_order

T0 = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
AUTHOR, OTHER, MERCHANT = uuid4(), uuid4(), uuid4()


def replay(events: list[Any]) -> Any:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def history(aggregate: Any) -> list[Any]:
    return list(aggregate.collect_events())


def new_events(given: list[Any], when: Any) -> tuple[Any, list[Any]]:
    """Rebuild from `given`, run `when(aggregate)`, answer the aggregate and its new events."""
    aggregate = replay(given)
    when(aggregate)
    return aggregate, history(aggregate)


def topic(event: Any) -> str:
    return type(event).TOPIC


def fields(event: Any) -> dict:
    skip = {"originator_id", "originator_version", "timestamp", "originator_topic"}
    return {k: v for k, v in event.__dict__.items() if k not in skip}


def posted(**content: Any) -> list[Any]:
    body = {"title": "t", "body": "b", "image_refs": [], "product_ids": [], "hashtags": []}
    return history(Note(id=uuid4(), author_id=AUTHOR, at=T0, **(body | content)))


# -- notes ---------------------------------------------------------------------------------------
def test_posting_records_the_contract_fields() -> None:
    product = uuid4()
    [event] = posted(title="Sun", image_refs=["a.jpg"], product_ids=[product], hashtags=["x"])
    assert topic(event) == "commerce.Note.Posted"
    assert fields(event) == {
        "author_id": AUTHOR,
        "title": "Sun",
        "body": "b",
        "image_refs": ["a.jpg"],
        "product_ids": [product],
        "hashtags": ["x"],
        "at": T0,
    }


def test_hashtags_are_taken_from_the_text_case_folded_in_order() -> None:
    assert extract_hashtags("#防晒 and #Sunscreen", "again #sunscreen, #SPF50!") == [
        "防晒",
        "sunscreen",
        "spf50",
    ]
    title, tags = validate_content("  Sun #a  ", "#b #a", [])
    assert (title, tags) == ("Sun #a", ["a", "b"])


@pytest.mark.parametrize(
    ("title", "body", "images", "field"),
    [
        ("", "b", [], "title"),
        ("x" * 101, "b", [], "title"),
        ("t", "x" * 5001, [], "body"),
        ("t", " ".join(f"#t{i}" for i in range(11)), [], "body"),
        ("t", "b", ["i.jpg"] * 10, "image_refs"),
        ("t", "b", ["ok.jpg", "has space"], "image_refs[1]"),
        ("t", "b", ["x" * 201], "image_refs[0]"),
    ],
)
def test_content_limits_name_their_field(title: str, body: str, images: list, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_content(title, body, images)
    assert refused.value.field == field


def test_only_the_author_edits_and_an_unchanged_edit_records_nothing() -> None:
    given_ = posted()
    note = replay(given_)
    with pytest.raises(NotFound):
        note.edit(OTHER, "new", "b", [], [], [], T0)
    assert history(note) == []
    assert note.edit(AUTHOR, "t", "b", [], [], [], T0) is False
    _, [edited] = new_events(given_, lambda n: n.edit(AUTHOR, "new", "#x", [], [], ["x"], T0))
    assert topic(edited) == "commerce.Note.Edited"
    assert set(fields(edited)) == set(fields(given_[0]))  # the same fields as Posted


def test_a_deleted_note_refuses_everything() -> None:
    given_ = posted()
    _, [deleted] = new_events(given_, lambda n: n.delete(AUTHOR, T0))
    assert topic(deleted) == "commerce.Note.Deleted" and fields(deleted) == {"at": T0}
    gone = replay([*given_, deleted])
    for attempt in (
        lambda: gone.comment(uuid4(), OTHER, "hi", T0),
        lambda: gone.count({"likes": 1}, T0, "f"),
        lambda: gone.edit(AUTHOR, "x", "b", [], [], [], T0),
        lambda: gone.delete(AUTHOR, T0),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert history(gone) == []


def test_a_count_records_deltas_once_per_flush() -> None:
    given_ = posted()
    _, [counted] = new_events(given_, lambda n: n.count({"likes": 2, "views": 5}, T0, "f1"))
    assert topic(counted) == "commerce.Note.EngagementCounted"
    assert fields(counted) == {
        "views": 5,
        "likes": 2,
        "saves": 0,
        "shares": 0,
        "comments": 0,
        "at": T0,
        "flush_id": "f1",
    }
    again = replay([*given_, counted])
    assert again.count({"likes": 2}, T0, "f1") is False  # the same flush, finished twice
    assert again.count({"likes": 0, "saves": 0}, T0, "f2") is False  # nothing to say
    assert history(again) == []
    assert again.counts == {"views": 5, "likes": 2, "saves": 0, "shares": 0, "comments": 0}


def test_comments_are_idempotent_by_id_and_counted_only_by_engagement() -> None:
    given_ = posted()
    cid = uuid4()
    note, [commented] = new_events(given_, lambda n: n.comment(cid, OTHER, "  nice  ", T0))
    assert topic(commented) == "commerce.Note.Commented"
    assert fields(commented) == {"comment_id": cid, "author_id": OTHER, "text": "nice", "at": T0}
    note = replay([*given_, commented])
    assert note.comment(cid, OTHER, "nice", T0) is False
    with pytest.raises(Conflict):
        note.comment(cid, OTHER, "other text", T0)
    with pytest.raises(InvalidInput) as refused:
        note.comment(uuid4(), OTHER, "x" * 501, T0)
    assert refused.value.field == "text"
    assert note.counts["comments"] == 0 and history(note) == []


def test_a_deleted_comment_leaves_the_state_and_cannot_be_said_again() -> None:
    cid, given_ = uuid4(), posted()
    note, [commented] = new_events(given_, lambda n: n.comment(cid, OTHER, "nice", T0))
    with pytest.raises(NotFound):  # a third party: the comment looks missing
        replay([*given_, commented]).delete_comment(cid, uuid4(), T0)
    note, [deleted] = new_events([*given_, commented],
                                 lambda n: n.delete_comment(cid, AUTHOR, T0))  # fmt: skip
    assert topic(deleted) == "commerce.Note.CommentDeleted"
    assert fields(deleted) == {"comment_id": cid, "by": AUTHOR, "at": T0}
    note = replay([*given_, commented, deleted])
    assert note.comments[0]["text"] == "" and note.delete_comment(cid, OTHER, T0) is False
    with pytest.raises(Conflict):  # a retried create of a deleted comment is not a new one
        note.comment(cid, OTHER, "nice", T0)
    assert history(note) == []


# -- creators, links and codes ---------------------------------------------------------------------
def registered(hashes: list[str] | None = None) -> list[Any]:
    user = uuid4()
    creator = Creator(
        id=ids.creator_id(user),
        user_id=user,
        display_name="Kiko",
        identity_hashes=hashes or [],
        at=T0,
    )
    return history(creator)


def test_a_creator_registers_with_identity_hashes_and_links_at_a_rate() -> None:
    given_ = registered(["h1"])
    assert topic(given_[0]) == "commerce.Creator.Registered"
    assert set(fields(given_[0])) == {"user_id", "display_name", "identity_hashes", "at"}
    assert given_[0].originator_id == ids.creator_id(given_[0].user_id)
    creator, [linked] = new_events(given_, lambda c: c.link(MERCHANT, 800, T0))
    assert topic(linked) == "commerce.Creator.LinkedToMerchant"
    assert fields(linked) == {"merchant_id": MERCHANT, "commission_rate_bp": 800, "at": T0}
    creator = replay([*given_, linked])
    assert creator.link(MERCHANT, 800, T0) is False
    with pytest.raises(InvalidInput):
        creator.link(MERCHANT, 5001, T0)
    with pytest.raises(NotFound):
        creator.unlink(uuid4(), T0)  # another merchant's creator looks missing
    creator.unlink(MERCHANT, T0)
    [unlinked] = history(creator)
    assert fields(unlinked) == {"merchant_id": MERCHANT, "at": T0}


def test_an_identity_is_added_once_and_never_swapped() -> None:
    creator = replay(registered())
    assert creator.identify("h1", T0) is True
    [added] = history(creator)
    assert topic(added) == "commerce.Creator.IdentityAdded"
    assert creator.identify("h1", T0) is False
    with pytest.raises(Conflict):
        creator.identify("h2", T0)


def offer(kind: type, **terms: Any) -> list[Any]:
    base = {
        "id": uuid4(),
        "creator_id": uuid4(),
        "merchant_id": MERCHANT,
        "commission_rate_bp": 500,
        "valid_from": T0,
        "valid_until": T0 + timedelta(days=7),
        "at": T0,
    }
    if kind is ReferralLink:
        return history(ReferralLink(code="kiko-sun", product_id=None, **(base | terms)))
    return history(PromoCode(code="KIKO10", percent_off=10, **(base | terms)))


@pytest.mark.parametrize("kind", [ReferralLink, PromoCode])
def test_links_and_codes_are_usable_inside_their_window_until_revoked(kind: type) -> None:
    given_ = offer(kind)
    assert topic(given_[0]) == f"commerce.{kind.__name__}.Created"
    shape = {"code", "creator_id", "merchant_id", "commission_rate_bp", "valid_from"}
    extra = {"product_id"} if kind is ReferralLink else {"percent_off"}
    assert set(fields(given_[0])) == shape | extra | {"valid_until", "at"}
    item = replay(given_)
    assert item.refusal(T0 - timedelta(seconds=1)) == "is not valid yet"
    assert item.refusal(T0) is None
    assert item.refusal(T0 + timedelta(days=7)) == "has expired"
    with pytest.raises(NotFound):
        item.require_owner(uuid4(), "code")
    assert item.revoke(T0) is True and item.revoke(T0) is False
    [revoked] = history(item)
    assert topic(revoked) == f"commerce.{kind.__name__}.Revoked"
    assert replay([*given_, revoked]).refusal(T0) == "has been revoked"


def test_codes_are_normalised_and_checked() -> None:
    assert promo_code(" kiko10 ") == "KIKO10"
    assert link_code("Kiko-Sun_1") == "Kiko-Sun_1"  # links are matched exactly, as URL paths are
    for bad in ("ab", "x" * 33, "有码", "a b c"):
        with pytest.raises(InvalidInput):
            promo_code(bad)
        with pytest.raises(InvalidInput):
            link_code(bad)
    for percent in (0, 51, True):
        with pytest.raises(InvalidInput):
            PromoCode.validate_percent_off(percent)


# -- journeys ------------------------------------------------------------------------------------
def test_a_journey_starts_once_then_records_batches_of_touchpoints() -> None:
    buyer, note_id = uuid4(), uuid4()
    journey = Journey(id=ids.journey_id(buyer), buyer_id=buyer, at=T0)
    tp = touchpoint(uuid4(), NOTE_VIEW, None, str(note_id), None, T0)
    assert journey.record([]) is False
    journey.record([tp, tp | {"id": str(uuid4())}])
    started, recorded = history(journey)
    assert topic(started) == "commerce.Journey.Started"
    assert topic(recorded) == "commerce.Journey.TouchpointsRecorded"
    assert fields(recorded)["buyer_id"] == buyer
    assert set(tp) == {"id", "kind", "creator_id", "source_id", "product_id", "at"}
    assert tp["creator_id"] == "" and tp["product_id"] is None
    assert datetime.fromisoformat(tp["at"]) == T0 and UUID(tp["id"])
    assert replay([started, recorded]).recorded == 2


# -- the promo discount in pricing -----------------------------------------------------------------
def shipment(price_jpy: int, quantity: int = 1) -> ShipmentInput:
    line = LineInput("S", quantity, price_jpy, "JPY", Decimal("0.13"), Decimal(0), 90)
    return ShipmentInput("bonded", "w", (line,))


@given(
    price=st.integers(min_value=1, max_value=2_000_000),
    quantity=st.integers(min_value=1, max_value=9),
    percent=st.integers(min_value=0, max_value=50),
)
def test_a_discount_comes_off_the_goods_before_tax(price: int, quantity: int, percent: int) -> None:
    rates, freight, policy = {"JPY": Decimal("0.0473")}, FreightRates(), CbecPolicy()
    full = quote_order([shipment(price, quantity)], rates, freight, policy)
    cut = quote_order([shipment(price, quantity)], rates, freight, policy, percent_off=percent)
    assert cut.goods_fen + cut.discount_fen == full.goods_fen
    assert cut.freight_fen == full.freight_fen
    assert cut.total_fen == cut.goods_fen + cut.freight_fen + cut.tax_fen
    exact_goods = Decimal(price * quantity) * Decimal("0.0473") * 100 * (100 - percent) / 100
    assert abs(cut.goods_fen - exact_goods) <= Decimal("0.5")  # rounded once, from exact
    taxable = Decimal(cut.goods_fen + cut.freight_fen)
    assert abs(cut.tax_fen - taxable * Decimal("0.091")) <= Decimal("0.5")
    if percent == 0:
        assert cut == full
