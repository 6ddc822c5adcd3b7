"""From one database URL to eventsourcing's environment, for any context's Application.

SQLite (the embedded default) keeps each Application in its own file under the var directory;
PostgreSQL keeps each in its own `<name>_events` table, so each context has its own write lock,
and appends a save's events in one call (commerce.platform.pg_append).
Runtime processes never create tables (9.5's startup race, research/eventsourcing.md §2.5):
`redcart migrate` does, once.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from commerce.platform import pg_append


def is_postgres(database_url: str | None) -> bool:
    return bool(database_url) and urlsplit(database_url).scheme in ("postgres", "postgresql")


def event_store_env(
    database_url: str | None,
    var_dir: Path,
    app_name: str,
    *,
    create_table: bool = False,
    pool_size: int = 10,
    max_overflow: int | None = None,
) -> dict[str, str]:
    env = {"CREATE_TABLE": "y" if create_table else "n"}
    if not database_url or database_url.startswith("sqlite"):
        path = urlsplit(database_url).path if database_url else ""
        folder = Path(path) if path else var_dir
        folder.mkdir(parents=True, exist_ok=True)
        return env | {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(folder / f"{app_name.lower()}.db"),
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    if not is_postgres(database_url):
        raise ValueError("REDCART_DATABASE_URL must be postgresql://… or sqlite:///folder")
    url = urlsplit(database_url)
    return env | {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size if max_overflow is None else max_overflow),
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_LOCK_TIMEOUT": "5",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "5",
        "APPLICATION_RECORDER_TOPIC": pg_append.TOPIC,
    }
