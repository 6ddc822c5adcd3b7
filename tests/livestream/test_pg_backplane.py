"""PgBackplane against a real PostgreSQL: room changes from one hub reach viewers of another, in
one order everywhere; bounded NOTIFY traffic; recovery after the listener is killed.

Two kinds of setup: hubs on uvicorn threads in this process (``LiveServer``), and two uvicorn
processes serving ``create_app`` below (the minimal app around RoomHub + room_routes).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from litestar import Litestar, get, post
from websockets.exceptions import ConnectionClosed

from livestream.room import CloseCode, RoomEvent, RoomHub, room_routes
from livestream.room.backplane import BackplaneMessage
from livestream.room.pg_backplane import PgBackplane, split_payload
from tests.conftest import _free_port

from .harness import FakeSessions, LiveServer, Viewer, authenticate

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parents[2]
URL_ENV = "REDCART_TEST_BACKPLANE_URL"


def create_app() -> Litestar:
    """uvicorn --factory target: one room hub on a PgBackplane, plus POST /publish/{room}."""
    backplane = PgBackplane(os.environ[URL_ENV])
    hub = RoomHub(FakeSessions(states={"s1": {"status": "live"}}), backplane=backplane)

    @post("/publish/{room_id:str}", status_code=200)
    async def publish(room_id: str, data: dict[str, Any]) -> dict[str, bool]:
        await hub.publish(room_id, RoomEvent(data["type"], data["data"]))
        return {"ok": True}

    @get("/ready")
    async def ready() -> dict[str, bool]:
        return {"listening": backplane.listening}

    return Litestar(
        route_handlers=[*room_routes(hub, authenticate), publish, ready],
        on_startup=[backplane.start],
        on_shutdown=[hub.stop],
    )


@pytest.fixture
async def two_servers(postgres_url: str) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    """Two hubs, each on its own uvicorn thread and loop, sharing one channel."""
    servers = []
    for _ in range(2):
        sessions = FakeSessions(states={"s1": {"status": "live"}})
        backplane = PgBackplane(postgres_url, health_interval=0.5)
        server = LiveServer(RoomHub(sessions, backplane=backplane), sessions)
        servers.append(server)
        await server.call(backplane.start)
    try:
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.stop()


def backplane_of(server: LiveServer) -> PgBackplane:
    backplane = server.hub._backplane
    assert isinstance(backplane, PgBackplane)
    return backplane


async def events(viewer: Viewer, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while len(out) < count:
        message = await viewer.next()
        if message["type"] == "deal.opened":
            out.append(message)
    return out


async def test_publish_on_one_hub_reaches_viewers_of_both_in_order(
    two_servers: tuple[LiveServer, LiveServer], open_viewer: Any
) -> None:
    a, b = two_servers
    async with open_viewer(a.url("s1")) as on_a, open_viewer(b.url("s1")) as on_b:
        for viewer in (on_a, on_b):
            await viewer.next_of("snapshot")

        async def feed() -> None:
            for i in range(200):
                await a.hub.publish("s1", RoomEvent("deal.opened", {"i": i}))

        await a.call(feed)
        for viewer in (on_a, on_b):
            got = await events(viewer, 200)
            assert [m["seq"] for m in got] == list(range(1, 201))
            assert [m["data"]["i"] for m in got] == list(range(200))
    assert backplane_of(a).stats["transactions"] <= 200


async def counted(viewer: Viewer, viewers: int) -> dict[str, Any]:
    """The first `room.counters` that says `viewers` (they come about once a second)."""
    while True:
        message = await viewer.next_of("room.counters", timeout=10)
        if message["data"]["viewers"] == viewers:
            return message


async def test_viewers_are_counted_across_hubs(
    two_servers: tuple[LiveServer, LiveServer], open_viewer: Any
) -> None:
    a, b = two_servers
    async with (
        open_viewer(a.url("s1")) as on_a,
        open_viewer(a.url("s1")) as also_on_a,
        open_viewer(b.url("s1")) as on_b,
    ):
        for viewer in (on_a, also_on_a, on_b):
            await viewer.next_of("snapshot")
        await counted(on_a, 3)  # two here and one on the other hub
        await counted(on_b, 3)
        assert await b.run(lambda: b.hub.viewer_count("s1")) == 1  # its own sockets
        await also_on_a.ws.close()
        await counted(on_b, 2)
        async with open_viewer(b.url("s1")) as late:  # a snapshot counts the whole room too
            snapshot = await late.next_of("snapshot")
            assert snapshot["data"]["viewers"] == 3  # itself, on_b and the one left on a
            await counted(on_a, 3)


async def test_concurrent_publishers_are_applied_in_the_same_order_everywhere(
    two_servers: tuple[LiveServer, LiveServer], open_viewer: Any
) -> None:
    a, b = two_servers

    def feeder(server: LiveServer, name: str) -> Callable[[], Any]:
        async def feed() -> None:
            async def one(i: int) -> None:
                await server.hub.publish("s1", RoomEvent("deal.opened", {"from": name, "i": i}))

            for start in range(0, 100, 10):  # bursts of 10 concurrent publishes
                await asyncio.gather(*(one(i) for i in range(start, start + 10)))

        return feed

    async with open_viewer(a.url("s1")) as on_a, open_viewer(b.url("s1")) as on_b:
        for viewer in (on_a, on_b):
            await viewer.next_of("snapshot")
        await asyncio.gather(a.call(feeder(a, "a")), b.call(feeder(b, "b")))
        seen_a, seen_b = await events(on_a, 200), await events(on_b, 200)
    order_a = [(m["data"]["from"], m["data"]["i"]) for m in seen_a]
    order_b = [(m["data"]["from"], m["data"]["i"]) for m in seen_b]
    assert order_a == order_b
    assert sorted(order_a) == sorted(
        [("a", i) for i in range(100)] + [("b", i) for i in range(100)]
    )
    for viewer_seen in (seen_a, seen_b):
        assert [m["seq"] for m in viewer_seen] == list(range(1, 201))


async def test_likes_cost_a_notify_per_tick_not_per_click(
    two_servers: tuple[LiveServer, LiveServer], open_viewer: Any
) -> None:
    a, b = two_servers

    async def clicks() -> None:
        for _ in range(2000):
            await a.hub.add_likes("s1", 1)
            await asyncio.sleep(0)  # about 2,000 clicks in well under a second

    before = backplane_of(a).stats["transactions"]
    started = time.monotonic()
    await a.call(clicks)
    elapsed = time.monotonic() - started

    def likes_on_b() -> int:
        room = b.hub._rooms.get("s1")
        return 0 if room is None else room.likes_total

    deadline = time.monotonic() + 5
    while await b.run(likes_on_b) < 2000 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert await b.run(likes_on_b) == 2000
    transactions = backplane_of(a).stats["transactions"] - before
    assert transactions <= 2 + 10 * elapsed  # at most one per 0.1 s tick
    async with open_viewer(b.url("s1")) as on_b:
        assert (await on_b.next_of("snapshot"))["data"]["likes"] == 2000


async def test_a_reliable_message_does_not_wait_for_the_coalescing_tick(postgres_url: str) -> None:
    backplane = PgBackplane(postgres_url, coalesce_interval=5.0)
    hub = RoomHub(FakeSessions(), backplane=backplane)
    await backplane.start()
    try:
        await hub.add_likes("s1", 1)
        await asyncio.sleep(0.3)  # that like went out; the next one waits for the 5 s tick
        await hub.add_likes("s1", 1)
        started = time.monotonic()
        await hub.publish("s1", RoomEvent("deal.opened", {}))
        assert time.monotonic() - started < 2.5
        assert hub._rooms["s1"].likes_total == 2  # the waiting like went along, ahead of it
    finally:
        await hub.stop()


async def test_large_messages_are_split_and_joined_oversized_ones_refused(
    two_servers: tuple[LiveServer, LiveServer], open_viewer: Any
) -> None:
    a, b = two_servers
    text = "多字节" * 9000  # 81 kB of UTF-8: eleven NOTIFY payloads
    async with open_viewer(b.url("s1")) as on_b:
        await on_b.next_of("snapshot")
        await a.call(a.hub.publish, "s1", RoomEvent("deal.opened", {"text": text}))
        (got,) = await events(on_b, 1)
    assert got["data"]["text"] == text and got["seq"] == 1
    await asyncio.sleep(0.1)  # the echo can overtake the sender's own bookkeeping
    assert backplane_of(a).stats["notifies"] >= 11
    with pytest.raises(ValueError, match="limit"):
        await a.call(a.hub.publish, "s1", RoomEvent("deal.opened", {"text": "x" * 300_000}))


def test_split_payload_never_cuts_a_character() -> None:
    data = ("aé多😀" * 50).encode()
    chunks = split_payload(data, 7)
    assert "".join(chunks).encode() == data
    assert all(len(chunk.encode()) <= 7 for chunk in chunks)


async def test_listener_killed_then_messages_flow_again_under_a_new_epoch(
    two_servers: tuple[LiveServer, LiveServer], open_viewer: Any, postgres_url: str
) -> None:
    a, b = two_servers
    backplane = backplane_of(b)
    async with open_viewer(b.url("s1")) as on_b:
        epoch = (await on_b.next_of("snapshot"))["epoch"]
        await a.call(a.hub.publish, "s1", RoomEvent("deal.opened", {"i": 0}))
        assert [m["seq"] for m in await events(on_b, 1)] == [1]
        assert backplane._listener is not None
        pid = backplane._listener.info.backend_pid
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(ConnectionClosed) as closed:  # told to reconnect and resume
            await on_b.collect(10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == CloseCode.SERVICE_RESTART
    assert backplane.stats["resyncs"] == 1 and backplane.listening
    async with open_viewer(b.url("s1", epoch=epoch, last_seq=1)) as on_b:
        welcome = await on_b.next()
        assert (welcome["recovered"], welcome["reason"]) == (False, "epoch_changed")
        assert (await on_b.next())["type"] == "snapshot"
        for i in range(1, 4):
            await a.call(a.hub.publish, "s1", RoomEvent("deal.opened", {"i": i}))
        got = await events(on_b, 3)
    assert [m["data"]["i"] for m in got] == [1, 2, 3]
    assert [m["seq"] for m in got] == [1, 2, 3] and got[0]["epoch"] != epoch


async def test_publish_before_start_is_an_error(postgres_url: str) -> None:
    backplane = PgBackplane(postgres_url)
    with pytest.raises(RuntimeError, match="start"):
        await backplane.publish(BackplaneMessage("s1", "event", {"type": "x", "data": {}}))
    await backplane.close()


# -- two uvicorn processes -----------------------------------------------------------------------


@pytest.fixture
def two_processes(postgres_url: str, tmp_path: Path) -> Iterator[list[str]]:
    procs, urls = [], []
    env = {**os.environ, URL_ENV: postgres_url, "PYTHONUNBUFFERED": "1"}
    for name in ("a", "b"):
        port = _free_port()
        log = (tmp_path / f"{name}.log").open("w")
        cmd = [
            sys.executable, "-m", "uvicorn", f"{__name__}:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--ws", "websockets-sansio",
            "--ws-per-message-deflate", "false", "--log-level", "warning",
        ]  # fmt: skip
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=log))
        urls.append(f"127.0.0.1:{port}")
    try:
        for proc, url, name in zip(procs, urls, "ab", strict=True):
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()
                try:
                    if httpx.get(f"http://{url}/ready", timeout=1).json()["listening"]:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, (tmp_path / f"{name}.log").read_text()
                time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.slow
async def test_two_uvicorn_processes_serve_one_room_in_one_order(
    two_processes: list[str], open_viewer: Any
) -> None:
    async def publish_from(http: httpx.AsyncClient, url: str, name: str) -> None:
        for i in range(60):
            body = {"type": "deal.opened", "data": {"from": name, "i": i}}
            r = await http.post(f"http://{url}/publish/s1", json=body)
            assert r.status_code == 200, r.text

    a, b = two_processes
    async with (
        open_viewer(f"ws://{a}/live/s1/ws") as on_a,
        open_viewer(f"ws://{b}/live/s1/ws?token=bob:viewer") as on_b,
        httpx.AsyncClient(timeout=10) as http,
    ):
        for viewer in (on_a, on_b):
            await viewer.next_of("snapshot")
        await asyncio.gather(publish_from(http, a, "a"), publish_from(http, b, "b"))
        seen_a, seen_b = await events(on_a, 120), await events(on_b, 120)
        reply = await on_b.request(type="chat.send", id="c1", text="hello from b")
        assert reply["type"] == "ack"
        batch = await on_a.next_of("chat.batch")
    order = [(m["data"]["from"], m["data"]["i"]) for m in seen_a]
    assert order == [(m["data"]["from"], m["data"]["i"]) for m in seen_b]
    for name in "ab":
        assert [i for who, i in order if who == name] == list(range(60))
    for seen in (seen_a, seen_b):
        assert [m["seq"] for m in seen] == list(range(1, 121))
    assert [m["text"] for m in batch["data"]["messages"]] == ["hello from b"]
