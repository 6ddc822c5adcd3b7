"""A worker's runner, woken on every commit, paces itself: one pass per `min_interval` however
often it is woken, and none while its log is in a burst (projections.burst), up to the hold's
longest; and once the commits stop it has applied every event, once.

A real store (the embedded SQLite) and a real runner thread; the bounds are on how many passes
ran, not on how long anything took."""

from __future__ import annotations

import math
import queue
import threading
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from commerce.domain.merchants import Merchant
from projections.burst import BurstHold
from projections.runner import ProjectionRunner, migrate
from projections.sqlstore import SqlStore
from projections.worker import listen_for_commits, waking_by_channel
from redcart.wiring import commerce_app
from tests.conftest import make_settings


class Counted:
    """Counts the merchants it applies, in its table (so applying twice would show)."""

    name = "pacing_counted"
    topics: tuple[str, ...] = ()
    schema = ("CREATE TABLE IF NOT EXISTS pacing_counted (position INTEGER PRIMARY KEY)",)

    def apply(self, cur: Any, event: Any, position: int) -> None:
        cur.execute("INSERT INTO pacing_counted (position) VALUES (%s)", (position,))


class CountingRunner(ProjectionRunner):
    passes = 0

    def catch_up(self, on_batch: Any = None) -> int:
        self.passes += 1
        return super().catch_up(on_batch)


def start(tmp_path: Path, **options: Any) -> tuple[Any, SqlStore, CountingRunner]:
    settings = make_settings(None, tmp_path / "var")
    app = commerce_app(settings, create_table=True)
    store = SqlStore.open(None, settings.var_dir)
    migrate(store, Counted())
    runner = CountingRunner(app, store, Counted(), poll_interval=5.0, **options)
    runner.start()
    time.sleep(0.05)  # its first pass, on an empty log
    runner.passes = 0
    return app, store, runner


def commit_and_wake(app: Any, runner: ProjectionRunner, n: int) -> float:
    """`n` commits, the runner woken after each (as the worker's LISTEN does); returns how long
    they took."""
    began = time.monotonic()
    for i in range(n):
        app.save(Merchant(id=uuid4(), name=f"m{i}", home_country="JP",
                          settlement_currency="JPY", api_key_hash="x"))  # fmt: skip
        runner.wake()
    return time.monotonic() - began


def settled(app: Any, store: SqlStore, runner: ProjectionRunner) -> None:
    head = app.recorder.max_notification_id()
    deadline = time.monotonic() + 10
    while runner.position < head and time.monotonic() < deadline:
        runner.wake()
        time.sleep(0.02)
    rows = store.query("SELECT count(*), count(DISTINCT position) FROM pacing_counted")
    assert rows[0] == (head, head)  # every event applied, none twice


def test_woken_on_every_commit_it_passes_once_per_min_interval(tmp_path: Path) -> None:
    app, store, runner = start(tmp_path, min_interval=0.2)
    try:
        took = commit_and_wake(app, runner, 150)
        passes = runner.passes
        assert passes <= 2 + math.ceil(took / 0.2)  # not one per wake-up (150)
        settled(app, store, runner)
    finally:
        runner.stop()
        store.close()


def test_a_burst_of_commits_is_applied_after_it_not_during_it(tmp_path: Path) -> None:
    hold = BurstHold(0.6, window=0.1, rate=50.0)
    app, store, runner = start(tmp_path, hold=hold)
    try:
        took = commit_and_wake(app, runner, 150)
        passes = runner.passes
        # a pass or two before the burst shows, then at most one each `longest`
        assert passes <= 3 + math.ceil(took / 0.6)
        settled(app, store, runner)
        assert hold.held_s > 0
    finally:
        runner.stop()
        store.close()


class Woken:
    def __init__(self) -> None:
        self.times = 0

    def wake(self) -> None:
        self.times += 1


def test_a_commit_wakes_only_the_runners_of_its_log() -> None:
    """A sale's claims commit on the Livestream log: the commerce views sleep through it."""
    commerce, live = [Woken(), Woken()], [Woken()]
    wake = waking_by_channel({"commerce_events": commerce, "livestream_events": live})
    for _ in range(3):
        wake("livestream_events")
    wake("commerce_events")
    wake("somebody_elses_events")
    assert [r.times for r in commerce] == [1, 1]
    assert live[0].times == 3


@pytest.mark.postgres
def test_the_listener_names_the_channel_of_each_commit(postgres_url: str) -> None:
    import psycopg

    heard: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    listening = threading.Thread(
        target=listen_for_commits,
        args=(postgres_url, ["pacing_a_events", "pacing_b_events"], heard.put, stop),
        daemon=True,
    )
    listening.start()
    try:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            deadline = time.monotonic() + 10
            while heard.empty() and time.monotonic() < deadline:  # until it is listening
                conn.execute('NOTIFY "pacing_a_events"')
                time.sleep(0.05)
            assert heard.get(timeout=1) == "pacing_a_events"
            conn.execute('NOTIFY "pacing_b_events"')
            while (channel := heard.get(timeout=5)) == "pacing_a_events":
                pass  # the first loop's surplus
            assert channel == "pacing_b_events"
    finally:
        stop.set()
        listening.join(timeout=5)
