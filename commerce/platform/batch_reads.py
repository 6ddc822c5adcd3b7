"""Aggregates wanted at once on an event loop, read from the store together.

Why: a token is checked against the hash its owner's aggregate stores, so each buyer's first
request in a process reads that buyer from the store. In a live room's first flash sale
thousands of buyers claim for the first time within a second; read one by one, each a round
trip on a pool thread, those reads put the sale's p99 at 223–533 ms on two cores, against
12–127 ms for sales whose buyers were already known (BENCHMARKS.md, flash deal, stop 23). So
reads asked for while one is under way are gathered and made next in one query, as the deal's
writer gathers claims into one commit; batched, the same first sale's p99 was 38–68 ms.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Collection
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from litestar.concurrency import sync_to_thread
from psycopg.sql import SQL, Composed, Identifier

from commerce.platform.replay import mutate_all

MAX_IDS = 500  # per query: a sale's first second asks for about as many at a time

_SELECT = (
    "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
    "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
)


@functools.cache
def _select(schema: str, table: str) -> Composed:
    return SQL(_SELECT).format(schema=Identifier(schema), table=Identifier(table))


def read_many(app: Application, ids: Collection[UUID]) -> dict[UUID, Any]:
    """The aggregates of `ids` that exist, as `app.repository.get` reconstructs them.

    One query on PostgreSQL; elsewhere (SQLite, an application with snapshots) one
    `repository.get` per id, which is what it would have done anyway."""
    recorder = app.recorder
    if not isinstance(recorder, PostgresAggregateRecorder) or app.snapshots is not None:
        found = {}
        for aggregate_id in ids:
            try:
                found[aggregate_id] = app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                continue
        return found
    datastore = recorder.datastore
    statement = _select(datastore.schema, recorder.events_table_name)
    with datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, (list(ids),), prepare=True)
        rows = curs.fetchall()
    events: dict[UUID, list[Any]] = {}
    for row in rows:
        stored = StoredEvent(
            originator_id=row["originator_id"],
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=bytes(row["state"]),
        )
        aggregate_id = UUID(str(row["originator_id"]))
        events.setdefault(aggregate_id, []).append(app.mapper.to_domain_event(stored))
    return {i: mutate_all(None, evs) for i, evs in events.items()}


class BatchedReads:
    """`get` an aggregate on an event loop; reads asked for meanwhile share the next query.

    One read is under way at a time: the first asker starts it on the next pass of the loop
    (so that the requests already in that pass join it), and whoever asks while it runs waits
    for the following one, made as soon as it returns."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self._wanted: dict[UUID, list[asyncio.Future]] = {}
        self._reading: asyncio.Task | None = None
        self.queries = 0  # how many reads were made, for tests and benchmarks

    async def get(self, aggregate_id: UUID) -> Any | None:
        """The aggregate as stored now, or None if it has no events."""
        loop = asyncio.get_running_loop()
        answer = loop.create_future()
        self._wanted.setdefault(aggregate_id, []).append(answer)
        if self._reading is None:
            self._reading = loop.create_task(self._read_all())
        return await answer

    async def _read_all(self) -> None:
        await asyncio.sleep(0)  # the rest of this pass of the loop asks too
        batch: dict[UUID, list[asyncio.Future]] = {}
        try:
            while self._wanted:
                ids = list(self._wanted)[:MAX_IDS]
                batch = {i: self._wanted.pop(i) for i in ids}
                self.queries += 1
                try:
                    found = await sync_to_thread(read_many, self.app, ids)
                except Exception as exc:  # these askers fail; the next batch tries afresh
                    _answer(batch, None, exc)
                else:
                    _answer(batch, found, None)
                batch = {}
        except BaseException as exc:  # cancelled (shutdown): nobody waits for ever
            _answer(batch, None, exc)
            _answer(self._wanted, None, exc)
            self._wanted = {}
            raise
        finally:
            self._reading = None


def _answer(
    batch: dict[UUID, list[asyncio.Future]],
    found: dict[UUID, Any] | None,
    exc: BaseException | None,
) -> None:
    for aggregate_id, answers in batch.items():
        for answer in answers:
            if answer.done():  # its asker went away
                continue
            if exc is not None:
                answer.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            else:
                answer.set_result((found or {}).get(aggregate_id))
