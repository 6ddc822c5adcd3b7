"""RoomHub: the public face of the live room fan-out (feeding API + connection lifecycle).

Feeders (live-session projections, flash-deal workers) call ``publish``, ``set_units_left`` and
``add_likes``; the websocket route calls ``join``/``leave``/``handle_request``. Every change goes
through the Backplane and is applied by ``_apply`` so that a multi-process deployment only needs
another Backplane implementation.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .backplane import RESYNC, Backplane, BackplaneMessage, InMemoryBackplane
from .chat import ChatLimits, ChatRoom
from .connection import Connection, FrameSink, OutboxLimits
from .interactions import RoomInteractions
from .presence import Presence
from .protocol import (
    PROTOCOL_VERSION,
    CloseCode,
    Principal,
    ResumePoint,
    RoomEvent,
    control_message,
    encode,
    now_ms,
)
from .ratelimit import TokenBucket
from .ring import ReliableRing
from .room import Room

log = logging.getLogger(__name__)

SnapshotProvider = Callable[[str], Awaitable[Mapping[str, Any]]]
"""``provider(room_id)`` → session state, pinned products, open deals (with ``units_left`` and
``ends_at``). Raise ``RoomNotFound`` for unknown sessions. The hub adds viewers, likes, latest
units left and recent chat itself."""


@dataclass(frozen=True, slots=True)
class RoomHubConfig:
    ring_capacity: int = 1000
    max_replay: int = 300
    outbox: OutboxLimits = field(default_factory=OutboxLimits)
    chat: ChatLimits = field(default_factory=ChatLimits)
    tick_interval: float = 0.1  # units-left coalescing: ≤ 10 updates/s per deal; chat batching
    counters_interval: float = 1.0  # viewers / likes
    like_rate: float = 10.0
    like_burst: int = 10
    max_likes_per_request: int = 50
    room_idle_ttl: float = 600.0
    heartbeat_s: int = 20


class RoomHub(RoomInteractions):
    def __init__(
        self,
        snapshot_provider: SnapshotProvider,
        *,
        config: RoomHubConfig | None = None,
        backplane: Backplane | None = None,
        banned_words: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or RoomHubConfig()
        self.instance_id = secrets.token_hex(3)
        self._provider = snapshot_provider
        self._backplane = backplane or InMemoryBackplane()
        self._backplane.attach(self._apply)
        self._banned_words = set(banned_words)
        self._clock = clock
        self._rooms: dict[str, Room] = {}
        self._ids = itertools.count(1)
        self._like_buckets: dict[str, TokenBucket] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._stopped = False
        self._units_listeners: list[Callable[[str | None, int], None]] = []
        self._presence = Presence(self.instance_id)
        self._telling: asyncio.Task[None] | None = None

    def listen_units(self, listener: Callable[[str | None, int], None]) -> None:
        """`listener(deal_id, units_left)` for every units-left update any process published,
        and `listener(None, 0)` when updates may have been lost (a backplane resync)."""
        self._units_listeners.append(listener)

    def _units_heard(self, deal_id: str | None, units_left: int) -> None:
        for listener in self._units_listeners:
            try:
                listener(deal_id, units_left)
            except Exception:
                log.exception("units-left listener failed")

    # --- feeding API --------------------------------------------------------------------------

    async def publish(self, room_id: str, event: RoomEvent) -> None:
        """Fan out a reliable event: it gets the room's next seq and is kept for resume."""
        await self._send(room_id, "event", {"type": event.type, "data": event.data})

    async def set_units_left(self, room_id: str, deal_id: str, units_left: int) -> None:
        """Latest stock of a deal. Coalesced: each tick turns the deals that changed into one
        reliable ``deal.units_left`` event each (with a seq), so a claim storm costs ≤ 10 seqs/s
        per deal while a resumed viewer still gets the latest value by replay."""
        await self._send(room_id, "units_left", {"deal_id": deal_id, "units_left": units_left})

    async def add_likes(self, room_id: str, n: int) -> None:
        await self._send(room_id, "likes", {"n": n})

    async def tell_user(self, room_id: str, user_id: str, type_: str, data: dict[str, Any]) -> None:
        """A control message (no seq, not replayed) for one signed-in user's sockets in a room,
        in whichever process they are connected; nobody else sees it. A room with no viewers
        here is not created for it."""
        await self._send(room_id, "user", {"user_id": user_id, "type": type_, "data": data})

    async def close_room(self, room_id: str, reason: str = "live session ended") -> None:
        """Close every viewer of the room with 4010, after the events already published to it,
        and forget its history."""
        await self._send(room_id, "room.closed", {"reason": reason})

    def head(self, room_id: str) -> tuple[str, int] | None:
        """``(epoch, last seq handed to connections)`` of a room, if the room exists here."""
        room = self._rooms.get(room_id)
        return None if room is None else (room.epoch, room.flushed_seq)

    def viewer_count(self, room_id: str) -> int:
        """This process's viewers of the room (the room's counters add the other processes')."""
        room = self._rooms.get(room_id)
        return 0 if room is None else len(room.connections)

    def stats(self, room_id: str) -> dict[str, int]:
        """Counters for metrics and tests: how frames reached this room's current viewers."""
        room = self._rooms.get(room_id)
        conns = [] if room is None else list(room.connections.values())
        return {
            "viewers": len(conns),
            "direct_writes": sum(c.direct_writes for c in conns),
            "dropped_frames": sum(c.dropped_frames for c in conns),
            "queued_messages": sum(c.queued_messages for c in conns),
            "chat_sampled_out": 0 if room is None else room.chat.sampled_out,
        }

    def banned_words(self, room_id: str) -> set[str]:
        return set(self._room(room_id).chat.banned_words)

    # --- backplane ----------------------------------------------------------------------------

    async def _send(self, room_id: str, kind: str, data: dict[str, Any]) -> None:
        await self._backplane.publish(BackplaneMessage(room_id, kind, data))

    def _apply(self, message: BackplaneMessage) -> None:
        """Apply one change to local state; runs for messages from this and other processes."""
        kind, data = message.kind, message.data
        if kind == RESYNC:
            self._resync(data.get("reason", "room state resynchronised; reconnect"))
            self._units_heard(None, 0)
            return
        if kind == "user":
            room = self._rooms.get(message.room_id)
            if room is not None:
                text = control_message(data["type"], data=data["data"])
                self._tell_user(room, data["user_id"], text)
            return
        if kind == "viewers":  # another process's count; never creates the room here
            self._presence.heard(message.room_id, data["instance"], data["n"], self._clock())
            return
        if kind == "room.closed":
            self._presence.forget(message.room_id)
            room = self._rooms.pop(message.room_id, None)
            if room is not None:
                room.flush_reliable(force=True)  # what came before the close (session.ended)
                for conn in tuple(room.connections.values()):
                    conn.finish(CloseCode.ROOM_CLOSED, data["reason"])
            return
        room = self._room(message.room_id)
        room.last_activity = self._clock()
        if kind == "event":
            room.append_reliable(RoomEvent(data["type"], data["data"]))
        elif kind == "units_left":
            room.set_units_left(data["deal_id"], data["units_left"])
            self._units_heard(data["deal_id"], data["units_left"])
        elif kind == "likes":
            room.add_likes(data["n"])
        elif kind == "chat":
            room.chat.add_posted(data)
        elif kind == "chat.delete":
            room.chat.remove(data["message_id"])
            room.append_reliable(RoomEvent("chat.deleted", data))
        elif kind == "mute":
            until = math.inf if data["until_ms"] is None else data["until_ms"]
            room.chat.mute(data["user_id"], until)
            self._tell_user(room, data["user_id"], control_message("chat.muted", data=data))
        elif kind == "unmute":
            room.chat.unmute(data["user_id"])
            self._tell_user(room, data["user_id"], control_message("chat.unmuted", data=data))
        elif kind == "banned_words":
            room.chat.update_banned_words(data["add"], data["remove"])
        else:
            log.warning("unknown backplane message kind %r", kind)

    def _resync(self, reason: str) -> None:
        """The backplane may have lost messages: give every room a new epoch and close its
        viewers with 1012, so they reconnect, see ``epoch_changed`` and get a snapshot instead
        of a stream with a silent hole. Chat moderation state and coalesced values are kept."""
        cfg = self.config
        for room in self._rooms.values():
            # nothing stamped with the old epoch may follow the reset
            room.flush_reliable(force=True)
            room.ring = ReliableRing(secrets.token_hex(4), cfg.ring_capacity, cfg.max_replay)
            room.flushed_seq = 0
            room.close_all(CloseCode.SERVICE_RESTART, reason)

    @staticmethod
    def _tell_user(room: Room, user_id: str, text: str) -> None:
        for conn in tuple(room.connections.values()):
            if conn.principal is not None and conn.principal.user_id == user_id:
                conn.send(text)

    def _room(self, room_id: str) -> Room:
        room = self._rooms.get(room_id)
        if room is None:
            now = self._clock()
            cfg = self.config
            ring = ReliableRing(secrets.token_hex(4), cfg.ring_capacity, cfg.max_replay)
            chat = ChatRoom(cfg.chat, self._banned_words, now)
            room = self._rooms[room_id] = Room(room_id, ring, chat, now)
            self._ensure_ticker()
        return room

    # --- connection lifecycle (used by the websocket route) -----------------------------------

    async def join(
        self,
        room_id: str,
        sink: FrameSink,
        principal: Principal | None,
        resume: ResumePoint | None = None,
    ) -> Connection:
        """Subscribe a socket, then queue welcome + replay (or snapshot) ahead of live frames.

        Raises whatever the snapshot provider raises (``RoomNotFound``...); the connection is
        then already detached and the caller closes the socket.
        """
        room = self._room(room_id)
        conn = Connection(
            f"c{self.instance_id}{next(self._ids)}",
            room_id,
            sink,
            principal,
            self.config.outbox,
            on_detach=room.remove,
            state_snapshot=room.state_text,
        )
        room.add(conn)  # subscribe first, so nothing falls between snapshot and live stream
        upto = room.flushed_seq
        replay = None
        reason = "fresh"
        if resume is not None:
            replay = room.ring.replay(resume.epoch, resume.last_seq, upto)
            if replay is None:
                reason = "epoch_changed" if resume.epoch != room.epoch else "out_of_window"
        welcome = self._welcome(room, conn, upto, replay is not None, reason)
        if replay is not None:
            conn.start([welcome, *replay, room.state_text()])
            return conn
        try:
            state = await self._shared_snapshot(room, upto)
        except BaseException:
            conn.detach()
            if not room.connections and room.ring.head_seq == 0:
                self._rooms.pop(room_id, None)
            raise
        snapshot = encode(
            {
                "type": "snapshot",
                "epoch": room.epoch,
                "seq": upto,
                "ts": now_ms(),
                "data": {**state, **room.snapshot_extras()},
            }
        )
        conn.start([welcome, snapshot])
        return conn

    def _welcome(self, room: Room, conn: Connection, upto: int, recovered: bool, why: str) -> str:
        chat = self.config.chat
        user = conn.principal
        return control_message(
            "welcome",
            v=PROTOCOL_VERSION,
            conn_id=conn.conn_id,
            room=room.room_id,
            epoch=room.epoch,
            seq=upto,
            recovered=recovered,
            reason=None if recovered else why,
            user=None if user is None else {"id": user.user_id, "role": str(user.role)},
            heartbeat_s=self.config.heartbeat_s,
            limits={
                "chat_per_s": chat.viewer_rate,
                "chat_burst": chat.viewer_burst,
                "chat_max_chars": chat.max_text_chars,
                "likes_per_s": self.config.like_rate,
            },
        )

    async def _shared_snapshot(self, room: Room, upto: int) -> Mapping[str, Any]:
        """One provider call per room and seq in flight: a reconnect storm costs one read."""
        shared = room.snapshot_task
        if shared is None or shared[0] != upto:
            task = asyncio.get_running_loop().create_task(self._provider(room.room_id))  # type: ignore[arg-type]
            room.snapshot_task = shared = (upto, task)

            def forget(_: asyncio.Task[Any], room: Room = room) -> None:
                if room.snapshot_task is not None and room.snapshot_task[1] is task:
                    room.snapshot_task = None

            task.add_done_callback(forget)
        return await asyncio.shield(shared[1])

    def leave(self, conn: Connection) -> None:
        conn.detach()
        self._like_buckets.pop(conn.conn_id, None)

    # --- periodic work and shutdown -----------------------------------------------------------

    def _ensure_ticker(self) -> None:
        if self._ticker is None and not self._stopped:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())

    async def _tick_loop(self) -> None:
        cfg = self.config
        next_counters = next_prune = 0.0
        while True:
            await asyncio.sleep(cfg.tick_interval)
            now = self._clock()
            counters_due = now >= next_counters
            if counters_due:
                next_counters = now + cfg.counters_interval
            prune_due = now >= next_prune
            if prune_due:
                next_prune = now + 10.0
            for room_id, room in tuple(self._rooms.items()):
                try:
                    if counters_due:
                        room.viewers_elsewhere = self._presence.elsewhere(room_id, now)
                    room.tick(now, counters_due)
                    if prune_due:
                        room.chat.prune(now)
                        if not room.connections and now - room.last_activity > cfg.room_idle_ttl:
                            del self._rooms[room_id]  # a later join gets a new epoch
                            self._presence.forget(room_id)
                except Exception:
                    log.exception("tick of room %s failed", room_id)
            if counters_due:
                self._tell_viewers(now)
            if prune_due:
                self._presence.prune(now)

    def _tell_viewers(self, now: float) -> None:
        """Tell the other processes this one's viewers per room, off the tick: a backplane
        publish may wait for a round trip, which the tick must not. Best effort: while the
        last telling is still under way, this one is skipped."""
        if self._telling is not None and not self._telling.done():
            return
        told = [
            BackplaneMessage(room_id, "viewers", {"instance": self.instance_id, "n": here})
            for room_id, room in self._rooms.items()
            if self._presence.to_tell(room_id, here := len(room.connections), now)
        ]
        if told:
            self._telling = asyncio.get_running_loop().create_task(self._publish_all(told))

    async def _publish_all(self, messages: list[BackplaneMessage]) -> None:
        try:
            for message in messages:
                await self._backplane.publish(message)
        except Exception as exc:  # counts are re-told within a heartbeat anyway
            log.warning("could not tell viewer counts: %s", type(exc).__name__)

    async def stop(self) -> None:
        """Close every connection with 1012 (reconnect later) and stop background work."""
        self._stopped = True
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if self._telling is not None:
            self._telling.cancel()
        conns = [c for room in self._rooms.values() for c in room.connections.values()]
        for room in self._rooms.values():
            room.close_all(CloseCode.SERVICE_RESTART, "server restarting; reconnect with last_seq")
        pending = [task for conn in conns for task in conn.tasks()]
        if pending:
            await asyncio.wait(pending, timeout=self.config.outbox.close_timeout)
        await self._backplane.close()
