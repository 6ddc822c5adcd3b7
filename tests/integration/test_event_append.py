"""Saving on PostgreSQL in one call (commerce.platform.pg_append), and the writer's one look
before a batch (commerce.platform.existence): the guarantees of eventsourcing's own save kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresApplicationRecorder

from commerce.platform import pg_append
from commerce.platform.eventstore import event_store_env
from commerce.platform.existence import newest_and_existing

pytestmark = pytest.mark.postgres


class Basket(Aggregate):
    def __init__(self) -> None:
        self.items: list[str] = []

    @event("ItemAdded")
    def add(self, item: str) -> None:
        self.items.append(item)


class Baskets(Application):
    name = "AppendProbe"


def baskets(url: str | None, var_dir: Path, *, create_table: bool = False) -> Baskets:
    return Baskets(env=event_store_env(url, var_dir, Baskets.name, create_table=create_table))


@pytest.fixture
def app(postgres_url: str, tmp_path: Path) -> Iterator[Baskets]:
    baskets(postgres_url, tmp_path, create_table=True).close()  # as `redcart migrate` does
    app = baskets(postgres_url, tmp_path)
    yield app
    app.close()


def _function_exists(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_proc WHERE proname = %s", (FUNCTION,))
        return row.fetchone()[0] == 1


FUNCTION = "appendprobe_events_append"
TABLE = "appendprobe_events"


def test_migrate_creates_an_append_function_named_after_the_table(app, postgres_url):
    assert isinstance(app.recorder, pg_append.AppendingRecorder)
    assert _function_exists(postgres_url)


def test_a_batch_is_saved_in_one_call_with_ids_in_the_order_of_its_events(app, monkeypatch):
    app.save(Basket())
    baskets_ = [Basket() for _ in range(5)]
    for i, basket in enumerate(baskets_):
        basket.add(f"item {i}")
    calls = []
    append = app.recorder._append
    monkeypatch.setattr(app.recorder, "_append", lambda events: calls.append(1) or append(events))
    monkeypatch.setattr(PostgresApplicationRecorder, "insert_events", _not_the_library_way)
    recordings = app.save(*baskets_)
    assert calls == [1]
    ids = [r.notification.id for r in recordings]
    assert ids == list(range(ids[0], ids[0] + 10))
    notes = app.recorder.select_notifications(ids[0], limit=100)
    assert [(n.originator_id, n.originator_version) for n in notes] == [
        (r.domain_event.originator_id, r.domain_event.originator_version) for r in recordings
    ]
    assert app.repository.get(baskets_[3].id).items == ["item 3"]


def _not_the_library_way(*args, **kwargs):
    raise AssertionError("saved through eventsourcing's pipeline, not the append function")


def test_a_version_taken_by_another_save_refuses_the_whole_batch(app, postgres_url):
    basket = Basket()
    app.save(basket)
    stale = app.repository.get(basket.id)
    basket.add("tea")
    app.save(basket)
    stale.add("coffee")  # the same version as "tea"
    bystander = Basket()
    with pytest.raises(IntegrityError):
        app.save(bystander, stale)
    assert app.repository.get(basket.id).items == ["tea"]
    with psycopg.connect(postgres_url) as conn:
        found = conn.execute(
            f"SELECT count(*) FROM {TABLE} WHERE originator_id = %s",
            (bystander.id,),
        ).fetchone()[0]
    assert found == 0


def test_a_save_waits_for_an_earlier_uncommitted_append_so_ids_follow_commit_order(
    app, postgres_url
):
    """Two plain INSERTs would not wait for each other (their locks do not conflict): the
    function's EXCLUSIVE table lock is what makes a later save wait, so that a reader
    tailing the notification log never passes an id that commits after a higher one."""
    saved = threading.Event()

    def save() -> None:
        app.save(Basket())
        saved.set()

    with psycopg.connect(postgres_url) as earlier:  # a transaction, left open
        earlier.execute(
            f"SELECT * FROM {FUNCTION}(%s::uuid[], '{{1}}', '{{t}}', %s::bytea[], '5s')",
            ([uuid4()], [b"{}"]),
        )
        thread = threading.Thread(target=save)
        thread.start()
        assert not saved.wait(0.5), "the save did not wait for the earlier append's commit"
        earlier.rollback()
    thread.join(10)
    assert saved.is_set()


def test_a_save_notifies_the_channel_that_subscriptions_listen_on(app, postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as listener:
        listener.execute(f'LISTEN "{app.recorder.channel_name}"')
        app.save(Basket())
        heard = list(listener.notifies(timeout=5, stop_after=1))
    assert [n.channel for n in heard] == [app.recorder.channel_name]


def test_a_database_migrated_before_the_function_saves_the_library_way(app, postgres_url, caplog):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP FUNCTION {FUNCTION}")
    with caplog.at_level(logging.WARNING, logger=pg_append.__name__):
        first, second = Basket(), Basket()
        app.save(first)
        app.save(second)
    assert app.repository.get(second.id).version == 1
    warnings = [r for r in caplog.records if "redcart migrate" in r.getMessage()]
    assert len(warnings) == 1


def test_one_look_tells_the_newest_notification_and_which_ids_exist(app, tmp_path):
    saved = Basket()
    recordings = app.save(saved)
    absent = uuid4()
    newest, found = newest_and_existing(app.recorder, {saved.id, absent})
    assert newest == recordings[-1].notification.id
    assert found == {saved.id}
    sqlite = baskets(None, tmp_path / "sqlite", create_table=True)
    try:
        on_sqlite = Basket()
        ids = sqlite.save(on_sqlite)
        assert newest_and_existing(sqlite.recorder, {on_sqlite.id, absent}) == (
            ids[-1].notification.id,
            {on_sqlite.id},
        )
    finally:
        sqlite.close()
