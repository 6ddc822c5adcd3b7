"""Servers for `redcart bench fanout`: the room hub, and the plain `websockets` baseline.

Both serve one room and take the same two control requests, so the driver treats them alike:
``GET /__bench/feed?rate=R&count=N&pad=P`` starts publishing N events at R/s from a task inside
the server, and ``GET /__bench/status`` returns what was published, how late the publisher ran
and how many viewers are connected.

- ``hub_app()`` (``uvicorn --factory``; websockets-sansio, deflate off, uvloop): a minimal
  Litestar app with only ``RoomHub`` + ``room_routes`` and a constant snapshot. It measures the
  fan-out path (outboxes, shared frame bytes, direct writes), not the live-session read model, so
  no database or session is needed. ``REDCART_BENCH_FANOUT_PG=<url>`` (which the driver sets
  by default) puts the hub on a PgBackplane, so every event makes the NOTIFY round trip, as
  across API processes; ``memory`` keeps the in-process one.
- ``python -m bench.fanout_server baseline PORT``: ``websockets`` 17 asyncio server on uvloop,
  compression off, one ``websockets.broadcast`` per event (what research §6.2 measured).

Events are ``deal.opened``-like reliable messages of about 190 bytes whose ``data.t`` is the
scheduled publish time (ns, wall clock): the probes measure from the schedule, so a publisher
that falls behind shows up as latency rather than as a lower rate (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

ROOM = "bench"
STATE = {"status": "live", "pinned": ["p1"], "deals": [{"deal_id": "d1", "units_left": 50}]}


def event_data(i: int, t_ns: int, pad: int) -> dict[str, Any]:
    return {
        "deal_id": "d1", "title": "Anessa sunscreen 60 ml", "price": 990, "currency": "CNY",
        "units_left": 50, "i": i, "t": t_ns, "pad": "x" * pad,
    }  # fmt: skip


def _tune_gc() -> None:
    """The same collector settings as redcart/app.py's lifespan (5,000 sockets are many objects;
    default thresholds make full collections that stall the loop)."""
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


class Feeder:
    """Publishes on an absolute schedule (t0 + i/rate) and records how late each publish ran."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.published = 0
        self.count = 0
        self.late_ms: list[float] = []
        self.fanout_ms: list[float] = []
        self.started_ns = 0

    def start(
        self, publish: Callable[[int, dict[str, Any]], Awaitable[None] | None], query: dict
    ) -> dict:
        rate, count, pad = float(query["rate"]), int(query["count"]), int(query.get("pad", 0))
        if self.task is not None and not self.task.done():
            return {"error": "already feeding"}
        self.published, self.count, self.late_ms, self.fanout_ms = 0, count, [], []
        self.task = asyncio.get_running_loop().create_task(self._run(publish, rate, count, pad))
        return {"ok": True}

    async def _run(self, publish: Callable[..., Any], rate: float, count: int, pad: int) -> None:
        loop = asyncio.get_running_loop()
        start, self.started_ns = loop.time() + 0.05, time.time_ns() + 50_000_000
        for i in range(count):
            due = start + i / rate
            # always yield, as a real feeder does (it awaits I/O between events); when late the
            # loop still serves sockets and the next event waits its turn
            await asyncio.sleep(max(0.0, due - loop.time()))
            self.late_ms.append(max(0.0, loop.time() - due) * 1000)
            result = publish(i, event_data(i, self.started_ns + round(i / rate * 1e9), pad))
            if result is not None:
                await result
            self.published += 1

    def status(self) -> dict[str, Any]:
        late, fanout = sorted(self.late_ms), sorted(self.fanout_ms)
        return {
            "fanout_p50_ms": round(fanout[len(fanout) // 2], 2) if fanout else None,
            "fanout_max_ms": round(fanout[-1], 2) if fanout else None,
            "published": self.published,
            "count": self.count,
            "feeding": self.task is not None and not self.task.done(),
            "late_p99_ms": round(late[int(len(late) * 0.99)], 2) if late else None,
            "late_max_ms": round(late[-1], 2) if late else None,
            "pid": os.getpid(),
            "time": time.time(),  # when this status was taken (the loop may answer late)
        }

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


def hub_app() -> Any:
    """uvicorn --factory target: RoomHub + room_routes + the two control requests."""
    from litestar import Litestar, get

    from livestream.room import RoomEvent, RoomHub, room_routes
    from livestream.room.pg_backplane import PgBackplane

    async def snapshot(room_id: str) -> dict[str, Any]:
        return STATE

    async def nobody(token: str) -> None:
        return None

    from livestream.room.room import Room

    fan_out = Room.fan_out

    def timed_fan_out(room: Room, text: str, count: int, kind: Any) -> None:
        """How long one frame takes to reach every viewer (this process only)."""
        began = time.perf_counter()
        fan_out(room, text, count, kind)
        feeder.fanout_ms.append((time.perf_counter() - began) * 1000)

    Room.fan_out = timed_fan_out  # type: ignore[method-assign]
    pg_url = os.environ.get("REDCART_BENCH_FANOUT_PG") or "memory"
    backplane = None if pg_url == "memory" else PgBackplane(pg_url)
    hub = RoomHub(snapshot, backplane=backplane)
    feeder = Feeder()

    def publish(i: int, data: dict[str, Any]) -> Awaitable[None]:
        return hub.publish(ROOM, RoomEvent("deal.opened", data))

    @get("/__bench/feed", sync_to_thread=False)
    def feed(rate: float, count: int, pad: int = 0) -> dict:
        return feeder.start(publish, {"rate": rate, "count": count, "pad": pad})

    @get("/__bench/status", sync_to_thread=False)
    def status() -> dict:
        return {**feeder.status(), **hub.stats(ROOM)}

    startup: list[Callable[[], Any]] = [_tune_gc]
    shutdown: list[Callable[[], Any]] = [feeder.stop, hub.stop]
    if backplane is not None:
        startup.insert(0, backplane.start)
    profile_to = os.environ.get("REDCART_BENCH_PROFILE")  # cProfile the server into this file
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()

        def dump() -> None:
            profiler.disable()
            profiler.dump_stats(profile_to)

        startup.append(lambda: profiler.enable())
        shutdown.insert(0, dump)
    return Litestar(
        route_handlers=[*room_routes(hub, nobody), feed, status],
        on_startup=startup,
        on_shutdown=shutdown,
    )


async def baseline(port: int) -> None:
    """Plain websockets server: a set of connections and websockets.broadcast per event."""
    from http import HTTPStatus
    from urllib.parse import parse_qsl, urlsplit

    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.http11 import Request, Response

    from livestream.room.protocol import encode, now_ms

    viewers: set[ServerConnection] = set()
    feeder = Feeder()

    async def handler(ws: ServerConnection) -> None:
        viewers.add(ws)
        try:
            await ws.wait_closed()
        finally:
            viewers.discard(ws)

    def publish(i: int, data: dict[str, Any]) -> None:
        message = {"type": "deal.opened", "epoch": "baseline", "seq": i + 1, "ts": now_ms()}
        began = time.perf_counter()
        broadcast(viewers, encode({**message, "data": data}))
        feeder.fanout_ms.append((time.perf_counter() - began) * 1000)

    def control(connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/__bench/feed":
            body = feeder.start(publish, dict(parse_qsl(url.query)))
        elif url.path == "/__bench/status":
            body = {**feeder.status(), "viewers": len(viewers)}
        else:
            return None
        return connection.respond(HTTPStatus.OK, json.dumps(body))

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with serve(
        handler, "127.0.0.1", port, compression=None, process_request=control, backlog=4096
    ):
        _tune_gc()
        print("ready", flush=True)
        await stop.wait()
    await feeder.stop()


if __name__ == "__main__":
    import uvloop

    if sys.argv[1:2] != ["baseline"]:
        raise SystemExit("usage: python -m bench.fanout_server baseline PORT")
    uvloop.run(baseline(int(sys.argv[2])))
