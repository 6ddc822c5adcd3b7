"""Load-generator process for `redcart bench fanout`: drain viewers and probe viewers.

Why two kinds (research/livestream.md §5.2): a client that parses every message saturates
before the server does, so most viewers are **drains**: a raw socket that sends the upgrade by
hand, then only walks the RFC 6455 frame headers (no payload decoding) to count text frames,
messages (one per text frame plus one per ``"\\n"``, the hub's batching separator) and bytes,
answers pings (so keepalive does not close them) and notes close codes (4008 = slow consumer).
A few **probes** are real ``websockets`` clients that decode every message, take the latency
``receive time - data.t`` (``t``: the event's scheduled publish time, server wall clock on the
same machine, so an overloaded publisher shows up as latency too) and check seq continuity.

The driver (bench.fanout) talks to each process over a multiprocessing pipe: ``connect``,
``mark`` (counters now), ``probes`` (latency samples and gaps), ``disconnect``, ``exit``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import resource
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

import msgspec

_decode = msgspec.json.decode


class Counters:
    __slots__ = ("bytes", "closed", "codes", "frames", "messages", "pings")

    def __init__(self) -> None:
        self.bytes = self.frames = self.messages = self.pings = self.closed = 0
        self.codes: Counter[int] = Counter()


class Drain(asyncio.Protocol):
    """One cheap viewer: counts what arrives, decodes nothing."""

    def __init__(self, counters: Counters, request: bytes, opened: asyncio.Future[bool]) -> None:
        self.c = counters
        self.request = request
        self.opened = opened
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.upgraded = False
        self.pending = b""  # an incomplete frame header
        self.skip = 0  # payload bytes of the current frame still to come
        self.text = False  # the current frame is a text frame

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_result(False)
        elif self.upgraded:
            self.c.closed += 1

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            ok = b" 101 " in self.head.split(b"\r\n", 1)[0]
            self.upgraded = ok
            self.opened.set_result(ok)
            if not ok:
                assert self.transport is not None
                self.transport.close()
                return
            data, self.head = self.head[end + 4 :], b""
        c = self.c
        c.bytes += len(data)
        buf = self.pending + data if self.pending else data
        n, i, skip = len(buf), 0, self.skip
        if skip:
            i = min(skip, n)
            if self.text:
                c.messages += buf.count(b"\n", 0, i)
            skip -= i
        while not skip and n - i >= 2:
            b0, b1 = buf[i], buf[i + 1] & 0x7F
            hl = 2 if b1 < 126 else 4 if b1 == 126 else 10
            if n - i < hl:
                break
            length = b1 if b1 < 126 else int.from_bytes(buf[i + 2 : i + hl], "big")
            i += hl
            opcode = b0 & 0x0F
            self.text = opcode in (0, 1)
            if opcode == 1:
                c.frames += 1
                c.messages += 1
            elif opcode == 8:
                c.codes[int.from_bytes(buf[i : i + 2], "big") if length >= 2 else 1005] += 1
            elif opcode == 9 and n - i >= length and self.transport is not None:
                c.pings += 1  # pong, masked with a zero key (clients must mask)
                self.transport.write(
                    bytes((0x8A, 0x80 | length)) + b"\0\0\0\0" + buf[i : i + length]
                )
            take = min(length, n - i)
            if self.text:
                c.messages += buf.count(b"\n", i, i + take)
            i += take
            skip = length - take
        self.skip = skip
        self.pending = buf[i:] if i < n else b""


def _request(host: str, port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class Probe:
    """A decoding viewer: latency per reliable message and seq continuity."""

    def __init__(self) -> None:
        self.samples: list[tuple[int, float]] = []  # (scheduled ns, latency ms)
        self.gaps = self.out_of_order = self.received = 0
        self.epochs: set[str] = set()
        self.close_code: int | None = None

    async def run(self, url: str, opened: asyncio.Future[bool]) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        last: int | None = None
        try:
            async with connect(
                url, compression=None, max_queue=None, ping_interval=None, max_size=None,
                open_timeout=60, proxy=None,
            ) as ws:  # fmt: skip
                opened.set_result(True)
                async for frame in ws:
                    now = time.time_ns()
                    for line in str(frame).split("\n"):
                        message = _decode(line)
                        seq = message.get("seq")
                        if seq is None:
                            continue
                        if message["type"] in ("welcome", "snapshot"):
                            last = seq  # the live stream continues from here
                            continue
                        self.epochs.add(message.get("epoch", ""))
                        self.received += 1
                        if last is not None and seq != last + 1:
                            if seq > last + 1:
                                self.gaps += seq - last - 1
                            else:
                                self.out_of_order += 1
                        last = seq
                        t = (message.get("data") or {}).get("t")
                        if t is not None:
                            self.samples.append((t, (now - t) / 1e6))
        except ConnectionClosed as exc:
            self.close_code = exc.rcvd.code if exc.rcvd is not None else 1006
        except OSError:
            if not opened.done():
                opened.set_result(False)
        finally:
            if not opened.done():
                opened.set_result(False)


class LoadGen:
    def __init__(self) -> None:
        self.counters = Counters()
        self.drains: list[Drain] = []
        self.probes: list[Probe] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def connect(self, host: str, port: int, path: str, n: int, probes: bool) -> dict:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        gate = asyncio.Semaphore(100)  # handshakes in flight

        async def one_drain() -> bool:
            async with gate:
                opened: asyncio.Future[bool] = loop.create_future()
                drain = Drain(self.counters, _request(host, port, path), opened)
                try:
                    await loop.create_connection(lambda: drain, host, port)
                except OSError:
                    return False
                self.drains.append(drain)
                return await asyncio.wait_for(opened, 60)

        async def one_probe() -> bool:
            async with gate:
                probe = Probe()
                opened = loop.create_future()
                self.probes.append(probe)
                self.tasks.append(loop.create_task(probe.run(f"ws://{host}:{port}{path}", opened)))
                return await opened

        results = await asyncio.gather(
            *((one_probe() if probes else one_drain()) for _ in range(n)), return_exceptions=True
        )
        ok = sum(1 for r in results if r is True)
        return {"ok": ok, "failed": n - ok, "seconds": time.perf_counter() - started}

    def mark(self) -> dict:
        c = self.counters
        return {
            "at": time.time(),
            "bytes": c.bytes,
            "frames": c.frames,
            "messages": c.messages,
            "closed": c.closed,
            "pings": c.pings,
            "codes": dict(c.codes),
            "probe_received": sum(p.received for p in self.probes),
            "cpu_s": sum(os.times()[:2]),
        }

    def probe_report(self) -> dict:
        return {
            "samples": [s for p in self.probes for s in p.samples],
            "gaps": sum(p.gaps for p in self.probes),
            "out_of_order": sum(p.out_of_order for p in self.probes),
            "received": [p.received for p in self.probes],
            "closed": [p.close_code for p in self.probes if p.close_code is not None],
            "epochs": sorted({e for p in self.probes for e in p.epochs}),
        }

    async def disconnect(self) -> dict:
        for drain in self.drains:
            if drain.transport is not None:
                drain.transport.abort()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(BaseException):
                await task
        self.drains, self.probes, self.tasks = [], [], []
        self.counters = Counters()
        await asyncio.sleep(0.2)
        return {"ok": True}


def main(pipe: Connection) -> None:
    """Process entry point: raise the fd limit, then serve the driver's commands on uvloop."""
    import uvloop

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def serve() -> None:
        gen = LoadGen()
        loop = asyncio.get_running_loop()
        while True:
            command, args = await loop.run_in_executor(None, pipe.recv)
            if command == "exit":
                await gen.disconnect()
                pipe.send(None)
                return
            result: Any
            if command == "connect":
                result = await gen.connect(*args)
            elif command == "mark":
                result = gen.mark()
            elif command == "probes":
                result = gen.probe_report()
            elif command == "disconnect":
                result = await gen.disconnect()
            else:
                result = {"error": f"unknown command {command}"}
            pipe.send(result)

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve())
