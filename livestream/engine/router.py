"""Runs a deal command where the deal is owned: here, or on the owner.

A claim may arrive at any API process. If no process owns the deal, this one takes it; if
another does, the command is forwarded to the owner over its internal listener (one websocket
per owner: livestream.engine.channel) and its answer (or its refusal, as the same domain error)
comes back. If the owner cannot be reached it has probably died: its advisory lock is gone with
its session, so the next attempt here takes the deal over.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from litestar.concurrency import sync_to_thread

from commerce.domain import errors
from commerce.platform.groupcommit import GroupCommitWriter, WriterUnavailable
from livestream.engine.channel import CHANNEL_PATH, ChannelLost, OwnerChannel
from livestream.engine.commands import COMMANDS
from livestream.engine.knowledge import DealKnowledge, recorded_claims
from livestream.engine.ownership import Ownership

log = logging.getLogger("redcart.livestream.deals")
AUTH_HEADER = "X-Redcart-Forwarded"
MAX_SKEW_SECONDS = 60
ATTEMPTS = 6
MAX_REMEMBERED_OWNERS = 10_000
_ERRORS: dict[str, type[errors.DomainError]] = {
    cls.code: cls
    for cls in (
        errors.NotFound,
        errors.InvalidInput,
        errors.Conflict,
        errors.OutOfStock,
        errors.InvalidTransition,
        errors.LimitBreached,
        errors.IdempotencyKeyReused,
    )
}


def _call(uow: Any, command: Callable[..., Any], clock: Any, deal_id: UUID, args: dict) -> Any:
    return command(uow, clock, deal_id, **args)


async def _once(
    pending: dict[UUID, asyncio.Future], deal_id: UUID, work: Callable[[UUID], Any]
) -> Any:
    """`work(deal_id)`, run once for every caller that asks while it is under way."""
    running = pending.get(deal_id)
    if running is None:
        running = pending[deal_id] = asyncio.ensure_future(work(deal_id))
        running.add_done_callback(lambda done: _forget(pending, deal_id, done))
    return await asyncio.shield(running)  # one caller giving up does not cancel the others'


def _forget(pending: dict[UUID, asyncio.Future], deal_id: UUID, done: asyncio.Future) -> None:
    if pending.get(deal_id) is done:
        del pending[deal_id]
    if not done.cancelled():
        done.exception()  # its callers have it; nobody left waiting is not an error


class NotOwner(Exception):
    """A forwarded command reached a process that no longer owns the deal."""


def _with_uuids(args: dict[str, Any]) -> dict[str, Any]:
    """A forwarded command's arguments as the commands take them (ids arrive as strings)."""
    return {k: UUID(v) if k.endswith("_id") and isinstance(v, str) else v for k, v in args.items()}


class DealEngine:
    def __init__(
        self,
        writer: GroupCommitWriter,
        clock: Callable[[], datetime],
        ownership: Ownership,
        secret: bytes,
    ) -> None:
        self.writer = writer
        self.clock = clock
        self.ownership = ownership
        self._key = hashlib.sha256(b"deal-forwarding:" + secret).digest()
        self._channels: dict[str, OwnerChannel] = {}  # by owner URL
        self.knowledge = DealKnowledge(clock)  # to refuse without a trip to the deal
        self._owners: dict[UUID, str] = {}  # deals another process owns → where it listens
        self._learning: set[UUID] = set()
        self._acquiring: dict[UUID, asyncio.Future] = {}  # one take-over per deal at a time
        self._finding: dict[UUID, asyncio.Future] = {}  # one owner look-up per deal at a time
        self._meeting: dict[UUID, asyncio.Task] = {}  # owners being met in the background

    # -- running a command ---------------------------------------------------------------------
    async def run(self, deal_id: UUID, op: str, **args: Any) -> dict[str, Any]:
        """A claim's caller asks `refuse_fast` first (livestream.api.claims, before its cap on
        claims in flight; `serve_forwarded` for claims forwarded here).

        Where another process owns the deal, its address is remembered: asking the database
        for the lock and the owner on every claim put two round trips, in turn on this
        process's one ownership connection, in front of each forwarded claim (at a sale's
        rate, seconds of queue). Only when the owner stops answering as the owner (dead, or
        it lost the deal) is the deal taken over or its new owner looked up."""
        for attempt in range(ATTEMPTS):
            if deal_id in self.ownership.owned():
                return await self.local(deal_id, op, args)
            url = self._owners.get(deal_id) or await self.find_owner(deal_id)
            if url is None and deal_id in self.ownership.owned():
                return await self.local(deal_id, op, args)
            if url is not None:
                sent = time.monotonic()
                try:
                    answer = await self._forward(url, deal_id, op, args)
                except (ChannelLost, NotOwner):
                    self._owners.pop(deal_id, None)  # take it over, or ask who owns it now
                except errors.OutOfStock as exc:
                    if op == "claim":
                        self._heard_sold_out(deal_id, exc, sent)
                    raise
                else:
                    self._remember_owner(deal_id, url)
                    self.knowledge.answered(deal_id, op, args, answer)
                    return answer
            await asyncio.sleep(0.02 * 2**attempt)
        raise WriterUnavailable("the flash deal's owner did not answer; try again")

    async def acquire(self, deal_id: UUID) -> bool:
        """Own the deal if nobody does (True if this process owns it now)."""
        if deal_id in self.ownership.owned():
            return True
        return await _once(self._acquiring, deal_id, self._take_over)

    async def _take_over(self, deal_id: UUID) -> bool:
        if not await sync_to_thread(self.ownership.acquire, deal_id):
            return False
        self.knowledge.forget(deal_id)  # others may have owned it meanwhile: learn afresh
        await self._learn_claims(deal_id)
        return True

    async def find_owner(self, deal_id: UUID) -> str | None:
        """Own the deal, or learn (and remember) where its owner listens: None if this
        process owns it now, or if nobody could be found. The claims of a sale's first moment
        all arrive before any answer; each asking the database in turn, on this process's one
        ownership connection, queued them for hundreds of milliseconds, so they share one
        look."""
        return await _once(self._finding, deal_id, self._look_up_owner)

    async def _look_up_owner(self, deal_id: UUID) -> str | None:
        if await self.acquire(deal_id):
            return None
        url = await sync_to_thread(self.ownership.owner_url, deal_id)
        if url is not None:
            self._remember_owner(deal_id, url)
        return url

    def meet_owner_soon(self, deal_id: UUID) -> None:
        """`meet_owner` in the background, once at a time per deal: the room's sweep, which
        calls it, also records lapses and closes deals, and an owner that accepts connections
        but does not answer (stopped, overloaded) would hold it for the channel's open timeout."""
        if deal_id not in self._meeting:
            task = asyncio.create_task(self.meet_owner(deal_id))
            self._meeting[deal_id] = task
            task.add_done_callback(lambda done: self._met(deal_id, done))

    def _met(self, deal_id: UUID, task: asyncio.Task) -> None:
        self._meeting.pop(deal_id, None)
        if not task.cancelled() and task.exception() is not None:  # claims will ask again
            log.warning("could not meet the owner of deal %s: %r", deal_id, task.exception())

    async def meet_owner(self, deal_id: UUID) -> None:
        """Before a deal's sale: know who owns it and have the channel to it open, so that
        the first claims are not the ones to find out."""
        url = self._owners.get(deal_id) or await self.find_owner(deal_id)
        if url is not None:
            with contextlib.suppress(ChannelLost):
                await (await self._channel(url)).connect()

    def _remember_owner(self, deal_id: UUID, url: str) -> None:
        if len(self._owners) >= MAX_REMEMBERED_OWNERS and deal_id not in self._owners:
            self._owners.clear()  # deals end; a forgotten one is looked up again
        self._owners[deal_id] = url

    async def _learn_claims(self, deal_id: UUID) -> None:
        """The claims recorded before this process owned the deal (by an owner that died, or
        by this process before a restart), or, for a deal another process owns, once it sold
        out. A buyer whose answer was lost retries with the same key, and that retry must
        reach the deal to be answered as first decided, not be refused as sold out on the way;
        until they are known, nothing is refused early."""
        started = time.monotonic()
        try:
            recorded, holders, ends_at = await self.writer.submit(recorded_claims, deal_id)
        except Exception:  # the deal's writer answers every claim meanwhile, only slower
            log.warning("could not read the claims of deal %s", deal_id, exc_info=True)
            return
        if not self.knowledge.units_back_since(deal_id, started):  # else it may be stale
            self.knowledge.add_recorded(deal_id, recorded, holders, ends_at)

    def _heard_sold_out(self, deal_id: UUID, exc: errors.OutOfStock, sent: float) -> None:
        """A deal another process owns refused a claim as sold out: refuse here too, without
        a trip to its owner, until a unit could lapse or the room hears units came back
        (`units_seen`), once this process knows the deal's claims (retries still go through).
        Not if units came back after this claim was sent: the refusal may predate them."""
        if exc.extra.get("units_left") != 0 or self.knowledge.units_back_since(deal_id, sent):
            return
        self.knowledge.sold_out(deal_id, exc)
        if not self.knowledge.learnt(deal_id) and deal_id not in self._learning:
            self._learning.add(deal_id)
            task = asyncio.create_task(self._learn_claims(deal_id))
            task.add_done_callback(lambda _: self._learning.discard(deal_id))

    def units_seen(self, deal_id: str | None, units_left: int) -> None:
        """The room heard a deal's units left (from whichever process owns it). Units back in
        a deal another process owns end what this process learnt of it; `None` (updates may
        have been lost) ends it for every such deal."""
        if deal_id is None:
            for known in self.knowledge.deals() - self.ownership.owned():
                self.knowledge.units_back(known)
        elif units_left > 0 and (did := UUID(deal_id)) not in self.ownership.owned():
            self.knowledge.units_back(did)

    async def local(self, deal_id: UUID, op: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            result = await self.writer.submit(_call, COMMANDS[op], self.clock, deal_id, args)
        except errors.OutOfStock as exc:
            if op == "claim" and exc.extra.get("units_left") == 0:
                self.knowledge.sold_out(deal_id, exc)
            raise
        self.knowledge.answered(deal_id, op, args, result)
        return result

    def refuse_fast(self, deal_id: UUID, buyer_id: UUID, claim_id: UUID, quantity: int) -> None:
        """A process refuses on the event loop what it knows the deal would refuse: a deal sold
        out until its first unpaid claim could lapse, and a buyer whose one claim holds the
        deal's per-buyer limit. The owner knows it from its writer's answers; another process
        from the owner's answers to claims it forwarded, until the room hears units came back
        (`units_seen`). A retried claim id still goes to the deal, to be answered as before.
        The refusals are worded as the deal words them (decide_claim): once the deal's time is
        up it is closed, even before the owner's sweep (twice a second) records it."""
        self.knowledge.refuse(deal_id, buyer_id, claim_id, quantity)

    # -- forwarding ----------------------------------------------------------------------------
    def _sign(self, stamp: str) -> str:
        """The channel's handshake: an HMAC of the moment over the channel's path."""
        mac = hmac.new(self._key, f"{stamp}\n{CHANNEL_PATH}\n".encode(), hashlib.sha256)
        return f"{stamp}.{mac.hexdigest()}"

    def verify_handshake(self, header: str | None) -> bool:
        if not header or "." not in header:
            return False
        stamp, _ = header.split(".", 1)
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > MAX_SKEW_SECONDS:
            return False
        return hmac.compare_digest(header, self._sign(stamp))

    def _handshake(self) -> dict[str, str]:
        return {AUTH_HEADER: self._sign(str(int(time.time())))}

    async def _forward(
        self, url: str, deal_id: UUID, op: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        status, answer = await (await self._channel(url)).call(deal_id, op, args)  # reconnects
        if status == 421:
            raise NotOwner(str(deal_id))
        if status >= 500:
            raise WriterUnavailable("the flash deal's owner is busy; try again")
        if "error" in answer:
            e = answer["error"]
            raise _ERRORS.get(e["code"], errors.Conflict)(
                e["detail"], field=e.get("field"), **e.get("extra", {})
            )
        return answer["result"]

    async def _channel(self, url: str) -> OwnerChannel:
        channel = self._channels.get(url)
        if channel is None:
            if len(self._channels) >= MAX_REMEMBERED_OWNERS:
                await self.close_channels()
            channel = self._channels[url] = OwnerChannel(url, self._handshake)
        return channel

    async def serve_forwarded(
        self, deal_id: UUID, op: str, args: dict[str, Any]
    ) -> tuple[int, dict]:
        """The owner's side of `_forward`: answer 421 if the deal is not ours (any more)."""
        if op not in COMMANDS:
            return 404, {"error": {"code": "not_found", "detail": "no such deal command"}}
        if deal_id not in self.ownership.owned():
            return 421, {"error": {"code": "not_owner", "detail": "this process does not own it"}}
        args = _with_uuids(args)
        try:
            if op == "claim":
                self.refuse_fast(deal_id, args["buyer_id"], args["claim_id"], args["quantity"])
            result = await self.local(deal_id, op, args)
        except errors.DomainError as exc:
            extra = {k: v for k, v in exc.extra.items() if isinstance(v, str | int | float)}
            error = {"code": exc.code, "detail": exc.detail, "field": exc.field, "extra": extra}
            return 200, {"error": error}
        except WriterUnavailable:
            return 503, {"error": {"code": "unavailable", "detail": "the deal's writer is busy"}}
        return 200, {"result": result}

    async def close_channels(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.aclose()

    async def aclose(self) -> None:
        meeting = list(self._meeting.values())
        for task in meeting:
            task.cancel()
        await asyncio.gather(*meeting, return_exceptions=True)
        await self.close_channels()
        await sync_to_thread(self.ownership.close)
