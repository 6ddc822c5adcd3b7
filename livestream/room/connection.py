"""One viewer socket: a bounded outbox drained by a single writer task.

Why this shape: fan-out must never await a viewer (one slow socket would stall the room), so the
room only appends already-encoded text to each outbox, which is O(1) and shares the same string
across all connections. The writer task drains whatever accumulated, joining it into one frame,
so a viewer that falls a little behind catches up with fewer, larger writes. A viewer that falls
far behind overflows its bounded outbox: droppable frames (chat, counters) go first, and if
reliable events still do not fit the connection is closed with 4008 "slow consumer". It is never
silently skipped; the client resumes from its last seq, or gets a snapshot.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .protocol import CloseCode, Frame, Principal

log = logging.getLogger(__name__)


class DirectWriter(Protocol):
    """Optional fast path under a sink: write pre-framed bytes synchronously to the socket."""

    def write_if_room(self, wire: bytes) -> bool:
        """Write now and return True if the socket accepts more data, else write nothing."""

    def write(self, wire: bytes) -> bool:
        """Write regardless of buffer level; False if the socket is closing."""

    async def wait_writable(self) -> None: ...


class FrameSink(Protocol):
    """The transport under a connection (the Litestar socket in production, fakes in tests).

    ``direct`` is a DirectWriter when the server allows one (uvicorn's websockets-sansio
    protocol), else None and every frame goes through the awaitable ``send_text``.
    """

    direct: DirectWriter | None

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class FrameKind(enum.IntEnum):
    ESSENTIAL = 0  # reliable events, replies, preamble, host/moderator chat: never dropped
    CHAT = 1  # regular viewers' chat: dropped first when the outbox overflows
    STATE = 2  # coalesced counters: droppable, re-sent once the viewer catches up


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    """Per-connection bounds; ``max_frame_chars`` keeps joined frames under client max_size."""

    max_messages: int = 512
    max_chars: int = 1 << 20
    max_frame_chars: int = 64 << 10
    close_timeout: float = 5.0


_Entry = tuple[Frame, FrameKind]


class Connection:
    __slots__ = (
        "_closer",
        "_direct",
        "_finishing",
        "_in_send",
        "_on_detach",
        "_outbox",
        "_queued_chars",
        "_queued_messages",
        "_sink",
        "_waiter",
        "_writer",
        "close_reason",
        "conn_id",
        "direct_writes",
        "disconnected",
        "dropped_frames",
        "limits",
        "needs_state_refresh",
        "principal",
        "room_id",
        "state_snapshot",
    )

    def __init__(
        self,
        conn_id: str,
        room_id: str,
        sink: FrameSink,
        principal: Principal | None,
        limits: OutboxLimits,
        on_detach: Callable[[Connection], None],
        state_snapshot: Callable[[], str | None],
    ) -> None:
        self.conn_id = conn_id
        self.room_id = room_id
        self.principal = principal
        self.limits = limits
        self.close_reason: tuple[int, str] | None = None
        self.disconnected = False
        self.needs_state_refresh = False
        self.dropped_frames = 0
        self.direct_writes = 0
        self.state_snapshot = state_snapshot
        self._sink = sink
        self._direct: DirectWriter | None = None  # set by start(): no writes before preamble
        self._on_detach = on_detach
        self._outbox: deque[_Entry] = deque()
        self._queued_messages = 0
        self._queued_chars = 0
        self._waiter: asyncio.Future[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._finishing: tuple[int, str] | None = None
        self._in_send = False

    @property
    def active(self) -> bool:
        return self.close_reason is None and not self.disconnected

    @property
    def queued_messages(self) -> int:
        return self._queued_messages

    def start(self, preamble: list[str]) -> None:
        """Put welcome + snapshot/replay ahead of live frames queued meanwhile; start writing."""
        for text in reversed(preamble):
            frame = Frame(text)
            self._outbox.appendleft((frame, FrameKind.ESSENTIAL))
            self._queued_messages += 1
            self._queued_chars += len(text)
        if self.active:
            self._direct = self._sink.direct
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def send(self, text: str) -> None:
        """Queue a reply or notice for this connection only (never dropped)."""
        self.enqueue(Frame(text), FrameKind.ESSENTIAL)

    def enqueue(self, frame: Frame, kind: FrameKind) -> None:
        """Deliver a frame without ever blocking the caller.

        Fast path: nothing queued and the socket has room, so the shared wire bytes are written
        right here (no task switch). Otherwise the frame joins the bounded outbox for the writer
        task; overflow drops droppable frames first, then closes the connection with 4008.
        """
        if self.close_reason is not None or self.disconnected:
            return
        direct = self._direct
        if direct is not None and not self._outbox and direct.write_if_room(frame.wire):
            self.direct_writes += 1
            return
        self._outbox.append((frame, kind))
        self._queued_messages += frame.count
        self._queued_chars += len(frame.text)
        limits = self.limits
        if self._queued_messages > limits.max_messages or self._queued_chars > limits.max_chars:
            self._relieve_pressure()
            if self.close_reason is not None:
                return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _relieve_pressure(self) -> None:
        outbox = self._outbox
        kept = deque(entry for entry in outbox if entry[1] is FrameKind.ESSENTIAL)
        if any(entry[1] is FrameKind.STATE for entry in outbox):
            self.needs_state_refresh = True
        self.dropped_frames += len(outbox) - len(kept)
        self._outbox = kept
        self._queued_messages = sum(frame.count for frame, _ in kept)
        self._queued_chars = sum(len(frame.text) for frame, _ in kept)
        limits = self.limits
        if self._queued_messages > limits.max_messages or self._queued_chars > limits.max_chars:
            self.request_close(
                CloseCode.SLOW_CONSUMER,
                f"slow consumer: more than {limits.max_messages} messages or "
                f"{limits.max_chars} chars queued; reconnect with last_seq",
            )

    def request_close(self, code: int, reason: str) -> None:
        """Stop fan-out to this connection at once, then send a close frame (bounded wait)."""
        if self.close_reason is not None or self.disconnected:
            return
        self.close_reason = (code, reason)
        self._outbox.clear()
        self._queued_messages = self._queued_chars = 0
        self._on_detach(self)
        writer = self._writer
        if writer is not None and not self._in_send:
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)  # the idle writer wakes, sees close_reason, closes
            return
        if writer is not None:
            writer.cancel()  # blocked on transport backpressure: nothing of it was written
        self._closer = asyncio.get_running_loop().create_task(self._send_close())

    def finish(self, code: int, reason: str) -> None:
        """Close once what is already queued has been written, so a viewer hears the last
        events (``session.ended``) before the close frame; a peer that does not read them
        within ``close_timeout`` is closed anyway."""
        if not self.active or self._finishing is not None:
            return
        if self._writer is None:  # still joining: nothing of the stream was promised yet
            self.request_close(code, reason)
            return
        self._finishing = (code, reason)
        asyncio.get_running_loop().call_later(
            self.limits.close_timeout, self.request_close, code, reason
        )
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def detach(self) -> None:
        """The peer went away (handler saw disconnect): stop everything for this connection."""
        self.disconnected = True
        self._outbox.clear()
        self._on_detach(self)
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()

    def tasks(self) -> list[asyncio.Task[None]]:
        """Background tasks still running for this connection (for orderly shutdown)."""
        return [t for t in (self._writer, self._closer) if t is not None and not t.done()]

    async def _send_close(self) -> None:
        assert self.close_reason is not None
        code, reason = self.close_reason
        try:
            await asyncio.wait_for(self._sink.close(code, reason[:120]), self.limits.close_timeout)
        except TimeoutError:
            log.info("close %s of %s timed out; peer is not reading", code, self.conn_id)
        except Exception:  # peer already gone: nothing left to tell it
            log.debug("close of %s failed", self.conn_id, exc_info=True)

    def _take_batch(self) -> list[Frame]:
        """Pop queued frames totalling at most ``max_frame_chars`` (always at least one)."""
        outbox = self._outbox
        frame = outbox.popleft()[0]
        batch = [frame]
        size, count = len(frame.text), frame.count
        limit = self.limits.max_frame_chars
        while outbox and size + len(outbox[0][0].text) < limit:
            frame = outbox.popleft()[0]
            batch.append(frame)
            size += len(frame.text)
            count += frame.count
        self._queued_chars -= size
        self._queued_messages -= count
        return batch

    async def _write_loop(self) -> None:
        """Drain the outbox whenever it is non-empty; the only await points are cancel-safe."""
        loop = asyncio.get_running_loop()
        direct = self._direct
        try:
            while self.close_reason is None:
                if not self._outbox:
                    if self.needs_state_refresh:
                        self.needs_state_refresh = False
                        state = self.state_snapshot()
                        if state is not None:
                            self.enqueue(Frame(state, state.count("\n") + 1), FrameKind.STATE)
                        continue
                    if self._finishing is not None:
                        self.close_reason = self._finishing
                        self._on_detach(self)
                        break
                    self._waiter = loop.create_future()
                    await self._waiter
                    self._waiter = None
                    continue
                self._in_send = True
                if direct is not None:
                    await direct.wait_writable()
                    if self.close_reason is not None:
                        break
                    batch = self._take_batch()
                    if not direct.write(b"".join(frame.wire for frame in batch)):
                        raise ConnectionError("socket closing")
                else:
                    batch = self._take_batch()
                    await self._sink.send_text("\n".join(frame.text for frame in batch))
                self._in_send = False
        except asyncio.CancelledError:
            raise
        except Exception:  # the transport is gone; the handler will see the disconnect too
            log.debug("send to %s failed", self.conn_id, exc_info=True)
            self.disconnected = True
            self._on_detach(self)
            return
        await self._send_close()
