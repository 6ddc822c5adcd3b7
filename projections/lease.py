"""Exactly one process at a time runs a singleton job (a PostgreSQL session advisory lock).

The lock lives as long as the holder's connection: if the holder dies, PostgreSQL ends its
session and another process's next `held()` takes over.
"""

from __future__ import annotations

import contextlib
import threading
import zlib


class AdvisoryLease:
    def __init__(self, database_url: str, name: str) -> None:
        self.database_url = database_url
        self.key = zlib.crc32(name.encode())
        self._conn = None
        self._lock = threading.Lock()
        self._released = False

    def held(self) -> bool:
        import psycopg

        with self._lock:
            if self._released:  # shut down: a look already on its way must not take it again
                return False
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.database_url, autocommit=True)
                    row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
                    self._holding = bool(row.fetchone()[0])
                    if not self._holding:
                        self._conn.close()
                    return self._holding
                self._conn.execute("SELECT 1")  # still connected, so still held
                return True
            except psycopg.Error:
                self._conn = None
                return False

    def release(self) -> None:
        """For good, at shutdown. A follower's look at the lease runs in a thread that its
        task's cancellation does not stop: without this, one that started just after the
        release took the lease again on a new connection that nothing would close, and the
        restarted process waited for it forever (a flaky restart test in CI)."""
        with self._lock:
            self._released = True
            if self._conn is not None and not self._conn.closed:
                # unlock before closing: PostgreSQL drops a closed session's locks only once its
                # backend has exited, after close() returned, so a successor looking at once
                # could still find it held (test_lease failed so once in CI)
                with contextlib.suppress(Exception):
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
                self._conn.close()
            self._conn = None
