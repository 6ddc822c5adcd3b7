"""Which process owns a flash deal's writer.

Exactly one process decides claims on a deal at a time, so the deal stays hot in one writer's
cache and its claims commit in batches instead of fighting over the (id, version) key
(research/eventsourcing.md §4: optimistic retries on one aggregate manage 12–44 claims/s).

On PostgreSQL a process owns a deal while it holds a session advisory lock on it, on one
connection kept for the purpose; if the process dies its session ends, the lock goes with it and
the next process that needs the deal takes it over. Owners publish the URL other processes
forward claims to in `deal_owners`. The lock is for speed, not safety: should two processes
ever write the same deal, the event store's version check still refuses one of them.

Embedded (SQLite) there is one process, which owns everything.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Protocol
from uuid import UUID

log = logging.getLogger(__name__)

OWNERS_DDL = (
    "CREATE TABLE IF NOT EXISTS deal_owners (deal_id TEXT PRIMARY KEY, url TEXT NOT NULL,"
    " pid INTEGER NOT NULL, since TIMESTAMPTZ NOT NULL DEFAULT now())"
)


def lock_key(deal_id: UUID) -> int:
    """The deal's advisory lock: one bigint folded from all 128 bits of its id.

    Distinct deals practically never share a key (63 bits: two of a million deals meet with a
    chance of about 5e-8). The key used to be the id's last 32 bits beside a class int4, so two
    deals whose ids ended alike shared one lock and the second could not be owned while the
    first was. The sign bit is always set: the singleton jobs' leases (projections.lease) lock
    bigints from 0 to 2**32 - 1 (a CRC-32), which a deal's key therefore never is.
    """
    high = int.from_bytes(deal_id.bytes[:8], "big")
    low = int.from_bytes(deal_id.bytes[8:], "big")
    return ((high ^ low) | (1 << 63)) - (1 << 64)  # as a signed bigint: always negative


class Ownership(Protocol):
    def acquire(self, deal_id: UUID) -> bool:
        """Own the deal if nobody does; True when this process owns it (now or already)."""

    def owner_url(self, deal_id: UUID) -> str | None: ...

    def owned(self) -> set[UUID]: ...

    def check(self) -> None: ...

    def release(self, deal_id: UUID) -> None: ...

    def close(self) -> None: ...


class SoleOwnership:
    """One process (the embedded default): every deal is ours."""

    def __init__(self) -> None:
        self._owned: set[UUID] = set()

    def acquire(self, deal_id: UUID) -> bool:
        self._owned.add(deal_id)
        return True

    def owner_url(self, deal_id: UUID) -> str | None:
        return None

    def owned(self) -> set[UUID]:
        return set(self._owned)

    def check(self) -> None:
        pass

    def release(self, deal_id: UUID) -> None:
        self._owned.discard(deal_id)

    def close(self) -> None:
        self._owned.clear()


class NeverOwner:
    """A process that never owns a deal and forwards to whoever does (the claim-orders
    worker, which takes no claims: owning a deal would make it the writer others forward to,
    and it listens for none)."""

    def __init__(self, owners: Ownership) -> None:
        self.owners = owners

    def acquire(self, deal_id: UUID) -> bool:
        return False

    def owner_url(self, deal_id: UUID) -> str | None:
        return self.owners.owner_url(deal_id)

    def owned(self) -> set[UUID]:
        return set()

    def check(self) -> None:
        pass

    def release(self, deal_id: UUID) -> None:
        pass

    def close(self) -> None:
        self.owners.close()


class AdvisoryOwnership:
    """Deal ownership by PostgreSQL session advisory locks, one connection per process."""

    def __init__(self, database_url: str, self_url: str) -> None:
        self.database_url = database_url
        self.self_url = self_url.rstrip("/")
        self._conn = None
        self._owned: set[UUID] = set()
        self._lock = threading.Lock()

    @staticmethod
    def migrate(database_url: str) -> None:
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(OWNERS_DDL)

    def _connection(self):  # type: ignore[no-untyped-def]
        import psycopg

        if self._conn is None or self._conn.closed:
            if self._owned:
                log.warning("deal ownership connection lost; giving up %d deals", len(self._owned))
            self._owned.clear()  # the locks went with the old session
            self._conn = psycopg.connect(self.database_url, autocommit=True)
        return self._conn

    def acquire(self, deal_id: UUID) -> bool:
        import psycopg

        if deal_id in self._owned:  # the hot path: no round trip (check() runs on a timer)
            return True
        with self._lock:
            try:
                conn = self._connection()
                if deal_id in self._owned:
                    return True
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(deal_id),))
                if not row.fetchone()[0]:
                    return False
                conn.execute(
                    "INSERT INTO deal_owners (deal_id, url, pid) VALUES (%s, %s, %s)"
                    " ON CONFLICT (deal_id) DO UPDATE SET url = EXCLUDED.url,"
                    " pid = EXCLUDED.pid, since = now()",
                    (str(deal_id), self.self_url, os.getpid()),
                )
                self._owned.add(deal_id)
                return True
            except psycopg.Error:
                log.warning("deal ownership check failed", exc_info=True)
                self._drop()
                return False

    def owner_url(self, deal_id: UUID) -> str | None:
        import psycopg

        with self._lock:
            try:
                row = (
                    self._connection()
                    .execute("SELECT url FROM deal_owners WHERE deal_id = %s", (str(deal_id),))
                    .fetchone()
                )
            except psycopg.Error:
                self._drop()
                return None
        return None if row is None else row[0]

    def check(self) -> None:
        """Still connected, so still holding every lock? Run every sweep, off the hot path."""
        import psycopg

        with self._lock:
            if self._conn is None:
                return
            try:
                self._conn.execute("SELECT 1")
            except psycopg.Error:
                log.warning("deal ownership connection lost; giving up %d deals", len(self._owned))
                self._drop()

    def owned(self) -> set[UUID]:
        with self._lock:
            return set(self._owned)

    def release(self, deal_id: UUID) -> None:
        import psycopg

        with self._lock:
            if deal_id not in self._owned or self._conn is None:
                return
            self._owned.discard(deal_id)
            try:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(deal_id),))
            except psycopg.Error:
                self._drop()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        self._owned.clear()
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None
