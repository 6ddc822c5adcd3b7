"""Renewing remembered product pages in the background, on PostgreSQL.

A rendered page is reused for a second (ReadModels.rendered); after that, if the rows it was
rendered from are unchanged (their xmin versions, projections.api.pages.versions_sql), it is
still right. Checking that inside the request costs a round trip on the request's path, about
one request in ten on a busy catalogue. Here, every quarter second, the pages about to run out
of their second are checked together, in one statement per generation, and renewed if
unchanged; a changed page simply runs out and is read and rendered by the next request. So a
change still shows within about a second, and popular pages are almost never read inline.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from functools import lru_cache

from projections.api.pages import version_columns
from projections.api.runtime import ReadModels
from projections.product_page import PageTables
from projections.registry import Generation, ReadConfig

log = logging.getLogger(__name__)
RENEW_EVERY = 0.25  # seconds between checks
LOOK_AHEAD = 0.5  # renew what would run out before the check after next


@lru_cache(maxsize=16)
def _versions_of_many_sql(number: int) -> str:
    t = PageTables(Generation(number, "postgres", ReadConfig()))
    return f"SELECT p.id, {version_columns(t)} FROM {t.pages} p WHERE p.id = ANY(%s)"  # noqa: S608


async def renew_pages(reads: ReadModels) -> int:
    """Renew the remembered pages about to run out whose rows are unchanged (how many)."""
    due: dict[int, list[tuple[tuple, tuple]]] = defaultdict(list)
    for key, versions in reads.running_out(LOOK_AHEAD):
        due[key[0]].append((key, versions))
    renewed = 0
    for number, items in due.items():
        rows = await reads.fetch(_versions_of_many_sql(number), ([k[1] for k, _ in items],))
        now = {row[0]: tuple(row[1:]) for row in rows}
        for key, versions in items:
            if now.get(key[1]) == versions and reads.renew(key) is not None:
                renewed += 1
    return renewed


async def renew_pages_forever(reads: ReadModels) -> None:
    while True:
        await asyncio.sleep(RENEW_EVERY)
        try:
            await renew_pages(reads)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a rebuild dropped a generation, the store blinked: next time
            log.info("renewing product pages failed: %s", type(exc).__name__)
