"""`GET /projections/status` (admin): each projection's generation, position, head and lag."""

from __future__ import annotations

from litestar import get
from litestar.concurrency import sync_to_thread

from commerce.api.auth import allow
from commerce.services.access import ADMIN
from projections.api.pages import Reads


@get("/projections/status", guards=[allow(ADMIN)], tags=["ops"])
async def projections_status(reads: Reads) -> dict:
    """What `redcart projections status --json` prints, for dashboards."""
    return {"projections": await sync_to_thread(reads.status)}
