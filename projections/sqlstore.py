"""A small SQL seam for read models: SQLite (embedded default) or PostgreSQL, same SQL text.

Statements are written with `%s` placeholders and `ON CONFLICT` upserts, which both engines
understand; SQLite gets `?` substituted. Read models live apart from the event store (their own
SQLite file, or their own tables on PostgreSQL), so view writes never take the events lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from commerce.platform.eventstore import is_postgres


class SqlStore:
    dialect: str

    @staticmethod
    def open(database_url: str | None, var_dir: Path, max_size: int = 8) -> SqlStore:
        if is_postgres(database_url):
            return PostgresStore(database_url, max_size)  # type: ignore[arg-type]
        return SqliteStore(var_dir / "views.db")

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        raise NotImplementedError
        yield

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.transaction() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def close(self) -> None:
        pass


class _SqliteCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _SqliteCursor:
        self._cursor.execute(sql.replace("%s", "?"), params)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(sql.replace("%s", "?"), rows)

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()

    def fetchone(self) -> tuple | None:
        return self._cursor.fetchone()


class SqliteStore(SqlStore):
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Reads run outside a write transaction: WAL readers never wait for the writer."""
        return self._connection().execute(sql.replace("%s", "?"), params).fetchall()

    def query_together(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list]:
        """Several reads from one snapshot: a deferred WAL read transaction sees the database
        as of its first read, whatever the writer commits meanwhile."""
        conn = self._connection()
        conn.execute("BEGIN DEFERRED")
        try:
            return [conn.execute(sql.replace("%s", "?"), ps).fetchall() for sql, ps in statements]
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[_SqliteCursor]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _SqliteCursor(conn.cursor())
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


class PostgresStore(SqlStore):
    dialect = "postgres"

    def __init__(self, database_url: str, max_size: int = 8) -> None:
        from psycopg_pool import ConnectionPool

        self.pool = ConnectionPool(
            database_url, min_size=1, max_size=max_size, open=True, kwargs={"autocommit": False}
        )

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def close(self) -> None:
        self.pool.close()


def missing_table(exc: Exception) -> bool:
    """Whether `exc` says a table is gone: a blue/green rebuild dropped the generation a reader
    still had in mind (it then looks up the active one and reads again)."""
    text = str(exc).lower()
    return "no such table" in text or ("relation" in text and "does not exist" in text)
