"""A minimal closed-loop HTTP/1.1 load generator on asyncio (run it under uvloop).

httpx costs ~2 ms of client CPU per request on this machine (≈450 req/s in total), which would
measure the client, not the server. This speaks just enough HTTP/1.1 for a benchmark: one
keep-alive connection per client, one request in flight per connection, responses framed by
Content-Length (chunked bodies are understood too, for error pages). Each client sends its next
request as soon as the previous answer arrives (closed loop), so offered load adapts to the
server and latency is the full round trip.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

MakeRequest = Callable[[int, int], bytes]  # (client index, request number) -> raw request bytes


class ProtocolError(Exception):
    pass


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.must_close = False
        self._buf = bytearray()
        self._waiter: asyncio.Future | None = None
        self._head_end = -1  # offset of the blank line ending the head, once seen
        self._status = 0
        self._length = -1  # body length from Content-Length; -1 unknown, -2 chunked

    # -- asyncio.Protocol ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._waiter is not None:
            self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError(f"connection lost: {exc or 'closed by peer'}"))

    # -- requests ------------------------------------------------------------------------------
    def request(self, raw: bytes) -> asyncio.Future:
        """Send one request; the future resolves to (status, body bytes)."""
        if self.lost or self.transport is None:
            raise ConnectionError("connection is closed")
        self._waiter = self._loop.create_future()
        self._head_end, self._status, self._length = -1, 0, -1
        self.transport.write(raw)
        if self._buf:
            self._parse()
        return self._waiter

    def close(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.close()
        self.lost = True

    def _fail(self, message: str) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ProtocolError(message))
        self.close()

    def _parse(self) -> None:
        buf = self._buf
        if self._head_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 65536:
                    self._fail("response head too large")
                return
            self._head_end = end
            head = bytes(buf[:end]).lower()
            if not head.startswith(b"http/1.") or len(head) < 12:
                self._fail("not an HTTP/1.x response")
                return
            try:
                self._status = int(head[9:12])
            except ValueError:
                self._fail("bad status line")
                return
            self._length = -1
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip()
                if name == b"content-length":
                    self._length = int(value.strip())
                elif name == b"transfer-encoding" and b"chunked" in value:
                    self._length = -2
                elif name == b"connection" and b"close" in value:
                    self.must_close = True
            if self._length == -1:
                if self._status in (204, 304) or 100 <= self._status < 200:
                    self._length = 0
                else:
                    self._fail("response without Content-Length is not supported")
                    return
        start = self._head_end + 4
        if self._length >= 0:
            stop = start + self._length
            if len(buf) < stop:
                return
            body = bytes(buf[start:stop])
        else:
            found = _dechunk(buf, start)
            if found is None:
                return
            body, stop = found
        del buf[:stop]
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, body))


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """(body, end offset) of a complete chunked body at pos, or None if more bytes are needed."""
    parts = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n\r\n", pos - 2)  # no trailers expected: "0\r\n\r\n"
            return (b"".join(parts), end + 4) if end >= 0 else None
        if len(buf) < pos + size + 2:
            return None
        parts.append(bytes(buf[pos : pos + size]))
        pos += size + 2


@dataclass
class LoadResult:
    """What completed inside the measured window."""

    window_s: float
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: dict[int, list[float]] = field(default_factory=dict)
    errors: Counter = field(default_factory=Counter)  # transport errors / timeouts by kind
    samples: dict[int, bytes] = field(default_factory=dict)  # first body seen per status
    sent_total: int = 0  # including warm-up and requests still in flight at the end

    def completed(self, status_ok: Callable[[int], bool] = lambda s: True) -> int:
        return sum(n for s, n in self.statuses.items() if status_ok(s))


@dataclass
class LiveCounters:
    """Updated as responses arrive (warm-up included), for progress lines."""

    done: int = 0
    ok: int = 0
    errors: int = 0


async def closed_loop(
    host: str,
    port: int,
    clients: int,
    make_request: MakeRequest,
    *,
    seconds: float,
    warmup: float = 1.0,
    timeout: float = 10.0,
    ok: Callable[[int], bool] = lambda status: 200 <= status < 300,
    live: LiveCounters | None = None,
) -> LoadResult:
    """Run `clients` connections, each sending requests back to back, for warmup + seconds.

    Only responses that complete inside the measured window count (and their latency); requests
    still in flight when it closes are awaited but not counted.
    """
    loop = asyncio.get_running_loop()
    live = live or LiveCounters()
    result = LoadResult(window_s=seconds)
    begin = time.perf_counter()
    window_start = begin + warmup
    window_end = window_start + seconds
    latencies = result.latencies_ms
    statuses = result.statuses

    async def connect() -> _Connection:
        _, proto = await loop.create_connection(lambda: _Connection(loop), host, port)
        return proto

    async def client(index: int) -> None:
        conn: _Connection | None = None
        n = 0
        perf = time.perf_counter
        try:
            while perf() < window_end:
                if conn is None or conn.lost:
                    try:
                        conn = await asyncio.wait_for(connect(), timeout)
                    except (TimeoutError, OSError) as exc:
                        if perf() >= window_start:
                            result.errors[f"connect: {type(exc).__name__}"] += 1
                        live.errors += 1
                        conn = None
                        await asyncio.sleep(0.05)
                        continue
                raw = make_request(index, n)
                n += 1
                result.sent_total += 1
                t0 = perf()
                fut = conn.request(raw)
                timer = loop.call_later(timeout, _expire, fut)
                try:
                    status, body = await fut
                except (TimeoutError, ConnectionError, ProtocolError) as exc:
                    t1 = perf()
                    if window_start <= t1 < window_end:
                        result.errors[type(exc).__name__] += 1
                    live.errors += 1
                    conn.close()
                    conn = None
                    continue
                finally:
                    timer.cancel()
                t1 = perf()
                live.done += 1
                if ok(status):
                    live.ok += 1
                if window_start <= t1 < window_end:
                    statuses[status] += 1
                    bucket = latencies.get(status)
                    if bucket is None:
                        bucket = latencies[status] = []
                        result.samples[status] = body[:500]
                    bucket.append((t1 - t0) * 1000.0)
                if conn.must_close:
                    conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    return result


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), math.ceil(q / 100.0 * len(sorted_values))))
    return sorted_values[rank - 1]
