"""Which of many aggregate ids exist, in one query.

Why: a new order's idempotency record and a first-time buyer's quota are usually absent, and
asking the store one id at a time inside the single writer costs a round trip per command.
The writer asks once per batch instead. A create that races with another process still meets
the (id, version) key, so this is only ever a shortcut, never the guard.
"""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from eventsourcing.persistence import Recorder


def existing_ids(recorder: Recorder, ids: Collection[UUID]) -> set[UUID] | None:
    """The ids that have events; None when this store is not one we know how to ask."""
    if not ids:
        return set()
    datastore = getattr(recorder, "datastore", None)
    table = getattr(recorder, "events_table_name", None)
    kind = type(recorder).__module__
    if datastore is None or table is None:
        return None
    if kind == "eventsourcing.postgres":
        from psycopg.sql import SQL, Identifier

        statement = SQL(
            "SELECT DISTINCT originator_id FROM {schema}.{table} WHERE originator_id = ANY(%s)"
        ).format(schema=Identifier(datastore.schema), table=Identifier(table))
        with datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (list(ids),))
            return {UUID(str(row["originator_id"])) for row in curs.fetchall()}
    if kind == "eventsourcing.sqlite":
        marks = ",".join("?" * len(ids))
        statement = f"SELECT DISTINCT originator_id FROM {table} WHERE originator_id IN ({marks})"  # noqa: S608
        with datastore.transaction(commit=False) as curs:
            curs.execute(statement, [i.hex for i in ids])
            return {
                UUID(row[0] if isinstance(row, tuple) else row["originator_id"])
                for row in curs.fetchall()
            }
    return None
