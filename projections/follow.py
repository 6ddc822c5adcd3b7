"""The loop of a tracked follower that must run in one process at a time (process managers).

Why shared: the payment process and the deal settlement both follow the commerce log, hold a
PostgreSQL advisory lease, wake on a commit or a poll, and must survive any one failure; they
differ only in what `catch_up` does with the events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from litestar.concurrency import sync_to_thread


async def follow_forever(
    catch_up: Callable[[], Awaitable[object]],
    lease: Callable[[], bool],
    wake: asyncio.Event,
    log: logging.Logger,
    *,
    poll_interval: float,
    retry_after: float,
    min_interval: float = 0.0,
) -> None:
    """While this process holds the lease, catch up; then wait for a wake-up or the poll
    interval. `min_interval` spaces the looks out when commits come in bursts."""
    while True:
        try:
            if await sync_to_thread(lease):
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
