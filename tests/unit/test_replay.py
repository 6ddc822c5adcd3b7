"""Replay without eventsourcing's per-event Protocol checks must rebuild exactly what the
library's own `project_aggregate` and `save` would have (commerce.platform.replay)."""

from __future__ import annotations

from eventsourcing.application import project_aggregate
from eventsourcing.domain import Aggregate, event
from hypothesis import given
from hypothesis import strategies as st

from commerce.platform.replay import EventSourcedApplication, Repository, mutate_all, save_events


class Basket(Aggregate):
    @event("Opened")
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.items: list[str] = []

    @event("Added")
    def add(self, sku: str) -> None:
        self.items.append(sku)

    @event("Emptied")
    def empty(self) -> None:
        self.items = []


class Shop(EventSourcedApplication):
    name = "ReplayShop"


def _basket(steps: list[str | None]) -> Basket:
    basket = Basket(owner="王")
    for sku in steps:
        if sku is None:
            basket.empty()
        else:
            basket.add(sku)
    return basket


@given(st.lists(st.one_of(st.none(), st.text(min_size=1, max_size=4)), max_size=20))
def test_mutate_all_rebuilds_what_project_aggregate_rebuilds(steps: list[str | None]) -> None:
    events = _basket(steps).collect_events()
    ours, theirs = mutate_all(None, events), project_aggregate(None, events)
    assert (ours.id, ours.version, ours.owner, ours.items) == (
        theirs.id,
        theirs.version,
        theirs.owner,
        theirs.items,
    )


def test_a_context_application_reads_back_through_our_repository() -> None:
    with Shop(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}) as app:
        assert type(app.repository) is Repository
        basket = _basket(["a", "b", None, "c"])
        app.save(basket)
        again = app.repository.get(basket.id)
        assert (again.version, again.items) == (basket.version, ["c"])
        older = app.repository.get(basket.id, version=3)  # versions and projectors still work
        assert older.items == ["a", "b"]


def test_save_events_records_and_notifies_as_save_does() -> None:
    with Shop(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}) as app:
        basket = _basket(["a"])
        first = save_events(app, basket.collect_events())
        basket.add("b")
        second = save_events(app, basket.collect_events())
        assert [r.notification.id for r in first + second] == [1, 2, 3]
        assert app.repository.get(basket.id).items == ["a", "b"]
        stranger = Basket(owner="李")
        assert [r.notification.id for r in app.save(stranger)] == [4]
        assert app.repository.get(stranger.id).owner == "李"
        assert len(list(app.notification_log.select(1, 10))) == 4
