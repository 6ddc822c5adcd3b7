"""Records expiries of unpaid orders. Stock and quota do not wait for it: an unpaid hold stops
counting the moment it lapses (see commerce.domain.inventory); this only writes the fact down,
releasing lapsed holds so streams stay small and lists say "expired"."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from litestar.concurrency import sync_to_thread

from commerce.api.runtime import CommerceRuntime
from commerce.domain.orders import Order
from commerce.services.fulfilment import expire_order

log = logging.getLogger(__name__)


async def sweep_once(runtime: CommerceRuntime, limit: int = 500) -> int:
    now = runtime.cfg.clock()
    await runtime.caught_up()  # and on the generation of the order list reads use
    rows = await sync_to_thread(
        runtime.store.query,
        f"SELECT id FROM {runtime.list_table('orders')} WHERE status = 'placed'"  # noqa: S608
        " AND expires_at <= %s LIMIT %s",
        (now.timestamp(), limit),
    )
    expired = 0
    for (order_id,) in rows:
        if await runtime.writer.submit(expire_order, runtime.cfg, UUID(order_id)):
            expired += 1
            if runtime.coupon_moved is not None:  # a lapsed coupon use is free again
                order = await runtime.read(UUID(order_id), Order)
                await runtime.tell_coupon_moved(getattr(order, "coupon_id", None))
    return expired


async def sweep_forever(runtime: CommerceRuntime, interval: float) -> None:
    while True:
        try:
            await sweep_once(runtime)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("expiry sweep failed; next try in %ss", interval)
        await asyncio.sleep(interval)
