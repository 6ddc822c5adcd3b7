"""Shared fixtures: PostgreSQL (the local server, else a throwaway one, else a visible skip;
never a skip in CI), settings for a fresh store, and a running API for either store."""

from __future__ import annotations

import glob
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest

from redcart.settings import Settings

LOCAL_POSTGRES = os.environ.get(
    "REDCART_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
ADMIN_KEY = "test-admin-key-0123456789"
SECRET_KEY = "test-secret-key-0123456789abcdef"


def _reachable(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _throwaway_server(tmp: Path) -> Iterator[str] | None:
    """Start a private PostgreSQL with pytest-postgresql when its binaries are installed."""
    pg_ctl = shutil.which("pg_ctl") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)), None
    )
    if pg_ctl is None or os.geteuid() == 0:  # initdb refuses to run as root
        return None
    from pytest_postgresql.executor import PostgreSQLExecutor

    port = _free_port()
    executor = PostgreSQLExecutor(
        executable=pg_ctl,
        host="127.0.0.1",
        port=port,
        datadir=str(tmp / "pgdata"),
        unixsocketdir=str(tmp),
        logfile=str(tmp / "pg.log"),
        startparams="-w",
        dbname="test",
        user="postgres",
        password="",
        options="",
    )
    executor.start()

    def run() -> Iterator[str]:
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            executor.stop()

    return run()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if _reachable(LOCAL_POSTGRES):
        yield LOCAL_POSTGRES
        return
    throwaway = _throwaway_server(tmp_path_factory.mktemp("pg"))
    if throwaway is not None:
        yield from throwaway
        return
    reason = f"PostgreSQL not reachable at {LOCAL_POSTGRES} and no pg_ctl to start one"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
    pytest.skip(reason)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"redcart_t_{uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_settings(database_url: str | None, var_dir: Path, **overrides: str) -> Settings:
    env = {
        "REDCART_VAR_DIR": str(var_dir),
        "REDCART_ADMIN_KEY": ADMIN_KEY,
        "REDCART_SECRET_KEY": SECRET_KEY,
        "REDCART_SWEEP_INTERVAL_SECONDS": "0.2",
        **overrides,
    }
    if database_url:
        env["REDCART_DATABASE_URL"] = database_url
    return Settings.from_env(env)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """Both stores a user can run on: the embedded SQLite default and PostgreSQL."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_url")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `make test` (pytest-xdist, `--dist loadgroup`) every test that uses PostgreSQL
    runs in one process, one at a time: a test's API servers and workers hold up to ~40
    connections, and two such tests at once ran the local server (100 connections by default)
    out of them. Both processes share the rest (SQLite, or no database at all)."""
    for item in items:
        uses = item.get_closest_marker("postgres") or "postgres_server" in getattr(
            item, "fixturenames", ()
        )
        if uses:
            item.add_marker(pytest.mark.xdist_group("postgres"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a PostgreSQL test, saying why, if pytest-xdist ignored its group: with pytest 9.2 it
    did so silently, and the suite then failed here and there for want of connections
    (pytest-xdist#1386)."""
    grouped = getattr(item.config.option, "loadgroup", False)  # set in xdist's workers only
    if grouped and item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
        pytest.fail(
            "pytest-xdist did not keep the PostgreSQL tests in one process (pytest-xdist#1386):"
            " run `make test TEST_WORKERS=0`, or use a pytest whose node ids xdist can group",
            pytrace=False,
        )
