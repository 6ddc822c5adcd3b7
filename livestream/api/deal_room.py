"""What the room hears about flash deals, and the owner's sweep that keeps deals current.

Claims arrive by the thousand per second; viewers need "units left" about ten times a second and
"someone just bought" a few times a second, not once per claim. So units left and purchases are
gathered here per deal and flushed each tick: one coalesced units-left update and at most one
reliable `deal.bought` per deal per flush, whatever the claim rate. A sell-out, an opening and a
close are reliable events sent as they happen (after their commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from commerce.domain.errors import DomainError
from commerce.platform.groupcommit import WriterUnavailable
from livestream.engine.router import DealEngine
from livestream.room import RoomEvent, RoomHub

log = logging.getLogger("redcart.livestream.deals")
TICK_SECONDS = 0.1
PROOF_SECONDS = 0.5
SWEEP_SECONDS = 0.5
MAX_NAMES = 3


@dataclass
class _Pending:
    session_id: str
    units_left: int | None = None
    bought: int = 0
    names: list[str] = field(default_factory=list)


class DealRoom:
    def __init__(
        self,
        hub: RoomHub,
        engine: DealEngine,
        open_deals: Callable[[], dict[UUID, UUID]],
    ) -> None:
        """`open_deals()` maps each deal not known to be closed to its session."""
        self.hub = hub
        self.engine = engine
        self.open_deals = open_deals
        self._pending: dict[str, _Pending] = {}
        self._tasks: list[asyncio.Task] = []
        self._background: set[asyncio.Task] = set()

    # -- feeding -------------------------------------------------------------------------------
    async def opened(self, deal: dict[str, Any]) -> None:
        await self.hub.publish(deal["session_id"], RoomEvent("deal.opened", deal))

    async def closed(self, deal: dict[str, Any]) -> None:
        await self.hub.publish(deal["session_id"], RoomEvent("deal.closed", deal))

    def units_changed(self, deal: dict[str, Any]) -> None:
        self._entry(deal).units_left = deal["units_left"]

    async def claimed(self, deal: dict[str, Any], quantity: int, buyer_label: str) -> None:
        entry = self._entry(deal)
        entry.units_left = deal["units_left"]
        entry.bought += quantity
        if len(entry.names) < MAX_NAMES:
            entry.names.append(buyer_label)
        if deal["units_left"] == 0:  # told at once, but the buyer's answer does not wait for it
            task = asyncio.create_task(
                self.hub.publish(deal["session_id"], RoomEvent("deal.sold_out", deal))
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _entry(self, deal: dict[str, Any]) -> _Pending:
        entry = self._pending.get(deal["id"])
        if entry is None:
            entry = self._pending[deal["id"]] = _Pending(deal["session_id"])
        return entry

    # -- loops ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._flush_forever()),
            asyncio.create_task(self._sweep_forever()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _flush_forever(self) -> None:
        ticks_per_proof = round(PROOF_SECONDS / TICK_SECONDS)
        tick = 0
        while True:
            await asyncio.sleep(TICK_SECONDS)
            tick += 1
            try:
                await self.flush(proof=tick % ticks_per_proof == 0)
            except Exception:
                log.exception("deal room flush failed")

    async def flush(self, *, proof: bool = True) -> None:
        for deal_id, entry in list(self._pending.items()):
            if entry.units_left is not None:
                await self.hub.set_units_left(entry.session_id, deal_id, entry.units_left)
                entry.units_left = None
            if proof and entry.bought:
                data = {
                    "deal_id": deal_id,
                    "units": entry.bought,
                    "buyers": entry.names,
                }
                entry.bought, entry.names = 0, []
                await self.hub.publish(entry.session_id, RoomEvent("deal.bought", data))
            if entry.units_left is None and not entry.bought:
                del self._pending[deal_id]

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.sweep()
            except Exception:
                log.exception("deal sweep failed")

    async def sweep(self) -> None:
        """Take over deals nobody owns (their owner died), know where the others' owners are,
        record lapsed claims and deals whose time is up, and tell the room. Counts never wait
        for this: they are read-time facts."""
        await asyncio.to_thread(self.engine.ownership.check)
        self.engine.knowledge.forget_ended(self.engine.clock())
        for deal_id in self.open_deals():
            if not await self.engine.acquire(deal_id):
                self.engine.meet_owner_soon(deal_id)
                continue
            try:
                result = await self.engine.local(deal_id, "tick", {})
            except (DomainError, WriterUnavailable):
                continue
            if result["expired"]:
                self.units_changed(result["deal"])
            if result["closed"]:
                await self.closed(result["deal"])
