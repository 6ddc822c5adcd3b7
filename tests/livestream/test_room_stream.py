"""Reliable stream over a real uvicorn server: snapshot, ordering, resume, slow consumers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from livestream.room import CloseCode, OutboxLimits, RoomEvent, RoomHubConfig

from .harness import ServerFactory, Viewer

DEAL = {"deal_id": "d1", "price": 990, "units_left": 50, "ends_at": 1_900_000_000_000}


async def publish_many(
    server: Any, room: str, count: int, start: int = 0, pad: int = 0, pause: float = 0.0
) -> None:
    """Publish ``count`` events on the server loop, yielding every 10 like a real feeder."""

    async def burst() -> None:
        for i in range(start, start + count):
            await server.hub.publish(
                room, RoomEvent("deal.price_changed", {"i": i, "p": "x" * pad})
            )
            if i % 10 == 9:
                await asyncio.sleep(pause)

    await server.call(burst)


async def read_reliable(viewer: Viewer, count: int) -> list[dict[str, Any]]:
    """The next ``count`` reliable events (they carry ``seq``), skipping everything else."""
    events = []
    while len(events) < count:
        message = await viewer.next()
        if "seq" in message and message["type"] not in ("welcome", "snapshot"):
            events.append(message)
    return events


async def read_seqs(viewer: Viewer, count: int) -> list[int]:
    return [message["seq"] for message in await read_reliable(viewer, count)]


async def wait_for_head(server: Any, room: str, seq: int) -> None:
    """Until the room has handed ``seq`` to live connections (units left get theirs per tick)."""
    async with asyncio.timeout(5):
        while (await server.run(lambda: server.hub.head(room)))[1] < seq:
            await asyncio.sleep(0.01)


def stock_moves(server: Any, *units: int, then: str | None = None) -> Any:
    """Coroutine for the server loop: units left of d1 go through ``units``, then maybe a
    reliable event ``then``. Nothing in it yields to the hub's ticker (the in-memory backplane
    applies at once), so all of it falls within one tick."""

    async def move() -> None:
        for value in units:
            await server.hub.set_units_left("s1", "d1", value)
        if then is not None:
            await server.hub.publish("s1", RoomEvent(then, {"deal_id": "d1"}))

    return move


async def test_connect_gets_welcome_then_snapshot_with_state_and_position(
    live_server: ServerFactory, open_viewer: Any
) -> None:
    server = live_server(s1={"status": "live", "pinned": ["p9"], "deals": [DEAL]})
    await publish_many(server, "s1", 3)
    await server.call(server.hub.set_units_left, "s1", "d1", 42)
    await wait_for_head(server, "s1", 4)  # the units-left event of the next tick
    async with open_viewer(server.url("s1")) as viewer:
        welcome = await viewer.next()
        snapshot = await viewer.next()
    assert welcome["type"] == "welcome"
    assert welcome["recovered"] is False and welcome["reason"] == "fresh"
    assert snapshot["type"] == "snapshot"
    assert (snapshot["epoch"], snapshot["seq"]) == (welcome["epoch"], 4)
    data = snapshot["data"]
    assert data["status"] == "live" and data["pinned"] == ["p9"] and data["deals"] == [DEAL]
    assert data["units_left"] == {"d1": 42}
    assert data["viewers"] == 1 and data["likes"] == 0 and data["chat"] == []


@pytest.mark.parametrize("direct_writes", [True, False], ids=["direct", "asgi"])
async def test_events_arrive_in_order_without_gaps_for_every_viewer(
    live_server: ServerFactory, open_viewer: Any, direct_writes: bool
) -> None:
    server = live_server(direct_writes=direct_writes)
    async with (
        open_viewer(server.url("s1")) as first,
        open_viewer(server.url("s1")) as second,
    ):
        for viewer in (first, second):
            await viewer.next_of("snapshot")
        await publish_many(server, "s1", 300)
        for viewer in (first, second):
            assert await read_seqs(viewer, 300) == list(range(1, 301))
        stats = await server.run(lambda: server.hub.stats("s1"))
        assert (stats["direct_writes"] > 0) is direct_writes  # shared-bytes fast path on uvicorn


async def test_events_published_while_snapshot_is_read_follow_it_without_gap(
    live_server: ServerFactory, open_viewer: Any
) -> None:
    server = live_server()
    await publish_many(server, "s1", 2)
    gate = await server.run(asyncio.Event)
    server.sessions.gate = gate
    async with open_viewer(server.url("s1")) as viewer:
        while await server.run(lambda: server.hub.viewer_count("s1")) == 0:
            await asyncio.sleep(0.01)  # subscribed, snapshot read still blocked
        await publish_many(server, "s1", 5, start=2)
        await server.run(gate.set)
        snapshot = await viewer.next_of("snapshot")
        assert snapshot["seq"] == 2
        assert await read_seqs(viewer, 5) == [3, 4, 5, 6, 7]


async def test_reconnect_with_last_seq_replays_missed_events(
    live_server: ServerFactory, open_viewer: Any
) -> None:
    server = live_server()
    async with open_viewer(server.url("s1")) as viewer:
        epoch = (await viewer.next_of("snapshot"))["epoch"]
        await publish_many(server, "s1", 5)
        assert await read_seqs(viewer, 5) == [1, 2, 3, 4, 5]
    await publish_many(server, "s1", 7, start=5)
    async with open_viewer(server.url("s1", epoch=epoch, last_seq=5)) as viewer:
        welcome = await viewer.next()
        assert welcome["type"] == "welcome" and welcome["recovered"] is True
        replayed = [await viewer.next() for _ in range(7)]
        assert [m["seq"] for m in replayed] == list(range(6, 13))
        assert [m["data"]["i"] for m in replayed] == list(range(5, 12))
        state = await viewer.collect(0.3)
        assert {m["type"] for m in state} == {"room.counters"}  # the values not replayed
        await publish_many(server, "s1", 1, start=12)
        assert await read_seqs(viewer, 1) == [13]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"last_seq": 2}, "out_of_window"),  # evicted from the 20-event ring
        ({"last_seq": 25}, "out_of_window"),  # within ring, but more than max_replay=10 missed
        ({"last_seq": 29, "epoch": "feedbeef"}, "epoch_changed"),
        ({"last_seq": 99}, "out_of_window"),  # a seq this epoch never issued
    ],
)
async def test_resume_outside_the_buffer_gets_a_fresh_snapshot(
    live_server: ServerFactory, open_viewer: Any, query: dict[str, Any], reason: str
) -> None:
    server = live_server(RoomHubConfig(ring_capacity=20, max_replay=10))
    await publish_many(server, "s1", 40)
    epoch, head = await server.run(lambda: server.hub.head("s1"))
    query = {"epoch": epoch, **query}
    if query["last_seq"] == 25:
        query["last_seq"] = head - 11
    async with open_viewer(server.url("s1", **query)) as viewer:
        welcome = await viewer.next()
        snapshot = await viewer.next()
    assert (welcome["recovered"], welcome["reason"]) == (False, reason)
    assert snapshot["type"] == "snapshot" and snapshot["seq"] == head == 40


async def test_unknown_session_is_closed_with_4004(
    live_server: ServerFactory, open_viewer: Any
) -> None:
    server = live_server()
    async with open_viewer(server.url("nope")) as viewer:
        with pytest.raises(ConnectionClosed) as closed:
            await viewer.next()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == CloseCode.ROOM_NOT_FOUND


@pytest.mark.parametrize("direct_writes", [True, False], ids=["direct", "asgi"])
async def test_slow_viewer_is_closed_with_4008_while_others_get_everything(
    live_server: ServerFactory, open_viewer: Any, direct_writes: bool
) -> None:
    limits = OutboxLimits(max_messages=1000, max_chars=1 << 20, close_timeout=10)
    server = live_server(RoomHubConfig(outbox=limits), direct_writes=direct_writes)
    total = 1500
    async with (
        open_viewer(server.url("s1"), max_queue=1) as slow,
        open_viewer(server.url("s1")) as fast,
    ):
        await fast.next_of("snapshot")
        reader = asyncio.create_task(read_seqs(fast, total))
        # ~12 MB at ~16 MB/s: more than the socket buffers plus the 1 MiB outbox of a viewer
        # that does not read, while a viewer that reads keeps up (client shares this process)
        await publish_many(server, "s1", total, pad=8000, pause=0.005)
        assert await asyncio.wait_for(reader, 20) == list(range(1, total + 1))
        assert await server.run(lambda: server.hub.viewer_count("s1")) == 1
        seqs: list[int] = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # the slow viewer now reads: what was buffered, then the close frame
                message = await slow.next(timeout=10)
                if message["type"] == "deal.price_changed":
                    seqs.append(message["seq"])
    rcvd = closed.value.rcvd
    assert rcvd is not None and rcvd.code == CloseCode.SLOW_CONSUMER == 4008
    assert rcvd.reason.startswith("slow consumer")
    assert seqs == list(range(1, len(seqs) + 1))  # a prefix: nothing silently skipped
    assert len(seqs) < total


async def test_units_left_are_coalesced_to_about_ten_gapless_events_per_second(
    live_server: ServerFactory, open_viewer: Any
) -> None:
    server = live_server()

    async def hammer() -> None:
        for units in range(500, -1, -1):  # 501 updates in ~0.5 s
            await server.hub.set_units_left("s1", "d1", units)
            await asyncio.sleep(0.001)

    async with open_viewer(server.url("s1")) as viewer:
        epoch = (await viewer.next_of("snapshot"))["epoch"]
        started = asyncio.get_running_loop().time()
        await server.call(hammer)
        elapsed = asyncio.get_running_loop().time() - started
        updates = await viewer.collect(0.4, "deal.units_left")
    assert updates[-1]["data"] == {"deal_id": "d1", "units_left": 0}
    assert 1 <= len(updates) <= (elapsed + 0.4) * 10 + 2
    assert {m["epoch"] for m in updates} == {epoch}
    assert [m["seq"] for m in updates] == list(range(1, len(updates) + 1))


async def test_units_left_are_reliable_one_per_tick_gapless_and_replayed_on_resume(
    live_server: ServerFactory, open_viewer: Any
) -> None:
    server = live_server()
    async with open_viewer(server.url("s1")) as viewer:
        epoch = (await viewer.next_of("snapshot"))["epoch"]
        await server.call(stock_moves(server, *range(50, 40, -1), then="deal.bought"))
        # the event published in the same turn gets its seq first; units left at the tick
        seen = await read_reliable(viewer, 2)
        await server.call(stock_moves(server, *range(40, -1, -1), then="deal.sold_out"))
        seen += await read_reliable(viewer, 2)
    assert [(m["type"], m["seq"], m["epoch"]) for m in seen] == [
        ("deal.bought", 1, epoch),
        ("deal.units_left", 2, epoch),
        ("deal.sold_out", 3, epoch),
        ("deal.units_left", 4, epoch),
    ]
    assert [m["data"] for m in seen if m["type"] == "deal.units_left"] == [
        {"deal_id": "d1", "units_left": 41},  # ten changes in one tick: one event, the last
        {"deal_id": "d1", "units_left": 0},
    ]

    await server.call(stock_moves(server, 1, 2))  # lapsed claims give units back meanwhile
    await wait_for_head(server, "s1", 5)
    async with open_viewer(server.url("s1", epoch=epoch, last_seq=2)) as viewer:
        welcome = await viewer.next()
        resumed = [await viewer.next() for _ in range(4)]
        after = await viewer.collect(0.3)
    assert welcome["recovered"] is True
    assert [(m["type"], m.get("seq")) for m in resumed] == [
        ("deal.sold_out", 3),
        ("deal.units_left", 4),
        ("deal.units_left", 5),
        ("room.counters", None),  # current counters follow the replay; units left do not
    ]
    assert [m["data"]["units_left"] for m in resumed[1:3]] == [0, 2]
    assert "deal.units_left" not in {m["type"] for m in after}  # nothing changed: no event


async def test_likes_and_viewer_count_are_coalesced_into_counters(
    live_server: ServerFactory, open_viewer: Any
) -> None:
    server = live_server()
    async with open_viewer(server.url("s1")) as a, open_viewer(server.url("s1")) as b:
        await a.next_of("snapshot")
        await b.next_of("snapshot")
        for _ in range(5):
            await b.send(type="like", n=3)
        await server.call(server.hub.add_likes, "s1", 100)
        counters = await a.collect(1.5, "room.counters")
    assert counters, "no counters within a counters interval"
    assert len(counters) <= 2
    assert counters[-1]["data"] == {"viewers": 2, "likes": 115}
