"""The loop of a tracked follower that must run in one process at a time (process managers).

Why shared: the payment process, the deal settlement and the claims' orders each follow a log,
hold a PostgreSQL advisory lease, wake on a commit or a poll, and must survive any one failure;
they differ only in what `catch_up` does with the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from litestar.concurrency import sync_to_thread

from projections.burst import BurstHold


async def follow_forever(
    catch_up: Callable[[], Awaitable[object]],
    lease: Callable[[], bool],
    wake: asyncio.Event,
    log: logging.Logger,
    *,
    poll_interval: float,
    retry_after: float,
    min_interval: float = 0.0,
    hold: BurstHold | None = None,
    head: Callable[[], int] | None = None,
) -> None:
    """While this process holds the lease, catch up; then wait for a wake-up or the poll
    interval. `min_interval` spaces the looks out when commits come in bursts; `hold` defers
    catching up while `head()` (the log's newest id) grows in a burst (projections.burst)."""
    while True:
        try:
            if await sync_to_thread(lease):
                if hold is not None and head is not None:
                    await wait_out(hold, head)
                await catch_up()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; retrying", log.name)
            await asyncio.sleep(retry_after)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), poll_interval)
        wake.clear()
        if min_interval:
            await asyncio.sleep(min_interval)


async def wait_out(hold: BurstHold, head: Callable[[], int]) -> None:
    """Sleep while `hold` says the log (`head()`, its newest id) is in a burst."""
    while (pause := hold.pause(await sync_to_thread(head))) > 0:
        await asyncio.sleep(pause)


class TrackedFollower:
    """A follower whose position is its row of `projection_tracking` in `store`. Subclasses
    name the row (`NAME`) and say what `catch_up` does; advancing is theirs to call, after
    the effects of what they read."""

    NAME: str

    def __init__(
        self,
        store: Any,
        log: logging.Logger,
        lease: Callable[[], bool] = lambda: True,
        poll_interval: float = 0.5,
        release: Callable[[], None] = lambda: None,
        hold: BurstHold | None = None,
    ) -> None:
        self.store, self.log, self.lease, self.hold = store, log, lease, hold
        self.poll_interval = poll_interval
        self.release = release  # the lease, at shutdown: a restart here must not wait for it
        self.wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def migrate(cls, store: Any) -> None:
        with store.transaction() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS projection_tracking (name TEXT PRIMARY KEY,"
                " position BIGINT NOT NULL)"
            )
            cur.execute(
                "INSERT INTO projection_tracking (name, position) VALUES (%s, 0)"
                " ON CONFLICT (name) DO NOTHING",
                (cls.NAME,),
            )

    def notify(self) -> None:
        """Called by a writer after each commit (from its thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.wake.set)

    def _position(self) -> int:
        rows = self.store.query(
            "SELECT position FROM projection_tracking WHERE name = %s", (self.NAME,)
        )
        return int(rows[0][0]) if rows else 0

    def _advance(self, position: int) -> None:
        with self.store.transaction() as cur:
            cur.execute(
                "UPDATE projection_tracking SET position = %s WHERE name = %s",
                (position, self.NAME),
            )

    async def run_forever(self) -> None:
        self._loop = asyncio.get_running_loop()
        await follow_forever(
            self.catch_up, self.lease, self.wake, self.log,
            poll_interval=self.poll_interval, retry_after=1, hold=self.hold, head=self.head,
        )  # fmt: skip

    def head(self) -> int:
        """The newest id of the log this follower reads (what `hold` watches grow)."""
        raise NotImplementedError

    async def catch_up(self) -> int:
        raise NotImplementedError
