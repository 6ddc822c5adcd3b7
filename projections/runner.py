"""Catch-up runner for SQL read models: batched, exactly once, safe with many processes.

Each batch applies up to `batch_size` events and moves the projection's tracking position in the
same transaction (research/eventsourcing.md §5.5: one transaction per event is ~230 events/s, a
batch of 1,000 ~7,600/s). The tracking row is locked and re-checked inside the transaction, so
two processes running the same projection never apply an event twice.

A projection may also define `begin_batch(cur)` and `end_batch(cur)`: the runner calls them
around each batch, inside its transaction. Views that assemble a document from many events
(a product page) mark what changed while applying and write each document once per batch,
instead of once per event. `FollowingRunner` runs whichever generation of a blue/green view is
active (projections.rebuild), so a rebuild can switch reads without restarting anything.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from eventsourcing.application import Application

from projections.burst import BurstHold
from projections.sqlstore import SqlStore

log = logging.getLogger(__name__)

TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_tracking "
    "(name TEXT PRIMARY KEY, position BIGINT NOT NULL)"
)


class Projection(Protocol):
    name: str
    topics: tuple[str, ...]
    schema: tuple[str, ...]

    def apply(self, cur: Any, event: Any, position: int) -> None: ...


def migrate(store: SqlStore, projection: Projection) -> None:
    with store.transaction() as cur:
        cur.execute(TRACKING_DDL)
        for ddl in projection.schema:
            cur.execute(ddl)
        cur.execute(
            "INSERT INTO projection_tracking (name, position) VALUES (%s, 0) "
            "ON CONFLICT (name) DO NOTHING",
            (projection.name,),
        )


class GenerationDropped(LookupError):
    """The projection's tracking row is gone: a rebuild dropped its generation."""


class ProjectionRunner:
    def __init__(
        self,
        app: Application,
        store: SqlStore,
        projection: Projection,
        *,
        batch_size: int = 1000,
        poll_interval: float = 0.5,
        hold: BurstHold | None = None,
        min_interval: float = 0.0,
    ) -> None:
        self.app = app
        self.min_interval = min_interval
        self.hold = hold  # a worker process's runner waits out a burst (projections.burst)
        self.store = store
        self.projection = projection
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._caught_up = threading.Condition()
        self.position = self._read_position()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read_position(self) -> int:
        rows = self.store.query(
            "SELECT position FROM projection_tracking WHERE name = %s", (self.projection.name,)
        )
        return int(rows[0][0]) if rows else 0

    def catch_up(self, on_batch: Callable[[int], None] | None = None) -> int:
        """Apply everything committed so far; returns how many events were applied.

        `on_batch(position)` is told the tracking position after each committed batch (the
        rebuild's progress bar)."""
        applied = 0
        head = self.app.recorder.max_notification_id() or 0
        lock = " FOR UPDATE" if self.store.dialect == "postgres" else ""
        while True:
            start = self._read_position()
            if start >= head:
                break
            notes = self.app.recorder.select_notifications(
                start,
                limit=self.batch_size,
                stop=head,
                topics=self.projection.topics,
                inclusive_of_start=False,
            )
            end = notes[-1].id if len(notes) == self.batch_size else head
            batch = self._prepare(notes)  # before the transaction: it holds the tracking lock
            with self.store.transaction() as cur:
                cur.execute(
                    f"SELECT position FROM projection_tracking WHERE name = %s{lock}",  # noqa: S608
                    (self.projection.name,),
                )
                row = cur.fetchone()
                if row is None:
                    raise GenerationDropped(self.projection.name)
                if int(row[0]) != start:
                    continue  # another process moved it: re-read and go on from there
                self._batch_starts(start)
                self._apply_batch(cur, batch)
                cur.execute(
                    "UPDATE projection_tracking SET position = %s WHERE name = %s",
                    (end, self.projection.name),
                )
            self._batch_committed(end)
            applied += len(notes)
            if on_batch is not None:
                on_batch(end)
        self.settle(head)
        return applied

    def settle(self, head: int) -> None:
        """After a pass up to `head`: wake whoever waits for a position up to there."""
        with self._caught_up:
            self.position = max(self.position, head, self._read_position())
            self._caught_up.notify_all()

    def _batch_starts(self, position: int) -> None:
        """Inside the batch's transaction, the tracking row locked at `position`: a view that
        keeps rows between batches (projections.batching.RowCache) checks they still hold."""
        cache = getattr(self.projection, "row_cache", None)
        if cache is not None:
            cache.begin(position)

    def _batch_committed(self, position: int) -> None:
        """The batch's view changes and tracking position (`position`) are committed."""
        cache = getattr(self.projection, "row_cache", None)
        if cache is not None:
            cache.committed(position)

    def _prepare(self, notes: list[Any]) -> Any:
        """What `_apply_batch` needs of a batch, worked out outside the transaction."""
        return notes

    def _apply_batch(self, cur: Any, notes: Any) -> None:
        begin = getattr(self.projection, "begin_batch", None)
        end_batch = getattr(self.projection, "end_batch", None)
        if begin is not None:
            begin(cur)
        for note in notes:
            self.projection.apply(cur, self.app.mapper.to_domain_event(note), note.id)
        if end_batch is not None:
            end_batch(cur)

    def wake(self) -> None:
        self._wake.set()

    def _head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def wait_for(self, position: int, timeout: float = 2.0) -> bool:
        """Block until the view has applied `position` (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        if self._thread is None:  # the view is kept by a worker process: watch its tracking
            while self._read_position() < position:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
            return True
        self.wake()
        with self._caught_up:
            while self.position < position:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._caught_up.wait(left)
        return True

    def start(self) -> ProjectionRunner:
        self._thread = threading.Thread(
            target=self._run, name=f"projection-{self.projection.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.hold is not None:
                    self.hold.wait(self._head, self._stop.wait)
                self.catch_up()
            except Exception:
                log.exception("projection %s failed; retrying", self.projection.name)
                time.sleep(1)
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            if self.min_interval:
                self._stop.wait(self.min_interval)


class FollowingRunner(ProjectionRunner):
    """Runs the active generation of a blue/green view and follows a rebuild's switch.

    `active()` names the generation reads use now (a one-row lookup, made once per catch-up
    pass, not per event); `build(generation)` makes the projection that writes it. After a
    switch the runner resumes the new generation from its own tracking row, which the rebuild
    left at (or near) the head, so nothing is applied twice and nothing is skipped.
    """

    def __init__(
        self,
        app: Application,
        store: SqlStore,
        active: Callable[[], int],
        build: Callable[[int], Projection],
        active_ttl: float = 0.0,
        **kwargs: Any,
    ) -> None:
        self._active = active
        self._build = build
        self._active_ttl = active_ttl
        self._checked: tuple[float, int | None] = (0.0, None)
        self._following = threading.Lock()
        self.generation = active()
        super().__init__(app, store, build(self.generation), **kwargs)

    def _active_now(self, fresh: bool) -> int:
        """`active()`, or its answer of less than `active_ttl` seconds ago (a runner woken on
        every commit need not ask on every pass)."""
        at, number = self._checked
        if fresh or number is None or time.monotonic() - at > self._active_ttl:
            number = self._active()
            self._checked = (time.monotonic(), number)
        return number

    def follow(self, fresh: bool = False) -> Projection:
        """The active generation's projection, switching to it if a rebuild flipped reads."""
        with self._following:
            generation = self._active_now(fresh)
            if generation != self.generation:
                log.info("%s: switching to generation %s", self.projection.name, generation)
                self.projection = self._build(generation)
                self.generation = generation
                with self._caught_up:
                    self.position = self._read_position()
            return self.projection

    def catch_up(self, on_batch: Callable[[int], None] | None = None) -> int:
        self.follow()
        try:
            return super().catch_up(on_batch)
        except GenerationDropped:  # a rebuild switched and dropped it before we noticed
            self.follow(fresh=True)
            return super().catch_up(on_batch)

    def wait_for(self, position: int, timeout: float = 2.0) -> bool:
        if self._thread is None:  # a worker process keeps the view: watch the active generation
            self.follow()
        return super().wait_for(position, timeout)

    def refollow(self, timeout: float = 2.0) -> None:
        """A reader found this generation's tables dropped (a rebuild's grace was shorter than
        the runner took to notice): move to the active generation now, or within `timeout`."""
        if self._thread is None:
            self.follow(fresh=True)
            return
        was, self._checked = self.generation, (0.0, None)  # the running thread switches
        self.wake()
        deadline = time.monotonic() + timeout
        while self.generation == was and time.monotonic() < deadline:
            time.sleep(0.01)
