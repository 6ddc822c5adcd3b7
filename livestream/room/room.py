"""State of one live room inside one hub process: sequencing, history, coalescing, fan-out.

All methods are synchronous and run on the event loop, so the order in which events receive their
seq is the order in which every connection receives them; no locks are needed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .chat import ChatRoom
from .connection import Connection, FrameKind
from .protocol import Frame, RoomEvent, control_message, encode, now_ms, reliable_message
from .ring import ReliableRing

MAX_FLUSH_DELAY_S = 0.1  # the hub's tick


class Room:
    def __init__(self, room_id: str, ring: ReliableRing, chat: ChatRoom, now: float) -> None:
        self.room_id = room_id
        self.ring = ring
        self.chat = chat
        self.connections: dict[str, Connection] = {}
        self.flushed_seq = 0  # last seq handed to live connections (outboxes)
        self.units_left: dict[str, int] = {}
        self.likes_total = 0
        self.viewers_elsewhere = 0  # in the other API processes (livestream.room.presence)
        self.last_activity = now
        self.snapshot_task: tuple[int, asyncio.Task[dict[str, Any]]] | None = None
        self._pending_reliable: list[str] = []
        self._flush_scheduled = False
        self._deferred = False  # a saturated flush is waiting for more events to batch
        self._flush_cost = 0.0  # seconds the last reliable fan-out took
        self._flush_end = 0.0
        self._dirty_deals: dict[str, None] = {}  # insertion-ordered set
        self._sent_counters: tuple[int, int] | None = None

    @property
    def epoch(self) -> str:
        return self.ring.epoch

    @property
    def viewer_count(self) -> int:
        """The room's audience: this process's sockets and the other processes' count."""
        return len(self.connections) + self.viewers_elsewhere

    # --- membership ---------------------------------------------------------------------------

    def add(self, conn: Connection) -> None:
        """Subscribe first: from now on every flushed event lands in ``conn``'s outbox."""
        self.connections[conn.conn_id] = conn

    def remove(self, conn: Connection) -> None:
        self.connections.pop(conn.conn_id, None)

    # --- reliable events ----------------------------------------------------------------------

    def append_reliable(self, event: RoomEvent) -> int:
        """Assign the next seq, encode once, keep it for resume, and schedule a fan-out flush.

        Events appended in the same loop iteration go out as one multi-message frame: a burst of
        N events costs each connection one write instead of N.
        """
        seq = self.ring.next_seq()
        text = reliable_message(event, self.ring.epoch, seq)
        self.ring.append(seq, text)
        self._pending_reliable.append(text)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush_reliable)
        return seq

    def flush_reliable(self, force: bool = False) -> None:
        """Fan out what is pending. When the loop is saturated (the last flush ended less than a
        tenth of its own duration ago), wait one flush-duration (≤ 0.1 s) first so the events
        arriving meanwhile share one frame: on loopback each socket write costs ~10–25 µs of
        kernel time, so flushing every event alone to 5,000 viewers falls further and further
        behind once the CPU is shared (bench/fanout_paced.py: p99 seconds → ~0.3–0.5 s).
        When not saturated nothing waits."""
        pending = self._pending_reliable
        if not pending:
            self._flush_scheduled = False
            return
        started = time.perf_counter()
        saturated = started - self._flush_end < self._flush_cost / 10
        if saturated and not force and not self._deferred:
            self._deferred = True
            delay = min(self._flush_cost, MAX_FLUSH_DELAY_S)
            asyncio.get_running_loop().call_later(delay, self.flush_reliable)
            return
        self._flush_scheduled = self._deferred = False
        self._pending_reliable = []
        self.flushed_seq = self.ring.head_seq
        text = pending[0] if len(pending) == 1 else "\n".join(pending)
        self.fan_out(text, len(pending), FrameKind.ESSENTIAL)
        self._flush_end = time.perf_counter()
        self._flush_cost = self._flush_end - started

    def fan_out(self, text: str, count: int, kind: FrameKind) -> None:
        """Hand the same already-encoded text to every connection; O(1) per connection."""
        frame = Frame(text, count)
        for conn in tuple(self.connections.values()):
            conn.enqueue(frame, kind)

    # --- coalesced values ---------------------------------------------------------------------

    def set_units_left(self, deal_id: str, units_left: int) -> None:
        """Only remember the latest value: a claim burst must not cost one seq per claim, so
        the next tick turns whatever changed into one reliable event per deal."""
        if self.units_left.get(deal_id) != units_left:
            self.units_left[deal_id] = units_left
            self._dirty_deals[deal_id] = None

    def add_likes(self, n: int) -> None:
        self.likes_total += n

    def _append_units_left(self) -> None:
        """One reliable ``deal.units_left`` per deal changed since the last tick, with its latest
        value. Reliable so that it is ordered with ``deal.sold_out`` and the like, replayed on
        resume and never skipped for a slow viewer. Emitted even if the value came back to the
        one last sent: a snapshot taken meanwhile may have shown the value in between."""
        dirty, self._dirty_deals = self._dirty_deals, {}
        for deal_id in dirty:
            data = {"deal_id": deal_id, "units_left": self.units_left[deal_id]}
            self.append_reliable(RoomEvent("deal.units_left", data))

    def _counters_message(self) -> str:
        return control_message(
            "room.counters", data={"viewers": self.viewer_count, "likes": self.likes_total}
        )

    def state_text(self) -> str:
        """Current counters, sent after a replay and after dropped STATE frames: they are the
        only values not in the reliable stream. Units left need no resend: the replay holds
        every change up to the client's position, later ones are still ahead in its outbox or
        come with the next tick, and reliable frames are never dropped."""
        return self._counters_message()

    def snapshot_extras(self) -> dict[str, Any]:
        """The parts of a snapshot the hub itself owns (merged over the provider's state)."""
        return {
            "viewers": self.viewer_count,
            "likes": self.likes_total,
            "units_left": dict(self.units_left),
            "chat": list(self.chat.recent),
        }

    # --- periodic work ------------------------------------------------------------------------

    def tick(self, now: float, counters_due: bool) -> None:
        """Emit units left (so ≤ 1 event per deal per tick), chat, and counters."""
        self._append_units_left()
        staff, regular = self.chat.take_delivery(now)
        if staff:
            self.fan_out(_chat_batch(staff), 1, FrameKind.ESSENTIAL)
        if regular:
            self.fan_out(_chat_batch(regular), 1, FrameKind.CHAT)
        if counters_due:
            counters = (self.viewer_count, self.likes_total)
            if counters != self._sent_counters:
                self._sent_counters = counters
                self.fan_out(self._counters_message(), 1, FrameKind.STATE)

    def close_all(self, code: int, reason: str) -> None:
        for conn in tuple(self.connections.values()):
            conn.request_close(code, reason)


def _chat_batch(messages: list[dict[str, Any]]) -> str:
    return encode({"type": "chat.batch", "ts": now_ms(), "data": {"messages": messages}})
