"""A live session as an aggregate: given events, when a command, then facts (or a refusal that
leaves none). Time is passed in: T0 is when the show was scheduled, START when it went live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application

from commerce.domain.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from livestream.domain.sessions import (
    CANCELLED,
    ENDED,
    LIVE,
    MAX_PINNED,
    SCHEDULED,
    Coupon,
    LiveSession,
)

T0 = datetime(2025, 11, 10, 12, 0, tzinfo=UTC)
START = T0 + timedelta(days=1)
MERCHANT, CREATOR = UUID(int=1), UUID(int=2)
LIPSTICK, SERUM = UUID(int=10), UUID(int=11)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def new_session(**overrides: object) -> LiveSession:
    fields = {
        "host_merchant_id": MERCHANT,
        "title": "Tokyo skincare haul",
        "starts_at": START,
        "now": T0,
        "creator_id": CREATOR,
        "merchant_creator_ids": {CREATOR},
    }
    return LiveSession.schedule(**(fields | overrides))  # type: ignore[arg-type]


def given_session(*, live: bool = True) -> LiveSession:
    session = new_session()
    if live:
        session.start(START)
    session.collect_events()  # what is given is history; tests look at what happens next
    return session


def recorded(session: LiveSession) -> list[str]:
    return [type(e).__name__ for e in session.collect_events()]


# -- scheduling and the lifecycle ----------------------------------------------------------------


def test_a_merchant_schedules_a_session_presented_by_their_creator() -> None:
    session = new_session()
    assert recorded(session) == ["Scheduled"]
    assert (session.status, session.host_merchant_id, session.creator_id) == (
        SCHEDULED,
        MERCHANT,
        CREATOR,
    )


def test_a_creator_not_working_with_the_merchant_looks_missing() -> None:
    with pytest.raises(NotFound) as refused:
        new_session(creator_id=uuid4())
    assert refused.value.field == "creator_id"


@pytest.mark.parametrize(
    ("field", "overrides"),
    [("title", {"title": "  "}), ("starts_at", {"starts_at": T0 - timedelta(minutes=1)})],
)
def test_a_session_without_a_title_or_in_the_past_is_refused(field: str, overrides: dict) -> None:
    with pytest.raises(InvalidInput) as refused:
        new_session(**overrides)
    assert refused.value.field == field


def test_a_session_goes_live_then_ends() -> None:
    session = given_session(live=False)
    session.start(START - timedelta(minutes=2))  # hosts may go live a little early
    session.end(at(3600))
    assert recorded(session) == ["Started", "Ended"]
    assert (session.status, session.finished_at) == (ENDED, at(3600))


def test_an_ended_session_cannot_start_again_or_end_twice() -> None:
    session = given_session()
    session.end(at(60))
    with pytest.raises(InvalidTransition):
        session.start(at(61))
    with pytest.raises(InvalidTransition):
        session.end(at(62))


def test_only_a_session_that_never_started_can_be_cancelled() -> None:
    session = given_session(live=False)
    session.cancel(T0 + timedelta(hours=1))
    assert (recorded(session), session.status) == (["Cancelled"], CANCELLED)
    with pytest.raises(InvalidTransition):
        session.start(START)
    with pytest.raises(InvalidTransition):
        given_session().cancel(at(1))


# -- pinning -------------------------------------------------------------------------------------


def test_pins_keep_their_time_span_so_a_replay_can_jump_to_a_product() -> None:
    session = given_session()
    session.pin(LIPSTICK, at(60))
    session.pin(SERUM, at(90))
    session.unpin(LIPSTICK, at(300))
    session.end(at(600))  # the serum is still on screen: ending unpins it
    assert recorded(session) == ["ProductPinned", "ProductPinned", "ProductUnpinned", "Ended"]
    assert session.replay_marks() == [(LIPSTICK, 60.0, 300.0), (SERUM, 90.0, 600.0)]
    assert session.pinned == {}


def test_a_product_pinned_again_gets_a_second_mark() -> None:
    session = given_session()
    session.pin(LIPSTICK, at(10))
    session.unpin(LIPSTICK, at(20))
    session.pin(LIPSTICK, at(30))
    assert session.replay_marks() == [(LIPSTICK, 10.0, 20.0), (LIPSTICK, 30.0, None)]


@pytest.mark.parametrize("live", [False, True])
def test_pinning_before_start_or_after_end_is_refused(live: bool) -> None:
    session = given_session(live=live)
    if live:
        session.end(at(60))
        session.collect_events()
    with pytest.raises(InvalidTransition):
        session.pin(LIPSTICK, at(61))
    assert recorded(session) == []


def test_pinning_twice_unpinning_what_is_not_pinned_or_too_many_pins_are_refused() -> None:
    session = given_session()
    session.pin(LIPSTICK, at(1))
    with pytest.raises(InvalidTransition):
        session.pin(LIPSTICK, at(2))
    with pytest.raises(InvalidTransition):
        session.unpin(SERUM, at(2))
    for n in range(MAX_PINNED - 1):
        session.pin(UUID(int=100 + n), at(3))
    with pytest.raises(Conflict):
        session.pin(SERUM, at(4))


def test_time_may_not_run_backwards() -> None:
    session = given_session()
    session.pin(LIPSTICK, at(60))
    with pytest.raises(InvalidInput) as refused:
        session.unpin(LIPSTICK, at(59))
    assert refused.value.field == "now"


# -- coupons and moderators ----------------------------------------------------------------------


def test_a_coupon_is_issued_in_stream_as_an_amount_or_a_percentage() -> None:
    session = given_session()
    fixed, percent = uuid4(), uuid4()
    session.issue_coupon(fixed, at(5), amount_fen=2_000, quantity=100, per_buyer_limit=1)
    session.issue_coupon(percent, at(6), percent_off=15, quantity=50, per_buyer_limit=2)
    assert recorded(session) == ["CouponIssued", "CouponIssued"]
    assert session.coupons[fixed] == Coupon(fixed, 2_000, None, 100, 1, at(5))
    assert session.coupons[percent].percent_off == 15


@pytest.mark.parametrize(
    ("field", "terms"),
    [
        ("amount_fen", {"quantity": 10, "per_buyer_limit": 1}),
        ("amount_fen", {"amount_fen": 5, "percent_off": 5, "quantity": 10, "per_buyer_limit": 1}),
        ("percent_off", {"percent_off": 100, "quantity": 10, "per_buyer_limit": 1}),
        ("quantity", {"amount_fen": 5, "quantity": 0, "per_buyer_limit": 1}),
        ("per_buyer_limit", {"amount_fen": 5, "quantity": 3, "per_buyer_limit": 4}),
    ],
)
def test_a_coupon_with_unclear_terms_is_refused(field: str, terms: dict) -> None:
    session = given_session()
    with pytest.raises(InvalidInput) as refused:
        session.issue_coupon(uuid4(), at(1), **terms)
    assert refused.value.field == field
    assert recorded(session) == []


def test_coupons_need_a_live_session_and_a_fresh_id() -> None:
    with pytest.raises(InvalidTransition):
        given_session(live=False).issue_coupon(
            uuid4(), T0, amount_fen=1, quantity=1, per_buyer_limit=1
        )
    session = given_session()
    coupon = uuid4()
    session.issue_coupon(coupon, at(1), amount_fen=1, quantity=1, per_buyer_limit=1)
    with pytest.raises(Conflict):
        session.issue_coupon(coupon, at(2), amount_fen=1, quantity=1, per_buyer_limit=1)


def test_moderators_are_named_before_or_during_the_show_and_naming_twice_is_once() -> None:
    session = given_session(live=False)
    mod = uuid4()
    session.add_moderator(mod, T0)
    session.start(START)
    session.add_moderator(mod, at(1))
    session.remove_moderator(mod, at(2))
    session.remove_moderator(mod, at(3))
    assert recorded(session) == ["ModeratorAdded", "Started", "ModeratorRemoved"]
    assert session.moderator_ids == set()
    session.end(at(4))
    with pytest.raises(InvalidTransition):
        session.add_moderator(mod, at(5))


# -- the stored form -----------------------------------------------------------------------------


def test_a_session_read_back_from_its_events_has_the_same_state() -> None:
    session = new_session(id=uuid4())
    session.start(START)
    session.pin(LIPSTICK, at(10))
    session.issue_coupon(uuid4(), at(11), percent_off=10, quantity=5, per_buyer_limit=1)
    session.add_moderator(uuid4(), at(12))
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    app.save(session)
    copy = app.repository.get(session.id)
    assert copy.status == LIVE
    assert copy.replay_marks() == session.replay_marks() == [(LIPSTICK, 10.0, None)]
    assert (copy.coupons, copy.moderator_ids, copy.pinned) == (
        session.coupons,
        session.moderator_ids,
        session.pinned,
    )


def test_audience_samples_are_recorded_only_while_live_and_keep_the_peak() -> None:
    session = LiveSession.schedule(
        host_merchant_id=uuid4(), title="show", starts_at=T0 + timedelta(hours=1), now=T0
    )
    with pytest.raises(InvalidTransition):
        session.count_audience(3, 3, 0, T0)
    session.start(T0 + timedelta(hours=1))
    session.count_audience(120, 150, 40, T0 + timedelta(hours=1, minutes=1), "a1")
    session.count_audience(80, 90, 60, T0 + timedelta(hours=1, minutes=2), "a1")
    with pytest.raises(InvalidInput):
        session.count_audience(10, 5, 0, T0 + timedelta(hours=1, minutes=3))
    assert session.peak_viewers == 150
    counted = [e for e in session.collect_events() if type(e).__name__ == "AudienceCounted"]
    assert [(e.viewers, e.peak_viewers, e.likes, e.instance) for e in counted] == [
        (120, 150, 40, "a1"),
        (80, 90, 60, "a1"),
    ]
