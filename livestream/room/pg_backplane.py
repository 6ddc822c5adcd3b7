"""PostgreSQL LISTEN/NOTIFY backplane: every hub process applies every room change, in the order
PostgreSQL delivers the notifications, its own changes included.

Why it looks like this:

- **One order everywhere.** Listeners receive notifications in commit order. A process never
  applies its own message directly; it applies what comes back on its LISTEN connection, like
  everyone else. ``publish`` waits for that echo, which keeps InMemoryBackplane's promise that
  after ``await hub.publish(...)`` the event has its seq.
- **Bounded NOTIFY traffic.** A NOTIFY-ing commit takes a cluster-wide lock (research
  livestream.md §2.3 item 4), shared with the event store. So messages are batched: at most one
  transaction per ``flush_interval`` (10 ms, ≤ 100/s per process whatever the publish rate).
  ``likes`` are summed per room and ``units_left`` keep the latest value per deal; alone they are
  flushed at most every ``coalesce_interval`` (the hub's 0.1 s tick), so a like storm costs one
  NOTIFY per tick, not one per click. They are not echoed (``publish`` returns at once) and go
  ahead of the reliable messages queued with them.
- **8000-byte payloads.** A larger batch is split into parts sent in one transaction, which
  PostgreSQL delivers together; parts are joined before anything is applied. One message over
  ``max_message_bytes`` (256 KiB) is refused with ValueError: room changes are small.
- **Reconnect = new epoch.** What is sent while a process is not listening is lost for it, and
  it cannot tell what. Once it LISTENs again it delivers one ``RESYNC`` to its handlers: the hub
  gives every room a new epoch and closes its viewers with 1012, so they reconnect and get a
  snapshot (the least the hub must do to never show a silent gap). Mutes or banned words missed
  meanwhile stay missed. A silently dead connection is found by ``SELECT 1`` every
  ``health_interval`` seconds.
- **A separate publishing connection** (psycopg holds the lock while ``notifies()`` waits). A
  failed send is retried under the same batch number (a duplicate of a send that did commit is
  recognised and skipped) for ``publish_timeout`` seconds; then ``publish`` raises
  ``BackplaneUnavailable``.

Lifecycle: ``bp = PgBackplane(url)``; ``await bp.start()`` before serving (returns once LISTENing);
``RoomHub(provider, backplane=bp)``; ``await hub.stop()`` closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterable
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from .backplane import RESYNC, BackplaneHandler, BackplaneMessage

log = logging.getLogger(__name__)

PAYLOAD_LIMIT = 7900  # bytes per NOTIFY payload, header included (PostgreSQL's limit: 8000)
MAX_BATCH_BYTES = 64 << 10
_NOTIFY = "SELECT pg_notify(%s, %s)"
_encode = msgspec.json.Encoder().encode
_decode_batch = msgspec.json.Decoder(list[BackplaneMessage]).decode


class BackplaneUnavailable(ConnectionError):
    """PostgreSQL did not confirm the NOTIFY within ``publish_timeout`` (so almost surely the
    message was not sent; if its commit was only unconfirmed, every process still applies it)."""


def split_payload(data: bytes, limit: int) -> list[str]:
    """Cut UTF-8 ``data`` into text chunks of at most ``limit`` bytes, never inside a character."""
    chunks, start = [], 0
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation byte: back off
            end -= 1
        chunks.append(data[start:end].decode())
        start = end
    return chunks or [""]


class PgBackplane:
    def __init__(
        self,
        conninfo: str,
        *,
        channel: str = "redcart_rooms",
        flush_interval: float = 0.01,
        coalesce_interval: float = 0.1,
        publish_timeout: float = 5.0,
        health_interval: float = 5.0,
        max_message_bytes: int = 256 << 10,
        connect_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self.flush_interval = flush_interval
        self.coalesce_interval = coalesce_interval
        self.publish_timeout = publish_timeout
        self.health_interval = health_interval
        self.max_message_bytes = max_message_bytes
        self.origin = secrets.token_hex(6)
        self.stats = dict.fromkeys(
            ("transactions", "notifies", "sent", "received", "resyncs", "send_retries"), 0
        )
        self._connect_kwargs = {"connect_timeout": 5, **(connect_kwargs or {})}
        self._handlers: list[BackplaneHandler] = []
        self._listener: psycopg.AsyncConnection[Any] | None = None
        self._publisher: psycopg.AsyncConnection[Any] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._wake = asyncio.Event()
        self._queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self._likes: dict[str, int] = {}
        self._units: dict[tuple[str, str], int] = {}
        self._batch_no = 0
        self._waiting: dict[int, list[asyncio.Future[None]]] = {}
        self._seen: dict[str, int] = {}  # origin -> last batch applied
        self._parts: dict[tuple[str, int], list[str]] = {}

    # --- Backplane protocol -------------------------------------------------------------------

    def attach(self, handler: BackplaneHandler) -> None:
        self._handlers.append(handler)

    async def start(self) -> None:
        """Connect and LISTEN; returns once messages published from now on will be received."""
        if self._tasks:
            return
        self._listener = await self._connect_listener()
        self._publisher = await self._connect()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen_loop()), loop.create_task(self._send_loop())]

    @property
    def listening(self) -> bool:
        return self._listener is not None and not self._listener.closed

    async def publish(self, message: BackplaneMessage) -> None:
        """Queue for the next NOTIFY; reliable kinds return once applied here (see module doc)."""
        if self._closed or not self._tasks:
            raise RuntimeError("PgBackplane is not running: await start() first")
        kind, data = message.kind, message.data
        if kind == "likes":
            self._likes[message.room_id] = self._likes.get(message.room_id, 0) + int(data["n"])
        elif kind == "units_left":
            self._units[message.room_id, data["deal_id"]] = data["units_left"]
        else:
            encoded = _encode(message)
            if len(encoded) > self.max_message_bytes:
                raise ValueError(
                    f"backplane message {kind!r} for room {message.room_id} is {len(encoded)} "
                    f"bytes; the limit is {self.max_message_bytes}"
                )
            future = asyncio.get_running_loop().create_future()
            self._queue.append((encoded, future))
            self._wake.set()
            await future
            return
        self._wake.set()

    async def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for conn in (self._listener, self._publisher):
            await _close_quietly(conn)
        self._listener = self._publisher = None
        pending = [f for _, f in self._queue] + [f for fs in self._waiting.values() for f in fs]
        self._fail(pending, BackplaneUnavailable("backplane closed"))
        self._queue.clear()
        self._waiting.clear()
        self._handlers.clear()

    # --- sending ------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_flush = last_coalesced = -1e9
        while True:
            await self._wake.wait()
            while True:  # wait for this flush's turn; a reliable message ends a coalesced wait
                self._wake.clear()
                due = last_flush + self.flush_interval
                if not self._queue:  # only coalesced values: at most one flush per tick
                    due = max(due, last_coalesced + self.coalesce_interval)
                if due <= loop.time():
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), due - loop.time())
            if not (self._queue or self._likes or self._units):
                continue
            last_flush = loop.time()
            if self._likes or self._units:
                last_coalesced = last_flush
            body, futures = self._take_batch()
            self._batch_no += 1
            self._waiting[self._batch_no] = futures  # before sending: the echo may come first
            try:
                await self._send(self._batch_no, body)
            except Exception as exc:  # a bug, not the database: fail this batch, keep going
                log.exception("backplane: sending batch %d failed", self._batch_no)
                self._fail(self._waiting.pop(self._batch_no, ()), BackplaneUnavailable(str(exc)))
            if self._queue or self._likes or self._units:
                self._wake.set()

    def _take_batch(self) -> tuple[bytes, list[asyncio.Future[None]]]:
        parts = [
            _encode(BackplaneMessage(room, "units_left", {"deal_id": deal, "units_left": n}))
            for (room, deal), n in self._units.items()
        ]
        parts += [
            _encode(BackplaneMessage(room, "likes", {"n": n})) for room, n in self._likes.items()
        ]
        self._units, self._likes = {}, {}
        size = sum(len(p) + 1 for p in parts)
        taken = 0
        for encoded, _ in self._queue:
            if taken and size + len(encoded) > MAX_BATCH_BYTES:
                break
            parts.append(encoded)
            size += len(encoded) + 1
            taken += 1
        futures = [future for _, future in self._queue[:taken]]
        del self._queue[:taken]
        self.stats["sent"] += len(parts)
        return b"[" + b",".join(parts) + b"]", futures

    async def _send(self, batch_no: int, body: bytes) -> None:
        """NOTIFY one batch (its parts in one transaction); retry until ``publish_timeout``."""
        head = f"{self.origin}:{batch_no}:"
        chunks = split_payload(body, PAYLOAD_LIMIT - len(head) - 24)
        payloads = [f"{head}{i}:{len(chunks)}:{chunk}" for i, chunk in enumerate(chunks, 1)]
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + self.publish_timeout, 0.05
        while True:
            try:
                if self._publisher is None or self._publisher.closed:
                    self._publisher = await self._connect()
                conn = self._publisher
                if len(payloads) == 1:
                    await conn.execute(_NOTIFY, (self.channel, payloads[0]))
                else:
                    async with conn.transaction():
                        for payload in payloads:
                            await conn.execute(_NOTIFY, (self.channel, payload))
                self.stats["transactions"] += 1
                self.stats["notifies"] += len(payloads)
                return
            except (psycopg.Error, OSError) as exc:
                await _close_quietly(self._publisher)
                self._publisher = None
                if loop.time() + delay > deadline:
                    log.error("backplane: giving up on batch %d: %s", batch_no, exc)
                    failure = BackplaneUnavailable(f"PostgreSQL NOTIFY failed: {exc}")
                    self._fail(self._waiting.pop(batch_no, ()), failure)
                    return
                log.warning("backplane: NOTIFY failed (%s); retrying", exc)
                self.stats["send_retries"] += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    @staticmethod
    def _fail(futures: Iterable[asyncio.Future[None]], error: Exception) -> None:
        for future in futures:
            if not future.done():
                future.set_exception(error)
                future.exception()  # marked retrieved: its publisher may have gone away

    # --- receiving ----------------------------------------------------------------------------

    async def _listen_loop(self) -> None:
        while True:
            conn = self._listener
            try:
                if conn is None or conn.closed:
                    raise psycopg.OperationalError("listening connection is closed")
                async for note in conn.notifies(timeout=self.health_interval):
                    self._receive(note.payload)
                await asyncio.wait_for(conn.execute("SELECT 1"), self.health_interval)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                log.warning("backplane: listening connection lost (%s); reconnecting", exc)
                await _close_quietly(conn)
                self._listener = None
                self._listener = await self._reconnect_listener()
                self._resync(f"room state resynchronised after a backplane outage ({exc})")

    def _receive(self, payload: str) -> None:
        try:
            origin, batch_s, part_s, parts_s, chunk = payload.split(":", 4)
            batch, part, parts = int(batch_s), int(part_s), int(parts_s)
        except ValueError:
            log.warning("backplane: ignoring a foreign notification on %s", self.channel)
            return
        if parts > 1:
            chunks = self._parts.setdefault((origin, batch), [])
            if part != len(chunks) + 1:
                log.warning("backplane: part %d of %s:%d out of order", part, origin, batch)
                del self._parts[origin, batch]
                return
            chunks.append(chunk)
            if part < parts:
                return
            chunk = "".join(self._parts.pop((origin, batch)))
        if batch <= self._seen.get(origin, 0):
            return  # a retried send whose first attempt had committed after all
        self._seen[origin] = batch
        try:
            messages = _decode_batch(chunk)
        except msgspec.DecodeError:
            log.exception("backplane: undecodable batch %s:%d", origin, batch)
            messages = []
        self.stats["received"] += len(messages)
        for message in messages:
            self._deliver(message)
        if origin == self.origin:
            for future in self._waiting.pop(batch, ()):
                if not future.done():
                    future.set_result(None)

    def _deliver(self, message: BackplaneMessage) -> None:
        for handler in self._handlers:
            try:
                handler(message)
            except Exception:
                log.exception("backplane handler failed on %s of %s", message.kind, message.room_id)

    def _resync(self, reason: str) -> None:
        """Tell the hub that messages may be missing; release publishers waiting for an echo."""
        self.stats["resyncs"] += 1
        self._parts.clear()
        waiting, self._waiting = self._waiting, {}
        for futures in waiting.values():
            for future in futures:
                if not future.done():
                    future.set_result(None)
        self._deliver(BackplaneMessage("", RESYNC, {"reason": reason[:100]}))

    # --- connections --------------------------------------------------------------------------

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self.conninfo, autocommit=True, **self._connect_kwargs
        )

    async def _connect_listener(self) -> psycopg.AsyncConnection[Any]:
        conn = await self._connect()
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        except BaseException:
            await _close_quietly(conn)
            raise
        return conn

    async def _reconnect_listener(self) -> psycopg.AsyncConnection[Any]:
        delay = 0.1
        while True:
            try:
                return await self._connect_listener()
            except (psycopg.Error, OSError) as exc:
                log.warning("backplane: reconnect failed (%s); next try in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


async def _close_quietly(conn: psycopg.AsyncConnection[Any] | None) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            await conn.close()
