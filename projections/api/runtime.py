"""What the read-model endpoints need, built once per process by redcart.wiring.

Reads on PostgreSQL go through an asyncio connection pool on the event loop: a product page is
one short statement, and a hop to the thread pool would cost more than the query. SQLite reads
run in a worker thread (DESIGN.md decision 2). The generation a view reads is cached for a
second (projections.rebuild.ActiveGenerations); if a switch dropped the tables a cached
generation named, the read refreshes it and tries once more.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from eventsourcing.application import Application
from litestar.concurrency import sync_to_thread

from projections import rebuild
from projections.registry import ReadConfig
from projections.runner import ProjectionRunner
from projections.sqlstore import SqlStore, missing_table

log = logging.getLogger(__name__)
POOL_SIZE = 8
RENDERED_MAX = 20_000


class ReadModels:
    def __init__(
        self,
        store: SqlStore,
        config: ReadConfig,
        apps: Mapping[str, Application],
        runners: Sequence[ProjectionRunner],
        clock: Callable[[], datetime],
        database_url: str | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.apps = apps
        self.runners = list(runners)
        self.clock = clock
        self.generations = rebuild.ActiveGenerations()
        self._database_url = database_url if store.dialect == "postgres" else None
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._rendered: dict[Any, tuple[float, bytes, tuple | None]] = {}

    @property
    def on_postgres(self) -> bool:
        return self.store.dialect == "postgres"

    # -- a short-lived cache of rendered answers -----------------------------------------------
    def rendered(self, key: Any) -> bytes | None:
        """A rendered answer younger than `page_cache_seconds`, if any.

        Why: a popular page is asked for many times a second, and reading and rendering it
        costs ~2x what the HTTP exchange itself costs. The view behind it is eventually
        consistent anyway (its runner polls every 0.25-1 s), and availability counts holds by
        5-second deadlines, so an answer a second old says nothing a fresh one would not.
        Clients that must have a fresh one send `Cache-Control: no-cache`."""
        hit = self._rendered.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def remember_rendered(
        self, key: Any, body: bytes, versions: tuple | None = None, right_for: float = 0.0
    ) -> None:
        """Keep `body`; with the `versions` of the rows it was rendered from, it may be renewed
        (see `revalidatable`) for `right_for` seconds, after which the clock alone changes it."""
        if self.config.page_cache_seconds <= 0:
            return
        if len(self._rendered) >= RENDERED_MAX:
            self._rendered.clear()  # cheaper than LRU bookkeeping on every hit
        now = time.monotonic()
        kept = None if versions is None else (versions, now + right_for * _spread())
        self._rendered[key] = (now + self.config.page_cache_seconds * _spread(), body, kept)

    def revalidatable(self, key: Any) -> tuple[bytes, tuple] | None:
        """A remembered answer past its second but still right if its rows are unchanged:
        its body and those rows' versions, for the caller to compare with the store's."""
        hit = self._rendered.get(key)
        if hit is None or hit[2] is None or hit[2][1] < time.monotonic():
            return None
        return hit[1], hit[2][0]

    def running_out(self, within: float) -> list[tuple[Any, tuple]]:
        """Remembered answers (key, rows' versions) whose second ends within `within` seconds
        and that would still be right if their rows are unchanged."""
        now = time.monotonic()
        soon = now + within
        return [
            (key, kept[0])
            for key, (fresh_until, _, kept) in list(self._rendered.items())
            if kept is not None and fresh_until < soon and kept[1] > now
        ]

    def renew(self, key: Any) -> bytes | None:
        """The rows are unchanged: reuse the answer for another `page_cache_seconds`."""
        hit = self._rendered.get(key)
        if hit is None:  # cleared meanwhile
            return None
        ttl = self.config.page_cache_seconds * _spread()
        self._rendered[key] = (time.monotonic() + ttl, *hit[1:])
        return hit[1]

    # -- runners (in-process mode) -------------------------------------------------------------
    def start(self) -> ReadModels:
        for runner in self.runners:
            runner.start()
        return self

    def wake(self) -> None:
        for runner in self.runners:
            runner.wake()

    def catch_up(self) -> None:
        """Apply everything committed so far, here and now (tests, demo loading)."""
        for runner in self.runners:
            runner.catch_up()

    async def aclose(self) -> None:
        for runner in self.runners:
            await sync_to_thread(runner.stop)
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        self.store.close()

    # -- reading -------------------------------------------------------------------------------
    async def generation(self, view: str) -> int:
        number = self.generations.cached(view)
        if number is None:
            rows = await self.fetch(
                "SELECT active FROM projection_generations WHERE view = %s", (view,)
            )
            if not rows:
                raise LookupError(f"read model {view!r} is not migrated")
            number = self.generations.remember(view, int(rows[0][0]))
        return number

    async def read(self, view: str, sql: Callable[[int], str], params: Sequence[Any]) -> list:
        """Run `sql(generation)` against the view's active generation."""
        for attempt in (1, 2):
            number = await self.generation(view)
            try:
                return await self.fetch(sql(number), params)
            except Exception as exc:
                if attempt == 2 or not missing_table(exc):
                    raise
                log.info("%s generation %s is gone; reading the new one", view, number)
                self.generations.forget()
        raise AssertionError("unreachable")

    async def read_together(
        self, view: str, statements: Sequence[tuple[Callable[[int], str], Sequence[Any]]]
    ) -> list[list]:
        """Several reads of the view's active generation from one snapshot, so a total and the
        page it sums cannot disagree because the runner committed between them."""
        for attempt in (1, 2):
            number = await self.generation(view)
            try:
                return await self._fetch_together([(sql(number), ps) for sql, ps in statements])
            except Exception as exc:
                if attempt == 2 or not missing_table(exc):
                    raise
                self.generations.forget()
        raise AssertionError("unreachable")

    async def _fetch_together(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list:
        if self._database_url is None:
            return await sync_to_thread(self.store.query_together, statements)
        pool = self._pool or await self._open_pool()
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            found = []
            for sql, params in statements:
                cur = await conn.execute(sql, params)
                found.append(await cur.fetchall())
            return found

    async def fetch(self, sql: str, params: Sequence[Any]) -> list:
        if self._database_url is None:
            return await sync_to_thread(self.store.query, sql, params)
        pool = self._pool or await self._open_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def _open_pool(self) -> Any:
        from psycopg_pool import AsyncConnectionPool

        async with self._pool_lock:
            if self._pool is None:
                pool = AsyncConnectionPool(
                    self._database_url,  # type: ignore[arg-type]
                    min_size=1,
                    max_size=POOL_SIZE,
                    open=False,
                    kwargs={"autocommit": True},
                )
                await pool.open(wait=True, timeout=10)
                self._pool = pool
        return self._pool

    def status(self) -> list[dict]:
        return rebuild.status(self.store, self.apps, self.config)


def _spread() -> float:
    """A share of a lifetime, 0.8 to 1: pages first rendered together (after a start, say)
    should not all need reading again in the same instant."""
    return 0.8 + 0.2 * random.random()
