"""A PostgreSQL application recorder that appends a batch of events in one round trip.

Why: eventsourcing 9.5.6 saves through a psycopg pipeline (BEGIN, SET LOCAL lock_timeout, LOCK
TABLE, NOTIFY, the INSERTs, a sync, COMMIT), and the saving thread waits on the server several
times per save. Each wait gives up the GIL; in a busy API process the thread gets it back only
when the event loop's thread is made to yield, after `sys.getswitchinterval()` (5 ms). So a
flash sale's group commit, whose saves are few and large, spent most of each save waiting for
the GIL, not for PostgreSQL. Beside a thread that holds the GIL (`redcart bench event-append`,
BENCHMARKS.md) a batch of 20 claims' events took 47 ms through the pipeline and 13 ms as one
call (idle: 4.0 and 2.6 ms).

The function does what the library's transaction does, in the same order: the lock timeout,
the table lock in EXCLUSIVE mode (so insert order is commit order and readers tailing the
notification log never pass a gap that fills later), NOTIFY on the library's channel, then
the INSERT returning the notification ids. A unique violation on (originator_id, version)
surfaces as the same IntegrityError. It is not the library's `POSTGRES_ENABLE_DB_FUNCTIONS`
path, which takes no table lock and shares one function name per schema
(research/eventsourcing.md §2.4): this one is named after its table.

`redcart migrate` creates it with the table (CREATE_TABLE=y). A database migrated before it
existed still works: the first save finds it missing, logs once, and keeps the library's path.
Saves that record tracking (process recorders) are not this class's; they never come here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier, Literal

log = logging.getLogger(__name__)
TOPIC = f"{__name__}:AppendingRecorder"  # eventsourcing's APPLICATION_RECORDER_TOPIC

_CREATE = """
CREATE OR REPLACE FUNCTION {schema}.{function}(
    ids uuid[], versions bigint[], topics text[], states bytea[], lock_timeout text
) RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lock_timeout', lock_timeout, true);
    LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;
    PERFORM pg_notify({channel}, '');
    RETURN QUERY
        INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)
        SELECT * FROM unnest(ids, versions, topics, states)
        RETURNING notification_id;
END
$$
"""
_CALL = (
    "SELECT notification_id FROM {schema}.{function}("
    "%s::uuid[], %s::bigint[], %s::text[], %s::bytea[], %s) AS notification_id"
)


class AppendingRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        names = {
            "schema": Identifier(datastore.schema),
            "function": Identifier(f"{events_table_name}_append"),
            "table": Identifier(events_table_name),
        }
        self.sql_create_statements.append(
            SQL(_CREATE).format(channel=Literal(self.channel_name), **names)  # type: ignore[arg-type]
        )
        self._call = SQL(_CALL).format(**names)  # type: ignore[arg-type]
        self._lock_timeout = f"{datastore.lock_timeout}s"
        self.appends_in_one_call = datastore.originator_id_type == "uuid"

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if (
            not self.appends_in_one_call
            or not stored_events
            or kwargs.get("tracking") is not None
            or set(kwargs) - {"tracking"}
        ):
            return super().insert_events(stored_events, **kwargs)
        ids = self._append(stored_events)
        if ids is None:  # the function is missing: this database predates it
            self.appends_in_one_call = False
            log.warning(
                "%s has no append function: saving the slower way "
                "(run `redcart migrate`, then restart)",
                self.events_table_name,
            )
            return super().insert_events(stored_events, **kwargs)
        return ids

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _append(self, stored_events: Sequence[StoredEvent]) -> list[int] | None:
        columns = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
            self._lock_timeout,
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            try:
                curs.execute(self._call, columns, prepare=True)
            except psycopg.errors.UndefinedFunction:
                return None
            return [row["notification_id"] for row in curs.fetchall()]
