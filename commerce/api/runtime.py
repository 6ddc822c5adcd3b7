"""What request handlers need, built once per process by the composition root."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from litestar.concurrency import sync_to_thread

from commerce import credentials
from commerce.application import Commerce
from commerce.config import CommerceConfig
from commerce.domain.accounts import Buyer
from commerce.domain.merchants import Merchant
from commerce.platform.batch_reads import BatchedReads
from commerce.platform.groupcommit import GroupCommitWriter
from commerce.platform.vault import IdentityVault
from commerce.services.access import ADMIN, BUYER, MERCHANT, Principal
from projections.runner import ProjectionRunner
from projections.sqlstore import SqlStore

AUTH_CACHE_SECONDS = 30.0
log = logging.getLogger(__name__)


@dataclass
class CommerceRuntime:
    app: Commerce
    writer: GroupCommitWriter
    cfg: CommerceConfig
    store: SqlStore
    lists: ProjectionRunner
    admin_key: str
    vault: IdentityVault
    engagement: Any = None  # commerce.services.engagement.EngagementBuffer, once started
    # async (session_id, coupon_id) -> commerce.domain.coupons.CouponTerms | None: set by the
    # composition root, since coupons are issued in live sessions (the Livestream context)
    coupons: Any = None
    # async (coupon_id) -> None: tells the coupon's live room how many uses it has left
    coupon_moved: Any = None
    _auth_cache: dict[str, tuple[float, Principal | None]] = field(default_factory=dict)

    @functools.cached_property
    def _owners(self) -> BatchedReads:
        """Tokens' owners, read together with the other first-time tokens' (read-only)."""
        return BatchedReads(self.app)

    async def read(self, aggregate_id: UUID, kind: type) -> Any | None:
        """A fresh read from the store, off the event loop."""
        try:
            aggregate = await sync_to_thread(self.app.repository.get, aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, kind) else None

    async def tell_coupon_moved(self, coupon_id: Any) -> None:
        """An order took or gave back a live coupon's use. The order is committed already, so
        a room that cannot be told is logged, never the order's failure."""
        if coupon_id is None or self.coupon_moved is None:
            return
        try:
            await self.coupon_moved(UUID(str(coupon_id)))
        except Exception:
            log.exception("could not tell the room of coupon %s its uses left", coupon_id)

    async def authenticate(self, token: str) -> Principal | None:
        if hmac.compare_digest(token.encode(), self.admin_key.encode()):
            return Principal(ADMIN)
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._auth_cache.get(digest)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        principal = await self._verify(token)
        if len(self._auth_cache) > 100_000:
            self._auth_cache.clear()
        self._auth_cache[digest] = (time.monotonic() + AUTH_CACHE_SECONDS, principal)
        return principal

    async def _verify(self, token: str) -> Principal | None:
        parsed = credentials.parse(token)
        if parsed is None:
            return None
        prefix, owner_id = parsed
        kind, cls = (
            (MERCHANT, Merchant) if prefix == credentials.MERCHANT_PREFIX else (BUYER, Buyer)
        )
        owner = await self._owners.get(owner_id)
        owner = owner if isinstance(owner, cls) else None
        stored = getattr(owner, "api_key_hash" if kind == MERCHANT else "token_hash", None)
        if stored is None or not credentials.matches(token, stored):
            return None
        return Principal(kind, owner_id)

    async def caught_up(self) -> None:
        """Read-your-writes for lists: wait (briefly) until the list view has what was committed."""
        head = await sync_to_thread(self.app.recorder.max_notification_id)
        await sync_to_thread(self.lists.wait_for, head or 0, 2.0)

    def list_table(self, key: str) -> str:
        """The table of list view `key` (projections.commerce_lists.TABLES) in the generation
        the lists runner keeps: it follows a blue/green rebuild's switch (checked by
        `caught_up`), and read-your-writes holds for that generation."""
        return self.lists.projection.t[key]
