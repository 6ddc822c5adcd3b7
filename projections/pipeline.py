"""A long catch-up (a rebuild, a worker back from downtime) with batch N+1 decided while
batch N is written, and batch N+2 read meanwhile.

Measured on the attribution rebuild: about a third of its wall time was the runner waiting
for PostgreSQL to store a batch, on a core the runner did not use; deciding the next batch
meanwhile uses it. Each batch is still one transaction holding its view changes and its
tracking position, committed in log order, so exactly-once is unchanged:

- a batch is decided on a read transaction through `DeferredWrites`, which runs its SELECTs
  and keeps every other statement (already encoded: nothing it holds changes afterwards);
- a writer thread runs the kept statements in one transaction that first locks the tracking
  row and checks it is still where the batch started, then moves it;
- at most one batch is in flight, and the next is handed over only once it committed;
- a projection qualifies by keeping a `row_cache` (projections.batching.RowCache): every row it
  reads goes through it, so the rows of a batch still in flight are read from memory, never
  from the table. Any failure forgets the cache and ends the pass; the runner's next pass
  starts again from the committed position.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from projections.batching import Fact
from projections.runner import GenerationDropped

YOUNG_EVERY = 20  # batches between collections of the young generations during a pass


class PositionMoved(RuntimeError):
    """Another process applied events to the view meanwhile: this pass stops."""


class DeferredWrites:
    """The cursor a batch is decided with: reads run now, writes are kept (`statements`)."""

    def __init__(self, read: Any) -> None:
        self._read = read
        self.connection = read.connection  # projections.batching.is_postgres looks for it
        self.statements: list[tuple[str, Any]] = []

    def execute(self, sql: str, params: Any = None) -> None:
        if sql.lstrip()[:6].upper() == "SELECT":
            self._read.execute(sql, params)
        else:
            self.statements.append((sql, params))

    def fetchall(self) -> list[tuple]:
        return self._read.fetchall()

    def fetchone(self) -> tuple | None:
        return self._read.fetchone()


def pipelines(runner: Any) -> bool:
    """Whether this runner's catch-up can overlap batches (PostgreSQL, a row-caching view)."""
    projection = runner.projection
    return (
        runner.store.dialect == "postgres"
        and getattr(projection, "row_cache", None) is not None
        and hasattr(projection, "apply_batch")
    )


def catch_up(runner: Any, on_batch: Callable[[int], None] | None = None) -> int:
    """`ProjectionRunner.catch_up` with the next batch read, and the one after decided, while
    a batch is written; returns the events applied."""
    app, store, projection = runner.app, runner.store, runner.projection
    cache = projection.row_cache
    head = app.recorder.max_notification_id() or 0
    start = runner._read_position()
    cache.begin(start)
    applied = 0
    in_flight: tuple[Future, int, int] | None = None  # (commit, its end, its events)
    name, batches = projection.name, 0
    with (
        _short_gil_turns(),
        _young_collections_only(),
        ThreadPoolExecutor(1, thread_name_prefix=f"read-{name}") as reader,
        ThreadPoolExecutor(1, thread_name_prefix=f"write-{name}") as writer,
    ):
        try:
            reading = reader.submit(_read, runner, start, head) if start < head else None
            while reading is not None:
                if cache.too_big() and in_flight is not None:  # rows of the batch in flight
                    applied += _landed(in_flight, on_batch)  # must stay until it lands
                    in_flight = None
                if cache.too_big():
                    cache.forget()
                facts = reading.result()
                end = facts[-1].position if len(facts) == runner.batch_size else head
                reading = reader.submit(_read, runner, end, head) if end < head else None
                statements = _decide(store, projection, facts)
                if in_flight is not None:
                    applied += _landed(in_flight, on_batch)
                commit = writer.submit(_commit, store, name, start, end, statements)
                in_flight, start = (commit, end, len(facts)), end
                batches += 1
                if batches % YOUNG_EVERY == 0:
                    gc.collect(1)
            if in_flight is not None:
                applied += _landed(in_flight, on_batch)
                in_flight = None
            cache.committed(start)
        except PositionMoved:
            cache.forget()
        except BaseException:
            cache.forget()
            raise
    runner.settle(head)
    return applied


@contextlib.contextmanager
def _young_collections_only() -> Iterator[None]:
    """No automatic collections during the pass, the young generations collected every
    YOUNG_EVERY batches. The view's row cache is a large, long-lived heap that the collector's
    full passes scanned again and again for nothing (measured: 9 full collections freed 30
    objects in a rebuild of 65,000 events, and without them the rebuild ran 20-35 % faster)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # What the pass built (the row cache, parsed touchpoints) lives on: kept out of the
        # collector's full passes, which in a worker would otherwise stall following for a
        # few hundred ms each (measured: live lag p99 180-300 ms, not 20-40). Frozen objects
        # are still freed by reference counting when dropped; this code makes no cycles.
        gc.freeze()
        if was:
            gc.enable()


@contextlib.contextmanager
def _short_gil_turns() -> Iterator[None]:
    """Three threads share the GIL here, and the reader and writer mostly wait on PostgreSQL:
    with the default 5 ms switch interval each of their returns from a wait queued behind the
    deciding thread (measured: the writer's 38 commits took 2.7 s instead of 1.7 s)."""
    was = sys.getswitchinterval()
    sys.setswitchinterval(min(was, 0.0005))
    try:
        yield
    finally:
        sys.setswitchinterval(was)


def _read(runner: Any, start: int, stop: int) -> list[Fact]:
    """The next batch as facts. With the plain JSON the batch decoder reads (and eventsourcing's
    PostgreSQL recorder), straight from the events table as tuples: no Notification objects, no
    UUID objects made and turned back into text (~4 µs an event)."""
    recorder = runner.app.recorder
    datastore = getattr(recorder, "datastore", None)
    if not runner._fast or datastore is None or not hasattr(recorder, "events_table_name"):
        notes = recorder.select_notifications(
            start,
            limit=runner.batch_size,
            stop=stop,
            topics=runner.projection.topics,
            inclusive_of_start=False,
        )
        return runner._prepare(notes)
    statement = SQL(
        "SELECT notification_id, originator_id::text, topic, state FROM {schema}.{table}"
        " WHERE notification_id > %s AND notification_id <= %s AND topic = ANY(%s)"
        " ORDER BY notification_id LIMIT %s"
    ).format(schema=Identifier(datastore.schema), table=Identifier(recorder.events_table_name))
    decode = runner._decoder.decode
    params = (start, stop, list(runner.projection.topics), runner.batch_size)
    with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(statement, params, prepare=True)
        return [Fact(topic, oid, decode(state), nid) for nid, oid, topic, state in cur]


def _decide(store: Any, projection: Any, facts: list) -> list[tuple[str, Any]]:
    if not facts:
        return []
    with store.transaction() as read:
        cursor = DeferredWrites(read)
        projection.apply_batch(cursor, facts)
    return cursor.statements


def _landed(in_flight: tuple[Future, int, int], on_batch: Callable[[int], None] | None) -> int:
    commit, end, events = in_flight
    commit.result()  # raises what the commit raised
    if on_batch is not None:
        on_batch(end)
    return events


def _commit(store: Any, name: str, start: int, end: int, statements: list) -> None:
    with store.transaction() as cur:
        cur.execute("SELECT position FROM projection_tracking WHERE name = %s FOR UPDATE", (name,))
        row = cur.fetchone()
        if row is None:
            raise GenerationDropped(name)
        if int(row[0]) != start:
            raise PositionMoved(name)
        for sql, params in statements:
            cur.execute(sql, params)
        cur.execute("UPDATE projection_tracking SET position = %s WHERE name = %s", (end, name))
