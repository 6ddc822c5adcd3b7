"""Outbox behaviour of one connection against a controllable fake transport (no network)."""

from __future__ import annotations

import asyncio

from livestream.room import ChatLimits, CloseCode, FrameKind, OutboxLimits, ReliableRing
from livestream.room.chat import ChatRoom
from livestream.room.connection import Connection
from livestream.room.protocol import Frame
from livestream.room.room import Room


class BlockingSink:
    """Records frames; sends block while ``open`` is clear, like uvicorn on a full socket."""

    direct = None

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.closed: tuple[int, str] | None = None
        self.open = asyncio.Event()
        self.open.set()

    async def send_text(self, text: str) -> None:
        await self.open.wait()
        self.frames.append(text)

    async def close(self, code: int, reason: str) -> None:
        await self.open.wait()
        self.closed = (code, reason)

    @property
    def messages(self) -> list[str]:
        return [line for frame in self.frames for line in frame.split("\n")]


def make_connection(sink: BlockingSink, limits: OutboxLimits, detached: list[str]) -> Connection:
    return Connection(
        "c1",
        "room",
        sink,
        None,
        limits,
        on_detach=lambda conn: detached.append(conn.conn_id),
        state_snapshot=lambda: "STATE-NOW",
    )


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_pressure_drops_chat_and_state_first_then_refreshes_state() -> None:
    sink, detached = BlockingSink(), []
    conn = make_connection(sink, OutboxLimits(max_messages=6), detached)
    conn.start(["welcome"])
    await settle()
    sink.open.clear()
    conn.enqueue(Frame("blocked-in-send"), FrameKind.ESSENTIAL)
    await settle()  # the writer now waits inside send_text
    for i in range(3):
        conn.enqueue(Frame(f"e{i}"), FrameKind.ESSENTIAL)
        conn.enqueue(Frame(f"chat{i}"), FrameKind.CHAT)
        conn.enqueue(Frame(f"state{i}"), FrameKind.STATE)
    assert conn.active and conn.dropped_frames > 0
    sink.open.set()
    await settle()
    assert sink.messages[:2] == ["welcome", "blocked-in-send"]
    rest = sink.messages[2:]
    assert [m for m in rest if m.startswith("e")] == ["e0", "e1", "e2"]
    assert rest[-1] == "STATE-NOW"  # current counters re-sent after the dropped state frames
    assert sink.closed is None and detached == []


async def test_reliable_overflow_closes_4008_even_while_blocked_in_send() -> None:
    sink, detached = BlockingSink(), []
    conn = make_connection(sink, OutboxLimits(max_messages=3), detached)
    conn.start([])
    sink.open.clear()
    conn.enqueue(Frame("stuck"), FrameKind.ESSENTIAL)
    await settle()
    for i in range(4):
        conn.enqueue(Frame(f"e{i}"), FrameKind.ESSENTIAL)
    assert not conn.active and detached == ["c1"]
    conn.enqueue(Frame("after-close"), FrameKind.ESSENTIAL)
    await settle()
    assert sink.closed is None  # a close frame also waits for the socket to drain
    sink.open.set()
    await asyncio.wait(conn.tasks(), timeout=1)
    assert sink.closed is not None and sink.closed[0] == CloseCode.SLOW_CONSUMER
    assert sink.closed[1].startswith("slow consumer")
    assert "after-close" not in sink.messages


async def test_units_left_a_viewer_cannot_take_close_it_4008_instead_of_being_skipped() -> None:
    room = Room("room", ReliableRing("e1"), ChatRoom(ChatLimits(), set(), 0.0), 0.0)
    sink, detached = BlockingSink(), []
    conn = make_connection(sink, OutboxLimits(max_messages=3), detached)
    room.add(conn)
    conn.start([])
    sink.open.clear()
    room.set_units_left("d1", 9)
    room.tick(0.0, counters_due=False)
    await settle()  # the writer now waits inside send_text with that first update
    for units in range(8, 3, -1):  # one update per tick, none of them sent
        room.set_units_left("d1", units)
        room.tick(0.0, counters_due=False)
        await settle()
    room.flush_reliable(force=True)  # a flush deferred as "saturated" goes out now
    assert room.ring.head_seq == 6  # every update is in the replay history
    assert not conn.active and detached == ["c1"]
    sink.open.set()
    await asyncio.wait(conn.tasks(), timeout=1)
    assert sink.closed is not None and sink.closed[0] == CloseCode.SLOW_CONSUMER


async def test_backlog_is_joined_into_frames_no_larger_than_the_frame_limit() -> None:
    sink, detached = BlockingSink(), []
    conn = make_connection(sink, OutboxLimits(max_frame_chars=25), detached)
    sink.open.clear()
    conn.start([])
    for i in range(10):
        conn.enqueue(Frame(f"msg-{i}"), FrameKind.ESSENTIAL)  # 5 chars each
    sink.open.set()
    await settle()
    assert sink.messages == [f"msg-{i}" for i in range(10)]
    assert all(len(frame) <= 25 for frame in sink.frames)
    assert len(sink.frames) < 10  # batched
    assert conn.queued_messages == 0


async def test_finish_writes_what_was_queued_then_closes_with_its_code() -> None:
    sink, detached = BlockingSink(), []
    conn = make_connection(sink, OutboxLimits(), detached)
    conn.start(["welcome"])
    await settle()
    sink.open.clear()
    conn.enqueue(Frame("blocked-in-send"), FrameKind.ESSENTIAL)
    await settle()
    conn.enqueue(Frame("session.ended"), FrameKind.ESSENTIAL)
    conn.finish(CloseCode.ROOM_CLOSED, "live session ended")
    conn.enqueue(Frame("after-the-end"), FrameKind.ESSENTIAL)  # a reply may still be queued
    await settle()
    assert sink.closed is None and conn.close_reason is None  # waiting for the socket
    sink.open.set()
    await settle()
    assert sink.messages == ["welcome", "blocked-in-send", "session.ended", "after-the-end"]
    assert sink.closed == (CloseCode.ROOM_CLOSED, "live session ended")
    assert detached == ["c1"]


async def test_finish_closes_a_peer_that_does_not_read_after_the_close_timeout() -> None:
    sink, detached = BlockingSink(), []
    conn = make_connection(sink, OutboxLimits(close_timeout=0.05), detached)
    conn.start(["welcome"])
    await settle()
    sink.open.clear()
    conn.enqueue(Frame("never-read"), FrameKind.ESSENTIAL)
    conn.finish(CloseCode.ROOM_CLOSED, "live session ended")
    await asyncio.sleep(0.02)
    assert conn.active  # still giving it its chance
    await asyncio.sleep(0.2)
    assert not conn.active and conn.close_reason == (CloseCode.ROOM_CLOSED, "live session ended")
    assert detached == ["c1"] and "never-read" not in sink.messages
    assert conn.tasks() == []  # nothing left running for it
