"""Which of many aggregate ids exist, in one query.

Why: a new order's idempotency record and a first-time buyer's quota are usually absent, and
asking the store one id at a time inside the single writer costs a round trip per command.
The writer asks once per batch instead. A create that races with another process still meets
the (id, version) key, so this is only ever a shortcut, never the guard.

On PostgreSQL the same query also answers the writer's other question before each batch (how
far the notification log has grown), so a batch costs one round trip before it is decided,
not two. In a busy API process each round trip is also a wait for the GIL (pg_append).
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Recorder
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Composed, Identifier

_GLANCE = (
    "SELECT (SELECT max(notification_id) FROM {schema}.{table}) AS newest, ARRAY("
    "SELECT DISTINCT originator_id FROM {schema}.{table} WHERE originator_id = ANY(%s)"
    ") AS found"
)


@functools.cache
def _glance(schema: str, table: str) -> Composed:
    return SQL(_GLANCE).format(schema=Identifier(schema), table=Identifier(table))


def newest_and_existing(
    recorder: ApplicationRecorder, ids: Collection[UUID]
) -> tuple[int, set[UUID] | None]:
    """The newest notification id, and which of `ids` have events (None: unknown here)."""
    if isinstance(recorder, PostgresAggregateRecorder):
        datastore = recorder.datastore
        statement = _glance(datastore.schema, recorder.events_table_name)
        with datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (list(ids),), prepare=True)
            row = curs.fetchone()
        assert row is not None
        return row["newest"] or 0, {UUID(str(i)) for i in row["found"]}
    return recorder.max_notification_id() or 0, _existing_on_sqlite(recorder, ids)


def _existing_on_sqlite(recorder: Recorder, ids: Collection[UUID]) -> set[UUID] | None:
    """The ids that have events; None when this store is not one we know how to ask."""
    if not ids:
        return set()
    if not isinstance(recorder, SQLiteAggregateRecorder):
        return None
    marks = ",".join("?" * len(ids))
    table = recorder.events_table_name
    statement = f"SELECT DISTINCT originator_id FROM {table} WHERE originator_id IN ({marks})"  # noqa: S608
    with recorder.datastore.transaction(commit=False) as curs:
        curs.execute(statement, [i.hex for i in ids])
        return {
            UUID(row[0] if isinstance(row, tuple) else row["originator_id"])
            for row in curs.fetchall()
        }
